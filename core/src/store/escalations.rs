//! Escalations: a person who needs a human. One open row per person and reason; a new
//! trigger refreshes it (raising, never lowering, its priority). Every step — triggered,
//! acknowledged, note, action, resolved — is an `escalation_events` row and an audit row.
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{BeginWrite, WriteTx};
use crate::{
    Db, Error, Result,
    access::{Access, Action, FieldGroup, Role, Viewer},
    db::now,
    store::{Actor, audit},
    with_db,
};

/// The current open escalation of a person for a reason: (id, priority).
pub const FIND_OPEN_SQL: &str = "SELECT id, priority FROM escalations WHERE person_id = $1 AND reason = $2 AND status <> 'resolved'";

/// Opens or refreshes. $1 person, $2 reason, $3 priority, $4 now, $5 detail.
pub const UPSERT_SQL: &str =
    "INSERT INTO escalations (person_id, reason, priority, status, opened_at, updated_at, detail)
     VALUES ($1, $2, $3, 'open', $4, $4, $5)
     ON CONFLICT (person_id, reason) WHERE status <> 'resolved' DO UPDATE SET
       updated_at = $4, detail = $5,
       priority = CASE
         WHEN escalations.priority = 'urgent' OR $3 = 'urgent' THEN 'urgent'
         WHEN escalations.priority = 'high' OR $3 = 'high' THEN 'high'
         ELSE 'normal' END
     RETURNING id";

/// $1 escalation, $2 person, $3 staff, $4 kind, $5 action, $6 note, $7 now.
pub const EVENT_SQL: &str =
    "INSERT INTO escalation_events (escalation_id, person_id, staff_id, kind, action, note, at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// On-duty notification for an escalation of person `$3`: every on-duty staff member of
/// the person's health centre who can be reached. $1 escalation, $2 now.
const NOTIFY_PERSON_SQL: &str =
    "INSERT INTO notifications (escalation_id, staff_id, channel, status, attempts, created_at)
     SELECT $1, s.id, CASE WHEN s.phone IS NOT NULL THEN 'sms' ELSE 'email' END, 'pending', 0, $2
     FROM staff s WHERE s.health_centre_id = (SELECT health_centre_id FROM persons WHERE id = $3)
       AND s.on_duty = TRUE AND (s.phone IS NOT NULL OR s.email IS NOT NULL)";

/// What an escalation was raised for.
#[derive(Debug, Clone, Copy)]
pub struct Raise<'a> {
    pub person_id: i64,
    pub reason: &'a str,
    pub priority: crate::rules::Priority,
    /// What fired, for staff (values and ids, never names or answers).
    pub detail: &'a str,
    /// Who raised it (`System` for rules, workers and webhooks).
    pub actor: Actor,
}

/// What [`raise`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub escalation_id: i64,
    /// The on-duty staff were queued a notification (the escalation became urgent now).
    pub notified: bool,
}

/// **The one way an escalation is opened**, inside the caller's transaction: opens or
/// refreshes the person's open escalation for the reason (priority only rises), writes the
/// `triggered` timeline event and the audit row, and — when this makes it urgent — queues a
/// notification to every reachable on-duty staff member of the person's centre. Every path
/// (answers, missed and failed check-ins, call-back requests, opt-out, staff) comes here.
pub async fn raise<DB>(tx: &mut WriteTx<'_, DB>, r: Raise<'_>, at: DateTime<Utc>) -> Result<Raised>
where
    DB: sqlx::Database,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'q> DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> (i64, String): sqlx::FromRow<'q, DB::Row>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let urgent = r.priority == crate::rules::Priority::Urgent;
    let before: Option<(i64, String)> = sqlx::query_as(FIND_OPEN_SQL)
        .bind(r.person_id)
        .bind(r.reason)
        .fetch_optional(&mut **tx)
        .await?;
    let id: i64 = sqlx::query_scalar(UPSERT_SQL)
        .bind(r.person_id)
        .bind(r.reason)
        .bind(r.priority.as_str())
        .bind(at)
        .bind(r.detail)
        .fetch_one(&mut **tx)
        .await?;
    let staff = match r.actor {
        Actor::Staff(s) => Some(s),
        _ => None,
    };
    sqlx::query(EVENT_SQL)
        .bind(id)
        .bind(r.person_id)
        .bind(staff)
        .bind("triggered")
        .bind(r.reason)
        .bind(r.detail)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    let notified = urgent && before.as_ref().is_none_or(|(_, p)| p != "urgent");
    if notified {
        sqlx::query(NOTIFY_PERSON_SQL)
            .bind(id)
            .bind(at)
            .bind(r.person_id)
            .execute(&mut **tx)
            .await?;
    }
    audit(
        &mut **tx,
        r.actor,
        "escalation.open",
        "person",
        Some(r.person_id),
        None,
    )
    .await?;
    Ok(Raised {
        escalation_id: id,
        notified,
    })
}

