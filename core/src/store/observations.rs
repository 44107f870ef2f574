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
        let items: &[(i64, &Answer, DateTime<Utc>, i64)] = $items;
        let mut persons: Vec<i64> = items.iter().map(|i| i.0).collect();
        persons.sort_unstable();
        persons.dedup();
        let read: Vec<RuleInput> = match $read {
            Some(read) => read,
            None => {
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
        // Person → (centre, onset, state); each centre's zone and overrides parsed once.
        let mut by_centre: HashMap<i64, (chrono_tz::Tz, Thresholds)> = HashMap::new();
        let mut people: HashMap<i64, (i64, Option<NaiveDate>, Option<rules::trend::History>)> = HashMap::new();
        let mut seqs: HashMap<i64, i64> = HashMap::new();
        for (person, centre, zone, overrides, onset, state, seq, stored) in read {
            seqs.insert(person, seq.unwrap_or(0));
            // No state, and no observations but this batch's: a new course, nothing to
            // rebuild (the person's first answer skips the history read).
            let state = match state {
                None if stored == items.iter().filter(|i| i.0 == person).count() as i64 => {
                    Some(serde_json::to_string(&rules::trend::History::default()).expect("a history serialises"))
                }
                s => s,
            };
            by_centre.entry(centre).or_insert_with(|| {
                let tz = zone.parse().unwrap_or(chrono_tz::Asia::Tokyo);
                let th = $rules.with_overrides(&overrides).unwrap_or_else(|e| {
                    tracing::warn!(health_centre_id = centre, error = %e, "ignoring invalid rule override");
                    $rules.clone()
                });
                (tz, th)
            });
            let state = state.and_then(|s| serde_json::from_str::<rules::trend::History>(&s).ok());
            people.insert(person, (centre, onset, state));
        }
        for (person, _, at, _) in items {
            let (_, _, state) = people.get_mut(person).ok_or(Error::NotFound("person"))?;
            // A reading older than the state's latest: rebuild in time order.
            if state.as_ref().is_some_and(|h| h.last_at.is_some_and(|l| *at < l)) {
                *state = None;
            }
        }
        let mut all: Vec<Vec<rules::Trigger>> = vec![Vec::new(); items.len()];
        let rebuild: Vec<i64> = persons.iter().copied().filter(|p| people[p].2.is_none()).collect();
        if !rebuild.is_empty() {
            let sql = format!(
                "SELECT id, person_id, observed_at, temperature_c, spo2, symptoms, urgent FROM observations
                 WHERE person_id IN ({}) ORDER BY person_id, observed_at, id",
                placeholders(1, rebuild.len()));
            let mut q = sqlx::query_as::<_, (i64, i64, DateTime<Utc>, Option<f64>, Option<i32>, String, bool)>(sqlx::AssertSqlSafe(sql));
            for p in &rebuild {
                q = q.bind(*p);
            }
            let mut states: HashMap<i64, rules::trend::History> = HashMap::new();
            for (id, person, at, temp, spo2, symptoms, urgent) in q.fetch_all(&mut *$tx).await? {
                let (centre, onset, _) = &people[&person];
                let (tz, th) = &by_centre[centre];
                let h = states.entry(person).or_default();
                let today = at.with_timezone(tz).date_naive();
                match items.iter().position(|i| i.3 == id) {
                    // This batch's own reading: its answer (with the urgent signs named).
                    Some(k) => all[k] = rules::trend::step(th, h, &rules::reading_of(items[k].1, at), today, *onset),
                    None => {
                        let (yes_no, choices) = rules::trend::split_symptoms(&symptoms);
                        let r = rules::trend::Reading { at, temperature: temp, spo2, urgent, urgent_signs: &[], symptoms: &yes_no, choices: &choices };
                        rules::trend::step(th, h, &r, today, *onset);
                    }
                }
            }
            for p in &rebuild {
                people.get_mut(p).expect("read above").2 = Some(states.remove(p).unwrap_or_default());
            }
        }
        for (k, (person, a, at, _)) in items.iter().enumerate() {
            if rebuild.contains(person) {
                continue;
            }
            let (centre, onset, state) = people.get_mut(person).expect("read above");
            let (tz, th) = &by_centre[centre];
            let today = at.with_timezone(tz).date_naive();
            all[k] = rules::trend::step(th, state.as_mut().expect("kept or rebuilt"), &rules::reading_of(a, *at), today, *onset);
        }
        // The states, written back in statements of 32 people (a state is up to ~1 KB: one
        // loopback TCP segment each, see `store::imports`), each row only over the state it
        // was computed from: a concurrent writer's newer state (two answers of one person in
        // two batches at once, on PostgreSQL) makes this batch fail and be retried answer by
        // answer.
        let mut written = 0usize;
        for part in persons.chunks(32) {
            let rows = (0..part.len()).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect::<Vec<_>>().join(", ");
            let sql = format!("INSERT INTO rule_state (person_id, state, seq) VALUES {rows}
                               ON CONFLICT (person_id) DO UPDATE SET state = excluded.state, seq = excluded.seq
                               WHERE rule_state.seq = excluded.seq - 1 RETURNING person_id");
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
            for p in part {
                let state = people[p].2.as_ref().map(|h| serde_json::to_string(h).expect("a history serialises")).unwrap_or_default();
                q = q.bind(*p).bind(state).bind(seqs[p] + 1);
            }
            written += q.fetch_all(&mut *$tx).await?.len();
        }
        if written != persons.len() {
            return Err(Error::Internal("a person's rule state changed under this batch; retrying".into()));
        }
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

/// The outcome of recording an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub observation_id: i64,
    pub person_id: i64,
    /// Rules that fired (escalations opened or refreshed in the same transaction).
    pub triggers: Vec<rules::Trigger>,
}

/// What happened to one answer: recorded, or which way its check-in was already closed.
pub type Outcome = std::result::Result<Recorded, Closed>;

/// One answer to record: the check-in it answers, the channel it came by (`web`, `voice`),
/// and the validated answer.
#[derive(Debug, Clone)]
pub struct AnswerIn {
    pub checkin_id: i64,
    pub source: String,
    pub answer: Answer,
    /// A staff member entering keys on the phone simulator (training): the observation is
    /// stored with `source = 'simulator'`, `reporter = 'staff'`, and audited as that staff
    /// member's simulated entry — never as the person's own answer.
    pub simulated_by: Option<i64>,
}

/// Records the answer to check-in `checkin_id`: in one transaction the check-in becomes
/// `answered` (only if still open, so a link works once), the observation is written, the
/// escalation rules run (escalations, notifications) and everything is audited. Returns
/// what was recorded, or which way the check-in was already closed.
pub async fn answer_checkin(
    db: &Db,
    checkin_id: i64,
    source: &str,
    a: &Answer,
    rules: &Thresholds,
) -> Result<Outcome> {
    let one = [AnswerIn {
        checkin_id,
        source: source.to_string(),
        answer: a.clone(),
        simulated_by: None,
    }];
    answer_checkins(db, &one, rules)
        .await?
        .pop()
        .expect("one answer gives one result")
}

/// [`answer_checkin`] for a batch, in one transaction (a group commit): each statement
/// serves every answer, so the write lock is held for a few statements however many answers
/// arrived together. Results are in the batch's order. Two answers to the same check-in: the
/// first is recorded, the second finds it already answered. An answer to an unknown
/// check-in gets `NotFound` without failing the others; any database error fails the whole
/// batch (nothing is written) and is returned once.
///
/// On PostgreSQL the check-ins' update, the drafts' delete, the observations' and audit rows'
/// inserts and the rules' read are one statement ([`FOLDED_ANSWERS`]); with the rule states'
/// write and the commit, a batch is four round trips instead of eight. On SQLite (in
/// process, no round trips) each is a statement of its own.
///
/// On a pool, or on the answer writer's kept connection ([`crate::db::Kept`]; PostgreSQL).
pub async fn answer_checkins<'a>(
    on: impl Into<On<'a>>,
    batch: &[AnswerIn],
    rules: &Thresholds,
) -> Result<Vec<Result<Outcome>>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    match on.into() {
        On::Pool(Db::Postgres(pool)) => {
            answer_checkins_folded(pool.begin_write().await?, batch, rules).await
        }
        On::Pg(conn) => answer_checkins_folded(WriteTx::on(conn).await?, batch, rules).await,
        On::Pool(Db::Sqlite(pool)) => answer_checkins_stepwise(pool, batch, rules).await,
    }
}

