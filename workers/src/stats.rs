//! The statistics job: every `workers.stats_interval_secs`, re-derive the sources the
//! triggers marked as changed (batches of 500 until none is left), then re-count check-ins
//! due and answered for the last three days. Several workers may run it: on PostgreSQL the
//! marks are claimed with `SKIP LOCKED`; SQLite has one writer.
use std::sync::Arc;

use chrono::Duration;
use mimamori_core::store::stats;

use crate::{Deps, Shutdown};

const BATCH: i64 = 500;

pub async fn run(deps: Arc<Deps>, mut shutdown: Shutdown) {
    let interval = std::time::Duration::from_secs(deps.config.workers.stats_interval_secs.max(1));
    loop {
        if let Err(e) = pass(&deps).await {
            tracing::error!(error = %e, "statistics job failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
}

/// One pass; returns how many sources were re-derived.
pub async fn pass(deps: &Deps) -> mimamori_core::Result<usize> {
    let mut done = 0;
    loop {
        let n = stats::refresh(&deps.db, BATCH).await?;
        done += n;
        if n < BATCH as usize {
            break;
        }
    }
    if done > 0 {
        tracing::debug!(sources = done, "statistics updated");
    }
    let today = mimamori_core::stats::local_day(chrono::Utc::now());
    stats::recount_answers(&deps.db, today - Duration::days(2)).await?;
    Ok(done)
}
