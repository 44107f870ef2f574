//! Merging two records of the same person (found by duplicate detection), field by field,
//! and undoing it. Health-centre staff merge; the user-authentication officer of the centre
//! can undo. Both steps are one transaction each and audited; a merge stores both records as
//! they were and the id of every row it moved, which is what makes it reversible.
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::db::BeginWrite;
use crate::{
    Db, Error, Result,
    access::{Access, Action, FieldGroup, Role, Viewer},
    db::now,
    store::{Actor, audit, escalations, persons},
    with_db,
};

/// The fields a merge can take from either record.
pub const FIELDS: &[&str] = &[
    "name",
    "name_kana",
    "phone",
    "email",
    "date_of_birth",
    "sex",
    "nationality",
    "prefecture_code",
    "municipality",
    "address",
    "occupation",
    "workplace",
    "emergency_contact",
];

/// Tables whose rows follow the person to the kept record.
const MOVED_TABLES: &[&str] = &[
    "observations",
    "person_tests",
    "person_severities",
    "person_residences",
    "person_behaviours",
    "occurrence_reports",
];

/// Which record each field comes from: field → "other" to take the merged record's value
/// (any field not named keeps the kept record's value).
pub type Choices = BTreeMap<String, String>;

/// Which rows a merge moved or closed, by table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Moved {
    pub rows: BTreeMap<String, Vec<i64>>,
    /// Contacts whose source case was the merged record.
    pub contacts: Vec<i64>,
    pub sections: Vec<String>,
    pub assignments: Vec<i64>,
    pub checkins_cancelled: Vec<i64>,
    pub escalations_resolved: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Merge {
    pub id: i64,
    pub kept_id: i64,
    pub merged_id: i64,
    pub choices: String,
    pub merged_at: DateTime<Utc>,
    pub undone_at: Option<DateTime<Utc>>,
}

/// Checks the choices name known fields and sources.
pub fn check_choices(choices: &Choices) -> Result<()> {
    let mut c = crate::error::Collect::default();
    for (k, v) in choices {
        if !FIELDS.contains(&k.as_str()) {
            c.push(
                "take",
                format!(
                    "'{k}' is not a field a merge can choose; use one of: {}",
                    FIELDS.join(", ")
                ),
            );
        } else if v != "other" && v != "this" {
            c.push("take", format!("'{k}': choose \"this\" or \"other\""));
        }
    }
    c.finish()
}

