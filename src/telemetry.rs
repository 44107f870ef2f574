//! tracing set-up: human-readable by default, JSON with `MIMAMORI_LOG_FORMAT=json`. Logs
//! carry ids (request, person, check-in), never names, phone numbers or answers. They go to
//! standard error — standard output is for what a command prints (a report, a benchmark's
//! tables) — and carry colour only when standard error is a terminal, so a log file has no
//! escape codes (`grep ERROR` finds every error line).
use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// The filter when `MIMAMORI_LOG` is not set: the server's, or a quieter one for commands
/// whose output is their report (the benchmark).
pub const SERVER_FILTER: &str = "info,sqlx=warn,apalis=warn,tower_http=info";
pub const QUIET_FILTER: &str = "warn,sqlx=error,apalis=error";

pub fn init(format: &str, default_filter: &str) {
    let filter =
        EnvFilter::try_from_env("MIMAMORI_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if format == "json" {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .compact()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
}
