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

/// Files that parse but would break the product: `check` refuses each with file, line and
/// why, and `serve` will not start with them.
#[test]
fn check_and_serve_refuse_flows_that_would_break_the_product() {
    let dir = flows_copy("meaning");
    let patient = std::fs::read_to_string(dir.join("patient-daily.toml")).unwrap();
    std::fs::write(
        dir.join("patient-daily.toml"),
        patient.replacen("group = \"vitals\"", "group = \"vitalz\"", 1),
    )
    .unwrap();
    let rules = std::fs::read_to_string(dir.join("rules.toml")).unwrap();
    let fever = rules
        .lines()
        .find(|l| l.starts_with("fever_at_or_above"))
        .unwrap()
        .to_string();
    std::fs::write(
        dir.join("rules.toml"),
        rules.replace(&fever, "fever_at_or_above = -1"),
    )
    .unwrap();
    for sub in ["check", "serve"] {
        let out = run_on_flows(sub, &dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sub:?} must refuse: {err}");
        assert!(
            err.contains("patient-daily.toml:") && err.contains("'vitalz', which no screen shows"),
            "{sub:?}: {err}"
        );
        if sub == "check" {
            assert!(
                err.contains("fever_at_or_above = -1 is not a body temperature"),
                "{err}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Logs written to a file (not a terminal) carry no colour codes, and go to standard error,
/// leaving standard output to what a command prints.
#[test]
fn logs_to_a_file_have_no_colour_codes() {
    let dir = std::env::temp_dir().join(format!("mimamori-logs-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_mimamori"))
        .arg("serve")
        .env("MIMAMORI_CONFIG", "/nonexistent.toml")
        .env("MIMAMORI_DATA_DIR", &dir)
        .env("MIMAMORI_HTTP__ADDR", "127.0.0.1:0")
        .env("MIMAMORI_DEMO__LOAD_ON_EMPTY", "false")
        .env_remove("MIMAMORI_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    child.kill().ok();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(" INFO ") && err.contains("listening"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no ANSI escape codes in a log file: {err:?}"
    );
    assert!(out.stdout.is_empty(), "logs are not on standard output");
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
    assert_eq!(
        cfg.database.connection_wait_secs,
        d.database.connection_wait_secs
    );
    assert!(cfg.problems().is_empty());
    // A connection wait of 0 would fail every request that meets a busy pool: refused.
    let mut zero = d.clone();
    zero.database.connection_wait_secs = 0;
    let problems = zero.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("database.connection_wait_secs") && p.contains("at least 1")),
        "{problems:?}"
    );
}

/// `mimamori check --live` against the provider double (which answers the account and number
/// lookups as Twilio documents them) and the SMTP peer: every problem by name, nothing sent.
/// Sender lists come comma-separated from the environment.
#[tokio::test]
async fn check_live_asks_the_providers_and_names_each_problem() {
    use crate::fake_twilio::{Fake, SID, TOKEN};
    let fake = Fake::start().await;
    let maildir = tempfile::tempdir().unwrap();
    let (_smtp, smtp_port) = crate::peers::smtp_server(maildir.path()).await;
    let closed = crate::peers::free_port();
    let run = |token: &'static str, smtp_port: u16| {
        let base = fake.base.clone();
        tokio::task::spawn_blocking(move || {
            let out = Command::new(env!("CARGO_BIN_EXE_mimamori"))
                .args(["check", "--live"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("MIMAMORI_CONFIG", "/nonexistent.toml")
                .env("MIMAMORI_TWILIO__API_BASE", base)
                .env("MIMAMORI_TWILIO__ACCOUNT_SID", SID)
                .env("MIMAMORI_TWILIO__AUTH_TOKEN", token)
                .env("MIMAMORI_TWILIO__SMS_FROM", "+815000000001,+815000000002")
                .env(
                    "MIMAMORI_SMTP__URL",
                    format!("smtp://127.0.0.1:{smtp_port}"),
                )
                .output()
                .unwrap();
            (
                out.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        })
    };
    let (ok, text) = run(TOKEN, smtp_port).await.unwrap();
    assert!(ok, "{text}");
    assert!(text.contains("providers answer"), "{text}");

    // One sender not on the account, the other not SMS-capable; a wrong SMTP port.
    fake.inner.lock().unwrap().owned = Some(vec![("+815000000002".into(), false, true)]);
    let (ok, text) = run(TOKEN, closed).await.unwrap();
    assert!(!ok);
    assert!(
        text.contains("+815000000001 is not a number of this account"),
        "{text}"
    );
    assert!(text.contains("+815000000002 cannot send SMS"), "{text}");
    assert!(text.contains("smtp: cannot connect"), "{text}");

    // A wrong credential is named as such.
    let (ok, text) = run("wrong-token", smtp_port).await.unwrap();
    assert!(!ok);
    assert!(
        text.contains("refuses twilio.account_sid / twilio.auth_token"),
        "{text}"
    );
    let sent = {
        let g = fake.inner.lock().unwrap();
        g.messages.len() + g.calls.len()
    };
    assert_eq!(sent, 0, "a check sends nothing");
}

/// Sender numbers that are not E.164 are named with how to write them.
#[test]
fn check_refuses_sender_numbers_that_are_not_e164() {
    let out = Command::new(env!("CARGO_BIN_EXE_mimamori"))
        .arg("check")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MIMAMORI_CONFIG", "/nonexistent.toml")
        .env("MIMAMORI_TWILIO__ACCOUNT_SID", "ACx")
        .env("MIMAMORI_TWILIO__AUTH_TOKEN", "t")
        .env("MIMAMORI_TWILIO__SMS_FROM", "+815000000001, 050-1234-5678")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'050-1234-5678' is not an E.164 number"),
        "{err}"
    );
    assert!(!err.contains("'+815000000001'"), "{err}");
}

/// `mimamori plan --capacity`: on the demo set, generous rates fit (exit 0, "ok"); a single
/// number at a crawl overflows, names how many sends miss their window and what would fix
/// it, forecasts the next days, and exits non-zero.
#[test]
fn plan_capacity_reports_overflow_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], rate: &str| {
        Command::new(env!("CARGO_BIN_EXE_mimamori"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("MIMAMORI_CONFIG", "/nonexistent.toml")
            .env("MIMAMORI_DATA_DIR", dir.path())
            .env("MIMAMORI_TWILIO__ACCOUNT_SID", "ACx")
            .env("MIMAMORI_TWILIO__AUTH_TOKEN", "t")
            .env("MIMAMORI_TWILIO__SMS_FROM", "+815000000001")
            .env("MIMAMORI_TWILIO__MESSAGES_PER_SEC", rate)
            .env("MIMAMORI_TWILIO__CALLS_PER_SEC", rate)
            .output()
            .unwrap()
    };
    let demo = run(&["demo"], "1");
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let out = run(&["plan", "--capacity", "--days", "2"], "50");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("ok: every send of"), "{text}");
    assert!(
        text.contains("| channel | wave |") && text.contains("Forecast"),
        "{text}"
    );

    let out = run(&["plan", "--capacity"], "0.0001");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success());
    assert!(text.contains("OVERFLOW:"), "{text}");
    assert!(
        text.contains("fix:") && text.contains("more sender number"),
        "{text}"
    );
    let without = run(&["plan"], "1");
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stderr).contains("--capacity"));
}

