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

mod attempts;
mod link;

pub use attempts::*;
pub use link::*;

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
    /// The claim this check-in is held under: only its holder moves it on from `sending`
    /// (a failure report can hand the check-in to a later batch while this one still runs).
    pub claim: String,
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

/// Renews this worker's claim on check-ins still being sent (`ids` from its batch, held under
/// `claims`, the batch's few tokens): a paced batch can outlast the lease (200 calls at one a
/// second per number take minutes), and a claim that ran out would let another worker take —
/// and send — the same check-ins. A check-in that has since been handed to another batch is
/// not renewed.
pub async fn renew_claims(db: &Db, ids: &[i64], claims: &[&str], at: DateTime<Utc>) -> Result<u64> {
    let mut renewed = 0;
    for chunk in ids.chunks(500) {
        // The ids are integers from our own claim, not input.
        let sql = format!(
            "UPDATE checkins SET claimed_at = $1
             WHERE status = 'sending' AND id IN ({}) AND claim_token IN ({})",
            crate::store::id_list(chunk),
            numbered(2, claims.len())
        );
        renewed += with_db!(db, p => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(at);
            for c in claims {
                q = q.bind(*c);
            }
            q.persistent(false).execute(p).await?.rows_affected()
        });
    }
    Ok(renewed)
}

/// `$first, …` for `n` values.
fn numbered(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The distinct claims of a batch's check-ins (one per claim query: a due claim and a
/// reminder claim or two).
pub fn claims_of<'a>(claims: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = claims.collect();
    v.sort_unstable();
    v.dedup();
    v
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
                p.name AS person_name, c.local_date, c.claim_token AS claim
         FROM checkins c JOIN persons p ON p.id = c.person_id JOIN health_centres h ON h.id = p.health_centre_id
         WHERE c.claim_token = $1 ORDER BY c.due_at").bind(token).fetch_all(p).await?))
}

fn uuid_like() -> String {
    use rand::Rng;
    let v: u128 = rand::rng().random();
    format!("{v:032x}")
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
    crate::store::guard::read_records(
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
    crate::store::guard::read_records(
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
