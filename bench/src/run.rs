//! The benchmarks of `mimamori-bench`: throughput figures, each printed beside a ceiling measured in the same
//! run on the same database, so the ratio means something on any machine.
//!
//! * planning: today's check-ins for N people (default 1,500,000, the 2022 peak) with the
//!   product's set-based planning, against a bare `INSERT … SELECT` of the same rows into a
//!   table of the same shape (PostgreSQL);
//! * sending: due check-ins claimed, sent over HTTP to a loopback Twilio-compatible fake with
//!   no rate limit, and recorded — against the raw single-row INSERT rate;
//! * rate limits: with 100 SMS/s and 10 calls/s configured, the achieved rate and the most
//!   requests the provider saw in any one-second window.
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
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

pub struct Args {
    pub admin_url: String,
    pub people: i64,
    pub send: i64,
    /// Answers per ingest measurement.
    pub ingest: i64,
    /// Which parts: all, engine (planning, sending, limits), review (= ingest + pages),
    /// ingest, pages, or
    /// registry (person search).
    pub only: String,
}

/// The URL of database `name` on the server of `admin_url`.
pub(crate) fn db_url(admin_url: &str, name: &str) -> String {
    format!(
        "{}/{name}",
        admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or("")
    )
}

pub(crate) async fn fresh_db(admin_url: &str, tag: &str) -> anyhow::Result<(Db, String)> {
    let name = format!("mimamori_bench_{tag}_{:08x}", rand::random::<u32>());
    let admin = Db::connect(admin_url, 1)
        .await
        .context("connect to PostgreSQL (--pg)")?;
    with_db!(&admin, p => { sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(p).await?; });
    admin.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(admin_url);
    let db = Db::connect(&format!("{base}/{name}"), 16).await?;
    db.migrate().await?;
    Ok((db, name))
}

pub(crate) async fn drop_db(admin_url: &str, db: Db, name: &str) {
    db.close().await;
    if let Ok(admin) = Db::connect(admin_url, 1).await {
        with_db!(&admin, p => {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(p).await;
        });
    }
}

