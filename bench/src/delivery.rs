//! `mimamori bench --only delivery`: a peak day's delivery through the whole product — 10,000
//! voice and 20,000 SMS check-ins sent by the worker at the configured per-number rates to a
//! Twilio-compatible fake that reports every outcome back to our webhooks within milliseconds
//! (during the batch, as the real one does): SMS `delivered`, calls `no-answer`. Meanwhile
//! urgent escalations are raised every half second and the on-duty nurse's alert is timed
//! from the escalation to the provider's receipt. Printed: outcome completeness (every
//! attempt ends with its provider's report applied, every check-in final or awaiting its
//! answer), rate compliance per sender number (achieved / configured, and the most requests
//! seen in any one second — never over), and the staff-alert latency p50 / p99.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Form, Json, Router, extract::Path, routing::post};
use chrono::Utc;
use mimamori_core::{
    Db,
    config::Config,
    db::now,
    rules::Priority,
    signature,
    store::{Actor, escalations},
};
use secrecy::SecretString;

const TOKEN: &str = "bench-delivery-token";

#[derive(Default)]
struct Seen {
    /// Create requests per sender number (`From`), with their arrival times.
    by_sender: HashMap<String, Vec<Instant>>,
    /// When each staff alert (to the nurse's phone) arrived.
    alerts: Vec<Instant>,
    reports_failed: usize,
}

const NURSE: &str = "+819099990000";

/// The fake: answers each create at once and reports its outcome ~20 ms later, signed.
async fn provider() -> anyhow::Result<(String, Arc<Mutex<Seen>>)> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    // One client with keep-alive for the reports, as the provider's own would be.
    let reporter = reqwest::Client::new();
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let handle = |kind: &'static str,
                  seen: Arc<Mutex<Seen>>,
                  counter: Arc<std::sync::atomic::AtomicU64>,
                  reporter: reqwest::Client| {
        move |Path(_sid): Path<String>, Form(f): Form<HashMap<String, String>>| {
            let seen = seen.clone();
            let counter = counter.clone();
            let reporter = reporter.clone();
            async move {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let sid = format!("{}{n:032}", if kind == "call" { "CA" } else { "SM" });
                {
                    let mut g = seen.lock().expect("lock");
                    if f.get("To").map(String::as_str) == Some(NURSE) {
                        g.alerts.push(Instant::now());
                    }
                    g.by_sender
                        .entry(f.get("From").cloned().unwrap_or_default())
                        .or_default()
                        .push(Instant::now());
                }
                if let Some(cb) = f.get("StatusCallback").cloned() {
                    let (key, status) = if kind == "call" {
                        ("CallSid", ("CallStatus", "no-answer"))
                    } else {
                        ("MessageSid", ("MessageStatus", "delivered"))
                    };
                    let params = vec![
                        (key.to_string(), sid.clone()),
                        (status.0.to_string(), status.1.to_string()),
                    ];
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let sig = signature::sign(TOKEN, &cb, &params);
                        let ok = reporter
                            .post(&cb)
                            .header("X-Twilio-Signature", sig)
                            .form(&params)
                            .send()
                            .await
                            .is_ok_and(|r| r.status().is_success());
                        if !ok {
                            seen.lock().expect("lock").reports_failed += 1;
                        }
                    });
                }
                (
                    axum::http::StatusCode::CREATED,
                    Json(serde_json::json!({ "sid": sid, "status": "queued" })),
                )
            }
        }
    };
    // The account and its numbers, for the start-up provider check.
    let account = || async { Json(serde_json::json!({ "status": "active" })) };
    let numbers = |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| async move {
        let n = q.get("PhoneNumber").cloned().unwrap_or_default();
        Json(serde_json::json!({ "incoming_phone_numbers": [
            { "phone_number": n, "capabilities": { "sms": true, "voice": true } }
        ] }))
    };
    let app = Router::new()
        .route("/2010-04-01/Accounts/{sid}", axum::routing::get(account))
        .route(
            "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json",
            axum::routing::get(numbers),
        )
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            post(handle(
                "message",
                seen.clone(),
                counter.clone(),
                reporter.clone(),
            )),
        )
        .route(
            "/2010-04-01/Accounts/{sid}/Calls.json",
            post(handle("call", seen.clone(), counter, reporter)),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", l.local_addr()?);
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok((base, seen))
}

