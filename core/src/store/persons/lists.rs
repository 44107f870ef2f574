//! The console's line lists and search [健康観察の状況別一覧], scoped to the viewer.
use super::*;

/// The line lists of the console [健康観察の状況別一覧].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    All,
    /// An open urgent escalation.
    Urgent,
    /// A temperature ≥ 37.5 °C or any symptom in the last 24 hours.
    Symptomatic,
    NonReporting,
    /// A failed channel or an opt-out.
    Unreachable,
    /// Under observation with no open escalation.
    OnTrack,
    EndingToday,
    Ended,
}

impl List {
    pub const ALL: [List; 8] = [
        List::All,
        List::Urgent,
        List::Symptomatic,
        List::NonReporting,
        List::Unreachable,
        List::OnTrack,
        List::EndingToday,
        List::Ended,
    ];

    pub fn parse(s: &str) -> List {
        List::ALL
            .into_iter()
            .find(|l| l.key() == s)
            .unwrap_or(List::All)
    }

    pub fn key(self) -> &'static str {
        match self {
            List::All => "all",
            List::Urgent => "urgent",
            List::Symptomatic => "symptomatic",
            List::NonReporting => "non_reporting",
            List::Unreachable => "unreachable",
            List::OnTrack => "on_track",
            List::EndingToday => "ending_today",
            List::Ended => "ended",
        }
    }

    /// SQL condition on `p`; `$1` = today's local date, `$2` = 24 hours ago.
    fn condition(self) -> &'static str {
        match self {
            List::All => "1 = 1",
            List::Urgent => "EXISTS (SELECT 1 FROM escalations e WHERE e.person_id = p.id AND e.status <> 'resolved' AND e.priority = 'urgent')",
            List::Symptomatic => "p.status = 'observing' AND EXISTS (SELECT 1 FROM observations o WHERE o.person_id = p.id AND o.observed_at >= $2
                                  AND (o.temperature_c >= 37.5 OR o.symptoms LIKE '%true%' OR o.urgent = TRUE))",
            List::NonReporting => "EXISTS (SELECT 1 FROM escalations e WHERE e.person_id = p.id AND e.status <> 'resolved' AND e.reason = 'non_reporting')",
            List::Unreachable => "(p.status = 'opted_out' OR EXISTS (SELECT 1 FROM escalations e WHERE e.person_id = p.id AND e.status <> 'resolved' AND e.reason = 'unreachable'))",
            List::OnTrack => "p.status = 'observing' AND p.observation_end >= $1 AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.person_id = p.id AND e.status <> 'resolved')",
            List::EndingToday => "p.status = 'observing' AND p.observation_end = $1",
            List::Ended => "(p.status = 'ended' OR p.observation_end < $1)",
        }
    }
}

/// What was typed in the person list's search box, and its filters.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// A name or kana prefix (width and kana variants folded), a phone number, or an id.
    pub q: String,
    /// patient or contact (empty: both).
    pub monitoring_type: String,
}

impl Search {
    /// The extra condition and its values (after the list's `$1`, `$2`): a name-key range,
    /// a phone, an id — only those the text can be.
    fn condition(&self) -> (String, Vec<SearchValue>) {
        let mut parts = Vec::new();
        let mut values = Vec::new();
        let mut n = 3;
        let q = self.q.trim();
        if !q.is_empty() {
            let mut any = Vec::new();
            let key = crate::domain::kana_key(q);
            if !key.is_empty() {
                any.push(format!(
                    "(p.name_key >= ${a} AND p.name_key < ${b}) OR (p.name_norm >= ${a} AND p.name_norm < ${b})",
                    a = n,
                    b = n + 1
                ));
                values.push(SearchValue::Text(key.clone()));
                values.push(SearchValue::Text(format!("{key}\u{10FFFF}")));
                n += 2;
            }
            if let Ok(ph) = Phone::parse("q", q) {
                any.push(format!("p.phone = ${n}"));
                values.push(SearchValue::Text(ph.as_str().to_string()));
                n += 1;
            }
            if q.len() <= 12
                && let Ok(id) = q.parse::<i64>()
            {
                any.push(format!("p.id = ${n}"));
                values.push(SearchValue::Int(id));
                n += 1;
            }
            if any.is_empty() {
                any.push("1 = 0".into());
            }
            parts.push(format!("({})", any.join(" OR ")));
        }
        if matches!(self.monitoring_type.as_str(), "patient" | "contact") {
            parts.push(format!("p.monitoring_type = ${n}"));
            values.push(SearchValue::Text(self.monitoring_type.clone()));
        }
        if parts.is_empty() {
            ("1 = 1".into(), values)
        } else {
            (parts.join(" AND "), values)
        }
    }
}

