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

/// Day × symptom grid: answered yes / no / not asked / missed; urgent signs highlighted.
fn symptom_grid(
    lang: Lang,
    flow: &Flow,
    tz: chrono_tz::Tz,
    days: &[NaiveDate],
    obs: &[Observation],
    missed: &[NaiveDate],
) -> Markup {
    // Rows: each yes/no question, then each voice group some call answered as a whole
    // (a "yes" there does not say which member), as (id, label, urgent).
    let mut rows: Vec<(String, String, bool)> = flow
        .questions
        .iter()
        .filter(|q| q.kind == QuestionKind::YesNo)
        .map(|q| {
            (
                q.id.get_ref().clone(),
                flow.text(q, lang).to_string(),
                q.urgent,
            )
        })
        .collect();
    // Per day, the answers of that day (any yes wins) and the last choice per question.
    let mut by_day: BTreeMap<NaiveDate, BTreeMap<String, bool>> = BTreeMap::new();
    let mut choices_by_day: BTreeMap<NaiveDate, BTreeMap<String, String>> = BTreeMap::new();
    for o in obs {
        let d = o.observed_at.with_timezone(&tz).date_naive();
        let e = by_day.entry(d).or_default();
        for (k, v) in o.symptom_map() {
            let cur = e.entry(k).or_insert(false);
            *cur |= v;
        }
        choices_by_day.entry(d).or_default().extend(o.choice_map());
    }
    for item in flow.voice_items.iter().filter(|i| !i.members.is_empty()) {
        if by_day.values().any(|m| m.contains_key(&item.id)) {
            rows.push((
                item.id.clone(),
                format!(
                    "{}{}",
                    tr(lang, "call--console-person"),
                    flow.group_text(&item.id, lang)
                ),
                item.urgent,
            ));
        }
    }
    let choice_questions: Vec<_> = flow
        .questions
        .iter()
        .filter(|q| q.kind == QuestionKind::Choice)
        .collect();
    html! {
        div style="overflow-x:auto" {
            table class="grid" {
                caption class="muted" style="text-align:left" {
                    (tr(lang, "yes-no-not-asked-no-answer"))
                }
                thead { tr {
                    th scope="col" { (tr(lang, "symptom")) }
                    @for d in days { th scope="col" { (d.format("%-m/%-d")) } }
                } }
                tbody {
                    @for (qid, label, urgent) in &rows {
                        tr class=(if *urgent { "urgent-q" } else { "" }) {
                            th scope="row" style=(if *urgent { "color:#b3261e" } else { "" }) { (label) }
                            @for d in days {
                                @let answered = by_day.get(d);
                                @match answered.map(|m| m.get(qid).copied()) {
                                    Some(Some(true)) => td class="yes" style=(if *urgent { "background:#b3261e;color:#fff;text-align:center" } else { "background:#fdecea;text-align:center" }) title=(tr(lang, "yes")) { "●" },
                                    Some(Some(false)) => td class="no" style="text-align:center" title=(tr(lang, "no")) { "○" },
                                    Some(None) => td class="not-asked" style="text-align:center;color:#888" title=(tr(lang, "not-asked")) { "−" },
                                    None if missed.contains(d) => td class="missed" style="text-align:center;color:#b3261e" title=(tr(lang, "no-answer")) { "×" },
                                    None => td {},
                                }
                            }
                        }
                    }
                    @for q in &choice_questions {
                        tr {
                            th scope="row" { (flow.text(q, lang)) }
                            @for d in days {
                                @let chosen = choices_by_day.get(d).and_then(|m| m.get(q.id.get_ref()));
                                @let text = chosen.and_then(|c| q.choices.iter().find(|x| &x.id == c)).map(|c| flow.choice_text(c, lang));
                                td class=(format!("choice {}", chosen.map(String::as_str).unwrap_or(""))) style="text-align:center;font-size:.8rem" { (text.unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    }
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
    let tz: chrono_tz::Tz = p.time_zone.parse().unwrap_or(chrono_tz::Asia::Tokyo);
    let missed: Vec<_> = cks
        .iter()
        .filter(|c| matches!(c.status.as_str(), "missed" | "failed"))
        .map(|c| c.local_date)
        .collect();
    let svg = chart::render(&chart::ChartInput {
        lang,
        tz,
        start: p.observation_start,
        end: p.observation_end,
        observations: &obs,
        missed: &missed,
    });
    let days: Vec<NaiveDate> = p
        .observation_start
        .iter_days()
        .take_while(|d| *d <= p.observation_end)
        .take(31)
        .collect();
    let local =
        |d: chrono::DateTime<chrono::Utc>| d.with_timezone(&tz).format("%m/%d %H:%M").to_string();
    let flow = s.flows.for_monitoring(&p.monitoring_type);
    let back = format!("/persons/{}", p.id);
    let may_schedule = viewer.may(FieldGroup::HealthObservation, Action::Write);
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
    let body = html! {
            div class="card" {
                p {
                    (tr(lang, "type")) ": " (if p.monitoring_type == "contact" { tr(lang, "close-contact") } else { tr(lang, "patient") })
                    " · " (tr(lang, "observation")) ": " (p.observation_start) " – " (p.observation_end)
                    " · " (tr(lang, "channel--console-person")) ": " (p.channel)
                    @if let Some(f) = &p.fallback_channel { " (" (tr(lang, "fallback")) ": " (f) ")" }
                    " · " (tr(lang, "status")) ": " (status_label(lang, &p.status))
                    @if rs { " · " (tr(lang, "residence")) ": " (residence_label(lang, &p.residence_kind)) }
                }
                @if rs && tab == "record" {
                @let rf = Refill::of(retry, "residence", lang);
                details open[rf.open()] {
                    summary { (tr(lang, "residence-history-and-moves-admission")) }
                    ul {
                        @for m in &moves {
                            li { (m.from_date) " " (residence_label(lang, &m.kind)) @if let Some(pl) = &m.place { " · " (pl) } }
                        }
                        @if moves.is_empty() { li class="muted" { (tr(lang, "none-recorded-home")) } }
                    }
                    @if viewer.may(FieldGroup::Residence, Action::Write) {
                    (rf.summary())
                    form method="post" action=(format!("/persons/{}/residences", p.id)) {
                        input type="hidden" name="csrf" value=(who.csrf);
                        label for="res-kind" { (tr(lang, "residence")) }
                        select id="res-kind" name="kind" aria-invalid=[rf.invalid("kind")] {
                            @for k in residences::KINDS { option value=(k) selected[rf.v("kind") == Some(*k)] { (residence_label(lang, k)) } }
                        }
                        (rf.note("kind"))
                        label for="res-place" { (tr(lang, "hospital-or-facility-optional")) }
                        input id="res-place" name="place" autocomplete="off" value=[rf.v("place")] aria-invalid=[rf.invalid("place")];
                        (rf.note("place"))
                        label for="res-date" { (tr(lang, "from-empty-today")) }
                        input id="res-date" name="from_date" type="date" value=[rf.v("from_date")] aria-invalid=[rf.invalid("from_date")];
                        (rf.note("from_date"))
                        button type="submit" { (tr(lang, "record--console-person")) }
                    }
                    }
                }
                }
                p class="muted" {
                    (tr(lang, "phone--console-person")) ": " (p.phone.as_deref().unwrap_or("—")) " · "
                    (tr(lang, "e-mail--console-person")) ": " (p.email.as_deref().unwrap_or("—"))
                }
                @if admin && centres.len() > 1 {
                    form method="post" action=(format!("/persons/{}/share", p.id)) style="display:flex;gap:.5rem;align-items:flex-end" {
                        input type="hidden" name="csrf" value=(who.csrf);
                        label { (tr(lang, "share-with-a-related-health-centre")) " "
                            select name="health_centre_id" style="width:auto" {
                                @for c in centres.iter().filter(|c| c.id != p.health_centre_id) { option value=(c.id) { (c.name) } }
                            }
                        }
                        button type="submit" style="margin:0" { (tr(lang, "share")) }
                    }
                }
                @if admin && !orgs.is_empty() {
                    form method="post" action=(format!("/persons/{}/assign", p.id)) style="display:flex;gap:.5rem;align-items:flex-end" {
                        input type="hidden" name="csrf" value=(who.csrf);
                        label { (tr(lang, "assign-to-an-outside-body")) " "
                            select name="organisation_id" style="width:auto" {
                                @for (id, kind, name) in &orgs { option value=(id) { (name) " (" (kind) ")" } }
                            }
                        }
                        button type="submit" style="margin:0" { (tr(lang, "assign")) }
                    }
                }
            }
            nav class="tabs" aria-label=(tr(lang, "record-groups")) {
                @for (tab_key, label) in [("observation", "observation--console-person"), ("record", "record--console-person-3"), ("investigation", "investigation"), ("details", "more")] {
                    @if tab_key != "observation" || ho_allowed {
                        a href=(format!("/persons/{}?tab={tab_key}", p.id)) aria-current=[(tab == tab_key).then_some("page")] { (tr(lang, label)) }
                    }
                }
            }
            @if tab == "record" {
                (registry_sections(lang, who, &viewer, &p, &tests, &severities, &contacts, retry, prefecture.as_deref()))
                @if let Some(m) = p.merged_into {
                    p class="errors" { (tr(lang, "this-record-was-merged-into")) a href=(format!("/persons/{m}")) { "ID " (m) } }
                } @else if hc {
                    p { a href=(format!("/persons/{}/merge", p.id)) { (tr(lang, "merge-a-duplicate-record-into-this-one")) } }
                }
            }
            @if tab == "investigation" { (investigation_sections(lang, who, &viewer, &p, &behaviours, infection.as_ref(), retry)) }
            @if tab == "details" { (details_sections(lang, who, &viewer, &p, &sections, match retry { Some(Retry::Section(r)) => Some(r), _ => None })) }
            @if hc && !open.is_empty() {
                section class="card" aria-labelledby="esc-h" style="border-color:#b3261e" {
                    h2 id="esc-h" { (tr(lang, "needs-review")) }
                    @for e in &open {
                        div class=(format!("esc esc-{}", e.priority)) style="border-bottom:1px solid #dde;padding:.5rem 0" {
                            p {
                                strong class=(if e.priority == "urgent" { "err" } else { "" }) { (priority_label(lang, &e.priority)) } " · "
                                (reason_label(lang, &e.reason)) " · " span class="muted" { (e.detail) " · " (local(e.opened_at)) }
                                @if e.status == "acknowledged" { " · " (tr(lang, "in-hand")) }
                            }
                            (step_forms(lang, who, e.id, &e.status, &e.priority, &back))
                        }
                    }
                }
            }
            @if ho {
            section class="card" aria-labelledby="chart-h" {
                h2 id="chart-h" { (tr(lang, "observations--console-person")) }
                (svg)
                h3 { (tr(lang, "symptoms-by-day")) }
                (symptom_grid(lang, flow, tz, &days, &obs, &missed))
            }
            }
            @if ho {
            section class="card" {
                h2 { (tr(lang, "records")) }
                table {
                    thead { tr {
                        th { (tr(lang, "time")) } th { (tr(lang, "temp")) } th { "SpO2" }
                        th { (tr(lang, "symptoms-answered-yes")) } th { (tr(lang, "source")) }
                    } }
                    tbody {
                        @for o in obs.iter().rev() {
                            @let yes: Vec<String> = o.symptom_map().into_iter().filter(|(_, v)| *v).map(|(k, _)| {
                                flow.question(&k).map(|q| flow.text(q, lang).to_string())
                                    .or_else(|| flow.voice_groups.contains_key(&k).then(|| flow.group_text(&k, lang).to_string()))
                                    .unwrap_or(k)
                            }).chain(o.choice_map().into_iter().filter_map(|(qid, cid)| {
                                let q = flow.question(&qid)?;
                                let c = q.choices.iter().find(|c| c.id == cid)?;
                                Some(format!("{}：{}", flow.text(q, lang), flow.choice_text(c, lang)))
                            })).collect();
                            tr class=(if o.urgent { "urgent-row" } else { "" }) {
                                td { (local(o.observed_at)) }
                                td { (o.temperature_c.map(|v| format!("{v:.1} ℃")).unwrap_or_else(|| "—".into())) }
                                td { (o.spo2.map(|v| format!("{v} %")).unwrap_or_else(|| "—".into())) }
                                td {
                                    @if o.urgent { strong class="err" { (tr(lang, "urgent--console-person")) } }
                                    (yes.join("、"))
                                    @if let Some(n) = &o.note { div class="muted" { (n) } }
                                }
                                td { (source_label(lang, &o.source)) " / " (reporter_label(lang, &o.reporter)) }
                            }
                        }
                    }
                }
                @if viewer.may(FieldGroup::HealthObservation, Action::Write) {
                @let of = Refill::of(retry, "observation", lang);
                details open[of.open()] {
                    summary { (tr(lang, "enter-an-observation-taken-by-phone")) }
                    (of.summary())
                    form method="post" action=(format!("/persons/{}/observations", p.id)) {
                        input type="hidden" name="csrf" value=(who.csrf);
                        label for="temperature" { (tr(lang, "temperature-c--console-person")) }
                        input id="temperature" name="temperature" inputmode="decimal" value=[of.v("temperature")] aria-invalid=[of.invalid("temperature")];
                        (of.note("temperature"))
                        label for="spo2" { "SpO2 (%)" }
                        input id="spo2" name="spo2" inputmode="numeric" value=[of.v("spo2")] aria-invalid=[of.invalid("spo2")];
                        (of.note("spo2"))
                        label for="reporter" { (tr(lang, "reported-by")) }
                        select id="reporter" name="reporter" aria-invalid=[of.invalid("reporter")] {
                            @for (v, key) in [("self", "the-person"), ("family", "family"), ("staff", "staff"), ("contractor", "contractor--console-person")] {
                                option value=(v) selected[of.v("reporter") == Some(v)] { (tr(lang, key)) }
                            }
                        }
                        (of.note("reporter"))
                        fieldset {
                            legend { (tr(lang, "symptoms-present")) }
                            @for q in flow.questions.iter().filter(|q| q.kind == QuestionKind::YesNo) {
                                label style="font-weight:400" { input type="checkbox" name="yes" value=(q.id.get_ref()) checked[of.ticked("yes", q.id.get_ref())] style="width:auto"; " " (flow.text(q, lang)) }
                            }
                        }
                        @for q in flow.questions.iter().filter(|q| q.kind == QuestionKind::Choice) {
                            @let id = format!("choice-{}", q.id.get_ref());
                            label for=(id) { (flow.text(q, lang)) }
                            select id=(id) name=(id) aria-invalid=[of.invalid(&id)] {
                                option value="" { (tr(lang, "not-asked--console-person")) }
                                @for c in &q.choices { option value=(c.id) selected[of.v(&id) == Some(c.id.as_str())] { (flow.choice_text(c, lang)) } }
                            }
                            (of.note(&id))
                        }
                        label for="note" { (tr(lang, "note-e-g-a-doctor-s-findings")) }
                        input id="note" name="note" value=[of.v("note")];
                        button type="submit" { (tr(lang, "record--console-person")) }
                    }
                }
                }
            }
            section class="card" aria-labelledby="calls-h" id="calls" {
                h2 id="calls-h" { (tr(lang, "follow-up-calls")) }
                @if viewer.may(FieldGroup::HealthObservation, Action::Write) {
                    @let cf = Refill::of(retry, "call", lang);
                    (cf.summary())
                    form method="post" action=(format!("/persons/{}/calls", p.id)) {
                        input type="hidden" name="csrf" value=(who.csrf);
                        fieldset {
                            legend { (tr(lang, "what-came-of-the-call")) }
                            @for o in followups::OUTCOMES {
                                label style="font-weight:400" {
                                    input type="radio" name="outcome" value=(o) checked[cf.v("outcome") == Some(*o)] style="width:auto";
                                    " " (call_outcome_label(lang, o))
                                }
                            }
                            (cf.note("outcome"))
                        }
                        label for="call-note" { (tr(lang, "note-optional")) }
                        input id="call-note" name="note" value=[cf.v("note")];
                        button type="submit" { (tr(lang, "record-the-call")) }
                    }
                    p class="muted" { (tr(lang, "when-you-reached-the-person-enter-what")) }
                }
                @if calls.is_empty() { p class="muted" { (tr(lang, "none-recorded")) } }
                ul {
                    @for c in &calls {
                        li { (local(c.at)) " · " strong { (call_outcome_label(lang, &c.outcome)) } " — " (c.staff_name)
                            @if let Some(n) = &c.note { " · " (n) } }
                    }
                }
            }
            }
            @if hc {
            section class="card" {
                h2 { (tr(lang, "review-timeline")) }
                @if timeline.is_empty() { p class="muted" { "—" } }
                ul {
                    @for ev in &timeline {
                        li class=(format!("ev ev-{}", ev.kind)) {
                            (local(ev.at)) " · " (reason_label(lang, &ev.reason)) " · " strong { (event_label(lang, &ev.kind)) }
                            @if let Some(a) = &ev.action {
                                @if ev.kind == "action" { " · " (action_label(lang, a)) }
                                @if ev.kind == "undone" { " · " (event_label(lang, a)) }
                            }
                            @if let Some(n) = &ev.note { " · " (n) }
                            @if let Some(who) = &ev.staff_name { " — " (who) }
                        }
                    }
                }
            }
            }
            @if ho {
            section class="card" {
                h2 { (tr(lang, "check-ins-and-contact-attempts")) }
                @if may_schedule {
                @let sf = Refill::of(retry, "schedule", lang);
                details open[sf.open()] {
                    summary { (tr(lang, "change-channel-or-times-applies-to-today")) }
                    (sf.summary())
                    form method="post" action=(format!("/persons/{}/schedule", p.id)) {
                        input type="hidden" name="csrf" value=(who.csrf);
                        label for="sch-channel" { (tr(lang, "channel--console-person")) }
                        select id="sch-channel" name="channel" {
                            @for (v, key) in CHANNELS { option value=(v) selected[sf.v("channel").map_or(p.channel == *v, |x| x == *v)] { (tr(lang, key)) } }
                        }
                        label for="sch-fallback" { (tr(lang, "fallback-channel")) }
                        select id="sch-fallback" name="fallback_channel" {
                            option value="none" selected[sf.v("fallback_channel").map_or(p.fallback_channel.is_none(), |x| x == "none")] { (tr(lang, "none--console-person")) }
                            @for (v, key) in CHANNELS { option value=(v) selected[sf.v("fallback_channel").map_or(p.fallback_channel.as_deref() == Some(*v), |x| x == *v)] { (tr(lang, key)) } }
                        }
                        label for="sch-lang" { (tr(lang, "language")) }
                        select id="sch-lang" name="language" {
                            option value="ja" selected[sf.v("language").map_or(p.language == "ja", |x| x == "ja")] { "日本語" }
                            option value="en" selected[sf.v("language").map_or(p.language == "en", |x| x == "en")] { "English" }
                        }
                        label for="sch-slow" { (tr(lang, "automated-call-pace")) }
                        select id="sch-slow" name="slow_speech" {
                            option value="no" selected[sf.v("slow_speech").map_or(!p.slow_speech, |x| x == "no")] { (tr(lang, "normal--console-person")) }
                            option value="yes" selected[sf.v("slow_speech").map_or(p.slow_speech, |x| x == "yes")] { (tr(lang, "slow-waits-longer-for-keys")) }
                        }
                        label for="sch-time" { (tr(lang, "times-comma-separated-e-g-09-00-17-00")) }
                        input id="sch-time" name="checkin_time" value=(sf.v("checkin_time").unwrap_or(&times)) inputmode="numeric" autocomplete="off" aria-invalid=[sf.invalid("checkin_time")];
                        (sf.note("checkin_time"))
                        button type="submit" { (tr(lang, "save")) }
                    }
                }
                }
                table {
                    thead { tr { th { (tr(lang, "date")) } th { (tr(lang, "due")) } th { (tr(lang, "outcome")) } th { (tr(lang, "attempts")) } } }
                    tbody {
                        @for c in cks.iter().rev() {
                            tr {
                                td { (c.local_date) }
                                td { (local(c.due_at)) }
                                td { span class=(format!("tag {}", c.status)) { (status_label(lang, &c.status)) } }
                                td {
                                    @for a in attempts.iter().filter(|a| a.checkin_id == c.id) {
                                        div { (local(a.created_at)) " " (attempt_kind_label(lang, &a.kind)) " · " (channel_label(lang, &a.channel)) " · "
                                            strong { (attempt_status_label(lang, &a.status)) }
                                            span class="muted" { " (" (a.provider) ")" }
                                            @if let Some(e) = &a.error { " — " (e) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            }
    };
    let body = match (ticket, key) {
        (Some(ticket), Some(key)) => {
            let shown = body.0.replace(&s.caches.csrf_slot, &viewer_who.csrf);
            s.caches.pages.put(
                ticket,
                key,
                CachedPage {
                    title: p.name.clone(),
                    body: body.0,
                },
            );
            PreEscaped(shown)
        }
        _ => body,
    };
    Ok((false, layout::page(lang, viewer_who, &p.name, body)))
}

/// Staff entry: the form's fields, every one optional except that something is recorded.
#[derive(Debug, Deserialize)]
struct EntryForm {
    temperature: String,
    spo2: String,
    reporter: String,
    note: String,
    yes: Vec<String>,
}

async fn enter(f: Posted) -> Result<Response, HtmlError> {
    let (s, who, id) = (&f.s, &f.who, f.id);
    f.run(
        "observation",
        "observation",
        move |raw: Vec<(String, String)>| async move {
            let get = |k: &str| {
                raw.iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.trim().to_string())
                    .unwrap_or_default()
            };
            let f = EntryForm {
                temperature: get("temperature"),
                spo2: get("spo2"),
                reporter: get("reporter"),
                note: get("note"),
                yes: raw
                    .iter()
                    .filter(|(n, _)| n == "yes")
                    .map(|(_, v)| v.clone())
                    .collect(),
            };
            let p = persons::get(&s.db, Access::Staff(&who.viewer()), id, None).await?;
            let flow = s.flows.for_monitoring(&p.monitoring_type);
            let mut c = Collect::default();
            let mut a = Answer::default();
            if !f.temperature.is_empty() {
                a.temperature = c.take(Temperature::parse("temperature", &f.temperature));
            }
            if !f.spo2.is_empty() {
                a.spo2 = c.take(Spo2::parse("spo2", &f.spo2));
            }
            for q in flow
                .questions
                .iter()
                .filter(|q| q.kind == QuestionKind::YesNo)
            {
                let yes = f.yes.iter().any(|y| y == q.id.get_ref());
                a.yes_no(q.id.get_ref(), yes, q.urgent);
            }
            for q in flow
                .questions
                .iter()
                .filter(|q| q.kind == QuestionKind::Choice)
            {
                let field = format!("choice-{}", q.id.get_ref());
                let v = raw
                    .iter()
                    .find(|(n, _)| *n == field)
                    .map(|(_, v)| v.trim())
                    .unwrap_or("");
                if v.is_empty() {
                    continue;
                }
                match q.choices.iter().find(|c| c.id == v) {
                    Some(c) => {
                        a.choices.insert(q.id.get_ref().clone(), c.id.clone());
                    }
                    None => c.push(field, "not one of the question's choices".to_string()),
                }
            }
            c.finish()?;
            let note = Some(f.note.as_str()).filter(|n| !n.is_empty());
            let reporter = if f.reporter.is_empty() {
                "staff"
            } else {
                f.reporter.as_str()
            };
            let rec = observations::record_by_staff(
                &s.db,
                Access::Staff(&who.viewer()),
                p.id,
                reporter,
                "staff",
                mimamori_core::db::now(),
                &a,
                note,
                &s.rules,
            )
            .await?;
            tracing::info!(
                person_id = p.id,
                observation_id = rec.observation_id,
                staff_id = who.id,
                "observation entered by staff"
            );
            Ok(())
        },
    )
    .await
}

#[derive(Deserialize)]
struct AssignForm {
    csrf: String,
    organisation_id: i64,
}

/// Health-centre staff assign a person to an outside body of theirs (follow-up contractor,
/// lodging facility, medical institution), which then sees them as its matrix row allows.
async fn assign(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    Form(f): Form<AssignForm>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    who.check_csrf(&f.csrf)?;
    let ip = addr.ip().to_string();
    assignments::assign(
        &s.db,
        Access::Staff(&who.viewer()),
        id,
        f.organisation_id,
        Some(&ip),
    )
    .await?;
    Ok(Redirect::to(&format!("/persons/{id}?tab=record")).into_response())
}

/// How an observation came (`observations.source`).
fn source_label(lang: Lang, s: &str) -> &'static str {
    codes::Source::parse(s)
        .map_or_else(|| codes::ReviewAction::Other.label(lang), |c| c.label(lang))
}

/// Who answered (`observations.reporter`).
fn reporter_label(lang: Lang, r: &str) -> &'static str {
    codes::Reporter::parse(r)
        .map_or_else(|| codes::ReviewAction::Other.label(lang), |c| c.label(lang))
}

fn severity_label(lang: Lang, l: &str) -> &'static str {
    codes::Severity::parse(l)
        .unwrap_or(codes::Severity::Severe)
        .label(lang)
}

fn test_result_label(lang: Lang, r: &str) -> &'static str {
    codes::TestResult::parse(r)
        .unwrap_or(codes::TestResult::Inconclusive)
        .label(lang)
}

/// Basic information, test records, severity and close contacts — each only for roles that
/// may read its field group, with its form only for those who may write it.
#[allow(clippy::too_many_arguments)]
fn registry_sections(
    lang: Lang,
    who: &CurrentStaff,
    viewer: &mimamori_core::access::Viewer,
    p: &persons::Person,
    tests: &[registry::TestRecord],
    severities: &[registry::Severity],
    contacts: &[persons::Person],
    retry: Option<&Retry>,
    prefecture: Option<&str>,
) -> Markup {
    let may = |g: FieldGroup, a: Action| viewer.may(g, a);
    let tf = Refill::of(retry, "tests", lang);
    let sf = Refill::of(retry, "severities", lang);
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    html! {
        @if may(FieldGroup::Basic, Action::Read) {
        section class="card" {
            h2 { (tr(lang, "basic-information")) }
            @if may(FieldGroup::Basic, Action::Write) { p { a href=(format!("/persons/{}/edit", p.id)) { (tr(lang, "edit-basic-information")) } } }
            dl class="kv" {
                dt { (tr(lang, "kana--console-person")) } dd { (opt(&p.name_kana)) }
                dt { (tr(lang, "date-of-birth--console-person")) } dd { (p.date_of_birth.map(|d| d.to_string()).unwrap_or_else(|| "—".into()))
                    @if let Some(b) = p.age_band(japan_today()) { " (" (b) ")" } }
                dt { (tr(lang, "sex--console-person")) } dd { (p.sex.as_deref().map(|s| super::forms::sex_label(lang, s)).unwrap_or("—")) }
                dt { (tr(lang, "address--console-person")) } dd {
                    (prefecture.or(p.prefecture_code.as_deref()).unwrap_or("—")) " "
                    (p.municipality.as_deref().unwrap_or("")) " " (p.address.as_deref().unwrap_or(""))
                }
                dt { (tr(lang, "occupation-workplace")) } dd { (opt(&p.occupation)) " / " (opt(&p.workplace)) }
                dt { (tr(lang, "emergency-contact--console-person")) } dd { (opt(&p.emergency_contact)) }
                dt { (tr(lang, "onset-specimen-last-exposure")) }
                dd { (p.onset_date.map(|d| d.to_string()).unwrap_or_else(|| "—".into())) " / "
                     (p.specimen_date.map(|d| d.to_string()).unwrap_or_else(|| "—".into())) " / "
                     (p.last_exposure_date.map(|d| d.to_string()).unwrap_or_else(|| "—".into())) }
                dt { (tr(lang, "period-from")) }
                dd { @if let Some(r) = &p.period_rule { (tr(lang, "rule")) (r) } @else if let Some(r) = &p.period_override_reason { (tr(lang, "override")) (r) } @else { "—" } }
                @if let Some(src) = p.source_person_id {
                    dt { (tr(lang, "source-case")) } dd { a href=(format!("/persons/{src}")) { "ID " (src) } }
                }
            }
        }
        }
        @if may(FieldGroup::Tests, Action::Read) {
        section class="card" {
            h2 { (tr(lang, "tests")) }
            @if tests.is_empty() { p class="muted" { (tr(lang, "none-recorded--console-person")) } }
            @else {
                table {
                    thead { tr { th { (tr(lang, "specimen")) } th { (tr(lang, "method")) } th { (tr(lang, "result")) } th { (tr(lang, "result-date")) } th { (tr(lang, "laboratory")) } } }
                    tbody { @for r in tests { tr {
                        td { (r.specimen_date) } td { (r.method.as_deref().unwrap_or("—")) }
                        td { strong class=(if r.result == "positive" { "err" } else { "" }) { (test_result_label(lang, &r.result)) } }
                        td { (r.result_date.map(|d| d.to_string()).unwrap_or_else(|| "—".into())) }
                        td { (r.laboratory.as_deref().unwrap_or("—")) }
                    } } }
                }
            }
            @if may(FieldGroup::Tests, Action::Write) {
            details open[tf.open()] {
                summary { (tr(lang, "add-a-test")) }
                (tf.summary())
                form method="post" action=(format!("/persons/{}/tests", p.id)) {
                    input type="hidden" name="csrf" value=(who.csrf);
                    label for="t-specimen" { (tr(lang, "specimen-date")) }
                    input id="t-specimen" name="specimen_date" type="date" required value=[tf.v("specimen_date")] aria-invalid=[tf.invalid("specimen_date")];
                    (tf.note("specimen_date"))
                    label for="t-method" { (tr(lang, "method")) }
                    select id="t-method" name="method" aria-invalid=[tf.invalid("method")] { @for m in registry::TEST_METHODS { option value=(m) selected[tf.v("method") == Some(*m)] { (m) } } }
                    (tf.note("method"))
                    label for="t-result" { (tr(lang, "result")) }
                    select id="t-result" name="result" aria-invalid=[tf.invalid("result")] { @for r in registry::TEST_RESULTS { option value=(r) selected[tf.v("result").map_or(*r == "pending", |v| v == *r)] { (test_result_label(lang, r)) } } }
                    (tf.note("result"))
                    label for="t-contact" { (tr(lang, "planned-contact-date-optional")) }
                    input id="t-contact" name="planned_contact_date" type="date" value=[tf.v("planned_contact_date")] aria-invalid=[tf.invalid("planned_contact_date")];
                    (tf.note("planned_contact_date"))
                    label for="t-rdate" { (tr(lang, "result-date-optional")) }
                    input id="t-rdate" name="result_date" type="date" value=[tf.v("result_date")] aria-invalid=[tf.invalid("result_date")];
                    (tf.note("result_date"))
                    label for="t-lab" { (tr(lang, "laboratory-optional")) }
                    input id="t-lab" name="laboratory" value=[tf.v("laboratory")] aria-invalid=[tf.invalid("laboratory")];
                    (tf.note("laboratory"))
                    button type="submit" { (tr(lang, "add")) }
                }
            }
            }
        }
        }
        @if may(FieldGroup::Severity, Action::Read) {
        section class="card" {
            h2 { (tr(lang, "severity")) }
            ul { @for v in severities { li { (v.from_date) " " strong { (severity_label(lang, &v.level)) } } }
                 @if severities.is_empty() { li class="muted" { (tr(lang, "none-recorded--console-person")) } } }
            @if may(FieldGroup::Severity, Action::Write) {
            (sf.summary())
            form method="post" action=(format!("/persons/{}/severities", p.id)) style="display:flex;gap:.5rem;align-items:flex-end;flex-wrap:wrap" {
                input type="hidden" name="csrf" value=(who.csrf);
                label { (tr(lang, "severity")) " "
                    select name="level" style="width:auto" aria-invalid=[sf.invalid("level")] { @for l in registry::SEVERITY_LEVELS { option value=(l) selected[sf.v("level") == Some(*l)] { (severity_label(lang, l)) } } } }
                label { (tr(lang, "from-empty-today--console-person")) " " input name="from_date" type="date" style="width:auto" value=[sf.v("from_date")] aria-invalid=[sf.invalid("from_date")]; }
                button type="submit" style="margin:0" { (tr(lang, "record--console-person-2")) }
            }
            }
        }
        }
        @if may(FieldGroup::Contacts, Action::Read) && p.monitoring_type == "patient" {
        section class="card" {
            h2 { (tr(lang, "close-contacts")) }
            ul { @for c in contacts { li { a href=(format!("/persons/{}", c.id)) { (c.name) } " · " (c.observation_start) " – " (c.observation_end) } }
                 @if contacts.is_empty() { li class="muted" { (tr(lang, "none-registered")) } } }
            @if may(FieldGroup::Contacts, Action::Write) {
                a class="button" href=(format!("/persons/{}/contacts", p.id)) { (tr(lang, "register-a-close-contact")) }
            }
        }
        }
    }
}

fn setting_label(lang: Lang, s: &str) -> &'static str {
    match s {
        "home" => tr(lang, "home-family"),
        "work" => tr(lang, "work"),
        "school" => tr(lang, "school-childcare"),
        "restaurant" => tr(lang, "restaurant"),
        "medical" => tr(lang, "medical"),
        "welfare" => tr(lang, "welfare-facility--console-person"),
        "transport" => tr(lang, "transport"),
        "event" => tr(lang, "event-gathering"),
        _ => tr(lang, "other"),
    }
}

/// Behaviour history with a way to register someone met there as a close contact, and the
/// infection link and route ◎ — for roles that may see them (never medical institutions).
fn investigation_sections(
    lang: Lang,
    who: &CurrentStaff,
    viewer: &mimamori_core::access::Viewer,
    p: &persons::Person,
    behaviours: &[registry::Behaviour],
    infection: Option<&registry::Infection>,
    retry: Option<&Retry>,
) -> Markup {
    let may = |g: FieldGroup, a: Action| viewer.may(g, a);
    let bf = Refill::of(retry, "behaviours", lang);
    html! {
        @if may(FieldGroup::BehaviourHistory, Action::Read) {
        section class="card" {
            h2 { (tr(lang, "behaviour-history-investigation")) }
            @if behaviours.is_empty() { p class="muted" { (tr(lang, "none-recorded--console-person")) } }
            @else {
                table {
                    thead { tr { th { (tr(lang, "date")) } th { (tr(lang, "time--console-person")) } th { (tr(lang, "place")) } th { (tr(lang, "people-met")) } th {} } }
                    tbody { @for b in behaviours { tr {
                        td { (b.on_date) } td { (b.time_text.as_deref().unwrap_or("")) }
                        td { (b.place) " (" (setting_label(lang, &b.setting)) ")" @if let Some(ph) = &b.place_phone { div class="muted" { (ph) } } }
                        td { (b.people_met.as_deref().unwrap_or("")) }
                        td { @if may(FieldGroup::Contacts, Action::Write) {
                            a href=(format!("/persons/{}/contacts?behaviour={}", p.id, b.id)) { (tr(lang, "register-a-contact")) } } }
                    } } }
                }
            }
            @if may(FieldGroup::BehaviourHistory, Action::Write) {
            details open[bf.open()] {
                summary { (tr(lang, "add-an-entry")) }
                (bf.summary())
                form method="post" action=(format!("/persons/{}/behaviours", p.id)) {
                    input type="hidden" name="csrf" value=(who.csrf);
                    label for="b-date" { (tr(lang, "date")) }
                    input id="b-date" name="on_date" type="date" required value=[bf.v("on_date")] aria-invalid=[bf.invalid("on_date")];
                    (bf.note("on_date"))
                    label for="b-time" { (tr(lang, "time-optional")) }
                    input id="b-time" name="time_text" placeholder="12:00-13:30" value=[bf.v("time_text")] aria-invalid=[bf.invalid("time_text")];
                    (bf.note("time_text"))
                    label for="b-place" { (tr(lang, "place")) }
                    input id="b-place" name="place" required value=[bf.v("place")] aria-invalid=[bf.invalid("place")];
                    (bf.note("place"))
                    label for="b-setting" { (tr(lang, "setting")) }
                    select id="b-setting" name="setting" aria-invalid=[bf.invalid("setting")] { @for st in registry::SETTINGS { option value=(st) selected[bf.v("setting") == Some(*st)] { (setting_label(lang, st)) } } }
                    (bf.note("setting"))
                    label for="b-phone" { (tr(lang, "place-phone-optional")) }
                    input id="b-phone" name="place_phone" type="tel" value=[bf.v("place_phone")] aria-invalid=[bf.invalid("place_phone")];
                    (bf.note("place_phone"))
                    label for="b-people" { (tr(lang, "people-met-optional")) }
                    input id="b-people" name="people_met" value=[bf.v("people_met")] aria-invalid=[bf.invalid("people_met")];
                    (bf.note("people_met"))
                    button type="submit" { (tr(lang, "add")) }
                }
            }
            }
        }
        }
        @if let Some(registry::Infection { link, area, setting, place }) = infection {
        section class="card" {
            h2 { (tr(lang, "infection-link-and-route")) }
            p {
                (tr(lang, "link"))
                strong { (match link.as_deref() { Some("confirmed") => tr(lang, "confirmed"), Some("presumed") => tr(lang, "presumed"), Some(_) => tr(lang, "unknown"), None => "—" }) }
                " · " (area.as_deref().unwrap_or("—")) " · " (setting.as_deref().map(|s| setting_label(lang, s)).unwrap_or("—")) " · " (place.as_deref().unwrap_or("—"))
            }
            @if may(FieldGroup::InfectionLink, Action::Write) {
            @let inf = Refill::of(retry, "infection", lang);
            // As posted when it came back with problems, else as stored.
            @let cur = |k: &str, stored: &Option<String>| inf.v(k).map(str::to_string).or_else(|| stored.clone());
            (inf.summary())
            form method="post" action=(format!("/persons/{}/infection", p.id)) style="display:flex;gap:.5rem;align-items:flex-end;flex-wrap:wrap" {
                input type="hidden" name="csrf" value=(who.csrf);
                label { (tr(lang, "link--console-person")) " " select name="link" style="width:auto" aria-invalid=[inf.invalid("link")] {
                    @for (k, key) in [("confirmed", "confirmed"), ("presumed", "presumed"), ("unknown", "unknown")] {
                        option value=(k) selected[cur("link", link).as_deref() == Some(k)] { (tr(lang, key)) } } } }
                label { (tr(lang, "area")) " " input name="area" value=(cur("area", area).unwrap_or_default()) style="width:8rem" aria-invalid=[inf.invalid("area")]; }
                label { (tr(lang, "setting")) " " select name="setting" style="width:auto" aria-invalid=[inf.invalid("setting")] {
                    option value="" { "—" }
                    @for st in registry::SETTINGS { option value=(st) selected[cur("setting", setting).as_deref() == Some(*st)] { (setting_label(lang, st)) } } } }
                label { (tr(lang, "place")) " " input name="place" value=(cur("place", place).unwrap_or_default()) style="width:10rem" aria-invalid=[inf.invalid("place")]; }
                button type="submit" style="margin:0" { (tr(lang, "save--console-person")) }
            }
            }
        }
        }
    }
}

fn section_title(lang: Lang, s: sections::Section) -> &'static str {
    use sections::Section as S;
    match s {
        S::Welfare => tr(lang, "welfare-liaison"),
        S::Household => tr(lang, "household"),
        S::Memo => tr(lang, "memo"),
        S::Interview => tr(lang, "interview"),
        S::UnderlyingConditions => tr(lang, "underlying-conditions-medication"),
        S::Admission => tr(lang, "admission"),
        S::CareContacts => tr(lang, "contacts-for-care"),
        S::ReleaseDate => tr(lang, "release-communicated"),
        S::InvestigationContacts => tr(lang, "people-found-by-the-investigation"),
    }
}

/// The label of a section field, Japanese first.
fn field_label(lang: Lang, k: &str) -> &'static str {
    let key = match k {
        "disability" => "disability",
        "public_assistance" => "public-assistance",
        "childcare_needed" => "childcare-needed",
        "carer_needed" => "carer-needed",
        "other" => "other",
        "lives_with_elderly" => "lives-with-elderly-people",
        "lives_with_underlying_disease" => "lives-with-someone-with-an-underlying",
        "lives_with_immunosuppressed" => "lives-with-someone-immunosuppressed",
        "lives_with_pregnant" => "lives-with-someone-pregnant",
        "lives_with_healthcare_worker" => "lives-with-a-healthcare-worker",
        "members" => "members",
        "text" => "memo--console-person",
        "date" => "date--console-person",
        "institution" => "diagnosing-institution",
        "insurance_number" => "insurance-number",
        "symptoms" => "symptoms--console-person",
        "referred_by_institution" => "referred-by-institution",
        "referred_by_doctor" => "referred-by-doctor",
        "previous_admissions" => "previous-admissions",
        "remarks" => "remarks",
        "copd" => "copd-or-other-chronic-lung-disease",
        "diabetes" => "diabetes",
        "hypertension" => "hypertension",
        "dyslipidaemia" => "dyslipidaemia",
        "cerebrovascular" => "cerebrovascular-disease",
        "dementia" => "dementia",
        "medication" => "current-medication",
        "immunosuppressants" => "immunosuppressants",
        "anticancer_drugs" => "anti-cancer-drugs",
        "dialysis" => "dialysis",
        "pregnancy_weeks" => "weeks-of-pregnancy",
        "smoking_start_age" => "age-started-smoking",
        "cigarettes_per_day" => "cigarettes-a-day",
        "admitted_on" => "admitted-on",
        "discharged_on" => "discharged-on",
        "hospital" => "hospital--console-person",
        "doctor" => "doctor",
        "ards" => "ards",
        "xray_ct_findings" => "chest-x-ray-ct-findings",
        "icu" => "icu",
        "ventilator" => "ventilator",
        "ecmo" => "ecmo",
        "outcome" => "outcome-discharged-died-transferred-in",
        "died_on" => "died-on",
        "cause_of_death" => "cause-of-death",
        "emergency_hospital" => "emergency-hospital",
        "family_doctor" => "family-doctor",
        "follow_up_body" => "follow-up-body",
        "communicated_on" => "release-communicated-on",
        "contacts" => "people-one-per-line-name-phone-reached",
        _ => return "",
    };
    tr(lang, key)
}

/// Number fields of the sections (the rest are text, dates or yes/no).
const NUMBER_FIELDS: &[&str] = &["pregnancy_weeks", "smoking_start_age", "cigarettes_per_day"];

fn is_date_field(k: &str) -> bool {
    k.ends_with("_on") || k == "date"
}

/// The smaller record groups, each a form built from its document: yes/no as checkboxes,
/// dates as date inputs, household members one per line ("name, relation, phone") with a
/// link to register each as a close contact.
fn details_sections(
    lang: Lang,
    who: &CurrentStaff,
    viewer: &mimamori_core::access::Viewer,
    p: &persons::Person,
    stored: &[sections::Stored],
    retry: Option<&SectionRetry>,
) -> Markup {
    html! {
        @for st in stored {
            @let writable = viewer.may(st.section.group(), Action::Write);
            @let retry = retry.filter(|r| r.section == st.section);
            @let data = retry.map_or(&st.data, |r| &r.doc);
            @let err = |k: &str| retry.and_then(|r| r.errors.iter().find(|e| e.field == k)).map(|e| e.message(lang));
            section class="card" id=(format!("section-{}", st.section.key())) {
                h2 { (section_title(lang, st.section)) }
                @if let Some(r) = retry { (not_saved(lang, &r.errors, Some(st.section.key()))) }
                @if let Some(at) = st.updated_at { p class="muted" { (tr(lang, "updated")) (at.with_timezone(&chrono_tz::Asia::Tokyo).format("%Y-%m-%d %H:%M")) } }
                form method="post" action=(format!("/persons/{}/sections/{}", p.id, st.section.key())) {
                    input type="hidden" name="csrf" value=(who.csrf);
                    @if let Some(obj) = data.as_object() {
                        @for (k, v) in obj {
                            @let id = format!("{}-{k}", st.section.key());
                            @let e = err(k);
                            @match v {
                                serde_json::Value::Bool(b) => {
                                    label style="font-weight:400" { input type="checkbox" id=(id) name=(k) value="true" checked[*b] disabled[!writable] style="width:auto"; " " (field_label(lang, k)) }
                                }
                                serde_json::Value::Array(members) => {
                                    label for=(id) { @if k == "contacts" { (field_label(lang, k)) } @else { (tr(lang, "members-one-per-line-name-relation-phone")) } }
                                    textarea id=(id) name=(k) rows="4" disabled[!writable] aria-invalid=[e.as_ref().map(|_| "true")] {
                                        @for m in members { (list_line(m)) "\n" }
                                    }
                                    @if let Some(e) = &e { div class="err" { (e) } }
                                    @if viewer.may(FieldGroup::Contacts, Action::Write) && p.monitoring_type == "patient" {
                                        ul { @for m in members { @if m["person_id"].is_null() && (k != "contacts" || m["close_contact"] == true) {
                                            li { (m["name"].as_str().unwrap_or("")) " — "
                                                a href=(format!("/persons/{}/contacts?{}", p.id, serde_urlencoded::to_string([("name", m["name"].as_str().unwrap_or("")), ("phone", m["phone"].as_str().unwrap_or(""))]).unwrap_or_default())) {
                                                    (tr(lang, "register-as-a-close-contact")) } }
                                        } } }
                                    }
                                }
                                _ => {
                                    label for=(id) { (field_label(lang, k)) }
                                    input id=(id) name=(k) disabled[!writable] aria-invalid=[e.as_ref().map(|_| "true")]
                                        type=(if is_date_field(k) { "date" } else if NUMBER_FIELDS.contains(&k.as_str()) && e.is_none() { "number" } else { "text" })
                                        value=(match v { serde_json::Value::String(x) => x.clone(), serde_json::Value::Number(n) => n.to_string(), _ => String::new() });
                                    @if let Some(e) = &e { div class="err" { (e) } }
                                }
                            }
                        }
                    }
                    @if writable { button type="submit" { (tr(lang, "save--console-person-2")) } }
                }
            }
        }
    }
}

/// One person of a list field as a line of its textarea.
fn list_line(m: &serde_json::Value) -> String {
    let s = |k: &str| m[k].as_str().unwrap_or("").to_string();
    let yn = |k: &str| if m[k] == true { "はい" } else { "いいえ" }.to_string();
    if m.get("relation").is_some() {
        [s("name"), s("relation"), s("phone")].join(", ")
    } else {
        [s("name"), s("phone"), yn("reached"), yn("close_contact")].join(", ")
    }
}

/// A section's document from its form: the fields of the section's empty document, each
/// read back by its kind.
fn section_from_form(
    section: sections::Section,
    form: &[(String, String)],
    today: NaiveDate,
) -> serde_json::Value {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim());
    let template = section
        .validate(&serde_json::json!({}), today)
        .unwrap_or_default();
    let mut out = serde_json::Map::new();
    if let Some(obj) = template.as_object() {
        for (k, v) in obj {
            let value = match v {
                serde_json::Value::Bool(_) => serde_json::Value::Bool(get(k).is_some()),
                serde_json::Value::Array(_) => serde_json::Value::Array(
                    get(k)
                        .unwrap_or("")
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(|l| {
                            let mut parts = l.split(',').map(str::trim);
                            let name = parts.next().unwrap_or("");
                            let second = parts.next().filter(|x| !x.is_empty());
                            let third = parts.next().filter(|x| !x.is_empty());
                            if k == "contacts" {
                                let yes = |x: Option<&str>| matches!(x, Some("はい" | "yes" | "y" | "1" | "○"));
                                let close = parts.next();
                                serde_json::json!({"name": name, "phone": second, "reached": yes(third), "close_contact": yes(close)})
                            } else {
                                serde_json::json!({"name": name, "relation": second, "phone": third})
                            }
                        })
                        .collect(),
                ),
                _ => match get(k) {
                    None | Some("") => serde_json::Value::Null,
                    Some(x) if NUMBER_FIELDS.contains(&k.as_str()) => x
                        .parse::<u64>()
                        .map(serde_json::Value::from)
                        .unwrap_or_else(|_| serde_json::Value::String(x.to_string())),
                    Some(x) => serde_json::Value::String(x.to_string()),
                },
            };
            out.insert(k.clone(), value);
        }
    }
    serde_json::Value::Object(out)
}

async fn save_section(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path((id, key)): Path<(i64, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, HtmlError> {
    let csrf = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    who.check_csrf(csrf)?;
    let section =
        sections::Section::parse(&key).ok_or(mimamori_core::Error::NotFound("section"))?;
    let doc = section_from_form(section, &form, japan_today());
    let ip = addr.ip().to_string();
    match sections::put(
        &s.db,
        &who.viewer(),
        id,
        section,
        &doc,
        japan_today(),
        Some(&ip),
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/persons/{id}?tab=details")).into_response()),
        // Shown again as typed, with the problems beside their fields.
        Err(mimamori_core::Error::Invalid(errors)) => {
            let retry = Retry::Section(SectionRetry {
                section,
                doc,
                errors,
            });
            let html = page(&s, &who, lang, &ip, id, "details", Some(&retry)).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

const CHANNELS: &[(&str, &str)] = &[
    ("sms", "sms-link--console-person"),
    ("email", "e-mail"),
    ("voice", "automated-call"),
];

/// Changes how and when the person is reached; today's check-ins follow at once.
async fn schedule(f: Posted) -> Result<Response, HtmlError> {
    let (s, viewer, ip, id, staff) = (&f.s, f.who.viewer(), f.ip.clone(), f.id, f.who.id);
    f.run(
        "schedule",
        "observation",
        move |input: persons::ScheduleInput| async move {
            let change = input.parse()?;
            let window = chrono::Duration::minutes(s.config.checkin.answer_window_minutes);
            persons::update_schedule(&s.db, &viewer, id, &change, window, Some(&ip)).await?;
            tracing::info!(person_id = id, staff_id = staff, "schedule changed");
            Ok(())
        },
    )
    .await
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

/// Records a move (a hospital stay stops the check-ins at once).
async fn residence(f: Posted) -> Result<Response, HtmlError> {
    let (s, who, ip, id) = (&f.s, &f.who, f.ip.clone(), f.id);
    f.run(
        "residence",
        "record",
        move |input: residences::ResidenceInput| async move {
            add_residence(s, who, id, &input, &ip).await.map(|_| ())
        },
    )
    .await
}

/// Validates a move against the health centre's local date and records it; shared by the
/// console and the API.
pub async fn add_residence(
    s: &AppState,
    who: &CurrentStaff,
    id: i64,
    input: &residences::ResidenceInput,
    ip: &str,
) -> mimamori_core::Result<i64> {
    let p = persons::get(&s.db, Access::Staff(&who.viewer()), id, None).await?;
    let tz: chrono_tz::Tz = p.time_zone.parse().unwrap_or(chrono_tz::Asia::Tokyo);
    let r = input.parse(checkins::local_date(tz, mimamori_core::db::now()))?;
    let window = chrono::Duration::minutes(s.config.checkin.answer_window_minutes);
    let rid = residences::add(&s.db, &who.viewer(), id, &r, window, Some(ip)).await?;
    tracing::info!(
        person_id = id,
        staff_id = who.id,
        kind = r.kind,
        "residence recorded"
    );
    Ok(rid)
}

#[derive(Deserialize, Default)]
struct TabQuery {
    /// observation (default), record, investigation, details.
    #[serde(default)]
    tab: String,
}

/// The words for a contact attempt's kind.
fn attempt_kind_label(lang: Lang, k: &str) -> &'static str {
    match k {
        "initial" => tr(lang, "first-message"),
        "reminder" => tr(lang, "reminder"),
        "call" => tr(lang, "call"),
        _ => tr(lang, "other"),
    }
}

/// The words for a channel.
fn channel_label(lang: Lang, c: &str) -> &'static str {
    match c {
        "sms" => "SMS",
        "email" => tr(lang, "e-mail"),
        "voice" => tr(lang, "automated-call"),
        _ => tr(lang, "other"),
    }
}

/// The words for an attempt's status as the provider reported it.
fn attempt_status_label(lang: Lang, s: &str) -> &'static str {
    match s {
        "queued" | "accepted" | "scheduled" => tr(lang, "queued"),
        "sending" => tr(lang, "sending"),
        "sent" => tr(lang, "sent"),
        "read" => tr(lang, "read"),
        "initiated" | "ringing" => tr(lang, "ringing"),
        "in-progress" => tr(lang, "in-progress"),
        "delivered" => tr(lang, "delivered"),
        "undelivered" => tr(lang, "not-delivered"),
        "failed" => tr(lang, "failed"),
        "busy" => tr(lang, "busy"),
        "no-answer" => tr(lang, "no-answer--console-person"),
        "completed" => tr(lang, "call-completed"),
        "canceled" => tr(lang, "cancelled"),
        _ => tr(lang, "other"),
    }
}

/// The words for a follow-up call's outcome.
pub fn call_outcome_label(lang: Lang, o: &str) -> &'static str {
    match o {
        "reached" => tr(lang, "reached-the-person-or-family"),
        "no_answer" => tr(lang, "no-answer--console-person-2"),
        "busy" => tr(lang, "busy"),
        "wrong_number" => tr(lang, "wrong-or-dead-number"),
        _ => "?",
    }
}

#[derive(Deserialize)]
struct CallForm {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    note: String,
}

/// A contractor (or nurse) records that they phoned the person, and what came of it.
async fn call(f: Posted) -> Result<Response, HtmlError> {
    let (db, viewer, id) = (&f.s.db, f.who.viewer(), f.id);
    f.run("call", "observation", move |c: CallForm| async move {
        followups::record(db, &viewer, id, &c.outcome, &c.note)
            .await
            .map(|_| ())
    })
    .await
}

async fn add_test(f: Posted) -> Result<Response, HtmlError> {
    let (db, viewer, ip, id) = (&f.s.db, f.who.viewer(), f.ip.clone(), f.id);
    f.run(
        "tests",
        "record",
        move |input: registry::TestInput| async move {
            let t = input.parse(japan_today())?;
            registry::add_test(db, &viewer, id, &t, Some(&ip))
                .await
                .map(|_| ())
        },
    )
    .await
}

async fn add_behaviour(f: Posted) -> Result<Response, HtmlError> {
    let (db, viewer, ip, id) = (&f.s.db, f.who.viewer(), f.ip.clone(), f.id);
    f.run(
        "behaviours",
        "investigation",
        move |input: registry::BehaviourInput| async move {
            let e = input.parse(japan_today())?;
            registry::add_behaviour(db, &viewer, id, &e, Some(&ip))
                .await
                .map(|_| ())
        },
    )
    .await
}

async fn set_infection(f: Posted) -> Result<Response, HtmlError> {
    let (db, viewer, ip, id) = (&f.s.db, f.who.viewer(), f.ip.clone(), f.id);
    f.run(
        "infection",
        "investigation",
        move |input: registry::InfectionInput| async move {
            registry::set_infection(db, &viewer, id, &input, Some(&ip)).await
        },
    )
    .await
}

async fn add_severity(f: Posted) -> Result<Response, HtmlError> {
    let (db, viewer, ip, id) = (&f.s.db, f.who.viewer(), f.ip.clone(), f.id);
    f.run(
        "severities",
        "record",
        move |input: registry::SeverityInput| async move {
            let sv = input.parse(japan_today())?;
            registry::add_severity(db, &viewer, id, sv, Some(&ip))
                .await
                .map(|_| ())
        },
    )
    .await
}

#[derive(Deserialize)]
struct ShareForm {
    csrf: String,
    health_centre_id: i64,
}

/// Shares the record with a related health centre, which sees it at once.
async fn share(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    Form(f): Form<ShareForm>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    who.check_csrf(&f.csrf)?;
    let ip = addr.ip().to_string();
    assignments::share(
        &s.db,
        Access::Staff(&who.viewer()),
        id,
        f.health_centre_id,
        Some(&ip),
    )
    .await?;
    Ok(Redirect::to(&format!("/persons/{id}?tab=record")).into_response())
}
