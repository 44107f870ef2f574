//! People under observation.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::db::BeginWrite;
use crate::{
    Db, Error, Result,
    access::{Access, Action, FieldGroup, Opened, Viewer},
    db::now,
    domain::{Channel, Email, Lang, Phone, parse_slot},
    error::Collect,
    store::{Actor, audit, checkins},
    with_db,
};

mod duplicates;
mod edit;
mod input;
mod lists;

pub use crate::store::guard::{check, read_records};
pub use duplicates::*;
pub use edit::*;
pub use input::*;
pub use lists::*;

#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct Person {
    pub id: i64,
    pub health_centre_id: i64,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub channel: String,
    pub language: String,
    pub monitoring_type: String,
    pub observation_start: NaiveDate,
    pub observation_end: NaiveDate,
    pub date_of_birth: Option<NaiveDate>,
    pub fallback_channel: Option<String>,
    /// Calls read slower, with pauses, and wait longer for keys.
    #[sqlx(default)]
    pub slow_speech: bool,
    /// `observing`, `ended`, `opted_out`, `admitted` — or `paused` for a role that may not
    /// read residence (admission says where the person is).
    pub status: String,
    /// Current residence kind (home, hospital, lodging, welfare, other); absent for a role
    /// that may not read residence.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub residence_kind: String,
    pub name_kana: Option<String>,
    pub sex: Option<String>,
    pub nationality: Option<String>,
    pub prefecture_code: Option<String>,
    pub municipality: Option<String>,
    pub address: Option<String>,
    pub occupation: Option<String>,
    pub workplace: Option<String>,
    pub emergency_contact: Option<String>,
    pub reception_date: Option<NaiveDate>,
    pub onset_date: Option<NaiveDate>,
    pub specimen_date: Option<NaiveDate>,
    pub last_exposure_date: Option<NaiveDate>,
    /// The observation-period rule applied, when the end was computed.
    pub period_rule: Option<String>,
    pub period_override_reason: Option<String>,
    pub source_person_id: Option<i64>,
    pub previous_case_id: Option<i64>,
    /// Merged into this record (a duplicate).
    pub merged_into: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// The health centre's time zone (IANA name), for local times on pages; not part of the
    /// record.
    #[serde(skip)]
    pub time_zone: String,
    /// The centre's choice of basic information for contractors and lodging facilities
    /// (`narrow` or `full`, migration 0019); not part of the record.
    #[serde(skip)]
    #[sqlx(default)]
    pub outside_basic: String,
}

const PERSON_COLUMNS: &str = "p.id, p.health_centre_id, p.name, p.phone, p.email, p.channel, p.language,
    p.monitoring_type, p.observation_start, p.observation_end, p.date_of_birth, p.fallback_channel, p.slow_speech, p.status, p.residence_kind,
    p.name_kana, p.sex, p.nationality, p.prefecture_code, p.municipality, p.address, p.occupation,
    p.workplace, p.emergency_contact, p.reception_date, p.onset_date, p.specimen_date,
    p.last_exposure_date, p.period_rule, p.period_override_reason, p.source_person_id, p.previous_case_id,
    p.merged_into, p.created_at,
    (SELECT h.time_zone FROM health_centres h WHERE h.id = p.health_centre_id) AS time_zone,
    (SELECT h.outside_basic FROM health_centres h WHERE h.id = p.health_centre_id) AS outside_basic";

