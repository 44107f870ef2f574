//! Health observations and the answer path of a check-in.
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::db::BeginWrite;
use crate::{
    Db, Error, Result,
    access::{Action, FieldGroup, Viewer},
    db::now,
    domain::{Spo2, Temperature},
    rules::{self, Thresholds},
    store::{Actor, audit, escalations},
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
    /// Which urgent warning signs were answered yes (question ids).
    pub urgent_signs: Vec<String>,
    /// Question id → choice id, for `choice` questions.
    pub choices: BTreeMap<String, String>,
}

impl Answer {
    /// Records a yes/no answer; a yes to an urgent warning sign makes the answer urgent.
    pub fn yes_no(&mut self, id: &str, yes: bool, urgent: bool) {
        self.symptoms.insert(id.to_string(), yes);
        if yes && urgent {
            self.urgent = true;
            self.urgent_signs.push(id.to_string());
        }
    }

    /// The `symptoms` column: yes/no answers as booleans and choices as strings, in one
    /// JSON object keyed by question id.
    pub fn symptoms_json(&self) -> String {
        let mut m: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
        for (k, v) in &self.symptoms {
            m.insert(k, (*v).into());
        }
        for (k, v) in &self.choices {
            m.insert(k, v.as_str().into());
        }
        serde_json::to_string(&m).expect("a map of strings serialises")
    }
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
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
    pub note: Option<String>,
}

impl Observation {
    fn answers(&self) -> BTreeMap<String, serde_json::Value> {
        serde_json::from_str(&self.symptoms).unwrap_or_default()
    }
    /// Yes/no answers by question (or voice group) id.
    pub fn symptom_map(&self) -> BTreeMap<String, bool> {
        self.answers()
            .into_iter()
            .filter_map(|(k, v)| v.as_bool().map(|b| (k, b)))
            .collect()
    }
    /// Choice answers by question id.
    pub fn choice_map(&self) -> BTreeMap<String, String> {
        self.answers()
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|c| (k, c.to_string())))
            .collect()
    }
}

/// Why a check-in can no longer take an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    AlreadyAnswered,
    /// Missed, failed, cancelled or opted out.
    Ended,
}

/// Rule evaluation inside the caller's transaction `$tx`, after the observation is written:
/// daily temperature maxima in the centre's time zone, the rules, escalations (raising,
/// never lowering, their priority), their timeline events, and notifications of on-duty
/// staff for a new urgent escalation. Evaluates to `Result<Vec<Trigger>>`.
macro_rules! evaluate_in_tx {
    ($tx:expr, $person:expr, $a:expr, $observed_at:expr, $rules:expr, $t:expr) => {{
        let (centre, zone, overrides): (i64, String, String) = sqlx::query_as(
            "SELECT h.id, h.time_zone, h.rules FROM persons p JOIN health_centres h ON h.id = p.health_centre_id WHERE p.id = $1")
            .bind($person).fetch_one(&mut *$tx).await?;
        let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::Asia::Tokyo);
        let thresholds = $rules.with_overrides(&overrides).unwrap_or_else(|e| {
            tracing::warn!(health_centre_id = centre, error = %e, "ignoring invalid rule override");
            $rules.clone()
        });
        let since = $observed_at - chrono::Duration::days(i64::from(thresholds.fever_streak_days) + 1);
        let temps: Vec<(DateTime<Utc>, f64)> = sqlx::query_as(
            "SELECT observed_at, temperature_c FROM observations
             WHERE person_id = $1 AND observed_at >= $2 AND temperature_c IS NOT NULL")
            .bind($person).bind(since).fetch_all(&mut *$tx).await?;
        let mut daily: Vec<(NaiveDate, f64)> = Vec::new();
        for (at, v) in temps {
            let d = at.with_timezone(&tz).date_naive();
            match daily.iter_mut().find(|(day, _)| *day == d) {
                Some((_, m)) => *m = m.max(v),
                None => daily.push((d, v)),
            }
        }
        let today = $observed_at.with_timezone(&tz).date_naive();
        let triggers = rules::on_answer(&thresholds, $a, today, &daily);
        for tr in &triggers {
            let before: Option<(i64, String)> = sqlx::query_as(escalations::FIND_OPEN_SQL)
                .bind($person).bind(tr.reason).fetch_optional(&mut *$tx).await?;
            let id: i64 = sqlx::query_scalar(escalations::UPSERT_SQL)
                .bind($person).bind(tr.reason).bind(tr.priority.as_str()).bind($t).bind(&tr.detail)
                .fetch_one(&mut *$tx).await?;
            sqlx::query(escalations::EVENT_SQL).bind(id).bind($person).bind(None::<i64>).bind("triggered")
                .bind(tr.reason).bind(&tr.detail).bind($t).execute(&mut *$tx).await?;
            let newly_urgent = tr.priority == rules::Priority::Urgent
                && before.as_ref().is_none_or(|(_, p)| p != "urgent");
            if newly_urgent {
                sqlx::query(escalations::NOTIFY_SQL).bind(id).bind($t).bind(centre).execute(&mut *$tx).await?;
            }
        }
        Ok::<Vec<rules::Trigger>, crate::Error>(triggers)
    }};
}

