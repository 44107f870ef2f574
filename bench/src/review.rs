//! Answer ingest, escalation visibility and the pages staff watch, against a raw insert
//! loop and a trivial handler.
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use chrono::Utc;
use mimamori_core::{Db, config::Config, db::now, store::checkins, token::LinkSigner, with_db};
use secrecy::SecretString;

use crate::run::*;

pub(crate) struct BenchApp {
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    pub(crate) stop: tokio::sync::oneshot::Sender<()>,
    pub(crate) handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub(crate) signer: LinkSigner,
    pub(crate) flows: mimamori_core::flows::Flows,
}

pub(crate) const LINK_SECRET: &str = "bench-link-secret-0123456789abcdef0123456789";
/// base64 of 20 bytes: the bench user's authenticator secret.
pub(crate) const BENCH_TOTP: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQ=";

/// Starts the web part of the app on `url` (no workers: the load is the HTTP path), with a
/// logged-in client.
pub(crate) async fn start_web(url: &str) -> anyhow::Result<BenchApp> {
    start_web_with(url, true).await
}

/// The web process's configuration for the benchmarks: database `url`, any free port, the
/// bench link secret, no demo data.
pub(crate) fn bench_config(url: &str) -> Config {
    let mut cfg = Config::default();
    cfg.database.url = Some(url.into());
    cfg.database.max_connections = 16;
    cfg.http.addr = "127.0.0.1:0".into();
    cfg.public_url = String::new();
    cfg.demo.load_on_empty = false;
    cfg.link_secret = Some(SecretString::from(LINK_SECRET));
    cfg.twilio.auth_token = SecretString::from("bench-token");
    cfg
}

/// [`start_web`], with the person-page and session caches on or off.
pub(crate) async fn start_web_with(url: &str, cache: bool) -> anyhow::Result<BenchApp> {
    let mut cfg = bench_config(url);
    cfg.http.cache = cache;
    let flows = mimamori_core::flows::Flows::load(std::path::Path::new(&cfg.flows_dir))
        .map_err(|e| anyhow::anyhow!(e.join("\n")))?;
    let app = mimamori::Application::build(cfg, mimamori::Role::Web).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    let client = login(&base).await?;
    Ok(BenchApp {
        base,
        client,
        stop,
        handle,
        signer: LinkSigner::new(LINK_SECRET.as_bytes()),
        flows,
    })
}

/// A client logged in as the bench user (password and authenticator code), with its
/// session cookie.
pub(crate) async fn login(base: &str) -> anyhow::Result<reqwest::Client> {
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
    Ok(client)
}

impl BenchApp {
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.handle.await??;
        Ok(())
    }
}

