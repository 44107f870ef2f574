//! People under observation: list, registration form, and a person's page with the chart
//! and every attempt to reach them.
use axum::{
    Form, Router,
    extract::{ConnectInfo, Query, State},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use maud::{Markup, html};
use mimamori_core::codes;
use mimamori_core::{
    Error,
    access::{Access, Action, FieldGroup},
    domain::Lang,
    registration::{self, Registration},
    store::{
        persons::{self, List},
        staff,
    },
};
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
        .route("/persons", get(list).post(create))
        .route("/persons/new", get(new_form))
        .route(
            "/persons/{id}/contacts",
            get(new_contact_form).post(create_contact),
        )
        .route("/persons/{id}/edit", get(edit_form).post(edit))
}

const BASIC_FIELDS: &[(&str, &str, &str)] = &[
    ("name", "name", "text"),
    ("name_kana", "name-in-kana", "text"),
    ("phone", "phone--console-persons", "tel"),
    ("email", "e-mail--console-persons", "email"),
    ("date_of_birth", "date-of-birth--console-person", "date"),
    ("sex", "sex-male-female-other-unknown", "text"),
    ("nationality", "nationality--console-persons", "text"),
    ("prefecture_code", "prefecture-code", "text"),
    ("municipality", "municipality--console-reports", "text"),
    ("address", "rest-of-the-address", "text"),
    ("occupation", "occupation--console-persons", "text"),
    ("workplace", "workplace-or-school", "text"),
    (
        "emergency_contact",
        "emergency-contact--console-person",
        "text",
    ),
    ("observation_end", "observation-ends", "date"),
    (
        "period_override_reason",
        "reason-for-changing-the-end-date",
        "text",
    ),
];

fn edit_markup(
    lang: Lang,
    who: &CurrentStaff,
    id: i64,
    values: &std::collections::BTreeMap<String, String>,
    errors: &[mimamori_core::FieldError],
) -> Markup {
    html! {
        (super::forms::error_summary(lang, errors, &BASIC_FIELDS.iter().map(|f| f.0).collect::<Vec<_>>()))
        form method="post" action=(format!("/persons/{id}/edit")) novalidate {
            input type="hidden" name="csrf" value=(who.csrf);
            @for (name, key, kind) in BASIC_FIELDS {
                @let e = errors.iter().find(|e| e.field == *name);
                label for=(name) { (tr(lang, key)) }
                input id=(name) name=(name) type=(kind) value=(values.get(*name).map(String::as_str).unwrap_or(""))
                    aria-invalid=[e.map(|_| "true")] aria-describedby=(format!("{name}-err"));
                @if let Some(e) = e { div class="err" id=(format!("{name}-err")) { (e.message(lang)) } }
            }
            button type="submit" { (tr(lang, "save--console-persons")) }
        }
    }
}

async fn edit_form(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> Result<Html<String>, HtmlError> {
    persons::check(
        &s.db,
        Access::Staff(&who.viewer()),
        id,
        FieldGroup::Basic,
        Action::Write,
    )
    .await?;
    let p = persons::get(&s.db, Access::Staff(&who.viewer()), id, None).await?;
    let json = serde_json::to_value(&p).unwrap_or_default();
    let values = BASIC_FIELDS
        .iter()
        .map(|(k, ..)| {
            let v = match &json[*k] {
                serde_json::Value::String(x) => x.clone(),
                _ => String::new(),
            };
            (k.to_string(), v)
        })
        .collect();
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "edit-basic-information--console-persons"),
        edit_markup(lang, &who, id, &values, &[]),
    ))
}

