//! The statistics tables (see `crate::stats` for what is counted and ARCHITECTURE.md,
//! "Statistics", for how they stay current).
//!
//! * [`refresh`] — the job: re-derives the sources the triggers marked dirty, in batches,
//!   each in one transaction: subtract what a source contributed before, add what it
//!   contributes now, forget the mark (only the version it saw).
//! * [`rebuild`] / [`recount`] — the same figures from the raw rows alone (`mimamori stats
//!   rebuild`), and a recount in memory that the tests compare with the tables.
//! * [`figures`] — what the statistics pages and publication documents read: sums over
//!   `stats_daily` for an area and a period. No person-level row is ever read here.
//!
//! Reading raw rows here is the product's own work (no viewer): only counts leave.
use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::{
    Db, Error, Result,
    access::{Role, Viewer},
    db::{BeginWrite, now},
    stats::{self, Cell, Facts, Measure, PersonRows},
    store::id_list,
    with_db,
};

mod figures;
mod published;
mod reports;

pub use figures::*;
pub use published::*;
pub use reports::*;

/// Rows per multi-row statement (well under SQLite's 32,766 bound parameters).
const CHUNK: usize = 1000;

type PersonRow = (
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<NaiveDate>,
    NaiveDate,
    NaiveDate,
    bool,
    Option<NaiveDate>,
    Option<NaiveDate>,
    DateTime<Utc>,
    String,
);

/// Raw rows of the persons matching `cond` (an SQL condition on `id` / `person_id`, written
/// by this module from ids it read), ordered by id.
macro_rules! load_people {
    ($exec:expr, $ids:expr) => {{
        let ids: &str = $ids;
        let people: Vec<PersonRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, health_centre_id, monitoring_type, municipality, sex, date_of_birth,
                    observation_start, observation_end, merged_into IS NOT NULL, onset_date,
                    reception_date, created_at, residence_kind
             FROM persons WHERE id IN ({ids}) ORDER BY id"
        )))
        .fetch_all(&mut *$exec)
        .await?;
        let reports: Vec<PersonReport> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT person_id, created_at, report_type, severity, death_date
                 FROM occurrence_reports WHERE person_id IN ({ids})"
            )))
            .fetch_all(&mut *$exec)
            .await?;
        let tests: Vec<(i64, NaiveDate, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT person_id, specimen_date, result FROM person_tests WHERE person_id IN ({ids})"
        )))
        .fetch_all(&mut *$exec)
        .await?;
        let severities: Vec<(i64, NaiveDate, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT person_id, from_date, level FROM person_severities WHERE person_id IN ({ids})"
        )))
        .fetch_all(&mut *$exec)
        .await?;
        let residences: Vec<(i64, NaiveDate, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT person_id, from_date, kind FROM person_residences WHERE person_id IN ({ids})"
        )))
        .fetch_all(&mut *$exec)
        .await?;
        let admissions: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT person_id, data FROM person_sections WHERE section = 'admission' AND person_id IN ({ids})"
        )))
        .fetch_all(&mut *$exec)
        .await?;
        let escalations: Vec<(i64, DateTime<Utc>, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT person_id, opened_at, priority FROM escalations WHERE person_id IN ({ids})"
        )))
        .fetch_all(&mut *$exec)
        .await?;
        assemble(
            people,
            reports,
            tests,
            severities,
            residences,
            admissions,
            escalations,
        )
    }};
}

/// person id and the report's (created_at, type, severity, death date).
type PersonReport = (
    i64,
    DateTime<Utc>,
    String,
    Option<String>,
    Option<NaiveDate>,
);

