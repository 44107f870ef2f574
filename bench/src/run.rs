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
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use mimamori_core::{Db, db::now, with_db};

pub(crate) use crate::engine::*;
pub(crate) use crate::review::*;

pub struct Args {
    pub admin_url: String,
    pub people: i64,
    pub send: i64,
    /// Answers per ingest measurement.
    pub ingest: i64,
    /// Observations stored for the statistics benchmark.
    pub observations: i64,
    /// Records in the import benchmark's file.
    pub records: usize,
    /// Which parts: all, engine (planning, sending, limits), review (= ingest + pages),
    /// ingest, pages, registry (person search), delivery, statistics, import or surge.
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
        "engine"
            | "review"
            | "ingest"
            | "pages"
            | "registry"
            | "delivery"
            | "statistics"
            | "import"
            | "surge"
            | "opendata"
            | "trends"
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
    if all || args.only == "import" {
        crate::import::run(&args).await?;
    }
    if all || matches!(args.only.as_str(), "statistics" | "opendata") {
        crate::statistics::run(&args).await?;
    }
    if all || args.only == "trends" {
        crate::trends::run(&args).await?;
    }
    if all || args.only == "surge" {
        crate::surge::run(&args).await?;
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
    seed_named_people(p, 1, N).await?;
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

/// `n` people under observation in health centre `centre`, named from 40 surnames × 40 given
/// names in kanji and katakana (each full name 1 in 1,600), phones +8170…, for searches.
pub(crate) async fn seed_named_people(p: &sqlx::PgPool, centre: i64, n: i64) -> anyhow::Result<()> {
    let t = now();
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive();
    // 40 surnames × 40 given names, in kanji (name, name_norm) and katakana (name_key).
    sqlx::query(
        "INSERT INTO persons (health_centre_id, name, name_kana, name_key, name_norm, phone, channel,
                              observation_start, observation_end, status, date_of_birth, created_at, updated_at)
         SELECT $4, s.k || ' ' || g.k, s.r || ' ' || g.r, s.r || g.r, s.k || g.k,
                '+8170' || lpad(i::text, 8, '0'), 'sms', $1, $1 + 7, 'observing',
                DATE '1940-01-01' + (i % 25000)::int, $2, $2
         FROM generate_series(1, $3) i
         JOIN LATERAL (SELECT (ARRAY['佐藤','鈴木','高橋','田中','伊藤','渡辺','山本','中村','小林','加藤','吉田','山田','佐々木','山口','松本','井上','木村','林','斎藤','清水','山崎','森','池田','橋本','阿部','石川','山下','中島','石井','小川','前田','岡田','長谷川','藤田','後藤','近藤','村上','遠藤','青木','坂本'])[1 + i % 40] AS k,
                              (ARRAY['サトウ','スズキ','タカハシ','タナカ','イトウ','ワタナベ','ヤマモト','ナカムラ','コバヤシ','カトウ','ヨシダ','ヤマダ','ササキ','ヤマグチ','マツモト','イノウエ','キムラ','ハヤシ','サイトウ','シミズ','ヤマザキ','モリ','イケダ','ハシモト','アベ','イシカワ','ヤマシタ','ナカジマ','イシイ','オガワ','マエダ','オカダ','ハセガワ','フジタ','ゴトウ','コンドウ','ムラカミ','エンドウ','アオキ','サカモト'])[1 + i % 40] AS r) s ON TRUE
         JOIN LATERAL (SELECT (ARRAY['花子','太郎','一郎','次郎','三郎','陽子','恵子','洋子','裕子','直樹','健一','誠','大輔','翔太','美咲','愛','結衣','陽菜','蓮','湊','大翔','悠真','葵','凛','さくら','健太','拓也','彩','舞','優','隆','勇','修','実','清','茂','明美','京子','和子','幸子'])[1 + (i / 40) % 40] AS k,
                              (ARRAY['ハナコ','タロウ','イチロウ','ジロウ','サブロウ','ヨウコ','ケイコ','ヨウコ','ユウコ','ナオキ','ケンイチ','マコト','ダイスケ','ショウタ','ミサキ','アイ','ユイ','ヒナ','レン','ミナト','ヒロト','ユウマ','アオイ','リン','サクラ','ケンタ','タクヤ','アヤ','マイ','ユウ','タカシ','イサム','オサム','ミノル','キヨシ','シゲル','アケミ','キョウコ','カズコ','サチコ'])[1 + (i / 40) % 40] AS r) g ON TRUE")
        .bind(today).bind(t).bind(n).bind(centre).execute(p).await?;
    Ok(())
}

/// A `/proc/{pid}/status` figure in KiB (Linux), e.g. `VmRSS:`; `pid` may be `self`.
pub(crate) fn proc_status_kib(pid: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds (user + system) a process has used so far (`/proc/PID/stat`; 0 where it
/// cannot be read).
pub(crate) fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // After the command name in parentheses: state is field 3, utime 14 and stime 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields counted from the state (index 0 = field 3); the kernel's USER_HZ is 100.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds used so far by every process named `postgres` (the server and its backends;
/// backends that ended are not counted, so measure with connections that stay open).
pub(crate) fn postgres_cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            pid.bytes().all(|b| b.is_ascii_digit()).then_some(pid)
        })
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|pid| cpu_secs(&pid))
        .sum()
}

/// This process's resident memory in KiB (0 where `/proc` is missing).
pub(crate) fn rss_kib() -> u64 {
    proc_status_kib("self", "VmRSS:").unwrap_or(0)
}

/// Gives the allocator's free memory back to the system (glibc `malloc_trim`), so a
/// measurement's growth is its own, not hidden in memory an earlier phase left for reuse.
#[allow(unsafe_code)]
pub(crate) fn trim_heap() {
    // SAFETY: malloc_trim takes no pointers; it only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The process's peak resident memory since the last [`reset_peak_rss`] (VmHWM).
pub(crate) fn peak_rss_kib() -> u64 {
    proc_status_kib("self", "VmHWM:").unwrap_or(0)
}

/// Resets the kernel's resident-memory high-water mark to the current size (Linux:
/// `clear_refs` 5), so a peak can be measured for one phase.
pub(crate) fn reset_peak_rss() {
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        eprintln!("(cannot reset the peak RSS; the peak printed is the process's)");
    }
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

/// Latency percentiles in milliseconds.
pub(crate) fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}
