//! Surge (#18): console searches at 2× and 10× the console's measured capacity while patients
//! answer at a fixed rate. The web server runs in its own process (this binary with the
//! hidden `--serve` flag), so its memory is its own; it shares the machine's cores with the
//! load generator (this process) and PostgreSQL — on a 2-core machine all three compete, as a
//! health centre's single server would with its own users.
//!
//! Printed: the answers' p50/p99/max under each load against their idle figures (goal: p99 ≤
//! 2× idle and no answer lost at 10×), the console's served and shed shares, the server's
//! peak RSS and its RSS after the load, and how long the console took to answer normally
//! again.
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use chrono::Utc;
use mimamori_core::{Db, token::LinkSigner};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use crate::run::*;

/// Answers per second on the side, in every phase.
const ANSWER_RATE: f64 = 25.0;
/// Length of each measured phase: 1,000 answers, so a p99 is the tenth-slowest answer,
/// not the third (300 answers a phase moved the idle p99 between 8 and 17 ms).
const PHASE: Duration = Duration::from_secs(40);

/// Answers before the idle phase, not counted (their check-ins come from the spare phases).
const WARM_UP: Duration = Duration::from_secs(4);
/// The most console requests in flight at once (the 3,000 connections).
const MAX_IN_FLIGHT: usize = 3_000;
/// People the console searches among.
const PEOPLE: i64 = 300_000;

/// The web server for the surge: run by the child process (`--serve URL`). Prints
/// `PORT n`, serves until its standard input closes.
pub async fn serve(url: &str) -> anyhow::Result<()> {
    let mut cfg = bench_config(url);
    // The product's defaults, unless the operator's own setting is given to compare.
    if let Ok(n) = std::env::var("MIMAMORI_HTTP__CONSOLE_CONCURRENCY") {
        cfg.http.console_concurrency = n.parse()?;
    }
    if let Ok(n) = std::env::var("MIMAMORI_DATABASE__PATIENT_CONNECTIONS") {
        cfg.database.patient_connections = n.parse()?;
    }
    // The patients' door, as deployed (`http.patient_addr`): `MIMAMORI_HTTP__PATIENT_ADDR=`
    // (empty) serves patients on the console's port instead, to compare.
    cfg.http.patient_addr =
        std::env::var("MIMAMORI_HTTP__PATIENT_ADDR").unwrap_or_else(|_| "127.0.0.1:0".into());
    // The gate's gauges are read from `/metrics` during each phase.
    cfg.http.metrics_token = METRICS_TOKEN.to_string().into();
    let app = mimamori::Application::build(cfg, mimamori::Role::Web).await?;
    if let Some(p) = app.patient_port() {
        println!("PATIENT_PORT {p}");
    }
    println!("PORT {}", app.port());
    app.run_until(async {
        let mut buf = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        while !matches!(stdin.read(&mut buf).await, Ok(0) | Err(_)) {}
    })
    .await
}

/// The bench server's `/metrics` credential (loopback only, for the bench's own sampler).
const METRICS_TOKEN: &str = "bench-metrics";

pub(crate) struct Server {
    pub(crate) child: tokio::process::Child,
    pub(crate) pid: u32,
    pub(crate) base: String,
    /// The patients' door, or `base` when patients share the console's port.
    pub(crate) patient_base: String,
}

/// Where the server process's log goes: a file, so its warnings (shedding under the surge)
/// do not land between the benchmark's tables.
pub(crate) fn server_log_path() -> std::path::PathBuf {
    std::env::temp_dir().join("mimamori-bench-server.log")
}

