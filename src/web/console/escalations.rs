//! The review queue [要注意者の確認]: open escalations of the health centre, most urgent and
//! oldest first; acknowledge, note, record the action taken, resolve — each step audited and
//! shown on the person's timeline.
use axum::{
    Form, Router,
    extract::{ConnectInfo, Path, Query, State},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::{Markup, html};
use mimamori_core::codes;
use mimamori_core::{
    domain::Lang,
    store::{
        Actor,
        escalations::{self, Step},
        residences, staff,
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
        .route("/escalations", get(queue))
        .route("/escalations/live", get(live))
        .route("/escalations/{id}/steps", post(step))
        .route("/escalations/{id}/undo", post(undo))
        .route("/static/queue.js", get(script))
}

pub fn reason_label(lang: Lang, r: &str) -> &'static str {
    codes::Reason::label_of(r, lang)
}

pub fn priority_label(lang: Lang, p: &str) -> &'static str {
    codes::Priority::parse(p)
        .unwrap_or(codes::Priority::Normal)
        .label(lang)
}

pub fn action_label(lang: Lang, a: &str) -> &'static str {
    codes::ReviewAction::parse(a)
        .unwrap_or(codes::ReviewAction::Other)
        .label(lang)
}

pub fn residence_label(lang: Lang, k: &str) -> &'static str {
    codes::ResidenceKind::parse(k)
        .unwrap_or(codes::ResidenceKind::Other)
        .label(lang)
}

const REASONS: &[codes::Reason] = codes::Reason::ALL;

#[derive(Deserialize, Default)]
struct Filter {
    #[serde(default)]
    reason: String,
    /// Outside body id, or empty.
    #[serde(default)]
    org: String,
    #[serde(default)]
    residence: String,
}

/// The timeline's words for an event kind.
pub fn event_label(lang: Lang, kind: &str) -> &'static str {
    codes::EventKind::label_of(kind, lang)
}

/// The forms to act on one escalation (used in the queue's expanding rows and on the
/// person's page). Resolving an urgent or high case asks for the action taken (unless one
/// is recorded) and an explicit confirmation; the store refuses it otherwise.
pub fn step_forms(
    lang: Lang,
    who: &CurrentStaff,
    id: i64,
    status: &str,
    priority: &str,
    back: &str,
) -> Markup {
    let serious = matches!(priority, "urgent" | "high");
    let field = |name: &str| format!("esc{id}-{name}");
    html! {
        div class="steps" {
            @if status == "open" {
                form method="post" action=(format!("/escalations/{id}/steps")) {
                    input type="hidden" name="csrf" value=(who.csrf);
                    input type="hidden" name="back" value=(back);
                    input type="hidden" name="step" value="acknowledge";
                    button type="submit" { (tr(lang, "i-m-on-it")) }
                }
            }
            form method="post" action=(format!("/escalations/{id}/steps")) {
                input type="hidden" name="csrf" value=(who.csrf);
                input type="hidden" name="back" value=(back);
                input type="hidden" name="step" value="action";
                label for=(field("action")) { (tr(lang, "action-taken")) }
                select id=(field("action")) name="action" {
                    @for a in escalations::ACTIONS { option value=(a) { (action_label(lang, a)) } }
                }
                label for=(field("note")) { (tr(lang, "note-optional")) }
                input id=(field("note")) name="note";
                button type="submit" { (tr(lang, "record-action")) }
            }
            form method="post" action=(format!("/escalations/{id}/steps")) class="resolve" {
                input type="hidden" name="csrf" value=(who.csrf);
                input type="hidden" name="back" value=(back);
                input type="hidden" name="step" value="resolve";
                @if serious {
                    label for=(field("raction")) { (tr(lang, "action-taken-empty-if-already-recorded")) }
                    select id=(field("raction")) name="action" {
                        option value="" { (tr(lang, "choose-not-needed-if-recorded")) }
                        @for a in escalations::ACTIONS { option value=(a) { (action_label(lang, a)) } }
                    }
                }
                label for=(field("rnote")) { (tr(lang, "resolution-note-optional")) }
                input id=(field("rnote")) name="note";
                @if serious {
                    label class="confirm" {
                        input type="checkbox" name="confirm" value="yes";
                        (tr(lang, "i-confirm-this-case-has-been-dealt-with"))
                    }
                }
                button type="submit" class="resolve" { (tr(lang, "resolve")) }
            }
        }
    }
}