/// [`raise`] in its own transaction.
pub async fn open(db: &Db, r: Raise<'_>) -> Result<Raised> {
    let t = now();
    let raised: Raised = with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let raised = raise(&mut tx, r, t).await?;
        tx.commit().await?;
        Ok::<_, Error>(raised)
    })?;
    if raised.notified {
        wake_alerts(db);
    }
    Ok(raised)
}

/// The channel on which PostgreSQL announces, at commit, that staff alerts were queued
/// (migration 0030's trigger on `notifications`).
pub const ALERT_CHANNEL: &str = "mimamori_alerts";

/// Wakes this process's alert worker (`workers::dispatch::run_alerts`) at once.
static ALERTS_QUEUED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Tells this process's alert worker that staff alerts were queued by a commit that has
/// happened. On PostgreSQL the database announces every queued alert to every process
/// ([`ALERT_CHANNEL`], [`listen_for_alerts`]), so this does nothing there; on SQLite (one
/// process) it is called after the commits that can queue alerts: the answer writer's
/// (an urgent answer), [`open`]'s, and the dispatcher's silence rule's. Other writers'
/// escalations (unreachable, opted out) are high, not urgent, and queue no alert.
pub fn wake_alerts(db: &Db) {
    if matches!(db, Db::Sqlite(_)) {
        ring();
    }
}

/// Wakes every alert worker waiting now (one per app; tests run several in a process), and
/// leaves a permit for one that is busy sending and waits next.
fn ring() {
    ALERTS_QUEUED.notify_waiters();
    ALERTS_QUEUED.notify_one();
}

/// Resolves when staff alerts were queued since the last call (or at once, if they were
/// queued while nobody waited).
pub async fn alerts_queued() {
    ALERTS_QUEUED.notified().await;
}