async fn edit(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, HtmlError> {
    let values: std::collections::BTreeMap<String, String> = form.into_iter().collect();
    who.check_csrf(values.get("csrf").map(String::as_str).unwrap_or(""))?;
    let get = |k: &str| values.get(k).cloned();
    let input = persons::BasicInput {
        name: get("name"),
        name_kana: get("name_kana"),
        phone: get("phone"),
        email: get("email"),
        date_of_birth: get("date_of_birth"),
        sex: get("sex"),
        nationality: get("nationality"),
        prefecture_code: get("prefecture_code"),
        municipality: get("municipality"),
        address: get("address"),
        occupation: get("occupation"),
        workplace: get("workplace"),
        emergency_contact: get("emergency_contact"),
        observation_end: get("observation_end"),
        period_override_reason: get("period_override_reason"),
    };
    match persons::update_basic(
        &s.db,
        &who.viewer(),
        id,
        &input,
        Some(&addr.ip().to_string()),
    )
    .await
    {
        Ok(()) => Ok(Redirect::to(&format!("/persons/{id}?tab=record")).into_response()),
        Err(Error::Invalid(errors)) => Ok((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            super::forms::page(
                lang,
                &who,
                tr(lang, "edit-basic-information--console-persons"),
                &errors,
                edit_markup(lang, &who, id, &values, &errors),
            ),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
struct Page {
    #[serde(default)]
    page: i64,
    #[serde(default)]
    list: String,
    /// Name / kana prefix, phone or id.
    #[serde(default)]
    q: String,
    /// patient or contact.
    #[serde(default, rename = "type")]
    monitoring_type: String,
}

const PAGE_SIZE: i64 = 50;

pub fn status_label(lang: Lang, s: &str) -> &'static str {
    codes::PersonStatus::parse(s)
        .map(|c| c.label(lang))
        .or_else(|| codes::CheckinStatus::parse(s).map(|c| c.label(lang)))
        .unwrap_or("?")
}

async fn list(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Query(q): Query<Page>,
) -> Result<Html<String>, HtmlError> {
    let page = q.page.max(0);
    let which = List::parse(&q.list);
    let centre = staff::health_centre(&s.db, who.health_centre_id).await?;
    let today = super::centre_today(&centre.time_zone);
    let search = persons::Search {
        q: q.q.clone(),
        monitoring_type: q.monitoring_type.clone(),
    };
    let (rows, total) = persons::search(
        &s.db,
        &who.viewer(),
        which,
        today,
        &search,
        PAGE_SIZE,
        page * PAGE_SIZE,
    )
    .await?;
    let qs = |page: i64| {
        serde_urlencoded::to_string([
            ("list", which.key()),
            ("q", q.q.as_str()),
            ("type", q.monitoring_type.as_str()),
            ("page", page.to_string().as_str()),
        ])
        .unwrap_or_default()
    };
    let title = format!(
        "{} — {}",
        tr(lang, "people"),
        super::list_label(lang, which)
    );
    Ok(layout::page(
        lang,
        &who,
        &title,
        html! {
            nav aria-label=(tr(lang, "line-lists")) style="display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:1rem" {
                @for l in List::ALL {
                    a class=(if l == which { "tag answered" } else { "tag" }) href=(format!("/persons?list={}", l.key()))
                        aria-current=[(l == which).then_some("page")] { (super::list_label(lang, l)) }
                }
            }
            form method="get" action="/persons" role="search" style="display:flex;gap:.5rem;align-items:flex-end;flex-wrap:wrap" {
                input type="hidden" name="list" value=(which.key());
                label { (tr(lang, "name-kana-phone-or-id")) " "
                    input type="search" name="q" value=(q.q) autofocus style="width:16rem"; }
                label { (tr(lang, "type")) " "
                    select name="type" style="width:auto" {
                        option value="" { (tr(lang, "all")) }
                        option value="patient" selected[q.monitoring_type == "patient"] { (tr(lang, "patients")) }
                        option value="contact" selected[q.monitoring_type == "contact"] { (tr(lang, "contacts")) }
                    } }
                button type="submit" style="margin:0" { (tr(lang, "search")) }
            }
            p class="muted" {
                @if total > persons::COUNT_CAP { (persons::COUNT_CAP) (tr(lang, "people--console-persons")) }
                @else { (total) " " (tr(lang, "people--console-persons-2")) }
            }
            table {
                thead { tr {
                    th { "ID" } th { (tr(lang, "name")) } th { (tr(lang, "type")) }
                    th { (tr(lang, "channel--console-person")) } th { (tr(lang, "observation-period")) }
                    th { (tr(lang, "status")) }
                } }
                tbody {
                    @for p in &rows {
                        tr {
                            td { (p.id) }
                            td { a href=(format!("/persons/{}", p.id)) { (p.name) } }
                            td { (if p.monitoring_type == "contact" { tr(lang, "contact") } else { tr(lang, "patient") }) }
                            td { (p.channel) }
                            td { (p.observation_start) " – " (p.observation_end) }
                            td { (status_label(lang, &p.status)) }
                        }
                    }
                }
            }
            nav aria-label="pages" {
                @if page > 0 { a href=(format!("/persons?{}", qs(page - 1))) { "← " (tr(lang, "previous")) } " " }
                @if (page + 1) * PAGE_SIZE < total { a href=(format!("/persons?{}", qs(page + 1))) { (tr(lang, "next")) " →" } }
            }
        },
    ))
}

#[derive(Deserialize, Default)]
struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    person: persons::PersonInput,
}

fn form_markup(
    lang: Lang,
    who: &CurrentStaff,
    v: &persons::PersonInput,
    errors: &[mimamori_core::FieldError],
    dups: &[persons::DuplicateCandidate],
) -> Markup {
    let action = match v.source_person_id {
        Some(src) => format!("/persons/{src}/contacts"),
        None => "/persons".to_string(),
    };
    let err = |f: &str| {
        errors
            .iter()
            .find(|e| e.field == f)
            .map(|e| e.message(lang))
    };
    let field = |name: &'static str,
                 label: &'static str,
                 kind: &'static str,
                 value: &str,
                 hint: &'static str| {
        let e = err(name);
        html! {
            label for=(name) { (label) }
            @if !hint.is_empty() { div class="muted" id=(format!("{name}-hint")) { (hint) } }
            input id=(name) name=(name) type=(kind) value=(value)
                aria-invalid=[e.as_ref().map(|_| "true")]
                aria-describedby=(format!("{name}-hint {name}-err"));
            @if let Some(e) = e { div class="err" id=(format!("{name}-err")) { (e) } }
        }
    };
    let today = crate::web::japan_today();
    let start = if v.observation_start.is_empty() {
        today.to_string()
    } else {
        v.observation_start.clone()
    };
    let end = v.observation_end.clone();
    let checkin_time = if v.checkin_time.is_empty() {
        "09:00".to_string()
    } else {
        v.checkin_time.clone()
    };
    let channel = if v.channel.is_empty() {
        "sms"
    } else {
        v.channel.as_str()
    };
    html! {
        (super::forms::error_summary(lang, errors, REGISTRATION_FIELDS))
        form method="post" action=(action) novalidate {
            input type="hidden" name="csrf" value=(who.csrf);
            @if !dups.is_empty() {
                (duplicates_panel(lang, dups))
                label style="font-weight:400" { input type="checkbox" name="not_duplicate" value="true" style="width:auto"; " " (tr(lang, "register-as-a-different-person")) }
            }
            p class="muted" { (tr(lang, "marks-required-fields-a-phone-number-is")) }
            (field("name", tr(lang, "name--console-persons"), "text", &v.name, ""))
            (field("phone", tr(lang, "phone--console-persons"), "tel", &v.phone, tr(lang, "e-g-090-1234-5678")))
            (field("email", tr(lang, "e-mail--console-persons"), "email", &v.email, ""))
            label for="channel" { (tr(lang, "daily-contact-by")) }
            select id="channel" name="channel" {
                option value="sms" selected[channel == "sms"] { (tr(lang, "sms-with-link")) }
                option value="email" selected[channel == "email"] { (tr(lang, "e-mail--console-person")) }
                option value="voice" selected[channel == "voice"] { (tr(lang, "automated-voice-call")) }
            }
            label for="fallback_channel" { (tr(lang, "if-unanswered-also-try-optional")) }
            select id="fallback_channel" name="fallback_channel" {
                option value="" selected[v.fallback_channel.is_empty()] { (tr(lang, "none--console-persons")) }
                option value="voice" selected[v.fallback_channel == "voice"] { (tr(lang, "automated-voice-call")) }
                option value="sms" selected[v.fallback_channel == "sms"] { (tr(lang, "sms-with-link")) }
                option value="email" selected[v.fallback_channel == "email"] { (tr(lang, "e-mail--console-person")) }
            }
            label style="font-weight:400" {
                input type="checkbox" name="slow_speech" value="true" checked[v.slow_speech] style="width:auto";
                " " (tr(lang, "automated-calls-read-slowly-and-wait"))
            }
            label for="language" { (tr(lang, "language")) }
            select id="language" name="language" {
                option value="ja" selected[v.language != "en"] { "日本語" }
                option value="en" selected[v.language == "en"] { "English" }
            }
            label for="monitoring_type" { (tr(lang, "type")) }
            select id="monitoring_type" name="monitoring_type" {
                option value="patient" selected[v.monitoring_type != "contact"] { (tr(lang, "patient-at-home")) }
                option value="contact" selected[v.monitoring_type == "contact"] { (tr(lang, "close-contact--console-persons")) }
            }
            (field("onset_date", tr(lang, "onset-date-symptomatic-patient"), "date", &v.onset_date, ""))
            (field("specimen_date", tr(lang, "specimen-date-asymptomatic-patient"), "date", &v.specimen_date, ""))
            (field("last_exposure_date", tr(lang, "last-exposure-close-contact"), "date", &v.last_exposure_date, ""))
            (field("observation_start", tr(lang, "observation-starts"), "date", &start, ""))
            (field("observation_end", tr(lang, "observation-ends"), "date", &end,
                tr(lang, "empty-computed-from-the-date-above-and")))
            (field("period_override_reason", tr(lang, "reason-for-an-end-date-other-than-the"), "text", &v.period_override_reason, ""))
            (field("checkin_time", tr(lang, "daily-check-in-times"), "text", &checkin_time,
                tr(lang, "japan-time-the-health-centre-s-clock-e-g")))
            (field("date_of_birth", tr(lang, "date-of-birth-identifies-callers-on-the"), "date", &v.date_of_birth, ""))
            (field("name_kana", tr(lang, "name-in-kana-used-to-find-duplicates"), "text", &v.name_kana, ""))
            details open[has_details(v)] {
                summary { (tr(lang, "more-basic-information-optional")) }
                label for="sex" { (tr(lang, "sex--console-person")) }
                select id="sex" name="sex" {
                    option value="" { "—" }
                    @for (k, key) in [("male", "male"), ("female", "female"), ("other", "other"), ("unknown", "unknown")] {
                        option value=(k) selected[v.sex == k] { (tr(lang, key)) }
                    }
                }
                (field("nationality", tr(lang, "nationality--console-persons"), "text", &v.nationality, ""))
                (field("prefecture_code", tr(lang, "address-prefecture-code"), "text", &v.prefecture_code, tr(lang, "e-g-13-tokyo")))
                (field("municipality", tr(lang, "address-municipality"), "text", &v.municipality, ""))
                (field("address", tr(lang, "address-the-rest"), "text", &v.address, ""))
                (field("occupation", tr(lang, "occupation--console-persons"), "text", &v.occupation, ""))
                (field("workplace", tr(lang, "workplace-or-school"), "text", &v.workplace, ""))
                (field("emergency_contact", tr(lang, "emergency-contact--console-person"), "text", &v.emergency_contact, ""))
                (field("reception_date", tr(lang, "reception-date-empty-today"), "date", &v.reception_date, ""))
            }
            @if let Some(src) = v.source_person_id { input type="hidden" name="source_person_id" value=(src); }
            @if let Some(b) = v.behaviour_id { input type="hidden" name="behaviour_id" value=(b); }
            button type="submit" { (tr(lang, "register")) }
        }
    }
}

/// The fields on the registration form (an error about any other is named in words).
const REGISTRATION_FIELDS: &[&str] = &[
    "name",
    "phone",
    "email",
    "channel",
    "fallback_channel",
    "language",
    "monitoring_type",
    "onset_date",
    "specimen_date",
    "last_exposure_date",
    "observation_start",
    "observation_end",
    "period_override_reason",
    "checkin_time",
    "date_of_birth",
    "name_kana",
    "sex",
    "nationality",
    "prefecture_code",
    "municipality",
    "address",
    "occupation",
    "workplace",
    "emergency_contact",
    "reception_date",
];

fn has_details(v: &persons::PersonInput) -> bool {
    [
        &v.sex,
        &v.nationality,
        &v.prefecture_code,
        &v.municipality,
        &v.address,
        &v.occupation,
        &v.workplace,
        &v.emergency_contact,
        &v.reception_date,
    ]
    .iter()
    .any(|f| !f.is_empty())
}

/// The "possible duplicate" panel: who matched and on what, with a way to register anyway.
fn duplicates_panel(lang: Lang, dups: &[persons::DuplicateCandidate]) -> Markup {
    html! {
        div class="errors" role="alert" id="duplicates" {
            p { strong { (tr(lang, "this-may-be-a-person-already-registered")) } }
            ul {
                @for d in dups {
                    li {
                        a href=(format!("/persons/{}", d.id)) { (d.name) } " (ID " (d.id) ") — "
                        (tr(lang, "matched"))
                        (d.matched.iter().map(|m| match *m {
                            "name_kana" => tr(lang, "kana-name"),
                            "date_of_birth" => tr(lang, "date-of-birth"),
                            "phone" => tr(lang, "phone--console-persons-2"),
                            "sex" => tr(lang, "sex"),
                            _ => tr(lang, "address"),
                        }).collect::<Vec<_>>().join("、"))
                    }
                }
            }
            p { (tr(lang, "if-this-is-someone-else-tick-register-as")) }
        }
    }
}

async fn new_form(who: CurrentStaff, UiLang(lang): UiLang) -> Result<Html<String>, HtmlError> {
    who.require_health_centre()?;
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "register-a-person--console-persons"),
        form_markup(lang, &who, &persons::PersonInput::default(), &[], &[]),
    ))
}

