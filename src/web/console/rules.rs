//! The rule lab [ルール検証]: health-centre staff edit a draft of their centre's escalation
//! rules, replay it over the last days of the centre's observations beside the live rules,
//! and activate it as a new, audited version. Which rules were in force on any date is shown.
//! Nothing is saved until a draft is activated.
use axum::{
    Form, Router,
    extract::{Query, State},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::{Markup, html};
use mimamori_core::{
    Error, FieldError, codes,
    domain::Lang,
    rules::{Thresholds, model},
    store::rulelab::{self, Replay, SetFigures},
};
use serde::Deserialize;
use std::collections::BTreeMap;

use super::forms;
use crate::web::{
    AppState,
    auth::CurrentStaff,
    error::HtmlError,
    i18n::{UiLang, tr},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rules", get(show))
        .route("/rules/replay", post(replay))
        .route("/rules/activate", post(activate))
        .route("/rules/model", post(on_model))
}

/// Every rule key in the order the page shows them, with the words for it.
const KEYS: &[(&str, &str)] = &[
    ("spo2_urgent_at_or_below", "rule-spo2-urgent-at-or-below"),
    ("spo2_high_at_or_below", "rule-spo2-high-at-or-below"),
    ("fever_at_or_above", "rule-fever-at-or-above"),
    ("fever_streak_days", "rule-fever-streak-days"),
    ("non_reporting_streak", "rule-non-reporting-streak"),
    (
        "non_reporting_streak_high_risk",
        "rule-non-reporting-streak-high-risk",
    ),
    ("high_risk_age_at_or_over", "rule-high-risk-age-at-or-over"),
    ("high_risk_conditions", "rule-high-risk-conditions"),
    (
        "high_risk_recent_escalation_days",
        "rule-high-risk-recent-escalation-days",
    ),
    ("spo2_baseline_readings", "rule-spo2-baseline-readings"),
    ("spo2_baseline_drop", "rule-spo2-baseline-drop"),
    ("spo2_falling_readings", "rule-spo2-falling-readings"),
    ("spo2_falling_points", "rule-spo2-falling-points"),
    ("temp_rising_days", "rule-temp-rising-days"),
    ("temp_rising_by", "rule-temp-rising-by"),
    ("temp_rising_to", "rule-temp-rising-to"),
    ("fever_return_at_or_above", "rule-fever-return-at-or-above"),
    ("fever_return_after_days", "rule-fever-return-after-days"),
    ("worse_days", "rule-worse-days"),
    ("worse_question", "rule-worse-question"),
    ("worse_choice", "rule-worse-choice"),
    ("late_symptom_from_day", "rule-late-symptom-from-day"),
    ("score_high_at_or_above", "rule-score-high-at-or-above"),
    (
        "score_breathless_question",
        "rule-score-breathless-question",
    ),
];

/// The first key of the trend rules (the page heads the two groups).
const FIRST_TREND_KEY: &str = "spo2_baseline_readings";

#[derive(Deserialize, Default)]
struct ShowQuery {
    #[serde(default)]
    on: String,
    #[serde(default)]
    activated: String,
}

/// A rule set as the form's text values by key.
fn values_of(t: &Thresholds) -> BTreeMap<String, String> {
    let v = serde_json::to_value(t).unwrap_or_default();
    let mut out = BTreeMap::new();
    if let Some(m) = v.as_object() {
        for (k, v) in m {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
                other => other.to_string(),
            };
            out.insert(k.clone(), s);
        }
    }
    out
}

