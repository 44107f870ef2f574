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

/// How long a caller waits for a free connection of a pool unless configured otherwise
/// (`database.connection_wait_secs`).
pub const DEFAULT_CONNECTION_WAIT: Duration = Duration::from_secs(10);

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
fn pg_pool_options(max_connections: u32, wait: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(wait)
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
        Db::connect_waiting(url, max_connections, DEFAULT_CONNECTION_WAIT).await
    }

    /// [`Db::connect`], with how long a caller waits for a free connection of the pool before
    /// it gets `PoolTimedOut` (`database.connection_wait_secs`; a request is then told to
    /// retry).
    pub async fn connect_waiting(url: &str, max_connections: u32, wait: Duration) -> Result<Db> {
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
            let pool = pg_pool_options(max_connections, wait)
                .connect_with(opts)
                .await?;
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
                .acquire_timeout(wait)
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
                let wait = p.options().get_acquire_timeout();
                Db::Postgres(
                    pg_pool_options(1, wait).connect_lazy_with((*p.connect_options()).clone()),
                )
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
///
/// `'c` is `'static` for a transaction on a connection taken from a pool
/// ([`BeginWrite::begin_write`]) and the borrow of a [`Kept`] connection otherwise
/// ([`WriteTx::on`]).
pub struct WriteTx<'c, DB: sqlx::Database> {
    // Declared first: dropped (rolled back) before the gate is released.
    tx: sqlx::Transaction<'c, DB>,
    _gate: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<'c> WriteTx<'c, sqlx::Postgres> {
    /// A transaction on a connection its caller keeps ([`Kept`]). Not cancel-safe (see
    /// [`BeginWrite::begin_write`] for PostgreSQL): for the writers' own tasks, which run
    /// every batch to its end, never for a request's handler.
    pub async fn on(conn: &'c mut sqlx::PgConnection) -> Result<Self, sqlx::Error> {
        Ok(WriteTx {
            tx: sqlx::Transaction::begin(conn, None).await?,
            _gate: None,
        })
    }
}

impl<DB: sqlx::Database> WriteTx<'_, DB> {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl<DB: sqlx::Database> std::ops::Deref for WriteTx<'_, DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for WriteTx<'_, DB> {
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
    ) -> impl std::future::Future<Output = Result<WriteTx<'static, Self::Database>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Database = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<WriteTx<'static, sqlx::Sqlite>, sqlx::Error> {
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
    async fn begin_write(&self) -> Result<WriteTx<'static, sqlx::Postgres>, sqlx::Error> {
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

/// Runs `$body` — statements on `$on`, a [`On`] — on a [`Kept`] connection; when it fails
/// (or no connection could be had) the connection is given back ([`Kept::lost`]). `$body` is
/// a `crate::Result`. With `retry`, a failed `$body` runs once more, on a new connection: the
/// first statement on a kept connection that died under its task fails (for a read or an
/// audit row; the answer writer retries in its own way, answer by answer).
#[macro_export]
macro_rules! on_kept {
    ($kept:expr, retry, $on:ident => $body:expr) => {{
        let kept: &mut $crate::db::Kept = $kept;
        match $crate::on_kept!(&mut *kept, $on => $body) {
            Ok(v) => Ok(v),
            Err(e) => {
                tracing::warn!(error = %e, "a statement failed on a kept connection; once more on a new one");
                $crate::on_kept!(kept, $on => $body)
            }
        }
    }};
    ($kept:expr, $on:ident => $body:expr) => {{
        let kept: &mut $crate::db::Kept = $kept;
        let r: $crate::Result<_> = match kept.on().await {
            Ok($on) => $body,
            Err(e) => Err(e.into()),
        };
        if r.is_err() {
            kept.lost();
        }
        r
    }};
}

/// Where a writer's or reader's statement runs: on a pool (each statement takes a connection
/// and gives it back), or on a PostgreSQL connection its task keeps ([`Kept`]).
pub enum On<'a> {
    Pool(&'a Db),
    Pg(&'a mut sqlx::PgConnection),
}

impl<'a> From<&'a Db> for On<'a> {
    fn from(db: &'a Db) -> Self {
        On::Pool(db)
    }
}

/// The connection of a task that runs statement after statement (the answer and audit
/// writers, the link pages' reader), kept between them on PostgreSQL. A connection given
/// back to a pool costs a round trip: sqlx pings every connection as it is released (see
/// `pg_pool_options`), a wake-up of the server process and of the task for nothing, once a
/// batch — as many as the batch's own statements for the reader. Kept, a busy writer pays
/// none. One idle for a second (`PG_CHECK_IDLE_AFTER`) goes back to its pool — while the
/// task waits for work ([`Kept::wait`]), or before its next statement — so an idle task
/// holds no connection and a dead one is found and replaced as the pool would (tested on
/// release, checked before lending); one a statement failed on is given back too (the
/// release ping retires it if it is broken). On SQLite there is nothing to keep: statements
/// run on the pool.
pub struct Kept {
    db: Db,
    conn: Option<(
        sqlx::pool::PoolConnection<sqlx::Postgres>,
        std::time::Instant,
    )>,
}

impl Kept {
    pub fn new(db: Db) -> Kept {
        Kept { db, conn: None }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Where the next statement runs; takes a connection from the pool when none is kept.
    pub async fn on(&mut self) -> Result<On<'_>, sqlx::Error> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(On::Pool(&self.db));
        };
        if self
            .conn
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() >= PG_CHECK_IDLE_AFTER)
        {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some((pool.acquire().await?, std::time::Instant::now()));
        }
        let (conn, at) = self.conn.as_mut().expect("taken above");
        *at = std::time::Instant::now();
        Ok(On::Pg(conn))
    }

    /// Awaits `next` (the task's next batch of work); a connection kept and idle for a
    /// second meanwhile goes back to its pool, so an idle task holds none (a pool's `close`
    /// waits for every connection lent out).
    pub async fn wait<F: std::future::Future>(&mut self, next: F) -> F::Output {
        if self.conn.is_none() {
            return next.await;
        }
        let mut next = std::pin::pin!(next);
        match tokio::time::timeout(PG_CHECK_IDLE_AFTER, &mut next).await {
            Ok(v) => v,
            Err(_) => {
                self.conn = None;
                next.await
            }
        }
    }

    /// After a statement failed: the connection goes back to its pool (which tests it and
    /// retires a broken one, and sends a rollback left queued); the next [`Kept::on`] takes
    /// one afresh.
    pub fn lost(&mut self) {
        self.conn = None;
    }

    /// Whether a connection is kept now (for tests).
    pub fn keeps(&self) -> bool {
        self.conn.is_some()
    }
}