/// Inserts a registered person inside the caller's write transaction `$tx` and plans
/// today's check-ins (`$plans` from [`plans_today`]); evaluates to `Result<i64>`. The source
/// case of a contact must belong to the same health centre.
macro_rules! insert_person {
    ($tx:expr, $centre:expr, $p:expr, $plans:expr, $t:expr) => {{
        let p: &$crate::store::persons::NewPerson = $p;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO persons (health_centre_id, name, phone, email, channel, language, monitoring_type,
               observation_start, observation_end, date_of_birth, fallback_channel, status, created_at, updated_at, slow_speech)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'observing', $12, $12, $13) RETURNING id")
            .bind($centre).bind(&p.name).bind(p.phone.as_ref().map(|x| x.as_str()))
            .bind(p.email.as_ref().map(|x| x.as_str())).bind(p.channel.as_str()).bind(p.language.as_str())
            .bind(p.monitoring_type).bind(p.observation_start).bind(p.observation_end)
            .bind(p.date_of_birth).bind(p.fallback_channel.map($crate::domain::Channel::as_str)).bind($t)
            .bind(p.slow_speech)
            .fetch_one(&mut *$tx).await?;
        let d = &p.details;
        let mut bad_source = false;
        if let Some(src) = d.source_person_id {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE id = $1 AND health_centre_id = $2")
                .bind(src).bind($centre).fetch_one(&mut *$tx).await?;
            bad_source = n == 0;
        }
        if bad_source {
            Err($crate::Error::invalid("source_person_id", "err-no-case-with-this-id-at-your-health-centre"))
        } else {
            sqlx::query(
                "UPDATE persons SET name_kana = $1, name_key = $2, sex = $3, nationality = $4, prefecture_code = $5,
                   municipality = $6, address = $7, occupation = $8, workplace = $9, emergency_contact = $10,
                   reception_date = $11, onset_date = $12, specimen_date = $13, last_exposure_date = $14,
                   period_rule = $15, period_override_reason = $16, source_person_id = $17, previous_case_id = $18,
                   name_norm = $20
                 WHERE id = $19")
                .bind(&d.name_kana).bind(&d.name_key).bind(d.sex).bind(&d.nationality).bind(&d.prefecture_code)
                .bind(&d.municipality).bind(&d.address).bind(&d.occupation).bind(&d.workplace).bind(&d.emergency_contact)
                .bind(d.reception_date).bind(d.onset_date).bind(d.specimen_date).bind(d.last_exposure_date)
                .bind(&d.period_rule).bind(&d.period_override_reason).bind(d.source_person_id)
                .bind(d.previous_case_id).bind(id).bind($crate::domain::kana_key(&p.name))
                .execute(&mut *$tx).await?;
            for (slot, (minutes, plan)) in p.slots.iter().zip($plans.iter()).enumerate() {
                sqlx::query("INSERT INTO person_slots (person_id, slot, minutes) VALUES ($1, $2, $3)")
                    .bind(id).bind(slot as i32).bind(*minutes).execute(&mut *$tx).await?;
                sqlx::query($crate::store::checkins::PLAN_PERSON_SQL)
                    .bind(plan.local_date).bind(plan.due_at).bind(plan.deadline_at).bind(id).bind(slot as i32)
                    .execute(&mut *$tx).await?;
            }
            Ok::<i64, $crate::Error>(id)
        }
    }};
}
pub(crate) use insert_person;

/// Today's check-ins of a new person of `health_centre_id` (see [`insert_person!`]).
pub(crate) async fn plans_today(
    db: &Db,
    health_centre_id: i64,
    p: &NewPerson,
    window: chrono::Duration,
    at: DateTime<Utc>,
) -> Result<Vec<checkins::PersonPlan>> {
    let centre = crate::store::staff::health_centre(db, health_centre_id).await?;
    p.slots
        .iter()
        .map(|m| checkins::PersonPlan::today(&centre.time_zone, *m, at, window))
        .collect()
}

/// Registers a person and, in the same transaction, plans today's check-in (when today is
/// inside the observation period), so nobody waits for the nightly run. `window` is the
/// answer window of check-ins.
pub async fn create(
    db: &Db,
    actor: Actor,
    health_centre_id: i64,
    p: &NewPerson,
    window: chrono::Duration,
    ip: Option<&str>,
) -> Result<i64> {
    let t = now();
    let plans = plans_today(db, health_centre_id, p, window, t).await?;
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let id = insert_person!(tx, health_centre_id, p, plans, t)?;
        audit(&mut *tx, actor, "person.create", "person", Some(id), ip).await?;
        tx.commit().await?;
        Ok(id)
    })
}

/// Reads one person through `access`: for a staff member their row scope and the basic
/// field group are enforced (a person outside the scope is "not found", so existence is not
/// disclosed) and the fields they may not read are blanked. Audited in the same transaction.
pub async fn get(db: &Db, access: Access<'_>, id: i64, ip: Option<&str>) -> Result<Person> {
    let scope = match access {
        Access::Staff(v) => v.row_condition(),
        Access::Opened(o) if o.person_id() == id => "1 = 1".into(),
        Access::Opened(_) => return Err(Error::NotFound("person")),
        Access::System(_) => "1 = 1".into(),
    };
    let sql = format!("SELECT {PERSON_COLUMNS} FROM persons p WHERE p.id = $1 AND {scope}");
    let p: Person = with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let p: Option<Person> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *tx).await?;
        // Outside the scope is "not found" (existence is not disclosed) before "forbidden".
        let Some(p) = p else { return Err(Error::NotFound("person")) };
        if let Some(v) = access.viewer()
            && !v.may(FieldGroup::Basic, Action::Read)
        {
            return Err(Error::Forbidden(
                "your role may not read this person's basic information",
            ));
        }
        audit(&mut *tx, access.actor(), "person.read", "person", Some(id), ip).await?;
        tx.commit().await?;
        p
    });
    Ok(match access.viewer() {
        Some(v) => p.visible_to(v),
        None => p,
    })
}

/// One person as stored, for a store function that has already checked its caller and
/// audits its own write (the read is part of that write).
pub(crate) async fn load(db: &Db, id: i64) -> Result<Person> {
    let sql = format!("SELECT {PERSON_COLUMNS} FROM persons p WHERE p.id = $1");
    let p: Option<Person> = with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await?);
    p.ok_or(Error::NotFound("person"))
}

