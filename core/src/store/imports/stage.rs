//! An import's scratch store: every row of the file, read and checked, with what the
//! registry search found and then what was decided and written for it — in a SQLite file of
//! the import's own (in the temporary directory, removed when the import ends), not in
//! memory and not in the registry's database.
//!
//! This is what keeps an import's memory flat: a file of 500,000 rows would otherwise be held
//! as 500,000 rows (the file's text, its digests and the maps that find duplicates). Here the
//! rows go to disk as they are read, the duplicate search is an index lookup per key, and the
//! writer and the report read the rows back a chunk at a time. Memory is the store's page
//! cache (bounded) and one chunk. The dry run writes nothing to the registry's database, as
//! before; on PostgreSQL a temporary table would hold one pooled connection for the whole
//! import and would put the scratch rows in the database's write-ahead traffic.
use chrono::NaiveDate;
use sqlx::{
    ConnectOptions, Connection, SqliteConnection,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteLockingMode, SqliteSynchronous},
};

use super::{Outcome, outcome_word};
use crate::{Error, Result};

/// The store's page cache, in KiB (SQLite's negative `cache_size`). 48 MB made the decision
/// of 500,000 rows a tenth faster and the import's peak memory twice as large.
const CACHE_KIB: i64 = 16 * 1024;
/// Rows a multi-row statement carries (17 values a row, under SQLite's 32,766).
const ROWS_PER_INSERT: usize = 500;

const SCHEMA: &str = "
CREATE TABLE stage (
    ord INTEGER PRIMARY KEY,      -- the row's place in the file (blank rows skipped)
    line INTEGER NOT NULL,
    case_number TEXT NOT NULL,
    status TEXT NOT NULL,         -- valid, rejected or already (imported before)
    reason TEXT,                  -- why it was rejected
    person INTEGER,               -- already: its person
    diagnosis TEXT,
    obs_end TEXT,
    k1 BLOB, k2 BLOB, k3 BLOB,    -- the registration keys, as 16-byte digests
    earlier TEXT,                 -- the earlier case number its remarks name (再陽性)
    earlier_imported INTEGER NOT NULL DEFAULT 0,
    earlier_person INTEGER,
    reg_id INTEGER, reg_end TEXT, -- who the registry search found
    cells TEXT                    -- the mapped columns' cells (JSON), read again to write
);
-- The valid rows again, in the order of their diagnosis dates (then lines), one after the
-- other: a chunk of the decision and of the writer is a run of neighbouring pages, not 500
-- rows scattered through the file.
CREATE TABLE decided (
    dorder INTEGER PRIMARY KEY,   -- place in the order of diagnosis
    ord INTEGER NOT NULL,
    line INTEGER NOT NULL,
    case_number TEXT NOT NULL,
    diagnosis TEXT NOT NULL,
    obs_end TEXT NOT NULL,
    k1 BLOB, k2 BLOB, k3 BLOB,
    earlier TEXT,
    earlier_imported INTEGER NOT NULL,
    earlier_person INTEGER,
    reg_id INTEGER, reg_end TEXT
);
-- What was decided and written, appended a chunk at a time (an update that lengthened the
-- rows of a packed table split a page for nearly every row).
CREATE TABLE outcome (
    dorder INTEGER PRIMARY KEY,
    outcome TEXT NOT NULL,
    person INTEGER,               -- linked: the registered person; re-positive: the registered earlier case
    of_line INTEGER, of_dorder INTEGER
);
CREATE TABLE written (
    dorder INTEGER PRIMARY KEY,
    person INTEGER NOT NULL       -- the person the import wrote the row to
)";

/// A row read and checked, to be staged.
#[derive(Debug, Default)]
pub(super) struct Staged {
    pub line: u32,
    pub case_number: String,
    /// valid, rejected or already.
    pub status: &'static str,
    pub reason: Option<String>,
    pub person: Option<i64>,
    pub diagnosis: Option<NaiveDate>,
    pub observation_end: Option<NaiveDate>,
    pub keys: [Option<u128>; 3],
    pub earlier: Option<String>,
    pub earlier_imported: bool,
    pub earlier_person: Option<i64>,
    pub registered: Option<(i64, NaiveDate)>,
    pub cells: String,
}

/// A valid row as the decision reads it.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct ToDecide {
    pub dorder: i64,
    pub line: i64,
    pub case_number: String,
    pub diagnosis: NaiveDate,
    pub obs_end: NaiveDate,
    pub k1: Option<String>,
    pub k2: Option<String>,
    pub k3: Option<String>,
    pub earlier: Option<String>,
    pub earlier_imported: bool,
    pub earlier_person: Option<i64>,
    pub reg_id: Option<i64>,
    pub reg_end: Option<NaiveDate>,
}

