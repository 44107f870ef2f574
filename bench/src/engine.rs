//! Planning, sending and rate limits, against raw inserts and a loopback provider.
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Json, Router, routing::post};
use chrono::Utc;
use mimamori_core::{
    Db,
    config::Config,
    db::now,
    provider::{Channels, Provider, twilio::Twilio},
    store::checkins,
    token::LinkSigner,
    with_db,
};
use mimamori_workers::{Deps, dispatch};
use secrecy::SecretString;

use crate::run::*;

pub(crate) async fn planning(args: &Args) -> anyhow::Result<()> {
    println!(
        "\n## Planning: {} people under observation → today's check-ins (PostgreSQL)",
        args.people
    );
    let (db, name) = fresh_db(&args.admin_url, "plan").await?;
    let t0 = Instant::now();
    seed_people(&db, args.people, "sms").await?;
    println!("seeded in {:.1} s", t0.elapsed().as_secs_f64());
    let Db::Postgres(p) = &db else { unreachable!() };
    // One day later than any existing check-in, at 00:05 Tokyo time.
    let day = Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive()
        + chrono::Duration::days(1);
    let at = checkins::slot_instant(chrono_tz::Asia::Tokyo, day, 5);
    let window = chrono::Duration::hours(10);

    let t = Instant::now();
    let planned = checkins::plan_day(&db, at, window).await?;
    let plan_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let again = checkins::plan_day(&db, at, window).await?;
    let rerun_s = t.elapsed().as_secs_f64();

    // Ceiling: the same rows with a bare INSERT … SELECT into a table of the same shape
    // (same columns, constraints, foreign key and indexes), no joins, no filters, no
    // conflict handling.
    sqlx::query("CREATE TABLE checkins_bare (LIKE checkins INCLUDING ALL)")
        .execute(p)
        .await?;
    // LIKE does not copy foreign keys; the real table checks person_id, so must the ceiling.
    sqlx::query("ALTER TABLE checkins_bare ADD FOREIGN KEY (person_id) REFERENCES persons(id)")
        .execute(p)
        .await?;
    let due = checkins::slot_instant(chrono_tz::Asia::Tokyo, day, 540);
    let t = Instant::now();
    let bare = sqlx::query(
        "INSERT INTO checkins_bare (person_id, local_date, slot, due_at, deadline_at, status, attempts)
         SELECT person_id, $1, slot, $2, $3, 'planned', 0 FROM person_slots")
        .bind(day).bind(due).bind(due + window).execute(p).await?.rows_affected();
    let bare_s = t.elapsed().as_secs_f64();
    println!("| measure | rows | seconds | rows/s |");
    println!("|---|---|---|---|");
    println!(
        "| bare INSERT … SELECT (ceiling) | {bare} | {bare_s:.2} | {:.0} |",
        bare as f64 / bare_s
    );
    println!(
        "| plan_day (product) | {planned} | {plan_s:.2} | {:.0} |",
        planned as f64 / plan_s
    );
    println!("| plan_day again (idempotent, creates {again}) | {again} | {rerun_s:.2} | — |");
    println!(
        "ratio plan_day / bare = {:.2} (target ≤ 1.5); absolute {plan_s:.1} s (target < 60 s)",
        plan_s / bare_s
    );
    drop_db(&args.admin_url, db, &name).await;
    Ok(())
}

/// A loopback Twilio-compatible provider that accepts everything and notes when.
pub(crate) async fn fake_provider() -> anyhow::Result<(String, Arc<Mutex<Vec<Instant>>>)> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let handler = move || {
        let seen = s2.clone();
        async move {
            let n = {
                let mut g = seen.lock().expect("lock");
                g.push(Instant::now());
                g.len()
            };
            (
                axum::http::StatusCode::CREATED,
                Json(serde_json::json!({ "sid": format!("SM{n:032}") })),
            )
        }
    };
    let app = Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(handler.clone()),
        )
        .route("/2010-04-01/Accounts/{sid}/Calls.json", post(handler));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", l.local_addr()?);
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok((base, seen))
}

pub(crate) fn twilio_config(base: &str, sms_rate: f64, call_rate: f64) -> Config {
    let mut c = Config {
        public_url: "https://bench.invalid".into(),
        ..Config::default()
    };
    c.twilio.api_base = base.into();
    c.twilio.account_sid = "ACbench".into();
    c.twilio.auth_token = SecretString::from("bench");
    c.twilio.sms_from = vec!["+815000000001".into()];
    c.twilio.voice_from = vec!["+815000000002".into()];
    c.twilio.messages_per_sec = sms_rate;
    c.twilio.calls_per_sec = call_rate;
    c.workers.batch_size = 500;
    c.checkin.reminder_after_minutes = 0;
    c
}

pub(crate) async fn raw_insert_rate(db: &Db, n: i64) -> anyhow::Result<f64> {
    with_db!(db, p => {
        sqlx::query("CREATE TABLE IF NOT EXISTS bench_raw (id BIGINT PRIMARY KEY, checkin_id BIGINT NOT NULL, status TEXT NOT NULL, at TIMESTAMPTZ NOT NULL)")
            .execute(p).await?;
        let t = Instant::now();
        for i in 0..n {
            sqlx::query("INSERT INTO bench_raw (id, checkin_id, status, at) VALUES ($1, $2, $3, $4)")
                .bind(i).bind(i).bind("sent").bind(now()).execute(p).await?;
        }
        Ok(n as f64 / t.elapsed().as_secs_f64())
    })
}