/// On PostgreSQL, for as long as the process runs: listens on [`ALERT_CHANNEL`] and wakes
/// the alert worker on each announcement, reconnecting (after a second) when the
/// connection is lost. Nothing on SQLite. Missed announcements cost nothing but time: the
/// worker still looks every `workers.alert_interval_ms`.
pub async fn listen_for_alerts(db: Db) {
    let Db::Postgres(pool) = db else { return };
    loop {
        let listened = async {
            let mut l = sqlx::postgres::PgListener::connect_with(&pool).await?;
            l.listen(ALERT_CHANNEL).await?;
            // Alerts queued before this connection listened are found by the next look.
            ring();
            loop {
                match l.try_recv().await? {
                    Some(_) => ring(),
                    None => return Ok::<(), sqlx::Error>(()),
                }
            }
        }
        .await;
        if let Err(e) = listened {
            tracing::warn!(error = %e, "listening for staff alerts failed; polling until it is back");
        }
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Escalation {
    pub id: i64,
    pub person_id: i64,
    pub reason: String,
    pub priority: String,
    pub status: String,
    pub detail: String,
    pub assigned_to: Option<i64>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "e.id, e.person_id, e.reason, e.priority, e.status, e.detail, e.assigned_to, e.opened_at, e.updated_at";

/// A person's open escalations, read through `access` (health-observation group).
pub async fn open_for_person(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
) -> Result<Vec<Escalation>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM escalations e WHERE e.person_id = $1 AND e.status <> 'resolved' ORDER BY e.id"
    );
    crate::store::guard::read_records(
        db,
        access,
        person_id,
        FieldGroup::HealthObservation,
        "escalation.list",
        &sql,
        None,
    )
    .await
}

/// The open escalations of several people (a page of a list already scoped and audited),
/// by person — one query for the page.
pub async fn open_for_people(
    db: &Db,
    viewer: &Viewer,
    person_ids: &[i64],
) -> Result<std::collections::HashMap<i64, Vec<Escalation>>> {
    let mut out: std::collections::HashMap<i64, Vec<Escalation>> = Default::default();
    if person_ids.is_empty() || !viewer.may(FieldGroup::HealthObservation, Action::Read) {
        return Ok(out);
    }
    let ids = crate::store::id_list(person_ids);
    // The scope is the viewer's condition, whatever ids are asked for.
    let sql = format!(
        "SELECT {COLUMNS} FROM escalations e JOIN persons p ON p.id = e.person_id
         WHERE e.person_id IN ({ids}) AND e.status <> 'resolved' AND {}
         ORDER BY e.person_id, e.id",
        viewer.row_condition()
    );
    let rows: Vec<Escalation> = with_db!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .persistent(false).fetch_all(p).await?);
    for e in rows {
        out.entry(e.person_id).or_default().push(e);
    }
    Ok(out)
}

/// Escalations are reviewed by the person's health centre: (centre, staff id) of `viewer`.
fn reviewer(viewer: &Viewer) -> Result<(i64, i64)> {
    if viewer.role != Role::HealthCentreStaff {
        return Err(Error::Forbidden(
            "only health-centre staff review escalations",
        ));
    }
    Ok((viewer.health_centre_id, viewer.staff_id))
}

/// One escalation of the viewer's health centre (others are not found): audited.
pub async fn get(db: &Db, viewer: &Viewer, id: i64) -> Result<Escalation> {
    let (centre, staff_id) = reviewer(viewer)?;
    let actor = Actor::Staff(staff_id);
    let sql = format!(
        "SELECT {COLUMNS} FROM escalations e JOIN persons p ON p.id = e.person_id
         WHERE e.id = $1 AND p.health_centre_id = $2"
    );
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let e: Option<Escalation> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id).bind(centre).fetch_optional(&mut *tx).await?;
        let e = e.ok_or(Error::NotFound("escalation"))?;
        audit(&mut *tx, actor, "escalation.view", "person", Some(e.person_id), None).await?;
        tx.commit().await?;
        Ok(e)
    })
}

/// Open urgent cases of the centre nobody has taken on yet: the review queue's live count.
pub async fn urgent_open(db: &Db, centre: i64) -> Result<i64> {
    Ok(with_db!(db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM escalations e JOIN persons p ON p.id = e.person_id
         WHERE p.health_centre_id = $1 AND e.status = 'open' AND e.priority = 'urgent'")
        .bind(centre).fetch_one(p).await?))
}

/// A row of the review queue.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct QueueRow {
    pub id: i64,
    pub person_id: i64,
    pub name: String,
    pub reason: String,
    pub priority: String,
    pub status: String,
    pub detail: String,
    pub assigned_name: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Narrows the review queue; empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter<'a> {
    pub reason: Option<&'a str>,
    /// Only people assigned to this outside body (contractor, lodging facility, …).
    pub organisation_id: Option<i64>,
    /// Only people whose current residence is of this kind.
    pub residence: Option<&'a str>,
}

