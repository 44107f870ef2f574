//! The append-only audit log: who touched which record, never what it contains.
use crate::{Result, db::now};

/// Who is acting.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    Staff(i64),
    /// A person answering through their signed link or call.
    Person(i64),
    System,
}

impl Actor {
    fn parts(self) -> (&'static str, Option<i64>) {
        match self {
            Actor::Staff(id) => ("staff", Some(id)),
            Actor::Person(id) => ("person", Some(id)),
            Actor::System => ("system", None),
        }
    }
}

/// Appends one audit row inside the caller's transaction or connection.
pub async fn audit<'c, E, DB>(
    exec: E,
    actor: Actor,
    action: &str,
    target_kind: &str,
    target_id: Option<i64>,
    ip: Option<&str>,
) -> Result<()>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'q> chrono::DateTime<chrono::Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let (kind, id) = actor.parts();
    sqlx::query(
        "INSERT INTO audit_log (at, actor_kind, actor_id, action, target_kind, target_id, ip)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(now())
    .bind(kind)
    .bind(id)
    .bind(action)
    .bind(target_kind)
    .bind(target_id)
    .bind(ip)
    .execute(exec)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<i64>,
}

/// Audit entries about one record, newest first.
pub async fn for_target(
    db: &crate::Db,
    target_kind: &str,
    target_id: i64,
) -> Result<Vec<AuditEntry>> {
    Ok(crate::with_db!(db, p => sqlx::query_as(
        "SELECT id, at, actor_kind, actor_id, action, target_kind, target_id FROM audit_log
         WHERE target_kind = $1 AND target_id = $2 ORDER BY id DESC LIMIT 200")
        .bind(target_kind).bind(target_id).fetch_all(p).await?))
}
