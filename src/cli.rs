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
