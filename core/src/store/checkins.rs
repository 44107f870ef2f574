//! Check-ins: planned per person × local date × slot, claimed and sent by the dispatcher,
//! closed by an answer or by the deadline sweep. Every row ends in one final status.
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::db::{BeginWrite, WriteTx};
use crate::{
    Db, Error, Result,
    access::{Access, FieldGroup},
    db::now,
    store::{Actor, dialect, escalations},
    with_db,
};

macro_rules! plan_insert {
    ($filter:literal) => {
        concat!(
            "INSERT INTO checkins (person_id, local_date, slot, due_at, deadline_at, status, attempts)
             SELECT p.id, $1, s.slot, $2, $3, 'planned', 0
             FROM person_slots s JOIN persons p ON p.id = s.person_id
             WHERE p.status = 'observing' AND p.observation_start <= $1 AND p.observation_end >= $1 ",
            $filter,
            " ON CONFLICT (person_id, local_date, slot) DO NOTHING"
        )
    };
}

/// Plans one slot of one local date for every person of a health centre with that slot.
/// $1 date, $2 due, $3 deadline, $4 centre, $5 slot minutes.
const PLAN_GROUP_SQL: &str = plan_insert!("AND p.health_centre_id = $4 AND s.minutes = $5");
/// The same for one slot of one person ($4 person id, $5 slot), used inside the
/// registration transaction.
pub(crate) const PLAN_PERSON_SQL: &str = plan_insert!("AND p.id = $4 AND s.slot = $5");

fn tz(name: &str) -> Result<Tz> {
    name.parse()
        .map_err(|_| Error::Internal(format!("unknown time zone {name}")))
}

/// The UTC instant of `minutes` after local midnight of `date` in `tz`.
pub fn slot_instant(tz: Tz, date: NaiveDate, minutes: i32) -> DateTime<Utc> {
    let local = date.and_hms_opt(0, 0, 0).expect("midnight") + Duration::minutes(minutes.into());
    tz.from_local_datetime(&local)
        .earliest()
        .unwrap_or_else(|| tz.from_utc_datetime(&local))
        .with_timezone(&Utc)
}

