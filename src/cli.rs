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
    /// Import records from another system: `mimamori import nesid FILE --mapping M --dry-run`.
    Import {
        #[command(subcommand)]
        what: ImportCommand,
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

#[derive(Subcommand)]
enum ImportCommand {
    /// Occurrence-report records (NESID-era exports, or the documented import format): CSV
    /// in UTF-8 or CP932, or XLSX.
    Nesid {
        /// The file (CSV or XLSX).
        file: PathBuf,
        /// The column mapping (e.g. flows/nesid.mapping.toml); default the documented format.
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Say what would happen to every row; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The importing staff member's login name (their centre receives the records).
        #[arg(long)]
        user: String,
        /// auto (default, from the mapping), utf-8 or cp932.
        #[arg(long)]
        encoding: Option<String>,
        /// Where to write the row-by-row report (CSV); default FILE.report.csv.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Language of the report's reasons: ja (default) or en.
        #[arg(long, default_value = "ja")]
        lang: String,
    },
    /// Undo an import batch (the ID officer, while its records are untouched).
    Undo {
        batch: i64,
        #[arg(long)]
        user: String,
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
            Command::Stats { what } => stats(&config, what).await,
            Command::Import { what } => import(&config, what).await,
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

async fn import(config: &mimamori_core::config::Config, what: ImportCommand) -> anyhow::Result<()> {
    use mimamori_core::{import, store::imports};
    let db = startup::open_db(config).await?;
    let viewer_of = |user: String| {
        let db = db.clone();
        async move {
            let v = mimamori_core::store::staff::viewer_by_username(&db, &user)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no staff member '{user}' (--user)"))?;
            anyhow::Ok(v)
        }
    };
    match what {
        ImportCommand::Undo { batch, user } => {
            let v = viewer_of(user).await?;
            let n = imports::undo(&db, &v, batch).await?;
            println!("import {batch} undone: {n} people and their reports removed");
        }
        ImportCommand::Nesid {
            file,
            mapping,
            dry_run,
            user,
            encoding,
            report,
            lang,
        } => {
            let v = viewer_of(user).await?;
            let mut mapping = match &mapping {
                Some(p) => import::Mapping::load(p).map_err(|e| anyhow::anyhow!(e))?,
                None => import::Mapping::standard("nesid"),
            };
            if let Some(enc) = encoding {
                mapping.encoding = enc;
            }
            let bytes =
                std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let periods =
                mimamori_core::periods::Periods::load(std::path::Path::new(&config.flows_dir))
                    .map_err(|e| anyhow::anyhow!(e))?;
            let bar = indicatif::ProgressBar::new(0).with_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta} left)",
                )
                .expect("template")
                .progress_chars("=> "),
            );
            bar.set_message(if dry_run { "checking" } else { "importing" });
            let phase = if dry_run { "checking" } else { "importing" };
            let progress = |done: usize, total: usize| {
                if total == 0 {
                    // Still reading and checking the file: its length is not known yet.
                    bar.set_message(format!("reading and checking: {done} rows"));
                } else {
                    bar.set_message(phase);
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                }
            };
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            // Every row's outcome goes to the report file as the import reads them back.
            let out: std::path::PathBuf = report.unwrap_or_else(|| {
                let mut p = file.clone().into_os_string();
                p.push(".report.csv");
                p.into()
            });
            let report_file = std::sync::Mutex::new(std::io::BufWriter::new(
                std::fs::File::create(&out)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?,
            ));
            let to_report = |bytes: &[u8]| {
                use std::io::Write;
                report_file.lock().expect("report file").write_all(bytes)
            };
            let opt = imports::Options {
                periods: &periods,
                today: crate::web::japan_today(),
                file_name: &name,
                progress: &progress,
                lang: mimamori_core::domain::Lang::parse("lang", &lang)
                    .map_err(|_| anyhow::anyhow!("--lang: use ja or en"))?,
                report_csv: Some(&to_report),
            };
            let r = if dry_run {
                imports::dry_run(&db, &v, &mapping, &bytes, opt).await?
            } else {
                imports::run(&db, &v, &mapping, &bytes, opt).await?
            };
            bar.finish_and_clear();
            {
                use std::io::Write;
                report_file
                    .into_inner()
                    .expect("report file")
                    .flush()
                    .map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
            }
            println!(
                "{}{} rows read, {} valid: {} new people, {} linked to people already registered, {} re-positive cases, {} duplicates, {} rejected, {} imported before",
                if dry_run {
                    "dry run (nothing written) — "
                } else {
                    ""
                },
                r.rows_read,
                r.valid,
                r.created,
                r.linked,
                r.repositive,
                r.duplicate,
                r.rejected,
                r.already
            );
            if let Some(b) = r.batch_id {
                println!("batch {b}; undo with `mimamori import undo {b} --user <ID officer>`");
            }
            for o in r.rows.iter().filter(|o| o.outcome == "rejected").take(20) {
                println!("  line {}: {}", o.line, o.reason.as_deref().unwrap_or(""));
            }
            println!("every row: {}", out.display());
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
    let rules =
        match mimamori_core::rules::Thresholds::load(std::path::Path::new(&config.flows_dir)) {
            Ok(r) => Some(r),
            Err(e) => {
                problems.push(e);
                None
            }
        };
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
        Ok(flows) => {
            if let Some(r) = &rules {
                problems.extend(r.problems_with(&flows));
            }
            match mimamori_core::voice::Prompts::load(std::path::Path::new(
                &config.voice_prompts_dir,
            )) {
                Err(p) => problems.extend(p),
                Ok(prompts) => problems.extend(prompts.missing_for(&flows)),
            }
        }
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
