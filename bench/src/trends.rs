//! `--only trends` (issue #17): the population model and the rule lab.
//!
//! * **Rule sets on the model**: a synthetic cohort (`rules::model`, sources cited there) of
//!   100,000 people whose onsets fall over 30 days, replayed through the fixed rules alone and
//!   the shipped rules (fixed + trend), each escalation reviewed and closed the next day.
//!   Prints, per rule set: sensitivity for deterioration, the share flagged before the
//!   critical day, median and mean lead over the fixed rules, the share flagged a day or
//!   more earlier, alerts per 1,000 people per day and the share of alerts that are true.
//! * **Lab replay**: that cohort (100,000 people), then one 6.5 times as large (about 100,000
//!   people answering on each day), stored as one centre's observations on PostgreSQL, 30
//!   days replayed by the rule lab (live rules + a draft) —
//!   seconds against the bar of 10 s, and against a bare `COPY` of the same rows in the same
//!   order (the floor of reading them at all).
use std::time::Instant;

use chrono::{Duration, Utc};
use futures::StreamExt;
use mimamori_core::{
    Db,
    access::{Role, Viewer},
    rules::{Thresholds, model},
    store::rulelab,
};

use crate::run::{Args, drop_db, fresh_db};

const PEOPLE: usize = 100_000;
const DAYS: u32 = 30;

pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive();
    let start = today - Duration::days(i64::from(DAYS) - 1);
    let t0 = Instant::now();
    let cohort = model::cohort(PEOPLE, start, DAYS, 2026);
    let gen_s = t0.elapsed().as_secs_f64();
    let readings: usize = cohort.iter().map(|p| p.readings.len()).sum();
    let shipped = Thresholds::default();
    let fixed = model::fixed_only(&shipped);
    let t0 = Instant::now();
    let f = model::evaluate(&cohort, &[&fixed, &shipped]);
    let eval_s = t0.elapsed().as_secs_f64();
    let deteriorating = cohort
        .iter()
        .filter(|p| p.course == model::Course::Deteriorating && p.critical.is_some())
        .count();
    println!(
        "\ntrend rules on the population model: {PEOPLE} people, onsets over {DAYS} days, {readings} readings, {deteriorating} deteriorating to the critical day (generated in {gen_s:.1} s, both rule sets replayed in {eval_s:.1} s)"
    );
    println!(
        "  {:<26} {:>11} {:>13} {:>12} {:>10} {:>14} {:>16} {:>11}",
        "rule set",
        "sensitivity",
        "before crit.",
        "median lead",
        "mean lead",
        "≥ 1 day earlier",
        "alerts/1000/day",
        "true alarms"
    );
    for (name, x) in [
        ("fixed thresholds only", &f[0]),
        ("shipped (fixed + trend)", &f[1]),
    ] {
        println!(
            "  {:<26} {:>10.1}% {:>12.1}% {:>10.2} d {:>8.2} d {:>13.1}% {:>16.1} {:>10.1}%",
            name,
            x.sensitivity * 100.0,
            x.early * 100.0,
            x.median_lead_days.unwrap_or(0.0),
            x.mean_lead_days.unwrap_or(0.0),
            x.earlier_by_a_day * 100.0,
            x.alerts_per_1000_per_day,
            x.true_alarm_share * 100.0
        );
    }
    let ratio = f[1].alerts_per_1000_per_day / f[0].alerts_per_1000_per_day.max(1e-9);
    let earlier = f[1].mean_lead_days.unwrap_or(0.0) > 0.0 && f[1].earlier_by_a_day > 0.0;
    println!(
        "  goal: earlier than the fixed rules ({}) at ≤ 1.5 × their alerts (× {ratio:.2}) → {}",
        if earlier { "yes" } else { "no" },
        if earlier && ratio <= 1.5 {
            "met"
        } else {
            "NOT met"
        }
    );

    // The lab on PostgreSQL: a centre of 100,000 people (the cohort above), then one with
    // about 100,000 people answering on every day of the window (courses of ~8 days, onsets
    // over 40 days: 6.5 × as many in all).
    for cohort in [cohort, model::cohort(13 * PEOPLE / 2, start, DAYS, 2027)] {
        let (db, name) = fresh_db(&args.admin_url, "trends").await?;
        let result = lab(&db, &cohort, today).await;
        drop_db(&args.admin_url, db, &name).await;
        result?;
    }
    Ok(())
}