pub fn local_date(tz: Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// Today's check-in of a newly registered person: due at the slot, or now if the slot has
/// already passed.
pub(crate) struct PersonPlan {
    pub local_date: NaiveDate,
    pub due_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
}

impl PersonPlan {
    pub fn today(
        time_zone: &str,
        slot_minutes: i32,
        at: DateTime<Utc>,
        window: Duration,
    ) -> Result<PersonPlan> {
        let tz = tz(time_zone)?;
        let d = local_date(tz, at);
        let due = slot_instant(tz, d, slot_minutes).max(at);
        Ok(PersonPlan {
            local_date: d,
            due_at: due,
            deadline_at: due + window,
        })
    }
}

/// Creates the check-ins of the local day containing `at` for everyone under observation,
/// one set-based statement per (health centre, slot). Idempotent: running it twice creates
/// nothing new. `window` is how long after the due time an answer is accepted. Returns the
/// number of check-ins created.
pub async fn plan_day(db: &Db, at: DateTime<Utc>, window: Duration) -> Result<u64> {
    if let Db::Postgres(p) = db {
        // One statement for every health centre and slot: PostgreSQL does the time-zone
        // arithmetic itself.
        // Memory for the hash joins over everyone under observation (1.5 million at the
        // 2022 peak), so they do not spill to disk; only for this transaction.
        let mut tx = p.begin_write().await?;
        sqlx::query("SET LOCAL work_mem = '256MB'")
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query(dialect::PLAN_DAY_POSTGRES)
            .bind(at)
            .bind(window.num_seconds() as f64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        return Ok(n);
    }
    let groups: Vec<(i64, String, i32)> = with_db!(db, p => sqlx::query_as(
        "SELECT DISTINCT p.health_centre_id, h.time_zone, s.minutes
         FROM person_slots s JOIN persons p ON p.id = s.person_id JOIN health_centres h ON h.id = p.health_centre_id
         WHERE p.status = 'observing'").fetch_all(p).await?);
    let mut created = 0;
    for (centre, zone, slot) in groups {
        let tz = tz(&zone)?;
        let date = local_date(tz, at);
        let due = slot_instant(tz, date, slot);
        created += with_db!(db, p => sqlx::query(PLAN_GROUP_SQL)
            .bind(date).bind(due).bind(due + window).bind(centre).bind(slot)
            .execute(p).await?.rows_affected());
    }
    Ok(created)
}

/// A check-in claimed for sending, with what is needed to reach the person.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueCheckin {
    pub id: i64,
    pub person_id: i64,
    pub attempts: i32,
    /// Reminders sent so far (0 = the first message).
    pub reminders: i32,
    pub deadline_at: DateTime<Utc>,
    pub channel: String,
    pub fallback_channel: Option<String>,
    /// The primary channel failed: this check-in now goes through the fallback channel.
    pub on_fallback: bool,
    pub monitoring_type: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub language: String,
    pub health_centre_name: String,
    pub health_centre_phone: String,
    /// For the short form that tells a family sharing one phone whose message it is.
    pub person_name: String,
    pub local_date: NaiveDate,
}

/// A dispatcher lane: calls and texts (SMS, e-mail) are claimed and sent apart, each at its
/// own numbers' pace, so that neither waits behind the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Voice,
    Text,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Text, Lane::Voice];

    fn voice(lane: Option<Lane>) -> Option<bool> {
        lane.map(|l| l == Lane::Voice)
    }
}

/// Claims up to `limit` due check-ins (and abandoned claims older than `lease`), of every lane.
pub async fn claim_due(
    db: &Db,
    at: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> Result<Vec<DueCheckin>> {
    claim_due_in(db, None, at, lease, limit).await
}

/// [`claim_due`] for one lane (`None`: every lane).
pub async fn claim_due_in(
    db: &Db,
    lane: Option<Lane>,
    at: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> Result<Vec<DueCheckin>> {
    let token = uuid_like();
    let sql = dialect::claim_due(db, lane.is_some());
    let n = with_db!(db, p => sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(at).bind(at - lease).bind(limit).bind(&token).bind(Lane::voice(lane))
        .execute(p).await?.rows_affected());
    claimed(db, n, &token).await
}

/// An attempt still waiting for its provider's report.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenAttempt {
    pub key: String,
    pub channel: String,
    pub provider: String,
    pub provider_id: String,
}

/// Attempts sent before `before` whose provider has not reported (oldest first): their
/// outcome is asked of the provider (`dispatch::reconcile`).
pub async fn open_attempts(db: &Db, before: DateTime<Utc>, limit: i64) -> Result<Vec<OpenAttempt>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT idempotency_key AS key, channel, provider, provider_id FROM contact_attempts
         WHERE status IN ('queued', 'sent') AND updated_at < $1 AND provider_id IS NOT NULL
           AND created_at > $3
         ORDER BY updated_at LIMIT $2")
        .bind(before).bind(limit).bind(before - Duration::days(2)).fetch_all(p).await?))
}

/// An attempt asked of the provider that is still under way: to the back of the queue.
pub async fn touch_attempt(db: &Db, key: &str, at: DateTime<Utc>) -> Result<()> {
    with_db!(db, p => sqlx::query(
        "UPDATE contact_attempts SET updated_at = $1 WHERE idempotency_key = $2 AND status IN ('queued', 'sent')")
        .bind(at).bind(key).execute(p).await?.rows_affected());
    Ok(())
}

/// Renews this worker's claim on check-ins still being sent (`ids` from its batch): a paced
/// batch can outlast the lease (200 calls at one a second per number take minutes), and a
/// claim that ran out would let another worker take — and send — the same check-ins.
pub async fn renew_claims(db: &Db, ids: &[i64], at: DateTime<Utc>) -> Result<u64> {
    let mut renewed = 0;
    for chunk in ids.chunks(500) {
        // The ids are integers from our own claim, not input.
        let list = crate::store::id_list(chunk);
        let sql = format!(
            "UPDATE checkins SET claimed_at = $1 WHERE status = 'sending' AND id IN ({list})"
        );
        renewed += with_db!(db, p => sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(at).persistent(false).execute(p).await?.rows_affected());
    }
    Ok(renewed)
}

