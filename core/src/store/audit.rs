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
    pub(crate) fn parts(self) -> (&'static str, Option<i64>) {
        match self {
            Actor::Staff(id) => ("staff", Some(id)),
            Actor::Person(id) => ("person", Some(id)),
            Actor::System => ("system", None),
        }
    }
}

/// One audit row to append: actor, action, target kind, target id, client address.
pub type NewAuditRow<'a> = (Actor, &'a str, &'a str, Option<i64>, Option<&'a str>);

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
    audit_many(exec, &[(actor, action, target_kind, target_id, ip)]).await
}

/// Appends one audit row per `(actor, action, target kind, target id, address)` in one
/// statement, inside the caller's transaction or connection — for batches (answers recorded
/// in one group commit).
pub async fn audit_many<'c, E, DB>(exec: E, rows: &[NewAuditRow<'_>]) -> Result<()>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'q> chrono::DateTime<chrono::Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    if rows.is_empty() {
        return Ok(());
    }
    let values = (0..rows.len())
        .map(|i| {
            let b = 2 + i * 6;
            format!(
                "($1, ${b}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO audit_log (at, actor_kind, actor_id, action, target_kind, target_id, ip) VALUES {values}"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now());
    for (actor, action, kind, id, ip) in rows {
        let (actor_kind, actor_id) = actor.parts();
        q = q
            .bind(actor_kind)
            .bind(actor_id)
            .bind(*action)
            .bind(*kind)
            .bind(*id)
            .bind(*ip);
    }
    q.execute(exec).await?;
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

/// An audit entry as an officer reviews it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor_kind: String,
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<i64>,
    pub ip: Option<String>,
}

/// Filters of the audit viewer; empty = any.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct AuditFilter {
    /// Prefix of the action, e.g. `person.` or `login.`.
    pub action: String,
    #[serde(deserialize_with = "empty_none")]
    pub actor_id: Option<i64>,
    #[serde(deserialize_with = "empty_none")]
    pub person_id: Option<i64>,
    #[serde(deserialize_with = "empty_none")]
    pub from: Option<chrono::NaiveDate>,
    #[serde(deserialize_with = "empty_none")]
    pub to: Option<chrono::NaiveDate>,
}

/// An empty form field is "any", not an error.
fn empty_none<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let s: Option<String> = serde::Deserialize::deserialize(d)?;
    match s.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// The audit log of one body (a health centre): entries by its staff and entries about its
