//! Grants to analysis centres and the counts-only daily report [日次報告].
use super::*;

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