/// The draft's fields, read against the shipped rules (`base`): an override object holding
/// the keys whose values differ from it, or which fields are not values of their kind.
fn draft_overrides(
    base: &Thresholds,
    form: &BTreeMap<String, String>,
) -> Result<String, Vec<FieldError>> {
    let base_v = serde_json::to_value(base).unwrap_or_default();
    let mut over = serde_json::Map::new();
    let mut errors = Vec::new();
    for (key, _) in KEYS {
        let Some(raw) = form.get(*key).map(|s| s.trim()) else {
            continue;
        };
        let was = &base_v[*key];
        let v = match was {
            serde_json::Value::Bool(_) => serde_json::Value::Bool(raw == "yes"),
            serde_json::Value::String(_) => serde_json::Value::String(raw.to_string()),
            serde_json::Value::Number(n) if n.is_f64() => match raw.parse::<f64>() {
                Ok(f) if f.is_finite() => serde_json::json!(f),
                _ => {
                    errors.push(FieldError::new(*key, "err-lab-number".into(), Vec::new()));
                    continue;
                }
            },
            _ => match raw.parse::<u32>() {
                Ok(n) => serde_json::json!(n),
                _ => {
                    errors.push(FieldError::new(
                        *key,
                        "err-lab-whole-number".into(),
                        Vec::new(),
                    ));
                    continue;
                }
            },
        };
        if &v != was {
            over.insert((*key).to_string(), v);
        }
    }
    if errors.is_empty() {
        Ok(serde_json::Value::Object(over).to_string())
    } else {
        Err(errors)
    }
}

/// [`draft_overrides`], validated: the rules it makes, which must fit the flows (a rule
/// reading a question no flow asks could never fire). Returns (overrides, rules).
fn checked_draft(
    s: &AppState,
    draft: &BTreeMap<String, String>,
) -> Result<(String, Thresholds), Vec<FieldError>> {
    let refused =
        |why: String| FieldError::new("rules", "err-lab-rules".into(), vec![("why", why)]);
    let over = draft_overrides(&s.rules, draft)?;
    let t = s
        .rules
        .with_overrides(&over)
        .map_err(|e| vec![refused(e)])?;
    let misfit = t.problems_with(&s.flows);
    if !misfit.is_empty() {
        return Err(misfit.into_iter().map(refused).collect());
    }
    Ok((over, t))
}

/// The words for a rule key (for the error summary), if `key` is one.
pub fn key_label(lang: Lang, key: &str) -> Option<&'static str> {
    KEYS.iter()
        .find(|(k, _)| *k == key)
        .map(|(_, l)| tr(lang, l))
}

fn errors_of(e: Error) -> Result<Vec<FieldError>, HtmlError> {
    match e {
        Error::Invalid(v) => Ok(v),
        other => Err(other.into()),
    }
}

/// What the page holds besides the draft.
struct Page<'a> {
    draft: BTreeMap<String, String>,
    days: String,
    note: String,
    errors: Vec<FieldError>,
    result: Option<&'a Replay>,
    /// The live rules and the draft on the population model.
    model: Option<[model::Figures; 2]>,
    notice: Option<String>,
    on: chrono::NaiveDate,
}

