//! The daily planning job.
use chrono::{DateTime, Duration, Utc};
use mimamori_core::store::{checkins, jobs};
use serde::{Deserialize, Serialize};

use crate::Deps;

/// Queue `mimamori.plan-day`: plan the local day that contains `at` for every health centre.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanDay {
    pub at: DateTime<Utc>,
}

pub const JOB: &str = "plan-day";

/// Runs the planning for `at` unless another process already did. Returns the number of
/// check-ins created, or None when the run belonged to someone else.
#[tracing::instrument(skip_all, fields(at = %job.at))]
pub async fn plan_day(job: &PlanDay, deps: &Deps) -> mimamori_core::Result<Option<u64>> {
    if !jobs::try_start(&deps.db, JOB, job.at).await? {
        tracing::info!("plan-day already run for this instant");
        return Ok(None);
    }
    let window = Duration::minutes(deps.config.checkin.answer_window_minutes);
    let n = checkins::plan_day(&deps.db, job.at, window).await?;
    jobs::finish(&deps.db, JOB, job.at, &format!("planned {n}")).await?;
    tracing::info!(planned = n, "plan-day done");
    Ok(Some(n))
}
