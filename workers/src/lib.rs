//! mimamori-workers: the job queue (apalis on the application's own database), the daily
//! planning schedule and the check-in dispatcher.
//!
//! * `mimamori.plan-day` (apalis queue): plan the day's check-ins. Pushed by a cron worker
//!   (`workers.planning_cron`, default 00:05 Asia/Tokyo) and run once per scheduled instant
//!   cluster-wide (`job_runs`), since apalis-cron ticks on every replica.
//! * The statistics job (`stats`): folds the records the triggers marked as changed into
//!   the daily figures, and re-counts the last days' answer rates.
//! * The dispatcher: a loop that claims due check-ins in batches straight from the
//!   `checkins` table (`FOR UPDATE SKIP LOCKED` on PostgreSQL), sends them through the
//!   provider and closes overdue ones as `missed`. The check-in rows are the queue for the
//!   hot path: one row per person per slot already exists, so a second job row per send
//!   would only double the writes.
pub mod dispatch;
pub mod plan;
mod queue;
pub mod stats;

use mimamori_core::{
    Db, config::Config, flows::Flows, provider::Channels, rules::Thresholds, token::LinkSigner,
};

pub use queue::{enqueue_plan_day, run, setup};

/// What every job needs.
pub struct Deps {
    pub db: Db,
    pub config: Config,
    pub channels: Channels,
    pub rules: Thresholds,
    /// Questionnaires, with each flow's retry policy.
    pub flows: std::sync::Arc<Flows>,
    pub signer: LinkSigner,
}

pub type Shutdown = tokio::sync::watch::Receiver<bool>;
