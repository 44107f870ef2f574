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

// ---------------------------------------------------------------------------------------
// Reading the figures.

/// A sum of one measure on one day for one breakdown value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    pub measure: String,
    pub day: NaiveDate,
    pub dim: String,
    pub value: String,
    pub n: i64,
}

/// Daily sums of `measures` by `dims` over `area` from `from` to `to` (inclusive).
pub async fn series(
    db: &Db,
    area: &Area,
    measures: &[Measure],
    dims: &[&str],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Point>> {
    let m = measures
        .iter()
        .map(|m| format!("'{}'", m.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let d = dims
        .iter()
        .filter(|d| stats::DIMS.contains(d))
        .map(|d| format!("'{d}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT measure, day, dim, value, CAST(SUM(n) AS BIGINT) FROM stats_daily
         WHERE measure IN ({m}) AND dim IN ({d}) AND day BETWEEN $1 AND $2 AND {}
         GROUP BY measure, dim, day, value ORDER BY measure, dim, day, value",
        area.condition()
    );
    let rows: Vec<(String, NaiveDate, String, String, i64)> = with_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(from).bind(to).fetch_all(p).await?);
    Ok(rows
        .into_iter()
        .map(|(measure, day, dim, value, n)| Point {
            measure,
            day,
            dim,
            value,
            n,
        })
        .collect())
}

/// Sums of `measures` by `dim` over the whole period (tables by age band, sex, …).
pub async fn totals(
    db: &Db,
    area: &Area,
    measure: Measure,
    dim: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(String, i64)>> {
    if !stats::DIMS.contains(&dim) {
        return Err(Error::Internal(format!("no breakdown {dim}")));
    }
    let sql = format!(
        "SELECT value, CAST(SUM(n) AS BIGINT) FROM stats_daily
         WHERE measure = $1 AND dim = $2 AND day BETWEEN $3 AND $4 AND {}
         GROUP BY value ORDER BY value",
        area.condition()
    );
    Ok(
        with_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(measure.as_str()).bind(dim).bind(from).bind(to).fetch_all(p).await?),
    )
}

/// People under observation on each day of the period, by `dim` ('total', 'sev', 'res'):
/// Σ starts − Σ ends up to the day (`patients`: patients, else contacts).
pub async fn under_observation(
    db: &Db,
    area: &Area,
    patients: bool,
    dim: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, String, i64)>> {
    let (s, e) = if patients {
        (Measure::ObsStart, Measure::ObsEnd)
    } else {
        (Measure::ContactStart, Measure::ContactEnd)
    };
    let sql_before = format!(
        "SELECT value, CAST(SUM(CASE WHEN measure = $1 THEN n ELSE -n END) AS BIGINT) FROM stats_daily
         WHERE measure IN ($1, $2) AND dim = $3 AND day < $4 AND {} GROUP BY value",
        area.condition()
    );
    let base: Vec<(String, i64)> = with_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql_before.as_str()))
        .bind(s.as_str()).bind(e.as_str()).bind(dim).bind(from).fetch_all(p).await?);
    let points = series(db, area, &[s, e], &[dim], from, to).await?;
    let mut level: std::collections::BTreeMap<String, i64> = base.into_iter().collect();
    let mut out = Vec::new();
    let mut day = from;
    let mut i = 0;
    while day <= to {
        while i < points.len() && points[i].day < day {
            i += 1;
        }
        for p in points.iter().filter(|p| p.day == day) {
            let sign = if p.measure == s.as_str() { 1 } else { -1 };
            *level.entry(p.value.clone()).or_default() += sign * p.n;
        }
        for (v, n) in &level {
            out.push((day, v.clone(), *n));
        }
        day += Duration::days(1);
    }
    Ok(out)
}

/// Check-ins due and answered per day.
pub async fn answers(
    db: &Db,
    area: &Area,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, i64, i64)>> {
    let sql = format!(
        "SELECT day, CAST(SUM(due) AS BIGINT), CAST(SUM(answered) AS BIGINT) FROM stats_answers
         WHERE day BETWEEN $1 AND $2 AND {} GROUP BY day ORDER BY day",
        area.condition()
    );
    Ok(
        with_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(from).bind(to).fetch_all(p).await?),
    )
}

// ---------------------------------------------------------------------------------------
// Grants and the counts-only daily report.

