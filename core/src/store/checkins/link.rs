//! What the person's signed link and the call engine read about a check-in: no name, no
//! contact details.
use super::*;
use crate::db::On;

/// What the patient page behind a signed link needs: no name, no contact details.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkContext {
    pub checkin_id: i64,
    pub status: String,
    pub person_id: i64,
    pub language: String,
    pub monitoring_type: String,
    pub health_centre_name: String,
    /// The name an English call reads (empty: "your health centre").
    pub health_centre_name_en: String,
    /// Calls to this person are read slower and wait longer for keys.
    pub slow_speech: bool,
    pub health_centre_phone: String,
    /// The channel of the latest SMS or e-mail sent for this check-in — what carried the
    /// link (`None`: no link was sent, e.g. the simulator or a call).
    pub link_channel: Option<String>,
    /// The person's name, for the short form a shared family phone needs
    /// ([`crate::domain::short_name`]); never logged.
    pub person_name: String,
    /// The local day this check-in is for.
    pub local_date: NaiveDate,
}

impl LinkContext {
    /// The centre's name as a call in `lang` reads it: an English voice cannot read
    /// Japanese, so English calls use `name_en` or "your health centre".
    pub fn centre_name_for(&self, lang: crate::domain::Lang) -> &str {
        match lang {
            crate::domain::Lang::Ja => &self.health_centre_name,
            crate::domain::Lang::En if !self.health_centre_name_en.trim().is_empty() => {
                &self.health_centre_name_en
            }
            crate::domain::Lang::En => "your health centre",
        }
    }

    /// The observation source of an answer through the link: `sms` or `email` by what
    /// carried it, `web` otherwise.
    pub fn link_source(&self) -> &'static str {
        match self.link_channel.as_deref() {
            Some("sms") => "sms",
            Some("email") => "email",
            _ => "web",
        }
    }
}

/// Another member of a household sharing one phone whose check-in of the same day is still
/// open: after one member's answer, the page walks on to the next.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HouseholdMember {
    pub checkin_id: i64,
    pub person_name: String,
    pub deadline_at: DateTime<Utc>,
}

/// The open check-ins of the same local day of the other people with the same phone number
/// (and centre) as `checkin_id`'s person, oldest person first.
pub async fn household_open(db: &Db, checkin_id: i64) -> Result<Vec<HouseholdMember>> {
    Ok(with_db!(db, p => sqlx::query_as(
        concat!("SELECT o.id AS checkin_id, q.name AS person_name, o.deadline_at
         FROM checkins c JOIN persons p ON p.id = c.person_id
         JOIN persons q ON q.phone = p.phone AND q.health_centre_id + 0 = p.health_centre_id AND q.id <> p.id
         JOIN checkins o ON o.person_id = q.id AND o.local_date = c.local_date
         WHERE c.id = $1 AND p.phone IS NOT NULL AND p.phone <> ''
           AND o.status IN ", crate::open_checkin_statuses!(), "
         ORDER BY q.id, o.slot LIMIT 10"))
        .bind(checkin_id).fetch_all(p).await?))
}

/// The page after an answer, in one read: the link's context, whether the answer was
/// urgent (an urgent sign, or an urgent rule that fired since; `None`: not answered) and whether anyone
/// else shares the person's phone (only then are the household's open check-ins read).
///
/// Same-phone searches say `q.health_centre_id + 0`: the phone index alone finds the few
/// people with a number; with the centre's index as well, PostgreSQL (on statistics not yet
/// refreshed after a day's registrations) ANDed it with every person of the centre — 60,000
/// index entries read for each answer page, two thirds of the database's time at peak.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DoneContext {
    #[sqlx(flatten)]
    pub link: LinkContext,
    pub urgent: Option<bool>,
    pub shared_phone: bool,
}

/// The columns and tables of the page after an answer ([`done_contexts`]); a `WHERE` on
/// `c.id` follows.
macro_rules! done_select {
    () => {
        "SELECT c.id AS checkin_id, c.status, c.person_id, p.language, p.monitoring_type, p.slow_speech,
                h.name AS health_centre_name, h.name_en AS health_centre_name_en, h.phone AS health_centre_phone,
                NULL AS link_channel, p.name AS person_name, c.local_date,
                (SELECT o.urgent OR EXISTS (
                    SELECT 1 FROM escalation_events v JOIN escalations e ON e.id = v.escalation_id
                    WHERE v.person_id = o.person_id AND v.kind = 'triggered' AND e.priority = 'urgent'
                      AND v.at >= o.created_at)
                 FROM observations o WHERE o.checkin_id = c.id) AS urgent,
                (p.phone IS NOT NULL AND p.phone <> '' AND EXISTS (
                    SELECT 1 FROM persons q WHERE q.phone = p.phone
                      AND q.health_centre_id + 0 = p.health_centre_id AND q.id <> p.id)) AS shared_phone
         FROM checkins c JOIN persons p ON p.id = c.person_id JOIN health_centres h ON h.id = p.health_centre_id "
    };
}

/// [`link_context`]'s columns and tables; a `WHERE` on `c.id` follows.
macro_rules! link_select {
    () => {
        "SELECT c.id AS checkin_id, c.status, c.person_id, p.language, p.monitoring_type, p.slow_speech,
                h.name AS health_centre_name, h.name_en AS health_centre_name_en, h.phone AS health_centre_phone,
                (SELECT a.channel FROM contact_attempts a WHERE a.checkin_id = c.id AND a.channel IN ('sms', 'email')
                 ORDER BY a.id DESC LIMIT 1) AS link_channel,
                p.name AS person_name, c.local_date
         FROM checkins c JOIN persons p ON p.id = c.person_id JOIN health_centres h ON h.id = p.health_centre_id "
    };
}

pub async fn link_context(db: &Db, checkin_id: i64) -> Result<LinkContext> {
    with_db!(db, p => sqlx::query_as(concat!(link_select!(), "WHERE c.id = $1"))
        .bind(checkin_id).fetch_optional(p).await?)
    .ok_or(Error::NotFound("check-in"))
}

/// [`link_context`] of several check-ins in one query (the patient lane's gathered reads,
/// [`crate::link_reads`]); unknown ids are left out, the order is not kept. On a pool or
/// on the reader's kept connection ([`crate::db::Kept`]).
pub async fn link_contexts<'a>(
    on: impl Into<On<'a>>,
    checkin_ids: &[i64],
) -> Result<Vec<LinkContext>> {
    many(
        on.into(),
        checkin_ids,
        concat!(link_select!(), "WHERE c.id = ANY($1)"),
        concat!(
            link_select!(),
            "WHERE c.id IN (SELECT value FROM json_each($1))"
        ),
    )
    .await
}

