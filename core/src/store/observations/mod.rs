//! Health observations and the answer path of a check-in.
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::db::{BeginWrite, On, WriteTx};
use crate::{
    Db, Error, Result,
    access::{Access, Action, FieldGroup, Viewer},
    db::now,
    domain::{Spo2, Temperature},
    rules::{self, Thresholds},
    store::{Actor, audit, audit::audit_many, escalations},
    with_db,
};

pub use crate::answer::Answer;

#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct Observation {
    pub id: i64,
    pub person_id: i64,
    pub checkin_id: Option<i64>,
    /// How it came: `sms` / `email` (the link in that message), `web` (a link otherwise),
    /// `voice` (an automated call), `inbound_call` (the person phoned in), `staff` (entered
    /// by staff or a contractor, e.g. after a phone call), `demo`.
    pub source: String,
    pub reporter: String,
    pub observed_at: DateTime<Utc>,
    pub temperature_c: Option<f64>,
    pub spo2: Option<i32>,
    pub symptoms: String,
    pub urgent: bool,
    pub note: Option<String>,
}

impl Observation {
    fn answers(&self) -> BTreeMap<String, serde_json::Value> {
        serde_json::from_str(&self.symptoms).unwrap_or_default()
    }
    /// Yes/no answers by question (or voice group) id.
    pub fn symptom_map(&self) -> BTreeMap<String, bool> {
        self.answers()
            .into_iter()
            .filter_map(|(k, v)| v.as_bool().map(|b| (k, b)))
            .collect()
    }
    /// Choice answers by question id.
    pub fn choice_map(&self) -> BTreeMap<String, String> {
        self.answers()
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|c| (k, c.to_string())))
            .collect()
    }
}

/// Why a check-in can no longer take an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    AlreadyAnswered,
    /// Missed, failed, cancelled or opted out.
    Ended,
}

/// `$from, $from+1, …` — `n` numbered placeholders for an `IN (…)` list or a `VALUES` row.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the rules need of one person: id, centre, the centre's time zone and rule overrides,
/// onset date, running rule state and its sequence number, and (without a state) how many
/// observations the person has stored.
type RuleInput = (
    i64,
    i64,
    String,
    String,
    Option<NaiveDate>,
    Option<String>,
    Option<i64>,
    i64,
);

