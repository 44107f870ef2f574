//! The staff console.
pub mod account;
pub mod audit;
pub mod cohort;
pub mod escalations;
pub mod forms;
pub mod ids;
pub mod imports;
pub mod merges;
pub mod outbox;
pub mod person;
pub mod persons;
pub mod reports;
pub mod rules;
pub mod stats;

use axum::{Router, extract::State, response::IntoResponse, routing::get};
use maud::html;
use mimamori_core::store::{
    escalations as esc_store,
    persons::{self as person_store, List},
    staff,
};

use super::{
    AppState,
    auth::CurrentStaff,
    error::HtmlError,
    i18n::{UiLang, tr},
    layout,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .merge(persons::router())
        .merge(person::router())
        .merge(escalations::router())
        .merge(cohort::router())
        .merge(audit::router())
        .merge(account::router())
        .merge(ids::router())
        .merge(outbox::router())
        .merge(reports::router())
        .merge(merges::router())
        .merge(stats::router())
        .merge(imports::router())
        .merge(rules::router())
}

pub fn list_label(lang: mimamori_core::domain::Lang, l: List) -> &'static str {
    match l {
        List::All => tr(lang, "everyone"),
        List::Urgent => tr(lang, "urgent--console"),
        List::Symptomatic => tr(lang, "symptomatic-24-h"),
        List::NonReporting => tr(lang, "not-reporting--console"),
        List::Unreachable => tr(lang, "unreachable--console"),
        List::OnTrack => tr(lang, "on-track"),
        List::EndingToday => tr(lang, "period-ends-today"),
        List::Ended => tr(lang, "ended"),
    }
}

/// Local date of a health centre today.
pub fn centre_today(tz: &str) -> chrono::NaiveDate {
    let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::Asia::Tokyo);
    chrono::Utc::now().with_timezone(&tz).date_naive()
}