/// Open escalations of a health centre, most urgent first, then oldest first. Audited as a
/// list read.
pub async fn queue(
    db: &Db,
    actor: Actor,
    health_centre_id: i64,
    f: &QueueFilter<'_>,
    limit: i64,
) -> Result<Vec<QueueRow>> {
    let rows = with_db!(db, p => sqlx::query_as(
        "SELECT e.id, e.person_id, p.name, e.reason, e.priority, e.status, e.detail, s.display_name AS assigned_name,
                e.opened_at, e.updated_at
         FROM escalations e JOIN persons p ON p.id = e.person_id LEFT JOIN staff s ON s.id = e.assigned_to
         WHERE p.health_centre_id = $1 AND e.status <> 'resolved' AND ($2 = '' OR e.reason = $2)
           AND ($3 = '' OR p.residence_kind = $3)
           AND ($4 = 0 OR EXISTS (SELECT 1 FROM person_assignments a WHERE a.person_id = p.id AND a.organisation_id = $4))
         ORDER BY CASE e.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, e.opened_at, e.id
         LIMIT $5")
        .bind(health_centre_id).bind(f.reason.unwrap_or("")).bind(f.residence.unwrap_or(""))
        .bind(f.organisation_id.unwrap_or(0)).bind(limit).fetch_all(p).await?);
    with_db!(db, p => audit(p, actor, "escalation.list", "health_centre", Some(health_centre_id), None).await)?;
    Ok(rows)
}

/// Open escalations by priority for a dashboard: (priority, count).
pub async fn counts(db: &Db, health_centre_id: i64) -> Result<Vec<(String, i64)>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT e.priority, COUNT(*) FROM escalations e JOIN persons p ON p.id = e.person_id
         WHERE p.health_centre_id = $1 AND e.status <> 'resolved' GROUP BY e.priority")
        .bind(health_centre_id).fetch_all(p).await?))
}

/// What staff can do with an escalation.
#[derive(Debug, Clone)]
pub enum Step {
    /// "I am on it."
    Acknowledge,
    Note(String),
    /// phoned | arranged_admission | advised | other, with an optional note.
    Action(String, String),
    /// Closes the case. An urgent or high one needs a recorded action — given here or
    /// recorded before — and the nurse's explicit confirmation: one click that records
    /// nothing cannot take an urgent case off the queue.
    Resolve {
        action: Option<String>,
        note: String,
        confirmed: bool,
    },
}

pub const ACTIONS: &[&str] = &["phoned", "arranged_admission", "advised", "other"];

/// How long the nurse who took a step can undo it.
pub const UNDO_MINUTES: i64 = 10;

fn known_action(a: &str) -> Result<()> {
    if ACTIONS.contains(&a) {
        Ok(())
    } else {
        Err(Error::invalid_with(
            "action",
            "err-choose-review-action",
            vec![("options", ACTIONS.join(", "))],
        ))
    }
}

