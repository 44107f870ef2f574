//! Statistics [統計], publication documents [公表資料] and open data — for the roles that may
//! see figures (health centre: its own; prefecture: its centres; analysis centre: the
//! centres that granted it; ministry: all). Every page reads the kept daily figures
//! (`store::stats`), never a person; the open-data file is the one place that reads case
//! rows, page by page, and it writes nothing that identifies anyone. Also the counts-only
//! daily report [日次報告] of medical institutions and the line-list export.
use axum::{
    Form, Router,
    body::Body,
    extract::{ConnectInfo, Query, State},
    http::header,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chrono::{Duration, NaiveDate};
use maud::{Markup, html};
use mimamori_core::{
    Error,
    access::{Role, Viewer},
    domain::Lang,
    stats::{
        AGE_BANDS, Measure, RESIDENCES, SEVERITIES, SEXES,
        opendata::{self, CsvChunks, Encoding},
        suppress::{self, Table},
    },
    store::{
        persons,
        stats::{self, Area, Centre},
    },
};
use serde::Deserialize;

use crate::web::{
    AppState,
    auth::CurrentStaff,
    error::{AppError, HtmlError},
    i18n::{UiLang, tr},
    japan_today, layout,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stats", get(page))
        .route("/stats.csv", get(daily_csv))
        .route("/stats/press", get(press))
        .route("/stats/opendata/patients.csv", get(opendata_patients))
        .route("/stats/opendata/tests.csv", get(opendata_tests))
        .route("/stats/grants", post(grant))
        .route("/stats/publication", post(publication))
        .route("/daily-report", get(daily_form).post(daily_save))
        .route("/persons.csv", get(line_list))
}

/// The same exports under the API prefix (session cookie as for every API call).
pub fn api_router() -> Router<AppState> {
    Router::new()
        .route("/statistics.csv", get(daily_csv))
        .route("/opendata/patients.csv", get(opendata_patients))
        .route("/opendata/tests.csv", get(opendata_tests))
        .route("/persons.csv", get(line_list))
}

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    centre: String,
    /// A prefecture (JIS code) of the viewer's area.
    #[serde(default)]
    prefecture: String,
    #[serde(default)]
    day: String,
    #[serde(default)]
    encoding: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    after: String,
}

/// What a request asks for, checked: the area within the viewer's, the period.
struct Asked {
    area: Area,
    centres: Vec<Centre>,
    centre: Option<i64>,
    prefecture: Option<String>,
    /// JIS code → prefecture name.
    names: std::collections::HashMap<String, String>,
    from: NaiveDate,
    to: NaiveDate,
}

async fn asked(s: &AppState, v: &Viewer, f: &Filter, default_days: i64) -> Result<Asked, AppError> {
    let area = stats::area_of(&s.db, v).await?;
    let centres = stats::centres(&s.db, &area).await?;
    let today = japan_today();
    let mut c = mimamori_core::error::Collect::default();
    let date = |c: &mut mimamori_core::error::Collect,
                field: &'static str,
                v: &str,
                default: NaiveDate| {
        if v.trim().is_empty() {
            return default;
        }
        match v.trim().parse::<NaiveDate>() {
            Ok(d) => d,
            Err(_) => {
                c.push(
                    field,
                    "err-write-the-date-as-yyyy-mm-dd-for-example-2026-11",
                );
                default
            }
        }
    };
    let to = date(&mut c, "to", &f.to, today);
    let from = date(
        &mut c,
        "from",
        &f.from,
        to - Duration::days(default_days - 1),
    );
    if from > to {
        c.push("to", "err-period-to-before-from");
    }
    let centre = match f.centre.trim() {
        "" => None,
        x => match x.parse::<i64>() {
            Ok(id) if area.contains(id) => Some(id),
            _ => {
                c.push(
                    "centre",
                    "err-not-a-health-centre-you-may-report-to-your-own",
                );
                None
            }
        },
    };
    let prefecture = match f.prefecture.trim() {
        "" => None,
        p if centres.iter().any(|c| c.prefecture == p) => Some(p.to_string()),
        _ => {
            c.push("prefecture", "err-not-a-prefecture-of-your-area");
            None
        }
    };
    c.finish()?;
    // At most a year and a week per request (the 7-day average reads 6 days before).
    let from = from.max(to - Duration::days(371));
    let area = match (centre, &prefecture) {
        (Some(id), _) => Area::Centres(vec![id]),
        (None, Some(p)) => Area::Centres(
            centres
                .iter()
                .filter(|c| &c.prefecture == p)
                .map(|c| c.id)
                .collect(),
        ),
        (None, None) => area,
    };
    let names = mimamori_core::store::staff::prefectures(&s.db)
        .await?
        .into_iter()
        .collect();
    Ok(Asked {
        area,
        centres,
        centre,
        prefecture,
        names,
        from,
        to,
    })
}

fn label(lang: Lang, dim: &str, v: &str) -> String {
    let key = match (dim, v) {
        ("age", "u10") => "stats-age-u10",
        ("age", "10s") => "stats-age-10s",
        ("age", "20s") => "stats-age-20s",
        ("age", "30s") => "stats-age-30s",
        ("age", "40s") => "stats-age-40s",
        ("age", "50s") => "stats-age-50s",
        ("age", "60s") => "stats-age-60s",
        ("age", "70s") => "stats-age-70s",
        ("age", "80s") => "stats-age-80s",
        ("age", "90+") => "stats-age-90plus",
        ("age", _) => "stats-age-unknown",
        ("sex", "male") => "stats-sex-male",
        ("sex", "female") => "stats-sex-female",
        ("sex", "other") => "stats-sex-other",
        ("sex", _) => "stats-sex-unknown",
        ("sev", "asymptomatic") => "stats-sev-asymptomatic",
        ("sev", "mild") => "stats-sev-mild",
        ("sev", "moderate") => "stats-sev-moderate",
        ("sev", "severe") => "stats-sev-severe",
        ("sev", _) => "stats-sev-unknown",
        ("res", "home") => "stats-res-home",
        ("res", "hospital") => "stats-res-hospital",
        ("res", "lodging") => "stats-res-lodging",
        ("res", "welfare") => "stats-res-welfare",
        ("res", "other") => "stats-res-other",
        ("res", _) => "stats-res-unknown",
        (_, "") => "stats-unknown",
        _ => return v.to_string(),
    };
    tr(lang, key).to_string()
}