/// Trend rules that read a question no flow asks could never fire: `check` names the key and
/// the fix, and `serve` will not start with them.
#[test]
fn check_and_serve_refuse_trend_rules_that_read_no_question() {
    let dir = flows_copy("trend");
    let rules = std::fs::read_to_string(dir.join("rules.toml")).unwrap();
    std::fs::write(
        dir.join("rules.toml"),
        rules
            .replace("worse_choice = \"worse\"", "worse_choice = \"wrose\"")
            .replace(
                "score_breathless_question = \"breathless\"",
                "score_breathless_question = \"feeling\"",
            ),
    )
    .unwrap();
    for sub in ["check", "serve"] {
        let out = run_on_flows(sub, &dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sub} must refuse: {err}");
        assert!(
            err.contains("worse_choice = \"wrose\"") && err.contains("set worse_days = 0"),
            "{sub}: {err}"
        );
        assert!(
            err.contains("score_breathless_question = \"feeling\" is not a yes/no question"),
            "{sub}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A copy of the shipped flows folder to break on purpose.
fn flows_copy(tag: &str) -> std::path::PathBuf {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("flows");
    let dir = std::env::temp_dir().join(format!("mimamori-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(&shipped).unwrap().flatten() {
        std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
    }
    dir
}

/// `mimamori <sub>` with the flows in `dir` and nothing else configured.
fn run_on_flows(sub: &str, dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mimamori"))
        .arg(sub)
        .env("MIMAMORI_FLOWS_DIR", dir)
        .env("MIMAMORI_CONFIG", "/nonexistent.toml")
        .env("MIMAMORI_DATA_DIR", dir.join("data"))
        .env("MIMAMORI_HTTP__ADDR", "127.0.0.1:0")
        .output()
        .unwrap()
}