/// Applies a step by `viewer` (health-centre staff) to escalation `id` of their centre
/// (others are not found). Audited and recorded on the person's timeline, in one transaction.
pub async fn step(db: &Db, viewer: &Viewer, id: i64, step: Step, ip: Option<&str>) -> Result<()> {
    let (centre, staff_id) = reviewer(viewer)?;
    let t = now();
    let (kind, action, note): (&str, Option<String>, Option<String>) = match &step {
        Step::Acknowledge => ("acknowledged", None, None),
        Step::Note(n) => ("note", None, Some(n.clone())),
        Step::Action(a, n) => {
            known_action(a)?;
            (
                "action",
                Some(a.clone()),
                Some(n.clone()).filter(|n| !n.trim().is_empty()),
            )
        }
        Step::Resolve { action, note, .. } => {
            if let Some(a) = action {
                known_action(a)?;
            }
            (
                "resolved",
                None,
                Some(note.clone()).filter(|n| !n.trim().is_empty()),
            )
        }
    };
    if matches!(step, Step::Note(ref n) if n.trim().is_empty()) {
        return Err(Error::invalid("note", "err-write-the-note"));
    }
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let row: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT e.person_id, e.status, e.priority FROM escalations e JOIN persons p ON p.id = e.person_id
             WHERE e.id = $1 AND p.health_centre_id = $2")
            .bind(id).bind(centre).fetch_optional(&mut *tx).await?;
        let Some((person_id, status, priority)) = row else { return Err(Error::NotFound("escalation")) };
        if status == "resolved" {
            return Err(Error::Conflict { field: "escalation" });
        }
        match &step {
            Step::Acknowledge => {
                sqlx::query("UPDATE escalations SET status = 'acknowledged', assigned_to = $1, updated_at = $2 WHERE id = $3")
                    .bind(staff_id).bind(t).bind(id).execute(&mut *tx).await?;
            }
            Step::Resolve { action, confirmed, .. } => {
                if matches!(priority.as_str(), "urgent" | "high") {
                    let acted: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM escalation_events WHERE escalation_id = $1 AND kind = 'action'")
                        .bind(id).fetch_one(&mut *tx).await?;
                    if acted == 0 && action.is_none() {
                        return Err(Error::invalid("action", "err-record-what-was-done-before-resolving-an-urgent"));
                    }
                    if !confirmed {
                        return Err(Error::invalid("confirm", "err-confirm-that-this-urgent-or-high-case-is"));
                    }
                }
                if let Some(a) = action {
                    sqlx::query(EVENT_SQL).bind(id).bind(person_id).bind(Some(staff_id)).bind("action").bind(Some(a.as_str())).bind(None::<&str>).bind(t)
                        .execute(&mut *tx).await?;
                    audit(&mut *tx, Actor::Staff(staff_id), "escalation.action", "person", Some(person_id), ip).await?;
                }
                sqlx::query("UPDATE escalations SET status = 'resolved', resolved_at = $1, updated_at = $1 WHERE id = $2")
                    .bind(t).bind(id).execute(&mut *tx).await?;
            }
            _ => {
                sqlx::query("UPDATE escalations SET updated_at = $1 WHERE id = $2").bind(t).bind(id).execute(&mut *tx).await?;
            }
        }
        sqlx::query(EVENT_SQL).bind(id).bind(person_id).bind(Some(staff_id)).bind(kind).bind(action).bind(note).bind(t)
            .execute(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(staff_id), &format!("escalation.{kind}"), "person", Some(person_id), ip).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// Undoes the last step `viewer` took on escalation `id`, within [`UNDO_MINUTES`]: a
/// resolve reopens the case (acknowledged again if it had been), an acknowledgement puts it
/// back to open and unassigned, an action or note is marked withdrawn. The step stays on the
/// timeline with an `undone` entry after it; audited. Returns the kind undone.
pub async fn undo(db: &Db, viewer: &Viewer, id: i64, ip: Option<&str>) -> Result<String> {
    let (centre, staff_id) = reviewer(viewer)?;
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT e.person_id, e.reason FROM escalations e JOIN persons p ON p.id = e.person_id
             WHERE e.id = $1 AND p.health_centre_id = $2")
            .bind(id).bind(centre).fetch_optional(&mut *tx).await?;
        let Some((person_id, reason)) = row else { return Err(Error::NotFound("escalation")) };
        let last: Option<(String, Option<i64>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT kind, staff_id, at FROM escalation_events WHERE escalation_id = $1 ORDER BY id DESC LIMIT 1")
            .bind(id).fetch_optional(&mut *tx).await?;
        let kind = match last {
            Some((kind, Some(by), at)) if by == staff_id && t - at <= chrono::Duration::minutes(UNDO_MINUTES)
                && matches!(kind.as_str(), "acknowledged" | "action" | "note" | "resolved") => kind,
            _ => return Err(Error::invalid("undo", "err-only-your-own-last-step-of-the-past-10-minutes")),
        };
        match kind.as_str() {
            "resolved" => {
                // Reopened only if no newer case for the same reason has opened meanwhile.
                let newer: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM escalations WHERE person_id = $1 AND reason = $2 AND status <> 'resolved'")
                    .bind(person_id).bind(&reason).fetch_one(&mut *tx).await?;
                if newer > 0 {
                    return Err(Error::Conflict { field: "escalation" });
                }
                let acknowledged: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM escalation_events WHERE escalation_id = $1 AND kind = 'acknowledged'")
                    .bind(id).fetch_one(&mut *tx).await?;
                let status = if acknowledged > 0 { "acknowledged" } else { "open" };
                sqlx::query("UPDATE escalations SET status = $1, resolved_at = NULL, updated_at = $2 WHERE id = $3")
                    .bind(status).bind(t).bind(id).execute(&mut *tx).await?;
            }
            "acknowledged" => {
                sqlx::query("UPDATE escalations SET status = 'open', assigned_to = NULL, updated_at = $1 WHERE id = $2")
                    .bind(t).bind(id).execute(&mut *tx).await?;
            }
            _ => {
                sqlx::query("UPDATE escalations SET updated_at = $1 WHERE id = $2").bind(t).bind(id).execute(&mut *tx).await?;
            }
        }
        sqlx::query(EVENT_SQL).bind(id).bind(person_id).bind(Some(staff_id)).bind("undone").bind(Some(kind.as_str())).bind(None::<&str>).bind(t)
            .execute(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(staff_id), "escalation.undo", "person", Some(person_id), ip).await?;
        tx.commit().await?;
        Ok(kind)
    })
}