/// Yesterday for everyone seeded: one observation each (the reading the benchmark's answers
/// give today: 37.4 °C, SpO2 96 %, a cough) and the rule state it leaves, then `ANALYZE` —
/// a day of an epidemic in its steady state, where most answers come from people on their
/// second day or later and autovacuum has analysed the tables. Without it every answer was a
/// first answer into tables that were empty when their plans were cached: PostgreSQL kept a
/// generic plan that counted each new person's observations with a sequential scan, and a
/// 16-answer statement that takes 1 ms took 31 ms once the table had grown (BENCHMARKS.md,
/// "Answer ingest: one statement a batch"). Returns the escalations open before the run.
pub(crate) async fn seed_yesterday(db: &Db) -> anyhow::Result<i64> {
    let tz = chrono_tz::Asia::Tokyo;
    let at = Utc::now() - chrono::Duration::days(1);
    let mut a = mimamori_core::store::observations::Answer {
        temperature: Some(mimamori_core::domain::Temperature::new("t", 37.4)?),
        spo2: Some(mimamori_core::domain::Spo2::new("s", 96)?),
        ..Default::default()
    };
    a.symptoms.insert("cough".into(), true);
    let mut h = mimamori_core::rules::trend::History::default();
    mimamori_core::rules::trend::step(
        &Default::default(),
        &mut h,
        &mimamori_core::rules::reading_of(&a, at),
        at.with_timezone(&tz).date_naive(),
        None,
    );
    let state = serde_json::to_string(&h)?;
    let symptoms = a.symptoms_json();
    with_db!(db, p => {
        sqlx::query("INSERT INTO observations (person_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, created_at)
                     SELECT id, 'web', 'self', $1, 37.4, 96, $2, FALSE, $1 FROM persons")
            .bind(at).bind(&symptoms).execute(p).await?;
        sqlx::query("INSERT INTO rule_state (person_id, state, seq) SELECT id, $1, 1 FROM persons")
            .bind(&state).execute(p).await?;
        sqlx::query("ANALYZE").execute(p).await?;
        Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM escalations").fetch_one(p).await?)
    })
}

/// People and `sent` check-ins (due now) for answer ingest; a staff login `bench`.
pub(crate) async fn seed_checkins(db: &Db, n: i64) -> anyhow::Result<Vec<i64>> {
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
pub(crate) fn answers(flows: &mimamori_core::flows::Flows, urgent: bool) -> Vec<(String, String)> {
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
pub(crate) async fn post_answers(
    app: &BenchApp,
    checkins: &[i64],
    concurrency: usize,
    pace: Option<f64>,
    urgent: bool,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let to = Answering {
        base: &app.base,
        client: &app.client,
        signer: &app.signer,
        flows: &app.flows,
    };
    post_answers_to(&to, checkins, concurrency, pace, urgent).await
}

/// Where answers are posted: a server's address, a client, the link signer and the flows.
pub(crate) struct Answering<'a> {
    pub(crate) base: &'a str,
    pub(crate) client: &'a reqwest::Client,
    pub(crate) signer: &'a LinkSigner,
    pub(crate) flows: &'a mimamori_core::flows::Flows,
}

/// [`post_answers`] to any server (one in another process too).
pub(crate) async fn post_answers_to(
    app: &Answering<'_>,
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
            let form = answers(app.flows, urgent);
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
/// transaction, from `clients` connections at once (`n` rows in all).
pub(crate) async fn raw_observation_rate(db: &Db, n: i64, clients: i64) -> anyhow::Result<f64> {
    with_db!(db, p => {
        let ddl = match db {
            Db::Postgres(_) => "CREATE TABLE IF NOT EXISTS obs_raw (LIKE observations INCLUDING ALL)",
            Db::Sqlite(_) => "CREATE TABLE IF NOT EXISTS obs_raw AS SELECT * FROM observations WHERE 0",
        };
        sqlx::query(ddl).execute(p).await?;
        let person: i64 = sqlx::query_scalar("SELECT MIN(id) FROM persons").fetch_one(p).await?;
        let first: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 10000000) + 1 FROM obs_raw").fetch_one(p).await?;
        let t = Instant::now();
        let per = n / clients;
        let tasks: Vec<_> = (0..clients).map(|c| {
            let p = p.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    sqlx::query("INSERT INTO obs_raw (id, person_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, created_at)
                                 VALUES ($1, $2, 'web', 'self', $3, 37.4, 96, '{}', FALSE, $3)")
                        .bind(first + c * per + i).bind(person).bind(now()).execute(&p).await?;
                }
                Ok::<_, sqlx::Error>(())
            })
        }).collect();
        for t in tasks {
            t.await??;
        }
        Ok((per * clients) as f64 / t.elapsed().as_secs_f64())
    })
}

