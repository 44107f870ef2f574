//! Delivery reports: what the provider tells us about an SMS or a call, applied to the
//! contact state machine. The one home of "a report arrived" for every entry point (the
//! provider's status webhooks today; a polling reconciler could call the same function).
//!
//! The state machine cannot lose an outcome:
//! * every attempt is recorded under our own key **before** its request leaves, and that key
//!   travels in the status-callback URL — so a report is matched whenever it arrives, even
//!   before the batch has recorded the provider's id (which the report then fills in);
//! * a report whose attempt is not known is **not** remembered as handled;
//! * de-duplication claims the delivery's key first, under a unique key, **in the transaction
//!   that does the work**: two identical deliveries at the same moment take effect once;
//! * a failure moves the check-in only if the attempt is its latest and the check-in is still
//!   `sending` or `sent` ([`checkins::fail_in_tx`]): a final outcome is never overwritten;
//! * a final attempt status (delivered, busy, completed, …) is never set back to a passing one
//!   (queued, ringing, …) by a late report.
use chrono::Duration;

use crate::db::BeginWrite;
use crate::{
    Db, Result,
    db::now,
    store::checkins::{self, Failed, Failure},
    with_db,
};

/// Twilio delivery error codes that mean the number cannot get SMS at all.
pub const UNREACHABLE_SMS: &[&str] = &["30003", "30005", "30006", "21610"];

/// A report from the provider.
#[derive(Debug, Clone, Copy)]
pub enum Report<'a> {
    /// A call's progress or outcome (`CallStatus`).
    Call { sid: &'a str, status: &'a str },
    /// A message's delivery status (`MessageStatus`, `ErrorCode`).
    Message {
        sid: &'a str,
        status: &'a str,
        error_code: Option<&'a str>,
    },
}

impl Report<'_> {
    fn sid(&self) -> &str {
        match self {
            Report::Call { sid, .. } | Report::Message { sid, .. } => sid,
        }
    }
    fn status(&self) -> &str {
        match self {
            Report::Call { status, .. } | Report::Message { status, .. } => status,
        }
    }
    /// Whether nothing more will happen to the attempt after this status.
    pub fn is_final(&self) -> bool {
        FINAL.contains(&self.status())
    }
    /// The key under which a delivery of this report is remembered.
    pub fn dedupe_key(&self) -> String {
        match self {
            Report::Call { sid, status } => format!("callstatus:{sid}:{status}"),
            Report::Message { sid, status, .. } => format!("msgstatus:{sid}:{status}"),
        }
    }
    /// The attempt did not reach the person: (permanent, error text).
    fn failure(&self) -> Option<(bool, String)> {
        match *self {
            // `completed` counts only while the check-in is still open (the call ended
            // without an answer); an answered check-in makes the failure stale.
            Report::Call { status, .. } => matches!(
                status,
                "busy" | "no-answer" | "failed" | "canceled" | "completed"
            )
            .then(|| (false, status.to_string())),
            Report::Message {
                status, error_code, ..
            } => matches!(status, "undelivered" | "failed").then(|| {
                let permanent = error_code.is_some_and(|c| UNREACHABLE_SMS.contains(&c));
                let error = format!("{status} {}", error_code.unwrap_or(""));
                (permanent, error.trim_end().to_string())
            }),
        }
    }
}

/// Statuses after which nothing more happens to an attempt.
const FINAL: &[&str] = &[
    "delivered",
    "undelivered",
    "failed",
    "read",
    "busy",
    "no-answer",
    "canceled",
    "completed",
];

/// How failures are retried (from the check-in configuration).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_attempts: i32,
    pub backoff: Duration,
}

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Recorded; `Some` when it was a failure, with what it did to the check-in.
    Applied(Option<Failed>),
    /// This delivery was already handled (a duplicate, perhaps in parallel).
    Duplicate,
    /// No attempt of ours matches: nothing was remembered, so a retried delivery is handled.
    Unknown,
}

