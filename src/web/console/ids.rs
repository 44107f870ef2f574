//! ID management by the user-authentication officer [利用者認証実施者]: issue IDs to staff of
//! the body and one ID per outside institution (contractor, lodging facility, medical
//! institution), suspend and re-enable them, reset passwords; and keep the body's people to
//! government staff only if the centre so decides. Every step is audited.
use axum::{
    Form, Router,
    extract::{ConnectInfo, Path, State},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use maud::{Markup, html};
use mimamori_core::{
    access::Role,
    domain::Lang,
    domain::{Email, Phone},
    error::Collect,
    store::{Actor, audit, ids, staff},
    with_db,
};
use rand::Rng;
use serde::Deserialize;

use crate::web::{
    AppState,
    auth::CurrentStaff,
    error::HtmlError,
    i18n::{UiLang, tr},
    layout,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ids", get(list).post(issue))
        .route(
            "/ids/{id}/suspend",
            post(|s, w, l, a, p, f| set_state(s, w, l, a, p, f, true)),
        )
        .route(
            "/ids/{id}/enable",
            post(|s, w, l, a, p, f| set_state(s, w, l, a, p, f, false)),
        )
        .route("/ids/{id}/reset", post(reset))
        .route("/ids/government-only", post(government_only))
        .route("/ids/outside-basic", post(outside_basic))
        .route("/ids/name-en", post(name_en))
}

fn manager(who: &CurrentStaff) -> ids::Manager {
    ids::Manager {
        staff_id: who.id,
        role: who.role,
        health_centre_id: who.health_centre_id,
    }
}

fn officer(who: &CurrentStaff) -> Result<(), HtmlError> {
    if who.role.manages().is_empty() {
        Err(mimamori_core::Error::Forbidden(
            "only the user-authentication officer (or the ministry, for officers) manages IDs",
        )
        .into())
    } else {
        Ok(())
    }
}

/// A role in words.
fn role_label(lang: Lang, r: &str) -> &'static str {
    match Role::parse(r) {
        Some(Role::MinistryAdmin) => tr(lang, "ministry"),
        Some(Role::AuthOfficer) => tr(lang, "id-officer"),
        Some(Role::HealthCentreStaff) => tr(lang, "health-centre-staff"),
        Some(Role::PrefectureStaff) => tr(lang, "prefecture-hq"),
        Some(Role::MedicalInstitution) => tr(lang, "medical-institution"),
        Some(Role::Contractor) => tr(lang, "contractor"),
        Some(Role::LodgingFacility) => tr(lang, "lodging-facility--console-ids"),
        Some(Role::Analyst) => tr(lang, "analyst"),
        None => tr(lang, "unknown"),
    }
}

fn new_password() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect()
}

