//! Contact attempts: recorded under our own key before they leave, marked sent, failed,
//! put back — the contact state machine's writes.
use super::*;

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
    crate::write_once!(db, e => Ok::<_, crate::Error>(sqlx::query(
        "UPDATE contact_attempts SET updated_at = $1 WHERE idempotency_key = $2 AND status IN ('queued', 'sent')")
        .bind(at).bind(key).execute(e).await?.rows_affected()))?;
    Ok(())
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
    /// The claim it is made under ([`DueCheckin::claim`]); None only for attempts made
    /// outside a claim (their failure moves the check-in whatever holds it).
    pub claim: Option<&'a str>,
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
    if items.is_empty() {
        return Ok(done);
    }
    // One statement per chunk, not one per attempt: a batch of 200 took 80 ms of round trips
    // with the database idle (BENCHMARKS.md, sending).
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        for chunk in items.chunks(ROWS_PER_STATEMENT) {
            let values = placeholders(chunk.len(), 6, 2);
            // An attempt begun before (a crashed worker's, or one put back for an operator
            // fault) is the new claim's now; one that never reached the provider (no id) is
            // being made again, so it is queued again — left `failed` from `put_back`, its
            // real report would have been taken for a second word on a failure already counted.
            let sql = format!(
                "INSERT INTO contact_attempts (checkin_id, channel, provider, idempotency_key, kind, claim_token, status, created_at, updated_at)
                 VALUES {values}
                 ON CONFLICT (idempotency_key) DO UPDATE SET claim_token = excluded.claim_token,
                   status = CASE WHEN contact_attempts.provider_id IS NULL THEN 'queued' ELSE contact_attempts.status END
                 RETURNING idempotency_key, provider_id"
            );
            let mut q = sqlx::query_as::<_, (String, Option<String>)>(sqlx::AssertSqlSafe(sql)).bind(t);
            for a in chunk {
                q = q.bind(a.checkin_id).bind(a.channel).bind(a.provider).bind(a.key).bind(a.kind).bind(a.claim);
            }
            for (key, id) in q.fetch_all(&mut *tx).await? {
                if let Some(id) = id {
                    done.insert(key, id);
                }
            }
        }
        tx.commit().await?;
    });
    Ok(done)
}

/// Rows bound per multi-row statement (6 or 2 values each: far under either backend's
/// limit of bound parameters).
const ROWS_PER_STATEMENT: usize = 500;

