//! apalis wiring: storage on the application's database, explicitly named queues, the cron
//! worker and graceful shutdown.
use std::{str::FromStr, sync::Arc, time::Duration};

use apalis::prelude::*;
use apalis_cron::{CronScheduler, Tick};
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use mimamori_core::Db;

use crate::{
    Deps, Shutdown, dispatch,
    plan::{self, PlanDay},
};

/// Queue names are fixed strings, never Rust type paths, so moving a type cannot orphan
/// queued jobs.
pub const PLAN_QUEUE: &str = "mimamori.plan-day";

/// Creates apalis's tables. SQLite: only its migrations are run, not `SqliteStorage::setup`,
/// which would also switch the database to `synchronous=OFF`.
pub async fn setup(db: &Db) -> anyhow::Result<()> {
    match db {
        Db::Sqlite(p) => SqliteStorage::<()>::migrations().run(p).await?,
        Db::Postgres(p) => PostgresStorage::<()>::migrations().run(p).await?,
    }
    Ok(())
}

async fn plan_handler(job: PlanDay, deps: Data<Arc<Deps>>) -> Result<(), BoxDynError> {
    plan::plan_day(&job, &deps).await?;
    Ok(())
}

fn tick_instant(tick: &Tick<Tz>) -> DateTime<Utc> {
    DateTime::from_timestamp(tick.get_timestamp() as i64, 0).unwrap_or_else(Utc::now)
}

macro_rules! run_monitor {
    ($storage:expr, $deps:expr, $schedule:expr, $tz:expr, $signal:expr) => {{
        let storage = $storage;
        let deps = $deps.clone();
        let (schedule, tz) = ($schedule, $tz);
        let sink = storage.clone();
        // Without a strategy an idle worker only looks again at its heartbeat (30 s).
        let poll = Duration::from_millis(deps.config.workers.queue_poll_ms);
        let storage = storage.poll_with_strategy(Strategy::new().interval(poll));
        Monitor::new()
            .shutdown_timeout(Duration::from_secs(30))
            .register(move |_| {
                WorkerBuilder::new("mimamori-plan-day")
                    .backend(storage.clone())
                    .data(deps.clone())
                    .build(plan_handler)
            })
            .register(move |_| {
                let sink = sink.clone();
                WorkerBuilder::new("mimamori-planning-cron")
                    .backend(CronScheduler::new(schedule.clone()).with_timezone(tz))
                    .build(move |tick: Tick<Tz>| {
                        let mut sink = sink.clone();
                        async move {
                            sink.push(PlanDay {
                                at: tick_instant(&tick),
                            })
                            .await?;
                            Ok::<(), BoxDynError>(())
                        }
                    })
            })
            .run_with_signal($signal)
            .await
    }};
}

/// Runs the workers (queue consumers, planning cron, dispatcher) until `shutdown` turns
/// true, then lets in-flight jobs finish.
pub async fn run(deps: Arc<Deps>, shutdown: Shutdown) -> anyhow::Result<()> {
    let schedule = cron::Schedule::from_str(&deps.config.workers.planning_cron).map_err(|e| {
        anyhow::anyhow!(
            "workers.planning_cron '{}': {e}",
            deps.config.workers.planning_cron
        )
    })?;
    let tz: Tz = deps
        .config
        .workers
        .planning_time_zone
        .parse()
        .map_err(|_| anyhow::anyhow!("workers.planning_time_zone is not a time zone"))?;

    // Catch up at start: a process that was down at midnight still plans today. A failure
    // here is logged, not fatal: the nightly run and registration-time planning remain.
    if let Err(e) = plan::plan_day(&PlanDay { at: Utc::now() }, &deps).await {
        tracing::error!(error = %e, "catch-up planning failed");
    }

    let dispatcher = tokio::spawn(dispatch::run(deps.clone(), shutdown.clone()));
    let alerts = tokio::spawn(dispatch::run_alerts(deps.clone(), shutdown.clone()));
    let reconcile = tokio::spawn(dispatch::run_reconcile(deps.clone(), shutdown.clone()));
    let stats = tokio::spawn(crate::stats::run(deps.clone(), shutdown.clone()));
    let signal = {
        let mut s = shutdown.clone();
        async move {
            let _ = s.wait_for(|stop| *stop).await;
            Ok(())
        }
    };
    let result = match &deps.db {
        Db::Sqlite(pool) => {
            let cfg = apalis_sqlite::Config::default().queue(PLAN_QUEUE);
            run_monitor!(
                SqliteStorage::<PlanDay>::new(pool).with_config(cfg),
                deps,
                schedule,
                tz,
                signal
            )
        }
        Db::Postgres(pool) => {
            let cfg = apalis_postgres::Config::default().queue(PLAN_QUEUE);
            run_monitor!(
                PostgresStorage::<PlanDay>::new(pool).with_config(cfg),
                deps,
                schedule,
                tz,
                signal
            )
        }
    };
    dispatcher.await?;
    alerts.await?;
    reconcile.await?;
    stats.await?;
    result.map_err(|e| anyhow::anyhow!("worker monitor: {e}"))
}

/// Puts a planning run for the local day containing `at` on the `mimamori.plan-day` queue
/// (what the cron worker does at night; also used after bulk imports).
pub async fn enqueue_plan_day(db: &Db, at: DateTime<Utc>) -> anyhow::Result<()> {
    let job = PlanDay { at };
    match db {
        Db::Sqlite(pool) => {
            let cfg = apalis_sqlite::Config::default().queue(PLAN_QUEUE);
            SqliteStorage::<PlanDay>::new(pool)
                .with_config(cfg)
                .push(job)
                .await?
        }
        Db::Postgres(pool) => {
            let cfg = apalis_postgres::Config::default().queue(PLAN_QUEUE);
            PostgresStorage::<PlanDay>::new(pool)
                .with_config(cfg)
                .push(job)
                .await?
        }
    }
    Ok(())
}