/// The outcome of recording an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub observation_id: i64,
    pub person_id: i64,
    /// Rules that fired (escalations opened or refreshed in the same transaction).
    pub triggers: Vec<rules::Trigger>,
}

/// Records the answer to check-in `checkin_id`: in one transaction the check-in becomes
/// `answered` (only if still open, so a link works once), the observation is written, the
/// escalation rules run (escalations, notifications) and everything is audited. Returns
/// what was recorded, or which way the check-in was already closed.
pub async fn answer_checkin(
    db: &Db,
    checkin_id: i64,
    source: &str,
    a: &Answer,
    rules: &Thresholds,
) -> Result<std::result::Result<Recorded, Closed>> {
    let t = now();
    let symptoms = a.symptoms_json();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
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
        let triggers = evaluate_in_tx!(tx, person_id, a, t, rules, t)?;
        audit(&mut *tx, Actor::Person(person_id), "observation.create", "person", Some(person_id), None).await?;
        tx.commit().await?;
        Ok(Ok(Recorded { observation_id: id, person_id, triggers }))
    })
}

/// An observation entered by staff or a contractor (a nurse's phone call), or imported:
/// not tied to a check-in; the rules run the same way.
#[allow(clippy::too_many_arguments)]
pub async fn record_by_staff(
    db: &Db,
    viewer: Option<&Viewer>,
    person_id: i64,
    reporter: &str,
    source: &str,
    observed_at: DateTime<Utc>,
    a: &Answer,
    note: Option<&str>,
    rules: &Thresholds,
) -> Result<Recorded> {
    crate::store::persons::check(
        db,
        viewer,
        person_id,
        FieldGroup::HealthObservation,
        Action::Write,
    )
    .await?;
    let actor = viewer
        .map(|v| Actor::Staff(v.staff_id))
        .unwrap_or(Actor::System);
    if !matches!(reporter, "self" | "family" | "staff" | "contractor") {
        return Err(Error::invalid(
            "reporter",
            "choose self, family, staff or contractor",
        ));
    }
    let t = now();
    let entered_by = match actor {
        Actor::Staff(id) => Some(id),
        _ => None,
    };
    let symptoms = a.symptoms_json();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO observations (person_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, note, entered_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id")
            .bind(person_id).bind(source).bind(reporter).bind(observed_at)
            .bind(a.temperature.map(Temperature::value)).bind(a.spo2.map(Spo2::value))
            .bind(&symptoms).bind(a.urgent).bind(note).bind(entered_by).bind(t)
            .fetch_one(&mut *tx).await?;
        let triggers = evaluate_in_tx!(tx, person_id, a, observed_at, rules, t)?;
        audit(&mut *tx, actor, "observation.create", "person", Some(person_id), None).await?;
        tx.commit().await?;
        Ok(Recorded { observation_id: id, person_id, triggers })
    })
}

/// A person's observations in time order; for a viewer, their scope and the health-observation
/// field group are checked first.
pub async fn list_for_person(
    db: &Db,
    viewer: Option<&Viewer>,
    person_id: i64,
) -> Result<Vec<Observation>> {
    crate::store::persons::check(
        db,
        viewer,
        person_id,
        FieldGroup::HealthObservation,
        Action::Read,
    )
    .await?;
    Ok(with_db!(db, p => sqlx::query_as(
        "SELECT id, person_id, checkin_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, note
         FROM observations WHERE person_id = $1 ORDER BY observed_at, id").bind(person_id).fetch_all(p).await?))
}
