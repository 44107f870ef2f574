//! The dev outbox: what the `outbox` provider "sent".
use chrono::{DateTime, Utc};

use crate::{Db, Result, db::now, with_db};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct OutboxMessage {
    pub id: i64,
    pub channel: String,
    pub to_addr: String,
    pub subject: Option<String>,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// Stores a message once per idempotency key and returns its id (the existing one when
/// the key was seen before).
pub async fn put(
    db: &Db,
    channel: &str,
    to: &str,
    subject: Option<&str>,
    body: &str,
    key: &str,
) -> Result<i64> {
    Ok(with_db!(db, p => {
        sqlx::query(
            "INSERT INTO outbox_messages (channel, to_addr, subject, body, idempotency_key, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING")
            .bind(channel).bind(to).bind(subject).bind(body).bind(key).bind(now())
            .execute(p).await?;
        sqlx::query_scalar("SELECT id FROM outbox_messages WHERE idempotency_key = $1")
            .bind(key).fetch_one(p).await?
    }))
}

/// Newest first.
pub async fn list(db: &Db, limit: i64) -> Result<Vec<OutboxMessage>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT id, channel, to_addr, subject, body, created_at FROM outbox_messages ORDER BY id DESC LIMIT $1")
        .bind(limit).fetch_all(p).await?))
}