pub(crate) async fn rps(
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

/// How many answer batches this process wrote by each path so far: in one statement, and
/// through a transaction because a rule fired, a state was rebuilt, the read changed.
fn batch_paths() -> BatchCounts {
    use std::sync::atomic::Ordering::Relaxed;
    let b = &mimamori_core::store::observations::BATCH_PATHS;
    BatchCounts([
        b.one_statement.load(Relaxed),
        b.rule_fired.load(Relaxed),
        b.rebuilt.load(Relaxed),
        b.read_changed.load(Relaxed),
    ])
}

#[derive(Clone, Copy)]
struct BatchCounts([u64; 4]);

impl BatchCounts {
    /// The counts since `before`.
    fn since(self, before: BatchCounts) -> [u64; 4] {
        std::array::from_fn(|i| self.0[i] - before.0[i])
    }
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
        const RUNS: i64 = 3;
        // PostgreSQL: more runs against a server in its own process, at several loads.
        let extra = if backend == "postgres" {
            n * APART.len() as i64
        } else {
            0
        };
        let ids = seed_checkins(&db, n * (RUNS + 1) + 200 + extra).await?;
        let escalations_before = seed_yesterday(&db).await?;
        let (cpu_self, cpu_pg) = (cpu_secs("self"), postgres_cpu_secs());
        let raw = raw_observation_rate(&db, 3000, 1).await?;
        // CPU a row of the loop took: this process (the client) and PostgreSQL.
        let raw_cpu = (
            (cpu_secs("self") - cpu_self) * 1000.0 / 3000.0,
            (postgres_cpu_secs() - cpu_pg) * 1000.0 / 3000.0,
        );
        // PostgreSQL serves several clients at once: its multi-client figure is the honest
        // ceiling for a server with many requests in flight (SQLite has one writer).
        let raw8 = match backend {
            "postgres" => Some(raw_observation_rate(&db, 8000, 8).await?),
            _ => None,
        };
        let app = start_web(&url).await?;
        let paths_before = batch_paths();
        // Several full-speed runs: the spread, not one lucky figure.
        let mut runs = Vec::new();
        let mut lat = Vec::new();
        for r in 0..RUNS {
            let chunk = &ids[(r * n) as usize..((r + 1) * n) as usize];
            let (rate, l) = post_answers(&app, chunk, 32, None, false).await?;
            runs.push(rate);
            lat.extend(l);
        }
        let mut sorted = runs.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let rate = sorted[sorted.len() / 2];
        let half = rate / 2.0;
        let (_, lat_half) = post_answers(
            &app,
            &ids[(RUNS * n) as usize..((RUNS + 1) * n) as usize],
            64,
            Some(half),
            false,
        )
        .await?;
        println!("| measure | per second | p50 ms | p99 ms |");
        println!("|---|---|---|---|");
        println!(
            "| raw single-row INSERT into a copy of observations, one per transaction, 1 connection (ceiling) | {raw:.0} | — | — |"
        );
        if let Some(raw8) = raw8 {
            println!("| the same from 8 connections at once (ceiling) | {raw8:.0} | — | — |");
        }
        println!(
            "| answers ingested, full speed (32 in flight), median of {RUNS} runs ({}) | {rate:.0} | {:.1} | {:.1} |",
            runs.iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
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
            "ratio ingest / raw insert = {:.2} (runs {}; target ≥ {target:.2}){}; p99 at half rate {:.1} ms (target ≤ 50 ms)",
            rate / raw,
            runs.iter()
                .map(|r| format!("{:.2}", r / raw))
                .collect::<Vec<_>>()
                .join(", "),
            raw8.map(|r8| format!("; to the 8-connection ceiling {:.2}", rate / r8))
                .unwrap_or_default(),
            pct(lat_half, 0.99)
        );

        if backend == "postgres" {
            let p = batch_paths().since(paths_before);
            println!(
                "answer batches of these runs (in process, full speed and half rate): {} in one statement after a read, {} through a transaction (a rule fired {}, a state rebuilt {}, the read changed before the write {})",
                p[0],
                p[1] + p[2] + p[3],
                p[1],
                p[2],
                p[3]
            );
            apart(
                &url,
                &ids[((RUNS + 1) * n + 200) as usize..],
                n,
                raw,
                raw_cpu,
            )
            .await?;
        }

        // Urgent answers at half rate: time from the answer's response to the person being
        // in the review queue page.
        let urgent_ids = &ids[((RUNS + 1) * n) as usize..((RUNS + 1) * n + 200) as usize];
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
        // What the rules made of today's answers (none fire on this reading the second day;
        // the 200 urgent answers open one each).
        let opened: i64 = with_db!(&db, p => sqlx::query_scalar("SELECT COUNT(*) FROM escalations").fetch_one(p).await?);
        println!(
            "escalations opened by the run: {} (the urgent answers: {})",
            opened - escalations_before,
            urgent_ids.len()
        );
        app.stop().await?;
        match cleanup {
            Some(name) => drop_db(&args.admin_url, db, &name).await,
            None => {
                let file = match &db {
                    Db::Sqlite(p) => Some(p.connect_options().get_filename().to_path_buf()),
                    Db::Postgres(_) => None,
                };
                db.close().await;
                // The file and its WAL and index go with the run (they were left in the
                // temp folder, 20-40 MB a run).
                if let Some(f) = file {
                    mimamori_core::testing::remove_sqlite_files(&f);
                }
            }
        }
    }
    Ok(())
}

