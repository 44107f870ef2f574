//! tracing set-up: human-readable by default, JSON with `MIMAMORI_LOG_FORMAT=json`. Logs
//! carry ids (request, person, check-in), never names, phone numbers or answers.
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub fn init(format: &str) {
    let filter = EnvFilter::try_from_env("MIMAMORI_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,apalis=warn,tower_http=info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if format == "json" {
        registry
            .with(fmt::layer().json().flatten_event(true))
            .try_init()
    } else {
        registry.with(fmt::layer().compact()).try_init()
    };
}