async fn page(
    s: &AppState,
    who: &CurrentStaff,
    lang: mimamori_core::domain::Lang,
    notice: Option<Markup>,
) -> Result<Html<String>, HtmlError> {
    let ids = ids::list(&s.db, &manager(who)).await?;
    let outside_full = ids::outside_basic_full(&s.db, who.health_centre_id).await?;
    let name_en = ids::centre_name_en(&s.db, who.health_centre_id).await?;
    let centres = if who.role == Role::MinistryAdmin {
        staff::health_centres(&s.db).await?
    } else {
        Vec::new()
    };
    Ok(layout::page(
        lang,
        who,
        tr(lang, "ids"),
        html! {
            @if let Some(n) = notice { div class="ok" role="status" { (n) } }
            table {
                thead { tr {
                    th { "ID" } th { (tr(lang, "user-id")) } th { (tr(lang, "name")) } th { (tr(lang, "role")) }
                    th { (tr(lang, "t-2nd-factor")) } th { (tr(lang, "state")) } th {}
                } }
                tbody {
                    @for i in &ids {
                        tr {
                            td { (i.id) } td { (i.username) } td { (i.display_name) } td { (role_label(lang, &i.role)) }
                            td { @if i.has_totp { "TOTP" } @else if i.phone.is_some() { "SMS" } @else if i.email.is_some() { "e-mail" } @else { strong class="err" { (tr(lang, "none")) } } }
                            td { @if i.suspended { strong class="err" { (tr(lang, "suspended")) } } @else { (tr(lang, "active")) } }
                            td style="display:flex;gap:.3rem" {
                                    form method="post" action=(format!("/ids/{}/{}", i.id, if i.suspended { "enable" } else { "suspend" })) {
                                        input type="hidden" name="csrf" value=(who.csrf);
                                        button type="submit" style="margin:0" { (if i.suspended { tr(lang, "enable") } else { tr(lang, "suspend") }) }
                                    }
                                    form method="post" action=(format!("/ids/{}/reset", i.id)) {
                                        input type="hidden" name="csrf" value=(who.csrf);
                                        button type="submit" style="margin:0;background:#555" { (tr(lang, "reset-password")) }
                                    }
                            }
                        }
                    }
                }
            }
            section class="card" {
                h2 { (tr(lang, "issue-an-id")) }
                form method="post" action="/ids" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    label for="username" { (tr(lang, "user-id")) } input id="username" name="username" required;
                    label for="display_name" { (tr(lang, "name-institution")) } input id="display_name" name="display_name" required;
                    label for="role" { (tr(lang, "role")) }
                    select id="role" name="role" {
                        @for r in who.role.manages() { option value=(r.as_str()) { (role_label(lang, r.as_str())) } }
                    }
                    @if !centres.is_empty() {
                        label for="health_centre_id" { (tr(lang, "health-centre")) }
                        select id="health_centre_id" name="health_centre_id" {
                            @for c in &centres { option value=(c.id) { (c.name) } }
                        }
                    }
                    label for="organisation" { (tr(lang, "outside-body-s-name-contractor-facility")) }
                    input id="organisation" name="organisation";
                    label for="phone" { (tr(lang, "mobile-login-codes-by-sms")) } input id="phone" name="phone" type="tel";
                    label for="email" { (tr(lang, "e-mail-login-codes")) } input id="email" name="email" type="email";
                    button type="submit" { (tr(lang, "issue")) }
                }
            }
            // The centre's own settings, apart from issuing an ID.
            section class="card" {
                h2 { (tr(lang, "centre-settings")) }
                @if who.role == Role::AuthOfficer {
                    form method="post" action="/ids/name-en" {
                        input type="hidden" name="csrf" value=(who.csrf);
                        label for="name_en" { (tr(lang, "the-centre-s-name-in-english-read-by")) }
                        input id="name_en" name="name_en" value=(name_en) lang="en";
                        button type="submit" style="margin:0" { (tr(lang, "apply")) }
                    }
                    form method="post" action="/ids/outside-basic" style="margin-top:1rem" {
                        input type="hidden" name="csrf" value=(who.csrf);
                        fieldset {
                            legend { (tr(lang, "basic-information-shown-to-contractors")) }
                            label style="font-weight:400" { input type="radio" name="on" value="" checked[!outside_full] style="width:auto"; " "
                                (tr(lang, "narrow-name-kana-sex-date-of-birth-how")) }
                            label style="font-weight:400" { input type="radio" name="on" value="1" checked[outside_full] style="width:auto"; " "
                                (tr(lang, "all-with-address-occupation-workplace")) }
                        }
                        button type="submit" style="margin:0" { (tr(lang, "apply")) }
                    }
                }
                form method="post" action="/ids/government-only" style="margin-top:1rem" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    label style="font-weight:400" { input type="checkbox" name="on" value="1" style="width:auto"; " "
                        (tr(lang, "keep-this-centre-s-people-to-government")) }
                    button type="submit" style="margin:0" { (tr(lang, "apply")) }
                }
            }
        },
    ))
}

async fn list(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
) -> Result<Html<String>, HtmlError> {
    officer(&who)?;
    page(&s, &who, lang, None).await
}

#[derive(Deserialize)]
struct IssueForm {
    csrf: String,
    username: String,
    display_name: String,
    role: String,
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    email: String,
    /// Ministry only: the centre of the new officer.
    #[serde(default)]
    health_centre_id: Option<String>,
}