/// Answers in flight of the runs against a server in its own process: the benchmark's 32,
/// then more phones at once, as at a morning peak (each load twice).
const APART: [usize; 6] = [32, 32, 128, 128, 512, 512];

/// Full-speed runs against the web server in its own process (the surge benchmark's), with
/// the CPU each part used per answer — the server, the load generator (this process) and
/// PostgreSQL — beside what one row of the one-connection loop used: where the 2 cores go.
async fn apart(
    url: &str,
    ids: &[i64],
    n: i64,
    raw: f64,
    raw_cpu: (f64, f64),
) -> anyhow::Result<()> {
    let mut server = crate::surge::start_server(url).await?;
    let client = login(&server.base).await?;
    let signer = LinkSigner::new(LINK_SECRET.as_bytes());
    let flows = mimamori_core::flows::Flows::load(std::path::Path::new("flows"))
        .map_err(|e| anyhow::anyhow!(e.join("\n")))?;
    let to = Answering {
        base: &server.base,
        client: &client,
        signer: &signer,
        flows: &flows,
    };
    let pid = server.pid.to_string();
    println!(
        "\nThe same, the server in its own process (generator: this process; PostgreSQL: the same 2 cores). CPU per answer, ms (one row of the one-connection loop: client {:.3}, PostgreSQL {:.3}):",
        raw_cpu.0, raw_cpu.1
    );
    println!(
        "| answers in flight | answers/s | to the 1-conn. loop | p50 ms | p99 ms | server CPU | generator CPU | PostgreSQL CPU | the 2 cores busy |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (in_flight, chunk) in APART.iter().zip(ids.chunks(n as usize)) {
        let (s0, g0, p0) = (cpu_secs(&pid), cpu_secs("self"), postgres_cpu_secs());
        let t = Instant::now();
        let (rate, lat) = post_answers_to(&to, chunk, *in_flight, None, false).await?;
        let wall = t.elapsed().as_secs_f64();
        let per = |c: f64| c * 1000.0 / chunk.len() as f64;
        let (s, g, p) = (
            cpu_secs(&pid) - s0,
            cpu_secs("self") - g0,
            postgres_cpu_secs() - p0,
        );
        println!(
            "| {in_flight} | {rate:.0} | {:.2} | {:.1} | {:.1} | {:.3} | {:.3} | {:.3} | {:.0} % |",
            rate / raw,
            pct(lat.clone(), 0.5),
            pct(lat, 0.99),
            per(s),
            per(g),
            per(p),
            (s + g + p) / (2.0 * wall) * 100.0
        );
    }
    drop(server.child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(20), server.child.wait()).await;
    Ok(())
}

/// Person page with a 14-day, twice-a-day chart against the trivial handler; the review
/// queue of a health centre with 100,000 people under observation.
pub(crate) async fn pages(args: &Args) -> anyhow::Result<()> {
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
