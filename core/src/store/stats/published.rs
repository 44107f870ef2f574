//! Open data: one row per published case, read in pages by id (memory stays flat however
//! many cases; a page is one indexed range query).
use super::*;

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
