//! Statistics (#15) on PostgreSQL: a prefecture of 1,500,000 patients over 120 days with
//! 30,000,000 observations.
//!
//! * the statistics page of the prefecture (28 days, and 120 days) and the press table,
//!   p50/p95 with 4 clients, beside a trivial handler and a one-query page;
//! * `mimamori stats rebuild` from the raw rows (people per second);
//! * the open-data file 陽性患者属性 of every case streamed over HTTP, against a bare
//!   `COPY (…the same rows…) TO STDOUT`, with the process's resident memory sampled while it
//!   streams (flat = it does not grow with the file).
use std::time::Instant;

use crate::run::rss_kib;

use chrono::Utc;
use mimamori_core::{Db, db::now, store::stats};

use crate::review::{rps, seed_checkins, start_web};
use crate::run::{Args, db_url, drop_db, fresh_db, pct};

const MUNICIPALITIES: &str = "ARRAY['新宿区','渋谷区','港区','世田谷区','練馬区','大田区','足立区','江戸川区','杉並区','板橋区',
    '江東区','葛飾区','品川区','北区','中野区','豊島区','目黒区','墨田区','荒川区','文京区']";

pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    let n = args.people;
    let observations = args.observations;
    println!(
        "\n## Statistics: a prefecture of {n} patients over 120 days, {observations} observations (PostgreSQL)"
    );
    let (db, name) = fresh_db(&args.admin_url, "stats").await?;
    seed_checkins(&db, 0).await?;
    let Db::Postgres(p) = &db else { unreachable!() };
    let started = Instant::now();
    let t = now();
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive();
    for i in 1..10 {
        sqlx::query("INSERT INTO health_centres (name, phone, time_zone, created_at) VALUES ($1, '03-0000-0000', 'Asia/Tokyo', $2)")
            .bind(format!("bench centre {i}")).bind(t).execute(p).await?;
    }
    sqlx::query("UPDATE health_centres SET prefecture = '13', lg_code = '13' || lpad((100 + id)::text, 3, '0')")
        .execute(p)
        .await?;
    sqlx::query("UPDATE staff SET role = 'prefecture_staff' WHERE username = 'bench'")
        .execute(p)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO persons (health_centre_id, name, phone, channel, monitoring_type, observation_start, observation_end,
                              status, sex, date_of_birth, municipality, prefecture_code, onset_date, reception_date,
                              residence_kind, created_at, updated_at)
         SELECT 1 + g % 10, 'bench', '+8190' || lpad(g::text, 8, '0'), 'sms', 'patient',
                $1::date - (g % 120)::int, $1::date - (g % 120)::int + 10, 'observing',
                (ARRAY['male','female','male','female','other','unknown'])[1 + g % 6],
                DATE '1925-01-01' + (g * 7919 % 36000)::int, ({MUNICIPALITIES})[1 + g % 20], '13',
                $1::date - (g % 120)::int - 1, $1::date - (g % 120)::int, 'home', $2, $2
         FROM generate_series(1, $3) g")))
        .bind(today).bind(t).bind(n).execute(p).await?;
    sqlx::query("INSERT INTO person_tests (person_id, specimen_date, result, created_at) SELECT id, observation_start - 1, 'positive', $1 FROM persons")
        .bind(t).execute(p).await?;
    sqlx::query("INSERT INTO person_severities (person_id, level, from_date, created_at) SELECT id, 'moderate1', observation_start + 2, $1 FROM persons WHERE id % 10 = 0")
        .bind(t).execute(p).await?;
    sqlx::query("INSERT INTO person_residences (person_id, kind, from_date, created_at) SELECT id, 'hospital', observation_start + 3, $1 FROM persons WHERE id % 20 = 0")
        .bind(t).execute(p).await?;
    sqlx::query("UPDATE persons SET residence_kind = 'hospital' WHERE id % 20 = 0")
        .execute(p)
        .await?;
    sqlx::query(
        "INSERT INTO occurrence_reports (person_id, health_centre_id, report_type, diagnosis_date, diagnosis_method, doctor_name,
                                         institution_name, death_date, linkage, created_at)
         SELECT id, health_centre_id, 'deceased', observation_start + 5, 'pcr', 'bench', 'bench', observation_start + 5, 'linked', $1
         FROM persons WHERE id % 500 = 0")
        .bind(t).execute(p).await?;
    sqlx::query(
        "INSERT INTO checkins (person_id, local_date, slot, due_at, deadline_at, status, attempts)
         SELECT id, observation_start + (id % 10)::int, 0, $1, $1, CASE WHEN id % 5 = 0 THEN 'missed' ELSE 'answered' END, 1 FROM persons")
        .bind(t).execute(p).await?;
    sqlx::query(
        "INSERT INTO observations (person_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, created_at)
         SELECT 1 + g % $1, 'web', 'self', $2, 36.5, 97, '{}', FALSE, $2 FROM generate_series(1, $3) g")
        .bind(n).bind(t).bind(observations).execute(p).await?;
    sqlx::query("ANALYZE").execute(p).await?;
    println!("seeded in {:.0} s", started.elapsed().as_secs_f64());

    // `--only opendata`: the open-data file alone (the figures and pages are not needed).
    let pages = args.only != "opendata";
    // The figures from the raw rows (what the job keeps current one change at a time).
    sqlx::query("DELETE FROM stats_dirty").execute(p).await?;
    if pages {
        let t0 = Instant::now();
        let r = stats::rebuild(&db, &|_, _| {}).await?;
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "`stats rebuild`: {} sources → {} figures in {secs:.0} s ({:.0} people/s)",
            r.sources,
            r.cells,
            r.sources as f64 / secs
        );
    }
    sqlx::query("ANALYZE").execute(p).await?;

    let app = start_web(&db_url(&args.admin_url, &name)).await?;
    if pages {
        let (trivial, _) = rps(&app.client, &format!("{}/healthz/live", app.base), 5.0, 4).await?;
        let (one_query, oq_lat) =
            rps(&app.client, &format!("{}/healthz", app.base), 5.0, 4).await?;
        println!("| page | req/s | p50 ms | p95 ms | ratio to one-query page |");
        println!("|---|---|---|---|---|");
        println!("| trivial handler (ceiling) | {trivial:.0} | | | |");
        println!(
            "| one database query (ceiling) | {one_query:.0} | {:.1} | {:.1} | 1.00 |",
            pct(oq_lat.clone(), 0.5),
            pct(oq_lat, 0.95)
        );
        let from120 = today - chrono::Duration::days(119);
        for (label, path) in [
            ("statistics, prefecture, 28 days", "/stats".to_string()),
            (
                "statistics, prefecture, 120 days",
                format!("/stats?from={from120}&to={today}"),
            ),
            (
                "statistics, one centre, 28 days",
                "/stats?centre=3".to_string(),
            ),
            ("press table, prefecture", "/stats/press".to_string()),
        ] {
            let url = format!("{}{path}", app.base);
            let r = app.client.get(&url).send().await?;
            anyhow::ensure!(r.status().is_success(), "{path}: {}", r.status());
            let (rate, lat) = rps(&app.client, &url, 5.0, 4).await?;
            println!(
                "| {label} | {rate:.1} | {:.1} | {:.1} | {:.3} |",
                pct(lat.clone(), 0.5),
                pct(lat, 0.95),
                rate / one_query
            );
        }
    }

    // Open data: every case, streamed, against a bare COPY of the same rows.
    let copy_sql = format!(
        "COPY (SELECT {} FROM persons p WHERE p.monitoring_type = 'patient' AND p.merged_into IS NULL ORDER BY p.id) TO STDOUT",
        stats::CASE_COLUMNS
    );
    let t0 = Instant::now();
    let mut conn = p.acquire().await?;
    let mut out = conn.copy_out_raw(&copy_sql).await?;
    let mut copy_bytes = 0usize;
    use futures::StreamExt;
    while let Some(chunk) = out.next().await {
        copy_bytes += chunk?.len();
    }
    drop(out);
    drop(conn);
    let copy_secs = t0.elapsed().as_secs_f64();
    let rss_before = rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(rss_before));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
    };
    let t0 = Instant::now();
    let r = app
        .client
        .get(format!(
            "{}/stats/opendata/patients.csv?from=2000-01-01&to={today}",
            app.base
        ))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "open data: {}", r.status());
    let mut r = r;
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = r.chunk().await? {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let secs = t0.elapsed().as_secs_f64();
    sampler.abort();
    let rows = lines.saturating_sub(1);
    println!(
        "\nopen data 陽性患者属性: {rows} cases, {:.0} MB in {secs:.1} s ({:.0} rows/s); bare COPY of the same rows: {:.1} s ({:.0} rows/s, {:.0} MB) → ratio {:.2} (target ≥ 0.50)",
        bytes as f64 / 1e6,
        rows as f64 / secs,
        copy_secs,
        n as f64 / copy_secs,
        copy_bytes as f64 / 1e6,
        copy_secs / secs
    );
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "resident memory while streaming: {:.0} MB before, {:.0} MB at most (+{:.0} MB for a {:.0} MB file)",
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0,
        (peak.saturating_sub(rss_before)) as f64 / 1024.0,
        bytes as f64 / 1e6
    );
    anyhow::ensure!(rows as i64 == n, "the file has {rows} cases, expected {n}");
    app.stop().await?;
    drop_db(&args.admin_url, db, &name).await;
    Ok(())
}
