//! Scheduled-job runs, one row per job and scheduled instant, so that a cron tick seen by
//! every worker process runs once in the whole cluster.
use chrono::{DateTime, Utc};

use crate::{Db, Result, db::now, with_db};

/// Returns true if this process won the right to run `job` for `scheduled_for`.
pub async fn try_start(db: &Db, job: &str, scheduled_for: DateTime<Utc>) -> Result<bool> {
    Ok(with_db!(db, p => sqlx::query(
        "INSERT INTO job_runs (job, scheduled_for, started_at) VALUES ($1, $2, $3)
         ON CONFLICT (job, scheduled_for) DO NOTHING")
        .bind(job).bind(scheduled_for).bind(now()).execute(p).await?.rows_affected() == 1))
}

pub async fn finish(db: &Db, job: &str, scheduled_for: DateTime<Utc>, detail: &str) -> Result<()> {
    with_db!(db, p => { sqlx::query(
        "UPDATE job_runs SET finished_at = $1, detail = $2 WHERE job = $3 AND scheduled_for = $4")
        .bind(now()).bind(detail).bind(job).bind(scheduled_for).execute(p).await?; });
    Ok(())
}