async fn create(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<RegisterForm>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    who.check_csrf(&f.csrf)?;
    register(&s, &who, lang, &addr, f).await
}

/// The registration form for a close contact of case `id`: linked to the case, monitored
/// as a contact, the observation period counted from the last exposure.
#[derive(Deserialize, Default)]
struct ContactQuery {
    /// A behaviour-history entry of the case where the contact was met.
    #[serde(default, deserialize_with = "mimamori_core::domain::lenient::opt_i64")]
    behaviour: Option<i64>,
    /// A household member being registered: their name and phone.
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone: String,
}

async fn new_contact_form(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Query(q): Query<ContactQuery>,
) -> Result<Html<String>, HtmlError> {
    persons::check(
        &s.db,
        Access::Staff(&who.viewer()),
        id,
        FieldGroup::Contacts,
        Action::Write,
    )
    .await?;
    let mut v = persons::PersonInput {
        behaviour_id: q.behaviour,
        name: q.name,
        phone: q.phone,
        ..Default::default()
    };
    mimamori_core::store::registry::as_contact_of(&s.db, id, &mut v).await?;
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "register-a-close-contact--console-persons"),
        form_markup(lang, &who, &v, &[], &[]),
    ))
}

async fn create_contact(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Form(mut f): Form<RegisterForm>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    who.check_csrf(&f.csrf)?;
    persons::check(
        &s.db,
        Access::Staff(&who.viewer()),
        id,
        FieldGroup::Contacts,
        Action::Write,
    )
    .await?;
    mimamori_core::store::registry::as_contact_of(&s.db, id, &mut f.person).await?;
    register(&s, &who, lang, &addr, f).await
}

/// Registers from the console form: validation errors and possible duplicates re-show the
/// form with what was typed.
async fn register(
    s: &AppState,
    who: &CurrentStaff,
    lang: Lang,
    addr: &std::net::SocketAddr,
    f: RegisterForm,
) -> Result<Response, HtmlError> {
    let title = if f.person.source_person_id.is_some() {
        tr(lang, "register-a-close-contact--console-persons")
    } else {
        tr(lang, "register-a-person--console-persons")
    };
    let ip = addr.ip().to_string();
    match registration::register(&s.db, &who.viewer(), &f.person, s.registration(Some(&ip))).await {
        Ok(Registration::Done(id)) => Ok(Redirect::to(&format!("/persons/{id}")).into_response()),
        Ok(Registration::PossibleDuplicates(dups)) => Ok((
            axum::http::StatusCode::CONFLICT,
            layout::page(
                lang,
                who,
                title,
                form_markup(lang, who, &f.person, &[], &dups),
            ),
        )
            .into_response()),
        Err(Error::Invalid(errors)) => Ok((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            super::forms::page(
                lang,
                who,
                title,
                &errors,
                form_markup(lang, who, &f.person, &errors, &[]),
            ),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}
