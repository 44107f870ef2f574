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

mod register;

use register::*;

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
