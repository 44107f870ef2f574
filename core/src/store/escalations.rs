//! Escalations: a person who needs a human. One open row per person and reason; a new
//! trigger refreshes it. (The review queue is built on these by the escalation issue.)
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Db, Result, db::now, with_db};

/// The SQL that opens (or refreshes) an escalation; run inside the caller's transaction.
/// $1 person, $2 reason, $3 priority, $4 now.
pub const OPEN_SQL: &str =
    "INSERT INTO escalations (person_id, reason, priority, status, opened_at, updated_at)
     VALUES ($1, $2, $3, 'open', $4, $4)
     ON CONFLICT (person_id, reason) WHERE status <> 'resolved' DO UPDATE SET updated_at = $4";

pub async fn open(db: &Db, person_id: i64, reason: &str, priority: &str) -> Result<()> {
    with_db!(db, p => sqlx::query(OPEN_SQL).bind(person_id).bind(reason).bind(priority).bind(now())
        .execute(p).await?.rows_affected());
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Escalation {
    pub id: i64,
    pub person_id: i64,
    pub reason: String,
    pub priority: String,
    pub status: String,
    pub opened_at: DateTime<Utc>,
}

pub async fn open_for_person(db: &Db, person_id: i64) -> Result<Vec<Escalation>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT id, person_id, reason, priority, status, opened_at FROM escalations
         WHERE person_id = $1 AND status <> 'resolved' ORDER BY id").bind(person_id).fetch_all(p).await?))
}