async fn lab(db: &Db, cohort: &[model::SimPerson], today: chrono::NaiveDate) -> anyhow::Result<()> {
    let Db::Postgres(p) = db else {
        anyhow::bail!("the benchmark seeds PostgreSQL")
    };
    let t = mimamori_core::db::now();
    let centre = mimamori_core::store::staff::create_health_centre(
        db,
        "bench centre",
        "03-0000-0000",
        "Asia/Tokyo",
    )
    .await?;
    let staff =
        mimamori_core::store::staff::create_staff(db, centre, "bench", "x", "bench").await?;
    // People 1..N, as the model numbers them.
    sqlx::query(
        "INSERT INTO persons (id, health_centre_id, name, phone, channel, observation_start, observation_end, status, created_at, updated_at)
         SELECT g, $1, 'bench', '+8190' || lpad(g::text, 8, '0'), 'sms', $2, $3, 'observing', $4, $4
         FROM generate_series(1, $5) g",
    )
    .bind(centre)
    .bind(today - Duration::days(40))
    .bind(today)
    .bind(t)
    .bind(cohort.len() as i64)
    .execute(p)
    .await?;
    let t0 = Instant::now();
    let mut conn = p.acquire().await?;
    let mut copy = conn
        .copy_in_raw("COPY observations (person_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, created_at) FROM STDIN")
        .await?;
    let mut buf = String::with_capacity(8 << 20);
    let mut rows = 0usize;
    let ts = t.to_rfc3339();
    for person in cohort {
        for r in &person.readings {
            let mut symptoms: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
            for (k, v) in &r.symptoms {
                symptoms.insert(k.clone(), (*v).into());
            }
            for (k, v) in &r.choices {
                symptoms.insert(k.clone(), v.as_str().into());
            }
            buf.push_str(&format!(
                "{}\tweb\tself\t{}\t{:.1}\t{}\t{}\tf\t{ts}\n",
                person.id,
                r.at.to_rfc3339(),
                r.temperature,
                r.spo2,
                serde_json::Value::Object(symptoms)
            ));
            rows += 1;
            if buf.len() > (8 << 20) {
                copy.send(buf.as_bytes()).await?;
                buf.clear();
            }
        }
    }
    copy.send(buf.as_bytes()).await?;
    copy.finish().await?;
    sqlx::query("ANALYZE").execute(&mut *conn).await?;
    drop(conn);
    println!(
        "\nrule lab: {rows} observations of {} people stored in {:.1} s",
        cohort.len(),
        t0.elapsed().as_secs_f64()
    );
    // The floor: the same rows, in the same order, copied out bare.
    let from = (today - Duration::days(i64::from(DAYS) - 1 + rulelab::WARM_UP_DAYS))
        .and_hms_opt(0, 0, 0)
        .expect("midnight");
    let copy_sql = format!(
        "COPY (SELECT o.person_id, o.observed_at, o.temperature_c, o.spo2, o.symptoms, o.urgent, p.onset_date
               FROM observations o JOIN persons p ON p.id = o.person_id
               WHERE p.health_centre_id = {centre} AND o.observed_at >= '{from}'
               ORDER BY o.person_id, o.observed_at, o.id) TO STDOUT"
    );
    let t0 = Instant::now();
    let mut conn = p.acquire().await?;
    let mut out = conn.copy_out_raw(&copy_sql).await?;
    while let Some(chunk) = out.next().await {
        chunk?;
    }
    drop(out);
    drop(conn);
    let copy_s = t0.elapsed().as_secs_f64();
    let viewer = Viewer {
        staff_id: staff,
        role: Role::HealthCentreStaff,
        health_centre_id: centre,
        organisation_id: None,
    };
    let base = Thresholds::default();
    for run in 1..=3 {
        let t0 = Instant::now();
        let r = rulelab::replay(
            db,
            &viewer,
            &base,
            r#"{"spo2_baseline_drop": 2}"#,
            DAYS,
            today,
        )
        .await?;
        let s = t0.elapsed().as_secs_f64();
        println!(
            "  replay {run}: {} readings ({:.0} a day over the {} days and {} days before them), {} people, live {} alerts / draft {} alerts, {} differ — {s:.2} s (bar ≤ 10 s: {}); bare COPY of the same rows {copy_s:.2} s → {:.2} of it",
            r.readings,
            r.readings as f64 / f64::from(DAYS + rulelab::WARM_UP_DAYS as u32),
            DAYS,
            rulelab::WARM_UP_DAYS,
            r.people,
            r.live.alerts,
            r.draft.alerts,
            r.differing,
            if s <= 10.0 { "met" } else { "NOT met" },
            copy_s / s
        );
    }
    Ok(())
}