pub(crate) async fn sending(args: &Args) -> anyhow::Result<()> {
    println!(
        "\n## Sending: {} due check-ins → loopback provider over HTTP, no rate limit (PostgreSQL)",
        args.send
    );
    let (db, name) = fresh_db(&args.admin_url, "send").await?;
    seed_people(&db, args.send, "sms").await?;
    let Db::Postgres(p) = &db else { unreachable!() };
    let t = now();
    sqlx::query(
        "INSERT INTO checkins (person_id, local_date, slot, due_at, deadline_at, status, attempts)
         SELECT id, $1, 0, $2, $3, 'planned', 0 FROM persons",
    )
    .bind(Utc::now().date_naive())
    .bind(t - chrono::Duration::minutes(1))
    .bind(t + chrono::Duration::hours(10))
    .execute(p)
    .await?;
    let raw = raw_insert_rate(&db, 5_000).await?;
    let (base, seen) = fake_provider().await?;
    let cfg = twilio_config(&base, 0.0, 0.0);
    let twilio: Arc<dyn Provider> =
        Arc::new(Twilio::new(&cfg.twilio).map_err(|e| anyhow::anyhow!(e))?);
    let deps = Deps {
        db: db.clone(),
        config: cfg,
        channels: Channels::all(twilio),
        signer: LinkSigner::new(b"bench"),
        rules: Default::default(),
        flows: std::sync::Arc::new(
            mimamori_core::flows::Flows::load(std::path::Path::new("/nonexistent"))
                .map_err(|e| anyhow::anyhow!(e.join("; ")))?,
        ),
    };
    // Serial passes (one claim → send → record at a time) first, on half the check-ins…
    let half = args.send / 2;
    let start = Instant::now();
    let mut serial = 0;
    while serial < half {
        let pass = dispatch::pass(&deps).await?;
        serial += pass.sent as i64;
        if pass.sent + pass.retried + pass.failed == 0 {
            break;
        }
    }
    let serial_rate = serial as f64 / start.elapsed().as_secs_f64();
    // …then the product's own dispatcher loop (`dispatch::run`: the next pass starts when the
    // running one is halfway through its sends) on the rest, until every one is sent.
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let worker = tokio::spawn(dispatch::run(Arc::new(deps), shutdown));
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM checkins WHERE status = 'sent'")
            .fetch_one(p)
            .await
    };
    while count().await? < args.send {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(300),
            "the dispatcher did not send everything in 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = worker.await;
    let sent = args.send - serial;
    let recorded = count().await?;
    let rate = sent as f64 / secs;
    println!("| measure | per second |");
    println!("|---|---|");
    println!("| raw single-row INSERT, autocommit (ceiling) | {raw:.0} |");
    println!(
        "| check-ins sent and recorded, serial passes (`dispatch::pass` in a loop) | {serial_rate:.0} |"
    );
    println!(
        "| check-ins sent and recorded, the dispatcher (`dispatch::run`, passes overlapped) | {rate:.0} |"
    );
    println!(
        "dispatcher: sent {sent} in {secs:.2} s (recorded {recorded} of {} in all, provider saw {}); ratio sent / raw insert = {:.2} (serial passes {:.2}); target ≥ 2,000/s",
        args.send,
        seen.lock().expect("lock").len(),
        rate / raw,
        serial_rate / raw
    );
    drop_db(&args.admin_url, db, &name).await;
    Ok(())
}

pub(crate) async fn rate_limits(args: &Args) -> anyhow::Result<()> {
    println!("\n## Rate limits: configured 100 SMS/s and 10 calls/s per sender number");
    let (base, seen) = fake_provider().await?;
    let cfg = twilio_config(&base, 100.0, 10.0);
    let twilio = Arc::new(Twilio::new(&cfg.twilio).map_err(|e| anyhow::anyhow!(e))?);
    println!("| channel | sent | seconds | achieved /s | limit /s | max in any 1 s |");
    println!("|---|---|---|---|---|---|");
    for (channel, n, limit) in [("sms", 1000usize, 100.0), ("voice", 100, 10.0)] {
        seen.lock().expect("lock").clear();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..n {
            let tw = twilio.clone();
            tasks.push(tokio::spawn(async move {
                let m = mimamori_core::provider::OutboundMessage {
                    channel: if channel == "sms" { "sms" } else { "voice" },
                    to: format!("+8190{i:08}"),
                    subject: None,
                    body: "bench".into(),
                    html: None,
                    url: Some("https://bench.invalid/hooks/twilio/voice?t=x".into()),
                    status_callback: None,
                    idempotency_key: format!("rate-{i}"),
                    priority: false,
                    audience: mimamori_core::provider::Audience::Nobody,
                };
                tw.send(&m).await
            }));
        }
        for t in tasks {
            t.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let secs = start.elapsed().as_secs_f64();
        let times = seen.lock().expect("lock").clone();
        // The first send goes at once: n sends span (n - 1) intervals.
        let achieved = (n - 1) as f64 / secs;
        println!(
            "| {channel} | {n} | {secs:.2} | {achieved:.1} ({:.0} % of limit) | {limit} | {} |",
            achieved / limit * 100.0,
            max_per_second(&times)
        );
    }
    let _ = args;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Review side: answer ingest, escalation visibility, person page, review queue.