pub(crate) async fn start_server(url: &str) -> anyhow::Result<Server> {
    let exe = std::env::current_exe().context("the bench's own path")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(server_log_path())
        .context("the server's log file")?;
    let mut child = tokio::process::Command::new(exe)
        .arg("--serve")
        .arg(url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting the web server process")?;
    let pid = child.id().context("server pid")?;
    let out = child.stdout.take().context("server stdout")?;
    let mut lines = tokio::io::BufReader::new(out).lines();
    let mut door = None;
    let port = loop {
        let line = lines
            .next_line()
            .await?
            .context("the server process ended before it listened")?;
        if let Some(p) = line.strip_prefix("PATIENT_PORT ") {
            door = Some(p.trim().parse::<u16>()?);
        }
        if let Some(p) = line.strip_prefix("PORT ") {
            break p.trim().parse::<u16>()?;
        }
    };
    Ok(Server {
        child,
        pid,
        base: format!("http://127.0.0.1:{port}"),
        patient_base: format!("http://127.0.0.1:{}", door.unwrap_or(port)),
    })
}

/// Lowers this process's threads (the load generator) to nice 10 with `renice`, after the
/// server process has been started at normal priority: on a 2-core machine the generator's
/// own work (thousands of requests a second, which real consoles would make from their own
/// machines) would otherwise compete with the server it is measuring. Returns whether it
/// worked.
/// `except`: threads left at normal priority (the patients' phones).
pub(crate) fn lower_generator_priority(except: &[String]) -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    let tids: Vec<String> = tasks
        .filter_map(|t| t.ok())
        .map(|t| t.file_name().to_string_lossy().into_owned())
        .filter(|t| !except.contains(t))
        .collect();
    std::process::Command::new("renice")
        .args(["-n", "10", "-p"])
        .args(&tids)
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Cores of this machine.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// CPU seconds used so far by the server's patients' door threads and by its other threads,
/// by this process (the generator and the phones) and by PostgreSQL.
fn cpu_now(server: u32) -> [f64; 4] {
    let (mut door, mut rest) = (0.0, 0.0);
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{server}/task")) {
        for t in tasks.flatten() {
            let tid = t.file_name().to_string_lossy().into_owned();
            let secs = cpu_secs(&format!("{server}/task/{tid}"));
            let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if name.trim_end() == "patient-door" {
                door += secs;
            } else {
                rest += secs;
            }
        }
    }
    [door, rest, cpu_secs("self"), postgres_cpu_secs()]
}

/// Seconds so far during which some runnable task waited for a core, machine-wide (Linux's
/// pressure stall information, `/proc/pressure/cpu`, `some … total=` in µs); `None` where
/// the kernel does not keep it.
fn cpu_pressure_secs() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    let some = text.lines().find(|l| l.starts_with("some"))?;
    let total = some
        .split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?;
    Some(total.parse::<f64>().ok()? / 1e6)
}

/// Resident and peak memory of a process in MB.
fn rss_mb(pid: u32) -> (f64, f64) {
    let mb =
        |k: &str| proc_status_kib(&pid.to_string(), k).map_or(f64::NAN, |kb| kb as f64 / 1024.0);
    (mb("VmRSS:"), mb("VmHWM:"))
}

/// The patients' phones: a thread of their own with its own runtime, left at normal
/// priority when the console's load generator is lowered. A phone is its own device: sent
/// from the generator's runtime, an answer's time included waiting behind thousands of
/// console requests in a process at nice 10 — the generator's queue, not the server's.
struct Phones {
    jobs: std::sync::mpsc::Sender<PhoneJob>,
    /// The thread's id, for `lower_generator_priority`'s `except`.
    tid: String,
}

type Answered = (Vec<f64>, usize, Vec<i64>);
type PhoneJob = (Vec<i64>, Duration, tokio::sync::oneshot::Sender<Answered>);

impl Phones {
    fn start(base: String) -> anyhow::Result<Phones> {
        let (jobs, rx) = std::sync::mpsc::channel::<PhoneJob>();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("phones".into())
            .spawn(move || {
                let tid = std::fs::read_link("/proc/thread-self")
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_default();
                let _ = tid_tx.send(tid);
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                let signer = LinkSigner::new(LINK_SECRET.as_bytes());
                let Ok(flows) = mimamori_core::flows::Flows::load(std::path::Path::new("flows"))
                else {
                    return;
                };
                while let Ok((batch, len, reply)) = rx.recv() {
                    let _ = reply
                        .send(rt.block_on(answer_at_rate(&base, &signer, &flows, &batch, len)));
                }
            })?;
        Ok(Phones {
            jobs,
            tid: tid_rx.recv()?,
        })
    }

    /// Sends `batch`'s answers at [`ANSWER_RATE`] over `len` from the phones' thread.
    async fn answer(&self, batch: Vec<i64>, len: Duration) -> Answered {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.jobs.send((batch.clone(), len, tx)).is_err() {
            return (Vec::new(), batch.len(), Vec::new());
        }
        rx.await
            .unwrap_or_else(|_| (Vec::new(), batch.len(), Vec::new()))
    }
}