async fn render(
    s: &AppState,
    who: &CurrentStaff,
    lang: Lang,
    pg: Page<'_>,
) -> Result<Response, HtmlError> {
    let viewer = who.viewer();
    let centre = mimamori_core::store::staff::health_centre(&s.db, who.health_centre_id).await?;
    let tz: chrono_tz::Tz = centre.time_zone.parse().unwrap_or(chrono_tz::Asia::Tokyo);
    let live = rulelab::centre_rules(&s.db, who.health_centre_id, &s.rules).await?;
    let live_v = values_of(&live);
    let shipped_v = values_of(&s.rules);
    let versions = rulelab::versions(&s.db, &viewer).await?;
    let in_force = rulelab::in_force(&s.db, &viewer, pg.on).await?;
    let on_form: Vec<&str> = KEYS
        .iter()
        .map(|(k, _)| *k)
        .chain(["days", "note"])
        .collect();
    let title = tr(lang, "lab-title");
    let body = html! {
        (forms::error_summary(lang, &pg.errors, &on_form))
        @if let Some(n) = &pg.notice {
            p class="card" role="status" { (n) }
        }
        p { (tr(lang, "lab-intro")) }
        @if let Some(r) = pg.result {
            (result(lang, tz, r))
        }
        @if let Some(m) = &pg.model {
            (model_result(lang, m))
        }
        form method="post" class="card" id="draft" {
            input type="hidden" name="csrf" value=(who.csrf);
            h2 { (tr(lang, "lab-draft")) }
            p class="muted" { (tr(lang, "lab-draft-help")) }
            div class="scroll" tabindex="0" { table {
                thead { tr {
                    th scope="col" { (tr(lang, "lab-rule")) }
                    th scope="col" { (tr(lang, "lab-live")) }
                    th scope="col" { (tr(lang, "lab-shipped")) }
                    th scope="col" { (tr(lang, "lab-draft")) }
                } }
                tbody {
                    @for (key, label_key) in KEYS {
                        @if *key == FIRST_TREND_KEY {
                            tr { th colspan="4" scope="rowgroup" { (tr(lang, "lab-trend-rules")) } }
                        }
                        @let value = pg.draft.get(*key).or(live_v.get(*key)).cloned().unwrap_or_default();
                        @let invalid = pg.errors.iter().any(|e| e.field == *key);
                        @let changed = live_v.get(*key) != Some(&value);
                        tr class=(if changed { "changed" } else { "" }) style=(if changed { "background:#fff4e0" } else { "" }) {
                            th scope="row" {
                                label for=(key) { (tr(lang, label_key)) }
                                br; code class="muted" { (key) }
                            }
                            td { (live_v.get(*key).cloned().unwrap_or_default()) }
                            td class="muted" { (shipped_v.get(*key).cloned().unwrap_or_default()) }
                            td {
                                @if *key == "high_risk_conditions" {
                                    select id=(key) name=(key) {
                                        option value="yes" selected[value == "yes"] { (tr(lang, "yes")) }
                                        option value="no" selected[value == "no"] { (tr(lang, "no")) }
                                    }
                                } @else {
                                    input id=(key) name=(key) value=(value) size="8" aria-invalid=[invalid.then_some("true")]
                                        inputmode=(if key.ends_with("question") || key.ends_with("choice") { "text" } else { "decimal" });
                                }
                            }
                        }
                    }
                } }
            }
            label for="days" { (tr(lang, "lab-days")) }
            input id="days" name="days" inputmode="numeric" size="4" value=(pg.days);
            button type="submit" formaction="/rules/replay" { (tr(lang, "lab-replay")) }
            " "
            button type="submit" formaction="/rules/model" { (tr(lang, "lab-try-model")) }
            h3 { (tr(lang, "lab-activate-heading")) }
            p class="muted" { (tr(lang, "lab-activate-help")) }
            label for="note" { (tr(lang, "lab-note")) }
            input id="note" name="note" size="40" maxlength="500" value=(pg.note);
            button type="submit" formaction="/rules/activate" { (tr(lang, "lab-activate")) }
        }
        section class="card" aria-labelledby="in-force" {
            h2 id="in-force" { (tr(lang, "lab-in-force")) }
            form method="get" action="/rules" {
                label for="on" { (tr(lang, "lab-on-date")) }
                input type="date" id="on" name="on" value=(pg.on.to_string());
                button type="submit" { (tr(lang, "lab-show")) }
            }
            p {
                (pg.on) ": "
                @match &in_force {
                    Some(v) => {
                        strong { (tr(lang, "lab-version")) " " (v.version) }
                        " — " code { (v.rules) }
                    }
                    None => { strong { (tr(lang, "lab-shipped-rules")) } }
                }
            }
            @if !versions.is_empty() {
                div class="scroll" tabindex="0" { table class="wide" {
                    thead { tr {
                        th scope="col" { (tr(lang, "lab-version")) }
                        th scope="col" { (tr(lang, "lab-activated-at")) }
                        th scope="col" { (tr(lang, "lab-activated-by")) }
                        th scope="col" { (tr(lang, "lab-note")) }
                        th scope="col" { (tr(lang, "lab-changes")) }
                    } }
                    tbody { @for v in &versions {
                        tr {
                            td { (v.version) }
                            td { (v.activated_at.with_timezone(&tz).format("%Y-%m-%d %H:%M")) }
                            td { (tr(lang, "lab-staff")) " " (v.activated_by) }
                            td { (v.note) }
                            td { code { (v.rules) } }
                        }
                    } }
                } }
            }
        }
    };
    let status = if pg.errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, forms::page(lang, who, title, &pg.errors, body)).into_response())
}