/// A decided row: (place, outcome, of_line, of_dorder, person).
pub(super) type Decision = (i64, &'static str, Option<i64>, Option<i64>, Option<i64>);

/// A decided row as the writer reads it.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct ToWrite {
    pub dorder: i64,
    pub line: i64,
    pub case_number: String,
    pub cells: String,
    pub outcome: String,
    pub person: Option<i64>,
    pub of_line: Option<i64>,
    pub of_dorder: Option<i64>,
}

/// A digest as the store keeps it: 16 bytes (half the size of its text, so the key indexes
/// stay in the cache longer); read back as SQLite's `hex()` of it.
fn blob(d: u128) -> Vec<u8> {
    d.to_be_bytes().to_vec()
}

/// A list as one JSON parameter (read with `json_each`).
fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(format!("import stage: {e}")))
}

pub(super) struct Stage {
    conn: SqliteConnection,
    /// Removed (with the store) when the import ends, however it ends.
    _dir: tempfile::TempDir,
    rows: i64,
}

impl Stage {
    /// A new, empty store in the temporary directory (`TMPDIR`).
    pub async fn open() -> Result<Stage> {
        let dir = tempfile::Builder::new()
            .prefix("mimamori-import-")
            .tempdir()
            .map_err(|e| {
                Error::Internal(format!(
                    "import: cannot make a scratch directory in {}: {e}",
                    std::env::temp_dir().display()
                ))
            })?;
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("stage.db"))
            .create_if_missing(true)
            // Scratch: nothing here outlives the import, so no journal and no sync.
            .journal_mode(SqliteJournalMode::Off)
            .synchronous(SqliteSynchronous::Off)
            .locking_mode(SqliteLockingMode::Exclusive)
            .pragma("cache_size", (-CACHE_KIB).to_string())
            .pragma("temp_store", "FILE")
            .disable_statement_logging();
        let mut conn = SqliteConnection::connect_with(&opts).await?;
        sqlx::raw_sql(SCHEMA).execute(&mut conn).await?;
        Ok(Stage {
            conn,
            _dir: dir,
            rows: 0,
        })
    }

    /// Rows staged so far.
    pub fn rows(&self) -> usize {
        self.rows as usize
    }

    /// Stages rows, in file order.
    pub async fn insert(&mut self, rows: &[Staged]) -> Result<()> {
        for part in rows.chunks(ROWS_PER_INSERT) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO stage (ord, line, case_number, status, reason, person, diagnosis, obs_end,
                   k1, k2, k3, earlier, earlier_imported, earlier_person, reg_id, reg_end, cells) ",
            );
            let first = self.rows;
            q.push_values(part.iter().enumerate(), |mut b, (i, r)| {
                let [k1, k2, k3] = r.keys.map(|k| k.map(blob));
                b.push_bind(first + i as i64)
                    .push_bind(i64::from(r.line))
                    .push_bind(&r.case_number)
                    .push_bind(r.status)
                    .push_bind(&r.reason)
                    .push_bind(r.person)
                    .push_bind(r.diagnosis)
                    .push_bind(r.observation_end)
                    .push_bind(k1)
                    .push_bind(k2)
                    .push_bind(k3)
                    .push_bind(&r.earlier)
                    .push_bind(r.earlier_imported)
                    .push_bind(r.earlier_person)
                    .push_bind(r.registered.map(|(id, _)| id))
                    .push_bind(r.registered.map(|(_, end)| end))
                    .push_bind(&r.cells);
            });
            q.build().execute(&mut self.conn).await?;
            self.rows += part.len() as i64;
        }
        Ok(())
    }

    /// Once every row is staged: the rows whose case number an earlier row (valid or imported before) already has, with that row's line —
    /// found in one pass over the case numbers.
    pub async fn index_and_repeats(&mut self) -> Result<Vec<(i64, String, i64)>> {
        sqlx::raw_sql("CREATE INDEX stage_case ON stage(case_number)")
            .execute(&mut self.conn)
            .await?;
        Ok(sqlx::query_as(
            "WITH twice AS (SELECT case_number FROM stage WHERE case_number <> ''
                            GROUP BY case_number HAVING COUNT(*) > 1),
                  firsts AS (
                    SELECT s.ord, s.case_number, MIN(CASE WHEN s.status IN ('valid', 'already') THEN s.ord END)
                             OVER (PARTITION BY s.case_number) AS first
                    FROM stage s JOIN twice t ON t.case_number = s.case_number)
             SELECT x.ord, x.case_number, f.line FROM firsts x JOIN stage f ON f.ord = x.first
             WHERE x.ord > x.first ORDER BY x.ord",
        )
        .fetch_all(&mut self.conn)
        .await?)
    }

    /// Rejects rows (ord, reason).
    pub async fn reject(&mut self, rows: &[(i64, String)]) -> Result<()> {
        for part in rows.chunks(ROWS_PER_INSERT) {
            let mut q = sqlx::QueryBuilder::new(
                "UPDATE stage SET status = 'rejected', reason = v.column2 FROM (",
            );
            q.push_values(part, |mut b, (ord, why)| {
                b.push_bind(*ord).push_bind(why);
            });
            q.push(") AS v WHERE stage.ord = v.column1");
            q.build().execute(&mut self.conn).await?;
        }
        Ok(())
    }

    /// Numbers the valid rows in the order of their diagnosis dates (then lines): the order
    /// they are decided and written in. Returns how many there are.
    pub async fn order(&mut self) -> Result<usize> {
        sqlx::raw_sql(
            "INSERT INTO decided (dorder, ord, line, case_number, diagnosis, obs_end, k1, k2, k3, earlier,
                                  earlier_imported, earlier_person, reg_id, reg_end)
             SELECT ROW_NUMBER() OVER (ORDER BY diagnosis, line) - 1, ord, line, case_number, diagnosis, obs_end,
                    k1, k2, k3, earlier, earlier_imported, earlier_person, reg_id, reg_end
             FROM stage WHERE status = 'valid' ORDER BY diagnosis, line;
             CREATE INDEX decided_case ON decided(case_number);
             CREATE INDEX decided_k1 ON decided(k1);
             CREATE INDEX decided_k2 ON decided(k2);
             CREATE INDEX decided_k3 ON decided(k3);
             CREATE INDEX decided_ord ON decided(ord);",
        )
        .execute(&mut self.conn)
        .await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM decided")
            .fetch_one(&mut self.conn)
            .await?;
        Ok(n as usize)
    }

    /// The valid rows numbered `from..to` in the decision's order.
    pub async fn chunk_to_decide(&mut self, from: i64, to: i64) -> Result<Vec<ToDecide>> {
        Ok(sqlx::query_as(
            "SELECT dorder, line, case_number, diagnosis, obs_end,
                    nullif(hex(k1), '') AS k1, nullif(hex(k2), '') AS k2, nullif(hex(k3), '') AS k3, earlier,
                    earlier_imported, earlier_person, reg_id, reg_end
             FROM decided WHERE dorder >= $1 AND dorder < $2 ORDER BY dorder",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut self.conn)
        .await?)
    }

    /// Rows decided before `before` with one of these case numbers: (case number, line,
    /// place).
    pub async fn numbered(
        &mut self,
        numbers: &[&str],
        before: i64,
    ) -> Result<Vec<(String, i64, i64)>> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(
            "SELECT case_number, line, dorder FROM decided
             WHERE case_number IN (SELECT value FROM json_each($1)) AND +dorder < $2",
        )
        .bind(json(&numbers)?)
        .bind(before)
        .fetch_all(&mut self.conn)
        .await?)
    }

    /// Rows decided before `before` that are not duplicates, holding one of these keys (per
    /// kind 0..3): (kind, key, line, observation end, place). The unary `+` keeps SQLite on
    /// the key's index: on the place's index the lookup would scan every row decided so far
    /// (a chunk's cost growing with the file).
    pub async fn keyed(
        &mut self,
        keys: &[Vec<&str>; 3],
        before: i64,
    ) -> Result<Vec<(i64, String, i64, NaiveDate, i64)>> {
        if keys.iter().all(Vec::is_empty) {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(
            "SELECT 0, hex(d.k1), d.line, d.obs_end, d.dorder FROM decided d CROSS JOIN outcome o ON o.dorder = d.dorder
               WHERE d.k1 IN (SELECT unhex(value) FROM json_each($1)) AND +d.dorder < $4 AND o.outcome <> 'duplicate'
             UNION ALL
             SELECT 1, hex(d.k2), d.line, d.obs_end, d.dorder FROM decided d CROSS JOIN outcome o ON o.dorder = d.dorder
               WHERE d.k2 IN (SELECT unhex(value) FROM json_each($2)) AND +d.dorder < $4 AND o.outcome <> 'duplicate'
             UNION ALL
             SELECT 2, hex(d.k3), d.line, d.obs_end, d.dorder FROM decided d CROSS JOIN outcome o ON o.dorder = d.dorder
               WHERE d.k3 IN (SELECT unhex(value) FROM json_each($3)) AND +d.dorder < $4 AND o.outcome <> 'duplicate'",
        )
        .bind(json(&keys[0])?)
        .bind(json(&keys[1])?)
        .bind(json(&keys[2])?)
        .bind(before)
        .fetch_all(&mut self.conn)
        .await?)
    }

    /// Records decisions (a chunk's, in the decision's order).
    pub async fn decided(&mut self, rows: &[Decision]) -> Result<()> {
        for part in rows.chunks(ROWS_PER_INSERT) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO outcome (dorder, outcome, of_line, of_dorder, person) ",
            );
            q.push_values(
                part,
                |mut b, (place, outcome, of_line, of_dorder, person)| {
                    b.push_bind(*place)
                        .push_bind(*outcome)
                        .push_bind(*of_line)
                        .push_bind(*of_dorder)
                        .push_bind(*person);
                },
            );
            q.build().execute(&mut self.conn).await?;
        }
        Ok(())
    }

    /// The decided rows numbered `from..to`, to write.
    pub async fn chunk_to_write(&mut self, from: i64, to: i64) -> Result<Vec<ToWrite>> {
        Ok(sqlx::query_as(
            "SELECT d.dorder, d.line, d.case_number, s.cells, o.outcome, o.person, o.of_line, o.of_dorder
             FROM decided d CROSS JOIN outcome o ON o.dorder = d.dorder CROSS JOIN stage s ON s.ord = d.ord
             WHERE d.dorder >= $1 AND d.dorder < $2 ORDER BY d.dorder",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut self.conn)
        .await?)
    }

    /// The people written for these places.
    pub async fn written_at(&mut self, places: &[i64]) -> Result<Vec<(i64, Option<i64>)>> {
        if places.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(
            "SELECT dorder, person FROM written WHERE dorder IN (SELECT value FROM json_each($1))",
        )
        .bind(json(&places)?)
        .fetch_all(&mut self.conn)
        .await?)
    }

    /// Records the people written: (place, person).
    pub async fn written(&mut self, rows: &[(i64, i64)]) -> Result<()> {
        for part in rows.chunks(ROWS_PER_INSERT) {
            let mut q = sqlx::QueryBuilder::new("INSERT INTO written (dorder, person) ");
            q.push_values(part, |mut b, (place, person)| {
                b.push_bind(*place).push_bind(*person);
            });
            q.build().execute(&mut self.conn).await?;
        }
        Ok(())
    }

    /// Rejected rows after `after` (ord), at most `n`: (ord, line, case number, reason).
    pub async fn rejected(
        &mut self,
        after: i64,
        n: i64,
    ) -> Result<Vec<(i64, i64, String, Option<String>)>> {
        Ok(sqlx::query_as(
            "SELECT ord, line, case_number, reason FROM stage WHERE status = 'rejected' AND ord > $1 ORDER BY ord LIMIT $2",
        )
        .bind(after)
        .bind(n)
        .fetch_all(&mut self.conn)
        .await?)
    }

    /// How many rows came to each outcome.
    pub async fn counts(&mut self) -> Result<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT COALESCE(o.outcome, s.status), COUNT(*) FROM stage s
             LEFT JOIN decided d ON d.ord = s.ord LEFT JOIN outcome o ON o.dorder = d.dorder GROUP BY 1")
                .fetch_all(&mut self.conn)
                .await?,
        )
    }

    /// Rows as the report shows them, in file order: `first` rows from `after` (ord); with
    /// `to_look_at`, the rows a person should look at (all but created and imported before)
    /// come first.
    pub async fn outcomes(
        &mut self,
        after: i64,
        n: i64,
        to_look_at: bool,
    ) -> Result<Vec<(i64, Outcome)>> {
        type Row = (
            i64,
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT s.ord, s.line, s.case_number, s.status, o.outcome, s.reason, COALESCE(o.person, s.person), o.of_line, w.person
             FROM stage s LEFT JOIN decided d ON d.ord = s.ord LEFT JOIN outcome o ON o.dorder = d.dorder
               LEFT JOIN written w ON w.dorder = d.dorder
             WHERE s.ord > $1 ORDER BY {} s.ord LIMIT $2",
            if to_look_at {
                "COALESCE(o.outcome, s.status) IN ('created', 'already'),"
            } else {
                ""
            }
        )))
        .bind(after)
        .bind(n)
        .fetch_all(&mut self.conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(ord, line, case_number, status, outcome, reason, person, of_line, written)| {
                    // A valid row's word is its decision; the others' their status.
                    let outcome = outcome_word(outcome.as_deref().unwrap_or(&status));
                    let person_id = match outcome {
                        "already" | "linked" => person,
                        "created" | "repositive" | "duplicate" => written.filter(|x| *x != 0),
                        _ => None,
                    };
                    (
                        ord,
                        Outcome {
                            line: line as usize,
                            case_number,
                            outcome,
                            person_id,
                            of_line: of_line.map(|l| l as usize),
                            of_person: (outcome == "repositive").then_some(person).flatten(),
                            reason,
                        },
                    )
                },
            )
            .collect())
    }
}
