//! The person page drawn from what was read: header, tabs, the open tab's records.
use super::*;
use mimamori_core::access::Viewer;

/// Everything the person page shows, read before it is drawn ([`render`] does no I/O).
pub(super) struct View<'a> {
    pub lang: Lang,
    /// The viewer's session (its CSRF token is a placeholder on a page to be kept).
    pub who: &'a CurrentStaff,
    pub viewer: Viewer,
    pub tab: &'a str,
    pub retry: Option<&'a Retry>,
    pub ho_allowed: bool,
    pub ho: bool,
    pub rs: bool,
    pub hc: bool,
    pub admin: bool,
    pub p: persons::Person,
    pub obs: Vec<Observation>,
    pub cks: Vec<checkins::Checkin>,
    pub attempts: Vec<checkins::Attempt>,
    pub calls: Vec<followups::Followup>,
    pub moves: Vec<residences::Residence>,
    pub tests: Vec<registry::TestRecord>,
    pub severities: Vec<registry::Severity>,
    pub behaviours: Vec<registry::Behaviour>,
    pub infection: Option<registry::Infection>,
    pub prefecture: Option<String>,
    pub contacts: Vec<persons::Person>,
    pub sections: Vec<sections::Stored>,
    pub centres: Vec<staff::HealthCentre>,
    pub orgs: Vec<(i64, String, String)>,
    pub open: Vec<esc_store::Escalation>,
    pub timeline: Vec<esc_store::Event>,
    pub flow: &'a Flow,
    pub times: String,
}

/// Draws the person page from what [`View`] holds.
pub(super) fn render(v: View<'_>) -> Markup {
    let View {
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
    } = v;
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
    let back = format!("/persons/{}", p.id);
    let may_schedule = viewer.may(FieldGroup::HealthObservation, Action::Write);
    html! {
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
    }
}