/// Answers at [`ANSWER_RATE`] for `len`, each a form post and its redirect; returns the
/// latencies of the acknowledged ones, the refused count and the acknowledged check-ins.
async fn answer_at_rate(
    base: &str,
    signer: &LinkSigner,
    flows: &mimamori_core::flows::Flows,
    checkins: &[i64],
    len: Duration,
) -> (Vec<f64>, usize, Vec<i64>) {
    let n = ((len.as_secs_f64() * ANSWER_RATE) as usize).min(checkins.len());
    let client = reqwest::Client::new();
    let exp = Utc::now().timestamp() + 86_400;
    let start = Instant::now();
    let tasks: Vec<_> = checkins[..n]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let url = format!("{base}/c/{}", signer.sign(*id, exp));
            let client = client.clone();
            let form = answers(flows, false);
            let id = *id;
            tokio::spawn(async move {
                tokio::time::sleep_until(
                    (start + Duration::from_secs_f64(i as f64 / ANSWER_RATE)).into(),
                )
                .await;
                let t = Instant::now();
                let ok = match client
                    .post(&url)
                    .form(&form)
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                };
                (id, ok, t.elapsed().as_secs_f64() * 1000.0)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut refused = 0;
    let mut acked = Vec::new();
    for t in tasks {
        match t.await {
            Ok((id, true, ms)) => {
                lat.push(ms);
                acked.push(id);
            }
            _ => refused += 1,
        }
    }
    (lat, refused, acked)
}

#[derive(Default)]
struct ConsoleCounts {
    ok: AtomicU64,
    shed: AtomicU64,
    failed: AtomicU64,
    not_sent: AtomicU64,
}

/// Console searches sent at `rate` per second (open loop: arrivals do not wait for answers)
/// for `len`; at most [`MAX_IN_FLIGHT`] in flight. Returns the counts and the served
/// requests' latencies.
async fn console_load(
    client: &reqwest::Client,
    urls: &[String],
    rate: f64,
    len: Duration,
) -> (ConsoleCounts, Vec<f64>) {
    let counts = Arc::new(ConsoleCounts::default());
    let lat = Arc::new(std::sync::Mutex::new(Vec::new()));
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut i = 0usize;
    while start.elapsed() < len {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            counts.not_sent.fetch_add(1, Ordering::Relaxed);
            i += 1;
            continue;
        };
        let url = urls[i % urls.len()].clone();
        let client = client.clone();
        let counts = counts.clone();
        let lat = lat.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = client
                .get(&url)
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            let status = match r {
                Ok(r) => {
                    let s = r.status().as_u16();
                    let _ = r.bytes().await;
                    s
                }
                Err(_) => 0,
            };
            match status {
                200 => {
                    counts.ok.fetch_add(1, Ordering::Relaxed);
                    lat.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
                }
                503 => {
                    counts.shed.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        }));
        i += 1;
    }
    for t in tasks {
        let _ = t.await;
    }
    let counts = Arc::try_unwrap(counts).unwrap_or_default();
    let lat = std::mem::take(&mut *lat.lock().unwrap());
    (counts, lat)
}