/// Merges record `other` into record `keep`. Both must be the viewer's health centre's own
/// (health-centre staff with write access to basic information).
pub async fn merge(
    db: &Db,
    viewer: &Viewer,
    keep: i64,
    other: i64,
    choices: &Choices,
    ip: Option<&str>,
) -> Result<i64> {
    check_choices(choices)?;
    if viewer.role != Role::HealthCentreStaff {
        return Err(Error::Forbidden("only health-centre staff merge records"));
    }
    if keep == other {
        return Err(Error::invalid(
            "other_id",
            "err-choose-a-different-record-to-merge-into-this-one",
        ));
    }
    for id in [keep, other] {
        crate::store::guard::check(
            db,
            Access::Staff(viewer),
            id,
            FieldGroup::Basic,
            Action::Write,
        )
        .await?;
    }
    let kept_before = persons::load(db, keep).await?;
    let other_before = persons::load(db, other).await?;
    if other_before.merged_into.is_some() || kept_before.merged_into.is_some() {
        return Err(Error::invalid(
            "other_id",
            "err-this-record-has-already-been-merged",
        ));
    }
    let t = now();
    let to_json =
        |p: &persons::Person| serde_json::to_string(p).map_err(|e| Error::Internal(e.to_string()));
    let (kb, ob) = (to_json(&kept_before)?, to_json(&other_before)?);
    let choices_json =
        serde_json::to_string(choices).map_err(|e| Error::Internal(e.to_string()))?;
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        for (field, from) in choices {
            if from == "other" {
                // `field` is one of FIELDS (checked above): safe to name in SQL.
                let sql = format!("UPDATE persons SET {field} = (SELECT {field} FROM persons WHERE id = $1) WHERE id = $2");
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(other).bind(keep).execute(&mut *tx).await?;
            }
        }
        let (name, kana): (String, Option<String>) = sqlx::query_as("SELECT name, name_kana FROM persons WHERE id = $1")
            .bind(keep).fetch_one(&mut *tx).await?;
        let key = crate::domain::kana_key(kana.as_deref().unwrap_or(&name));
        sqlx::query("UPDATE persons SET name_key = $1, name_norm = $2, updated_at = $3 WHERE id = $4")
            .bind(&key).bind(crate::domain::kana_key(&name)).bind(t).bind(keep).execute(&mut *tx).await?;
        let mut moved = Moved::default();
        for table in MOVED_TABLES {
            let sql = format!("UPDATE {table} SET person_id = $1 WHERE person_id = $2 RETURNING id");
            let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(keep).bind(other).fetch_all(&mut *tx).await?;
            moved.rows.insert(table.to_string(), ids);
        }
        moved.contacts = sqlx::query_scalar("UPDATE persons SET source_person_id = $1 WHERE source_person_id = $2 RETURNING id")
            .bind(keep).bind(other).fetch_all(&mut *tx).await?;
        moved.sections = sqlx::query_scalar(
            "UPDATE person_sections SET person_id = $1 WHERE person_id = $2
               AND section NOT IN (SELECT section FROM person_sections WHERE person_id = $1) RETURNING section")
            .bind(keep).bind(other).fetch_all(&mut *tx).await?;
        moved.assignments = sqlx::query_scalar(
            "INSERT INTO person_assignments (person_id, organisation_id, created_at)
             SELECT $1, organisation_id, $3 FROM person_assignments WHERE person_id = $2
             ON CONFLICT DO NOTHING RETURNING organisation_id")
            .bind(keep).bind(other).bind(t).fetch_all(&mut *tx).await?;
        moved.checkins_cancelled = sqlx::query_scalar(
            "UPDATE checkins SET status = 'cancelled', closed_at = $1, claim_token = NULL
             WHERE person_id = $2 AND status IN ('planned', 'sent') RETURNING id")
            .bind(t).bind(other).fetch_all(&mut *tx).await?;
        moved.escalations_resolved = sqlx::query_scalar(
            "UPDATE escalations SET status = 'resolved', updated_at = $1 WHERE person_id = $2 AND status <> 'resolved' RETURNING id")
            .bind(t).bind(other).fetch_all(&mut *tx).await?;
        let note = format!("merged into person {keep}");
        for e in &moved.escalations_resolved {
            sqlx::query(escalations::EVENT_SQL).bind(*e).bind(other).bind(viewer.staff_id).bind("resolved")
                .bind("merged").bind(&note).bind(t).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE persons SET status = 'ended', merged_into = $1, updated_at = $2 WHERE id = $3")
            .bind(keep).bind(t).bind(other).execute(&mut *tx).await?;
        let moved_json = serde_json::to_string(&moved).map_err(|e| Error::Internal(e.to_string()))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO person_merges (kept_id, merged_id, kept_before, merged_before, choices, moved, merged_by, merged_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id")
            .bind(keep).bind(other).bind(&kb).bind(&ob).bind(&choices_json).bind(&moved_json)
            .bind(viewer.staff_id).bind(t).fetch_one(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "person.merge", "person", Some(keep), ip).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "person.merged_away", "person", Some(other), ip).await?;
        tx.commit().await?;
        Ok(id)
    })
}

/// Undoes merge `id`: the moved rows go back, the kept record's fields and the merged
/// record's status are restored; the check-ins the merge cancelled are planned again while
/// their answer window lasts, and the escalations it closed are open again. Only the
/// user-authentication officer of the records' health centre.
pub async fn undo(db: &Db, viewer: &Viewer, id: i64, ip: Option<&str>) -> Result<()> {
    if viewer.role != Role::AuthOfficer {
        return Err(Error::Forbidden(
            "only the user-authentication officer undoes a merge",
        ));
    }
    type Row = (i64, i64, String, String, String, Option<DateTime<Utc>>, i64);
    let row: Option<Row> = with_db!(db, p => sqlx::query_as(
        "SELECT m.kept_id, m.merged_id, m.kept_before, m.merged_before, m.moved, m.undone_at, p.health_centre_id
         FROM person_merges m JOIN persons p ON p.id = m.kept_id WHERE m.id = $1")
        .bind(id).fetch_optional(p).await?);
    let Some((keep, other, kb, ob, moved, undone, centre)) = row else {
        return Err(Error::NotFound("merge"));
    };
    if centre != viewer.health_centre_id {
        return Err(Error::NotFound("merge"));
    }
    if undone.is_some() {
        return Err(Error::invalid(
            "merge",
            "err-this-merge-has-already-been-undone",
        ));
    }
    let parse = |s: &str| {
        serde_json::from_str::<serde_json::Value>(s).map_err(|e| Error::Internal(e.to_string()))
    };
    let (kb, ob) = (parse(&kb)?, parse(&ob)?);
    let moved: Moved = serde_json::from_str(&moved).map_err(|e| Error::Internal(e.to_string()))?;
    let t = now();
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().map(str::to_string);
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        for field in FIELDS {
            let sql = format!("UPDATE persons SET {field} = $1 WHERE id = $2");
            if *field == "date_of_birth" {
                let d: Option<NaiveDate> = text(&kb, field).and_then(|s| s.parse().ok());
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(d).bind(keep).execute(&mut *tx).await?;
            } else {
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(text(&kb, field)).bind(keep).execute(&mut *tx).await?;
            }
        }
        let name = text(&kb, "name").unwrap_or_default();
        let key = crate::domain::kana_key(text(&kb, "name_kana").as_deref().unwrap_or(&name));
        sqlx::query("UPDATE persons SET name_key = $1, name_norm = $2, updated_at = $3 WHERE id = $4")
            .bind(&key).bind(crate::domain::kana_key(&name)).bind(t).bind(keep).execute(&mut *tx).await?;
        // One statement per table; the table names are ours and the ids are integers.
        for (table, ids) in &moved.rows {
            if MOVED_TABLES.contains(&table.as_str()) && !ids.is_empty() {
                let sql = format!("UPDATE {table} SET person_id = $1 WHERE id IN ({})", crate::store::id_list(ids));
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(other).execute(&mut *tx).await?;
            }
        }
        if !moved.contacts.is_empty() {
            let sql = format!("UPDATE persons SET source_person_id = $1 WHERE id IN ({})", crate::store::id_list(&moved.contacts));
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(other).execute(&mut *tx).await?;
        }
        for s in &moved.sections {
            sqlx::query("UPDATE person_sections SET person_id = $1 WHERE person_id = $2 AND section = $3")
                .bind(other).bind(keep).bind(s).execute(&mut *tx).await?;
        }
        for o in &moved.assignments {
            sqlx::query("DELETE FROM person_assignments WHERE person_id = $1 AND organisation_id = $2")
                .bind(keep).bind(*o).execute(&mut *tx).await?;
        }
        // The merge closed the other record's open check-ins and escalations. Those still
        // inside their answer window are planned again (the dispatcher sends them); every
        // escalation the merge closed is open again, so an urgent one is not lost to a
        // mistaken merge — unless the same reason has been opened anew meanwhile.
        if !moved.checkins_cancelled.is_empty() {
            let sql = format!(
                "UPDATE checkins SET status = 'planned', closed_at = NULL
                 WHERE id IN ({}) AND status = 'cancelled' AND deadline_at > $1",
                crate::store::id_list(&moved.checkins_cancelled));
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(t).execute(&mut *tx).await?;
        }
        if !moved.escalations_resolved.is_empty() {
            let sql = format!(
                "UPDATE escalations SET status = 'open', updated_at = $1
                 WHERE id IN ({}) AND status = 'resolved' AND NOT EXISTS (
                   SELECT 1 FROM escalations e WHERE e.person_id = escalations.person_id
                     AND e.reason = escalations.reason AND e.status <> 'resolved')
                 RETURNING id",
                crate::store::id_list(&moved.escalations_resolved));
            let reopened: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(t).fetch_all(&mut *tx).await?;
            for e in reopened {
                sqlx::query(escalations::EVENT_SQL).bind(e).bind(other).bind(viewer.staff_id).bind("reopened")
                    .bind("merge_undone").bind("merge undone").bind(t).execute(&mut *tx).await?;
            }
        }
        sqlx::query("UPDATE persons SET status = $1, merged_into = NULL, updated_at = $2 WHERE id = $3")
            .bind(text(&ob, "status").unwrap_or_else(|| "observing".into())).bind(t).bind(other)
            .execute(&mut *tx).await?;
        sqlx::query("UPDATE person_merges SET undone_by = $1, undone_at = $2 WHERE id = $3")
            .bind(viewer.staff_id).bind(t).bind(id).execute(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "person.merge.undo", "person", Some(keep), ip).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// The merges of a health centre, newest first (for its officer).
pub async fn list(db: &Db, health_centre_id: i64) -> Result<Vec<Merge>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT m.id, m.kept_id, m.merged_id, m.choices, m.merged_at, m.undone_at
         FROM person_merges m JOIN persons p ON p.id = m.kept_id
         WHERE p.health_centre_id = $1 ORDER BY m.id DESC LIMIT 200")
        .bind(health_centre_id).fetch_all(p).await?))
}