/// What a step did, with its undo: shown at the top of the page the nurse returns to.
pub fn done_banner(lang: Lang, who: &CurrentStaff, done: &str, esc: i64, back: &str) -> Markup {
    html! {
        div class="done" role="status" {
            p {
                strong { (event_label(lang, done)) } " "
                (tr(lang, "recorded-case")) (esc) (tr(lang, "t-"))
                " " (tr(lang, "you-can-undo-it-for-10-minutes"))
            }
            form method="post" action=(format!("/escalations/{esc}/undo")) {
                input type="hidden" name="csrf" value=(who.csrf);
                input type="hidden" name="back" value=(back);
                button type="submit" class="secondary" { (tr(lang, "undo")) }
            }
        }
    }
}

/// Puts `banner` at the top of a page's main content (the person page is cached whole).
pub fn with_banner(page: String, banner: Markup) -> String {
    match page
        .find("<main")
        .and_then(|i| page[i..].find('>').map(|j| i + j + 1))
    {
        Some(at) => format!("{}{}{}", &page[..at], banner.into_string(), &page[at..]),
        None => page,
    }
}

/// `?done=<kind>&esc=<id>` after a step.
#[derive(Deserialize, Default)]
pub struct Done {
    #[serde(default)]
    pub done: String,
    #[serde(default)]
    pub esc: Option<i64>,
}

impl Done {
    pub fn banner(&self, lang: Lang, who: &CurrentStaff, back: &str) -> Option<Markup> {
        let esc = self.esc?;
        matches!(
            self.done.as_str(),
            "acknowledged" | "action" | "note" | "resolved"
        )
        .then(|| done_banner(lang, who, &self.done, esc, back))
    }
}

/// Refreshes the queue's live count without reloading the page (what the nurse typed in an
/// open row stays): polls the count of open urgent cases and says when new ones came in.
const QUEUE_SCRIPT: &str = r#"(function () {
  var el = document.getElementById('live');
  if (!el) return;
  var shown = parseInt(el.getAttribute('data-urgent') || '0', 10);
  function poll() {
    fetch('/escalations/live', { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) {
        if (!v) return;
        var fresh = v.urgent_open - shown;
        var link = el.querySelector('a');
        if (fresh > 0) {
          el.hidden = false;
          el.querySelector('.n').textContent = String(fresh);
        } else {
          el.hidden = true;
        }
        if (link) link.href = location.pathname + location.search;
      })
      .catch(function () {});
  }
  setInterval(poll, 20000);
})();"#;

async fn script() -> axum::response::Response {
    crate::web::layout::javascript(QUEUE_SCRIPT)
}

/// The count behind the queue's live line: open, not yet taken on, urgent cases of the
/// centre (a count, no person).
async fn live(
    State(s): State<AppState>,
    who: CurrentStaff,
) -> Result<axum::Json<serde_json::Value>, HtmlError> {
    who.require_health_centre()?;
    let n = escalations::urgent_open(&s.db, who.health_centre_id).await?;
    Ok(axum::Json(serde_json::json!({ "urgent_open": n })))
}