/// A health centre's staff grants (or withdraws) its figures to an analysis centre.
pub async fn grant(db: &Db, viewer: &Viewer, organisation_id: i64, on: bool) -> Result<()> {
    if viewer.role != Role::HealthCentreStaff {
        return Err(Error::Forbidden("only a health centre grants its figures"));
    }
    let t = now();
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM organisations WHERE id = $1")
            .bind(organisation_id).fetch_optional(&mut *tx).await?;
        if kind.as_deref() != Some("analysis_centre") {
            return Err(Error::invalid("organisation_id", "err-not-an-analysis-centre"));
        }
        if on {
            sqlx::query("INSERT INTO stats_grants (organisation_id, health_centre_id, granted_by, created_at)
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .bind(organisation_id).bind(viewer.health_centre_id).bind(viewer.staff_id).bind(t)
                .execute(&mut *tx).await?;
        } else {
            sqlx::query("DELETE FROM stats_grants WHERE organisation_id = $1 AND health_centre_id = $2")
                .bind(organisation_id).bind(viewer.health_centre_id).execute(&mut *tx).await?;
        }
        crate::store::audit(&mut *tx, crate::store::Actor::Staff(viewer.staff_id),
            if on { "stats.grant" } else { "stats.revoke" }, "organisation", Some(organisation_id), None).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// Analysis centres, with whether `centre` grants them its figures.
pub async fn grants(db: &Db, centre: i64) -> Result<Vec<(i64, String, bool)>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT o.id, o.name, EXISTS (SELECT 1 FROM stats_grants g WHERE g.organisation_id = o.id AND g.health_centre_id = $1)
         FROM organisations o WHERE o.kind = 'analysis_centre' ORDER BY o.name, o.id")
        .bind(centre).fetch_all(p).await?))
}

/// One day's counts by age band from a medical institution (or health-centre staff on its
/// behalf, e.g. from a fax) — the daily report [日次報告]. Replaces what the same body entered
/// for that day; zeros may be left out.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
pub struct DailyCountInput {
    /// YYYY-MM-DD, not in the future.
    pub day: String,
    /// Age band code (u10, 10s … 80s, 90+, unknown) → number of positives.
    pub counts: std::collections::BTreeMap<String, String>,
    /// The health centre (medical institutions: theirs by default).
    pub health_centre_id: Option<i64>,
}

/// Saves a daily report; returns the day's total.
pub async fn put_daily_counts(
    db: &Db,
    viewer: &Viewer,
    input: &DailyCountInput,
    today: NaiveDate,
) -> Result<i64> {
    let (centre, org) = match viewer.role {
        Role::MedicalInstitution => (
            input.health_centre_id.unwrap_or(viewer.health_centre_id),
            viewer.organisation_id,
        ),
        Role::HealthCentreStaff => (viewer.health_centre_id, None),
        _ => {
            return Err(Error::Forbidden(
                "daily reports are entered by medical institutions and health centres",
            ));
        }
    };
    let mut c = crate::error::Collect::default();
    let day = match input.day.trim().parse::<NaiveDate>() {
        Ok(d) if d > today => {
            c.push("day", "err-the-date-is-in-the-future-check-it");
            None
        }
        Ok(d) => Some(d),
        Err(_) => {
            c.push(
                "day",
                "err-write-the-date-as-yyyy-mm-dd-for-example-2026-11",
            );
            None
        }
    };
    let mut counts = Vec::new();
    for (band, v) in &input.counts {
        if !stats::AGE_BANDS.contains(&band.as_str()) {
            c.push_with(
                "counts",
                "err-unknown-age-band",
                vec![("band", band.clone())],
            );
            continue;
        }
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match v.parse::<i64>() {
            Ok(n) if (0..=100_000).contains(&n) => counts.push((band.clone(), n)),
            _ => c.push_with(
                field_of(band),
                "err-count-must-be-a-whole-number",
                vec![("band", crate::stats::opendata::age_label(band).to_string())],
            ),
        }
    }
    c.finish()?;
    let day = day.expect("checked");
    // A medical institution reports to a centre of its own prefecture.
    let t = now();
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        if centre != viewer.health_centre_id {
            let same: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM health_centres a JOIN health_centres b ON a.prefecture = b.prefecture
                 WHERE a.id = $1 AND b.id = $2 AND a.prefecture <> '')")
                .bind(centre).bind(viewer.health_centre_id).fetch_one(&mut *tx).await?;
            if !same {
                return Err(Error::invalid("health_centre_id", "err-choose-a-health-centre-of-your-prefecture"));
            }
        }
        let org_cond = if org.is_some() { "organisation_id = $3" } else { "organisation_id IS NULL AND $3 IS NULL" };
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM daily_counts WHERE health_centre_id = $1 AND day = $2 AND {org_cond}")))
            .bind(centre).bind(day).bind(org).execute(&mut *tx).await?;
        let mut total = 0;
        for (band, n) in &counts {
            if *n == 0 {
                continue;
            }
            total += n;
            sqlx::query("INSERT INTO daily_counts (organisation_id, health_centre_id, day, age_band, n, entered_by, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(org).bind(centre).bind(day).bind(band).bind(n).bind(viewer.staff_id).bind(t)
                .execute(&mut *tx).await?;
        }
        crate::store::audit(&mut *tx, crate::store::Actor::Staff(viewer.staff_id), "daily_counts.put",
            "health_centre", Some(centre), None).await?;
        tx.commit().await?;
        Ok(total)
    })
}