fn figures_table(lang: Lang, live: &SetFigures, draft: &SetFigures, days: usize) -> Markup {
    let per_day = |f: &SetFigures| format!("{:.1}", f.alerts as f64 / days.max(1) as f64);
    let mut reasons: Vec<&str> = live
        .by_reason
        .iter()
        .chain(&draft.by_reason)
        .map(|(r, _)| *r)
        .collect();
    reasons.sort_unstable();
    reasons.dedup();
    let count = |f: &SetFigures, r: &str| {
        f.by_reason
            .iter()
            .find(|(x, _)| *x == r)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    html! {
        div class="scroll" tabindex="0" { table {
            caption { (tr(lang, "lab-side-by-side")) }
            thead { tr {
                th scope="col" { (tr(lang, "lab-measure")) }
                th scope="col" { (tr(lang, "lab-live")) }
                th scope="col" { (tr(lang, "lab-draft")) }
            } }
            tbody {
                tr { th scope="row" { (tr(lang, "lab-alerts")) } td { (live.alerts) } td { (draft.alerts) } }
                tr { th scope="row" { (tr(lang, "lab-alerts-per-day")) } td { (per_day(live)) } td { (per_day(draft)) } }
                tr { th scope="row" { (tr(lang, "lab-people-flagged")) } td { (live.flagged) } td { (draft.flagged) } }
                @for r in &reasons {
                    tr { th scope="row" { "— " (codes::Reason::label_of(r, lang)) } td { (count(live, r)) } td { (count(draft, r)) } }
                }
            }
        } }
    }
}

fn result(lang: Lang, tz: chrono_tz::Tz, r: &Replay) -> Markup {
    let days = r.live.by_day.len();
    let hours = |h: f64| -> String {
        if h.abs() >= 48.0 {
            format!("{:.1} {}", h / 24.0, tr(lang, "lab-days-unit"))
        } else {
            format!("{h:.0} {}", tr(lang, "lab-hours-unit"))
        }
    };
    let max_day = r
        .live
        .by_day
        .iter()
        .chain(&r.draft.by_day)
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0)
        .max(1);
    html! {
        section class="card" aria-labelledby="lab-result" id="result" {
            h2 id="lab-result" { (tr(lang, "lab-result")) }
            p {
                (r.from) " – " (r.to) " · " (r.people) " " (tr(lang, "lab-people")) " · "
                (r.readings) " " (tr(lang, "lab-readings")) " · "
                (format!("{:.1} s", r.elapsed.as_secs_f64()))
            }
            p { (tr(lang, "lab-alert-meaning")) }
            (figures_table(lang, &r.live, &r.draft, days))
            @if let Some(m) = r.median_earlier_hours {
                p { strong { (tr(lang, "lab-median-earlier")) ": " (hours(m)) } }
            }
            div class="scroll" tabindex="0" { table {
                caption { (tr(lang, "lab-alerts-by-day")) }
                thead { tr {
                    th scope="col" { (tr(lang, "lab-day")) }
                    th scope="col" { (tr(lang, "lab-live")) }
                    th scope="col" { (tr(lang, "lab-draft")) }
                } }
                tbody {
                    @for ((d, l), (_, dr)) in r.live.by_day.iter().zip(&r.draft.by_day) {
                        tr {
                            td { (d.format("%m-%d")) }
                            td { (l) " " span aria-hidden="true" class="bar" style=(format!("display:inline-block;height:.6em;background:#0b57d0;width:{}px", l * 80 / max_day)) {} }
                            td { (dr) " " span aria-hidden="true" class="bar" style=(format!("display:inline-block;height:.6em;background:#b06000;width:{}px", dr * 80 / max_day)) {} }
                        }
                    }
                }
            } }
            h3 { (tr(lang, "lab-to-inspect")) " (" (r.differing) ")" }
            @if r.people_list.is_empty() {
                p class="muted" { (tr(lang, "lab-no-differences")) }
            } @else {
                @if r.differing > r.people_list.len() {
                    p class="muted" { (tr(lang, "lab-list-cut")) " " (r.people_list.len()) }
                }
                div class="scroll" tabindex="0" { table {
                    thead { tr {
                        th scope="col" { (tr(lang, "lab-person")) }
                        th scope="col" { (tr(lang, "lab-live")) }
                        th scope="col" { (tr(lang, "lab-draft")) }
                        th scope="col" { (tr(lang, "lab-earlier")) }
                    } }
                    tbody { @for d in &r.people_list {
                        tr {
                            td { a href=(format!("/persons/{}?tab=observation", d.person_id)) { "#" (d.person_id) } }
                            td { (flag(lang, tz, d.live.as_ref())) }
                            td { (flag(lang, tz, d.draft.as_ref())) }
                            td {
                                @match (d.earlier_hours, &d.live, &d.draft) {
                                    (Some(h), _, _) => { (hours(h)) }
                                    (None, None, Some(_)) => { (tr(lang, "lab-only-draft")) }
                                    _ => { (tr(lang, "lab-only-live")) }
                                }
                            }
                        }
                    } }
                } }
            }
        }
    }
}