fn numbers(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i:04}")).collect()
}

pub async fn run(admin_url: &str, voice: i64, sms: i64) -> anyhow::Result<()> {
    // Rates a peak day's contract might have (Twilio long codes send ~1 SMS/s each; a short
    // code or a toll-free number 10–100/s): what matters is that the configured rate is met
    // and never exceeded, and that every outcome comes back.
    let (sms_numbers, sms_rate, voice_numbers, voice_rate) = (10usize, 20.0, 10usize, 10.0);
    println!(
        "\n## Delivery: {voice} voice + {sms} SMS check-ins at configured rates, reports during the batch (PostgreSQL)"
    );
    println!(
        "SMS {sms_numbers} numbers × {sms_rate}/s, calls {voice_numbers} numbers × {voice_rate}/s; calls report no-answer (one attempt: failed + unreachable), SMS delivered"
    );
    let (db, name) = crate::run::fresh_db(admin_url, "delivery").await?;
    let Db::Postgres(p) = &db else { unreachable!() };
    crate::run::seed_people(&db, sms, "sms").await?;
    let t = now();
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive();
    sqlx::query(
        "INSERT INTO persons (health_centre_id, name, phone, channel, observation_start, observation_end, status, created_at, updated_at)
         SELECT 1 + g % 10, 'bench', '+8180' || lpad(g::text, 8, '0'), 'voice', $1, $2, 'observing', $3, $3
         FROM generate_series(1, $4) g")
        .bind(today - chrono::Duration::days(3)).bind(today + chrono::Duration::days(4)).bind(t).bind(voice)
        .execute(p).await?;
    let _nurse: i64 = sqlx::query_scalar(
        "INSERT INTO staff (health_centre_id, username, password_hash, display_name, created_at, role, phone, on_duty)
         VALUES (1, 'nurse', 'x', 'nurse', $1, 'health_centre_staff', $2, TRUE) RETURNING id")
        .bind(t).bind(NURSE).fetch_one(p).await?;
    let alert_person: i64 =
        sqlx::query_scalar("SELECT id FROM persons WHERE health_centre_id = 1 LIMIT 1")
            .fetch_one(p)
            .await?;
    let (base, seen) = provider().await?;
    let mut cfg = Config::default();
    cfg.database.url = Some(crate::run::db_url(admin_url, &name));
    cfg.database.max_connections = 16;
    cfg.http.addr = "127.0.0.1:0".into();
    cfg.public_url = String::new();
    cfg.demo.load_on_empty = false;
    cfg.link_secret = Some(SecretString::from(
        "bench-delivery-link-secret-0123456789abcdef",
    ));
    cfg.twilio.api_base = base;
    cfg.twilio.account_sid = "ACbench".into();
    cfg.twilio.auth_token = SecretString::from(TOKEN);
    cfg.twilio.sms_from = numbers("+8150000", sms_numbers);
    cfg.twilio.voice_from = numbers("+8150001", voice_numbers);
    cfg.twilio.messages_per_sec = sms_rate;
    cfg.twilio.calls_per_sec = voice_rate;
    cfg.workers.batch_size = 2_000;
    cfg.workers.dispatch_interval_ms = 100;
    cfg.checkin.max_send_attempts = 1;
    cfg.checkin.reminder_after_minutes = 0;
    let app = mimamori::Application::build(cfg, mimamori::Role::Serve).await?;
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    // Everyone due now.
    let start = Instant::now();
    sqlx::query(
        "INSERT INTO checkins (person_id, local_date, slot, due_at, deadline_at, status, attempts)
         SELECT id, $1, 0, $2, $3, 'planned', 0 FROM persons",
    )
    .bind(today)
    .bind(t - chrono::Duration::seconds(1))
    .bind(t + chrono::Duration::hours(10))
    .execute(p)
    .await?;
    // Urgent escalations every half second while the batch runs; the alert's latency is
    // measured from the raise to the provider's receipt.
    let mut raised: Vec<Instant> = Vec::new();
    let total = voice + sms;
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM checkins WHERE status IN ('planned', 'sending') OR
             id IN (SELECT checkin_id FROM contact_attempts WHERE status IN ('queued', 'sent'))",
        )
        .fetch_one(p)
        .await?;
        if open == 0 || start.elapsed() > Duration::from_secs(600) {
            break;
        }
        if raised.len() < 200 {
            raised.push(Instant::now());
            escalations::open(
                &db,
                escalations::Raise {
                    person_id: alert_person,
                    reason: "urgent_sign",
                    priority: Priority::Urgent,
                    detail: "bench",
                    actor: Actor::System,
                },
            )
            .await?;
            // Each raise refreshes the open escalation; resolve it so the next one notifies.
            sqlx::query(
                "UPDATE escalations SET status = 'resolved', resolved_at = $1 WHERE person_id = $2",
            )
            .bind(now())
            .bind(alert_person)
            .execute(p)
            .await?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(());
    handle.await??;

    let finals: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM checkins GROUP BY status ORDER BY status")
            .fetch_all(p)
            .await?;
    let attempts_open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM contact_attempts WHERE status IN ('queued', 'sent')",
    )
    .fetch_one(p)
    .await?;
    let attempts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contact_attempts")
        .fetch_one(p)
        .await?;
    let unreachable: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT person_id) FROM escalations WHERE reason = 'unreachable'",
    )
    .fetch_one(p)
    .await?;
    let g = std::mem::take(&mut *seen.lock().expect("lock"));
    println!("| measure | value |");
    println!("|---|---|");
    println!("| check-ins | {total} in {secs:.1} s |");
    println!(
        "| final statuses | {} |",
        finals
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let complete = 1.0 - attempts_open as f64 / attempts.max(1) as f64;
    println!(
        "| outcome completeness (attempts with their report applied) | {:.2} % ({attempts_open} of {attempts} left open; {} reports refused) |",
        complete * 100.0,
        g.reports_failed
    );
    println!("| people never reached escalated as unreachable | {unreachable} of {voice} |");
    for (label, prefix, rate) in [
        ("SMS", "+8150000", sms_rate),
        ("calls", "+8150001", voice_rate),
    ] {
        let mut worst_compliance = f64::MAX;
        let mut worst_second = 0usize;
        for times in g
            .by_sender
            .iter()
            .filter(|(f, _)| f.starts_with(prefix))
            .map(|(_, t)| t)
        {
            let span = times
                .iter()
                .max()
                .zip(times.iter().min())
                .map(|(a, b)| a.duration_since(*b).as_secs_f64())
                .unwrap_or(0.0)
                .max(1.0);
            worst_compliance = worst_compliance.min(times.len() as f64 / span / rate);
            worst_second = worst_second.max(crate::run::max_per_second(times));
        }
        println!(
            "| {label}: achieved / configured, worst number | {:.2} (most in any 1 s: {worst_second}, limit {rate}) |",
            if worst_compliance == f64::MAX {
                0.0
            } else {
                worst_compliance
            }
        );
    }
    let mut lat: Vec<f64> = raised
        .iter()
        .zip(g.alerts.iter())
        .map(|(r, a)| a.duration_since(*r).as_secs_f64() * 1000.0)
        .collect();
    println!(
        "| staff alerts: {} raised, {} received; latency p50 / p99 | {:.0} ms / {:.0} ms |",
        raised.len(),
        g.alerts.len(),
        crate::run::pct(lat.clone(), 0.50),
        crate::run::pct(std::mem::take(&mut lat), 0.99)
    );
    crate::run::drop_db(admin_url, db, &name).await;
    Ok(())
}
