//! The counts the capacity planner needs ([`crate::capacity`]): how many people are to be
//! reached at each check-in time of a day on each channel — everyone whose observation
//! period covers the day, by their daily times in their health centre's time zone.
use chrono::{NaiveDate, TimeZone};

use crate::{Db, Result, capacity::Demand, with_db};

pub async fn demand_on(db: &Db, day: NaiveDate) -> Result<Vec<Demand>> {
    let rows: Vec<(String, i32, String, Option<String>, i64)> = with_db!(db, p => sqlx::query_as(
        "SELECT h.time_zone, ps.minutes, p.channel, p.fallback_channel, COUNT(*)
         FROM persons p JOIN person_slots ps ON ps.person_id = p.id JOIN health_centres h ON h.id = p.health_centre_id
         WHERE p.status = 'observing' AND p.observation_start <= $1 AND p.observation_end >= $1
         GROUP BY h.time_zone, ps.minutes, p.channel, p.fallback_channel")
        .bind(day).fetch_all(p).await?);
    let mut out = Vec::with_capacity(rows.len());
    for (tz, minutes, channel, fallback_channel, people) in rows {
        let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::Asia::Tokyo);
        let local = day.and_hms_opt(0, 0, 0).expect("midnight")
            + chrono::Duration::minutes(i64::from(minutes));
        let Some(due) = tz.from_local_datetime(&local).earliest() else {
            continue;
        };
        out.push(Demand {
            due_at: due.with_timezone(&chrono::Utc),
            channel,
            fallback_channel,
            people,
        });
    }
    out.sort_by(|a, b| (a.due_at, &a.channel).cmp(&(b.due_at, &b.channel)));
    Ok(out)
}