/// Binds the search values after the list's two.
macro_rules! bind_search {
    ($q:expr, $values:expr) => {{
        let mut q = $q;
        for v in $values {
            q = match v {
                SearchValue::Text(t) => q.bind(t.clone()),
                SearchValue::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

/// Search results are counted up to this many; a total above it means "more than this".
pub const COUNT_CAP: i64 = 1000;

/// People on one line list matching `search` that `viewer` may see, newest first, and how
/// many there are (at most [`COUNT_CAP`] + 1). Audited as one list read.
pub async fn search(
    db: &Db,
    viewer: &Viewer,
    which: List,
    today: NaiveDate,
    search: &Search,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Person>, i64)> {
    let (cond, values) = search.condition();
    let n = values.len() + 3;
    let sql = format!(
        "SELECT {PERSON_COLUMNS} FROM persons p WHERE {} AND {} AND {cond} ORDER BY p.id DESC LIMIT ${n} OFFSET ${}",
        viewer.row_condition(),
        which.condition(),
        n + 1
    );
    // Counting stops past the cap: "more than 1,000" is all a list needs, and counting every
    // match of a broad search (a common surname in a million) costs more than the page.
    let count_sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM persons p WHERE {} AND {} AND {cond} LIMIT {}) c",
        viewer.row_condition(),
        which.condition(),
        COUNT_CAP + 1
    );
    let since = now() - chrono::Duration::hours(24);
    let rows = with_db!(db, pool => {
        let q = sqlx::query_as::<_, Person>(sqlx::AssertSqlSafe(sql.as_str())).bind(today).bind(since);
        bind_search!(q, &values).bind(limit).bind(offset).persistent(false).fetch_all(pool).await?
    });
    let total: i64 = with_db!(db, pool => {
        let q = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.as_str())).bind(today).bind(since);
        bind_search!(q, &values).persistent(false).fetch_one(pool).await?
    });
    with_db!(db, pool => audit(pool, Actor::Staff(viewer.staff_id), "person.search", "health_centre", Some(viewer.health_centre_id), None).await)?;
    Ok((visible(rows, viewer), total))
}

/// People on one line list that `viewer` may see (their row scope), newest first.
/// Audited as one list read.
pub async fn list_by(
    db: &Db,
    viewer: &Viewer,
    which: List,
    today: NaiveDate,
    limit: i64,
    offset: i64,
) -> Result<Vec<Person>> {
    let sql = format!(
        "SELECT {PERSON_COLUMNS} FROM persons p WHERE {} AND {} ORDER BY p.id DESC LIMIT $3 OFFSET $4",
        viewer.row_condition(),
        which.condition()
    );
    let since = now() - chrono::Duration::hours(24);
    let rows = with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(today).bind(since).bind(limit).bind(offset).persistent(false).fetch_all(pool).await?);
    with_db!(db, pool => audit(pool, Actor::Staff(viewer.staff_id), "person.list", "health_centre", Some(viewer.health_centre_id), None).await)?;
    Ok(visible(rows, viewer))
}

