//! Answers to check-ins, recorded a batch at a time (the answer writer's group commit,
//! [`crate::ingest`]): on PostgreSQL a read and one all-or-nothing statement
//! ([`read_then_write`]), or a transaction when that cannot serve; on SQLite a statement
//! at a time in one transaction. The rules run before the batch's write commits.
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

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
/// On PostgreSQL most batches are two round trips ([`read_then_write`]); a batch a rule
/// fires on, one needing a rebuilt state, or one whose read no longer held goes through a
/// transaction: the check-ins' update, the drafts' delete, the observations' and audit rows'
/// inserts and the rules' read in one statement ([`FOLDED_ANSWERS`]), then the rule states'
/// write and the commit — four round trips. On SQLite (in
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
            let done = read_then_write(&mut *pool.acquire().await?, batch, rules).await?;
            match done {
                Some(done) => Ok(done),
                None => answer_checkins_folded(pool.begin_write().await?, batch, rules).await,
            }
        }
        On::Pg(conn) => match read_then_write(&mut *conn, batch, rules).await? {
            Some(done) => Ok(done),
            None => answer_checkins_folded(WriteTx::on(conn).await?, batch, rules).await,
        },
        On::Pool(Db::Sqlite(pool)) => answer_checkins_stepwise(pool, batch, rules).await,
    }
}

/// What a batch needs to be written without a transaction (PostgreSQL): `$1` the batch's
/// check-ins. Rows as [`FOLDED_ANSWERS`]'s, by their first column: 0 — a check-in (id,
/// person, status); 2 — a person with an open check-in among them, with what the rules need
/// ([`RuleInput`]).
const READ_FOR_ANSWERS: &str = concat!(
    "WITH c AS (SELECT id, person_id, status FROM checkins WHERE id = ANY($1))
     SELECT 0, id, person_id, status, NULL::text, NULL::date, NULL::text, NULL::bigint, NULL::bigint
     FROM c
     UNION ALL
     SELECT 2, p.id, h.id, h.time_zone, h.rules, p.onset_date, s.state, s.seq,
            CASE WHEN s.state IS NULL
                 THEN (SELECT COUNT(*) FROM observations o WHERE o.person_id = p.id) ELSE 0 END
     FROM persons p
     JOIN health_centres h ON h.id = p.health_centre_id
     LEFT JOIN rule_state s ON s.person_id = p.id
     WHERE p.id IN (SELECT person_id FROM c WHERE status IN ",
    crate::open_checkin_statuses!(),
    ")"
);

/// The answers [`READ_FOR_ANSWERS`] found open, written in one autocommit statement — the
/// check-ins closed, the drafts deleted, the observations, their audit rows and the people's
/// new rule states written — or nothing at all: should a check-in no longer be open or a
/// rule state no longer be the one read, `mimamori_expect` (migration 0031) fails the
/// statement with SQLSTATE `MM001`. `$1` the time; then one array per column, an element per
/// answer recorded: check-in, person, source, reporter, temperature, SpO2, symptoms, urgent,
/// and the audit row's actor kind, actor id and action; then the states' people, states and
/// sequence numbers; then how many check-ins and states must be written. Rows: (check-in,
/// observation id), and one (0, 0) from the check.
const WRITE_ANSWERS: &str = concat!(
    "WITH a AS (
        SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::float8[],
                             $7::int4[], $8::text[], $9::bool[], $10::text[], $11::bigint[],
                             $12::text[])
            WITH ORDINALITY AS a(checkin_id, person_id, source, reporter, temperature_c, spo2,
                                 symptoms, urgent, actor_kind, actor_id, action, ord)
     ),
     upd AS (
        UPDATE checkins SET status = 'answered', closed_at = $1, claim_token = NULL
        WHERE id IN (SELECT checkin_id FROM a) AND status IN ",
    crate::open_checkin_statuses!(),
    "
        RETURNING id
     ),
     del AS (DELETE FROM answer_drafts WHERE checkin_id IN (SELECT id FROM upd)),
     ins AS (
        INSERT INTO observations (person_id, checkin_id, source, reporter, observed_at,
                                  temperature_c, spo2, symptoms, urgent, created_at)
        SELECT person_id, checkin_id, source, reporter, $1, temperature_c, spo2, symptoms, urgent, $1
        FROM a JOIN upd ON upd.id = a.checkin_id ORDER BY ord
        RETURNING id, checkin_id
     ),
     aud AS (
        INSERT INTO audit_log (at, actor_kind, actor_id, action, target_kind, target_id, ip)
        SELECT $1, actor_kind, actor_id, action, 'person', person_id, NULL
        FROM a JOIN upd ON upd.id = a.checkin_id ORDER BY ord
     ),
     st AS (
        INSERT INTO rule_state (person_id, state, seq)
        SELECT * FROM unnest($13::bigint[], $14::text[], $15::bigint[])
        ON CONFLICT (person_id) DO UPDATE SET state = excluded.state, seq = excluded.seq
        WHERE rule_state.seq = excluded.seq - 1
        RETURNING person_id
     )
     SELECT checkin_id, id FROM ins
     UNION ALL
     SELECT 0, mimamori_expect((SELECT COUNT(*) FROM upd) = $16
                               AND (SELECT COUNT(*) FROM st) = $17)::bigint"
);

