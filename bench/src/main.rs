//! `mimamori-bench`: throughput benchmarks on PostgreSQL, printed as ratios to ceilings
//! measured in the same run (raw SQL inserts, a bare `COPY`, a trivial handler). Its own
//! binary, not part of the product; see BENCHMARKS.md for the figures and how to read them.
//!
//! ```text
//! cargo run --release -p mimamori-bench -- --only engine
//! ```
use std::process::ExitCode;

use clap::Parser;

mod delivery;
mod engine;
mod import;
mod review;
mod run;
mod statistics;
mod surge;
mod trends;

/// Throughput benchmarks on PostgreSQL, as ratios to ceilings measured in the same run
/// (see BENCHMARKS.md).
#[derive(Parser)]
#[command(name = "mimamori-bench", version)]
struct Cli {
    /// An administrative PostgreSQL URL; the benchmark creates and drops its own databases.
    #[arg(
        long,
        env = "MIMAMORI_BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pg: String,
    /// People under observation for the planning benchmark.
    #[arg(long, default_value_t = 1_500_000)]
    people: i64,
    /// Check-ins for the sending benchmark.
    #[arg(long, default_value_t = 20_000)]
    send: i64,
    /// Answers per ingest measurement.
    #[arg(long, default_value_t = 3_000)]
    ingest: i64,
    /// Observations stored for the statistics benchmark.
    #[arg(long, default_value_t = 30_000_000)]
    observations: i64,
    /// Records in the import benchmark's file.
    #[arg(long, default_value_t = 500_000)]
    records: usize,
    /// all | engine | review (= ingest + pages) | ingest | pages | registry | delivery | statistics | opendata | import | surge | trends
    #[arg(long, default_value = "all")]
    only: String,
    /// Internal: serve the web part on this database URL (the surge benchmark's server
    /// process), printing `PORT n`, until standard input closes.
    #[arg(long, hide = true)]
    serve: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The figures stay readable: only warnings and errors are logged.
    mimamori::telemetry::init("text", mimamori::telemetry::QUIET_FILTER);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(url) = cli.serve {
        return match rt.block_on(surge::serve(&url)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let result = rt.block_on(run::run(run::Args {
        admin_url: cli.pg,
        people: cli.people,
        send: cli.send,
        ingest: cli.ingest,
        observations: cli.observations,
        records: cli.records,
        only: cli.only,
    }));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
