//! Health observations and the answer path of a check-in.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    Db, Error, Result,
    db::now,
    domain::{Spo2, Temperature},
    store::{Actor, audit},
    with_db,
};

/// A validated answer to a check-in's questions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    pub temperature: Option<Temperature>,
    pub spo2: Option<Spo2>,
    /// Question id → yes.
    pub symptoms: BTreeMap<String, bool>,
    /// Any urgent warning sign answered yes.
    pub urgent: bool,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Observation {
    pub id: i64,
    pub person_id: i64,
    pub checkin_id: Option<i64>,
    pub source: String,
    pub reporter: String,
    pub observed_at: DateTime<Utc>,
    pub temperature_c: Option<f64>,
    pub spo2: Option<i32>,
    pub symptoms: String,
    pub urgent: bool,
}

impl Observation {
    pub fn symptom_map(&self) -> BTreeMap<String, bool> {
        serde_json::from_str(&self.symptoms).unwrap_or_default()
    }
}

/// Why a check-in can no longer take an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    AlreadyAnswered,
    /// Missed, failed, cancelled or opted out.
    Ended,
}

/// Records the answer to check-in `checkin_id`: in one transaction the check-in becomes
/// `answered` (only if still open, so a link works once) and the observation is written and
/// audited. Returns the observation id, or which way the check-in was already closed.
pub async fn answer_checkin(
    db: &Db,
    checkin_id: i64,
    source: &str,
    a: &Answer,
) -> Result<std::result::Result<i64, Closed>> {
    let t = now();
    let symptoms =
        serde_json::to_string(&a.symptoms).map_err(|e| Error::Internal(e.to_string()))?;
    with_db!(db, p => {
        let mut tx = p.begin().await?;
        let person: Option<i64> = sqlx::query_scalar(
            "UPDATE checkins SET status = 'answered', closed_at = $1, claim_token = NULL
             WHERE id = $2 AND status IN ('planned', 'sending', 'sent') RETURNING person_id")
            .bind(t).bind(checkin_id).fetch_optional(&mut *tx).await?;
        let Some(person_id) = person else {
            let status: Option<String> = sqlx::query_scalar("SELECT status FROM checkins WHERE id = $1")
                .bind(checkin_id).fetch_optional(&mut *tx).await?;
            return match status.as_deref() {
                None => Err(Error::NotFound("check-in")),
                Some("answered") => Ok(Err(Closed::AlreadyAnswered)),
                Some(_) => Ok(Err(Closed::Ended)),
            };
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO observations (person_id, checkin_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, created_at)
             VALUES ($1, $2, $3, 'self', $4, $5, $6, $7, $8, $4) RETURNING id")
            .bind(person_id).bind(checkin_id).bind(source).bind(t)
            .bind(a.temperature.map(Temperature::value)).bind(a.spo2.map(Spo2::value))
            .bind(&symptoms).bind(a.urgent)
            .fetch_one(&mut *tx).await?;
        if a.urgent {
            sqlx::query(crate::store::escalations::OPEN_SQL)
                .bind(person_id).bind("urgent").bind("urgent").bind(t).execute(&mut *tx).await?;
        }
        audit(&mut *tx, Actor::Person(person_id), "observation.create", "person", Some(person_id), None).await?;
        tx.commit().await?;
        Ok(Ok(id))
    })
}

/// Inserts an observation not tied to a check-in (demo data, staff entries).
pub async fn insert_unlinked(
    db: &Db,
    actor: Actor,
    person_id: i64,
    source: &str,
    observed_at: DateTime<Utc>,
    a: &Answer,
) -> Result<i64> {
    let symptoms =
        serde_json::to_string(&a.symptoms).map_err(|e| Error::Internal(e.to_string()))?;
    with_db!(db, p => {
        let mut tx = p.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO observations (person_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, created_at)
             VALUES ($1, $2, 'self', $3, $4, $5, $6, $7, $8) RETURNING id")
            .bind(person_id).bind(source).bind(observed_at)
            .bind(a.temperature.map(Temperature::value)).bind(a.spo2.map(Spo2::value))
            .bind(&symptoms).bind(a.urgent).bind(now())
            .fetch_one(&mut *tx).await?;
        audit(&mut *tx, actor, "observation.create", "person", Some(person_id), None).await?;
        tx.commit().await?;
        Ok(id)
    })
}

/// A person's observations in time order (caller has checked access and audits the read).
pub async fn list_for_person(db: &Db, person_id: i64) -> Result<Vec<Observation>> {
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT id, person_id, checkin_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent
         FROM observations WHERE person_id = $1 ORDER BY observed_at, id").bind(person_id).fetch_all(p).await?))
}
