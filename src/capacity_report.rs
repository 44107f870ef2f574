//! `mimamori plan --capacity [DATE]`: the delivery capacity report of a day and a forecast
//! of the days after it (see `mimamori_core::capacity`), and the dashboard's one-line summary.
use std::path::Path;

use chrono::{Duration, NaiveDate};
use mimamori_core::{
    Db,
    capacity::{self, Plan},
    config::Config,
    flows::Flows,
    store,
};

use crate::startup;

/// Tomorrow in Japan.
pub fn tomorrow() -> NaiveDate {
    crate::web::japan_today() + Duration::days(1)
}

/// The plan of `day` under the configuration and the patient flow's reminder policy.
pub async fn plan_for(
    db: &Db,
    config: &Config,
    flows: &Flows,
    day: NaiveDate,
) -> anyhow::Result<Plan> {
    let demand = store::capacity::demand_on(db, day).await?;
    let p = &flows.for_monitoring("patient").policy;
    let policy = capacity::policy(config, p.reminder_after_minutes, p.max_reminders);
    Ok(capacity::plan(
        &demand,
        &capacity::configured(config),
        &policy,
    ))
}

fn jst(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono_tz::Asia::Tokyo)
        .format("%H:%M:%S")
        .to_string()
}

pub async fn print(config: &Config, date: Option<NaiveDate>, days: i64) -> anyhow::Result<()> {
    let db = startup::open_db(config).await?;
    let flows = Flows::load(Path::new(&config.flows_dir))
        .map_err(|p| anyhow::anyhow!("flows are invalid:\n  {}", p.join("\n  ")))?;
    let day = date.unwrap_or_else(tomorrow);
    let pf = &flows.for_monitoring("patient").policy;
    let policy = capacity::policy(config, pf.reminder_after_minutes, pf.max_reminders);
    let cap = capacity::configured(config);
    println!(
        "Delivery capacity for {day} (times in Japan; reminders counted as if nobody answered)"
    );
    println!(
        "answer window {} min; up to {} reminder(s), {} min apart",
        policy.answer_window.num_minutes(),
        policy.max_reminders,
        policy.reminder_after.num_minutes()
    );
    for ch in ["sms", "voice", "email"] {
        let c = cap(ch);
        if c.per_number_per_sec > 0.0 {
            println!(
                "{ch:<6} {} number(s) × {}/s = {}/s",
                c.numbers,
                c.per_number_per_sec,
                c.per_number_per_sec * c.numbers.max(1) as f64
            );
        } else {
            println!("{ch:<6} no rate limit configured");
        }
    }
    let demand = store::capacity::demand_on(&db, day).await?;
    let plan = capacity::plan(&demand, &cap, &policy);
    println!();
    println!(
        "| channel | wave | due | sends | first leaves | last leaves | window closes | overflow |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for w in &plan.waves {
        let wave = if w.reminder == 0 {
            "first".to_string()
        } else {
            format!("reminder {}", w.reminder)
        };
        println!(
            "| {} | {wave} | {} | {} | {} | {} | {} | {} |",
            w.channel,
            jst(w.due_at),
            w.sends,
            jst(w.starts_at),
            jst(w.last_leaves_at),
            jst(w.deadline_at),
            w.overflow
        );
    }
    println!();
    if plan.waves.is_empty() {
        println!("nobody is to be reached on {day}");
    } else if plan.overflow() == 0 {
        println!("ok: every send of {day} leaves inside its answer window");
    } else {
        println!(
            "OVERFLOW: {} send(s) of {day} would leave after their window closes",
            plan.overflow()
        );
        for a in capacity::advice(&demand, &cap, &policy) {
            println!("  fix: {a}");
        }
    }
    if days > 0 {
        println!();
        println!("Forecast (people whose observation continues):");
        println!("| day | sms | voice | email | overflow |");
        println!("|---|---|---|---|---|");
        for d in 1..=days {
            let day = day + Duration::days(d);
            let p = plan_for(&db, config, &flows, day).await?;
            let [(_, sms), (_, voice), (_, email)] = capacity::totals(&p);
            println!("| {day} | {sms} | {voice} | {email} | {} |", p.overflow());
        }
    }
    db.close().await;
    if plan.overflow() > 0 {
        anyhow::bail!("the plan of {day} does not fit");
    }
    Ok(())
}