/// The heading of a breakdown.
fn dim_title(lang: Lang, dim: &str) -> &'static str {
    tr(
        lang,
        match dim {
            "age" => "stats-dim-age",
            "sex" => "stats-dim-sex",
            "sev" => "stats-dim-sev",
            _ => "stats-dim-muni",
        },
    )
}

fn query_string(a: &Asked, extra: &[(&str, String)]) -> String {
    let mut q = vec![
        ("from", a.from.to_string()),
        ("to", a.to.to_string()),
        (
            "centre",
            a.centre.map(|c| c.to_string()).unwrap_or_default(),
        ),
    ];
    q.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    serde_urlencoded::to_string(q).unwrap_or_default()
}

/// Daily sums of the period (and six days before, for the 7-day average).
struct Daily {
    days: Vec<NaiveDate>,
    by: std::collections::HashMap<(String, NaiveDate), i64>,
}

impl Daily {
    fn get(&self, m: Measure, d: NaiveDate) -> i64 {
        self.by
            .get(&(m.as_str().to_string(), d))
            .copied()
            .unwrap_or(0)
    }
    fn avg7(&self, m: Measure, d: NaiveDate) -> f64 {
        (0..7)
            .map(|i| self.get(m, d - Duration::days(i)))
            .sum::<i64>() as f64
            / 7.0
    }
    fn sum(&self, m: Measure) -> i64 {
        self.days.iter().map(|d| self.get(m, *d)).sum()
    }
}

const DAILY_MEASURES: [Measure; 10] = [
    Measure::CaseReported,
    Measure::CaseOnset,
    Measure::Tested,
    Measure::Positive,
    Measure::Admitted,
    Measure::Recovered,
    Measure::Death,
    Measure::ContactNew,
    Measure::Escalation,
    Measure::EscalationUrgent,
];

async fn daily(s: &AppState, a: &Asked) -> Result<Daily, AppError> {
    let points = stats::series(
        &s.db,
        &a.area,
        &DAILY_MEASURES,
        &["total"],
        a.from - Duration::days(6),
        a.to,
    )
    .await?;
    let mut days = Vec::new();
    let mut d = a.from;
    while d <= a.to {
        days.push(d);
        d += Duration::days(1);
    }
    Ok(Daily {
        days,
        by: points
            .into_iter()
            .map(|p| ((p.measure, p.day), p.n))
            .collect(),
    })
}

/// The epidemic curve: new cases per report day (bars), their 7-day average, and cases by
/// onset date (line). SVG drawn on the server, with a text summary for screen readers.
fn curve(lang: Lang, d: &Daily) -> Markup {
    let (w, h, left, bottom, top) = (760.0, 260.0, 48.0, 36.0, 16.0);
    let n = d.days.len().max(1) as f64;
    let max = d
        .days
        .iter()
        .map(|x| {
            d.get(Measure::CaseReported, *x)
                .max(d.get(Measure::CaseOnset, *x))
        })
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let plot_w = w - left - 8.0;
    let plot_h = h - top - bottom;
    let bw = plot_w / n;
    let y = |v: f64| top + plot_h - v / max * plot_h;
    let x = |i: usize| left + i as f64 * bw;
    let line = |f: &dyn Fn(NaiveDate) -> f64| {
        d.days
            .iter()
            .enumerate()
            .map(|(i, day)| {
                format!(
                    "{}{:.1},{:.1}",
                    if i == 0 { "M" } else { "L" },
                    x(i) + bw / 2.0,
                    y(f(*day))
                )
            })
            .collect::<String>()
    };
    let avg = line(&|day| d.avg7(Measure::CaseReported, day));
    let onset = line(&|day| d.get(Measure::CaseOnset, day) as f64);
    let total = d.sum(Measure::CaseReported);
    let peak = d
        .days
        .iter()
        .max_by_key(|x| d.get(Measure::CaseReported, **x))
        .copied()
        .unwrap_or(d.days[0]);
    let step = (d.days.len() / 8).max(1);
    html! {
        figure {
            svg viewBox=(format!("0 0 {w} {h}")) role="img" aria-labelledby="curve-title curve-desc" {
                title id="curve-title" { (tr(lang, "stats-curve-title")) }
                desc id="curve-desc" {
                    (format!("{} {} – {}: {}; {} {} ({})", tr(lang, "stats-new-cases"), d.days[0], d.days[d.days.len() - 1], total,
                        tr(lang, "stats-peak"), peak, d.get(Measure::CaseReported, peak)))
                }
                line x1=(left) y1=(top + plot_h) x2=(w - 8.0) y2=(top + plot_h) stroke="#555" {}
                @for k in 0..=4 {
                    @let v = max * k as f64 / 4.0;
                    text x=(left - 6.0) y=(y(v) + 4.0) text-anchor="end" font-size="11" fill="#333" { (format!("{v:.0}")) }
                    line x1=(left) y1=(y(v)) x2=(w - 8.0) y2=(y(v)) stroke="#e3e6ea" {}
                }
                @for (i, day) in d.days.iter().enumerate() {
                    @let v = d.get(Measure::CaseReported, *day) as f64;
                    rect x=(format!("{:.1}", x(i) + bw * 0.1)) y=(format!("{:.1}", y(v))) width=(format!("{:.1}", bw * 0.8)) height=(format!("{:.1}", top + plot_h - y(v))) fill="#7aa7e0" {}
                    @if i % step == 0 {
                        text x=(format!("{:.1}", x(i) + bw / 2.0)) y=(h - bottom + 16.0) text-anchor="middle" font-size="11" fill="#333" { (day.format("%m/%d")) }
                    }
                }
                path d=(avg) fill="none" stroke="#12355b" stroke-width="2.5" {}
                path d=(onset) fill="none" stroke="#b3261e" stroke-width="1.5" stroke-dasharray="5 3" {}
            }
            figcaption {
                span style="color:#4a7fc1" { "■ " } (tr(lang, "stats-by-report-date")) " · "
                span style="color:#12355b" { "━ " } (tr(lang, "stats-7-day-average")) " · "
                span style="color:#b3261e" { "╌ " } (tr(lang, "stats-by-onset-date"))
            }
        }
    }
}