/// Applies a provider report in one transaction. `attempt_key` is our key from the
/// status-callback URL (reports of older sends may lack it: then the provider id is used).
pub async fn report(
    db: &Db,
    policy: Policy,
    attempt_key: Option<&str>,
    r: Report<'_>,
) -> Result<Handled> {
    let t = now();
    let dedupe = r.dedupe_key();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let claimed = sqlx::query(
            "INSERT INTO webhook_events (key, response, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING")
            .bind(&dedupe).bind("<Response/>").bind(t).execute(&mut *tx).await?.rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(Handled::Duplicate);
        }
        let found: Option<(String, String)> = match attempt_key {
            Some(k) => sqlx::query_as("SELECT idempotency_key, channel FROM contact_attempts WHERE idempotency_key = $1")
                .bind(k).fetch_optional(&mut *tx).await?,
            None => sqlx::query_as("SELECT idempotency_key, channel FROM contact_attempts WHERE provider_id = $1")
                .bind(r.sid()).fetch_optional(&mut *tx).await?,
        };
        let Some((key, channel)) = found else {
            tx.rollback().await?;
            return Ok(Handled::Unknown);
        };
        // The report may come before the batch has recorded the provider's id.
        sqlx::query("UPDATE contact_attempts SET provider_id = COALESCE(provider_id, $1) WHERE idempotency_key = $2")
            .bind(r.sid()).bind(&key).execute(&mut *tx).await?;
        let outcome = match r.failure() {
            Some((permanent, error)) => Some(checkins::fail_in_tx(&mut tx, Failure {
                key: &key,
                channel: &channel,
                status: r.status(),
                error: &error,
                permanent,
                max_attempts: policy.max_attempts,
                backoff: policy.backoff,
            }, t).await?),
            None => {
                // Never from a final status back to a passing one (a late `sent` after
                // `delivered`).
                let finals = FINAL.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
                let sql = format!(
                    "UPDATE contact_attempts SET status = $1, updated_at = $2 WHERE idempotency_key = $3
                     AND (status NOT IN ({finals}) OR $4)");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(r.status()).bind(t).bind(&key).bind(FINAL.contains(&r.status()))
                    .execute(&mut *tx).await?;
                None
            }
        };
        tx.commit().await?;
        Ok(Handled::Applied(outcome))
    })
}

/// Words that stop health-check messages to a number (carriers' usual set, and Japanese).
pub const STOP_WORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "停止",
    "ストップ",
];
/// Words that start them again.
pub const START_WORDS: &[&str] = &["START", "YES", "UNSTOP", "開始", "再開"];

/// What an inbound SMS asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// STOP: everyone under observation with this number is opted out (and, in the same
    /// transaction, an `unreachable` escalation tells a human).
    OptedOut,
    /// START: those who opted out are observed again from the next planning run.
    OptedIn,
    /// Anything else: nobody reads replies; the sender is told to phone.
    Ignored,
}

impl Inbound {
    /// The reply texted back, in both languages (the sender's language is not known from a
    /// number that may be shared).
    pub fn reply(self) -> String {
        let key = match self {
            Inbound::OptedOut => "sms-reply-stopped",
            Inbound::OptedIn => "sms-reply-started",
            Inbound::Ignored => "sms-reply-ignored",
        };
        format!(
            "{} / {}",
            crate::i18n::tr(crate::domain::Lang::Ja, key),
            crate::i18n::tr(crate::domain::Lang::En, key)
        )
    }
}

/// **An inbound SMS**, the one home of STOP / START: `from` is the sender's number (E.164),
/// `body` what they wrote. Opting out and its escalation are one transaction.
pub async fn inbound_sms(db: &Db, from: &str, body: &str) -> Result<Inbound> {
    let word = body.trim().to_uppercase();
    if STOP_WORDS.contains(&word.as_str()) {
        let ids = crate::store::calls::opt_out(db, from).await?;
        tracing::info!(people = ids.len(), "SMS opt-out");
        Ok(Inbound::OptedOut)
    } else if START_WORDS.contains(&word.as_str()) {
        let ids = crate::store::calls::opt_in(db, from).await?;
        tracing::info!(people = ids.len(), "SMS opt-in");
        Ok(Inbound::OptedIn)
    } else {
        Ok(Inbound::Ignored)
    }
}