/// "12分前" / "12 min ago" beside the time: how long someone has been waiting.
fn waited(lang: Lang, since: chrono::DateTime<chrono::Utc>) -> String {
    let m = (chrono::Utc::now() - since).num_minutes().max(0);
    match (lang, m) {
        (Lang::Ja, 0..60) => format!("{m}分前"),
        (Lang::Ja, 60..1440) => format!("{}時間前", m / 60),
        (Lang::Ja, _) => format!("{}日前", m / 1440),
        (Lang::En, 0..60) => format!("{m} min ago"),
        (Lang::En, 60..1440) => format!("{} h ago", m / 60),
        (Lang::En, _) => format!("{} d ago", m / 1440),
    }
}

async fn queue(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Query(f): Query<Filter>,
    Query(done): Query<Done>,
) -> Result<Html<String>, HtmlError> {
    who.require_health_centre()?;
    let reason = codes::Reason::parse(&f.reason).map(codes::Reason::as_str);
    let residence = Some(f.residence.as_str()).filter(|r| residences::KINDS.contains(r));
    let orgs = staff::organisations_of(&s.db, who.health_centre_id).await?;
    let org = f
        .org
        .parse::<i64>()
        .ok()
        .filter(|o| orgs.iter().any(|(id, _, _)| id == o));
    let filter = escalations::QueueFilter {
        reason,
        organisation_id: org,
        residence,
    };
    let rows = escalations::queue(
        &s.db,
        Actor::Staff(who.id),
        who.health_centre_id,
        &filter,
        500,
    )
    .await?;
    let urgent_open = rows
        .iter()
        .filter(|r| r.priority == "urgent" && r.status == "open")
        .count();
    let tz = chrono_tz::Asia::Tokyo;
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "review-queue"),
        html! {
            @if let Some(b) = done.banner(lang, &who, "/escalations") { (b) }
            p id="live" class="live" role="status" hidden data-urgent=(urgent_open) {
                (tr(lang, "new-urgent-cases")) strong class="n" { "0" } (tr(lang, "t---console-escalations"))
                a href="/escalations" { (tr(lang, "refresh-the-list")) }
            }
            form method="get" action="/escalations" class="filters" {
                label for="reason" { (tr(lang, "reason")) }
                select id="reason" name="reason" {
                    option value="" { (tr(lang, "all")) }
                    @for r in REASONS { option value=(r.as_str()) selected[reason == Some(r.as_str())] { (r.label(lang)) } }
                }
                label for="org" { (tr(lang, "contractor-facility")) }
                select id="org" name="org" {
                    option value="" { (tr(lang, "all")) }
                    @for (id, _, name) in &orgs { option value=(id) selected[org == Some(*id)] { (name) } }
                }
                label for="residence" { (tr(lang, "residence")) }
                select id="residence" name="residence" {
                    option value="" { (tr(lang, "all")) }
                    @for k in residences::KINDS { option value=(k) selected[residence == Some(*k)] { (residence_label(lang, k)) } }
                }
                button type="submit" { (tr(lang, "filter")) }
            }
            p class="muted" {
                strong { (rows.len()) } " " (tr(lang, "open-most-urgent-first-then-longest"))
                @if urgent_open > 0 { " · " strong class="err" { (tr(lang, "urgent-not-taken-on")) (urgent_open) } }
            }
            table class="queue" {
                thead { tr {
                    th scope="col" { (tr(lang, "priority")) } th scope="col" { (tr(lang, "person")) }
                    th scope="col" { (tr(lang, "why")) } th scope="col" { (tr(lang, "since")) }
                    th scope="col" { (tr(lang, "taken-on-by")) } th scope="col" { (tr(lang, "act")) }
                } }
                tbody {
                    @for r in &rows {
                        tr class=(format!("esc esc-{}", r.priority)) {
                            td { span class=(format!("prio prio-{}", r.priority)) { (priority_label(lang, &r.priority)) } }
                            td { a href=(format!("/persons/{}", r.person_id)) { (r.name) } }
                            td { (reason_label(lang, &r.reason)) @if !r.detail.is_empty() { span class="muted" { " · " (r.detail) } } }
                            td { (waited(lang, r.opened_at)) span class="muted" { " (" (r.opened_at.with_timezone(&tz).format("%m/%d %H:%M")) ")" } }
                            td { @match &r.assigned_name { Some(n) => (n), None => span class="muted" { (tr(lang, "nobody-yet")) } } }
                            td {
                                details {
                                    summary { (tr(lang, "act")) span class="visually-hidden" { " " (r.name) } }
                                    (step_forms(lang, &who, r.id, &r.status, &r.priority, "/escalations"))
                                }
                            }
                        }
                    }
                }
            }
            script src="/static/queue.js" {}
        },
    ))
}