/// Claims up to `limit` check-ins of people with `monitoring_type` sent more than `after` ago
/// and still unanswered, for a reminder; at most `max` reminders per check-in.
pub async fn claim_reminders(
    db: &Db,
    monitoring_type: &str,
    at: DateTime<Utc>,
    after: Duration,
    max: i32,
    limit: i64,
) -> Result<Vec<DueCheckin>> {
    claim_reminders_in(db, None, monitoring_type, at, after, max, limit).await
}

/// [`claim_reminders`] for one lane (`None`: every lane).
pub async fn claim_reminders_in(
    db: &Db,
    lane: Option<Lane>,
    monitoring_type: &str,
    at: DateTime<Utc>,
    after: Duration,
    max: i32,
    limit: i64,
) -> Result<Vec<DueCheckin>> {
    let token = uuid_like();
    let sql = dialect::claim_reminders(db);
    let n = with_db!(db, p => sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(at).bind(at - after).bind(limit).bind(&token).bind(max).bind(monitoring_type)
        .bind(Lane::voice(lane)).execute(p).await?.rows_affected());
    claimed(db, n, &token).await
}

async fn claimed(db: &Db, n: u64, token: &str) -> Result<Vec<DueCheckin>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT c.id, c.person_id, c.attempts, c.reminders, c.deadline_at, p.channel, p.fallback_channel, c.on_fallback, p.monitoring_type, p.phone, p.email,
                p.language, h.name AS health_centre_name, h.phone AS health_centre_phone,
                p.name AS person_name, c.local_date
         FROM checkins c JOIN persons p ON p.id = c.person_id JOIN health_centres h ON h.id = p.health_centre_id
         WHERE c.claim_token = $1 ORDER BY c.due_at").bind(token).fetch_all(p).await?))
}

fn uuid_like() -> String {
    use rand::Rng;
    let v: u128 = rand::rng().random();
    format!("{v:032x}")
}

/// The idempotency key of the current send attempt of a check-in: our own id of the
/// attempt from before the request leaves (it travels in the status-callback URL, so a
/// report is matched whenever it arrives). The channel is part of it: attempts on the
/// fallback channel count from 0 again.
pub fn attempt_key(checkin_id: i64, reminders: i32, channel: &str, attempts: i32) -> String {
    format!("checkin-{checkin_id}-r{reminders}-{channel}-try-{attempts}")
}

/// One attempt about to be made, for [`begin_attempts`].
pub struct NewAttempt<'a> {
    pub checkin_id: i64,
    pub key: &'a str,
    pub channel: &'a str,
    pub provider: &'a str,
    pub kind: &'a str,
}

/// Records the start of a batch of attempts in one transaction, before anything is sent.
/// Returns, per idempotency key, the provider id of attempts that already went out (a
/// crashed worker's claim being retried): those must not be sent again.
pub async fn begin_attempts(
    db: &Db,
    items: &[NewAttempt<'_>],
) -> Result<std::collections::HashMap<String, String>> {
    let t = now();
    let mut done = std::collections::HashMap::new();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        for a in items {
            let id: Option<String> = sqlx::query_scalar(
                "INSERT INTO contact_attempts (checkin_id, channel, provider, idempotency_key, kind, status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 'queued', $6, $6)
                 ON CONFLICT (idempotency_key) DO UPDATE SET kind = contact_attempts.kind RETURNING provider_id")
                .bind(a.checkin_id).bind(a.channel).bind(a.provider).bind(a.key).bind(a.kind).bind(t)
                .fetch_one(&mut *tx).await?;
            if let Some(id) = id {
                done.insert(a.key.to_string(), id);
            }
        }
        tx.commit().await?;
    });
    Ok(done)
}

