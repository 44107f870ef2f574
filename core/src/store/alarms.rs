//! Operator alarms: faults of our own set-up (a wrong provider credential, a suspended
//! account, a sender number the account may not use). One open alarm per provider; shown on
//! the console, at `/healthz` (degraded) and in the log. While one is open no patient is
//! failed or escalated for it: check-ins are put back and retried.
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::BeginWrite;
use crate::{Db, Result, db::now, with_db};

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Alarm {
    pub id: i64,
    pub provider: String,
    pub code: String,
    pub detail: String,
    pub raised_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub occurrences: i32,
}

/// Raises (or counts again) the open alarm of `provider`. Returns true when it is new.
pub async fn raise(db: &Db, provider: &str, code: &str, detail: &str) -> Result<bool> {
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let n = sqlx::query(
            "UPDATE operator_alarms SET last_seen_at = $1, occurrences = occurrences + 1, code = $2, detail = $3
             WHERE provider = $4 AND cleared_at IS NULL")
            .bind(t).bind(code).bind(detail).bind(provider).execute(&mut *tx).await?.rows_affected();
        if n == 0 {
            sqlx::query(
                "INSERT INTO operator_alarms (provider, code, detail, raised_at, last_seen_at, occurrences)
                 VALUES ($1, $2, $3, $4, $4, 1) ON CONFLICT DO NOTHING")
                .bind(provider).bind(code).bind(detail).bind(t).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(n == 0)
    })
}

/// A send on `provider` succeeded: its open alarm is cleared. Returns true when one was.
pub async fn clear(db: &Db, provider: &str) -> Result<bool> {
    let n = with_db!(db, p => sqlx::query(
        "UPDATE operator_alarms SET cleared_at = $1 WHERE provider = $2 AND cleared_at IS NULL")
        .bind(now()).bind(provider).execute(p).await?.rows_affected());
    Ok(n > 0)
}

/// The open alarms, oldest first.
pub async fn open(db: &Db) -> Result<Vec<Alarm>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT id, provider, code, detail, raised_at, last_seen_at, occurrences FROM operator_alarms
         WHERE cleared_at IS NULL ORDER BY raised_at").fetch_all(p).await?))
}

/// What `/metrics` reports: providers with an open alarm, open escalations per priority,
/// staff alerts not yet sent.
pub struct Figures {
    pub alarms: Vec<String>,
    pub open_escalations: Vec<(String, i64)>,
    pub pending_alerts: i64,
}

pub async fn figures(db: &Db) -> Result<Figures> {
    Ok(with_db!(db, p => {
        let alarms: Vec<String> = sqlx::query_scalar(
            "SELECT provider FROM operator_alarms WHERE cleared_at IS NULL").fetch_all(p).await?;
        let mut open_escalations: Vec<(String, i64)> = sqlx::query_as(
            "SELECT priority, COUNT(*) FROM escalations WHERE status <> 'resolved' GROUP BY priority")
            .fetch_all(p).await?;
        for want in ["urgent", "high", "normal"] {
            if !open_escalations.iter().any(|(k, _)| k == want) {
                open_escalations.push((want.into(), 0));
            }
        }
        open_escalations.sort();
        let pending_alerts: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE status = 'pending'").fetch_one(p).await?;
        Figures { alarms, open_escalations, pending_alerts }
    }))
}
