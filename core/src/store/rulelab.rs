//! The rule lab's store side: replay a draft of a health centre's rule overrides over its
//! recent observations beside the live rules ([`replay`]), activate a draft as a new version
//! ([`activate`], audited), and which rules were in force on a date ([`in_force`]).
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use futures::TryStreamExt;

use crate::db::BeginWrite;
use crate::{
    Db, Error, Result,
    access::{Role, Viewer},
    db::now,
    rules::{
        Thresholds,
        lab::{Flag, Replayer, Tally},
        trend::{self, Reading},
    },
    store::{Actor, audit},
    with_db,
};

/// Days before the window whose readings build baselines (a person's course is about ten).
pub const WARM_UP_DAYS: i64 = 14;
/// Most people listed for inspection.
pub const MAX_LISTED: usize = 500;

/// What one rule set raised in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct SetFigures {
    pub alerts: u64,
    pub flagged: u64,
    /// New alerts per local day of the window (every day, zeros included).
    pub by_day: Vec<(NaiveDate, u64)>,
    pub by_reason: Vec<(&'static str, u64)>,
}

/// A person the draft flags differently from the live rules.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonDiff {
    pub person_id: i64,
    pub live: Option<Flag>,
    pub draft: Option<Flag>,
    /// How much earlier the draft flags them (hours; negative = later), when both do.
    pub earlier_hours: Option<f64>,
}

/// The lab's answer.
#[derive(Debug, Clone)]
pub struct Replay {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub people: u64,
    pub readings: u64,
    pub live: SetFigures,
    pub draft: SetFigures,
    /// Flagged by the draft earlier, only by the draft, later, or only by the live rules —
    /// earliest gain first; at most [`MAX_LISTED`].
    pub people_list: Vec<PersonDiff>,
    /// How many differed in all (the list may be cut).
    pub differing: usize,
    /// Median hours earlier the draft flags people both flag (None when none).
    pub median_earlier_hours: Option<f64>,
    pub elapsed: std::time::Duration,
}

fn only_centre_staff(viewer: &Viewer) -> Result<()> {
    if viewer.role != Role::HealthCentreStaff {
        return Err(Error::Forbidden(
            "only a health centre's staff work on its escalation rules",
        ));
    }
    Ok(())
}

/// The centre's time zone and live overrides.
async fn centre(db: &Db, centre: i64) -> Result<(chrono_tz::Tz, String)> {
    let (zone, rules): (String, String) = with_db!(db, p => sqlx::query_as(
        "SELECT time_zone, rules FROM health_centres WHERE id = $1")
        .bind(centre).fetch_optional(p).await?)
    .ok_or(Error::NotFound("health centre"))?;
    Ok((zone.parse().unwrap_or(chrono_tz::Asia::Tokyo), rules))
}

/// The rules in force for a centre now: `base` with its overrides (the base alone when the
/// stored override no longer validates, as the answer writer does).
pub async fn centre_rules(db: &Db, centre_id: i64, base: &Thresholds) -> Result<Thresholds> {
    let (_, overrides) = centre(db, centre_id).await?;
    Ok(base
        .with_overrides(&overrides)
        .unwrap_or_else(|_| base.clone()))
}

fn figures(t: &Tally, from: NaiveDate, to: NaiveDate) -> SetFigures {
    let mut by_day = Vec::new();
    let mut d = from;
    while d <= to {
        by_day.push((d, t.alerts_by_day.get(&d).copied().unwrap_or(0)));
        d += Duration::days(1);
    }
    SetFigures {
        alerts: t.total(),
        flagged: t.first.len() as u64,
        by_day,
        by_reason: t.by_reason.iter().map(|(k, v)| (*k, *v)).collect(),
    }
}