/// The first answer to each check-in just opened, as (index in the batch, person).
fn first_answers(batch: &[AnswerIn], opened: &HashMap<i64, i64>) -> Vec<(usize, i64)> {
    let mut taken = std::collections::HashSet::new();
    batch
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let person = *opened.get(&a.checkin_id)?;
            taken.insert(a.checkin_id).then_some((i, person))
        })
        .collect()
}

/// What the rules are given for one answer recorded: (person, answer, time, observation).
type RuleItem<'a> = (i64, &'a Answer, DateTime<Utc>, i64);

/// What the rules are given for the answers recorded.
fn rule_items<'a>(
    batch: &'a [AnswerIn],
    recording: &[(usize, i64)],
    observation_ids: &HashMap<i64, i64>,
    t: DateTime<Utc>,
) -> Result<Vec<RuleItem<'a>>> {
    recording
        .iter()
        .map(|(i, person)| {
            let id = observation_ids
                .get(&batch[*i].checkin_id)
                .copied()
                .ok_or_else(|| {
                    Error::Internal("an inserted observation was not returned".into())
                })?;
            Ok((*person, &batch[*i].answer, t, id))
        })
        .collect()
}

/// The audit row of one recorded answer: the person's own, or a staff member's simulated
/// entry.
fn answer_audit(a: &AnswerIn, person: i64) -> (Actor, &'static str) {
    match a.simulated_by {
        Some(staff) => (Actor::Staff(staff), "observation.create_simulated"),
        None => (Actor::Person(person), "observation.create"),
    }
}

