//! A person's page: the chart over the whole observation period, the day-by-symptom grid,
//! open escalations with the actions to take, the timeline of every review step, every
//! check-in with each attempt to reach them, and a form for staff to enter an observation
//! taken by phone.
use std::collections::BTreeMap;

use axum::{
    Form, Router,
    extract::{ConnectInfo, Path, RawForm, State},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use chrono::NaiveDate;
use maud::{Markup, PreEscaped, html};
use mimamori_core::codes;
use mimamori_core::{
    access::{Access, Action, FieldGroup, Role},
    domain::{Lang, Spo2, Temperature},
    error::Collect,
    flows::{Flow, QuestionKind},
    store::{
        assignments,
        audit::{Actor, OwnedAuditRow},
        checkins, escalations as esc_store, followups,
        observations::{self, Answer, Observation},
        persons, registry, residences, sections, staff,
    },
};
use serde::Deserialize;

use super::{
    escalations::{
        Done, action_label, event_label, priority_label, reason_label, residence_label, step_forms,
        with_banner,
    },
    persons::status_label,
};
use crate::web::{
    AppState,
    auth::CurrentStaff,
    cache::{CachedPage, PageKey},
    chart,
    error::HtmlError,
    i18n::{UiLang, tr},
    japan_today, layout,
};

mod details;
mod investigation;
mod observation;
mod record;
mod view;

use details::*;
use investigation::*;
use observation::*;
pub use record::add_residence;
use record::*;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/persons/{id}", get(show))
        .route("/persons/{id}/observations", axum::routing::post(enter))
        .route("/persons/{id}/calls", axum::routing::post(call))
        .route("/persons/{id}/assign", axum::routing::post(assign))
        .route("/persons/{id}/share", axum::routing::post(share))
        .route("/persons/{id}/schedule", axum::routing::post(schedule))
        .route("/persons/{id}/residences", axum::routing::post(residence))
        .route("/persons/{id}/tests", axum::routing::post(add_test))
        .route(
            "/persons/{id}/sections/{section}",
            axum::routing::post(save_section),
        )
        .route(
            "/persons/{id}/behaviours",
            axum::routing::post(add_behaviour),
        )
        .route(
            "/persons/{id}/infection",
            axum::routing::post(set_infection),
        )
        .route(
            "/persons/{id}/severities",
            axum::routing::post(add_severity),
        )
}

async fn show(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    axum::extract::Query(q): axum::extract::Query<TabQuery>,
    axum::extract::Query(done): axum::extract::Query<Done>,
) -> Result<Response, HtmlError> {
    let (hit, html) = page_served(&s, &who, lang, &addr.ip().to_string(), id, &q.tab, None).await?;
    // What a review step just did, with its undo (outside the cached page).
    let html = match done.banner(lang, &who, &format!("/persons/{id}")) {
        Some(b) => axum::response::Html(with_banner(html.0, b)),
        None => html,
    };
    // Says whether the page came from memory (`web::cache`), for operators and tests.
    Ok(([("x-cache", if hit { "hit" } else { "miss" })], html).into_response())
}

/// A "more" section posted with problems: shown again as typed, with each problem beside its
/// field, so nothing typed is lost.
struct SectionRetry {
    section: sections::Section,
    doc: serde_json::Value,
    errors: Vec<mimamori_core::FieldError>,
}

/// One of the record tab's or investigation tab's forms (tests, severity, residence,
/// behaviour) posted with problems: the tab is shown again with that form as typed.
struct FormRetry {
    form: &'static str,
    /// As posted (a field can come more than once: ticked boxes).
    values: Vec<(String, String)>,
    errors: Vec<mimamori_core::FieldError>,
}

enum Retry {
    Section(SectionRetry),
    Form(FormRetry),
}

/// Refills form `form` from a retry (when it is the one posted): values, problems, state.
#[derive(Clone, Copy)]
struct Refill<'a> {
    retry: Option<&'a FormRetry>,
    lang: Lang,
}