/// Closed loop with `clients` at once for `len`: served requests per second.
async fn capacity(client: &reqwest::Client, urls: &[String], clients: usize, len: Duration) -> f64 {
    let start = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let client = client.clone();
            let urls = urls.to_vec();
            let done = done.clone();
            tokio::spawn(async move {
                let mut i = c;
                while start.elapsed() < len {
                    if let Ok(r) = client.get(&urls[i % urls.len()]).send().await
                        && r.status().is_success()
                        && r.bytes().await.is_ok()
                    {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    i += clients;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Acknowledged answers whose observation is not stored.
async fn lost(db: &Db, acked: &[i64]) -> anyhow::Result<i64> {
    let Db::Postgres(p) = db else { unreachable!() };
    let stored: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT c.id) FROM checkins c JOIN observations o ON o.checkin_id = c.id
         WHERE c.id = ANY($1) AND c.status = 'answered'",
    )
    .bind(acked)
    .fetch_one(p)
    .await?;
    Ok(acked.len() as i64 - stored)
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    println!(
        "\n## Surge: console searches at 2× and 10× capacity while {ANSWER_RATE} answers/s arrive (PostgreSQL, server in its own process)"
    );
    let (db, name) = fresh_db(&args.admin_url, "surge").await?;
    let phases = 5;
    let checkins = seed_checkins(&db, (PHASE.as_secs_f64() * ANSWER_RATE) as i64 * phases).await?;
    let Db::Postgres(p) = &db else {
        anyhow::bail!("the surge benchmark runs on PostgreSQL")
    };
    seed_named_people(p, 1, PEOPLE).await?;
    // Vacuumed and analysed now, not by autovacuum during a phase: the seed's 300,000
    // inserts set off its insert threshold on several tables, and a vacuum of them running
    // beside the idle phase made its p99 the noisiest figure of the run (11–34 ms between
    // runs of one build). The seed's dirty pages written now, not by a checkpoint in the
    // middle of a phase.
    sqlx::query("VACUUM ANALYZE").execute(p).await?;
    sqlx::query("CHECKPOINT").execute(p).await?;
    let url = db_url(&args.admin_url, &name);
    let mut server = start_server(&url).await?;
    let base = server.base.clone();
    let phones = Phones::start(server.patient_base.clone())?;
    let reniced = lower_generator_priority(std::slice::from_ref(&phones.tid));
    println!(
        "server: its own process at normal priority (its log: {}); patients {}; load generator: this process, {}; PostgreSQL: the same 2 cores",
        server_log_path().display(),
        if server.patient_base == base {
            "on the console's port (no patients' door)"
        } else {
            "through the patients' door (http.patient_addr: own threads, connections and pool)"
        },
        if reniced {
            "at nice 10 (the patients' phones: a thread of their own at normal priority)"
        } else {
            "at normal priority (renice failed)"
        }
    );
    let client = login(&base).await?;
    let urls: Vec<String> = [
        "ヤマダ",
        "山田",
        "すずき",
        "タナカ ハナコ",
        "070-0012-3456",
        "サトウ",
    ]
    .iter()
    .map(|q| {
        format!(
            "{base}/persons?{}",
            serde_urlencoded::to_string([("q", *q)]).unwrap_or_default()
        )
    })
    .collect();
    let (rss0, _) = rss_mb(server.pid);

    // Idle: answers alone, then the console alone.
    let mut next = 0usize;
    let mut take = |d: Duration| {
        let n = (d.as_secs_f64() * ANSWER_RATE) as usize;
        let s = &checkins[next..(next + n).min(checkins.len())];
        next += n;
        s.to_vec()
    };
    // A warm-up, not counted: the server's first answers open its pools' connections and
    // prepare their statements.
    let warm = phones.answer(take(WARM_UP), WARM_UP).await;
    let (psi0, t0) = (cpu_pressure_secs(), Instant::now());
    let (idle, refused0, acked0) = phones.answer(take(PHASE), PHASE).await;
    let idle_pressure = match (psi0, cpu_pressure_secs()) {
        (Some(a), Some(b)) => 100.0 * (b - a) / t0.elapsed().as_secs_f64(),
        _ => f64::NAN,
    };
    let (_, console_idle) = console_load(&client, &urls, 2.0, Duration::from_secs(5)).await;
    let console_idle_p50 = pct(console_idle, 0.5);
    let cap = capacity(&client, &urls, 16, Duration::from_secs(10)).await;
    println!(
        "idle (after a warm-up of {} answers, not counted): answers p50 {:.1} ms, p99 {:.1} ms, CPU pressure (some) {idle_pressure:.0} %; console search p50 {console_idle_p50:.1} ms; console capacity {cap:.0} searches/s (16 clients, closed loop); server RSS {rss0:.0} MB",
        warm.0.len() + warm.1,
        pct(idle.clone(), 0.5),
        pct(idle.clone(), 0.99)
    );
    println!(
        "\n| console load | answers p50 ms | p99 ms | max ms | p99 / idle p99 | answers refused | lost | console served | served /s | shed (503) | failed | not sent | served p50 ms | console places, gap ms (p50 of samples) | server peak RSS MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    // The warm-up's answers are checked as every other: none may be lost.
    let mut total_lost = lost(&db, &acked0).await? + lost(&db, &warm.2).await?;
    let mut total_refused = refused0 + warm.1;
    let mut peak = rss0;
    let idle_p99 = pct(idle.clone(), 0.99);
    let mut ratio10 = f64::NAN;
    let mut cpu_rows = Vec::new();
    for factor in [2.0, 10.0] {
        let rate = cap * factor;
        let batch = take(PHASE);
        let (cpu0, psi0, t0) = (cpu_now(server.pid), cpu_pressure_secs(), Instant::now());
        let sampler = {
            let pid = server.pid;
            let metrics = format!("{}/metrics", server.patient_base);
            tokio::spawn(async move {
                let mut peak: f64 = 0.0;
                let (mut places, mut gaps) = (Vec::new(), Vec::new());
                let start = Instant::now();
                let http = reqwest::Client::new();
                while start.elapsed() < PHASE + Duration::from_secs(5) {
                    peak = peak.max(rss_mb(pid).0);
                    // The console gate's state, as an operator sees it.
                    if start.elapsed() < PHASE
                        && let Ok(r) = http.get(&metrics).bearer_auth(METRICS_TOKEN).send().await
                        && let Ok(text) = r.text().await
                    {
                        let gauge = |name: &str| {
                            text.lines()
                                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                        };
                        places.extend(gauge("mimamori_console_limit "));
                        gaps.extend(gauge("mimamori_console_pace_seconds ").map(|s| s * 1000.0));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                (peak, places, gaps)
            })
        };
        let ((lat, refused, acked), (counts, served)) = tokio::join!(
            phones.answer(batch, PHASE),
            console_load(&client, &urls, rate, PHASE)
        );
        let (cpu1, psi1, secs) = (
            cpu_now(server.pid),
            cpu_pressure_secs(),
            t0.elapsed().as_secs_f64(),
        );
        let pressure = match (psi0, psi1) {
            (Some(a), Some(b)) => 100.0 * (b - a) / secs,
            _ => f64::NAN,
        };
        cpu_rows.push((
            factor,
            std::array::from_fn::<f64, 4, _>(|i| (cpu1[i] - cpu0[i]) / secs),
            pressure,
        ));
        let (phase_peak, places, gaps) = sampler.await.unwrap_or((f64::NAN, vec![], vec![]));
        peak = peak.max(phase_peak);
        let l = lost(&db, &acked).await?;
        total_lost += l;
        total_refused += refused;
        let sent = counts.ok.load(Ordering::Relaxed)
            + counts.shed.load(Ordering::Relaxed)
            + counts.failed.load(Ordering::Relaxed);
        let share = |n: u64| 100.0 * n as f64 / sent.max(1) as f64;
        let p99 = pct(lat.clone(), 0.99);
        if factor == 10.0 {
            ratio10 = p99 / idle_p99;
        }
        println!(
            "| {factor}× ({rate:.0}/s) | {:.1} | {p99:.1} | {:.1} | {:.2} | {refused} | {l} | {:.0} % | {:.0} | {:.0} % | {} | {} | {:.1} | {:.0}, {:.1} | {phase_peak:.0} |",
            pct(lat.clone(), 0.5),
            pct(lat.clone(), 1.0),
            p99 / idle_p99,
            share(counts.ok.load(Ordering::Relaxed)),
            counts.ok.load(Ordering::Relaxed) as f64 / PHASE.as_secs_f64(),
            share(counts.shed.load(Ordering::Relaxed)),
            counts.failed.load(Ordering::Relaxed),
            counts.not_sent.load(Ordering::Relaxed),
            pct(served, 0.5),
            pct(places, 0.5),
            pct(gaps, 0.5),
        );
    }
    println!(
        "\nWhere the CPU went in each phase, in cores (of {}; a thread that ended is not counted), and the share of the phase during which some runnable task waited for a core (/proc/pressure/cpu, machine-wide):\n\n| console load | server: patients' door threads | server: its other threads | generator and phones | PostgreSQL | idle | CPU pressure (some) |\n|---|---|---|---|---|---|---|",
        cores()
    );
    for (factor, c, pressure) in &cpu_rows {
        println!(
            "| {factor}× | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {pressure:.0} % |",
            c[0],
            c[1],
            c[2],
            c[3],
            (cores() as f64 - c.iter().sum::<f64>()).max(0.0)
        );
    }
    // Recovery: how long until a search is answered as fast as when idle (within 2×).
    let t = Instant::now();
    let recovered = loop {
        let s = Instant::now();
        let ok = match client.get(&urls[0]).send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            _ => false,
        };
        if ok && s.elapsed().as_secs_f64() * 1000.0 <= 2.0 * console_idle_p50.max(1.0) {
            break t.elapsed().as_secs_f64();
        }
        if t.elapsed() > Duration::from_secs(120) {
            break f64::INFINITY;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss_after, hwm) = rss_mb(server.pid);
    println!(
        "\nrecovery: console back to idle speed {recovered:.2} s after the load; server RSS {rss0:.0} MB before, peak {:.0} MB (VmHWM {hwm:.0}), {rss_after:.0} MB 5 s after",
        peak.max(hwm)
    );
    println!(
        "answers: {total_refused} refused, {total_lost} acknowledged but not stored; 10× p99 / idle p99 = {ratio10:.2} (goal ≤ 2.00, 0 lost)"
    );
    // Stop the server: closing its standard input ends it gracefully.
    drop(server.child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(20), server.child.wait()).await;
    drop_db(&args.admin_url, db, &name).await;
    Ok(())
}