/// Replays the live rules (`base` with the centre's overrides) and a draft (`base` with
/// `draft_overrides`, a JSON object of rule keys) over the centre's observations of the last
/// `days` local days up to `today`, person by person in time order, with [`WARM_UP_DAYS`]
/// before the window building baselines. Reads stream (memory stays flat on a large
/// centre). Audited as one read of the centre's observations.
pub async fn replay(
    db: &Db,
    viewer: &Viewer,
    base: &Thresholds,
    draft_overrides: &str,
    days: u32,
    today: NaiveDate,
) -> Result<Replay> {
    only_centre_staff(viewer)?;
    if !(1..=90).contains(&days) {
        return Err(Error::invalid("days", "err-lab-days"));
    }
    let started = std::time::Instant::now();
    let (tz, live_overrides) = centre(db, viewer.health_centre_id).await?;
    let live = base
        .with_overrides(&live_overrides)
        .unwrap_or_else(|_| base.clone());
    let draft = base
        .with_overrides(draft_overrides)
        .map_err(|e| Error::invalid_with("rules", "err-lab-rules", vec![("why", e)]))?;
    let from = today - Duration::days(i64::from(days) - 1);
    let local_midnight = |d: NaiveDate| -> DateTime<Utc> {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight")))
    };
    let window_start = local_midnight(from);
    let read_from = window_start - Duration::days(WARM_UP_DAYS);
    let read_to = local_midnight(today + Duration::days(1));
    type Row = (
        i64,
        DateTime<Utc>,
        Option<f64>,
        Option<i32>,
        String,
        bool,
        Option<NaiveDate>,
    );
    let sql = "SELECT o.person_id, o.observed_at, o.temperature_c, o.spo2, o.symptoms, o.urgent, p.onset_date
               FROM observations o JOIN persons p ON p.id = o.person_id
               WHERE p.health_centre_id = $1 AND o.observed_at >= $2 AND o.observed_at < $3
               ORDER BY o.person_id, o.observed_at, o.id";
    // Rows are read here and replayed on worker threads, a run of whole people per chunk
    // (the replay of one person needs only their own readings), so reading and replaying
    // overlap and use every core; the workers' tallies are added up at the end.
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let mut senders = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Row>>(4);
        senders.push(tx);
        let (live, draft) = (live.clone(), draft.clone());
        handles.push(tokio::task::spawn_blocking(move || {
            let mut rp = Replayer::new(&[&live, &draft]);
            while let Some(chunk) = rx.blocking_recv() {
                for (person, at, temp, spo2, symptoms, urgent, onset) in chunk {
                    let (yes_no, choices) = trend::split_symptoms(&symptoms);
                    let r = Reading {
                        at,
                        temperature: temp,
                        spo2,
                        urgent,
                        urgent_signs: &[],
                        symptoms: &yes_no,
                        choices: &choices,
                    };
                    rp.feed(
                        person,
                        &r,
                        at.with_timezone(&tz).date_naive(),
                        onset,
                        at >= window_start,
                    );
                }
            }
            let Replayer {
                tallies,
                readings,
                people,
                ..
            } = rp;
            (tallies, readings, people)
        }));
    }
    const CHUNK: usize = 8192;
    let read = async {
        let mut chunk: Vec<Row> = Vec::with_capacity(CHUNK);
        let mut next = 0usize;
        with_db!(db, p => {
            let mut rows = sqlx::query_as::<_, Row>(sql)
                .bind(viewer.health_centre_id)
                .bind(read_from)
                .bind(read_to)
                .fetch(p);
            while let Some(row) = rows.try_next().await? {
                if chunk.len() >= CHUNK && chunk.last().is_some_and(|l| l.0 != row.0) {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    senders[next % workers].send(full).await.map_err(|_| Error::Internal("a replay worker stopped".into()))?;
                    next += 1;
                }
                chunk.push(row);
            }
        });
        if !chunk.is_empty() {
            senders[next % workers]
                .send(chunk)
                .await
                .map_err(|_| Error::Internal("a replay worker stopped".into()))?;
        }
        Ok::<(), Error>(())
    };
    let read_result = read.await;
    drop(senders);
    let mut rp = Replayer::new(&[&live, &draft]);
    for h in handles {
        let (tallies, readings, people) = h
            .await
            .map_err(|_| Error::Internal("a replay worker failed".into()))?;
        let mut part = Replayer::new(&[&live, &draft]);
        part.tallies = tallies;
        part.readings = readings;
        part.people = people;
        rp.merge(part);
    }
    read_result?;
    // Who differs, earliest gain first.
    let (l, d) = (&rp.tallies[0], &rp.tallies[1]);
    let mut ids: Vec<i64> = l.first.keys().chain(d.first.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut list: Vec<PersonDiff> = ids
        .into_iter()
        .filter_map(|p| {
            let (lf, df) = (l.first.get(&p), d.first.get(&p));
            let earlier_hours = match (lf, df) {
                (Some(a), Some(b)) => Some((a.at - b.at).num_minutes() as f64 / 60.0),
                _ => None,
            };
            let same = lf.map(|f| (f.at, f.reasons.iter().map(|r| r.0).collect::<Vec<_>>()))
                == df.map(|f| (f.at, f.reasons.iter().map(|r| r.0).collect::<Vec<_>>()));
            (!same).then(|| PersonDiff {
                person_id: p,
                live: lf.cloned(),
                draft: df.cloned(),
                earlier_hours,
            })
        })
        .collect();
    // Gains first (largest first, then draft-only), then losses.
    let rank = |x: &PersonDiff| -> (u8, i64) {
        match (&x.live, &x.draft, x.earlier_hours) {
            (_, _, Some(h)) if h > 0.0 => (0, -(h as i64)),
            (None, Some(_), _) => (1, 0),
            (_, _, Some(h)) => (2, -(h as i64)),
            _ => (3, 0),
        }
    };
    list.sort_by_key(|x| (rank(x), x.person_id));
    let differing = list.len();
    list.truncate(MAX_LISTED);
    let mut both: Vec<f64> = crate::rules::lab::lead_hours(l, d)
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    let out = Replay {
        from,
        to: today,
        people: rp.people,
        readings: rp.readings,
        live: figures(l, from, today),
        draft: figures(d, from, today),
        people_list: list,
        differing,
        median_earlier_hours: crate::rules::lab::median(&mut both),
        elapsed: started.elapsed(),
    };
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "rules.replay", "health_centre", Some(viewer.health_centre_id), None).await?;
        tx.commit().await?;
    });
    Ok(out)
}

