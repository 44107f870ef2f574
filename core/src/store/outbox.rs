//! The dev outbox: what the `outbox` provider "sent". Each message records whose it is, so
//! the console shows a health centre only its own people's messages and a staff member only
//! their own login codes and alerts; every view is audited.
use chrono::{DateTime, Utc};

use crate::{
    Db, Result,
    access::Viewer,
    db::{BeginWrite, now},
    provider::Audience,
    store::{Actor, audit},
    with_db,
};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct OutboxMessage {
    pub id: i64,
    pub channel: String,
    pub to_addr: String,
    pub subject: Option<String>,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub person_id: Option<i64>,
}

/// A message as the outbox provider stores it.
pub struct NewMessage<'a> {
    pub channel: &'a str,
    pub to: &'a str,
    pub subject: Option<&'a str>,
    pub body: &'a str,
    /// Same key, same message.
    pub key: &'a str,
    pub audience: Audience,
}

/// Stores a message once per idempotency key and returns its id (the existing one when
/// the key was seen before).
pub async fn put(db: &Db, m: NewMessage<'_>) -> Result<i64> {
    let (person, staff) = match m.audience {
        Audience::Person(p) => (Some(p), None),
        Audience::Staff(s) => (None, Some(s)),
        Audience::Nobody => (None, None),
    };
    Ok(with_db!(db, p => {
        sqlx::query(
            "INSERT INTO outbox_messages (channel, to_addr, subject, body, idempotency_key, created_at, person_id, staff_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (idempotency_key) DO NOTHING")
            .bind(m.channel).bind(m.to).bind(m.subject).bind(m.body).bind(m.key).bind(now())
            .bind(person).bind(staff)
            .execute(p).await?;
        sqlx::query_scalar("SELECT id FROM outbox_messages WHERE idempotency_key = $1")
            .bind(m.key).fetch_one(p).await?
    }))
}

/// The messages `viewer` may read, newest first: those to people in their row scope and
/// their own. The view is audited (one row against the viewer's centre, with the count), in
/// the reading transaction.
pub async fn list_for(db: &Db, viewer: &Viewer, limit: i64) -> Result<Vec<OutboxMessage>> {
    let sql = format!(
        "SELECT o.id, o.channel, o.to_addr, o.subject, o.body, o.created_at, o.person_id
         FROM outbox_messages o LEFT JOIN persons p ON p.id = o.person_id
         WHERE o.staff_id = $1 OR (o.person_id IS NOT NULL AND {})
         ORDER BY o.id DESC LIMIT $2",
        viewer.row_condition()
    );
    Ok(with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let rows: Vec<OutboxMessage> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(viewer.staff_id).bind(limit).persistent(false).fetch_all(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "outbox.view", "health_centre", Some(viewer.health_centre_id), None).await?;
        tx.commit().await?;
        rows
    }))
}

/// Every message, newest first: for the tests and the operator's command line only — the
/// console uses [`list_for`].
pub async fn all(db: &Db, limit: i64) -> Result<Vec<OutboxMessage>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT id, channel, to_addr, subject, body, created_at, person_id FROM outbox_messages ORDER BY id DESC LIMIT $1")
        .bind(limit).fetch_all(p).await?))
}

/// The newest message to a staff member (the dev outbox's login code, shown on the code
/// page in development so a newcomer can log in; never anything from the request).
pub async fn latest_for_staff(db: &Db, staff_id: i64) -> Result<Option<String>> {
    Ok(with_db!(db, p => sqlx::query_scalar(
        "SELECT body FROM outbox_messages WHERE staff_id = $1 ORDER BY id DESC LIMIT 1")
        .bind(staff_id).fetch_optional(p).await?))
}