fn filter_form(lang: Lang, a: &Asked, action: &str, with_day: Option<NaiveDate>) -> Markup {
    html! {
        form method="get" action=(action) class="filters card" {
            @if let Some(day) = with_day {
                label { (tr(lang, "stats-day")) input type="date" name="day" value=(day); }
            } @else {
                label { (tr(lang, "stats-from")) input type="date" name="from" value=(a.from); }
                label { (tr(lang, "stats-to")) input type="date" name="to" value=(a.to); }
            }
            @let prefectures = {
                let mut p: Vec<&str> = a.centres.iter().map(|c| c.prefecture.as_str()).filter(|p| !p.is_empty()).collect();
                p.sort();
                p.dedup();
                p
            };
            @if prefectures.len() > 1 {
                label { (tr(lang, "stats-prefecture"))
                    select name="prefecture" {
                        option value="" { (tr(lang, "stats-whole-area")) }
                        @for p in &prefectures {
                            option value=(p) selected[a.prefecture.as_deref() == Some(*p)] { (a.names.get(*p).map(String::as_str).unwrap_or(p)) }
                        }
                    }
                }
            }
            @if a.centres.len() > 1 || a.centre.is_some() {
                label { (tr(lang, "stats-area"))
                    select name="centre" {
                        option value="" { (tr(lang, "stats-whole-area")) }
                        @for c in &a.centres {
                            option value=(c.id) selected[a.centre == Some(c.id)] { (if lang == Lang::En && !c.name_en.is_empty() { &c.name_en } else { &c.name }) }
                        }
                    }
                }
            }
            button type="submit" { (tr(lang, "stats-show")) }
        }
    }
}