/// One entry of a person's escalation timeline.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Event {
    pub escalation_id: i64,
    pub reason: String,
    pub kind: String,
    pub action: Option<String>,
    pub note: Option<String>,
    pub staff_name: Option<String>,
    pub at: DateTime<Utc>,
}

/// The review timeline of a person, newest first, read through `access`.
pub async fn timeline(db: &Db, access: Access<'_>, person_id: i64) -> Result<Vec<Event>> {
    crate::store::guard::read_records(
        db,
        access,
        person_id,
        FieldGroup::HealthObservation,
        "escalation.timeline",
        "SELECT v.escalation_id, e.reason, v.kind, v.action, v.note, s.display_name AS staff_name, v.at
         FROM escalation_events v JOIN escalations e ON e.id = v.escalation_id LEFT JOIN staff s ON s.id = v.staff_id
         WHERE v.person_id = $1 ORDER BY v.id DESC LIMIT 500",
        None,
    )
    .await
}

/// A staff notification waiting to be sent.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingNotification {
    pub id: i64,
    pub channel: String,
    pub staff_id: i64,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub person_id: i64,
    pub reason: String,
    pub attempts: i32,
}

/// Claims up to `limit` pending notifications for this worker (for a minute: a worker that
/// dies holding them leaves them to another) and returns them; two workers never get the
/// same one.
pub async fn pending_notifications(db: &Db, limit: i64) -> Result<Vec<PendingNotification>> {
    let t = now();
    let claim = super::dialect::claim_notifications(db);
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(claim.as_str()))
            .bind(t).bind(t + chrono::Duration::seconds(60)).bind(limit)
            .fetch_all(&mut *tx).await?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        // The claimed ids (integers from our own UPDATE, not input), read in one query.
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT n.id, n.channel, n.staff_id, s.phone, s.email, e.person_id, e.reason, n.attempts
             FROM notifications n JOIN staff s ON s.id = n.staff_id JOIN escalations e ON e.id = n.escalation_id
             WHERE n.id IN ({list}) ORDER BY n.id");
        let out: Vec<PendingNotification> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .persistent(false).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(out)
    })
}

/// Records the outcome of a notification; a failure is retried up to 3 times.
pub async fn notification_result(db: &Db, id: i64, error: Option<&str>) -> Result<()> {
    let t = now();
    with_db!(db, p => {
        match error {
            None => sqlx::query("UPDATE notifications SET status = 'sent', sent_at = $1, attempts = attempts + 1, claimed_until = NULL WHERE id = $2")
                .bind(t).bind(id).execute(p).await?,
            Some(e) => sqlx::query(
                "UPDATE notifications SET attempts = attempts + 1, error = $1, claimed_until = NULL,
                   status = CASE WHEN attempts + 1 >= 3 THEN 'failed' ELSE 'pending' END WHERE id = $2")
                .bind(e).bind(id).execute(p).await?,
        };
    });
    Ok(())
}