/// The form field of an age band's count.
pub fn field_of(band: &str) -> &'static str {
    match band {
        "u10" => "count_u10",
        "10s" => "count_10s",
        "20s" => "count_20s",
        "30s" => "count_30s",
        "40s" => "count_40s",
        "50s" => "count_50s",
        "60s" => "count_60s",
        "70s" => "count_70s",
        "80s" => "count_80s",
        "90+" => "count_90",
        _ => "count_unknown",
    }
}

/// What a body entered for a day, by age band.
pub async fn daily_counts(
    db: &Db,
    viewer: &Viewer,
    centre: i64,
    day: NaiveDate,
) -> Result<Vec<(String, i64)>> {
    let org = (viewer.role == Role::MedicalInstitution)
        .then_some(viewer.organisation_id)
        .flatten();
    let org_cond = if org.is_some() {
        "organisation_id = $3"
    } else {
        "organisation_id IS NULL AND $3 IS NULL"
    };
    Ok(
        with_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT age_band, n FROM daily_counts WHERE health_centre_id = $1 AND day = $2 AND {org_cond} ORDER BY age_band")))
        .bind(centre).bind(day).bind(org).fetch_all(p).await?),
    )
}

// ---------------------------------------------------------------------------------------
// Open data: one row per published case, read in pages by id (memory stays flat however
// many cases; a page is one indexed range query).

/// What a published case row is made of — never a name, a date of birth (only the age band
/// is kept), an address or free text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedCase {
    pub id: i64,
    pub centre: i64,
    pub report_day: NaiveDate,
    pub onset_date: Option<NaiveDate>,
    pub residence_prefecture: Option<String>,
    pub residence_municipality: Option<String>,
    pub age_band: &'static str,
    pub sex: String,
    /// asymptomatic, mild, moderate, severe, dead or unknown.
    pub state: String,
    pub released: bool,
    pub repositive: bool,
}

type CaseRow = (
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<NaiveDate>,
    Option<NaiveDate>,
    Option<NaiveDate>,
    DateTime<Utc>,
    NaiveDate,
    String,
    Option<i64>,
    Option<DateTime<Utc>>,
    Option<String>,
    bool,
    bool,
);

/// The SELECT list of a published case page (also what the benchmark's bare `COPY` reads).
pub const CASE_COLUMNS: &str = "p.id, p.health_centre_id, p.prefecture_code, p.municipality, p.sex, p.date_of_birth,
       p.onset_date, p.reception_date, p.created_at, p.observation_end, p.residence_kind, p.previous_case_id,
       (SELECT MIN(r.created_at) FROM occurrence_reports r WHERE r.person_id = p.id),
       (SELECT s.level FROM person_severities s WHERE s.person_id = p.id ORDER BY s.from_date DESC, s.id DESC LIMIT 1),
       EXISTS (SELECT 1 FROM occurrence_reports r WHERE r.person_id = p.id AND r.report_type = 'deceased'),
       NOT EXISTS (SELECT 1 FROM occurrence_reports r WHERE r.person_id = p.id AND r.report_type <> 'asymptomatic')";