fn assemble(
    people: Vec<PersonRow>,
    reports: Vec<PersonReport>,
    tests: Vec<(i64, NaiveDate, String)>,
    severities: Vec<(i64, NaiveDate, String)>,
    residences: Vec<(i64, NaiveDate, String)>,
    admissions: Vec<(i64, String)>,
    escalations: Vec<(i64, DateTime<Utc>, String)>,
) -> Vec<PersonRows> {
    let mut by_id: HashMap<i64, PersonRows> = HashMap::with_capacity(people.len());
    let mut order = Vec::with_capacity(people.len());
    for p in people {
        order.push(p.0);
        by_id.insert(
            p.0,
            PersonRows {
                id: p.0,
                centre: p.1,
                monitoring_type: p.2,
                municipality: p.3,
                sex: p.4,
                date_of_birth: p.5,
                observation_start: p.6,
                observation_end: p.7,
                merged: p.8,
                onset_date: p.9,
                reception_date: p.10,
                created_at: p.11,
                residence_kind: p.12,
                ..Default::default()
            },
        );
    }
    for r in reports {
        if let Some(p) = by_id.get_mut(&r.0) {
            p.reports.push((r.1, r.2, r.3, r.4));
        }
    }
    for t in tests {
        if let Some(p) = by_id.get_mut(&t.0) {
            p.tests.push((t.1, t.2));
        }
    }
    for s in severities {
        if let Some(p) = by_id.get_mut(&s.0) {
            p.severities.push((s.1, s.2));
        }
    }
    for r in residences {
        if let Some(p) = by_id.get_mut(&r.0) {
            p.residences.push((r.1, r.2));
        }
    }
    for (id, data) in admissions {
        if let Some(p) = by_id.get_mut(&id) {
            p.died_on = serde_json::from_str::<serde_json::Value>(&data)
                .ok()
                .and_then(|v| v.get("died_on")?.as_str()?.parse().ok());
        }
    }
    for e in escalations {
        if let Some(p) = by_id.get_mut(&e.0) {
            p.escalations.push((e.1, e.2));
        }
    }
    order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect()
}

type CountRow = (i64, i64, NaiveDate, String, i64);

/// Adds `sums` to `stats_daily` (one upsert per chunk).
macro_rules! add_sums {
    ($tx:expr, $sums:expr) => {{
        let cells: Vec<(&Cell, &i64)> = $sums.iter().filter(|(_, n)| **n != 0).collect();
        for chunk in cells.chunks(CHUNK) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO stats_daily (measure, day, health_centre_id, dim, value, n) ",
            );
            q.push_values(chunk, |mut b, (c, n)| {
                b.push_bind(c.measure.as_str())
                    .push_bind(c.day)
                    .push_bind(c.centre)
                    .push_bind(c.dim)
                    .push_bind(c.value.as_str())
                    .push_bind(**n);
            });
            q.push(
                " ON CONFLICT (measure, dim, day, health_centre_id, value) DO UPDATE SET n = stats_daily.n + excluded.n",
            );
            q.build().execute(&mut *$tx).await?;
        }
    }};
}

macro_rules! put_sources {
    ($tx:expr, $rows:expr) => {{
        let rows: &[(&str, i64, String)] = $rows;
        for chunk in rows.chunks(CHUNK) {
            let mut q = sqlx::QueryBuilder::new("INSERT INTO stats_sources (kind, id, facts) ");
            q.push_values(chunk, |mut b, (k, id, f)| {
                b.push_bind(*k).push_bind(*id).push_bind(f.as_str());
            });
            q.push(" ON CONFLICT (kind, id) DO UPDATE SET facts = excluded.facts");
            q.build().execute(&mut *$tx).await?;
        }
    }};
}