/// How the answer batches were written since the process started (PostgreSQL): in one
/// statement after a read ([`read_then_write`]), or through the transaction and why. Read
/// by `/metrics` and the ingest benchmark.
pub struct BatchPaths {
    pub one_statement: AtomicU64,
    /// A rule fired: an escalation is opened in the transaction.
    pub rule_fired: AtomicU64,
    /// A person's rule state had to be rebuilt from their history.
    pub rebuilt: AtomicU64,
    /// A check-in closed or a rule state moved between the read and the write.
    pub read_changed: AtomicU64,
}

pub static BATCH_PATHS: BatchPaths = BatchPaths {
    one_statement: AtomicU64::new(0),
    rule_fired: AtomicU64::new(0),
    rebuilt: AtomicU64::new(0),
    read_changed: AtomicU64::new(0),
};

fn took(path: &AtomicU64) {
    path.fetch_add(1, Ordering::Relaxed);
}

/// The SQLSTATE of `mimamori_expect`: the batch's read no longer holds.
const READ_NO_LONGER_HOLDS: &str = "MM001";

/// [`answer_checkins`] in two round trips and one commit (PostgreSQL): what the batch needs
/// is read ([`READ_FOR_ANSWERS`]), the rules run here, and everything is written by one
/// autocommit statement ([`WRITE_ANSWERS`]) that writes all of it or nothing — against a
/// transaction's four (`BEGIN`, [`FOLDED_ANSWERS`], the rule states, `COMMIT`). `None`
/// (nothing written) when the batch needs that transaction after all: a rule fired (an
/// escalation is opened with its timeline, notifications and audit, under the
/// transaction's locks), a person's rule state must be rebuilt from their history, or the
/// read no longer held when the write came (another batch answered a check-in or moved a
/// person's rule state in between).
async fn read_then_write(
    conn: &mut sqlx::PgConnection,
    batch: &[AnswerIn],
    rules: &Thresholds,
) -> Result<Option<Vec<Result<Outcome>>>> {
    let t = now();
    let mut ids: Vec<i64> = batch.iter().map(|a| a.checkin_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<FoldedRow> = sqlx::query_as(READ_FOR_ANSWERS)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
    let mut opened: HashMap<i64, i64> = HashMap::new();
    let mut statuses: HashMap<i64, String> = HashMap::new();
    let mut read: Vec<RuleInput> = Vec::new();
    for (kind, id, b, c, d, e, f, g, h) in rows {
        match (kind, b, c, d) {
            (0, Some(person), Some(status), _) => {
                if crate::codes::CheckinStatus::is_open_str(&status) {
                    opened.insert(id, person);
                } else {
                    statuses.insert(id, status);
                }
            }
            (2, Some(centre), Some(zone), Some(overrides)) => {
                read.push((id, centre, zone, overrides, e, f, g, h.unwrap_or(0)));
            }
            _ => {
                return Err(Error::Internal(
                    "an unexpected row from the answers' read".into(),
                ));
            }
        }
    }
    let recording = first_answers(batch, &opened);
    if recording.is_empty() {
        // Nothing open: nothing to write.
        return Ok(Some(outcomes(
            batch,
            &opened,
            &statuses,
            &[],
            &recording,
            Vec::new(),
        )));
    }
    // The rules count the person's stored observations with this batch's own.
    for r in &mut read {
        r.7 += recording.iter().filter(|(_, p)| *p == r.0).count() as i64;
    }
    // The observations' ids are not known yet; the rules do not need them (only a rebuild
    // does, and a rebuild goes through the transaction).
    let unwritten: Vec<RuleItem<'_>> = recording
        .iter()
        .map(|(i, person)| (*person, &batch[*i].answer, t, 0))
        .collect();
    let mut ev = Evaluation::new(&unwritten, read, rules)?;
    if !ev.to_rebuild().is_empty() {
        took(&BATCH_PATHS.rebuilt);
        return Ok(None);
    }
    ev.step();
    let states = ev.states();
    let triggers = ev.into_triggers();
    if triggers.iter().any(|t| !t.is_empty()) {
        took(&BATCH_PATHS.rule_fired);
        return Ok(None);
    }
    let n = recording.len();
    let c = Columns::of(recording.iter().map(|(i, p)| (&batch[*i], *p)));
    let (state_person, (state, seq)): (Vec<i64>, (Vec<String>, Vec<i64>)) =
        states.into_iter().map(|(p, s, q)| (p, (s, q))).unzip();
    let written: std::result::Result<Vec<(i64, i64)>, sqlx::Error> = sqlx::query_as(WRITE_ANSWERS)
        .bind(t)
        .bind(&c.checkin)
        .bind(&c.person)
        .bind(&c.source)
        .bind(&c.reporter)
        .bind(&c.temperature)
        .bind(&c.spo2)
        .bind(&c.symptoms)
        .bind(&c.urgent)
        .bind(&c.actor_kind)
        .bind(&c.actor_id)
        .bind(&c.action)
        .bind(&state_person)
        .bind(&state)
        .bind(&seq)
        .bind(n as i64)
        .bind(state_person.len() as i64)
        .fetch_all(&mut *conn)
        .await;
    let written = match written {
        Ok(rows) => rows,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(READ_NO_LONGER_HOLDS) => {
            took(&BATCH_PATHS.read_changed);
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    took(&BATCH_PATHS.one_statement);
    let observation_ids: HashMap<i64, i64> = written
        .into_iter()
        .filter(|(checkin, _)| *checkin != 0)
        .collect();
    let items = rule_items(batch, &recording, &observation_ids, t)?;
    Ok(Some(outcomes(
        batch, &opened, &statuses, &items, &recording, triggers,
    )))
}

/// A batch's answers as one array per column, for PostgreSQL's `unnest`: check-in,
/// person, the observation's source and reporter, temperature, SpO2, symptoms, urgent, and
/// the audit row's actor kind, actor id and action.
struct Columns<'a> {
    checkin: Vec<i64>,
    person: Vec<i64>,
    source: Vec<&'a str>,
    reporter: Vec<&'static str>,
    temperature: Vec<Option<f64>>,
    spo2: Vec<Option<i32>>,
    symptoms: Vec<String>,
    urgent: Vec<bool>,
    actor_kind: Vec<&'static str>,
    actor_id: Vec<Option<i64>>,
    action: Vec<&'static str>,
}

impl<'a> Columns<'a> {
    /// Of (answer, its person; 0 when not known yet).
    fn of(answers: impl ExactSizeIterator<Item = (&'a AnswerIn, i64)>) -> Self {
        let n = answers.len();
        let mut c = Columns {
            checkin: Vec::with_capacity(n),
            person: Vec::with_capacity(n),
            source: Vec::with_capacity(n),
            reporter: Vec::with_capacity(n),
            temperature: Vec::with_capacity(n),
            spo2: Vec::with_capacity(n),
            symptoms: Vec::with_capacity(n),
            urgent: Vec::with_capacity(n),
            actor_kind: Vec::with_capacity(n),
            actor_id: Vec::with_capacity(n),
            action: Vec::with_capacity(n),
        };
        for (a, person) in answers {
            let (source, reporter) = source_and_reporter(a);
            let (actor, action) = answer_audit(a, person);
            let (kind, id) = actor.parts();
            c.checkin.push(a.checkin_id);
            c.person.push(person);
            c.source.push(source);
            c.reporter.push(reporter);
            c.temperature
                .push(a.answer.temperature.map(Temperature::value));
            c.spo2.push(a.answer.spo2.map(Spo2::value));
            c.symptoms.push(a.answer.symptoms_json());
            c.urgent.push(a.answer.urgent);
            c.actor_kind.push(kind);
            c.actor_id.push(id);
            c.action.push(action);
        }
        c
    }
}

/// The observation's source and reporter: the channel and the person's own, or the phone
/// simulator's and staff for a staff member's simulated entry.
fn source_and_reporter(a: &AnswerIn) -> (&str, &'static str) {
    if a.simulated_by.is_some() {
        ("simulator", "staff")
    } else {
        (a.source.as_str(), "self")
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
    // The person is known only once the check-in is read: the statement fills it in.
    let c = Columns::of(batch.iter().map(|a| (a, 0)));
    let rows: Vec<FoldedRow> = sqlx::query_as(FOLDED_ANSWERS)
        .bind(t)
        .bind(&c.checkin)
        .bind(&c.source)
        .bind(&c.reporter)
        .bind(&c.temperature)
        .bind(&c.spo2)
        .bind(&c.symptoms)
        .bind(&c.urgent)
        .bind(&c.actor_kind)
        .bind(&c.actor_id)
        .bind(&c.action)
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
                let (src, rep) = source_and_reporter(a);
                q = q
                    .bind(*person)
                    .bind(a.checkin_id)
                    .bind(src)
                    .bind(rep)
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
