//! Follow-up phone calls made by people (a contractor, a nurse): the outcome of each call,
//! reached or not. Part of the health-observation group of the access matrix: whoever may
//! write a person's observations may record a call; reads and writes are audited in the same
//! transaction.
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    Db, Error, Result,
    access::{Access, Action, FieldGroup, Viewer},
    db::{BeginWrite, now},
    store::{Actor, audit},
    with_db,
};

pub const OUTCOMES: &[&str] = &["reached", "no_answer", "busy", "wrong_number"];

/// One recorded call.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Followup {
    pub id: i64,
    pub outcome: String,
    pub note: Option<String>,
    pub staff_name: String,
    pub at: DateTime<Utc>,
}

/// Records that `viewer` phoned person `person_id`, with the outcome and an optional note.
pub async fn record(
    db: &Db,
    viewer: &Viewer,
    person_id: i64,
    outcome: &str,
    note: &str,
) -> Result<i64> {
    if !OUTCOMES.contains(&outcome) {
        return Err(Error::invalid_with(
            "outcome",
            "err-choose-call-outcome",
            vec![("options", OUTCOMES.join(", "))],
        ));
    }
    if note.chars().count() > 2000 {
        return Err(Error::invalid("note", "err-at-most-2000-characters"));
    }
    crate::store::guard::check(
        db,
        Access::Staff(viewer),
        person_id,
        FieldGroup::HealthObservation,
        Action::Write,
    )
    .await?;
    let note = Some(note.trim()).filter(|n| !n.is_empty());
    let t = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO phone_followups (person_id, staff_id, outcome, note, at) VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(person_id).bind(viewer.staff_id).bind(outcome).bind(note).bind(t).fetch_one(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "followup.create", "person", Some(person_id), None).await?;
        tx.commit().await?;
        Ok(id)
    })
}

/// The calls recorded for a person, newest first: scope and right checked for `access`, the
/// read audited.
pub async fn list(db: &Db, access: Access<'_>, person_id: i64) -> Result<Vec<Followup>> {
    crate::store::guard::read_records(
        db,
        access,
        person_id,
        FieldGroup::HealthObservation,
        "followup.list",
        "SELECT f.id, f.outcome, f.note, s.display_name AS staff_name, f.at
         FROM phone_followups f JOIN staff s ON s.id = f.staff_id
         WHERE f.person_id = $1 ORDER BY f.at DESC, f.id DESC LIMIT 200",
        None,
    )
    .await
}