/// One pass of the statistics job: re-derives up to `limit` dirty sources. Returns how many.
pub async fn refresh(db: &Db, limit: i64) -> Result<usize> {
    let lock = match db {
        Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        Db::Sqlite(_) => "",
    };
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let marks: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT kind, id, v FROM stats_dirty ORDER BY kind, id LIMIT $1{lock}")))
            .bind(limit).fetch_all(&mut *tx).await?;
        if marks.is_empty() {
            sqlx::query("UPDATE stats_meta SET refreshed_at = $1, behind = FALSE").bind(now()).execute(&mut *tx).await?;
            tx.commit().await?;
            return Ok(0);
        }
        let person_ids: Vec<i64> = marks.iter().filter(|m| m.0 == "p").map(|m| m.1).collect();
        let count_ids: Vec<i64> = marks.iter().filter(|m| m.0 == "d").map(|m| m.1).collect();
        let mut new: HashMap<(&str, i64), Facts> = HashMap::new();
        if !person_ids.is_empty() {
            let people = load_people!(tx, &id_list(&person_ids));
            for p in &people {
                new.insert(("p", p.id), stats::derive(p));
            }
        }
        if !count_ids.is_empty() {
            let rows: Vec<CountRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT id, health_centre_id, day, age_band, n FROM daily_counts WHERE id IN ({})",
                id_list(&count_ids))))
                .fetch_all(&mut *tx).await?;
            for r in rows {
                new.insert(("d", r.0), stats::derive_count(r.1, r.2, &r.3, r.4));
            }
        }
        let mut old: Vec<(String, i64, String)> = Vec::new();
        for (kind, ids) in [("p", &person_ids), ("d", &count_ids)] {
            if ids.is_empty() {
                continue;
            }
            let rows: Vec<(String, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT kind, id, facts FROM stats_sources WHERE kind = $1 AND id IN ({})", id_list(ids))))
                .bind(kind).fetch_all(&mut *tx).await?;
            old.extend(rows);
        }
        let mut sums: HashMap<Cell, i64> = HashMap::new();
        for (_, _, facts) in &old {
            let f: Facts = serde_json::from_str(facts)
                .map_err(|e| Error::Internal(format!("stats_sources: {e}")))?;
            f.add_to(&mut sums, -1);
        }
        for f in new.values() {
            f.add_to(&mut sums, 1);
        }
        add_sums!(tx, sums);
        let rows: Vec<(&str, i64, String)> = new
            .iter()
            .map(|((k, id), f)| (*k, *id, serde_json::to_string(f).unwrap_or_default()))
            .collect();
        put_sources!(tx, &rows);
        // Sources gone (a deleted daily-count row): forget what they added.
        for (kind, ids) in [("p", &person_ids), ("d", &count_ids)] {
            let gone: Vec<i64> = ids.iter().copied().filter(|id| !new.contains_key(&(kind, *id))).collect();
            if !gone.is_empty() {
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM stats_sources WHERE kind = $1 AND id IN ({})", id_list(&gone))))
                    .bind(kind).execute(&mut *tx).await?;
            }
        }
        for chunk in marks.chunks(CHUNK) {
            let mut q = sqlx::QueryBuilder::new("DELETE FROM stats_dirty WHERE (kind, id, v) IN (VALUES ");
            let mut sep = q.separated(", ");
            for (k, id, v) in chunk {
                sep.push("(");
                sep.push_bind_unseparated(k.as_str());
                sep.push_unseparated(", ");
                sep.push_bind_unseparated(*id);
                sep.push_unseparated(", ");
                sep.push_bind_unseparated(*v);
                sep.push_unseparated(")");
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE stats_meta SET refreshed_at = $1, behind = $2")
            .bind(now()).bind(marks.len() as i64 >= limit).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(marks.len())
    })
}

/// When the statistics job last ran and whether it left changes for its next pass (what the
/// statistics page shows as "as of"): one row, so the page never scans the marks.
pub async fn freshness(db: &Db) -> Result<(Option<DateTime<Utc>>, bool)> {
    Ok(
        with_db!(db, p => sqlx::query_as("SELECT refreshed_at, behind FROM stats_meta WHERE one = 1").fetch_one(p).await?),
    )
}