/// `($2, $3, …, 'queued', $1, $1), (…)` for [`begin_attempts`] (`per` values per row, from
/// `$first`), or `($2, $3), (…)` when `per` is 2 (for [`mark_sent_many`]).
fn placeholders(rows: usize, per: usize, first: usize) -> String {
    (0..rows)
        .map(|r| {
            let vals: Vec<String> = (0..per)
                .map(|i| format!("${}", first + r * per + i))
                .collect();
            if per == 6 {
                format!("({}, 'queued', $1, $1)", vals.join(", "))
            } else {
                format!("({})", vals.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An attempt the provider accepted, for [`mark_sent_many`].
#[derive(Debug, Clone)]
pub struct Sent {
    pub checkin_id: i64,
    /// The claim the check-in was sent under ([`DueCheckin::claim`]).
    pub claim: String,
    /// The attempt's idempotency key.
    pub key: String,
    pub provider_id: String,
}

/// The provider accepted these messages or calls: recorded in one transaction — two
/// statements per chunk, not two per attempt. The attempt always gets its provider id; the
/// check-in becomes `sent` only while this batch's claim still holds it: a report that came
/// first may have moved it on (failed, planned again, on its fallback channel) and another
/// batch may already have claimed it for the next attempt, which this one must not mark
/// sent (that lost the fallback SMS: the check-in read `sent` and the next send never went).
pub async fn mark_sent_many(db: &Db, items: &[Sent]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        for chunk in items.chunks(ROWS_PER_STATEMENT) {
            // A report may have come first: it keeps its status; the id is filled in.
            let sql = format!(
                "WITH v(k, pid) AS (VALUES {})
                 UPDATE contact_attempts SET status = CASE WHEN status = 'queued' THEN 'sent' ELSE status END,
                        provider_id = v.pid, updated_at = $1
                 FROM v WHERE contact_attempts.idempotency_key = v.k",
                placeholders(chunk.len(), 2, 2)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(t);
            for s in chunk {
                q = q.bind(&s.key).bind(&s.provider_id);
            }
            q.execute(&mut *tx).await?;
            // The claims of one batch are few (its due claim and its reminder claims): the
            // check-in is this batch's while its token is one of them. (A join on
            // `VALUES (id, claim)` instead cost a fifth of the dispatcher's rate.)
            let claims = claims_of(chunk.iter().map(|s| s.claim.as_str()));
            let ids = numbered(2, chunk.len());
            let tokens = numbered(chunk.len() + 2, claims.len());
            let sql = format!(
                "UPDATE checkins SET status = 'sent', sent_at = $1, claim_token = NULL
                 WHERE id IN ({ids}) AND claim_token IN ({tokens}) AND status = 'sending'"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(t);
            for s in chunk {
                q = q.bind(s.checkin_id);
            }
            for c in &claims {
                q = q.bind(*c);
            }
            q.execute(&mut *tx).await?;
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

/// Attempt statuses that mean it failed: counted when it got one (`put_back`'s `failed` is
/// not counted, and is queued again when the attempt is made again).
const FAILED_ATTEMPT: &[&str] = &[
    "busy",
    "no-answer",
    "failed",
    "canceled",
    "completed",
    "undelivered",
];

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
    tx: &mut WriteTx<'_, DB>,
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
    for<'q> (i64, i64, String, Option<String>): sqlx::FromRow<'q, DB::Row>,
    for<'q> (i32, i64, bool): sqlx::FromRow<'q, DB::Row>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    // An attempt already failed counts once: a second, different failure report of the same
    // attempt (out of order, or a provider's two final words) is recorded but must not count
    // a second attempt — that would end the check-in, or move it to its fallback, after one
    // real try.
    let Some((attempt, checkin_id, before, claim)): Option<(i64, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT id, checkin_id, status, claim_token FROM contact_attempts WHERE idempotency_key = $1",
    )
    .bind(f.key)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(Failed::Stale);
    };
    sqlx::query(
        "UPDATE contact_attempts SET status = $1, error = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(f.status)
    .bind(f.error)
    .bind(t)
    .bind(attempt)
    .execute(&mut **tx)
    .await?;
    if FAILED_ATTEMPT.contains(&before.as_str()) {
        return Ok(Failed::Stale);
    }
    // Only the check-in's latest attempt counts, and only while no other batch has claimed
    // the check-in since this attempt was made (a reminder batch sending it now).
    let Some((attempts, person_id, on_fallback)): Option<(i32, i64, bool)> = sqlx::query_as(
        "UPDATE checkins SET attempts = attempts + 1, claim_token = NULL
         WHERE id = $1 AND status IN ('sending', 'sent')
           AND NOT EXISTS (SELECT 1 FROM contact_attempts a WHERE a.checkin_id = $1 AND a.id > $2)
           AND (claim_token IS NULL OR $3 IS NULL OR claim_token = $3)
         RETURNING attempts, person_id, on_fallback",
    )
    .bind(checkin_id)
    .bind(attempt)
    .bind(claim.as_deref())
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
/// without counting an attempt — no patient is failed or escalated for it. Only while
/// `claim` still holds the check-in.
pub async fn put_back(
    db: &Db,
    key: &str,
    claim: &str,
    error: &str,
    retry_at: DateTime<Utc>,
) -> Result<()> {
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let checkin: Option<i64> = sqlx::query_scalar(
            "UPDATE contact_attempts SET status = 'failed', error = $1, updated_at = $2 WHERE idempotency_key = $3 RETURNING checkin_id")
            .bind(error).bind(t).bind(key).fetch_optional(&mut *tx).await?;
        if let Some(c) = checkin {
            sqlx::query("UPDATE checkins SET status = 'planned', due_at = $1, claim_token = NULL WHERE id = $2 AND status = 'sending' AND claim_token = $3")
                .bind(retry_at).bind(c).bind(claim).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}
