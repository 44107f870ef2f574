//! `mimamori [serve|web|work|migrate|demo|check]`.
use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{Application, Role, settings, startup, telemetry};

#[derive(Parser)]
#[command(
    name = "mimamori",
    version,
    about = "見守り — health observation for public-health teams"
)]
struct Cli {
    /// Configuration file (optional; environment MIMAMORI_SECTION__KEY overrides it).
    #[arg(
        long,
        short,
        env = "MIMAMORI_CONFIG",
        default_value = "mimamori.toml",
        global = true
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Web console and workers in one process (the default).
    Serve,
    /// Web only (scale out: several behind a load balancer).
    Web,
    /// Workers only: planning, sending, sweeps.
    Work,
    /// Apply database migrations and exit.
    Migrate,
    /// Load demo data into an empty database and exit.
    Demo,
    /// Validate configuration and flows; report every problem with file and line.
    Check {
        /// Also ask the providers, without sending: the Twilio account and credential, each
        /// sender number (on the account, SMS- / voice-capable), the SMTP login.
        #[arg(long)]
        live: bool,
    },
    /// Statistics: `mimamori stats rebuild` recomputes every daily figure from the raw
    /// records (the job keeps them current; this is the reference and the repair).
    Stats {
        #[command(subcommand)]
        what: StatsCommand,
    },
    /// Delivery capacity: whether every first message, reminder and fallback of a day leaves
    /// inside its answer window at the configured sender rates, per channel and check-in
    /// time, with a forecast of the following days and what would fix an overflow.
    Plan {
        /// Required: the capacity report (the planning itself runs in the worker).
        #[arg(long)]
        capacity: bool,
        /// The day (YYYY-MM-DD, Japan); default tomorrow.
        date: Option<chrono::NaiveDate>,
        /// Days forecast after it.
        #[arg(long, default_value_t = 7)]
        days: i64,
    },
}

#[derive(Subcommand)]
enum StatsCommand {
    /// Recompute every figure from the raw rows, with progress; the pages keep the old
    /// figures until the new ones are complete.
    Rebuild,
    /// Recount from the raw rows and compare with the kept figures, without writing; exits
    /// non-zero when they differ (after the job has caught up).
    Verify,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match settings::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log_format, telemetry::SERVER_FILTER);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config, Role::Serve).await,
            Command::Web => serve(config, Role::Web).await,
            Command::Work => serve(config, Role::Work).await,
            Command::Migrate => {
                let db = startup::open_db(&config).await?;
                println!("migrations applied ({})", db.backend());
                Ok(())
            }
            Command::Demo => {
                let db = startup::open_db(&config).await?;
                startup::load_demo_if_empty(&db, startup::dev_outbox(&config)).await
            }
            Command::Check { live } => check(&config, live).await,
            Command::Stats { what } => stats(&config, what).await,
            Command::Plan {
                capacity,
                date,
                days,
            } => {
                anyhow::ensure!(
                    capacity,
                    "say what to plan: `mimamori plan --capacity [DATE]` (the day's check-ins are planned by the worker)"
                );
                crate::capacity_report::print(&config, date, days).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn stats(config: &mimamori_core::config::Config, what: StatsCommand) -> anyhow::Result<()> {
    use mimamori_core::store::stats;
    let db = startup::open_db(config).await?;
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} people ({per_sec}, {eta} left)",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    match what {
        StatsCommand::Rebuild => {
            bar.set_message("deriving");
            let t = std::time::Instant::now();
            let r = stats::rebuild(&db, &progress).await?;
            bar.finish_and_clear();
            println!(
                "statistics rebuilt from the raw records: {} sources, {} figures, in {:.1} s",
                r.sources,
                r.cells,
                t.elapsed().as_secs_f64()
            );
        }
        StatsCommand::Verify => {
            while stats::refresh(&db, 500).await? > 0 {}
            bar.set_message("recounting");
            let want = stats::recount(&db, &progress).await?;
            bar.finish_and_clear();
            let have = stats::table(&db).await?;
            let differ = want
                .iter()
                .filter(|(k, v)| have.get(*k) != Some(*v))
                .count()
                + have.keys().filter(|k| !want.contains_key(*k)).count();
            anyhow::ensure!(
                differ == 0,
                "{differ} of {} figures differ from a recount: run `mimamori stats rebuild`",
                want.len()
            );
            println!(
                "statistics agree with a recount of the raw records ({} figures)",
                want.len()
            );
        }
    }
    Ok(())
}

async fn serve(config: mimamori_core::config::Config, role: Role) -> anyhow::Result<()> {
    let app = Application::build(config, role).await?;
    app.run_until(startup::shutdown_signal()).await
}

async fn check(config: &mimamori_core::config::Config, live: bool) -> anyhow::Result<()> {
    let mut problems = config.problems();
    if live && problems.is_empty() {
        let found = mimamori_core::provider::Channels::live_check(config).await;
        println!(
            "providers: {}",
            if found.is_empty() {
                "the Twilio account, sender numbers and SMTP login answer as configured (nothing was sent)"
            } else {
                "problems found (nothing was sent)"
            }
        );
        problems.extend(found);
    }
    problems.extend(mimamori_core::i18n::problems());
    if let Err(e) = config.workers.planning_cron.parse::<cron::Schedule>() {
        problems.push(format!(
            "workers.planning_cron: {e} (six fields, seconds first: '0 5 0 * * *')"
        ));
    }
    if let Err(e) = mimamori_core::rules::Thresholds::load(std::path::Path::new(&config.flows_dir))
    {
        problems.push(e);
    }
    if let Err(e) = mimamori_core::periods::Periods::load(std::path::Path::new(&config.flows_dir)) {
        problems.push(e);
    }
    if let Err(e) =
        mimamori_core::stats::reporting::Reporting::load(std::path::Path::new(&config.flows_dir))
    {
        problems.push(e);
    }
    match mimamori_core::flows::Flows::load(std::path::Path::new(&config.flows_dir)) {
        Err(p) => problems.extend(p),
        Ok(flows) => match mimamori_core::voice::Prompts::load(std::path::Path::new(
            &config.voice_prompts_dir,
        )) {
            Err(p) => problems.extend(p),
            Ok(prompts) => problems.extend(prompts.missing_for(&flows)),
        },
    }
    if let Err(e) = mimamori_core::provider::Channels::from_config(
        config,
        &mimamori_core::Db::Sqlite(
            sqlx::SqlitePool::connect_lazy("sqlite::memory:")
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
    ) {
        problems.push(e);
    }
    println!(
        "database: {}",
        if config.database_url().starts_with("sqlite") {
            "sqlite (embedded)"
        } else {
            "postgres"
        }
    );
    println!("link_secret: {}", settings::redacted(&config.link_secret));
    if problems.is_empty() {
        println!(
            "ok: configuration and flows are valid{}",
            if live {
                "; providers answer"
            } else {
                " (add --live to ask the providers too)"
            }
        );
        Ok(())
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        anyhow::bail!("{} problem(s) found", problems.len())
    }
}
