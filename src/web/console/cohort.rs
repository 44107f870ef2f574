//! Cohort view: everyone under observation with a temperature sparkline and their latest
//! values, most worrying first — the page a follow-up contractor lands on (it sees only the
//! people assigned to it: `Viewer::row_condition`), with a way to record each call.
use axum::{
    Router,
    extract::{Query, State},
    response::Html,
    routing::get,
};
use maud::html;
use mimamori_core::access::{Action, FieldGroup};
use mimamori_core::store::{escalations as esc_store, observations, persons, staff};
use serde::Deserialize;

use crate::web::{
    AppState,
    auth::CurrentStaff,
    chart::sparkline,
    error::HtmlError,
    i18n::{UiLang, tr},
    layout,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/cohort", get(cohort))
}

#[derive(Deserialize, Default)]
struct Page {
    #[serde(default)]
    page: i64,
}

const PAGE_SIZE: i64 = 50;

async fn cohort(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Query(q): Query<Page>,
) -> Result<Html<String>, HtmlError> {
    if !who
        .viewer()
        .may(FieldGroup::HealthObservation, Action::Read)
    {
        return Err(
            mimamori_core::Error::Forbidden("your role may not see health observations").into(),
        );
    }
    let centre = staff::health_centre(&s.db, who.health_centre_id).await?;
    let today = super::centre_today(&centre.time_zone);
    let page = q.page.max(0);
    // Most worrying first over the whole list (urgent, then high: not reporting,
    // unreachable, fever), so nobody urgent waits on page 3.
    let people =
        persons::most_worrying(&s.db, &who.viewer(), today, PAGE_SIZE, page * PAGE_SIZE).await?;
    // Two queries for the whole page, not three per row.
    let ids: Vec<i64> = people.iter().map(|p| p.id).collect();
    let mut obs = observations::for_people(&s.db, &who.viewer(), &ids).await?;
    let mut open = esc_store::open_for_people(&s.db, &who.viewer(), &ids).await?;
    let rows: Vec<_> = people
        .into_iter()
        .map(|p| {
            let o = obs.remove(&p.id).unwrap_or_default();
            let e = open.remove(&p.id).unwrap_or_default();
            (p, o, e)
        })
        .collect();
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "cohort"),
        html! {
            table {
                thead { tr {
                    th { (tr(lang, "person")) } th { (tr(lang, "temperature-trend")) }
                    th { (tr(lang, "latest")) } th { (tr(lang, "review")) }
                } }
                tbody {
                    @for (p, obs, open) in &rows {
                        @let last = obs.last();
                        tr {
                            td { a href=(format!("/persons/{}", p.id)) { (p.name) } }
                            td { (sparkline(obs, lang)) }
                            td {
                                (last.and_then(|o| o.temperature_c).map(|v| format!("{v:.1} ℃")).unwrap_or_else(|| "—".into()))
                                " / " (last.and_then(|o| o.spo2).map(|v| format!("{v} %")).unwrap_or_else(|| "—".into()))
                            }
                            td {
                                @for e in open { span class=(format!("prio prio-{}", e.priority)) { (super::escalations::reason_label(lang, &e.reason)) } " " }
                                a href=(format!("/persons/{}#calls", p.id)) { (tr(lang, "record-a-call")) span class="visually-hidden" { " " (p.name) } }
                            }
                        }
                    }
                }
            }
            nav aria-label=(tr(lang, "pages")) {
                @if page > 0 { a href=(format!("/cohort?page={}", page - 1)) { "← " (tr(lang, "previous")) } }
                " "
                @if rows.len() as i64 == PAGE_SIZE { a href=(format!("/cohort?page={}", page + 1)) { (tr(lang, "next")) " →" } }
            }
        },
    ))
}