/// Each answer's outcome, in the batch's order, once its transaction has committed.
fn outcomes(
    batch: &[AnswerIn],
    opened: &HashMap<i64, i64>,
    statuses: &HashMap<i64, String>,
    items: &[RuleItem<'_>],
    recording: &[(usize, i64)],
    mut triggers: Vec<Vec<rules::Trigger>>,
) -> Vec<Result<Outcome>> {
    let mut recorded: HashMap<usize, Recorded> = HashMap::new();
    for (((i, person), tr), item) in recording.iter().zip(triggers.drain(..)).zip(items) {
        recorded.insert(
            *i,
            Recorded {
                observation_id: item.3,
                person_id: *person,
                triggers: tr,
            },
        );
    }
    batch
        .iter()
        .enumerate()
        .map(|(i, a)| match recorded.remove(&i) {
            Some(r) => Ok(Ok(r)),
            // A second answer to a check-in recorded in this batch.
            None if opened.contains_key(&a.checkin_id) => Ok(Err(Closed::AlreadyAnswered)),
            None => match statuses.get(&a.checkin_id).map(String::as_str) {
                None => Err(Error::NotFound("check-in")),
                Some("answered") => Ok(Err(Closed::AlreadyAnswered)),
                Some(_) => Ok(Err(Closed::Ended)),
            },
        })
        .collect()
}

/// The batch's answers, one statement for most of a batch (PostgreSQL; see
/// [`answer_checkins`]). `$1` the time; then one array per column, an element per answer:
/// check-in, source, reporter, temperature, SpO2, symptoms, urgent, and the audit row's
/// actor kind, actor id (a person's is their own, filled in here) and action. The rows that come back say, by their first column:
/// 0 — an observation recorded (check-in, observation id, person); 1 — an answer whose
/// check-in was not open (check-in, its status as this statement found it); 2 — a person
/// whose answer was recorded, with what the rules need ([`RuleInput`]; the count of stored
/// observations is from before this statement). An answer to an unknown check-in gets no row.
const FOLDED_ANSWERS: &str = concat!(
    "WITH a AS (
        SELECT * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::float8[], $6::int4[],
                             $7::text[], $8::bool[], $9::text[], $10::bigint[], $11::text[])
            WITH ORDINALITY AS a(checkin_id, source, reporter, temperature_c, spo2,
                                 symptoms, urgent, actor_kind, actor_id, action, ord)
     ),
     upd AS (
        UPDATE checkins SET status = 'answered', closed_at = $1, claim_token = NULL
        WHERE id IN (SELECT checkin_id FROM a) AND status IN ",
    crate::open_checkin_statuses!(),
    "
        RETURNING id, person_id
     ),
     del AS (DELETE FROM answer_drafts WHERE checkin_id IN (SELECT id FROM upd)),
     first AS (
        SELECT DISTINCT ON (a.checkin_id) a.*, upd.person_id
        FROM a JOIN upd ON upd.id = a.checkin_id ORDER BY a.checkin_id, a.ord
     ),
     ins AS (
        INSERT INTO observations (person_id, checkin_id, source, reporter, observed_at,
                                  temperature_c, spo2, symptoms, urgent, created_at)
        SELECT person_id, checkin_id, source, reporter, $1, temperature_c, spo2, symptoms, urgent, $1
        FROM first ORDER BY ord
        RETURNING id, checkin_id, person_id
     ),
     aud AS (
        INSERT INTO audit_log (at, actor_kind, actor_id, action, target_kind, target_id, ip)
        SELECT $1, actor_kind, CASE WHEN actor_kind = 'person' THEN person_id ELSE actor_id END,
               action, 'person', person_id, NULL
        FROM first ORDER BY ord
     )
     SELECT 0, checkin_id, id, NULL::text, NULL::text, NULL::date, NULL::text, person_id, NULL::bigint
     FROM ins
     UNION ALL
     SELECT 1, c.id, NULL, c.status, NULL, NULL, NULL, NULL, NULL
     FROM checkins c
     WHERE c.id IN (SELECT checkin_id FROM a) AND c.id NOT IN (SELECT id FROM upd)
     UNION ALL
     SELECT 2, p.id, h.id, h.time_zone, h.rules, p.onset_date, s.state, s.seq,
            CASE WHEN s.state IS NULL
                 THEN (SELECT COUNT(*) FROM observations o WHERE o.person_id = p.id) ELSE 0 END
     FROM persons p
     JOIN health_centres h ON h.id = p.health_centre_id
     LEFT JOIN rule_state s ON s.person_id = p.id
     WHERE p.id IN (SELECT person_id FROM upd)"
);