/// Who saw their page after the answer, for the audit log: a check-in no longer open whose
/// answer is recorded — the page the link shows then (its urgency, and the household's
/// members when the phone is shared); any other read leads elsewhere (back to the form, or
/// the "closed" page, which shows nothing of the person). `d`: [`done_select!`]'s rows;
/// `$asked`: the ids asked for, one row each (a page read twice at once is audited twice),
/// joined to `d` by `$on`.
macro_rules! done_shown {
    ($asked:literal, $on:literal) => {
        concat!(
            "SELECT $2, 'person', d.person_id, 'checkin.done', 'person', d.person_id, NULL FROM ",
            $asked,
            " JOIN d ON ",
            $on,
            " WHERE d.status NOT IN ",
            crate::open_checkin_statuses!(),
            " AND d.urgent IS NOT NULL"
        )
    };
}

/// What the page after an answer needs, for several check-ins in one query (the link pages'
/// gathered reads, as [`link_contexts`]), each page it
/// will show audited as its person's own read (`checkin.done`, once per id asked, see
/// `done_shown!`) in the
/// same statement (PostgreSQL: a data-modifying `WITH`) or transaction (SQLite, through the
/// file's write gate): the read and its audit row commit together, with no round trip and
/// no commit of their own for the audit writer.
pub async fn done_contexts<'a>(
    on: impl Into<On<'a>>,
    checkin_ids: &[i64],
) -> Result<Vec<DoneContext>> {
    const PG: &str = concat!(
        "WITH d AS (",
        done_select!(),
        "WHERE c.id = ANY($1)),
         aud AS (INSERT INTO audit_log (at, actor_kind, actor_id, action, target_kind, target_id, ip) ",
        done_shown!("unnest($1::bigint[]) AS r(id)", "d.checkin_id = r.id"),
        ") SELECT * FROM d"
    );
    const SQLITE_AUDIT: &str = concat!(
        "INSERT INTO audit_log (at, actor_kind, actor_id, action, target_kind, target_id, ip)
         WITH d AS (",
        done_select!(),
        "WHERE c.id IN (SELECT value FROM json_each($1))) ",
        done_shown!("json_each($1) AS r", "d.checkin_id = r.value")
    );
    if checkin_ids.is_empty() {
        return Ok(Vec::new());
    }
    let t = crate::db::now();
    Ok(match on.into() {
        On::Pg(c) => {
            sqlx::query_as(PG)
                .bind(checkin_ids)
                .bind(t)
                .fetch_all(c)
                .await?
        }
        On::Pool(Db::Postgres(p)) => {
            sqlx::query_as(PG)
                .bind(checkin_ids)
                .bind(t)
                .fetch_all(p)
                .await?
        }
        On::Pool(Db::Sqlite(p)) => {
            let json = serde_json::to_string(checkin_ids)
                .map_err(|e| Error::Internal(format!("check-in ids: {e}")))?;
            let mut tx = p.begin_write().await?;
            sqlx::query(SQLITE_AUDIT)
                .bind(&json)
                .bind(t)
                .execute(&mut *tx)
                .await?;
            let rows = sqlx::query_as(concat!(
                done_select!(),
                "WHERE c.id IN (SELECT value FROM json_each($1))"
            ))
            .bind(&json)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            rows
        }
    })
}

/// Rows of `pg` (ids as one array) or `sqlite` (ids as one JSON array) for `ids`: one
/// statement text whatever the number of ids, so each is prepared once per connection.
async fn many<T>(on: On<'_>, ids: &[i64], pg: &'static str, sqlite: &'static str) -> Result<Vec<T>>
where
    T: Send
        + Unpin
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match on {
        On::Pg(c) => sqlx::query_as(pg).bind(ids).fetch_all(c).await?,
        On::Pool(Db::Postgres(p)) => sqlx::query_as(pg).bind(ids).fetch_all(p).await?,
        On::Pool(Db::Sqlite(p)) => {
            let json = serde_json::to_string(ids)
                .map_err(|e| Error::Internal(format!("check-in ids: {e}")))?;
            sqlx::query_as(sqlite).bind(json).fetch_all(p).await?
        }
    })
}