/// One activated version of a centre's rule overrides.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RuleVersion {
    pub version: i32,
    pub rules: String,
    pub note: String,
    pub activated_by: i64,
    pub activated_at: DateTime<Utc>,
}

/// Activates `overrides` (a JSON object of rule keys, validated against `base`) as the
/// centre's next version: written to `rule_versions` and `health_centres.rules` in one
/// transaction, audited. Returns the new version number. Answers recorded after the commit
/// use it.
pub async fn activate(
    db: &Db,
    viewer: &Viewer,
    base: &Thresholds,
    overrides: &str,
    note: &str,
) -> Result<i32> {
    only_centre_staff(viewer)?;
    base.with_overrides(overrides)
        .map_err(|e| Error::invalid_with("rules", "err-lab-rules", vec![("why", e)]))?;
    let note = note.trim();
    if note.is_empty() || note.chars().count() > 500 {
        return Err(Error::invalid("note", "err-lab-note"));
    }
    // Stored normalised: the keys and values as a JSON object.
    let value: serde_json::Value = serde_json::from_str(if overrides.trim().is_empty() {
        "{}"
    } else {
        overrides
    })
    .map_err(|e| Error::invalid_with("rules", "err-lab-rules", vec![("why", e.to_string())]))?;
    let stored = value.to_string();
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let version: i32 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM rule_versions WHERE health_centre_id = $1")
            .bind(viewer.health_centre_id).fetch_one(&mut *tx).await?;
        sqlx::query("INSERT INTO rule_versions (health_centre_id, version, rules, note, activated_by, activated_at)
                     VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(viewer.health_centre_id).bind(version).bind(&stored).bind(note)
            .bind(viewer.staff_id).bind(t).execute(&mut *tx).await?;
        sqlx::query("UPDATE health_centres SET rules = $1 WHERE id = $2")
            .bind(&stored).bind(viewer.health_centre_id).execute(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "rules.activate", "health_centre",
              Some(viewer.health_centre_id), Some(&format!("version {version}"))).await?;
        tx.commit().await?;
        Ok(version)
    })
}

/// The centre's versions, newest first.
pub async fn versions(db: &Db, viewer: &Viewer) -> Result<Vec<RuleVersion>> {
    only_centre_staff(viewer)?;
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT version, rules, note, activated_by, activated_at FROM rule_versions
         WHERE health_centre_id = $1 ORDER BY version DESC")
        .bind(viewer.health_centre_id).fetch_all(p).await?))
}

/// The version in force at the end of local day `day` (None: the shipped rules, no
/// override activated from the lab yet).
pub async fn in_force(db: &Db, viewer: &Viewer, day: NaiveDate) -> Result<Option<RuleVersion>> {
    only_centre_staff(viewer)?;
    let (tz, _) = centre(db, viewer.health_centre_id).await?;
    let next = day + Duration::days(1);
    let end = tz
        .from_local_datetime(&next.and_hms_opt(0, 0, 0).expect("midnight"))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&next.and_hms_opt(0, 0, 0).expect("midnight")));
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT version, rules, note, activated_by, activated_at FROM rule_versions
         WHERE health_centre_id = $1 AND activated_at < $2 ORDER BY version DESC LIMIT 1")
        .bind(viewer.health_centre_id).bind(end).fetch_optional(p).await?))
}
