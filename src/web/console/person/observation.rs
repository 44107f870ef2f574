//! The observation tab's parts and its writes: the symptom grid, staff entries, the daily
//! schedule, follow-up calls, and the words for attempts and sources.
use super::*;

/// Day × symptom grid: answered yes / no / not asked / missed; urgent signs highlighted.
pub(super) fn symptom_grid(
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

/// Staff entry: the form's fields, every one optional except that something is recorded.
#[derive(Debug, Deserialize)]
pub(super) struct EntryForm {
    temperature: String,
    spo2: String,
    reporter: String,
    note: String,
    yes: Vec<String>,
}

pub(super) async fn enter(f: Posted) -> Result<Response, HtmlError> {
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

/// How an observation came (`observations.source`).
pub(super) fn source_label(lang: Lang, s: &str) -> &'static str {
    codes::Source::parse(s)
        .map_or_else(|| codes::ReviewAction::Other.label(lang), |c| c.label(lang))
}

/// Who answered (`observations.reporter`).
pub(super) fn reporter_label(lang: Lang, r: &str) -> &'static str {
    codes::Reporter::parse(r)
        .map_or_else(|| codes::ReviewAction::Other.label(lang), |c| c.label(lang))
}

pub(super) const CHANNELS: &[(&str, &str)] = &[
    ("sms", "sms-link--console-person"),
    ("email", "e-mail"),
    ("voice", "automated-call"),
];

/// Changes how and when the person is reached; today's check-ins follow at once.
pub(super) async fn schedule(f: Posted) -> Result<Response, HtmlError> {
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

/// The words for a contact attempt's kind.
pub(super) fn attempt_kind_label(lang: Lang, k: &str) -> &'static str {
    match k {
        "initial" => tr(lang, "first-message"),
        "reminder" => tr(lang, "reminder"),
        "call" => tr(lang, "call"),
        _ => tr(lang, "other"),
    }
}

/// The words for a channel.
pub(super) fn channel_label(lang: Lang, c: &str) -> &'static str {
    match c {
        "sms" => "SMS",
        "email" => tr(lang, "e-mail"),
        "voice" => tr(lang, "automated-call"),
        _ => tr(lang, "other"),
    }
}

/// The words for an attempt's status as the provider reported it.
pub(super) fn attempt_status_label(lang: Lang, s: &str) -> &'static str {
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
pub(super) struct CallForm {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    note: String,
}

/// A contractor (or nurse) records that they phoned the person, and what came of it.
pub(super) async fn call(f: Posted) -> Result<Response, HtmlError> {
    let (db, viewer, id) = (&f.s.db, f.who.viewer(), f.id);
    f.run("call", "observation", move |c: CallForm| async move {
        followups::record(db, &viewer, id, &c.outcome, &c.note)
            .await
            .map(|_| ())
    })
    .await
}

/// The observation tab, drawn from what was read: open escalations with their review forms,
/// the chart and symptom grid, the records, calls and check-ins.
#[allow(clippy::too_many_arguments)]
pub(super) fn tab(
    lang: Lang,
    who: &CurrentStaff,
    viewer: mimamori_core::access::Viewer,
    hc: bool,
    ho: bool,
    p: &persons::Person,
    obs: &[Observation],
    cks: &[checkins::Checkin],
    attempts: &[checkins::Attempt],
    calls: &[followups::Followup],
    open: &[esc_store::Escalation],
    timeline: &[esc_store::Event],
    flow: &Flow,
    times: &str,
    retry: Option<&Retry>,
    baseline_readings: u32,
) -> Markup {
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
        observations: obs,
        missed: &missed,
        baseline: mimamori_core::rules::trend::baseline(
            &obs.iter().filter_map(|o| o.spo2).collect::<Vec<_>>(),
            baseline_readings,
        ),
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
            @if hc && !open.is_empty() {
                section class="card" aria-labelledby="esc-h" style="border-color:#b3261e" {
                    h2 id="esc-h" { (tr(lang, "needs-review")) }
                    @for e in open {
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
                (symptom_grid(lang, flow, tz, &days, obs, &missed))
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
                    @for c in calls {
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
                    @for ev in timeline {
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
                        input id="sch-time" name="checkin_time" value=(sf.v("checkin_time").unwrap_or(times)) inputmode="numeric" autocomplete="off" aria-invalid=[sf.invalid("checkin_time")];
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