impl<'a> Refill<'a> {
    fn of(retry: Option<&'a Retry>, form: &str, lang: Lang) -> Refill<'a> {
        let retry = match retry {
            Some(Retry::Form(f)) if f.form == form => Some(f),
            _ => None,
        };
        Refill { retry, lang }
    }
    fn open(&self) -> bool {
        self.retry.is_some()
    }
    fn v(&self, field: &str) -> Option<&'a str> {
        self.retry?
            .values
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
    }
    /// Whether box `value` of field `field` was ticked.
    fn ticked(&self, field: &str, value: &str) -> bool {
        self.retry
            .is_some_and(|r| r.values.iter().any(|(k, v)| k == field && v == value))
    }
    fn error(&self, field: &str) -> Option<String> {
        let e = self.retry?.errors.iter().find(|e| e.field == field)?;
        Some(e.message(self.lang))
    }
    fn invalid(&self, field: &str) -> Option<&'static str> {
        self.error(field).map(|_| "true")
    }
    /// The problem under a field.
    fn note(&self, field: &str) -> Markup {
        html! { @if let Some(e) = self.error(field) { div class="err" { (e) } } }
    }
    /// "Not saved" and the list of problems, at the top of the form.
    fn summary(&self) -> Markup {
        html! { @if let Some(r) = self.retry { (not_saved(self.lang, &r.errors, None)) } }
    }
}

/// "Not saved" and each problem with its field's name — linked to the field when the
/// fields' ids are `{prefix}-{field}`.
fn not_saved(lang: Lang, errors: &[mimamori_core::FieldError], prefix: Option<&str>) -> Markup {
    html! {
        div class="errors" role="alert" {
            p { strong { (tr(lang, "not-saved-please-correct")) } }
            ul { @for e in errors {
                @let name = match field_label(lang, &e.field) { "" => &*e.field, l => l };
                li {
                    @if let Some(pre) = prefix { a href=(format!("#{pre}-{}", e.field)) { (name) } } @else { (name) }
                    "：" (e.message(lang))
                }
            } }
        }
    }
}

/// The person page, one tab of it (`tab`: observation — the default where the role may read
/// it —, record, investigation, details).
async fn page(
    s: &AppState,
    who: &CurrentStaff,
    lang: Lang,
    ip: &str,
    id: i64,
    tab: &str,
    retry: Option<&Retry>,
) -> Result<Html<String>, HtmlError> {
    Ok(page_served(s, who, lang, ip, id, tab, retry).await?.1)
}

