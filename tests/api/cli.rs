//! The binary's `check` subcommand: every problem reported with file and line, non-zero exit.
use std::process::Command;

#[test]
fn check_passes_on_the_shipped_flows() {
    let out = Command::new(env!("CARGO_BIN_EXE_mimamori"))
        .arg("check")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MIMAMORI_CONFIG", "/nonexistent.toml")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}

#[test]
fn check_reports_file_line_and_fails() {
    let dir = std::env::temp_dir().join(format!("mimamori-flows-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("patient-daily.toml"),
        "id = \"patient-daily\"\ntitle = { ja = \"x\", en = \"x\" }\n\n[[questions]]\nid = \"t\"\nkind = \"thermometer\"\ntext = { ja = \"a\", en = \"b\" }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mimamori"))
        .arg("check")
        .env("MIMAMORI_FLOWS_DIR", &dir)
        .env("MIMAMORI_WORKERS__PLANNING_CRON", "every day")
        .env("MIMAMORI_HTTP__ADDR", "localhost")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("patient-daily.toml:6:"), "{err}");
    assert!(err.contains("'contact-daily' is missing"), "{err}");
    assert!(err.contains("workers.planning_cron"), "{err}");
    assert!(err.contains("http.addr"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn example_config_documents_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mimamori.example.toml");
    let cfg: mimamori_core::config::Config = figment::Figment::new()
        .merge(<figment::providers::Toml as figment::providers::Format>::file(path))
        .extract()
        .unwrap();
    let d = mimamori_core::config::Config::default();
    assert_eq!(cfg.http.addr, d.http.addr);
    assert_eq!(cfg.public_url, d.public_url);
    assert_eq!(
        cfg.checkin.answer_window_minutes,
        d.checkin.answer_window_minutes
    );
    assert_eq!(cfg.checkin.max_send_attempts, d.checkin.max_send_attempts);
    assert_eq!(cfg.workers.planning_cron, d.workers.planning_cron);
    assert_eq!(cfg.workers.batch_size, d.workers.batch_size);
    assert_eq!(cfg.workers.queue_poll_ms, d.workers.queue_poll_ms);
    assert_eq!(cfg.database.max_connections, d.database.max_connections);
    assert!(cfg.problems().is_empty());
}
