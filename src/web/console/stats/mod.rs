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
    i18n::{UiLang, count, tr},
    japan_today, layout,
};

mod curve;
mod daily_report;
mod line_list;
mod open_data;
mod press;

use curve::{DAILY_MEASURES, curve, daily};
use daily_report::{daily_form, daily_save};
use line_list::line_list;
use open_data::{opendata_patients, opendata_tests};
use press::press;

/// Rows per page of the streamed files (open data, line list).
const PAGE: i64 = 20_000;

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

impl Filter {
    /// The file encoding asked for (UTF-8 or CP932), or the field's error.
    fn encoding(&self) -> Result<Encoding, AppError> {
        Encoding::parse(&self.encoding).ok_or(AppError::Core(Error::invalid(
            "encoding",
            "err-encoding-utf8-or-cp932",
        )))
    }
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
                @for (k, n) in cards { dt { (tr(lang, k)) } dd { (count(n)) } }
            }
        }
        section aria-labelledby="curve" {
            h2 id="curve" { (tr(lang, "stats-curve-title")) }
            (curve(lang, &d))
        }
        section {
            h2 id="days" { (tr(lang, "stats-by-day")) }
            div style="overflow-x:auto" tabindex="0" role="region" aria-labelledby="days" {
                // Each column keeps a readable width on a phone; the box scrolls.
                table style="min-width:60rem" {
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
                                td { (count(d.get(Measure::CaseReported, *day))) }
                                td { (format!("{:.1}", d.avg7(Measure::CaseReported, *day))) }
                                td { (count(d.get(Measure::CaseOnset, *day))) }
                                td { (count(d.get(Measure::Tested, *day))) }
                                td { (count(d.get(Measure::Positive, *day))) }
                                td { (count(under_on(*day))) }
                                td { (count(d.get(Measure::Admitted, *day))) }
                                td { (count(d.get(Measure::Recovered, *day))) }
                                td { (count(d.get(Measure::Death, *day))) }
                                td { (count(d.get(Measure::ContactNew, *day))) }
                                td { @match answer_of(*day) {
                                    Some((due, ans)) if due > 0 => { (format!("{:.0}%", ans as f64 * 100.0 / due as f64)) " " span class="muted" { "(" (count(ans)) "/" (count(due)) ")" } }
                                    _ => { "—" }
                                } }
                                td { (count(d.get(Measure::Escalation, *day)))
                                    @let u = d.get(Measure::EscalationUrgent, *day);
                                    @if u > 0 { " " span class="prio prio-urgent" { (tr(lang, "stats-urgent")) " " (count(u)) } } }
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
                                tr { th scope="row" { (label(lang, dim, &v)) } td { (count(n)) } }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 id="sevres" { (tr(lang, "stats-severity-residence")) }
            div style="overflow-x:auto" tabindex="0" role="region" aria-labelledby="sevres" {
                // Each column keeps a readable width on a phone; the box scrolls.
                table style="min-width:60rem" {
                    thead { tr {
                        th scope="col" { (tr(lang, "stats-day")) }
                        @for v in SEVERITIES { th scope="col" { (label(lang, "sev", v)) } }
                        @for v in RESIDENCES { th scope="col" { (label(lang, "res", v)) } }
                    } }
                    tbody {
                        @for day in d.days.iter().rev() {
                            tr {
                                th scope="row" { (day) }
                                @for v in SEVERITIES { td { (count(level(&sev, *day, v))) } }
                                @for v in RESIDENCES { td { (count(level(&res, *day, v))) } }
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
    let enc = f.encoding()?;
    let a = asked(&s, &who.viewer(), &f, 28).await?;
    let d = daily(&s, &a).await?;
    let under = stats::under_observation(&s.db, &a.area, true, "total", a.from, a.to).await?;
    let answers = stats::answers(&s.db, &a.area, a.from, a.to).await?;
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
