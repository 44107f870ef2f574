//! The database handle: one enum over the two supported backends. Store functions are
//! written once and compiled for each backend through [`with_db!`]; SQL that differs per
//! backend lives in [`dialect`].
use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    PgPool, SqlitePool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use sqlx::SqlSafeStr;

use crate::Result;

/// How long a SQLite writer waits for the file's write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Name of the application's migration table; apalis keeps `_sqlx_migrations`.
pub const APP_MIGRATIONS_TABLE: &str = "_app_migrations";

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of `$db`. The body is compiled once
/// per backend, so the same runtime-checked query code serves both.
#[macro_export]
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` — one write, with `$e` as its executor — as each backend wants it: on SQLite
/// in a `begin_write` transaction, through the file's write gate, so it never meets a file
/// locked by the gated writers and sleeps in SQLite's busy handler (1, 2, 5, 10 … ms: the
/// ~100 ms tails of session 12); on PostgreSQL on the pool as it is (autocommit, without a
/// BEGIN and COMMIT round trip for one statement). `$body` is a `crate::Result`.
#[macro_export]
macro_rules! write_once {
    ($db:expr, $e:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(pool) => {
                async {
                    let mut tx = $crate::db::BeginWrite::begin_write(pool).await?;
                    let out = {
                        let $e = &mut *tx;
                        $body
                    }?;
                    tx.commit().await?;
                    ::std::result::Result::Ok::<_, $crate::Error>(out)
                }
                .await
            }
            $crate::db::Db::Postgres(pool) => {
                let $e = pool;
                $body
            }
        }
    };
}

/// A PostgreSQL connection idle longer than this is checked (a round trip) before it is
/// lent out again; one back from the pool sooner is lent as it is.
const PG_CHECK_IDLE_AFTER: Duration = Duration::from_secs(1);

/// The settings of every PostgreSQL pool. sqlx tests each connection before lending it
/// (`test_before_acquire`: a `Sync` message and its answer) — a round trip, and a wake-up of
/// a server process and of the runtime, before every query of a request and every batch of
/// the answer writer. Under load a connection is back in the pool for microseconds, and a
/// server that went away in that time fails the query as it would have failed the ping a
/// moment later; a connection idle for a while (across a PostgreSQL restart, a dropped NAT
/// entry) is still checked, and a dead one replaced before use.
fn pg_pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PG_CHECK_IDLE_AFTER {
                    // A dead connection: refused here, the pool opens another.
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://…`). SQLite files and their folder
    /// are created on first use, with WAL, `synchronous=FULL`, foreign keys and a busy
    /// timeout set on every pooled connection. FULL, not NORMAL: in WAL mode SQLite documents
    /// that a transaction committed under NORMAL may roll back after a power loss or an OS
    /// crash, and an answer a patient was told was received must not vanish. The answer
    /// writer's batches (group commit) keep the cost to one sync per batch.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db> {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // Searches and line lists are sent unprepared (`persistent(false)`), so PostgreSQL
            // plans them for their values every time: with a cached generic plan a name
            // search walked the whole primary key backwards (215 ms instead of 0.1 ms on a
            // million people; see BENCHMARKS.md). Everything else keeps its cached plan.
            // JIT off: PostgreSQL compiles a query whose estimated cost is high (a page of
            // 20,000 open-data rows with their subqueries: 300 ms of its 375 ms went to
            // compiling, every page) — a cost paid per execution that OLTP queries and
            // keyset pages never win back.
            let opts = PgConnectOptions::from_str(url)?.options([("jit", "off")]);
            let pool = pg_pool_options(max_connections).connect_with(opts).await?;
            Ok(Db::Postgres(pool))
        } else {
            let opts = SqliteConnectOptions::from_str(url)?;
            if let Some(parent) = Path::new(opts.get_filename()).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    crate::Error::Internal(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let opts = opts
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            // No test before each acquire: a SQLite connection is a file handle on a thread
            // of its own, with no far end to have gone away; sqlx's ping was a message to
            // that thread and back on every query (see `pg_pool_options`).
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(false)
                .connect_with(opts)
                .await?;
            Ok(Db::Sqlite(pool))
        }
    }

    /// Starts a group-commit writer (the answer writer, the audit writer): one task, given
    /// the pool to write with — on SQLite the one writer the file allows; on PostgreSQL one
    /// as well, because answers arriving while a batch commits then make the next batch
    /// bigger, and bigger batches cost less CPU per answer (two were run while a batch
    /// waited 40 ms for a delayed ACK, vendor/README.md; without that stall one writer took
    /// 2,650–2,910 answers/s at 32 in flight against 2,090–2,400 with two — BENCHMARKS.md,
    /// "Answer ingest: one statement a batch").
    ///
    /// `own_thread = false`: a task on the current Tokio runtime, on this pool.
    /// `own_thread = true`: a thread of its own with a single-threaded runtime and, on
    /// PostgreSQL, a one-connection pool opened there (the same settings), so its socket
    /// belongs to that runtime. On the server's runtime each of a batch's round trips waited
    /// behind every request task ready to run (`BEGIN` alone 1.2 ms with 32 answers in
    /// flight). The thread ends when the writer returns (its channel's senders all
    /// dropped), closing its pool. A thread the OS refuses stops the start-up with a panic.
    pub fn spawn_writer<F, Fut>(&self, name: &str, own_thread: bool, writer: F)
    where
        F: FnOnce(Db) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        if !own_thread {
            tokio::spawn(writer(self.clone()));
            return;
        }
        let db = self.clone();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "a writer's runtime could not start");
                        return;
                    }
                };
                rt.block_on(async move {
                    let db = db.alongside();
                    writer(db.clone()).await;
                    if let Db::Postgres(p) = &db {
                        p.close().await;
                    }
                });
            })
            .unwrap_or_else(|e| panic!("cannot start the {name} thread: {e}"));
    }

    /// A one-connection pool on the same database with the same settings, for a writer on
    /// another runtime ([`Db::spawn_writer`]); its connection is opened when first used, on
    /// the runtime that uses it. SQLite's connections run on threads of their own and are
    /// not tied to a runtime: the same pool serves.
    fn alongside(&self) -> Db {
        match self {
            Db::Postgres(p) => {
                Db::Postgres(pg_pool_options(1).connect_lazy_with((*p.connect_options()).clone()))
            }
            Db::Sqlite(_) => self.clone(),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Applies the application's migrations (forward-only) using its own migration table.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(p) => {
                let mut m: Migrator = sqlx::migrate!("../migrations/sqlite");
                m.dangerous_set_table_name(APP_MIGRATIONS_TABLE);
                m.run(p).await?;
            }
            Db::Postgres(p) => {
                let mut m: Migrator = sqlx::migrate!("../migrations/postgres");
                m.dangerous_set_table_name(APP_MIGRATIONS_TABLE);
                m.run(p).await?;
            }
        }
        Ok(())
    }

    /// `SELECT 1` — used by `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        with_db!(self, p => { sqlx::query("SELECT 1").execute(p).await?; });
        Ok(())
    }

    pub async fn close(&self) {
        with_db!(self, p => p.close().await)
    }
}