/// Rule evaluation inside the caller's transaction `$tx`, after the observations are
/// written, for `$items: &[(person id, &Answer, observed at, observation id)]`: each person's
/// centre, time zone, overrides, onset date and running rule state ([`rules::trend::History`])
/// in one read; the fixed and trend rules ([`rules::trend::step`]); the states written back
/// in one statement; escalations (raising, never lowering, their priority), their timeline
/// events, and notifications of on-duty staff for a new urgent escalation. A person without
/// a state yet, or whose reading is older than the state's latest (staff entering a past
/// reading), has the state rebuilt from their observations in time order — the same fold, so
/// the result is what it would have been had every reading come in order. Evaluates to
/// `Result<Vec<Vec<Trigger>>>`, one list per item.
macro_rules! evaluate_in_tx {
    ($tx:expr, $items:expr, $rules:expr, $t:expr) => {
        evaluate_in_tx!($tx, $items, $rules, $t, None::<Vec<RuleInput>>)
    };
    // `$read`: the people's rule inputs when the caller has read them already (PostgreSQL's
    // folded answer statement), their counts of stored observations including the items'.
    ($tx:expr, $items:expr, $rules:expr, $t:expr, $read:expr) => {{
        let items: &[RuleItem<'_>] = $items;
        let read: Vec<RuleInput> = match $read {
            Some(read) => read,
            None => {
                let mut persons: Vec<i64> = items.iter().map(|i| i.0).collect();
                persons.sort_unstable();
                persons.dedup();
                let list = placeholders(1, persons.len());
                let sql = format!(
                    "SELECT p.id, h.id, h.time_zone, h.rules, p.onset_date, s.state, s.seq,
                            CASE WHEN s.state IS NULL THEN (SELECT COUNT(*) FROM observations o WHERE o.person_id = p.id) ELSE 0 END
                     FROM persons p
                     JOIN health_centres h ON h.id = p.health_centre_id
                     LEFT JOIN rule_state s ON s.person_id = p.id WHERE p.id IN ({list})");
                let mut q = sqlx::query_as::<_, RuleInput>(sqlx::AssertSqlSafe(sql));
                for p in &persons {
                    q = q.bind(*p);
                }
                q.fetch_all(&mut *$tx).await?
            }
        };
        let mut ev = Evaluation::new(items, read, $rules)?;
        let rebuild = ev.to_rebuild();
        if !rebuild.is_empty() {
            let sql = format!(
                "SELECT id, person_id, observed_at, temperature_c, spo2, symptoms, urgent FROM observations
                 WHERE person_id IN ({}) ORDER BY person_id, observed_at, id",
                placeholders(1, rebuild.len()));
            let mut q = sqlx::query_as::<_, HistoryRow>(sqlx::AssertSqlSafe(sql));
            for p in &rebuild {
                q = q.bind(*p);
            }
            ev.rebuild(rebuild, q.fetch_all(&mut *$tx).await?);
        }
        ev.step();
        // The states, written back in statements of 32 people (a state is up to ~1 KB: one
        // loopback TCP segment each, see `store::imports`), each row only over the state it
        // was computed from: a concurrent writer's newer state (two answers of one person in
        // two batches at once, on PostgreSQL) makes this batch fail and be retried answer by
        // answer.
        let states = ev.states();
        let mut written = 0usize;
        for part in states.chunks(32) {
            let rows = (0..part.len()).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect::<Vec<_>>().join(", ");
            let sql = format!("INSERT INTO rule_state (person_id, state, seq) VALUES {rows}
                               ON CONFLICT (person_id) DO UPDATE SET state = excluded.state, seq = excluded.seq
                               WHERE rule_state.seq = excluded.seq - 1 RETURNING person_id");
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
            for (person, state, seq) in part {
                q = q.bind(*person).bind(state.as_str()).bind(*seq);
            }
            written += q.fetch_all(&mut *$tx).await?.len();
        }
        if written != states.len() {
            return Err(Error::Internal("a person's rule state changed under this batch; retrying".into()));
        }
        let all = ev.into_triggers();
        for ((person, _, _, _), triggers) in items.iter().zip(&all) {
            for tr in triggers {
                escalations::raise(&mut $tx, escalations::Raise {
                    person_id: *person,
                    reason: tr.reason,
                    priority: tr.priority,
                    detail: &tr.detail,
                    actor: Actor::System,
                }, $t).await?;
            }
        }
        Ok::<Vec<Vec<rules::Trigger>>, crate::Error>(all)
    }};
}

/// What the rules are given for one answer recorded: (person, answer, time, observation).
type RuleItem<'a> = (i64, &'a Answer, DateTime<Utc>, i64);

/// One stored observation read to rebuild a person's rule state: id, person, time,
/// temperature, SpO2, symptoms, urgent.
type HistoryRow = (
    i64,
    i64,
    DateTime<Utc>,
    Option<f64>,
    Option<i32>,
    String,
    bool,
);

/// The rules' work for a batch of readings between its reads and its writes (no I/O):
/// the people's inputs parsed, the states of those without one rebuilt from their history
/// (read by the caller), every reading stepped through the rules, and the new states and
/// triggers handed back. [`evaluate_in_tx!`] runs it inside a transaction; the answer
/// batch's two-statement path ([`answers`]) runs it between a read and one write.
struct Evaluation<'i, 'a> {
    items: &'i [RuleItem<'a>],
    persons: Vec<i64>,
    /// Each centre's zone and thresholds, parsed once.
    by_centre: HashMap<i64, (chrono_tz::Tz, Thresholds)>,
    /// Person → (centre, onset, state); no state: to be rebuilt.
    people: HashMap<i64, (i64, Option<NaiveDate>, Option<rules::trend::History>)>,
    seqs: HashMap<i64, i64>,
    rebuilt: Vec<i64>,
    all: Vec<Vec<rules::Trigger>>,
}

impl<'i, 'a> Evaluation<'i, 'a> {
    fn new(items: &'i [RuleItem<'a>], read: Vec<RuleInput>, rules: &Thresholds) -> Result<Self> {
        let mut persons: Vec<i64> = items.iter().map(|i| i.0).collect();
        persons.sort_unstable();
        persons.dedup();
        let mut by_centre: HashMap<i64, (chrono_tz::Tz, Thresholds)> = HashMap::new();
        let mut people = HashMap::new();
        let mut seqs = HashMap::new();
        for (person, centre, zone, overrides, onset, state, seq, stored) in read {
            seqs.insert(person, seq.unwrap_or(0));
            // No state, and no observations but this batch's: a new course, nothing to
            // rebuild (the person's first answer skips the history read).
            let state = match state {
                None if stored == items.iter().filter(|i| i.0 == person).count() as i64 => {
                    Some(rules::trend::History::default())
                }
                None => None,
                Some(s) => serde_json::from_str::<rules::trend::History>(&s).ok(),
            };
            by_centre.entry(centre).or_insert_with(|| {
                let tz = zone.parse().unwrap_or(chrono_tz::Asia::Tokyo);
                let th = rules.with_overrides(&overrides).unwrap_or_else(|e| {
                    tracing::warn!(health_centre_id = centre, error = %e, "ignoring invalid rule override");
                    rules.clone()
                });
                (tz, th)
            });
            people.insert(person, (centre, onset, state));
        }
        for (person, _, at, _) in items {
            let (_, _, state) = people.get_mut(person).ok_or(Error::NotFound("person"))?;
            // A reading older than the state's latest: rebuild in time order.
            if state
                .as_ref()
                .is_some_and(|h: &rules::trend::History| h.last_at.is_some_and(|l| *at < l))
            {
                *state = None;
            }
        }
        Ok(Evaluation {
            items,
            persons,
            by_centre,
            people,
            seqs,
            rebuilt: Vec::new(),
            all: vec![Vec::new(); items.len()],
        })
    }

    /// The people whose state must be rebuilt from their stored observations (in time
    /// order, [`HistoryRow`]) before the batch's readings are stepped.
    fn to_rebuild(&self) -> Vec<i64> {
        self.persons
            .iter()
            .copied()
            .filter(|p| self.people[p].2.is_none())
            .collect()
    }

    /// Rebuilds the states of `persons` from `rows`, their stored observations in time
    /// order — this batch's own among them (their triggers are the batch's).
    fn rebuild(&mut self, persons: Vec<i64>, rows: Vec<HistoryRow>) {
        let mut states: HashMap<i64, rules::trend::History> = HashMap::new();
        for (id, person, at, temp, spo2, symptoms, urgent) in rows {
            let (centre, onset, _) = &self.people[&person];
            let (tz, th) = &self.by_centre[centre];
            let h = states.entry(person).or_default();
            let today = at.with_timezone(tz).date_naive();
            match self.items.iter().position(|i| i.3 == id) {
                // This batch's own reading: its answer (with the urgent signs named).
                Some(k) => {
                    self.all[k] = rules::trend::step(
                        th,
                        h,
                        &rules::reading_of(self.items[k].1, at),
                        today,
                        *onset,
                    )
                }
                None => {
                    let (yes_no, choices) = rules::trend::split_symptoms(&symptoms);
                    let r = rules::trend::Reading {
                        at,
                        temperature: temp,
                        spo2,
                        urgent,
                        urgent_signs: &[],
                        symptoms: &yes_no,
                        choices: &choices,
                    };
                    rules::trend::step(th, h, &r, today, *onset);
                }
            }
        }
        for p in &persons {
            self.people.get_mut(p).expect("read above").2 =
                Some(states.remove(p).unwrap_or_default());
        }
        self.rebuilt = persons;
    }

    /// Steps the batch's readings (of the people not rebuilt) through the rules.
    fn step(&mut self) {
        for (k, (person, a, at, _)) in self.items.iter().enumerate() {
            if self.rebuilt.contains(person) {
                continue;
            }
            let (centre, onset, state) = self.people.get_mut(person).expect("read above");
            let (tz, th) = &self.by_centre[centre];
            let today = at.with_timezone(tz).date_naive();
            let state = state.as_mut().expect("kept or rebuilt");
            self.all[k] = rules::trend::step(th, state, &rules::reading_of(a, *at), today, *onset);
        }
    }

    /// Each person's new state, as (person, state, its sequence number): the one read plus one.
    fn states(&self) -> Vec<(i64, String, i64)> {
        self.persons
            .iter()
            .map(|p| {
                let state = self.people[p]
                    .2
                    .as_ref()
                    .map(|h| serde_json::to_string(h).expect("a history serialises"))
                    .unwrap_or_default();
                (*p, state, self.seqs[p] + 1)
            })
            .collect()
    }

    /// The rules that fired, one list per item.
    fn into_triggers(self) -> Vec<Vec<rules::Trigger>> {
        self.all
    }
}

