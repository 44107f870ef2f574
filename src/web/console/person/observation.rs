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