/// People under observation, spread over 10 health centres, one 09:00 slot each.
pub(crate) async fn seed_people(db: &Db, n: i64, channel: &str) -> anyhow::Result<()> {
    let Db::Postgres(p) = db else {
        anyhow::bail!("the benchmark seeds PostgreSQL")
    };
    let t = now();
    for i in 0..10 {
        sqlx::query("INSERT INTO health_centres (name, phone, time_zone, created_at) VALUES ($1, '03-0000-0000', 'Asia/Tokyo', $2)")
            .bind(format!("bench centre {i}")).bind(t).execute(p).await?;
    }
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive();
    sqlx::query(
        "INSERT INTO persons (health_centre_id, name, phone, email, channel, observation_start, observation_end, status, created_at, updated_at)
         SELECT 1 + g % 10, 'bench', '+8190' || lpad(g::text, 8, '0'), NULL, $1, $2, $3, 'observing', $4, $4
         FROM generate_series(1, $5) g")
        .bind(channel).bind(today - chrono::Duration::days(3)).bind(today + chrono::Duration::days(4)).bind(t).bind(n)
        .execute(p).await?;
    sqlx::query(
        "INSERT INTO person_slots (person_id, slot, minutes) SELECT id, 0, 540 FROM persons",
    )
    .execute(p)
    .await?;
    sqlx::query("ANALYZE").execute(p).await?;
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    println!(
        "mimamori bench — {} — {} cores",
        Utc::now().format("%Y-%m-%d %H:%M UTC"),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let all = !matches!(
        args.only.as_str(),
        "engine" | "review" | "ingest" | "pages" | "registry" | "delivery"
    );
    if all || args.only == "engine" {
        planning(&args).await?;
        sending(&args).await?;
        rate_limits(&args).await?;
    }
    if all || matches!(args.only.as_str(), "review" | "ingest") {
        ingest(&args).await?;
    }
    if all || matches!(args.only.as_str(), "review" | "pages") {
        pages(&args).await?;
    }
    if all || args.only == "registry" {
        person_search(&args).await?;
    }
    if all || args.only == "delivery" {
        crate::delivery::run(&args.admin_url, 10_000, 20_000).await?;
    }
    Ok(())
}

/// Person list search over 1,000,000 people of one health centre (PostgreSQL), through the
/// console page (scope, search, page of 50 and the total count, audit, HTML): name and kana
/// prefixes, full names, phone numbers and ids, 4 clients.
async fn person_search(args: &Args) -> anyhow::Result<()> {
    const N: i64 = 1_000_000;
    println!(
        "\n## Person search: {N} people in one health centre (PostgreSQL, console page, 4 clients)"
    );
    let (db, name) = fresh_db(&args.admin_url, "search").await?;
    seed_checkins(&db, 1).await?;
    let Db::Postgres(p) = &db else { unreachable!() };
    let started = Instant::now();
    let t = now();
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive();
    // 40 surnames × 40 given names, in kanji (name, name_norm) and katakana (name_key).
    sqlx::query(
        "INSERT INTO persons (health_centre_id, name, name_kana, name_key, name_norm, phone, channel,
                              observation_start, observation_end, status, date_of_birth, created_at, updated_at)
         SELECT 1, s.k || ' ' || g.k, s.r || ' ' || g.r, s.r || g.r, s.k || g.k,
                '+8170' || lpad(i::text, 8, '0'), 'sms', $1, $1 + 7, 'observing',
                DATE '1940-01-01' + (i % 25000)::int, $2, $2
         FROM generate_series(1, $3) i
         JOIN LATERAL (SELECT (ARRAY['佐藤','鈴木','高橋','田中','伊藤','渡辺','山本','中村','小林','加藤','吉田','山田','佐々木','山口','松本','井上','木村','林','斎藤','清水','山崎','森','池田','橋本','阿部','石川','山下','中島','石井','小川','前田','岡田','長谷川','藤田','後藤','近藤','村上','遠藤','青木','坂本'])[1 + i % 40] AS k,
                              (ARRAY['サトウ','スズキ','タカハシ','タナカ','イトウ','ワタナベ','ヤマモト','ナカムラ','コバヤシ','カトウ','ヨシダ','ヤマダ','ササキ','ヤマグチ','マツモト','イノウエ','キムラ','ハヤシ','サイトウ','シミズ','ヤマザキ','モリ','イケダ','ハシモト','アベ','イシカワ','ヤマシタ','ナカジマ','イシイ','オガワ','マエダ','オカダ','ハセガワ','フジタ','ゴトウ','コンドウ','ムラカミ','エンドウ','アオキ','サカモト'])[1 + i % 40] AS r) s ON TRUE
         JOIN LATERAL (SELECT (ARRAY['花子','太郎','一郎','次郎','三郎','陽子','恵子','洋子','裕子','直樹','健一','誠','大輔','翔太','美咲','愛','結衣','陽菜','蓮','湊','大翔','悠真','葵','凛','さくら','健太','拓也','彩','舞','優','隆','勇','修','実','清','茂','明美','京子','和子','幸子'])[1 + (i / 40) % 40] AS k,
                              (ARRAY['ハナコ','タロウ','イチロウ','ジロウ','サブロウ','ヨウコ','ケイコ','ヨウコ','ユウコ','ナオキ','ケンイチ','マコト','ダイスケ','ショウタ','ミサキ','アイ','ユイ','ヒナ','レン','ミナト','ヒロト','ユウマ','アオイ','リン','サクラ','ケンタ','タクヤ','アヤ','マイ','ユウ','タカシ','イサム','オサム','ミノル','キヨシ','シゲル','アケミ','キョウコ','カズコ','サチコ'])[1 + (i / 40) % 40] AS r) g ON TRUE")
        .bind(today).bind(t).bind(N).execute(p).await?;
    sqlx::query("ANALYZE persons").execute(p).await?;
    println!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    let app = start_web(&db_url(&args.admin_url, &name)).await?;
    let queries: Vec<(&str, String)> = vec![
        ("surname, kana (1 in 40)", "ヤマダ".into()),
        ("surname, kanji (1 in 40)", "山田".into()),
        ("surname, hiragana", "すずき".into()),
        ("full name, kana (1 in 1,600)", "タナカ ハナコ".into()),
        ("full name, half-width kana", "ﾀﾅｶ ﾊﾅｺ".into()),
        ("phone", "070-0012-3456".into()),
        ("id", "500000".into()),
        ("no match", "ン".into()),
    ];
    println!("| query | p50 ms | p95 ms | results |");
    println!("|---|---|---|---|");
    let mut all = Vec::new();
    let mut worst: f64 = 0.0;
    for (label, q) in &queries {
        let page = format!(
            "{}/persons?{}",
            app.base,
            serde_urlencoded::to_string([("q", q.as_str())])?
        );
        let r = app.client.get(&page).send().await?;
        anyhow::ensure!(r.status().is_success(), "search failed: {}", r.status());
        let html = r.text().await?;
        let total = html
            .split("<p class=\"muted\">")
            .nth(1)
            .and_then(|s| s.split('<').next())
            .map(|s| s.replace(' ', ""))
            .unwrap_or_else(|| "?".into());
        let (_, lat) = rps(&app.client, &page, 2.0, 4).await?;
        let p95 = pct(lat.clone(), 0.95);
        worst = worst.max(p95);
        println!(
            "| {label} | {:.1} | {p95:.1} | {total} |",
            pct(lat.clone(), 0.5)
        );
        // The same number of samples from every query type.
        let mut lat = lat;
        lat.truncate(200);
        all.extend(lat);
    }
    println!(
        "every query type weighted alike: p95 {:.1} ms, worst p95 {:.1} ms (target ≤ 200 ms)",
        pct(all, 0.95),
        worst
    );
    app.stop().await?;
    drop_db(&args.admin_url, db, &name).await;
    Ok(())
}

async fn planning(args: &Args) -> anyhow::Result<()> {
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
async fn fake_provider() -> anyhow::Result<(String, Arc<Mutex<Vec<Instant>>>)> {
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

fn twilio_config(base: &str, sms_rate: f64, call_rate: f64) -> Config {
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

async fn raw_insert_rate(db: &Db, n: i64) -> anyhow::Result<f64> {
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

async fn sending(args: &Args) -> anyhow::Result<()> {
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
    let start = Instant::now();
    let mut sent = 0;
    loop {
        let pass = dispatch::pass(&deps).await?;
        sent += pass.sent;
        if pass.sent + pass.retried + pass.failed == 0 {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checkins WHERE status = 'sent'")
        .fetch_one(p)
        .await?;
    let rate = sent as f64 / secs;
    println!("| measure | per second |");
    println!("|---|---|");
    println!("| raw single-row INSERT, autocommit (ceiling) | {raw:.0} |");
    println!("| check-ins sent and recorded | {rate:.0} |");
    println!(
        "sent {sent} (recorded {recorded}, provider saw {}) in {secs:.2} s; ratio sent / raw insert = {:.2}; target ≥ 2,000/s",
        seen.lock().expect("lock").len(),
        rate / raw
    );
    drop_db(&args.admin_url, db, &name).await;
    Ok(())
}

/// The most timestamps in any half-open one-second window.
pub(crate) fn max_per_second(times: &[Instant]) -> usize {
    let mut t: Vec<Instant> = times.to_vec();
    t.sort();
    let mut best = 0;
    let mut j = 0;
    for i in 0..t.len() {
        while t[i] - t[j] >= Duration::from_secs(1) {
            j += 1;
        }
        best = best.max(i - j + 1);
    }
    best
}

async fn rate_limits(args: &Args) -> anyhow::Result<()> {
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

/// Latency percentiles in milliseconds.
pub(crate) fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

struct BenchApp {
    base: String,
    client: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    signer: LinkSigner,
    flows: mimamori_core::flows::Flows,
}

const LINK_SECRET: &str = "bench-link-secret-0123456789abcdef0123456789";
/// base64 of 20 bytes: the bench user's authenticator secret.
const BENCH_TOTP: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQ=";

/// Starts the web part of the app on `url` (no workers: the load is the HTTP path), with a
/// logged-in client.
async fn start_web(url: &str) -> anyhow::Result<BenchApp> {
    start_web_with(url, true).await
}

/// [`start_web`], with the person-page and session caches on or off.
async fn start_web_with(url: &str, cache: bool) -> anyhow::Result<BenchApp> {
    let mut cfg = Config::default();
    cfg.http.cache = cache;
    cfg.database.url = Some(url.into());
    cfg.database.max_connections = 16;
    cfg.http.addr = "127.0.0.1:0".into();
    cfg.public_url = String::new();
    cfg.demo.load_on_empty = false;
    cfg.link_secret = Some(SecretString::from(LINK_SECRET));
    cfg.twilio.auth_token = SecretString::from("bench-token");
    let flows = mimamori_core::flows::Flows::load(std::path::Path::new(&cfg.flows_dir))
        .map_err(|e| anyhow::anyhow!(e.join("\n")))?;
    let app = mimamori::Application::build(cfg, mimamori::Role::Web).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .pool_max_idle_per_host(64)
        .build()?;
    let r = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"username": "bench", "password": "bench-password-1"}))
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "bench login failed: {}",
        r.status()
    );
    // The second factor: the bench user's authenticator code.
    let challenge: serde_json::Value = r.json().await?;
    let code = mimamori::web::login::totp(BENCH_TOTP)
        .context("bench TOTP secret")?
        .generate_current()
        .to_string();
    let r = client
        .post(format!("{base}/api/v1/session/mfa"))
        .json(&serde_json::json!({"challenge": challenge["challenge"], "code": code}))
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "bench second factor failed: {}",
        r.status()
    );
    Ok(BenchApp {
        base,
        client,
        stop,
        handle,
        signer: LinkSigner::new(LINK_SECRET.as_bytes()),
        flows,
    })
}

impl BenchApp {
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.handle.await??;
        Ok(())
    }
}

/// People and `sent` check-ins (due now) for answer ingest; a staff login `bench`.
async fn seed_checkins(db: &Db, n: i64) -> anyhow::Result<Vec<i64>> {
    let t = now();
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive();
    let hash = mimamori::startup::hash_password("bench-password-1")?;
    with_db!(db, p => {
        let centre: i64 = sqlx::query_scalar("INSERT INTO health_centres (name, phone, time_zone, created_at) VALUES ('bench', '03-0000-0000', 'Asia/Tokyo', $1) RETURNING id")
            .bind(t).fetch_one(p).await?;
        sqlx::query("INSERT INTO staff (health_centre_id, username, password_hash, display_name, totp_secret, created_at) VALUES ($1, 'bench', $2, 'bench', $3, $4)")
            .bind(centre).bind(&hash).bind(BENCH_TOTP).bind(t).execute(p).await?;
        let mut tx = p.begin().await?;
        let mut ids = Vec::with_capacity(n as usize);
        for i in 0..n {
            let pid: i64 = sqlx::query_scalar(
                "INSERT INTO persons (health_centre_id, name, phone, channel, observation_start, observation_end, status, created_at, updated_at)
                 VALUES ($1, 'bench', $2, 'sms', $3, $3, 'observing', $4, $4) RETURNING id")
                .bind(centre).bind(format!("+8190{i:08}")).bind(today).bind(t).fetch_one(&mut *tx).await?;
            let cid: i64 = sqlx::query_scalar(
                "INSERT INTO checkins (person_id, local_date, slot, due_at, deadline_at, status, attempts, sent_at)
                 VALUES ($1, $2, 0, $3, $4, 'sent', 0, $3) RETURNING id")
                .bind(pid).bind(today).bind(t).bind(t + chrono::Duration::hours(10)).fetch_one(&mut *tx).await?;
            ids.push(cid);
        }
        tx.commit().await?;
        Ok(ids)
    })
}

/// The form a person posts: a mild fever and a cough, or (urgent) also chest pain.
fn answers(flows: &mimamori_core::flows::Flows, urgent: bool) -> Vec<(String, String)> {
    let mut form = flows.for_monitoring("patient").healthy_form();
    for (k, v) in &mut form {
        match k.as_str() {
            "temperature" => *v = "37.4".into(),
            "spo2" => *v = "96".into(),
            "cough" => *v = "yes".into(),
            "urgent_chest_pain" if urgent => *v = "yes".into(),
            _ => {}
        }
    }
    form
}

/// Posts the form for each check-in with `concurrency` in flight and follows its redirect
/// to the page after the answer, as a browser does (Post/Redirect/Get); returns (per second,
/// latencies in ms of the two requests together). `pace`: at most this many requests per second (None = as fast as
/// possible).
async fn post_answers(
    app: &BenchApp,
    checkins: &[i64],
    concurrency: usize,
    pace: Option<f64>,
    urgent: bool,
) -> anyhow::Result<(f64, Vec<f64>)> {
    use futures::StreamExt;
    let exp = Utc::now().timestamp() + 86_400;
    let start = Instant::now();
    let results: Vec<anyhow::Result<f64>> = futures::stream::iter(checkins.iter().enumerate())
        .map(|(i, id)| {
            let url = format!("{}/c/{}", app.base, app.signer.sign(*id, exp));
            let client = app.client.clone();
            let form = answers(&app.flows, urgent);
            async move {
                if let Some(rate) = pace {
                    let at = start + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(at.into()).await;
                }
                let t = Instant::now();
                let r = client.post(&url).form(&form).send().await?;
                anyhow::ensure!(r.status().is_success(), "answer refused: {}", r.status());
                r.bytes().await?;
                Ok(t.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let secs = start.elapsed().as_secs_f64();
    let lat: Vec<f64> = results.into_iter().collect::<anyhow::Result<_>>()?;
    Ok((lat.len() as f64 / secs, lat))
}

/// The ceiling for ingest: single-row INSERTs into a copy of `observations`, one row per
/// transaction.
async fn raw_observation_rate(db: &Db, n: i64) -> anyhow::Result<f64> {
    with_db!(db, p => {
        let ddl = match db {
            Db::Postgres(_) => "CREATE TABLE obs_raw (LIKE observations INCLUDING ALL)",
            Db::Sqlite(_) => "CREATE TABLE obs_raw AS SELECT * FROM observations WHERE 0",
        };
        sqlx::query(ddl).execute(p).await?;
        let person: i64 = sqlx::query_scalar("SELECT MIN(id) FROM persons").fetch_one(p).await?;
        let t = Instant::now();
        for i in 0..n {
            sqlx::query("INSERT INTO obs_raw (id, person_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, created_at)
                         VALUES ($1, $2, 'web', 'self', $3, 37.4, 96, '{}', FALSE, $3)")
                .bind(10_000_000 + i).bind(person).bind(now()).execute(p).await?;
        }
        Ok(n as f64 / t.elapsed().as_secs_f64())
    })
}

async fn rps(
    client: &reqwest::Client,
    url: &str,
    secs: f64,
    concurrency: usize,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url) = (client.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = client.get(&url).send().await?;
                anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
                r.bytes().await?;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok((all.len() as f64 / secs, all))
}

pub async fn ingest(args: &Args) -> anyhow::Result<()> {
    for backend in ["postgres", "sqlite"] {
        println!(
            "\n## Answer ingest: web form POST → validation, insert, rules, commit ({backend})"
        );
        let (db, cleanup) = match backend {
            "postgres" => {
                let (db, name) = fresh_db(&args.admin_url, "ingest").await?;
                (db, Some(name))
            }
            _ => {
                let path = std::env::temp_dir()
                    .join(format!("mimamori-bench-{:08x}.db", rand::random::<u32>()));
                let db = Db::connect(&format!("sqlite://{}", path.display()), 16).await?;
                db.migrate().await?;
                (db, None)
            }
        };
        let url = match &db {
            Db::Postgres(_) => format!(
                "{}/{}",
                args.admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(""),
                cleanup.clone().unwrap_or_default()
            ),
            Db::Sqlite(p) => format!("sqlite://{}", p.connect_options().get_filename().display()),
        };
        let n = args.ingest;
        let ids = seed_checkins(&db, n * 3 + 200).await?;
        let raw = raw_observation_rate(&db, 3000).await?;
        let app = start_web(&url).await?;
        let (rate, lat) = post_answers(&app, &ids[..n as usize], 32, None, false).await?;
        let half = rate / 2.0;
        let (_, lat_half) = post_answers(
            &app,
            &ids[n as usize..(2 * n) as usize],
            64,
            Some(half),
            false,
        )
        .await?;
        println!("| measure | per second | p50 ms | p99 ms |");
        println!("|---|---|---|---|");
        println!(
            "| raw single-row INSERT into a copy of observations, one per transaction (ceiling) | {raw:.0} | — | — |"
        );
        println!(
            "| answers ingested, full speed (32 in flight) | {rate:.0} | {:.1} | {:.1} |",
            pct(lat.clone(), 0.5),
            pct(lat, 0.99)
        );
        println!(
            "| answers ingested at half that rate | {half:.0} | {:.1} | {:.1} |",
            pct(lat_half.clone(), 0.5),
            pct(lat_half.clone(), 0.99)
        );
        let target = if backend == "postgres" { 0.30 } else { 0.50 };
        println!(
            "ratio ingest / raw insert = {:.2} (target ≥ {target:.2}); p99 at half rate {:.1} ms (target ≤ 50 ms)",
            rate / raw,
            pct(lat_half, 0.99)
        );

        // Urgent answers at half rate: time from the answer's response to the person being
        // in the review queue page.
        let urgent_ids = &ids[(2 * n) as usize..(2 * n + 200) as usize];
        let mut vis = Vec::new();
        let exp = Utc::now().timestamp() + 86_400;
        for id in urgent_ids {
            let form = answers(&app.flows, true);
            let r = app
                .client
                .post(format!("{}/c/{}", app.base, app.signer.sign(*id, exp)))
                .form(&form)
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success());
            let done = Instant::now();
            let person: i64 = with_db!(&db, p => sqlx::query_scalar("SELECT person_id FROM checkins WHERE id = $1").bind(id).fetch_one(p).await?);
            loop {
                let q = app
                    .client
                    .get(format!("{}/escalations?reason=urgent_sign", app.base))
                    .send()
                    .await?
                    .text()
                    .await?;
                if q.contains(&format!("/persons/{person}\"")) {
                    break;
                }
                anyhow::ensure!(
                    done.elapsed() < Duration::from_secs(10),
                    "urgent escalation never visible"
                );
            }
            vis.push(done.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_secs_f64(1.0 / half.max(1.0))).await;
        }
        println!(
            "urgent escalation visible in the queue page after the answer: p50 {:.1} ms, p99 {:.1} ms over {} answers (target p99 ≤ 1,000 ms; the queue page itself grows as they accumulate)",
            pct(vis.clone(), 0.5),
            pct(vis, 0.99),
            urgent_ids.len()
        );
        app.stop().await?;
        match cleanup {
            Some(name) => drop_db(&args.admin_url, db, &name).await,
            None => db.close().await,
        }
    }
    Ok(())
}

/// Person page with a 14-day, twice-a-day chart against the trivial handler; the review
/// queue of a health centre with 100,000 people under observation.
async fn pages(args: &Args) -> anyhow::Result<()> {
    println!("\n## Pages (PostgreSQL, 32 concurrent clients, 5 s each)");
    let (db, name) = fresh_db(&args.admin_url, "pages").await?;
    let ids = seed_checkins(&db, 1).await?;
    let Db::Postgres(p) = &db else { unreachable!() };
    let person: i64 = sqlx::query_scalar("SELECT person_id FROM checkins WHERE id = $1")
        .bind(ids[0])
        .fetch_one(p)
        .await?;
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive();
    sqlx::query("UPDATE persons SET observation_start = $1, observation_end = $2 WHERE id = $3")
        .bind(today - chrono::Duration::days(13))
        .bind(today)
        .bind(person)
        .execute(p)
        .await?;
    for d in 0..14 {
        for (slot, hour) in [(0, 9), (1, 17)] {
            let at = checkins::slot_instant(
                chrono_tz::Asia::Tokyo,
                today - chrono::Duration::days(d),
                hour * 60,
            );
            sqlx::query("INSERT INTO observations (person_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, created_at)
                         VALUES ($1, 'web', 'self', $2, $3, $4, '{\"cough\":true,\"fatigue\":false}', FALSE, $2)")
                .bind(person).bind(at).bind(36.5 + (d % 4) as f64 * 0.4 + slot as f64 * 0.1).bind(97 - (d % 3) as i32).execute(p).await?;
        }
    }
    // 100,000 people in the same health centre, 2,000 of them with an open escalation.
    let t = now();
    sqlx::query(
        "INSERT INTO persons (health_centre_id, name, phone, channel, observation_start, observation_end, status, created_at, updated_at)
         SELECT 1, 'bench', '+8191' || lpad(g::text, 8, '0'), 'sms', $1, $2, 'observing', $3, $3 FROM generate_series(1, 100000) g")
        .bind(today).bind(today + chrono::Duration::days(5)).bind(t).execute(p).await?;
    sqlx::query(
        "INSERT INTO escalations (person_id, reason, priority, status, opened_at, updated_at, detail)
         SELECT id, CASE WHEN id % 3 = 0 THEN 'spo2_low' ELSE 'non_reporting' END, CASE WHEN id % 10 = 0 THEN 'urgent' ELSE 'high' END,
                'open', $1 - (id || ' seconds')::interval, $1, 'bench'
         FROM persons WHERE id % 50 = 0")
        .bind(t).execute(p).await?;
    sqlx::query("ANALYZE").execute(p).await?;
    let app = start_web(&db_url(&args.admin_url, &name)).await?;
    let (trivial, _) = rps(&app.client, &format!("{}/healthz/live", app.base), 5.0, 32).await?;
    // One database round trip and nothing else: the ceiling of any page that reads once.
    let (one_query, _) = rps(&app.client, &format!("{}/healthz", app.base), 5.0, 32).await?;
    let (page, page_lat) = rps(
        &app.client,
        &format!("{}/persons/{person}", app.base),
        5.0,
        32,
    )
    .await?;
    // The same page with the caches off: every view checks its session, reads the person and
    // the observation tab's rows, renders and audits — what a first view costs.
    let cold_app = start_web_with(&db_url(&args.admin_url, &name), false).await?;
    let (cold, cold_lat) = rps(
        &cold_app.client,
        &format!("{}/persons/{person}", cold_app.base),
        5.0,
        32,
    )
    .await?;
    cold_app.stop().await?;
    let (queue, queue_lat) = rps(&app.client, &format!("{}/escalations", app.base), 5.0, 4).await?;
    // For scale, not as the ceiling: the same page's bytes served from memory by a bare axum
    // server — what moving the page over HTTP costs on this machine with no work at all.
    let body = app
        .client
        .get(format!("{}/persons/{person}", app.base))
        .send()
        .await?
        .bytes()
        .await?;
    let size = body.len();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let static_url = format!("http://{}/", l.local_addr()?);
    let static_server = tokio::spawn(async move {
        let app = Router::new().route(
            "/",
            axum::routing::get(move || {
                let body = body.clone();
                async move { ([("content-type", "text/html; charset=utf-8")], body) }
            }),
        );
        axum::serve(l, app).await
    });
    let (bytes_only, _) = rps(&app.client, &static_url, 5.0, 32).await?;
    static_server.abort();
    println!("| page | requests/s | p50 ms | p95 ms |");
    println!("|---|---|---|---|");
    println!("| trivial handler /healthz/live (ceiling) | {trivial:.0} | — | — |");
    println!(
        "| /healthz: one `SELECT 1` round trip, no session (for scale) | {one_query:.0} | — | — |"
    );
    println!(
        "| person page, 14-day chart, 2 check-ins a day | {page:.0} | {:.1} | {:.1} |",
        pct(page_lat.clone(), 0.5),
        pct(page_lat, 0.95)
    );
    println!(
        "| the same page, caches off (every view read, rendered and audited on its own) | {cold:.0} | {:.1} | {:.1} |",
        pct(cold_lat.clone(), 0.5),
        pct(cold_lat, 0.95)
    );
    println!(
        "| (for scale) the person page's {:.0} KB served from memory, bare axum | {bytes_only:.0} | — | — |",
        size as f64 / 1024.0
    );
    println!(
        "| review queue, 100,000 people, 2,000 open (4 clients) | {queue:.0} | {:.1} | {:.1} |",
        pct(queue_lat.clone(), 0.5),
        pct(queue_lat.clone(), 0.95)
    );
    println!(
        "ratio person page / trivial = {:.2} (target ≥ 0.20; caches off {:.2}); queue p95 {:.1} ms (target ≤ 100 ms)",
        page / trivial,
        cold / trivial,
        pct(queue_lat, 0.95)
    );
    app.stop().await?;
    drop_db(&args.admin_url, db, &name).await;
    Ok(())
}