/// people, newest first. Reading the log is itself audited.
pub async fn search(
    db: &crate::Db,
    officer: i64,
    health_centre_id: i64,
    f: &AuditFilter,
    limit: i64,
) -> Result<Vec<AuditRow>> {
    // Open ends become far bounds, so the same SQL serves both backends without casts.
    let day = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let from = day(f
        .from
        .unwrap_or(chrono::NaiveDate::from_ymd_opt(2000, 1, 1).expect("date")));
    let to = day(f
        .to
        .map(|d| d + chrono::Duration::days(1))
        .unwrap_or(chrono::NaiveDate::from_ymd_opt(9999, 1, 1).expect("date")));
    let rows = crate::with_db!(db, p => sqlx::query_as(
        "SELECT a.id, a.at, a.actor_kind, a.actor_id, s.display_name AS actor_name, a.action, a.target_kind, a.target_id, a.ip
         FROM audit_log a
         LEFT JOIN staff s ON a.actor_kind = 'staff' AND s.id = a.actor_id
         LEFT JOIN persons p ON a.target_kind = 'person' AND p.id = a.target_id
         WHERE (s.health_centre_id = $1 OR p.health_centre_id = $1)
           AND ($2 = '' OR a.action LIKE $2 || '%')
           AND (CAST($3 AS BIGINT) IS NULL OR a.actor_id = $3)
           AND (CAST($4 AS BIGINT) IS NULL OR (a.target_kind = 'person' AND a.target_id = $4))
           AND a.at >= $5 AND a.at < $6
         ORDER BY a.id DESC LIMIT $7")
        .bind(health_centre_id).bind(&f.action).bind(f.actor_id).bind(f.person_id)
        .bind(from).bind(to).bind(limit).fetch_all(p).await?);
    crate::with_db!(db, p => audit(p, Actor::Staff(officer), "audit.read", "health_centre", Some(health_centre_id), None).await)?;
    Ok(rows)
}

/// An audit row owned by a request waiting for the [`AuditWriter`].
#[derive(Debug, Clone)]
pub struct OwnedAuditRow {
    pub actor: Actor,
    pub action: &'static str,
    pub target_kind: &'static str,
    pub target_id: Option<i64>,
    pub ip: Option<String>,
}

type AuditJob = (OwnedAuditRow, tokio::sync::oneshot::Sender<Result<()>>);

/// Group commit for audit rows of reads: every row that arrives while the previous batch
/// commits goes into the next one (one multi-row INSERT). A request waits for its row's
/// commit, so nothing is shown that was not audited first; at peak many reads share one
/// commit.
#[derive(Clone)]
pub struct AuditWriter {
    jobs: tokio::sync::mpsc::Sender<AuditJob>,
}

/// Most rows per statement (6 parameters each, under SQLite's 32,766).
const AUDIT_BATCH: usize = 256;

impl AuditWriter {
    /// Starts the writer task on the current Tokio runtime; it stops when the last handle
    /// is dropped, after answering every request it has taken.
    pub fn spawn(db: crate::Db) -> AuditWriter {
        Self::start(db, false)
    }

    /// [`AuditWriter::spawn`] on a thread of its own with its own connections (the server's
    /// writers; see [`crate::Db::spawn_writer`]).
    pub fn spawn_on_own_thread(db: crate::Db) -> AuditWriter {
        Self::start(db, true)
    }

    fn start(db: crate::Db, own_thread: bool) -> AuditWriter {
        let (jobs, mut rx) = tokio::sync::mpsc::channel::<AuditJob>(4 * AUDIT_BATCH);
        db.spawn_writer("mimamori-audit", own_thread, move |db| {
            async move {
                // The connection is kept between batches (no release ping a batch, see
                // `Kept`).
                let mut kept = crate::db::Kept::new(db);
                let mut batch = Vec::with_capacity(AUDIT_BATCH);
                while kept.wait(rx.recv_many(&mut batch, AUDIT_BATCH)).await > 0 {
                    let rows: Vec<NewAuditRow<'_>> = batch
                        .iter()
                        .map(|(r, _)| {
                            (
                                r.actor,
                                r.action,
                                r.target_kind,
                                r.target_id,
                                r.ip.as_deref(),
                            )
                        })
                        .collect();
                    // Through the file's write gate on SQLite (see `write_once!`).
                    // Once more on a new connection when it fails: a row written twice
                    // (its commit made, its answer lost with the connection) is better than
                    // reads refused.
                    let r = crate::on_kept!(&mut kept, retry, on => match on {
                        crate::db::On::Pg(c) => audit_many(c, &rows).await,
                        crate::db::On::Pool(db) => crate::write_once!(db, e => audit_many(e, &rows).await),
                    });
                    if let Err(e) = &r {
                        tracing::error!(error = %e, rows = rows.len(), "audit batch failed; the reads it covered are refused");
                    }
                    drop(rows);
                    for (_, reply) in batch.drain(..) {
                        let _ = reply.send(match &r {
                            Ok(()) => Ok(()),
                            Err(_) => Err(crate::Error::Internal(
                                "the read could not be audited".into(),
                            )),
                        });
                    }
                }
            }
        });
        AuditWriter { jobs }
    }

    /// Appends `row`; returns once it has committed.
    pub async fn record(&self, row: OwnedAuditRow) -> Result<()> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send((row, reply))
            .await
            .map_err(|_| crate::Error::Internal("the audit writer has stopped".into()))?;
        rx.await.map_err(|_| {
            crate::Error::Internal("the audit writer stopped before replying".into())
        })?
    }
}