/// Re-counts check-ins due and answered per day and centre from `from` on (the job does the
/// last days on every pass; a rebuild all of them). A check-in is due once it is closed or
/// its day has come; answered when answered.
pub async fn recount_answers(db: &Db, from: NaiveDate) -> Result<()> {
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query("DELETE FROM stats_answers WHERE day >= $1").bind(from).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO stats_answers (day, health_centre_id, due, answered)
             SELECT c.local_date, p.health_centre_id, COUNT(*),
                    SUM(CASE WHEN c.status = 'answered' THEN 1 ELSE 0 END)
             FROM checkins c JOIN persons p ON p.id = c.person_id
             WHERE c.local_date >= $1 AND c.status <> 'cancelled'
             GROUP BY c.local_date, p.health_centre_id")
            .bind(from).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// Ids per rebuild batch.
const BATCH: i64 = 5000;

/// Everything every source contributes now, summed in memory from the raw rows — the
/// reference the tables must equal. `progress` is told (done, total) persons.
pub async fn recount(db: &Db, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<HashMap<Cell, i64>> {
    let mut sums = HashMap::new();
    walk(db, progress, &mut |_, _, f: &Facts| f.add_to(&mut sums, 1)).await?;
    sums.retain(|_, n| *n != 0);
    Ok(sums)
}

/// Calls `each(kind, id, facts)` for every source, in id batches.
async fn walk(
    db: &Db,
    progress: &(dyn Fn(u64, u64) + Sync),
    each: &mut (dyn FnMut(&'static str, i64, &Facts) + Send),
) -> Result<()> {
    with_db!(db, pool => {
        let (lo, hi, total): (Option<i64>, Option<i64>, i64) =
            sqlx::query_as("SELECT MIN(id), MAX(id), COUNT(*) FROM persons").fetch_one(pool).await?;
        let mut done = 0u64;
        if let (Some(lo), Some(hi)) = (lo, hi) {
            let mut a = lo;
            while a <= hi {
                let b = a + BATCH - 1;
                let mut conn = pool.acquire().await?;
                let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM persons WHERE id BETWEEN $1 AND $2")
                    .bind(a).bind(b).fetch_all(&mut *conn).await?;
                if !ids.is_empty() {
                    let people = load_people!(conn, &id_list(&ids));
                    for p in &people {
                        each("p", p.id, &stats::derive(p));
                    }
                    done += ids.len() as u64;
                    progress(done, total as u64);
                }
                a = b + 1;
            }
        }
        let rows: Vec<CountRow> = sqlx::query_as("SELECT id, health_centre_id, day, age_band, n FROM daily_counts")
            .fetch_all(pool).await?;
        for r in rows {
            each("d", r.0, &stats::derive_count(r.1, r.2, &r.3, r.4));
        }
        Ok(())
    })
}

/// What a rebuild did.
#[derive(Debug, Clone, Serialize)]
pub struct Rebuilt {
    pub sources: u64,
    pub cells: u64,
}

/// Recomputes every statistics table from the raw rows (`mimamori stats rebuild`): derived
/// first (reads only), then written in one transaction, so readers see the old figures
/// until the new ones are complete. Marks made meanwhile stay for the job.
pub async fn rebuild(db: &Db, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<Rebuilt> {
    let started = now();
    let mut sums: HashMap<Cell, i64> = HashMap::new();
    let mut sources: Vec<(&'static str, i64, String)> = Vec::new();
    walk(db, progress, &mut |k, id, f: &Facts| {
        f.add_to(&mut sums, 1);
        sources.push((k, id, serde_json::to_string(f).unwrap_or_default()));
    })
    .await?;
    let first_day = sqlx_min_day(db).await?;
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        // Marks older than the walk are answered by it.
        let _ = started;
        sqlx::query("DELETE FROM stats_daily").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM stats_sources").execute(&mut *tx).await?;
        add_sums!(tx, sums);
        let rows: Vec<(&str, i64, String)> = sources.iter().map(|(k, i, f)| (*k, *i, f.clone())).collect();
        put_sources!(tx, &rows);
        tx.commit().await?;
        Ok::<(), Error>(())
    })?;
    if let Some(d) = first_day {
        recount_answers(db, d).await?;
    }
    Ok(Rebuilt {
        sources: sources.len() as u64,
        cells: sums.len() as u64,
    })
}

async fn sqlx_min_day(db: &Db) -> Result<Option<NaiveDate>> {
    Ok(
        with_db!(db, p => sqlx::query_scalar("SELECT MIN(local_date) FROM checkins").fetch_one(p).await?),
    )
}

/// The whole of `stats_daily` without zero rows (for the tests' comparison with [`recount`]).
pub async fn table(db: &Db) -> Result<HashMap<Cell, i64>> {
    let rows: Vec<(String, NaiveDate, i64, String, String, i64)> = with_db!(db, p => sqlx::query_as(
        "SELECT measure, day, health_centre_id, dim, value, n FROM stats_daily WHERE n <> 0").fetch_all(p).await?);
    rows.into_iter()
        .map(|(m, day, centre, dim, value, n)| {
            let measure =
                Measure::parse(&m).ok_or_else(|| Error::Internal(format!("measure {m}")))?;
            let dim = stats::DIMS
                .iter()
                .find(|d| **d == dim)
                .copied()
                .ok_or_else(|| Error::Internal(format!("dim {dim}")))?;
            Ok((
                Cell {
                    measure,
                    day,
                    centre,
                    dim,
                    value,
                },
                n,
            ))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Areas: who may see which figures.

/// The health centres whose figures a staff member may see: their own (health centre), their
/// prefecture's (prefecture), those that granted them (analysis centre), all (ministry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Area {
    All,
    Centres(Vec<i64>),
}

impl Area {
    fn condition(&self) -> String {
        match self {
            Area::All => "1 = 1".into(),
            Area::Centres(ids) if ids.is_empty() => "1 = 0".into(),
            Area::Centres(ids) => format!("health_centre_id IN ({})", id_list(ids)),
        }
    }
    pub fn contains(&self, centre: i64) -> bool {
        match self {
            Area::All => true,
            Area::Centres(ids) => ids.contains(&centre),
        }
    }
}

/// A health centre as the statistics pages name it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Centre {
    pub id: i64,
    pub name: String,
    pub name_en: String,
    pub prefecture: String,
    pub municipality: String,
    pub lg_code: String,
    pub suppress_max: i32,
}

/// The area of `viewer`; roles without statistics are refused.
pub async fn area_of(db: &Db, viewer: &Viewer) -> Result<Area> {
    let ids: Vec<i64> = match viewer.role {
        Role::MinistryAdmin => return Ok(Area::All),
        Role::HealthCentreStaff => vec![viewer.health_centre_id],
        Role::PrefectureStaff => with_db!(db, p => sqlx::query_scalar(
            "SELECT id FROM health_centres WHERE prefecture <> '' AND prefecture =
               (SELECT prefecture FROM health_centres WHERE id = $1) ORDER BY id")
            .bind(viewer.health_centre_id).fetch_all(p).await?),
        Role::Analyst => with_db!(db, p => sqlx::query_scalar(
            "SELECT health_centre_id FROM stats_grants WHERE organisation_id = $1 ORDER BY health_centre_id")
            .bind(viewer.organisation_id.unwrap_or(-1)).fetch_all(p).await?),
        _ => {
            return Err(Error::Forbidden(
                "statistics are for health centres, prefectures, analysis centres and the ministry",
            ));
        }
    };
    Ok(Area::Centres(ids))
}

/// The centres of an area, by prefecture and name.
pub async fn centres(db: &Db, area: &Area) -> Result<Vec<Centre>> {
    Ok(
        with_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, name, name_en, prefecture, municipality, lg_code, suppress_max FROM health_centres
         WHERE {} ORDER BY prefecture, name, id", area.condition().replace("health_centre_id", "id"))))
        .fetch_all(p).await?),
    )
}
