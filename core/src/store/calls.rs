//! Provider webhooks: duplicate detection, call sessions, delivery status, opt-out, and
//! finding whom a phone number reports for.
use chrono::{DateTime, NaiveDate, Utc};

use crate::db::BeginWrite;
use crate::{Db, Error, Result, db::now, voice::CallState, with_db};

/// Claims webhook delivery `key` before its work is done: true for the first delivery, false
/// for a duplicate (in parallel or later). The claim holds an empty answer until
/// [`answered`] fills it in, or [`release`] gives it up when the work failed (so the
/// provider's retry is handled).
pub async fn claim(db: &Db, key: &str) -> Result<bool> {
    crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query(
        "INSERT INTO webhook_events (key, response, created_at) VALUES ($1, '', $2) ON CONFLICT (key) DO NOTHING")
        .bind(key).bind(now()).execute(e).await?.rows_affected() == 1))
}

/// The answer given to a claimed delivery (empty while the first one is still working).
pub async fn seen(db: &Db, key: &str) -> Result<Option<String>> {
    Ok(
        with_db!(db, p => sqlx::query_scalar("SELECT response FROM webhook_events WHERE key = $1")
        .bind(key).fetch_optional(p).await?),
    )
}

/// Records the answer of a claimed delivery.
pub async fn answered(db: &Db, key: &str, response: &str) -> Result<()> {
    crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query("UPDATE webhook_events SET response = $1 WHERE key = $2")
        .bind(response).bind(key).execute(e).await?.rows_affected()))?;
    Ok(())
}

/// Gives up a claim whose work failed.
pub async fn release(db: &Db, key: &str) -> Result<()> {
    crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query("DELETE FROM webhook_events WHERE key = $1 AND response = ''")
        .bind(key).execute(e).await?.rows_affected()))?;
    Ok(())
}

pub async fn session(db: &Db, call_sid: &str) -> Result<Option<(i64, CallState)>> {
    let row: Option<(i64, String)> = with_db!(db, p => sqlx::query_as(
        "SELECT checkin_id, answers FROM call_sessions WHERE call_sid = $1").bind(call_sid).fetch_optional(p).await?);
    Ok(match row {
        Some((c, json)) => Some((
            c,
            serde_json::from_str(&json).map_err(|e| Error::Internal(e.to_string()))?,
        )),
        None => None,
    })
}

/// Creates or replaces the state of a call. The whole [`CallState`] is kept as JSON in
/// `answers`; `question`, `tries` and `stage` are copied out for people reading the table.
pub async fn save_session(db: &Db, call_sid: &str, checkin_id: i64, s: &CallState) -> Result<()> {
    let json = serde_json::to_string(s).map_err(|e| Error::Internal(e.to_string()))?;
    let stage = serde_json::to_value(s.stage)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let t = now();
    crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query(
        "INSERT INTO call_sessions (call_sid, checkin_id, question, tries, answers, stage, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
         ON CONFLICT (call_sid) DO UPDATE SET checkin_id = $2, question = $3, tries = $4, answers = $5, stage = $6, updated_at = $7")
        .bind(call_sid).bind(checkin_id).bind(s.question as i32).bind(s.tries as i32).bind(json).bind(stage).bind(t)
        .execute(e).await?.rows_affected()))?;
    Ok(())
}

/// SMS STOP: everyone registered with this number stops receiving check-ins; their open
/// check-ins end as `opted_out` and an `unreachable` escalation is raised, in one transaction. Returns the person ids.
pub async fn opt_out(db: &Db, phone: &str) -> Result<Vec<i64>> {
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE persons SET status = 'opted_out', opted_out_at = $1, updated_at = $1
             WHERE phone = $2 AND status = 'observing' RETURNING id")
            .bind(t).bind(phone).fetch_all(&mut *tx).await?;
        for id in &ids {
            sqlx::query(concat!("UPDATE checkins SET status = 'opted_out', closed_at = $1, claim_token = NULL
                         WHERE person_id = $2 AND status IN ", crate::open_checkin_statuses!(), ""))
                .bind(t).bind(id).execute(&mut *tx).await?;
            crate::store::audit(&mut *tx, crate::store::Actor::Person(*id), "person.opt_out", "person", Some(*id), None).await?;
            // In the same transaction: nobody opts out without a human hearing of it.
            crate::store::escalations::raise(&mut tx, crate::store::escalations::Raise {
                person_id: *id,
                reason: "unreachable",
                priority: crate::rules::Priority::High,
                detail: "opted out by SMS STOP",
                actor: crate::store::Actor::System,
            }, t).await?;
        }
        tx.commit().await?;
        Ok(ids)
    })
}

/// SMS START: people who opted out with this number are observed again (from the next
/// planning run). Returns the person ids.
pub async fn opt_in(db: &Db, phone: &str) -> Result<Vec<i64>> {
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE persons SET status = 'observing', opted_out_at = NULL, updated_at = $1
             WHERE phone = $2 AND status = 'opted_out' RETURNING id")
            .bind(t).bind(phone).fetch_all(&mut *tx).await?;
        for id in &ids {
            crate::store::audit(&mut *tx, crate::store::Actor::Person(*id), "person.opt_in", "person", Some(*id), None).await?;
        }
        tx.commit().await?;
        Ok(ids)
    })
}

/// The next open, due check-in of someone else registered with the same phone (a household
/// answering on one call), if any.
pub async fn household_next(
    db: &Db,
    phone: &str,
    except_checkin: i64,
    at: DateTime<Utc>,
) -> Result<Option<i64>> {
    Ok(with_db!(db, p => sqlx::query_scalar(
        concat!("SELECT c.id FROM checkins c JOIN persons p ON p.id = c.person_id
         WHERE p.phone = $1 AND c.id <> $2 AND c.status IN ", crate::open_checkin_statuses!(), " AND c.due_at <= $3
           AND c.person_id <> (SELECT person_id FROM checkins WHERE id = $2)
         ORDER BY p.id, c.slot LIMIT 1"))
        .bind(phone).bind(except_checkin).bind(at).fetch_optional(p).await?))
}

/// Inbound call: the open check-in of the person with this caller id and date of birth.
pub async fn identify(db: &Db, phone: &str, dob: NaiveDate) -> Result<Option<i64>> {
    Ok(with_db!(db, p => sqlx::query_scalar(
        concat!("SELECT c.id FROM checkins c JOIN persons p ON p.id = c.person_id
         WHERE p.phone = $1 AND p.date_of_birth = $2 AND c.status IN ", crate::open_checkin_statuses!(), "
         ORDER BY c.due_at LIMIT 1"))
        .bind(phone).bind(dob).fetch_optional(p).await?))
}

/// Whether someone is registered with this phone and date of birth (a caller identified
/// but with nothing open today hears that, not "could not confirm who you are").
pub async fn known_caller(db: &Db, phone: &str, dob: NaiveDate) -> Result<bool> {
    let n: i64 = with_db!(db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM persons WHERE phone = $1 AND date_of_birth = $2")
        .bind(phone).bind(dob).fetch_one(p).await?);
    Ok(n > 0)
}

/// The phone number of the person a check-in belongs to.
pub async fn phone_of_checkin(db: &Db, checkin_id: i64) -> Result<Option<String>> {
    Ok(with_db!(db, p => sqlx::query_scalar(
        "SELECT p.phone FROM checkins c JOIN persons p ON p.id = c.person_id WHERE c.id = $1")
        .bind(checkin_id).fetch_optional(p).await?)
    .flatten())
}
