//! Reading the figures: sums over `stats_daily` for an area and a period (no person-level
//! row is read here).
use super::*;

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