/// Up to `limit` published cases of `area` with ids after `after`, whose report day is in
/// `[from, to]`; returns them and the last id read (None when the area is exhausted).
pub async fn published_cases(
    db: &Db,
    area: &Area,
    after: i64,
    limit: i64,
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
) -> Result<(Vec<PublishedCase>, Option<i64>)> {
    let sql = format!(
        "SELECT {CASE_COLUMNS} FROM persons p
         WHERE p.id > $1 AND p.monitoring_type = 'patient' AND p.merged_into IS NULL AND {}
         ORDER BY p.id LIMIT $2",
        area.condition()
            .replace("health_centre_id", "p.health_centre_id")
    );
    let rows: Vec<CaseRow> = with_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(after).bind(limit).fetch_all(p).await?);
    let last = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.0))
        .flatten();
    let cases = rows
        .into_iter()
        .filter_map(|r| {
            let report_day =
                r.7.or(r.12.map(stats::local_day))
                    .unwrap_or_else(|| stats::local_day(r.8));
            if report_day < from || report_day > to {
                return None;
            }
            let dead = r.14;
            let state = if dead {
                "dead".to_string()
            } else if let Some(l) = &r.13 {
                match l.as_str() {
                    "moderate1" | "moderate2" => "moderate".into(),
                    other => other.to_string(),
                }
            } else if r.15 && r.12.is_some() {
                "asymptomatic".into()
            } else {
                "unknown".into()
            };
            Some(PublishedCase {
                id: r.0,
                centre: r.1,
                report_day,
                onset_date: r.6,
                residence_prefecture: r.2,
                residence_municipality: r.3,
                age_band: stats::age_band(r.5, report_day),
                sex: r.4.unwrap_or_default(),
                state,
                released: !dead && r.9 < today && r.10 != "hospital",
                repositive: r.11.is_some(),
            })
        })
        .collect();
    Ok((cases, last))
}

/// People tested per day and centre (the 検査実施人数 file).
pub async fn tested_per_day(
    db: &Db,
    area: &Area,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, i64, i64)>> {
    let sql = format!(
        "SELECT day, health_centre_id, CAST(SUM(n) AS BIGINT) FROM stats_daily
         WHERE measure = 'tested' AND dim = 'total' AND day BETWEEN $1 AND $2 AND {}
         GROUP BY day, health_centre_id ORDER BY day, health_centre_id",
        area.condition()
    );
    Ok(
        with_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(from).bind(to).fetch_all(p).await?),
    )
}

/// Records that `viewer` exported figures or a published file (`action`).
pub async fn audit_export(db: &Db, viewer: &Viewer, action: &str, ip: Option<&str>) -> Result<()> {
    with_db!(db, p => crate::store::audit(p, crate::store::Actor::Staff(viewer.staff_id), action, "export", None, ip).await)
}

/// A health centre sets how small a published count must be to be hidden (`max`: counts
/// 1..=max become `*`; 0 hides nothing; at most 20) and its local government code for open
/// data (5 or 6 digits; empty = the prefecture's). Health-centre staff of that centre only.
pub async fn set_publication(db: &Db, viewer: &Viewer, max: &str, lg_code: &str) -> Result<()> {
    if viewer.role != Role::HealthCentreStaff {
        return Err(Error::Forbidden(
            "only a health centre sets its publication rules",
        ));
    }
    let mut c = crate::error::Collect::default();
    let max = match max.trim().parse::<i32>() {
        Ok(n) if (0..=20).contains(&n) => n,
        _ => {
            c.push("suppress_max", "err-suppress-max-0-to-20");
            0
        }
    };
    let code = lg_code.trim();
    let code = if code.is_empty() {
        String::new()
    } else {
        match crate::stats::opendata::lg_code(code) {
            Some(c6) => c6,
            None => {
                c.push("lg_code", "err-lg-code-digits");
                String::new()
            }
        }
    };
    c.finish()?;
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query("UPDATE health_centres SET suppress_max = $1, lg_code = $2 WHERE id = $3")
            .bind(max).bind(&code).bind(viewer.health_centre_id).execute(&mut *tx).await?;
        crate::store::audit(&mut *tx, crate::store::Actor::Staff(viewer.staff_id), "stats.publication_rules",
            "health_centre", Some(viewer.health_centre_id), None).await?;
        tx.commit().await?;
        Ok(())
    })
}
