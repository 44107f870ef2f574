//! Answers to check-ins, recorded a batch at a time (the answer writer's group commit,
//! [`crate::ingest`]): on PostgreSQL most of a batch in one statement, on SQLite a
//! statement at a time; the rules run in the same transaction.
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
