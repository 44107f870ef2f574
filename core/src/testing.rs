//! Test support shared by this crate's and the application's tests: a fresh, migrated
//! database per test on the backend the run asks for.
//!
//! `MIMAMORI_TEST_DATABASE_URL=postgres://…/test` selects PostgreSQL: each call creates a
//! new database `mimamori_t_<random>` on that server (and panics if it cannot — a
//! PostgreSQL run never silently falls back to SQLite). Without it, each call gets a new
//! SQLite file in the temp folder.
use crate::{Db, with_db};

pub const ENV: &str = "MIMAMORI_TEST_DATABASE_URL";

pub struct TestDb {
    pub db: Db,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Postgres { admin_url: String, name: String },
    Sqlite(std::path::PathBuf),
}

fn random_name() -> String {
    let v: u64 = rand::random();
    format!("mimamori_t_{v:016x}")
}

/// The backend this test run uses: "postgres" or "sqlite".
pub fn requested_backend() -> &'static str {
    if std::env::var(ENV).is_ok_and(|v| !v.is_empty()) {
        "postgres"
    } else {
        "sqlite"
    }
}

impl TestDb {
    /// A new empty database with the application's migrations applied.
    pub async fn new() -> TestDb {
        let t = Self::empty().await;
        t.db.migrate().await.expect("migrations apply");
        t
    }

    /// A new empty database without migrations.
    pub async fn empty() -> TestDb {
        match std::env::var(ENV) {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = random_name();
                let admin = Db::connect(&admin_url, 1)
                    .await
                    .unwrap_or_else(|e| panic!("{ENV} is set but PostgreSQL is unreachable: {e}"));
                with_db!(&admin, p => {
                    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(p).await.expect("create test database");
                });
                admin.close().await;
                let url = replace_db_name(&admin_url, &name);
                let db = Db::connect(&url, 8)
                    .await
                    .expect("connect to the test database");
                TestDb {
                    db,
                    url,
                    cleanup: Cleanup::Postgres { admin_url, name },
                }
            }
            _ => {
                let path = std::env::temp_dir().join(format!("{}.db", random_name()));
                let url = format!("sqlite://{}", path.display());
                let db = Db::connect(&url, 8)
                    .await
                    .expect("open SQLite test database");
                TestDb {
                    db,
                    url,
                    cleanup: Cleanup::Sqlite(path),
                }
            }
        }
    }

    /// Closes the pool and removes the database.
    pub async fn drop_db(self) {
        self.db.close().await;
        match self.cleanup {
            Cleanup::Postgres { admin_url, name } => {
                if let Ok(admin) = Db::connect(&admin_url, 1).await {
                    with_db!(&admin, p => {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(p).await;
                    });
                    admin.close().await;
                }
            }
            Cleanup::Sqlite(path) => remove_sqlite_files(&path),
        }
    }
}

/// Removes a SQLite database file with its WAL and shared-memory index (closed first).
pub fn remove_sqlite_files(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => format!("{}/{name}", &base[..i]),
        _ => format!("{base}/{name}"),
    };
    match query {
        Some(q) => format!("{base}?{q}"),
        None => base,
    }
}