/// One row of [`FOLDED_ANSWERS`].
type FoldedRow = (
    i32,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<NaiveDate>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

async fn answer_checkins_folded(
    mut tx: WriteTx<'_, sqlx::Postgres>,
    batch: &[AnswerIn],
    rules: &Thresholds,
) -> Result<Vec<Result<Outcome>>> {
    let t = now();
    let n = batch.len();
    let mut checkin = Vec::with_capacity(n);
    let mut source = Vec::with_capacity(n);
    let mut reporter = Vec::with_capacity(n);
    let mut temperature = Vec::with_capacity(n);
    let mut spo2 = Vec::with_capacity(n);
    let mut symptoms = Vec::with_capacity(n);
    let mut urgent = Vec::with_capacity(n);
    let mut actor_kind = Vec::with_capacity(n);
    let mut actor_id = Vec::with_capacity(n);
    let mut action = Vec::with_capacity(n);
    for a in batch {
        checkin.push(a.checkin_id);
        let simulated = a.simulated_by.is_some();
        source.push(if simulated {
            "simulator"
        } else {
            a.source.as_str()
        });
        reporter.push(if simulated { "staff" } else { "self" });
        temperature.push(a.answer.temperature.map(Temperature::value));
        spo2.push(a.answer.spo2.map(Spo2::value));
        symptoms.push(a.answer.symptoms_json());
        urgent.push(a.answer.urgent);
        // The person is known only once the check-in is read: the statement fills it in.
        let (actor, act) = answer_audit(a, 0);
        let (kind, id) = actor.parts();
        actor_kind.push(kind);
        actor_id.push(id);
        action.push(act);
    }
    let rows: Vec<FoldedRow> = sqlx::query_as(FOLDED_ANSWERS)
        .bind(t)
        .bind(&checkin)
        .bind(&source)
        .bind(&reporter)
        .bind(&temperature)
        .bind(&spo2)
        .bind(&symptoms)
        .bind(&urgent)
        .bind(&actor_kind)
        .bind(&actor_id)
        .bind(&action)
        .fetch_all(&mut *tx)
        .await?;
    let mut opened: HashMap<i64, i64> = HashMap::new();
    let mut observation_ids: HashMap<i64, i64> = HashMap::new();
    let mut statuses: HashMap<i64, String> = HashMap::new();
    let mut read: Vec<RuleInput> = Vec::new();
    for (kind, id, b, c, d, e, f, g, h) in rows {
        match (kind, b, c, d, g) {
            (0, Some(observation), _, _, Some(person)) => {
                opened.insert(id, person);
                observation_ids.insert(id, observation);
            }
            (1, _, Some(status), _, _) => {
                statuses.insert(id, status);
            }
            (2, Some(centre), Some(zone), Some(overrides), seq) => {
                read.push((id, centre, zone, overrides, e, f, seq, h.unwrap_or(0)));
            }
            _ => {
                return Err(Error::Internal(
                    "an unexpected row from the answers' statement".into(),
                ));
            }
        }
    }
    // A check-in still open as the statement found it, yet not updated by it, was closed by
    // a concurrent transaction the update waited for: its status now, in a fresh read.
    let moved: Vec<i64> = statuses
        .iter()
        .filter(|(_, s)| crate::codes::CheckinStatus::is_open_str(s))
        .map(|(id, _)| *id)
        .collect();
    if !moved.is_empty() {
        let now: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, status FROM checkins WHERE id = ANY($1)")
                .bind(&moved)
                .fetch_all(&mut *tx)
                .await?;
        statuses.extend(now);
    }
    let recording = first_answers(batch, &opened);
    // The rules count the person's stored observations with this batch's own.
    for r in &mut read {
        r.7 += recording.iter().filter(|(_, p)| *p == r.0).count() as i64;
    }
    let items = rule_items(batch, &recording, &observation_ids, t)?;
    let triggers = if items.is_empty() {
        Vec::new()
    } else {
        evaluate_in_tx!(tx, &items, rules, t, Some(read))?
    };
    tx.commit().await?;
    Ok(outcomes(
        batch, &opened, &statuses, &items, &recording, triggers,
    ))
}

/// [`answer_checkins`] a statement at a time (SQLite).
async fn answer_checkins_stepwise(
    p: &sqlx::SqlitePool,
    batch: &[AnswerIn],
    rules: &Thresholds,
) -> Result<Vec<Result<Outcome>>> {
    let t = now();
    let mut ids: Vec<i64> = batch.iter().map(|a| a.checkin_id).collect();
    ids.sort_unstable();
    ids.dedup();
    {
        let mut tx = p.begin_write().await?;
        let sql = format!(
            concat!(
                "UPDATE checkins SET status = 'answered', closed_at = $1, claim_token = NULL
             WHERE id IN ({}) AND status IN ",
                crate::open_checkin_statuses!(),
                " RETURNING id, person_id"
            ),
            placeholders(2, ids.len())
        );
        let mut q = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql)).bind(t);
        for id in &ids {
            q = q.bind(*id);
        }
        let opened: HashMap<i64, i64> = q.fetch_all(&mut *tx).await?.into_iter().collect();
        // What the link form kept between its screens goes with the answer (one statement
        // per batch; nothing to delete for most).
        if !opened.is_empty() {
            let sql = format!(
                "DELETE FROM answer_drafts WHERE checkin_id IN ({})",
                placeholders(1, opened.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in opened.keys() {
                q = q.bind(*id);
            }
            q.execute(&mut *tx).await?;
        }
        let recording = first_answers(batch, &opened);
        let closed: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !opened.contains_key(id))
            .collect();
        let statuses: HashMap<i64, String> = if closed.is_empty() {
            HashMap::new()
        } else {
            let sql = format!(
                "SELECT id, status FROM checkins WHERE id IN ({})",
                placeholders(1, closed.len())
            );
            let mut q = sqlx::query_as::<_, (i64, String)>(sqlx::AssertSqlSafe(sql));
            for id in &closed {
                q = q.bind(*id);
            }
            q.fetch_all(&mut *tx).await?.into_iter().collect()
        };
        let mut observation_ids: HashMap<i64, i64> = HashMap::new();
        if !recording.is_empty() {
            // $1 is the time; then 8 values per answer.
            let rows = (0..recording.len())
                .map(|i| {
                    let b = 2 + i * 8;
                    format!(
                        "(${b}, ${}, ${}, ${}, $1, ${}, ${}, ${}, ${}, $1)",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO observations (person_id, checkin_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, created_at)
                 VALUES {rows} RETURNING id, checkin_id");
            let symptoms: Vec<String> = recording
                .iter()
                .map(|(i, _)| batch[*i].answer.symptoms_json())
                .collect();
            let mut q = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql)).bind(t);
            for ((i, person), sym) in recording.iter().zip(&symptoms) {
                let a = &batch[*i];
                q = q
                    .bind(*person)
                    .bind(a.checkin_id)
                    .bind(if a.simulated_by.is_some() {
                        "simulator"
                    } else {
                        a.source.as_str()
                    })
                    .bind(if a.simulated_by.is_some() {
                        "staff"
                    } else {
                        "self"
                    })
                    .bind(a.answer.temperature.map(Temperature::value))
                    .bind(a.answer.spo2.map(Spo2::value))
                    .bind(sym.as_str())
                    .bind(a.answer.urgent);
            }
            for (id, checkin) in q.fetch_all(&mut *tx).await? {
                observation_ids.insert(checkin, id);
            }
        }
        let items = rule_items(batch, &recording, &observation_ids, t)?;
        let triggers = if items.is_empty() {
            Vec::new()
        } else {
            evaluate_in_tx!(tx, &items, rules, t)?
        };
        let rows: Vec<_> = recording
            .iter()
            .map(|(i, person)| {
                let (actor, action) = answer_audit(&batch[*i], *person);
                (actor, action, "person", Some(*person), None)
            })
            .collect();
        audit_many(&mut *tx, &rows).await?;
        tx.commit().await?;
        Ok(outcomes(
            batch, &opened, &statuses, &items, &recording, triggers,
        ))
    }
}

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