/// The provider accepted these messages or calls: (check-in, key, provider id), recorded in
/// one transaction.
pub async fn mark_sent_many(db: &Db, items: &[(i64, String, String)]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        for (checkin_id, key, provider_id) in items {
            // A report may have come first: it keeps its status; the id is filled in.
            sqlx::query("UPDATE contact_attempts SET status = CASE WHEN status = 'queued' THEN 'sent' ELSE status END,
                                provider_id = $1, updated_at = $2 WHERE idempotency_key = $3")
                .bind(provider_id).bind(t).bind(key).execute(&mut *tx).await?;
            // Only while nothing moved it on (a report that came first has).
            sqlx::query("UPDATE checkins SET status = 'sent', sent_at = $1, claim_token = NULL WHERE id = $2 AND status = 'sending'")
                .bind(t).bind(checkin_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// A failed send, as the provider or the transport reported it.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    /// The attempt's idempotency key.
    pub key: &'a str,
    /// The channel that failed (for the escalation's detail).
    pub channel: &'a str,
    /// What the attempt's status becomes: `failed` for a refused send, or the provider's
    /// reported status (`busy`, `no-answer`, `undelivered`, …).
    pub status: &'a str,
    /// The provider's error or status, stored on the attempt.
    pub error: &'a str,
    /// The number or address can never be reached (invalid number, unreachable handset).
    pub permanent: bool,
    pub max_attempts: i32,
    pub backoff: Duration,
}

/// What a failed attempt did to its check-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Planned again on the same channel after a back-off.
    Retry,
    /// The primary channel is used up: planned at once on the person's fallback channel.
    Fallback,
    /// No channel left: the check-in ended `failed` with an `unreachable` escalation.
    Ended,
    /// Nothing changed but the attempt: its check-in is already final (answered, closed) or
    /// has moved on to a later attempt. A final outcome is never overwritten.
    Stale,
}

/// The transition of a failed attempt, inside the caller's transaction. Every guard is in
/// the statement that makes the change: only the check-in's latest attempt counts, and only
/// while the check-in is `sending` or `sent`. A permanent failure or the last allowed
/// attempt moves to the person's fallback channel when there is one not yet tried, and
/// otherwise ends the check-in as `failed` and raises the `unreachable` escalation — in the
/// same transaction, so no crash between the two can lose the person silently.
pub async fn fail_in_tx<DB>(
    tx: &mut WriteTx<DB>,
    f: Failure<'_>,
    t: DateTime<Utc>,
) -> Result<Failed>
where
    DB: sqlx::Database,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'q> DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> i32: sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> bool: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> (i64, String): sqlx::FromRow<'q, DB::Row>,
    for<'q> (i64, i64): sqlx::FromRow<'q, DB::Row>,
    for<'q> (i32, i64, bool): sqlx::FromRow<'q, DB::Row>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let Some((attempt, checkin_id)): Option<(i64, i64)> = sqlx::query_as(
        "UPDATE contact_attempts SET status = $1, error = $2, updated_at = $3 WHERE idempotency_key = $4 RETURNING id, checkin_id",
    )
    .bind(f.status)
    .bind(f.error)
    .bind(t)
    .bind(f.key)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(Failed::Stale);
    };
    let Some((attempts, person_id, on_fallback)): Option<(i32, i64, bool)> = sqlx::query_as(
        "UPDATE checkins SET attempts = attempts + 1, claim_token = NULL
         WHERE id = $1 AND status IN ('sending', 'sent')
           AND NOT EXISTS (SELECT 1 FROM contact_attempts a WHERE a.checkin_id = $1 AND a.id > $2)
         RETURNING attempts, person_id, on_fallback",
    )
    .bind(checkin_id)
    .bind(attempt)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(Failed::Stale);
    };
    if !(f.permanent || attempts >= f.max_attempts) {
        sqlx::query("UPDATE checkins SET status = 'planned', due_at = $1 WHERE id = $2")
            .bind(t + f.backoff * attempts)
            .bind(checkin_id)
            .execute(&mut **tx)
            .await?;
        return Ok(Failed::Retry);
    }
    let fallback: Option<String> =
        sqlx::query_scalar("SELECT fallback_channel FROM persons WHERE id = $1")
            .bind(person_id)
            .fetch_one(&mut **tx)
            .await?;
    if !on_fallback && fallback.as_deref().is_some_and(|fb| fb != f.channel) {
        sqlx::query(
            "UPDATE checkins SET status = 'planned', due_at = $1, attempts = 0, on_fallback = $2 WHERE id = $3",
        )
        .bind(t)
        .bind(true)
        .bind(checkin_id)
        .execute(&mut **tx)
        .await?;
        return Ok(Failed::Fallback);
    }
    sqlx::query("UPDATE checkins SET status = 'failed', closed_at = $1 WHERE id = $2")
        .bind(t)
        .bind(checkin_id)
        .execute(&mut **tx)
        .await?;
    let detail = format!("{} failed: {}", f.channel, f.error);
    escalations::raise(
        tx,
        escalations::Raise {
            person_id,
            reason: "unreachable",
            priority: crate::rules::Priority::High,
            detail: &detail,
            actor: Actor::System,
        },
        t,
    )
    .await?;
    Ok(Failed::Ended)
}