/// People in the synthetic cohort the lab tries rules on.
const MODEL_PEOPLE: usize = 20_000;

fn model_result(lang: Lang, f: &[model::Figures; 2]) -> Markup {
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    let days = |x: Option<f64>| x.map(|d| format!("{d:.2}")).unwrap_or_else(|| "—".into());
    let both = |g: &dyn Fn(&model::Figures) -> String| (g(&f[0]), g(&f[1]));
    let rows = [
        ("lab-model-sensitivity", both(&|x| pct(x.sensitivity))),
        ("lab-model-before-critical", both(&|x| pct(x.early))),
        ("lab-model-median-lead", both(&|x| days(x.median_lead_days))),
        ("lab-model-mean-lead", both(&|x| days(x.mean_lead_days))),
        (
            "lab-model-earlier-by-a-day",
            both(&|x| pct(x.earlier_by_a_day)),
        ),
        (
            "lab-model-alerts",
            both(&|x| format!("{:.1}", x.alerts_per_1000_per_day)),
        ),
        ("lab-model-true-alarms", both(&|x| pct(x.true_alarm_share))),
    ];
    html! {
        section class="card" aria-labelledby="lab-model" id="model" {
            h2 id="lab-model" { (tr(lang, "lab-model-title")) }
            p { (tr(lang, "lab-model-intro")) " (" (MODEL_PEOPLE) " " (tr(lang, "lab-people")) ")" }
            div class="scroll" tabindex="0" { table {
                thead { tr {
                    th scope="col" { (tr(lang, "lab-measure")) }
                    th scope="col" { (tr(lang, "lab-live")) }
                    th scope="col" { (tr(lang, "lab-draft")) }
                } }
                tbody { @for (key, (live, draft)) in &rows {
                    tr { th scope="row" { (tr(lang, key)) } td { (live) } td { (draft) } }
                } }
            } }
            p class="muted" { (tr(lang, "lab-model-caveat")) }
        }
    }
}

fn flag(lang: Lang, tz: chrono_tz::Tz, f: Option<&mimamori_core::rules::lab::Flag>) -> Markup {
    match f {
        None => html! { span class="muted" { "—" } },
        Some(f) => html! {
            (f.at.with_timezone(&tz).format("%m-%d %H:%M"))
            ul { @for (reason, detail) in &f.reasons {
                li { (codes::Reason::label_of(reason, lang)) br; span class="muted" { (detail) } }
            } }
        },
    }
}

async fn show(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Query(q): Query<ShowQuery>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    let centre = mimamori_core::store::staff::health_centre(&s.db, who.health_centre_id).await?;
    let on = chrono::NaiveDate::parse_from_str(q.on.trim(), "%Y-%m-%d")
        .unwrap_or_else(|_| super::centre_today(&centre.time_zone));
    let notice = q
        .activated
        .parse::<i32>()
        .ok()
        .map(|v| format!("{} {v}", tr(lang, "lab-activated-notice")));
    render(
        &s,
        &who,
        lang,
        Page {
            draft: BTreeMap::new(),
            days: "30".into(),
            note: String::new(),
            errors: Vec::new(),
            result: None,
            model: None,
            notice,
            on,
        },
    )
    .await
}