async fn page(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Query(f): Query<Filter>,
) -> Result<Html<String>, HtmlError> {
    let v = who.viewer();
    let a = asked(&s, &v, &f, 28).await?;
    let d = daily(&s, &a).await?;
    let under = stats::under_observation(&s.db, &a.area, true, "total", a.from, a.to).await?;
    let contacts = stats::under_observation(&s.db, &a.area, false, "total", a.to, a.to).await?;
    let sev = stats::under_observation(&s.db, &a.area, true, "sev", a.from, a.to).await?;
    let res = stats::under_observation(&s.db, &a.area, true, "res", a.from, a.to).await?;
    let answers = stats::answers(&s.db, &a.area, a.from, a.to).await?;
    let mut breakdowns = Vec::new();
    for dim in ["age", "sex", "muni"] {
        breakdowns.push((
            dim,
            stats::totals(&s.db, &a.area, Measure::CaseReported, dim, a.from, a.to).await?,
        ));
    }
    let (refreshed, behind) = stats::freshness(&s.db).await?;
    let grants = if who.role == Role::HealthCentreStaff {
        stats::grants(&s.db, who.health_centre_id).await?
    } else {
        Vec::new()
    };
    let under_on = |day: NaiveDate| {
        under
            .iter()
            .filter(|u| u.0 == day)
            .map(|u| u.2)
            .sum::<i64>()
    };
    let level = |rows: &[(NaiveDate, String, i64)], day: NaiveDate, v: &str| {
        rows.iter()
            .find(|r| r.0 == day && r.1 == v)
            .map_or(0, |r| r.2)
    };
    let answer_of = |day: NaiveDate| answers.iter().find(|r| r.0 == day).map(|r| (r.1, r.2));
    let qs = query_string(&a, &[]);
    let cards = [
        ("stats-new-cases", d.sum(Measure::CaseReported)),
        ("stats-under-observation", under_on(a.to)),
        (
            "stats-contacts-under-observation",
            contacts.iter().map(|c| c.2).sum(),
        ),
        ("stats-tested", d.sum(Measure::Tested)),
        ("stats-positive", d.sum(Measure::Positive)),
        ("stats-admitted", d.sum(Measure::Admitted)),
        ("stats-recovered", d.sum(Measure::Recovered)),
        ("stats-deaths", d.sum(Measure::Death)),
    ];
    let body = html! {
        (filter_form(lang, &a, "/stats", None))
        p class="muted" role="status" {
            (tr(lang, "stats-as-of")) " "
            @match refreshed {
                Some(t) => { (t.with_timezone(&chrono_tz::Asia::Tokyo).format("%Y-%m-%d %H:%M:%S")) }
                None => { "—" }
            }
            @if behind { " — " (tr(lang, "stats-catching-up")) }
        }
        p class="actions" {
            a class="button" href=(format!("/stats/press?day={}&centre={}", a.to, a.centre.map(|c| c.to_string()).unwrap_or_default())) { (tr(lang, "stats-press-table")) }
            a class="button" href=(format!("/stats.csv?{qs}")) { (tr(lang, "stats-daily-csv")) }
            a class="button" href=(format!("/stats/opendata/patients.csv?{qs}")) { (tr(lang, "stats-opendata-patients")) }
            a class="button" href=(format!("/stats/opendata/patients.csv?{qs}&encoding=cp932")) { (tr(lang, "stats-opendata-patients")) " (Shift_JIS)" }
            a class="button" href=(format!("/stats/opendata/tests.csv?{qs}")) { (tr(lang, "stats-opendata-tests")) }
        }
        section aria-labelledby="key" {
            h2 id="key" { (tr(lang, "stats-key-figures")) " " span class="muted" { (a.from) " – " (a.to) } }
            dl class="kv card" {
                @for (k, n) in cards { dt { (tr(lang, k)) } dd { (n) } }
            }
        }
        section aria-labelledby="curve" {
            h2 id="curve" { (tr(lang, "stats-curve-title")) }
            (curve(lang, &d))
        }
        section {
            h2 id="days" { (tr(lang, "stats-by-day")) }
            div style="overflow-x:auto" tabindex="0" role="region" aria-labelledby="days" {
                table {
                    thead { tr {
                        th scope="col" { (tr(lang, "stats-day")) }
                        th scope="col" { (tr(lang, "stats-new-cases")) }
                        th scope="col" { (tr(lang, "stats-7-day-average")) }
                        th scope="col" { (tr(lang, "stats-by-onset-date")) }
                        th scope="col" { (tr(lang, "stats-tested")) }
                        th scope="col" { (tr(lang, "stats-positive")) }
                        th scope="col" { (tr(lang, "stats-under-observation")) }
                        th scope="col" { (tr(lang, "stats-admitted")) }
                        th scope="col" { (tr(lang, "stats-recovered")) }
                        th scope="col" { (tr(lang, "stats-deaths")) }
                        th scope="col" { (tr(lang, "stats-new-contacts")) }
                        th scope="col" { (tr(lang, "stats-answer-rate")) }
                        th scope="col" { (tr(lang, "stats-escalations")) }
                    } }
                    tbody {
                        @for day in d.days.iter().rev() {
                            tr {
                                th scope="row" { (day) }
                                td { (d.get(Measure::CaseReported, *day)) }
                                td { (format!("{:.1}", d.avg7(Measure::CaseReported, *day))) }
                                td { (d.get(Measure::CaseOnset, *day)) }
                                td { (d.get(Measure::Tested, *day)) }
                                td { (d.get(Measure::Positive, *day)) }
                                td { (under_on(*day)) }
                                td { (d.get(Measure::Admitted, *day)) }
                                td { (d.get(Measure::Recovered, *day)) }
                                td { (d.get(Measure::Death, *day)) }
                                td { (d.get(Measure::ContactNew, *day)) }
                                td { @match answer_of(*day) {
                                    Some((due, ans)) if due > 0 => { (format!("{:.0}%", ans as f64 * 100.0 / due as f64)) " " span class="muted" { "(" (ans) "/" (due) ")" } }
                                    _ => { "—" }
                                } }
                                td { (d.get(Measure::Escalation, *day))
                                    @let u = d.get(Measure::EscalationUrgent, *day);
                                    @if u > 0 { " " span class="prio prio-urgent" { (tr(lang, "stats-urgent")) " " (u) } } }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="breakdowns" {
            h2 id="breakdowns" { (tr(lang, "stats-new-cases-by")) }
            div style="display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));gap:1rem" {
                @for (dim, rows) in &breakdowns {
                    table {
                        caption { (dim_title(lang, dim)) }
                        thead { tr { th scope="col" { (dim_title(lang, dim)) } th scope="col" { (tr(lang, "stats-count")) } } }
                        tbody {
                            @for (v, n) in ordered(dim, rows) {
                                tr { th scope="row" { (label(lang, dim, &v)) } td { (n) } }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 id="sevres" { (tr(lang, "stats-severity-residence")) }
            div style="overflow-x:auto" tabindex="0" role="region" aria-labelledby="sevres" {
                table {
                    thead { tr {
                        th scope="col" { (tr(lang, "stats-day")) }
                        @for v in SEVERITIES { th scope="col" { (label(lang, "sev", v)) } }
                        @for v in RESIDENCES { th scope="col" { (label(lang, "res", v)) } }
                    } }
                    tbody {
                        @for day in d.days.iter().rev() {
                            tr {
                                th scope="row" { (day) }
                                @for v in SEVERITIES { td { (level(&sev, *day, v)) } }
                                @for v in RESIDENCES { td { (level(&res, *day, v)) } }
                            }
                        }
                    }
                }
            }
        }
        @if who.role == Role::HealthCentreStaff {
            section aria-labelledby="grants" class="card" {
                h2 id="grants" { (tr(lang, "stats-grants")) }
                p class="muted" { (tr(lang, "stats-grants-help")) }
                @if grants.is_empty() { p { (tr(lang, "stats-no-analysis-centres")) } }
                @for (id, name, on) in &grants {
                    form method="post" action="/stats/grants" class="actions" {
                        input type="hidden" name="csrf" value=(who.csrf);
                        input type="hidden" name="organisation_id" value=(id);
                        input type="hidden" name="on" value=(if *on { "0" } else { "1" });
                        span { (name) " — " (if *on { tr(lang, "stats-granted") } else { tr(lang, "stats-not-granted") }) }
                        button type="submit" class=(if *on { "secondary" } else { "" }) { (if *on { tr(lang, "stats-revoke") } else { tr(lang, "stats-grant") }) }
                    }
                }
            }
        }
    };
    Ok(layout::page(lang, &who, tr(lang, "stats-title"), body))
}

/// Breakdown values in their natural order (age bands, sexes…; municipalities by count).
fn ordered(dim: &str, rows: &[(String, i64)]) -> Vec<(String, i64)> {
    let order: &[&str] = match dim {
        "age" => &AGE_BANDS,
        "sex" => &SEXES,
        "sev" => &SEVERITIES,
        "res" => &RESIDENCES,
        _ => {
            let mut r = rows.to_vec();
            r.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            return r;
        }
    };
    order
        .iter()
        .map(|k| {
            (
                k.to_string(),
                rows.iter().find(|r| r.0 == *k).map_or(0, |r| r.1),
            )
        })
        .collect()
}

/// Daily figures as CSV (UTF-8 with BOM).
async fn daily_csv(
    State(s): State<AppState>,
    who: CurrentStaff,
    Query(f): Query<Filter>,
) -> Result<Response, HtmlError> {
    let a = asked(&s, &who.viewer(), &f, 28).await?;
    let d = daily(&s, &a).await?;
    let under = stats::under_observation(&s.db, &a.area, true, "total", a.from, a.to).await?;
    let answers = stats::answers(&s.db, &a.area, a.from, a.to).await?;
    let enc = Encoding::parse(&f.encoding).ok_or(AppError::Core(Error::invalid(
        "encoding",
        "err-encoding-utf8-or-cp932",
    )))?;
    let mut w = CsvChunks::new(enc);
    let mut header = vec!["day".to_string()];
    header.extend(DAILY_MEASURES.iter().map(|m| m.as_str().to_string()));
    header.extend([
        "under_observation".into(),
        "checkins_due".into(),
        "checkins_answered".into(),
    ]);
    w.row(&header);
    for day in &d.days {
        let mut row = vec![day.to_string()];
        row.extend(DAILY_MEASURES.iter().map(|m| d.get(*m, *day).to_string()));
        row.push(
            under
                .iter()
                .filter(|u| u.0 == *day)
                .map(|u| u.2)
                .sum::<i64>()
                .to_string(),
        );
        let ans = answers.iter().find(|r| r.0 == *day);
        row.push(ans.map_or(0, |r| r.1).to_string());
        row.push(ans.map_or(0, |r| r.2).to_string());
        w.row(&row);
    }
    Ok(csv_response(
        enc,
        &format!("statistics-{}-{}.csv", a.from, a.to),
        Body::from(w.take()),
    ))
}

fn csv_response(enc: Encoding, filename: &str, body: Body) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                format!("text/csv; charset={}", enc.charset()),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

/// The daily press table [公表資料]: new cases of the day by age band, sex, municipality and
/// severity, with the previous day and the same day a week before, small numbers suppressed
/// by the body's rule; an age × sex table for the day. HTML, printable (`?format=print`) or
/// CSV (`?format=csv`).
async fn press(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Query(f): Query<Filter>,
) -> Result<Response, HtmlError> {
    let f = Filter {
        to: f.day.clone(),
        from: f.day.clone(),
        ..f
    };
    let a = asked(&s, &who.viewer(), &f, 1).await?;
    let day = a.to;
    let chosen: Vec<&Centre> = a.centres.iter().filter(|c| a.area.contains(c.id)).collect();
    // The strictest rule among the bodies whose figures are in the table.
    let max = chosen
        .iter()
        .map(|c| c.suppress_max as i64)
        .max()
        .unwrap_or(4);
    let days = [day, day - Duration::days(1), day - Duration::days(7)];
    let mut sections = Vec::new();
    for dim in ["age", "sex", "muni", "sev"] {
        let mut cols = Vec::new();
        for d in days {
            cols.push(stats::totals(&s.db, &a.area, Measure::CaseReported, dim, d, d).await?);
        }
        let mut keys: Vec<String> = match dim {
            "age" => AGE_BANDS.iter().map(|x| x.to_string()).collect(),
            "sex" => SEXES.iter().map(|x| x.to_string()).collect(),
            "sev" => SEVERITIES.iter().map(|x| x.to_string()).collect(),
            _ => {
                let mut k: Vec<String> = cols.iter().flatten().map(|r| r.0.clone()).collect();
                k.sort();
                k.dedup();
                k
            }
        };
        keys.retain(|k| cols.iter().flatten().any(|r| &r.0 == k && r.1 != 0) || dim != "muni");
        let cells: Vec<Vec<i64>> = keys
            .iter()
            .map(|k| {
                cols.iter()
                    .map(|c| c.iter().find(|r| &r.0 == k).map_or(0, |r| r.1))
                    .collect()
            })
            .collect();
        let t = Table {
            cells,
            col_totals: true,
            row_totals: false,
        };
        let shown = if t.cells.is_empty() {
            None
        } else {
            Some(suppress::suppress(&t, max))
        };
        sections.push((dim, keys, shown));
    }
    let cross = stats::totals(&s.db, &a.area, Measure::CaseReported, "age_sex", day, day).await?;
    let sexes = ["male", "female", "other", "unknown"];
    let cross_t = Table {
        cells: AGE_BANDS
            .iter()
            .map(|b| {
                sexes
                    .iter()
                    .map(|x| {
                        cross
                            .iter()
                            .find(|r| r.0 == format!("{b}|{x}"))
                            .map_or(0, |r| r.1)
                    })
                    .collect()
            })
            .collect(),
        col_totals: true,
        row_totals: true,
    };
    let cross_s = suppress::suppress(&cross_t, max);
    let place = if let Some(c) = a
        .centre
        .and_then(|id| a.centres.iter().find(|c| c.id == id))
    {
        c.name.clone()
    } else {
        tr(lang, "stats-whole-area").to_string()
    };
    if f.format == "csv" {
        let mut w = CsvChunks::new(Encoding::parse(&f.encoding).unwrap_or_default());
        w.row([
            "section",
            "category",
            &day.to_string(),
            &days[1].to_string(),
            &days[2].to_string(),
        ]);
        for (dim, keys, shown) in &sections {
            if let Some(sh) = shown {
                for (k, row) in keys.iter().zip(&sh.cells) {
                    let mut r = vec![dim.to_string(), label(Lang::Ja, dim, k)];
                    r.extend(row.iter().map(|c| suppress::text(*c)));
                    w.row(&r);
                }
                let mut r = vec![dim.to_string(), "計".to_string()];
                r.extend(sh.col_totals.iter().map(|c| suppress::text(*c)));
                w.row(&r);
            }
        }
        return Ok(csv_response(
            Encoding::parse(&f.encoding).unwrap_or_default(),
            &format!("press-{day}.csv"),
            Body::from(w.take()),
        ));
    }
    let tables = html! {
        p { (tr(lang, "stats-press-lead")) " " strong { (place) } " — " (day) }
        p class="muted" { (tr(lang, "stats-suppression-note")) " (1–" (max) ")" }
        @for (dim, keys, shown) in &sections {
            @if let Some(sh) = shown {
                table style="margin:1rem 0" {
                    caption style="text-align:left;font-weight:700" { (dim_title(lang, dim)) }
                    thead { tr {
                        th scope="col" { (dim_title(lang, dim)) }
                        th scope="col" { (tr(lang, "stats-that-day")) " " (day) }
                        th scope="col" { (tr(lang, "stats-previous-day")) }
                        th scope="col" { (tr(lang, "stats-week-before")) }
                    } }
                    tbody {
                        @for (k, row) in keys.iter().zip(&sh.cells) {
                            tr { th scope="row" { (label(lang, dim, k)) } @for c in row { td { (suppress::text(*c)) } } }
                        }
                        tr { th scope="row" { (tr(lang, "stats-total")) } @for c in &sh.col_totals { td { strong { (suppress::text(*c)) } } } }
                    }
                }
            }
        }
        table style="margin:1rem 0" {
            caption style="text-align:left;font-weight:700" { (tr(lang, "stats-age-by-sex")) " " (day) }
            thead { tr {
                th scope="col" { (tr(lang, "stats-dim-age")) }
                @for x in sexes { th scope="col" { (label(lang, "sex", x)) } }
                th scope="col" { (tr(lang, "stats-total")) }
            } }
            tbody {
                @for (i, b) in AGE_BANDS.iter().enumerate() {
                    tr { th scope="row" { (label(lang, "age", b)) }
                        @for c in &cross_s.cells[i] { td { (suppress::text(*c)) } }
                        td { (suppress::text(cross_s.row_totals[i])) } }
                }
                tr { th scope="row" { (tr(lang, "stats-total")) }
                    @for c in &cross_s.col_totals { td { (suppress::text(*c)) } }
                    td { strong { (cross_s.grand.unwrap_or(0)) } } }
            }
        }
    };
    if f.format == "print" {
        return Ok(layout::bare_lang(
            lang,
            tr(lang, "stats-press-table"),
            html! {
                main { h1 { (tr(lang, "stats-press-table")) } (tables) }
            },
        )
        .into_response());
    }
    let qs = serde_urlencoded::to_string([
        ("day", day.to_string()),
        (
            "centre",
            a.centre.map(|c| c.to_string()).unwrap_or_default(),
        ),
    ])
    .unwrap_or_default();
    Ok(layout::page(lang, &who, tr(lang, "stats-press-table"), html! {
        (filter_form(lang, &a, "/stats/press", Some(day)))
        p class="actions" {
            a class="button" href=(format!("/stats/press?{qs}&format=print")) { (tr(lang, "stats-printable")) }
            a class="button" href=(format!("/stats/press?{qs}&format=csv")) { "CSV" }
            a class="button" href=(format!("/stats/press?{qs}&format=csv&encoding=cp932")) { "CSV (Shift_JIS)" }
        }
        (tables)
        @if who.role == Role::HealthCentreStaff {
            @if let Some(own) = a.centres.iter().find(|c| c.id == who.health_centre_id) {
                form method="post" action="/stats/publication" class="card" id="rules" {
                    h2 { (tr(lang, "stats-publication-rules")) }
                    input type="hidden" name="csrf" value=(who.csrf);
                    label for="suppress_max" { (tr(lang, "stats-suppress-max")) }
                    input type="number" id="suppress_max" name="suppress_max" value=(own.suppress_max) inputmode="numeric";
                    label for="lg_code" { (tr(lang, "stats-lg-code")) }
                    input type="text" id="lg_code" name="lg_code" value=(own.lg_code) inputmode="numeric" autocomplete="off";
                    button type="submit" { (tr(lang, "stats-save-rules")) }
                }
            }
        }
    }).into_response())
}

/// Rows per page of the streamed files.
const PAGE: i64 = 20_000;

/// 陽性患者属性, streamed page by page.
async fn opendata_patients(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Query(f): Query<Filter>,
) -> Result<Response, HtmlError> {
    let a = asked(&s, &who.viewer(), &f, 28).await?;
    let enc = Encoding::parse(&f.encoding).ok_or(AppError::Core(Error::invalid(
        "encoding",
        "err-encoding-utf8-or-cp932",
    )))?;
    let prefectures = prefecture_names(&s).await?;
    let centres: std::collections::HashMap<i64, Centre> =
        a.centres.iter().map(|c| (c.id, c.clone())).collect();
    let ip = addr.ip().to_string();
    stats::audit_export(&s.db, &who.viewer(), "stats.opendata_patients", Some(&ip)).await?;
    let today = japan_today();
    type Page = mimamori_core::Result<(Vec<stats::PublishedCase>, Option<i64>)>;
    struct St {
        s: AppState,
        a: Asked,
        after: i64,
        n: u64,
        w: CsvChunks,
        done: bool,
        /// The next page, already asked for while this one is written (the database and the
        /// CSV writing overlap).
        next: Option<tokio::task::JoinHandle<Page>>,
    }
    let fetch = move |s: &AppState, a: &Asked, after: i64| {
        let (db, area, from, to) = (s.db.clone(), a.area.clone(), a.from, a.to);
        tokio::spawn(async move {
            stats::published_cases(&db, &area, after, PAGE, from, to, today).await
        })
    };
    let mut w = CsvChunks::new(enc);
    w.row(opendata::PATIENTS_HEADER);
    let start = St {
        s: s.clone(),
        a,
        after: 0,
        n: 0,
        w,
        done: false,
        next: None,
    };
    let body = futures::stream::unfold(start, move |mut st| {
        let prefectures = prefectures.clone();
        let centres = centres.clone();
        async move {
            if st.done {
                return None;
            }
            let handle = match st.next.take() {
                Some(h) => h,
                None => fetch(&st.s, &st.a, st.after),
            };
            let page = handle
                .await
                .unwrap_or_else(|e| Err(mimamori_core::Error::Internal(e.to_string())));
            if let Ok((_, Some(last))) = &page {
                st.next = Some(fetch(&st.s, &st.a, *last));
            }
            let (cases, last) = match page {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "open-data export failed");
                    st.done = true;
                    return Some((Err(std::io::Error::other("export failed")), st));
                }
            };
            for c in &cases {
                st.n += 1;
                let centre = centres.get(&c.centre);
                let pref = centre.map(|x| x.prefecture.as_str()).unwrap_or("");
                let code = centre
                    .and_then(|x| opendata::lg_code(&x.lg_code))
                    .unwrap_or_else(|| opendata::prefecture_code(pref));
                let residence = format!(
                    "{}{}",
                    c.residence_prefecture
                        .as_deref()
                        .and_then(|p| prefectures.get(p))
                        .map(String::as_str)
                        .unwrap_or(""),
                    c.residence_municipality.as_deref().unwrap_or("")
                );
                st.w.row([
                    st.n.to_string(),
                    code,
                    prefectures.get(pref).cloned().unwrap_or_default(),
                    centre.map(|x| x.municipality.clone()).unwrap_or_default(),
                    c.report_day.to_string(),
                    c.onset_date.map(|d| d.to_string()).unwrap_or_default(),
                    residence,
                    opendata::age_label(c.age_band).to_string(),
                    opendata::sex_label(&c.sex).to_string(),
                    String::new(),
                    opendata::state_label(&c.state).to_string(),
                    String::new(),
                    String::new(),
                    if c.released { "1" } else { "0" }.to_string(),
                    if c.repositive {
                        "再陽性".to_string()
                    } else {
                        String::new()
                    },
                ]);
            }
            match last {
                Some(id) => st.after = id,
                None => st.done = true,
            }
            Some((Ok::<_, std::io::Error>(st.w.take()), st))
        }
    });
    Ok(csv_response(
        enc,
        "positive_patients.csv",
        Body::from_stream(body),
    ))
}

async fn prefecture_names(
    s: &AppState,
) -> Result<std::sync::Arc<std::collections::HashMap<String, String>>, AppError> {
    Ok(std::sync::Arc::new(
        mimamori_core::store::staff::prefectures(&s.db)
            .await?
            .into_iter()
            .collect(),
    ))
}

/// 検査実施人数: people tested per day and centre.
async fn opendata_tests(
    State(s): State<AppState>,
    who: CurrentStaff,
    Query(f): Query<Filter>,
) -> Result<Response, HtmlError> {
    let a = asked(&s, &who.viewer(), &f, 28).await?;
    let enc = Encoding::parse(&f.encoding).ok_or(AppError::Core(Error::invalid(
        "encoding",
        "err-encoding-utf8-or-cp932",
    )))?;
    let prefectures = prefecture_names(&s).await?;
    let rows = stats::tested_per_day(&s.db, &a.area, a.from, a.to).await?;
    let mut w = CsvChunks::new(enc);
    w.row(opendata::TESTS_HEADER);
    for (day, centre, n) in rows {
        let c = a.centres.iter().find(|c| c.id == centre);
        let pref = c.map(|x| x.prefecture.as_str()).unwrap_or("");
        w.row([
            day.to_string(),
            c.and_then(|x| opendata::lg_code(&x.lg_code))
                .unwrap_or_else(|| opendata::prefecture_code(pref)),
            prefectures.get(pref).cloned().unwrap_or_default(),
            c.map(|x| x.municipality.clone()).unwrap_or_default(),
            n.to_string(),
            String::new(),
        ]);
    }
    Ok(csv_response(enc, "test_people.csv", Body::from(w.take())))
}

#[derive(Deserialize)]
struct PublicationForm {
    csrf: String,
    #[serde(default)]
    suppress_max: String,
    #[serde(default)]
    lg_code: String,
}

/// A health centre's publication rules: the small-number threshold and its code.
async fn publication(
    State(s): State<AppState>,
    who: CurrentStaff,
    Form(f): Form<PublicationForm>,
) -> Result<Redirect, HtmlError> {
    who.check_csrf(&f.csrf)?;
    stats::set_publication(&s.db, &who.viewer(), &f.suppress_max, &f.lg_code).await?;
    Ok(Redirect::to("/stats/press#rules"))
}

#[derive(Deserialize)]
struct GrantForm {
    csrf: String,
    organisation_id: i64,
    on: String,
}

async fn grant(
    State(s): State<AppState>,
    who: CurrentStaff,
    Form(f): Form<GrantForm>,
) -> Result<Redirect, HtmlError> {
    who.check_csrf(&f.csrf)?;
    stats::grant(&s.db, &who.viewer(), f.organisation_id, f.on == "1").await?;
    Ok(Redirect::to("/stats#grants"))
}

// ---------------------------------------------------------------------------------------
// The daily report [日次報告].

#[derive(Deserialize, Default)]
struct DailyQuery {
    #[serde(default)]
    day: String,
    #[serde(default)]
    saved: String,
}

fn daily_markup(
    lang: Lang,
    who: &CurrentStaff,
    day: &str,
    values: &std::collections::BTreeMap<String, String>,
    errors: &[mimamori_core::FieldError],
    saved: Option<&str>,
) -> Markup {
    html! {
        @if !errors.is_empty() {
            div class="error-summary" role="alert" tabindex="-1" {
                h2 { (tr(lang, "stats-fix-these")) }
                ul { @for e in errors { li { a href=(format!("#{}", e.field)) { (e.message(lang)) } } } }
            }
        }
        @if let Some(n) = saved {
            div class="done" role="status" { p { (tr(lang, "stats-daily-saved")) " " strong { (n) } } }
        }
        p { (tr(lang, "stats-daily-lead")) }
        form method="post" action="/daily-report" class="card" novalidate {
            input type="hidden" name="csrf" value=(who.csrf);
            label for="day" { (tr(lang, "stats-day")) }
            input type="date" id="day" name="day" value=(day) required;
            fieldset {
                legend { (tr(lang, "stats-positives-by-age")) }
                div style="display:grid;grid-template-columns:repeat(auto-fill,minmax(9rem,1fr));gap:.3rem 1rem" {
                    @for b in AGE_BANDS {
                        @let field = stats::field_of(b);
                        div {
                            label for=(field) { (label(lang, "age", b)) }
                            input type="number" min="0" inputmode="numeric" id=(field) name=(field)
                                value=(values.get(b).cloned().unwrap_or_default())
                                aria-invalid=[errors.iter().any(|e| e.field == field).then_some("true")];
                        }
                    }
                }
            }
            button type="submit" { (tr(lang, "stats-daily-save")) }
        }
    }
}

fn may_report(who: &CurrentStaff) -> Result<(), HtmlError> {
    match who.role {
        Role::MedicalInstitution | Role::HealthCentreStaff => Ok(()),
        _ => Err(Error::Forbidden(
            "daily reports are entered by medical institutions and health centres",
        )
        .into()),
    }
}

async fn daily_form(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Query(q): Query<DailyQuery>,
) -> Result<Html<String>, HtmlError> {
    may_report(&who)?;
    let day = q.day.parse::<NaiveDate>().unwrap_or_else(|_| japan_today());
    let have = stats::daily_counts(&s.db, &who.viewer(), who.health_centre_id, day).await?;
    let values = have.into_iter().map(|(b, n)| (b, n.to_string())).collect();
    let saved = (!q.saved.is_empty()).then_some(q.saved.as_str());
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "stats-daily-report"),
        daily_markup(lang, &who, &day.to_string(), &values, &[], saved),
    ))
}

async fn daily_save(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Result<Response, HtmlError> {
    may_report(&who)?;
    who.check_csrf(form.get("csrf").map(String::as_str).unwrap_or(""))?;
    let day = form.get("day").cloned().unwrap_or_default();
    let counts: std::collections::BTreeMap<String, String> = AGE_BANDS
        .iter()
        .map(|b| {
            (
                b.to_string(),
                form.get(stats::field_of(b)).cloned().unwrap_or_default(),
            )
        })
        .collect();
    let input = stats::DailyCountInput {
        day: day.clone(),
        counts: counts.clone(),
        health_centre_id: None,
    };
    match stats::put_daily_counts(&s.db, &who.viewer(), &input, japan_today()).await {
        Ok(total) => {
            Ok(Redirect::to(&format!("/daily-report?day={day}&saved={total}")).into_response())
        }
        Err(Error::Invalid(errors)) => {
            let title = format!(
                "{}: {}",
                tr(lang, "stats-error"),
                tr(lang, "stats-daily-report")
            );
            let mut r = layout::page_titled(
                lang,
                &who,
                &title,
                tr(lang, "stats-daily-report"),
                daily_markup(lang, &who, &day, &counts, &errors, None),
            )
            .into_response();
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------
// The line list, streamed.

/// The viewer's line list as CSV, streamed in keyset pages (`?after=ID` resumes after the last
/// id received). Every person sent is audited.
async fn line_list(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Query(f): Query<Filter>,
) -> Result<Response, HtmlError> {
    let v = who.viewer();
    let enc = Encoding::parse(&f.encoding).ok_or(AppError::Core(Error::invalid(
        "encoding",
        "err-encoding-utf8-or-cp932",
    )))?;
    let after: i64 = f.after.trim().parse().unwrap_or(0);
    // The first page is read before answering, so a refusal is an error page, not a file.
    let ip = addr.ip().to_string();
    let first = persons::export_page(&s.db, &v, after, PAGE, Some(&ip)).await?;
    let mut w = CsvChunks::new(enc);
    w.row([
        "id",
        "name",
        "name_kana",
        "sex",
        "date_of_birth",
        "phone",
        "email",
        "municipality",
        "monitoring_type",
        "status",
        "residence_kind",
        "channel",
        "observation_start",
        "observation_end",
        "health_centre_id",
    ]);
    let db = s.db.clone();
    let body = futures::stream::unfold((Some(first), w, false), move |(page, mut w, done)| {
        let db = db.clone();
        let ip = ip.clone();
        async move {
            if done {
                return None;
            }
            let rows = match page {
                Some(r) => r,
                None => unreachable!(),
            };
            let last = rows.last().map(|r| r.id);
            let full = rows.len() as i64 == PAGE;
            for r in &rows {
                w.row([
                    r.id.to_string(),
                    r.name.clone(),
                    r.name_kana.clone().unwrap_or_default(),
                    r.sex.clone().unwrap_or_default(),
                    r.date_of_birth.map(|d| d.to_string()).unwrap_or_default(),
                    r.phone.clone().unwrap_or_default(),
                    r.email.clone().unwrap_or_default(),
                    r.municipality.clone().unwrap_or_default(),
                    r.monitoring_type.clone(),
                    r.status.clone(),
                    r.residence_kind.clone(),
                    r.channel.clone(),
                    r.observation_start.to_string(),
                    r.observation_end.to_string(),
                    r.health_centre_id.to_string(),
                ]);
            }
            let chunk = w.take();
            if !full {
                return Some((Ok::<_, std::io::Error>(chunk), (None, w, true)));
            }
            match persons::export_page(&db, &v, last.unwrap_or(0), PAGE, Some(&ip)).await {
                Ok(next) => Some((Ok(chunk), (Some(next), w, false))),
                Err(e) => {
                    tracing::error!(error = %e, "line-list export failed");
                    Some((Err(std::io::Error::other("export failed")), (None, w, true)))
                }
            }
        }
    });
    Ok(csv_response(enc, "line-list.csv", Body::from_stream(body)))
}
