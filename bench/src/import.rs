//! Import (#16) on PostgreSQL: 500,000 occurrence-report records (one in ten a person already
//! registered, one in fifty a duplicate inside the file) into a registry of 1,000,000 people,
//! with duplicate detection, against a bare `COPY` of the same rows into tables of the same
//! shape (persons and occurrence_reports, same indexes). Records per minute and the growth of
//! the process's resident memory are printed.
use std::time::Instant;

use chrono::Utc;
use mimamori_core::{Db, access::Viewer, db::now, import, periods::Periods, store::imports};

use crate::review::seed_checkins;
use crate::run::{Args, drop_db, fresh_db, peak_rss_kib, reset_peak_rss, rss_kib, trim_heap};

pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    const REGISTRY: i64 = 1_000_000;
    let records: usize = args.records;
    println!("\n## Import: {records} records into a registry of {REGISTRY} people (PostgreSQL)");
    let (db, name) = fresh_db(&args.admin_url, "import").await?;
    seed_checkins(&db, 0).await?;
    let Db::Postgres(p) = &db else { unreachable!() };
    let t = now();
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive();
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO persons (health_centre_id, name, name_key, phone, channel, observation_start, observation_end,
                              status, date_of_birth, created_at, updated_at)
         SELECT 1, '登録 ' || g, 'トウロク' || g, '+8170' || lpad(g::text, 8, '0'), 'sms', DATE '2021-01-01', DATE '2021-01-10',
                'ended', DATE '1940-01-01' + (g % 25000)::int, $1, $1
         FROM generate_series(1, $2) g")
        .bind(t).bind(REGISTRY).execute(p).await?;
    sqlx::query("DELETE FROM stats_dirty").execute(p).await?;
    sqlx::query("ANALYZE").execute(p).await?;
    println!(
        "registry seeded in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    // The file: standard format.
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "case_number",
        "report_type",
        "diagnosis_date",
        "diagnosis_method",
        "doctor_name",
        "institution_name",
        "name",
        "name_kana",
        "sex",
        "date_of_birth",
        "phone",
        "municipality",
        "onset_date",
        "remarks",
    ])?;
    for i in 0..records {
        let (name, kana, dob, phone) = if i % 10 == 0 {
            // Someone registered already (ended case → re-positive).
            let g = (i / 10) as i64 + 1;
            (
                format!("登録 {g}"),
                format!("トウロク{g}"),
                chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap()
                    + chrono::Duration::days(g % 25000),
                format!("070{:08}", g),
            )
        } else {
            let k = if i % 50 == 2 { i - 1 } else { i };
            (
                format!("新規 {k}"),
                format!("シンキ{k}"),
                chrono::NaiveDate::from_ymd_opt(1950, 1, 1).unwrap()
                    + chrono::Duration::days((k % 20000) as i64),
                format!("080{:08}", k),
            )
        };
        let day = today - chrono::Duration::days(30 + (i % 300) as i64);
        w.write_record([
            format!("N{i:07}"),
            "patient".into(),
            day.to_string(),
            "pcr".into(),
            "医師".into(),
            "病院".into(),
            name,
            kana,
            if i % 2 == 0 { "male" } else { "female" }.into(),
            dob.to_string(),
            phone,
            "新宿区".into(),
            day.to_string(),
            String::new(),
        ])?;
    }
    let bytes = w.into_inner()?;
    println!("file: {} rows, {:.0} MB", records, bytes.len() as f64 / 1e6);

    // Ceiling: COPY of the same rows into tables of the same shape.
    sqlx::query("CREATE TABLE persons_bare (LIKE persons INCLUDING ALL)")
        .execute(p)
        .await?;
    sqlx::query("CREATE TABLE reports_bare (LIKE occurrence_reports INCLUDING ALL)")
        .execute(p)
        .await?;
    let mut persons_txt = String::with_capacity(records * 120);
    let mut reports_txt = String::with_capacity(records * 100);
    let ts = t.to_rfc3339();
    for i in 0..records {
        let day = today - chrono::Duration::days(30 + (i % 300) as i64);
        persons_txt.push_str(&format!(
            "{}\t1\t新規 {i}\t+8180{i:08}\tsms\tpatient\t{day}\t{}\tended\t{ts}\t{ts}\tシンキ{i}\tシンキ{i}\tmale\t新宿区\t{day}\n",
            REGISTRY as usize + 10 + i,
            day + chrono::Duration::days(10)
        ));
        reports_txt.push_str(&format!(
            "{}\t1\tpatient\t{day}\tpcr\t医師\t病院\t{day}\tcreated\t{ts}\n",
            REGISTRY as usize + 10 + i
        ));
    }
    let t0 = Instant::now();
    let mut conn = p.acquire().await?;
    let mut copy = conn
        .copy_in_raw("COPY persons_bare (id, health_centre_id, name, phone, channel, monitoring_type, observation_start, observation_end, status, created_at, updated_at, name_kana, name_key, sex, municipality, onset_date) FROM STDIN")
        .await?;
    copy.send(persons_txt.as_bytes()).await?;
    copy.finish().await?;
    let mut copy = conn
        .copy_in_raw("COPY reports_bare (person_id, health_centre_id, report_type, diagnosis_date, diagnosis_method, doctor_name, institution_name, onset_date, linkage, created_at) FROM STDIN")
        .await?;
    copy.send(reports_txt.as_bytes()).await?;
    copy.finish().await?;
    drop(conn);
    let copy_s = t0.elapsed().as_secs_f64();
    drop((persons_txt, reports_txt));

    let staff: Viewer = mimamori_core::store::staff::viewer_by_username(&db, "bench")
        .await?
        .ok_or_else(|| anyhow::anyhow!("bench user"))?;
    let periods = Periods::default();
    // The report's CSV of every row is made as the CLI makes it, and counted, not kept.
    let report_bytes = std::sync::atomic::AtomicUsize::new(0);
    let to_report = |b: &[u8]| {
        report_bytes.fetch_add(b.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    };
    let opt = || imports::Options {
        periods: &periods,
        today,
        file_name: "bench.csv",
        progress: &|_, _| {},
        lang: mimamori_core::domain::Lang::Ja,
        report_csv: Some(&to_report),
    };
    let mapping = import::Mapping::standard("bench");
    // Memory: the peak of the import alone (the kernel's high-water mark reset here), against
    // what the process held before (the file's bytes included, as the CLI holds them).
    // What the bench freed (the COPY's text) goes back first, so the import cannot hide its
    // growth in memory an earlier phase left behind.
    trim_heap();
    let rss0 = rss_kib();
    reset_peak_rss();
    // Where the time goes: a dry run (every row read, checked, searched for in the registry,
    // staged and decided — what the import does before writing), timed apart.
    let t1 = Instant::now();
    let dry = imports::dry_run(&db, &staff, &mapping, &bytes, opt()).await?;
    let dry_s = t1.elapsed().as_secs_f64();
    let peak_dry = peak_rss_kib();
    drop(dry);
    trim_heap();
    let rss_between = rss_kib();
    reset_peak_rss();
    let t0 = Instant::now();
    let r = imports::run(&db, &staff, &mapping, &bytes, opt()).await?;
    let secs = t0.elapsed().as_secs_f64();
    let (rss1, peak_run) = (rss_kib(), peak_rss_kib());
    let peak = peak_run.max(peak_dry);
    println!(
        "phases: read, check, search the registry, stage and decide (a dry run) {dry_s:.1} s; so writing ≈ {:.1} s; report CSV {:.0} MB a run",
        secs - dry_s,
        report_bytes.load(std::sync::atomic::Ordering::Relaxed) as f64 / 2e6
    );
    println!("| measure | rows | seconds | rows/min |");
    println!("|---|---|---|---|");
    println!(
        "| bare COPY into persons + occurrence_reports of the same shape (ceiling) | {records} | {copy_s:.1} | {:.0} |",
        records as f64 / copy_s * 60.0
    );
    println!(
        "| `imports::run` (read, check, duplicates against {REGISTRY}, write, audit, report) | {records} | {secs:.1} | {:.0} |",
        records as f64 / secs * 60.0
    );
    println!(
        "ratio {:.3} of the bare COPY (target ≥ 0.10); {:.0} records/min (target ≥ 100,000); created {}, re-positive {}, duplicates {}, rejected {}",
        copy_s / secs,
        records as f64 / secs * 60.0,
        r.created,
        r.repositive,
        r.duplicate,
        r.rejected
    );
    let mb = |k: u64| k as f64 / 1024.0;
    println!(
        "memory by phase: dry run peak {:.0} MB; {:.0} MB after it (report dropped); import peak {:.0} MB",
        mb(peak_dry),
        mb(rss_between),
        mb(peak_run)
    );
    println!(
        "resident memory ({:.0} MB file in memory throughout): {:.0} MB before the dry run; peak {:.0} MB during the dry run and the import (+{:.0} MB, {:.0} bytes a row); {:.0} MB after, holding the report",
        bytes.len() as f64 / 1e6,
        mb(rss0),
        mb(peak),
        mb(peak.saturating_sub(rss0)),
        peak.saturating_sub(rss0) as f64 * 1024.0 / records as f64,
        mb(rss1),
    );
    drop_db(&args.admin_url, db, &name).await;
    Ok(())
}
