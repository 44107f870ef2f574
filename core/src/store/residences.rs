//! Where a person stays [居所], as a dated history. The latest entry is the person's current
//! residence (`persons.residence_kind`); a hospital stay marks the person `admitted`, so
//! planning skips them and today's unsent check-ins are cancelled, and leaving hospital puts
//! them back under observation with today's check-ins planned again.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::db::BeginWrite;
use crate::{
    Db, Result,
    access::{Access, Action, FieldGroup, Viewer},
    db::now,
    error::Collect,
    store::{Actor, audit, checkins, persons},
    with_db,
};

/// Residence kinds, in the order the console offers them.
pub const KINDS: &[&str] = &["home", "hospital", "lodging", "welfare", "other"];

/// A new residence entry as typed or sent to the API.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["kind"]))]
pub struct ResidenceInput {
    /// home, hospital, lodging, welfare or other.
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice(s, KINDS))]
    pub kind: String,
    /// The hospital or facility (free text, optional).
    #[schemars(length(max = 200))]
    pub place: String,
    /// YYYY-MM-DD, not in the future; default today.
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub from_date: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewResidence {
    pub kind: &'static str,
    pub place: Option<String>,
    pub from_date: NaiveDate,
}

impl ResidenceInput {
    /// Validates against `today` (the health centre's local date).
    pub fn parse(&self, today: NaiveDate) -> Result<NewResidence> {
        let mut c = Collect::default();
        let kind = KINDS.iter().copied().find(|k| *k == self.kind.trim());
        if kind.is_none() {
            c.push("kind", "err-choose-home-hospital-lodging-welfare-or-other");
        }
        let place = Some(self.place.trim().to_string()).filter(|p| !p.is_empty());
        if place.as_ref().is_some_and(|p| p.chars().count() > 200) {
            c.push("place", "err-use-at-most-200-characters");
        }
        let from_date = if self.from_date.trim().is_empty() {
            Some(today)
        } else {
            match NaiveDate::parse_from_str(self.from_date.trim(), "%Y-%m-%d") {
                Ok(d) if d > today => {
                    c.push(
                        "from_date",
                        "err-a-move-cannot-be-dated-in-the-future-record-it",
                    );
                    None
                }
                Ok(d) => Some(d),
                Err(_) => {
                    c.push(
                        "from_date",
                        "err-write-the-date-as-yyyy-mm-dd-for-example-2026-11",
                    );
                    None
                }
            }
        };
        c.finish()?;
        Ok(NewResidence {
            kind: kind.expect("checked"),
            place,
            from_date: from_date.expect("checked"),
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct Residence {
    pub id: i64,
    pub person_id: i64,
    pub kind: String,
    pub place: Option<String>,
    pub from_date: NaiveDate,
    pub created_at: DateTime<Utc>,
}

/// Records a move. In one transaction: the entry, the person's current residence (the
/// entry with the latest date), their status (hospital → `admitted`, anything else after
/// hospital → `observing`), today's check-ins (open ones cancelled on admission, planned again on
/// leaving) and the audit row. `window` is the answer window of re-planned check-ins.
pub async fn add(
    db: &Db,
    viewer: &Viewer,
    person_id: i64,
    r: &NewResidence,
    window: chrono::Duration,
    ip: Option<&str>,
) -> Result<i64> {
    crate::store::guard::check(
        db,
        Access::Staff(viewer),
        person_id,
        FieldGroup::Residence,
        Action::Write,
    )
    .await?;
    let person = persons::load(db, person_id).await?;
    let centre = crate::store::staff::health_centre(db, person.health_centre_id).await?;
    // Part of this checked write (audited below), not a read of its own.
    let slots = persons::slots_of(db, person_id).await?;
    let t = now();
    let plans = slots
        .iter()
        .map(|m| checkins::PersonPlan::today(&centre.time_zone, *m, t, window))
        .collect::<Result<Vec<_>>>()?;
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO person_residences (person_id, kind, place, from_date, entered_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
            .bind(person_id).bind(r.kind).bind(r.place.as_deref()).bind(r.from_date)
            .bind(viewer.staff_id).bind(t).fetch_one(&mut *tx).await?;
        let current: String = sqlx::query_scalar(
            "SELECT kind FROM person_residences WHERE person_id = $1 ORDER BY from_date DESC, id DESC LIMIT 1")
            .bind(person_id).fetch_one(&mut *tx).await?;
        let status = match (person.status.as_str(), current.as_str()) {
            ("observing", "hospital") => "admitted",
            ("admitted", k) if k != "hospital" => "observing",
            (s, _) => s,
        };
        let status = status.to_string();
        sqlx::query("UPDATE persons SET residence_kind = $1, status = $2, updated_at = $3 WHERE id = $4")
            .bind(&current).bind(&status).bind(t).bind(person_id).execute(&mut *tx).await?;
        if status == "admitted" && person.status != "admitted" {
            sqlx::query("UPDATE checkins SET status = 'cancelled', closed_at = $1, claim_token = NULL
                         WHERE person_id = $2 AND status IN ('planned', 'sent')")
                .bind(t).bind(person_id).execute(&mut *tx).await?;
        }
        if status == "observing" && person.status == "admitted" {
            for (slot, plan) in plans.iter().enumerate() {
                sqlx::query("UPDATE checkins SET due_at = $1, deadline_at = $2, status = 'planned', closed_at = NULL
                             WHERE person_id = $3 AND local_date = $4 AND slot = $5 AND status = 'cancelled'")
                    .bind(plan.due_at).bind(plan.deadline_at).bind(person_id).bind(plan.local_date).bind(slot as i32)
                    .execute(&mut *tx).await?;
                sqlx::query(checkins::PLAN_PERSON_SQL)
                    .bind(plan.local_date).bind(plan.due_at).bind(plan.deadline_at).bind(person_id).bind(slot as i32)
                    .execute(&mut *tx).await?;
            }
        }
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "person.residence", "person", Some(person_id), ip).await?;
        tx.commit().await?;
        Ok(id)
    })
}

/// A person's residence history, newest first. As `viewer` (scope and field group checked,
/// audited), or as the system / a caller that has just checked both, when None.
pub async fn list(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
    ip: Option<&str>,
) -> Result<Vec<Residence>> {
    crate::store::guard::read_records(
        db,
        access,
        person_id,
        FieldGroup::Residence,
        "person.residence.read",
        "SELECT id, person_id, kind, place, from_date, created_at FROM person_residences
         WHERE person_id = $1 ORDER BY from_date DESC, id DESC",
        ip,
    )
    .await
}