mod answers;
pub use answers::*;

/// An observation entered by staff or a contractor (a nurse's phone call), or imported:
/// not tied to a check-in; the rules run the same way.
#[allow(clippy::too_many_arguments)]
pub async fn record_by_staff(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
    reporter: &str,
    source: &str,
    observed_at: DateTime<Utc>,
    a: &Answer,
    note: Option<&str>,
    rules: &Thresholds,
) -> Result<Recorded> {
    crate::store::guard::check(
        db,
        access,
        person_id,
        FieldGroup::HealthObservation,
        Action::Write,
    )
    .await?;
    let actor = access.actor();
    if !matches!(reporter, "self" | "family" | "staff" | "contractor") {
        return Err(Error::invalid(
            "reporter",
            "err-choose-self-family-staff-or-contractor",
        ));
    }
    let t = now();
    let entered_by = match actor {
        Actor::Staff(id) => Some(id),
        _ => None,
    };
    let symptoms = a.symptoms_json();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO observations (person_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, note, entered_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id")
            .bind(person_id).bind(source).bind(reporter).bind(observed_at)
            .bind(a.temperature.map(Temperature::value)).bind(a.spo2.map(Spo2::value))
            .bind(&symptoms).bind(a.urgent).bind(note).bind(entered_by).bind(t)
            .fetch_one(&mut *tx).await?;
        let triggers = evaluate_in_tx!(tx, &[(person_id, a, observed_at, id)], rules, t)?
            .pop()
            .unwrap_or_default();
        audit(&mut *tx, actor, "observation.create", "person", Some(person_id), None).await?;
        tx.commit().await?;
        Ok(Recorded { observation_id: id, person_id, triggers })
    })
}

