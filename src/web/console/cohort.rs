//! Cohort view: everyone under observation with a temperature sparkline and their latest
//! values, most worrying first — the page a follow-up contractor watches. (Scoping it to the
//! people assigned to a contractor comes with organisations and roles.)
use axum::{
    Router,
    extract::{Query, State},
    response::Html,
    routing::get,
};
use maud::html;
use mimamori_core::access::{Action, FieldGroup};
use mimamori_core::store::{
    escalations as esc_store, observations,
    persons::{self, List},
    staff,
};
use serde::Deserialize;

use crate::web::{
    AppState,
    auth::CurrentStaff,
    chart::sparkline,
    error::HtmlError,
    i18n::{UiLang, t},
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
    let people = persons::list_by(
        &s.db,
        &who.viewer(),
        List::All,
        today,
        PAGE_SIZE,
        page * PAGE_SIZE,
    )
    .await?;
    let mut rows = Vec::new();
    for p in people
        .into_iter()
        .filter(|p| p.status == "observing" && p.observation_end >= today)
    {
        let obs = observations::list_for_person(&s.db, Some(&who.viewer()), p.id).await?;
        let open = esc_store::open_for_person(&s.db, p.id).await?;
        let rank = open
            .iter()
            .map(|e| match e.priority.as_str() {
                "urgent" => 0,
                "high" => 1,
                _ => 2,
            })
            .min()
            .unwrap_or(3);
        rows.push((rank, p, obs, open));
    }
    rows.sort_by_key(|r| r.0);
    Ok(layout::page(
        lang,
        &who,
        t(lang, "健康観察の一覧（推移）", "Cohort"),
        html! {
            table {
                thead { tr {
                    th { (t(lang, "対象者", "Person")) } th { (t(lang, "体温の推移", "Temperature trend")) }
                    th { (t(lang, "最新", "Latest")) } th { (t(lang, "要確認", "Review")) }
                } }
                tbody {
                    @for (_, p, obs, open) in &rows {
                        @let last = obs.last();
                        tr {
                            td { a href=(format!("/persons/{}", p.id)) { (p.name) } }
                            td { (sparkline(obs)) }
                            td {
                                (last.and_then(|o| o.temperature_c).map(|v| format!("{v:.1} ℃")).unwrap_or_else(|| "—".into()))
                                " / " (last.and_then(|o| o.spo2).map(|v| format!("{v} %")).unwrap_or_else(|| "—".into()))
                            }
                            td { @for e in open { span class=(format!("tag {}", if e.priority == "urgent" { "failed" } else { "" })) { (super::escalations::reason_label(lang, &e.reason)) } " " } }
                        }
                    }
                }
            }
            nav { @if page > 0 { a href=(format!("/cohort?page={}", page - 1)) { "← " } } " " a href=(format!("/cohort?page={}", page + 1)) { (t(lang, "次へ", "Next")) " →" } }
        },
    ))
}