async fn issue(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<IssueForm>,
) -> Result<Response, HtmlError> {
    officer(&who)?;
    who.check_csrf(&f.csrf)?;
    let mut c = Collect::default();
    let role = Role::parse(&f.role).filter(|r| who.role.manages().contains(r));
    let centre = if who.role == Role::MinistryAdmin {
        match f.health_centre_id.and_then(|c| c.parse::<i64>().ok()) {
            Some(c) if staff::health_centre(&s.db, c).await.is_ok() => c,
            _ => {
                return Err(mimamori_core::Error::invalid(
                    "health_centre_id",
                    "err-choose-the-health-centre-of-the-new-officer",
                )
                .into());
            }
        }
    } else {
        who.health_centre_id
    };
    if role.is_none() {
        c.push("role", "err-choose-one-of-the-listed-roles");
    }
    let phone = (!f.phone.trim().is_empty())
        .then(|| c.take(Phone::parse("phone", &f.phone)))
        .flatten();
    let email = (!f.email.trim().is_empty())
        .then(|| c.take(Email::parse("email", &f.email)))
        .flatten();
    if f.phone.trim().is_empty() && f.email.trim().is_empty() {
        c.push(
            "phone",
            "err-give-a-mobile-number-or-an-e-mail-address-every",
        );
    }
    if role.is_some_and(|r| r.organisation_kind().is_some()) && f.organisation.trim().is_empty() {
        c.push("organisation", "err-name-the-outside-body-this-id-is-for");
    }
    if f.display_name.trim().is_empty() {
        c.push("display_name", "err-enter-the-name");
    }
    c.finish()?;
    let role = role.expect("checked");
    let password = new_password();
    let hash = tokio::task::spawn_blocking({
        let p = password.clone();
        move || crate::web::auth::hash_password(&p)
    })
    .await??;
    ids::issue(
        &s.db,
        &manager(&who),
        ids::NewId {
            health_centre_id: centre,
            username: &f.username,
            password_hash: &hash,
            display_name: &f.display_name,
            role,
            organisation: Some(&f.organisation),
            phone: phone.as_ref().map(|p| p.as_str()),
            email: email.as_ref().map(|e| e.as_str()),
        },
        Some(&addr.ip().to_string()),
    )
    .await?;
    let notice = html! {
        (tr(lang, "id-issued-initial-password-shown-only"))
        strong class="password" { (password) }
    };
    Ok(page(&s, &who, lang, Some(notice)).await?.into_response())
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
    #[serde(default)]
    on: Option<String>,
}

/// Suspends (ending its sessions) or re-enables an ID of the body.
async fn set_state(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
    suspended: bool,
) -> Result<Html<String>, HtmlError> {
    officer(&who)?;
    who.check_csrf(&f.csrf)?;
    let change = if suspended {
        ids::Change::Suspend
    } else {
        ids::Change::Enable
    };
    ids::change(
        &s.db,
        &manager(&who),
        id,
        change,
        Some(&addr.ip().to_string()),
    )
    .await?;
    let notice = if suspended {
        tr(lang, "id-suspended-its-sessions-have-ended")
    } else {
        tr(lang, "id-enabled")
    };
    page(&s, &who, lang, Some(html! { (notice) })).await
}

async fn reset(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Result<Html<String>, HtmlError> {
    officer(&who)?;
    who.check_csrf(&f.csrf)?;
    let password = new_password();
    let hash = tokio::task::spawn_blocking({
        let p = password.clone();
        move || crate::web::auth::hash_password(&p)
    })
    .await??;
    ids::change(
        &s.db,
        &manager(&who),
        id,
        ids::Change::Reset {
            password_hash: &hash,
        },
        Some(&addr.ip().to_string()),
    )
    .await?;
    page(
        &s,
        &who,
        lang,
        Some(html! {
            (tr(lang, "password-reset-shown-only-now")) strong class="password" { (password) }
        }),
    )
    .await
}

async fn government_only(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Form(f): Form<CsrfForm>,
) -> Result<Html<String>, HtmlError> {
    officer(&who)?;
    who.check_csrf(&f.csrf)?;
    if who.role != Role::AuthOfficer {
        return Err(mimamori_core::Error::Forbidden(
            "the health centre's own officer decides this",
        )
        .into());
    }
    let on = f.on.is_some();
    staff::set_government_only(&s.db, who.health_centre_id, on).await?;
    with_db!(&s.db, p => audit(p, Actor::Staff(who.id), if on { "centre.government_only" } else { "centre.outside_allowed" }, "health_centre", Some(who.health_centre_id), None).await)?;
    page(&s, &who, lang, Some(html! { (if on { tr(lang, "restricted-to-government-staff") } else { tr(lang, "outside-bodies-allowed") }) })).await
}

async fn outside_basic(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<CsrfForm>,
) -> Result<Html<String>, HtmlError> {
    officer(&who)?;
    who.check_csrf(&f.csrf)?;
    let full = f.on.as_deref().is_some_and(|v| !v.is_empty());
    ids::set_outside_basic(&s.db, &manager(&who), full, Some(&addr.ip().to_string())).await?;
    let notice = if full {
        tr(lang, "contractors-and-lodging-facilities-now")
    } else {
        tr(lang, "contractors-and-lodging-facilities-now--console-ids")
    };
    page(&s, &who, lang, Some(html! { (notice) })).await
}

#[derive(Deserialize)]
struct NameForm {
    csrf: String,
    #[serde(default)]
    name_en: String,
}

async fn name_en(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<NameForm>,
) -> Result<Html<String>, HtmlError> {
    officer(&who)?;
    who.check_csrf(&f.csrf)?;
    ids::set_centre_name_en(
        &s.db,
        &manager(&who),
        &f.name_en,
        Some(&addr.ip().to_string()),
    )
    .await?;
    page(
        &s,
        &who,
        lang,
        Some(html! { (tr(lang, "english-name-saved")) }),
    )
    .await
}