/// [`page`], and whether it came from memory.
async fn page_served(
    s: &AppState,
    who: &CurrentStaff,
    lang: Lang,
    ip: &str,
    id: i64,
    tab: &str,
    retry: Option<&Retry>,
) -> Result<(bool, Html<String>), HtmlError> {
    // Health-observation data only for roles that may read it (medical institutions may not);
    // fields a role may not read are absent from the page, not blanked.
    let viewer = who.viewer();
    // One tab per group of records; only the open tab's records are read.
    let ho_allowed = viewer.may(FieldGroup::HealthObservation, Action::Read);
    let tab = match tab {
        "record" | "investigation" | "details" => tab,
        _ if ho_allowed => "observation",
        _ => "record",
    };
    // The observation tab, the one watched all day, comes from memory while nothing it shows
    // has changed (see `web::cache`); the read is audited all the same, before it is shown.
    let key = (retry.is_none() && tab == "observation").then(|| PageKey {
        role: who.role.as_str(),
        health_centre_id: who.health_centre_id,
        organisation_id: who.organisation_id,
        lang,
    });
    if let Some(key) = &key
        && let Some(c) = s.caches.pages.get(id, key)
    {
        s.audit
            .record(OwnedAuditRow {
                actor: Actor::Staff(who.id),
                action: "person.read",
                target_kind: "person",
                target_id: Some(id),
                ip: Some(ip.to_string()),
            })
            .await?;
        let body = c.body.replace(&s.caches.csrf_slot, &who.csrf);
        return Ok((true, layout::page(lang, who, &c.title, PreEscaped(body))));
    }
    let ticket = key.as_ref().and_then(|_| s.caches.pages.ticket(id));
    let (p, opened) = persons::open(&s.db, &viewer, id, Some(ip)).await?;
    // `persons::open` has checked the row scope and audited the view; each part below is read
    // only when the role may read its field group, and with the `opened` proof the store
    // checks the group without reading the scope again.
    let opened = Access::Opened(&opened);
    // A page to be kept carries a placeholder for the viewer's CSRF token.
    let viewer_who = who;
    let slotted;
    let who = if ticket.is_some() {
        slotted = CurrentStaff {
            csrf: s.caches.csrf_slot.clone(),
            ..who.clone()
        };
        &slotted
    } else {
        who
    };
    let ho = ho_allowed && tab == "observation";
    let (obs, cks, attempts, calls) = if ho {
        (
            observations::list_for_person(&s.db, opened, p.id).await?,
            checkins::list_for_person(&s.db, opened, p.id).await?,
            checkins::attempts_for_person(&s.db, opened, p.id).await?,
            followups::list(&s.db, opened, p.id).await?,
        )
    } else {
        (Vec::new(), Vec::new(), Vec::new(), Vec::new())
    };
    let rs = viewer.may(FieldGroup::Residence, Action::Read);
    let moves = if rs && tab == "record" {
        residences::list(&s.db, opened, p.id, None).await?
    } else {
        Vec::new()
    };
    let may = |g: FieldGroup| viewer.may(g, Action::Read);
    let tests = if may(FieldGroup::Tests) && tab == "record" {
        registry::tests(&s.db, opened, p.id, None).await?
    } else {
        Vec::new()
    };
    let severities = if may(FieldGroup::Severity) && tab == "record" {
        registry::severities(&s.db, opened, p.id, None).await?
    } else {
        Vec::new()
    };
    let behaviours = if may(FieldGroup::BehaviourHistory) && tab == "investigation" {
        registry::behaviours(&s.db, opened, p.id, None).await?
    } else {
        Vec::new()
    };
    let infection = if may(FieldGroup::InfectionLink) && tab == "investigation" {
        Some(registry::infection(&s.db, opened, p.id, None).await?)
    } else {
        None
    };
    // The prefecture by name, not its code.
    let prefecture = match (
        &p.prefecture_code,
        may(FieldGroup::Basic) && tab == "record",
    ) {
        (Some(code), true) => staff::prefectures(&s.db)
            .await?
            .into_iter()
            .find(|(c, _)| c == code)
            .map(|(_, name)| name),
        _ => None,
    };
    let contacts = if may(FieldGroup::Contacts) && tab == "record" {
        persons::contacts_of(&s.db, &viewer, p.id).await?
    } else {
        Vec::new()
    };
    let sections = if tab == "details" {
        sections::get_all(&s.db, Access::Staff(&viewer), p.id, Some(ip)).await?
    } else {
        Vec::new()
    };
    let hc = who.role == Role::HealthCentreStaff;
    // Sharing and assignment are record administration: their forms (and the lists they
    // need) are on the record tab, so the observation tab stays a few queries.
    let admin = hc && tab == "record";
    let centres = if admin {
        staff::health_centres(&s.db).await?
    } else {
        Vec::new()
    };
    let orgs = if admin {
        staff::organisations_of(&s.db, who.health_centre_id).await?
    } else {
        Vec::new()
    };
    let (open, timeline) = if hc && tab == "observation" {
        (
            esc_store::open_for_person(&s.db, opened, p.id).await?,
            esc_store::timeline(&s.db, opened, p.id).await?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let flow = s.flows.for_monitoring(&p.monitoring_type);
    let slots = if viewer.may(FieldGroup::HealthObservation, Action::Read) {
        persons::slots(&s.db, opened, p.id).await?
    } else {
        Vec::new()
    };
    let times = slots
        .iter()
        .map(|m| format!("{:02}:{:02}", m / 60, m % 60))
        .collect::<Vec<_>>()
        .join(",");
    // The chart draws the person's SpO2 baseline as the centre's rules define it.
    let baseline_readings = if tab == "observation" {
        mimamori_core::store::rulelab::centre_rules(&s.db, p.health_centre_id, &s.rules)
            .await?
            .spo2_baseline_readings
    } else {
        0
    };
    let title = p.name.clone();
    let body = view::render(view::View {
        lang,
        who,
        viewer,
        tab,
        retry,
        ho_allowed,
        ho,
        rs,
        hc,
        admin,
        p,
        obs,
        cks,
        attempts,
        calls,
        moves,
        tests,
        severities,
        behaviours,
        infection,
        prefecture,
        contacts,
        sections,
        centres,
        orgs,
        open,
        timeline,
        flow,
        times,
        baseline_readings,
    });
    let body = match (ticket, key) {
        (Some(ticket), Some(key)) => {
            let shown = body.0.replace(&s.caches.csrf_slot, &viewer_who.csrf);
            s.caches.pages.put(
                ticket,
                key,
                CachedPage {
                    title: title.clone(),
                    body: body.0,
                },
            );
            PreEscaped(shown)
        }
        _ => body,
    };
    Ok((false, layout::page(lang, viewer_who, &title, body)))
}

/// A record form posted to `/persons/{id}/…`: who, in which language, from where, whose
/// record, and the form's body.
struct Posted {
    s: AppState,
    who: CurrentStaff,
    lang: Lang,
    ip: String,
    id: i64,
    raw: axum::body::Bytes,
}

impl axum::extract::FromRequest<AppState> for Posted {
    type Rejection = Response;
    async fn from_request(
        req: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use axum::extract::FromRequestParts;
        let (mut parts, body) = req.into_parts();
        let who = CurrentStaff::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Ok(UiLang(lang)) = UiLang::from_request_parts(&mut parts, state).await;
        let ConnectInfo(addr) =
            ConnectInfo::<std::net::SocketAddr>::from_request_parts(&mut parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        let Path(id) = Path::<i64>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let RawForm(raw) =
            RawForm::from_request(axum::extract::Request::from_parts(parts, body), state)
                .await
                .map_err(IntoResponse::into_response)?;
        Ok(Posted {
            s: state.clone(),
            who,
            lang,
            ip: addr.ip().to_string(),
            id,
            raw,
        })
    }
}

impl Posted {
    /// Checks the CSRF token, reads the form as `T` and runs `save` with it. Saved: back to
    /// `tab`. Problems with the input: `tab` again (422) with the form `form` as typed and
    /// each problem beside its field, nothing saved.
    async fn run<T, Fut>(
        &self,
        form: &'static str,
        tab: &'static str,
        save: impl FnOnce(T) -> Fut,
    ) -> Result<Response, HtmlError>
    where
        T: serde::de::DeserializeOwned,
        Fut: std::future::Future<Output = mimamori_core::Result<()>>,
    {
        let values: Vec<(String, String)> = serde_urlencoded::from_bytes(&self.raw)
            .map_err(|e| crate::web::error::AppError::BadRequest(format!("form: {e}")))?;
        let csrf = values.iter().find(|(k, _)| k == "csrf");
        self.who.check_csrf(csrf.map_or("", |(_, v)| v.as_str()))?;
        let input: T = serde_urlencoded::from_bytes(&self.raw)
            .map_err(|e| crate::web::error::AppError::BadRequest(format!("form: {e}")))?;
        match save(input).await {
            Ok(()) => Ok(Redirect::to(&format!("/persons/{}?tab={tab}", self.id)).into_response()),
            Err(mimamori_core::Error::Invalid(errors)) => {
                let retry = Retry::Form(FormRetry {
                    form,
                    values,
                    errors,
                });
                let html = page(
                    &self.s,
                    &self.who,
                    self.lang,
                    &self.ip,
                    self.id,
                    tab,
                    Some(&retry),
                )
                .await?;
                Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Deserialize, Default)]
struct TabQuery {
    /// observation (default), record, investigation, details.
    #[serde(default)]
    tab: String,
}
