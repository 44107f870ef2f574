//! A finished import batch read back from the database: its page (counts and the rows to
//! look at) and its CSV a page at a time — never every row of a large batch in memory.
use super::*;

/// An import batch's report for its page: every outcome counted in SQL, and its rows —
/// every row up to [`ROWS_KEPT`], else the rows to look at first (all but those created or
/// imported before), up to that many, as a dry run keeps them. The CSV of every row is read a
/// page at a time ([`outcome_page`]): a batch of 500,000 rows is not held in memory to show
/// its page. Another centre's batch is not found. Audited (a read of the batch's rows).
pub async fn outcomes(db: &Db, viewer: &Viewer, batch_id: i64) -> Result<Report> {
    may_import(viewer)?;
    let counts: Vec<(String, i64)> = with_db!(db, p => {
        batch_of_centre(p, viewer, batch_id).await?;
        sqlx::query_as("SELECT outcome, COUNT(*) FROM import_rows WHERE batch_id = $1 GROUP BY outcome")
            .bind(batch_id).fetch_all(p).await?
    });
    let count = |word: &str| -> usize {
        counts
            .iter()
            .filter(|(o, _)| outcome_word(o) == word)
            .map(|(_, n)| *n as usize)
            .sum()
    };
    let n: usize = counts.iter().map(|(_, n)| *n as usize).sum();
    let rows: Vec<StoredRow> = with_db!(db, p => {
        let sql = if n <= ROWS_KEPT {
            "SELECT CAST(line AS BIGINT), case_number, outcome, person_id, reason FROM import_rows
             WHERE batch_id = $1 ORDER BY line LIMIT $2"
        } else {
            "SELECT CAST(line AS BIGINT), case_number, outcome, person_id, reason FROM import_rows
             WHERE batch_id = $1 AND outcome NOT IN ('created', 'already') ORDER BY line LIMIT $2"
        };
        // The read and its audit row in one transaction.
        let mut tx = p.begin_write().await?;
        let rows = sqlx::query_as(sql).bind(batch_id).bind(ROWS_KEPT as i64).fetch_all(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "import.report.read", "import_batch", Some(batch_id), None).await?;
        tx.commit().await?;
        rows
    });
    let rows: Vec<Outcome> = rows.into_iter().map(stored_outcome).collect();
    let rejected = count("rejected");
    Ok(Report {
        batch_id: Some(batch_id),
        rows_read: n,
        valid: n - rejected,
        created: count("created"),
        linked: count("linked"),
        repositive: count("repositive"),
        duplicate: count("duplicate"),
        rejected,
        already: count("already"),
        undone: count("undone"),
        all_rows: rows.len() == n,
        rows,
    })
}

/// A stored row of a batch: line, case number, outcome, person, reason.
pub(super) type StoredRow = (i64, String, String, Option<i64>, Option<String>);

pub(super) fn stored_outcome(
    (line, case_number, outcome, person_id, reason): StoredRow,
) -> Outcome {
    Outcome {
        line: line as usize,
        case_number,
        outcome: outcome_word(&outcome),
        person_id,
        of_line: None,
        of_person: None,
        reason,
    }
}

/// Fails with "not found" unless the batch is one of the viewer's centre.
pub(super) async fn batch_of_centre<'c, E, DB>(e: E, viewer: &Viewer, batch_id: i64) -> Result<()>
where
    E: sqlx::Executor<'c, Database = DB>,
    DB: sqlx::Database,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> (i64,): sqlx::FromRow<'r, DB::Row>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM import_batches WHERE id = $1 AND health_centre_id = $2")
            .bind(batch_id)
            .bind(viewer.health_centre_id)
            .fetch_optional(e)
            .await?;
    found.map(|_| ()).ok_or(Error::NotFound("import batch"))
}

/// The rows of a batch after line `after`, in line order, at most `limit`: the report's CSV
/// a page at a time (on the batch's `(batch_id, line)` index). Another centre's batch is not
/// found. The first page (`after` below every line) is audited as a read of the batch's rows.
pub async fn outcome_page(
    db: &Db,
    viewer: &Viewer,
    batch_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<Outcome>> {
    may_import(viewer)?;
    const PAGE: &str =
        "SELECT CAST(line AS BIGINT), case_number, outcome, person_id, reason FROM import_rows
         WHERE batch_id = $1 AND line > $2 ORDER BY line LIMIT $3";
    let rows: Vec<StoredRow> = with_db!(db, p => {
        batch_of_centre(p, viewer, batch_id).await?;
        if after < 0 {
            // The first page and the audit row of the whole read in one transaction.
            let mut tx = p.begin_write().await?;
            let rows = sqlx::query_as(PAGE).bind(batch_id).bind(after).bind(limit).fetch_all(&mut *tx).await?;
            audit(&mut *tx, Actor::Staff(viewer.staff_id), "import.report.read", "import_batch", Some(batch_id), None).await?;
            tx.commit().await?;
            rows
        } else {
            sqlx::query_as(PAGE).bind(batch_id).bind(after).bind(limit).fetch_all(p).await?
        }
    });
    Ok(rows.into_iter().map(stored_outcome).collect())
}

/// A report's CSV, written a page of rows at a time: [`ReportCsv::new`] writes the header.
pub struct ReportCsv(crate::stats::opendata::CsvChunks);

impl ReportCsv {
    pub fn new() -> ReportCsv {
        ReportCsv(csv_writer())
    }

    /// Appends these rows.
    pub fn rows(&mut self, rows: &[Outcome]) {
        for r in rows {
            csv_row(&mut self.0, r);
        }
    }

    /// What was written since the last take.
    pub fn take(&mut self) -> Vec<u8> {
        self.0.take()
    }
}

impl Default for ReportCsv {
    fn default() -> Self {
        ReportCsv::new()
    }
}