/// The health-centre dashboard: people under observation, today's answer rate, open
/// escalations by priority, and the line lists with their counts.
async fn home(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
) -> Result<axum::response::Response, HtmlError> {
    match who.role {
        mimamori_core::access::Role::HealthCentreStaff => {}
        // ID management is all the officers and the ministry do here.
        mimamori_core::access::Role::AuthOfficer | mimamori_core::access::Role::MinistryAdmin => {
            return Ok(axum::response::Redirect::to("/ids").into_response());
        }
        // Follow-up contractors and lodging facilities watch their people's observations:
        // they start on the cohort, most worrying first. Others start from their people.
        mimamori_core::access::Role::Contractor | mimamori_core::access::Role::LodgingFacility => {
            return Ok(axum::response::Redirect::to("/cohort").into_response());
        }
        // The analysis centre works on figures only.
        mimamori_core::access::Role::Analyst => {
            return Ok(axum::response::Redirect::to("/stats").into_response());
        }
        _ => return Ok(axum::response::Redirect::to("/persons").into_response()),
    }
    let centre = staff::health_centre(&s.db, who.health_centre_id).await?;
    let today = centre_today(&centre.time_zone);
    let observing = person_store::count_by(&s.db, &who.viewer(), List::OnTrack, today).await?;
    let mut lists = Vec::new();
    for l in List::ALL {
        lists.push((
            l,
            person_store::count_by(&s.db, &who.viewer(), l, today).await?,
        ));
    }
    let (due, answered) = person_store::answer_rate(&s.db, centre.id, today).await?;
    let by_priority = esc_store::counts(&s.db, centre.id).await?;
    let n = |p: &str| {
        by_priority
            .iter()
            .find(|(k, _)| k == p)
            .map(|(_, c)| *c)
            .unwrap_or(0)
    };
    let rate = if due > 0 {
        format!("{:.0} %", answered as f64 * 100.0 / due as f64)
    } else {
        "—".into()
    };
    let _ = observing;
    let alarms = mimamori_core::store::alarms::open(&s.db).await?;
    let plan = tomorrow_plan(&s).await;
    Ok(layout::page(
        lang,
        &who,
        &centre.name,
        html! {
            @if !alarms.is_empty() {
                div class="card" role="alert" style="border:3px solid #b3261e;background:#fdecea" {
                    h2 style="margin-top:0;color:#8c1d18" { (tr(lang, "operator-alarm-sending-has-stopped")) }
                    p { (tr(lang, "the-provider-refuses-our-credential-or")) }
                    ul { @for a in &alarms {
                        li { (a.provider) " — " (a.detail) " (" (tr(lang, "since--console")) " " (a.raised_at.format("%Y-%m-%d %H:%M UTC")) ", " (a.occurrences) (tr(lang, "times")) ")" }
                    } }
                }
            }
            @if let Some(plan) = &plan {
                @let [(_, sms), (_, voice), (_, email)] = mimamori_core::capacity::totals(plan);
                @if plan.overflow() == 0 {
                    p class="muted" id="capacity" {
                        (tr(lang, "tomorrow-s-sends-all-centres-with-every"))
                        "SMS " (sms) " / " (tr(lang, "calls")) (voice) " / " (tr(lang, "e-mail--console")) (email)
                        (tr(lang, "all-leave-inside-their-answer-windows"))
                    }
                } @else {
                    div class="card" role="alert" id="capacity" style="border:3px solid #b3261e;background:#fdecea" {
                        h2 style="margin-top:0;color:#8c1d18" { (tr(lang, "tomorrow-s-sends-will-not-all-leave-in")) }
                        p { (plan.overflow()) (tr(lang, "sends-would-leave-after-their-answer")) }
                        p { (tr(lang, "add-sender-numbers-or-spread-the-check")) code { "mimamori plan --capacity" } }
                    }
                }
            }
            div class="card" style="display:flex;gap:2rem;flex-wrap:wrap" {
                div { div class="muted" { (tr(lang, "today-s-answer-rate")) } strong style="font-size:1.6rem" { (rate) } div class="muted" { (answered) " / " (due) } }
                div { div class="muted" { (tr(lang, "open-escalations-urgent")) } strong style="font-size:1.6rem;color:#b3261e" id="urgent-count" { (n("urgent")) } }
                div { div class="muted" { (tr(lang, "high--console")) } strong style="font-size:1.6rem" { (n("high")) } }
                div { div class="muted" { (tr(lang, "normal--console")) } strong style="font-size:1.6rem" { (n("normal")) } }
                div { a class="button" href="/escalations" { (tr(lang, "open-the-review-queue")) } }
            }
            section class="card" {
                h2 { (tr(lang, "line-lists")) }
                ul style="columns:2" {
                    @for (l, c) in &lists {
                        li { a href=(format!("/persons?list={}", l.key())) { (list_label(lang, *l)) } " " strong class=(format!("count-{}", l.key())) { (c) } }
                    }
                }
            }
            p {
                a class="button" href="/persons/new" { (tr(lang, "register-a-person")) } " "
                @if who.dev_tools.simulator {
                    a class="button" href="/simulator" { (tr(lang, "phone-simulator")) } " "
                }
                @if who.dev_tools.outbox {
                    a class="button" href="/outbox" { (tr(lang, "outbox-development")) }
                }
            }
        },
    ).into_response())
}

/// Tomorrow's delivery capacity plan, at most five minutes old (None if it cannot be
/// computed now: the dashboard shows the rest).
async fn tomorrow_plan(s: &AppState) -> Option<mimamori_core::capacity::Plan> {
    let mut slot = s.capacity.lock().await;
    if let Some((at, plan)) = slot.as_ref()
        && at.elapsed() < std::time::Duration::from_secs(300)
    {
        return Some(plan.clone());
    }
    match crate::capacity_report::plan_for(
        &s.db,
        &s.config,
        &s.flows,
        crate::capacity_report::tomorrow(),
    )
    .await
    {
        Ok(plan) => {
            *slot = Some((std::time::Instant::now(), plan.clone()));
            Some(plan)
        }
        Err(e) => {
            tracing::warn!(error = %e, "capacity plan for the dashboard");
            None
        }
    }
}