/// Current time truncated to microseconds, the precision both backends store. Always bind
/// timestamps from here (never a database default) so SQLite's text timestamps compare
/// correctly.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

/// A write transaction. Dereferences to the connection, so queries take `&mut *tx`.
///
/// On SQLite it also holds the database file's write gate: one writer per file at a time
/// queues on an async semaphore, instead of every pooled connection racing for the lock and
/// losing to SQLite's busy handler, which sleeps 1, 2, 5, 10 … ms between tries (at 32
/// answers in flight that sleeping, not work, was most of the ingest time). The gate is
/// released after commit or rollback.
pub struct WriteTx<DB: sqlx::Database> {
    // Declared first: dropped (rolled back) before the gate is released.
    tx: sqlx::Transaction<'static, DB>,
    _gate: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<DB: sqlx::Database> WriteTx<DB> {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl<DB: sqlx::Database> std::ops::Deref for WriteTx<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

/// The write gate of a SQLite file (one per path, shared by every pool on it).
fn sqlite_write_gate(file: &Path) -> std::sync::Arc<tokio::sync::Semaphore> {
    use std::{
        collections::HashMap,
        path::PathBuf,
        sync::{Arc, LazyLock, Mutex},
    };
    static GATES: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Semaphore>>>> =
        LazyLock::new(Default::default);
    let mut gates = GATES.lock().unwrap_or_else(|e| e.into_inner());
    gates
        .entry(file.to_path_buf())
        .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(1)))
        .clone()
}

/// Starts a transaction that will write. On SQLite it waits for the file's write gate, then
/// `BEGIN IMMEDIATE`: the write lock is taken at the start, so a read transaction never has
/// to become a write one (which fails with SQLITE_BUSY). On PostgreSQL it is a plain `BEGIN`.
pub trait BeginWrite {
    type Database: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<WriteTx<Self::Database>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Database = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<WriteTx<sqlx::Sqlite>, sqlx::Error> {
        // The connection first, then the gate: a writer never holds the gate while it waits
        // for its own pool, so a pool drained by console reads cannot stall the writers of
        // another pool on the same file (the patient lane's, see the web layer's `lanes`).
        let conn = self.acquire().await?;
        // As long as SQLite's own busy timeout: a writer that waits longer fails as it
        // would have without the gate, rather than waiting for ever.
        let gate = tokio::time::timeout(
            SQLITE_BUSY_TIMEOUT,
            sqlite_write_gate(self.connect_options().get_filename()).acquire_owned(),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
        .map_err(|_| sqlx::Error::PoolClosed)?;
        Ok(WriteTx {
            tx: sqlx::Transaction::begin(conn, Some("BEGIN IMMEDIATE".into_sql_str())).await?,
            _gate: Some(gate),
        })
    }
}

impl BeginWrite for PgPool {
    type Database = sqlx::Postgres;
    async fn begin_write(&self) -> Result<WriteTx<sqlx::Postgres>, sqlx::Error> {
        // In a task of its own, so it always finishes. sqlx 0.9's PostgreSQL `begin` is not
        // cancel-safe: dropped after `BEGIN` is sent but before its answer, it counts no
        // transaction and queues no `ROLLBACK`, and the connection goes back to the pool
        // inside an open transaction. The next autocommit statement on it (an answer, an
        // audit row, an import batch) is then never committed — acknowledged and lost. A
        // handler is dropped whenever its client goes away, so this is not rare under load.
        // Finished in its task, a transaction nobody awaits any more is dropped as a whole
        // one, and its `ROLLBACK` is sent with the connection's release.
        let pool = self.clone();
        let tx = tokio::spawn(async move { pool.begin().await })
            .await
            .map_err(|e| sqlx::Error::Protocol(format!("begin: {e}")))??;
        Ok(WriteTx { tx, _gate: None })
    }
}