/// The people under observation `viewer` may see, most worrying first: an open urgent
/// escalation, then high (not reporting, unreachable, fever), then the rest — over the whole
/// list, not one page. The landing page of a follow-up contractor.
pub async fn most_worrying(
    db: &Db,
    viewer: &Viewer,
    today: NaiveDate,
    limit: i64,
    offset: i64,
) -> Result<Vec<Person>> {
    let sql = format!(
        "SELECT {PERSON_COLUMNS} FROM persons p
         WHERE {} AND p.status = 'observing' AND p.observation_end >= $1
         ORDER BY COALESCE((SELECT MIN(CASE e.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 ELSE 2 END)
                            FROM escalations e WHERE e.person_id = p.id AND e.status <> 'resolved'), 3), p.id
         LIMIT $2 OFFSET $3",
        viewer.row_condition()
    );
    let rows = with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(today).bind(limit).bind(offset).persistent(false).fetch_all(pool).await?);
    with_db!(db, pool => audit(pool, Actor::Staff(viewer.staff_id), "person.list", "health_centre", Some(viewer.health_centre_id), None).await)?;
    Ok(visible(rows, viewer))
}

/// How many people on a line list `viewer` may see.
pub async fn count_by(db: &Db, viewer: &Viewer, which: List, today: NaiveDate) -> Result<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM persons p WHERE {} AND {}",
        viewer.row_condition(),
        which.condition()
    );
    let since = now() - chrono::Duration::hours(24);
    Ok(
        with_db!(db, pool => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(today).bind(since).persistent(false).fetch_one(pool).await?),
    )
}

/// Today's check-ins that are due so far, and how many of them were answered.
pub async fn answer_rate(db: &Db, health_centre_id: i64, today: NaiveDate) -> Result<(i64, i64)> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN c.status = 'answered' THEN 1 ELSE 0 END), 0)
         FROM checkins c JOIN persons p ON p.id = c.person_id
         WHERE p.health_centre_id = $1 AND c.local_date = $2 AND c.due_at <= $3")
        .bind(health_centre_id).bind(today).bind(now()).fetch_one(pool).await?))
}

/// One line of the line-list export: the basic information [個人基本情報] and where the
/// person stands in observation.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct ExportRow {
    pub id: i64,
    pub name: String,
    pub name_kana: Option<String>,
    pub sex: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub municipality: Option<String>,
    pub monitoring_type: String,
    pub status: String,
    pub residence_kind: String,
    pub channel: String,
    pub observation_start: NaiveDate,
    pub observation_end: NaiveDate,
    pub health_centre_id: i64,
}

/// Up to `limit` people of the viewer's line list with ids after `after` (a keyset page: an
/// export of any size is read page by page, and can resume from the last id it wrote).
/// Needs read access to basic information; every person sent is audited (`person.export`)
/// in the transaction that reads them.
pub async fn export_page(
    db: &Db,
    viewer: &Viewer,
    after: i64,
    limit: i64,
    ip: Option<&str>,
) -> Result<Vec<ExportRow>> {
    if !viewer.may(FieldGroup::Basic, Action::Read) {
        return Err(Error::Forbidden(
            "your role may not read people's basic information",
        ));
    }
    let sql = format!(
        "SELECT p.id, p.name, p.name_kana, p.sex, p.date_of_birth, p.phone, p.email, p.municipality,
                p.monitoring_type, p.status, p.residence_kind, p.channel, p.observation_start,
                p.observation_end, p.health_centre_id
         FROM persons p WHERE p.id > $1 AND p.merged_into IS NULL AND {}
         ORDER BY p.id LIMIT $2",
        viewer.row_condition()
    );
    let actor = Actor::Staff(viewer.staff_id);
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let rows: Vec<ExportRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(after).bind(limit).fetch_all(&mut *tx).await?;
        let audit: Vec<crate::store::audit::NewAuditRow<'_>> =
            rows.iter().map(|r| (actor, "person.export", "person", Some(r.id), ip)).collect();
        for chunk in audit.chunks(500) {
            crate::store::audit::audit_many(&mut *tx, chunk).await?;
        }
        tx.commit().await?;
        Ok(rows)
    })
}