/// A posted lab form, checked (role, CSRF) and read.
struct Posted {
    draft: BTreeMap<String, String>,
    days: String,
    note: String,
    /// The centre's local date.
    today: chrono::NaiveDate,
}

impl Posted {
    async fn read(
        s: &AppState,
        who: &CurrentStaff,
        form: &BTreeMap<String, String>,
    ) -> Result<Posted, HtmlError> {
        who.require_health_centre()?;
        who.check_csrf(form.get("csrf").map(String::as_str).unwrap_or(""))?;
        let centre =
            mimamori_core::store::staff::health_centre(&s.db, who.health_centre_id).await?;
        let field = |k: &str| form.get(k).map(|v| v.trim().to_string());
        Ok(Posted {
            draft: KEYS
                .iter()
                .filter_map(|(k, _)| field(k).map(|v| (k.to_string(), v)))
                .collect(),
            days: field("days").unwrap_or_else(|| "30".into()),
            note: field("note").unwrap_or_default(),
            today: super::centre_today(&centre.time_zone),
        })
    }

    /// The page again with the draft kept, and what came of it.
    async fn page(
        self,
        s: &AppState,
        who: &CurrentStaff,
        lang: Lang,
        errors: Vec<FieldError>,
        result: Option<&Replay>,
        model: Option<[model::Figures; 2]>,
    ) -> Result<Response, HtmlError> {
        let on = self.today;
        render(
            s,
            who,
            lang,
            Page {
                draft: self.draft,
                days: self.days,
                note: self.note,
                errors,
                result,
                model,
                notice: None,
                on,
            },
        )
        .await
    }
}

async fn replay(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Form(form): Form<BTreeMap<String, String>>,
) -> Result<Response, HtmlError> {
    let p = Posted::read(&s, &who, &form).await?;
    let mut errors = Vec::new();
    let mut result = None;
    match (checked_draft(&s, &p.draft), p.days.parse::<u32>()) {
        (Err(e), _) => errors = e,
        (_, Err(_)) => errors.push(FieldError::new("days", "err-lab-days".into(), Vec::new())),
        (Ok((over, _)), Ok(n)) => {
            match rulelab::replay(&s.db, &who.viewer(), &s.rules, &over, n, p.today).await {
                Ok(r) => result = Some(r),
                Err(e) => errors = errors_of(e)?,
            }
        }
    }
    p.page(&s, &who, lang, errors, result.as_ref(), None).await
}

async fn activate(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Form(form): Form<BTreeMap<String, String>>,
) -> Result<Response, HtmlError> {
    let p = Posted::read(&s, &who, &form).await?;
    let errors = match checked_draft(&s, &p.draft) {
        Err(e) => e,
        Ok((over, _)) => {
            match rulelab::activate(&s.db, &who.viewer(), &s.rules, &over, &p.note).await {
                Ok(v) => return Ok(Redirect::to(&format!("/rules?activated={v}")).into_response()),
                Err(e) => errors_of(e)?,
            }
        }
    };
    p.page(&s, &who, lang, errors, None, None).await
}

/// The live rules and the draft on a synthetic cohort of the population model (no personal
/// data read): sensitivity for deterioration, lead over the live rules, alerts per 1,000
/// people per day.
async fn on_model(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Form(form): Form<BTreeMap<String, String>>,
) -> Result<Response, HtmlError> {
    let p = Posted::read(&s, &who, &form).await?;
    let (errors, figures) = match checked_draft(&s, &p.draft) {
        Err(e) => (e, None),
        Ok((_, draft)) => {
            let live = rulelab::centre_rules(&s.db, who.health_centre_id, &s.rules).await?;
            let today = p.today;
            let f = tokio::task::spawn_blocking(move || {
                let cohort =
                    model::cohort(MODEL_PEOPLE, today - chrono::Duration::days(29), 30, 2026);
                model::evaluate(&cohort, &[&live, &draft])
            })
            .await
            .map_err(|_| Error::Internal("the model run failed".into()))?;
            (Vec::new(), Some([f[0].clone(), f[1].clone()]))
        }
    };
    p.page(&s, &who, lang, errors, None, figures).await
}