/// Opens a person's page for `viewer`: [`get`] (scope, basic group, audited once) and the
/// [`Opened`] proof that the page's further reads of the same person pass with.
pub async fn open(db: &Db, viewer: &Viewer, id: i64, ip: Option<&str>) -> Result<(Person, Opened)> {
    let p = get(db, Access::Staff(viewer), id, ip).await?;
    Ok((p, Opened::new(*viewer, id)))
}

/// A person's daily check-in times, for a store function that has checked its caller and
/// audits its own write.
pub(crate) async fn slots_of(db: &Db, person_id: i64) -> Result<Vec<i32>> {
    Ok(
        with_db!(db, pool => sqlx::query_scalar("SELECT minutes FROM person_slots WHERE person_id = $1 ORDER BY slot")
        .bind(person_id).fetch_all(pool).await?),
    )
}

/// A person's daily check-in times (minutes after local midnight), by slot, read through
/// `access` (health-observation group).
pub async fn slots(db: &Db, access: Access<'_>, person_id: i64) -> Result<Vec<i32>> {
    let rows: Vec<(i32,)> = read_records(
        db,
        access,
        person_id,
        FieldGroup::HealthObservation,
        "person.slots.read",
        "SELECT minutes FROM person_slots WHERE person_id = $1 ORDER BY slot",
        None,
    )
    .await?;
    Ok(rows.into_iter().map(|(m,)| m).collect())
}

/// The close contacts registered from case `id`, as `viewer` may see them.
pub async fn contacts_of(db: &Db, viewer: &Viewer, id: i64) -> Result<Vec<Person>> {
    check(
        db,
        Access::Staff(viewer),
        id,
        FieldGroup::Contacts,
        Action::Read,
    )
    .await?;
    let sql = format!(
        "SELECT {PERSON_COLUMNS} FROM persons p WHERE p.source_person_id = $1 AND {} ORDER BY p.id",
        viewer.row_condition()
    );
    let rows = with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_all(pool).await?);
    with_db!(db, pool => audit(pool, Actor::Staff(viewer.staff_id), "person.contacts.read", "person", Some(id), None).await)?;
    Ok(visible(rows, viewer))
}

fn visible(rows: Vec<Person>, viewer: &Viewer) -> Vec<Person> {
    rows.into_iter().map(|p| p.visible_to(viewer)).collect()
}

#[derive(Debug, Clone)]
enum SearchValue {
    Text(String),
    Int(i64),
}

impl Person {
    /// This record as `viewer` may see it, field by field — the one place every person
    /// object passes before it leaves the store (API, search items, lists, pages, caches):
    /// residence (and so "admitted") only for roles that may read residence; the contact
    /// and case links only with those groups; for outside bodies that only phone the person
    /// (contractors, lodging facilities) the narrow reading of basic information — who they
    /// are and how to reach them, not address, workplace, occupation, nationality or the
    /// case's dates — unless the person's centre chose to show them all basic information
    /// (`health_centres.outside_basic = 'full'`).
    pub fn visible_to(mut self, viewer: &Viewer) -> Person {
        use crate::access::Role;
        if !viewer.may(FieldGroup::Residence, Action::Read) {
            self.residence_kind = String::new();
            if self.status == "admitted" {
                self.status = "paused".into();
            }
        }
        if !viewer.may(FieldGroup::Contacts, Action::Read) {
            self.source_person_id = None;
        }
        if !viewer.may(FieldGroup::InfectionLink, Action::Read) {
            self.previous_case_id = None;
        }
        if matches!(viewer.role, Role::Contractor | Role::LodgingFacility)
            && self.outside_basic != "full"
        {
            self.address = None;
            self.occupation = None;
            self.workplace = None;
            self.nationality = None;
            self.reception_date = None;
            self.onset_date = None;
            self.specimen_date = None;
            self.last_exposure_date = None;
            self.period_rule = None;
            self.period_override_reason = None;
            self.merged_into = None;
        }
        self
    }

    /// The age band of the national open-data format [患者_年代] on `today`: 10歳未満,
    /// 10代 … 80代, 90歳以上 (None without a date of birth).
    pub fn age_band(&self, today: NaiveDate) -> Option<&'static str> {
        use chrono::Datelike;
        let dob = self.date_of_birth?;
        let mut age = today.year() - dob.year();
        if (today.month(), today.day()) < (dob.month(), dob.day()) {
            age -= 1;
        }
        Some(match age {
            a if a < 10 => "10歳未満",
            a if a < 20 => "10代",
            a if a < 30 => "20代",
            a if a < 40 => "30代",
            a if a < 50 => "40代",
            a if a < 60 => "50代",
            a if a < 70 => "60代",
            a if a < 80 => "70代",
            a if a < 90 => "80代",
            _ => "90歳以上",
        })
    }
}