#[derive(Deserialize)]
struct StepForm {
    csrf: String,
    step: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    back: String,
}

/// Where to go after a step: a console path of ours, never elsewhere.
fn back_to(back: &str) -> String {
    crate::web::same_origin_path(back)
        .unwrap_or("/escalations")
        .to_string()
}

fn with_query(path: &str, query: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{query}")
}

async fn step(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    Form(f): Form<StepForm>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    who.check_csrf(&f.csrf)?;
    let back = back_to(&f.back);
    let (step, kind) = match f.step.as_str() {
        "acknowledge" => (Step::Acknowledge, "acknowledged"),
        "note" => (Step::Note(f.note), "note"),
        "action" => (Step::Action(f.action, f.note), "action"),
        "resolve" => (
            Step::Resolve {
                action: Some(f.action).filter(|a| !a.is_empty()),
                note: f.note,
                confirmed: f.confirm == "yes",
            },
            "resolved",
        ),
        _ => return Err(crate::web::error::AppError::BadRequest("unknown step".into()).into()),
    };
    match escalations::step(&s.db, &who.viewer(), id, step, Some(&addr.ip().to_string())).await {
        Ok(()) => {
            Ok(Redirect::to(&with_query(&back, &format!("done={kind}&esc={id}"))).into_response())
        }
        Err(mimamori_core::Error::Invalid(errors)) => {
            Ok(step_problem(&s, &who, lang, id, &back, &errors).await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// A step refused (e.g. resolving an urgent case without an action or confirmation): the
/// problem named, and the case's forms again.
async fn step_problem(
    s: &AppState,
    who: &CurrentStaff,
    lang: Lang,
    id: i64,
    back: &str,
    errors: &[mimamori_core::FieldError],
) -> Result<Response, HtmlError> {
    let e = escalations::get(&s.db, &who.viewer(), id).await?;
    let page = super::forms::page(
        lang,
        who,
        tr(lang, "review-step"),
        errors,
        html! {
            (super::forms::error_summary(lang, errors, &[]))
            p {
                strong class=(format!("prio prio-{}", e.priority)) { (priority_label(lang, &e.priority)) } " "
                (reason_label(lang, &e.reason)) " · "
                a href=(format!("/persons/{}", e.person_id)) { (tr(lang, "the-person-s-page")) }
            }
            (step_forms(lang, who, id, &e.status, &e.priority, back))
            p { a href=(back) { (tr(lang, "back")) } }
        },
    );
    Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

#[derive(Deserialize)]
struct UndoForm {
    csrf: String,
    #[serde(default)]
    back: String,
}

async fn undo(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    Form(f): Form<UndoForm>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    who.check_csrf(&f.csrf)?;
    escalations::undo(&s.db, &who.viewer(), id, Some(&addr.ip().to_string())).await?;
    Ok(Redirect::to(&back_to(&f.back)).into_response())
}

#[cfg(test)]
mod tests {
    use super::back_to;

    #[test]
    fn a_step_returns_only_to_a_page_of_ours() {
        assert_eq!(back_to("/persons/7?tab=record"), "/persons/7?tab=record");
        for evil in [
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\\evil.example",
            "https://evil.example",
            "",
        ] {
            assert_eq!(back_to(evil), "/escalations", "{evil:?}");
        }
    }
}