/// [`fail_in_tx`] in its own transaction (a send the provider refused).
pub async fn mark_failed(db: &Db, f: Failure<'_>) -> Result<Failed> {
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let r = fail_in_tx(&mut tx, f, t).await?;
        tx.commit().await?;
        Ok(r)
    })
}

/// The send could not be made for a fault of our own set-up (an operator alarm is open):
/// the attempt is recorded as failed, the check-in goes back to `planned` for `retry_at`
/// without counting an attempt — no patient is failed or escalated for it.
pub async fn put_back(db: &Db, key: &str, error: &str, retry_at: DateTime<Utc>) -> Result<()> {
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let checkin: Option<i64> = sqlx::query_scalar(
            "UPDATE contact_attempts SET status = 'failed', error = $1, updated_at = $2 WHERE idempotency_key = $3 RETURNING checkin_id")
            .bind(error).bind(t).bind(key).fetch_optional(&mut *tx).await?;
        if let Some(c) = checkin {
            sqlx::query("UPDATE checkins SET status = 'planned', due_at = $1, claim_token = NULL WHERE id = $2 AND status = 'sending'")
                .bind(retry_at).bind(c).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Ends every open check-in whose deadline has passed as `missed` and, in the same
/// transaction, runs the silence rule for the people concerned (`rules.non_reporting_streak`
/// missed in a row opens or refreshes their `non_reporting` escalation) — so no crash
/// between the two can leave a silent person without an escalation. Returns the people
/// whose check-ins were closed (one entry per check-in) and those escalated.
pub async fn close_overdue(
    db: &Db,
    at: DateTime<Utc>,
    rules: &crate::rules::Thresholds,
) -> Result<(Vec<i64>, Vec<i64>)> {
    let n = i64::from(rules.non_reporting_streak);
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let closed: Vec<i64> = sqlx::query_scalar(
            "UPDATE checkins SET status = 'missed', closed_at = $1, claim_token = NULL
             WHERE status IN ('planned', 'sent') AND deadline_at < $1 RETURNING person_id")
            .bind(at).fetch_all(&mut *tx).await?;
        let mut people = closed.clone();
        people.sort_unstable();
        people.dedup();
        let mut escalated = Vec::new();
        let since = at - chrono::Duration::days(i64::from(rules.high_risk_recent_escalation_days));
        let today = at.with_timezone(&chrono_tz::Asia::Tokyo).date_naive();
        for person in people {
            let recent: Vec<String> = sqlx::query_scalar(RECENT_OUTCOMES_SQL)
                .bind(person).bind(n).fetch_all(&mut *tx).await?;
            let (dob, conditions, serious): (Option<NaiveDate>, Option<String>, bool) = sqlx::query_as(RISK_SQL)
                .bind(person).bind(since).fetch_one(&mut *tx).await?;
            let risk = risk_of(dob, conditions.as_deref(), serious, today);
            if let Some(tr) = crate::rules::on_missed(rules, &recent, &risk) {
                escalations::raise(&mut tx, escalations::Raise {
                    person_id: person,
                    reason: tr.reason,
                    priority: tr.priority,
                    detail: &tr.detail,
                    actor: Actor::System,
                }, at).await?;
                escalated.push(person);
            }
        }
        tx.commit().await?;
        Ok((closed, escalated))
    })
}

/// What the silence rule needs to know about a person's risk: $1 person, $2 since when a
/// closed high or urgent escalation still counts. A `non_reporting` escalation does not count
/// (silence does not make itself worse).
const RISK_SQL: &str = "SELECT p.date_of_birth,
        (SELECT s.data FROM person_sections s WHERE s.person_id = p.id AND s.section = 'underlying_conditions'),
        EXISTS (SELECT 1 FROM escalations e WHERE e.person_id = p.id AND e.priority IN ('high', 'urgent')
                AND e.reason <> 'non_reporting' AND (e.status <> 'resolved' OR e.opened_at >= $2))
     FROM persons p WHERE p.id = $1";

fn risk_of(
    dob: Option<NaiveDate>,
    conditions: Option<&str>,
    recent_serious_escalation: bool,
    today: NaiveDate,
) -> crate::rules::Risk {
    use chrono::Datelike;
    let age = dob.and_then(|d| {
        let mut a = today.year() - d.year();
        if (today.month(), today.day()) < (d.month(), d.day()) {
            a -= 1;
        }
        u32::try_from(a).ok()
    });
    let (conditions, pregnant) = conditions
        .and_then(|c| serde_json::from_str::<crate::store::sections::UnderlyingConditions>(c).ok())
        .map(|c| c.risk())
        .unwrap_or_default();
    crate::rules::Risk {
        age,
        conditions,
        pregnant,
        recent_serious_escalation,
    }
}

/// A person's latest final outcomes: $1 person, $2 how many.
const RECENT_OUTCOMES_SQL: &str = "SELECT status FROM checkins WHERE person_id = $1 AND status IN ('answered', 'missed', 'failed')
     ORDER BY due_at DESC, slot DESC LIMIT $2";

/// A person's latest final check-in outcomes, newest first.
pub async fn recent_outcomes(db: &Db, person_id: i64, n: i64) -> Result<Vec<String>> {
    Ok(with_db!(db, p => sqlx::query_scalar(RECENT_OUTCOMES_SQL)
        .bind(person_id).bind(n).fetch_all(p).await?))
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct Checkin {
    pub id: i64,
    pub person_id: i64,
    pub local_date: NaiveDate,
    pub slot: i32,
    pub due_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    pub status: String,
    pub attempts: i32,
    pub sent_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

const CHECKIN_COLUMNS: &str =
    "id, person_id, local_date, slot, due_at, deadline_at, status, attempts, sent_at, closed_at";

pub async fn get(db: &Db, id: i64) -> Result<Checkin> {
    let sql = format!("SELECT {CHECKIN_COLUMNS} FROM checkins WHERE id = $1");
    with_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(p).await?).ok_or(Error::NotFound("check-in"))
}

pub async fn list_for_person(db: &Db, access: Access<'_>, person_id: i64) -> Result<Vec<Checkin>> {
    let sql = format!(
        "SELECT {CHECKIN_COLUMNS} FROM checkins WHERE person_id = $1 ORDER BY local_date, slot"
    );
    crate::store::persons::read_records(
        db,
        access,
        person_id,
        FieldGroup::HealthObservation,
        "checkin.list",
        &sql,
        None,
    )
    .await
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Attempt {
    pub checkin_id: i64,
    pub kind: String,
    pub channel: String,
    pub provider: String,
    pub provider_id: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn attempts_for_person(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
) -> Result<Vec<Attempt>> {
    crate::store::persons::read_records(
        db,
        access,
        person_id,
        FieldGroup::HealthObservation,
        "checkin.attempts.read",
        "SELECT a.checkin_id, a.kind, a.channel, a.provider, a.provider_id, a.status, a.error, a.created_at
         FROM contact_attempts a JOIN checkins c ON c.id = a.checkin_id
         WHERE c.person_id = $1 ORDER BY a.id",
        None,
    )
    .await
}

/// What the patient page behind a signed link needs: no name, no contact details.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkContext {
    pub checkin_id: i64,
    pub status: String,
    pub person_id: i64,
    pub language: String,
    pub monitoring_type: String,
    pub health_centre_name: String,
    /// The name an English call reads (empty: "your health centre").
    pub health_centre_name_en: String,
    /// Calls to this person are read slower and wait longer for keys.
    pub slow_speech: bool,
    pub health_centre_phone: String,
    /// The channel of the latest SMS or e-mail sent for this check-in — what carried the
    /// link (`None`: no link was sent, e.g. the simulator or a call).
    pub link_channel: Option<String>,
    /// The person's name, for the short form a shared family phone needs
    /// ([`crate::domain::short_name`]); never logged.
    pub person_name: String,
    /// The local day this check-in is for.
    pub local_date: NaiveDate,
}

impl LinkContext {
    /// The centre's name as a call in `lang` reads it: an English voice cannot read
    /// Japanese, so English calls use `name_en` or "your health centre".
    pub fn centre_name_for(&self, lang: crate::domain::Lang) -> &str {
        match lang {
            crate::domain::Lang::Ja => &self.health_centre_name,
            crate::domain::Lang::En if !self.health_centre_name_en.trim().is_empty() => {
                &self.health_centre_name_en
            }
            crate::domain::Lang::En => "your health centre",
        }
    }

    /// The observation source of an answer through the link: `sms` or `email` by what
    /// carried it, `web` otherwise.
    pub fn link_source(&self) -> &'static str {
        match self.link_channel.as_deref() {
            Some("sms") => "sms",
            Some("email") => "email",
            _ => "web",
        }
    }
}

/// Another member of a household sharing one phone whose check-in of the same day is still
/// open: after one member's answer, the page walks on to the next.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HouseholdMember {
    pub checkin_id: i64,
    pub person_name: String,
    pub deadline_at: DateTime<Utc>,
}

/// The open check-ins of the same local day of the other people with the same phone number
/// (and centre) as `checkin_id`'s person, oldest person first.
pub async fn household_open(db: &Db, checkin_id: i64) -> Result<Vec<HouseholdMember>> {
    Ok(with_db!(db, p => sqlx::query_as(
        concat!("SELECT o.id AS checkin_id, q.name AS person_name, o.deadline_at
         FROM checkins c JOIN persons p ON p.id = c.person_id
         JOIN persons q ON q.phone = p.phone AND q.health_centre_id = p.health_centre_id AND q.id <> p.id
         JOIN checkins o ON o.person_id = q.id AND o.local_date = c.local_date
         WHERE c.id = $1 AND p.phone IS NOT NULL AND p.phone <> ''
           AND o.status IN ", crate::open_checkin_statuses!(), "
         ORDER BY q.id, o.slot LIMIT 10"))
        .bind(checkin_id).fetch_all(p).await?))
}

/// The page after an answer, in one read: the link's context, whether the answer was
/// urgent (an urgent sign, or an urgent rule that fired since; `None`: not answered) and whether anyone
/// else shares the person's phone (only then are the household's open check-ins read).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DoneContext {
    #[sqlx(flatten)]
    pub link: LinkContext,
    pub urgent: Option<bool>,
    pub shared_phone: bool,
}

pub async fn done_context(db: &Db, checkin_id: i64) -> Result<DoneContext> {
    with_db!(db, p => sqlx::query_as(
        "SELECT c.id AS checkin_id, c.status, c.person_id, p.language, p.monitoring_type, p.slow_speech,
                h.name AS health_centre_name, h.name_en AS health_centre_name_en, h.phone AS health_centre_phone,
                NULL AS link_channel, p.name AS person_name, c.local_date,
                (SELECT o.urgent OR EXISTS (
                    SELECT 1 FROM escalation_events v JOIN escalations e ON e.id = v.escalation_id
                    WHERE v.person_id = o.person_id AND v.kind = 'triggered' AND e.priority = 'urgent'
                      AND v.at >= o.created_at)
                 FROM observations o WHERE o.checkin_id = c.id) AS urgent,
                (p.phone IS NOT NULL AND p.phone <> '' AND EXISTS (
                    SELECT 1 FROM persons q WHERE q.phone = p.phone
                      AND q.health_centre_id = p.health_centre_id AND q.id <> p.id)) AS shared_phone
         FROM checkins c JOIN persons p ON p.id = c.person_id JOIN health_centres h ON h.id = p.health_centre_id
         WHERE c.id = $1").bind(checkin_id).fetch_optional(p).await?)
    .ok_or(Error::NotFound("check-in"))
}

pub async fn link_context(db: &Db, checkin_id: i64) -> Result<LinkContext> {
    with_db!(db, p => sqlx::query_as(
        "SELECT c.id AS checkin_id, c.status, c.person_id, p.language, p.monitoring_type, p.slow_speech,
                h.name AS health_centre_name, h.name_en AS health_centre_name_en, h.phone AS health_centre_phone,
                (SELECT a.channel FROM contact_attempts a WHERE a.checkin_id = c.id AND a.channel IN ('sms', 'email')
                 ORDER BY a.id DESC LIMIT 1) AS link_channel,
                p.name AS person_name, c.local_date
         FROM checkins c JOIN persons p ON p.id = c.person_id JOIN health_centres h ON h.id = p.health_centre_id
         WHERE c.id = $1").bind(checkin_id).fetch_optional(p).await?)
    .ok_or(Error::NotFound("check-in"))
}