/// A person's observations in time order; for a viewer, their scope and the health-observation
/// field group are checked first.
/// The observations of several people (a page of a list `viewer` has just read), by
/// person, oldest first — one query for the page instead of one per row. Only people in the
/// viewer's scope, and only for a role that may read health observations.
pub async fn for_people(
    db: &Db,
    viewer: &Viewer,
    person_ids: &[i64],
) -> Result<HashMap<i64, Vec<Observation>>> {
    if !viewer.may(FieldGroup::HealthObservation, Action::Read) {
        return Err(Error::Forbidden(
            "your role may not see or change this part of the record",
        ));
    }
    let mut out: HashMap<i64, Vec<Observation>> = HashMap::new();
    if person_ids.is_empty() {
        return Ok(out);
    }
    // The scope is the viewer's condition, whatever ids are asked for.
    let ids = crate::store::id_list(person_ids);
    let sql = format!(
        "SELECT o.id, o.person_id, o.checkin_id, o.source, o.reporter, o.observed_at, o.temperature_c, o.spo2, o.symptoms, o.urgent, o.note
         FROM observations o JOIN persons p ON p.id = o.person_id
         WHERE o.person_id IN ({ids}) AND {}
         ORDER BY o.person_id, o.observed_at, o.id",
        viewer.row_condition()
    );
    let rows: Vec<Observation> = with_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .persistent(false).fetch_all(p).await?);
    for o in rows {
        out.entry(o.person_id).or_default().push(o);
    }
    Ok(out)
}

pub async fn list_for_person(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
) -> Result<Vec<Observation>> {
    crate::store::guard::read_records(
        db,
        access,
        person_id,
        FieldGroup::HealthObservation,
        "observation.list",
        "SELECT id, person_id, checkin_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, note
         FROM observations WHERE person_id = $1 ORDER BY observed_at, id",
        None,
    )
    .await
}
