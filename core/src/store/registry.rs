//! Case-registry records kept as lists per person: test records [検査] and the severity
//! history [重症度]. Each read and write checks the viewer's scope and field group and is
//! audited.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::db::BeginWrite;
use crate::{
    Db, Result,
    access::{Access, Action, FieldGroup, Viewer},
    db::now,
    error::Collect,
    store::{Actor, audit, persons},
    with_db,
};

pub const TEST_METHODS: &[&str] = &[
    "pcr",
    "antigen_quantitative",
    "antigen_qualitative",
    "lamp",
    "other",
];
pub const TEST_RESULTS: &[&str] = &["positive", "negative", "pending", "inconclusive"];
/// The clinical guide's four levels [軽症, 中等症I, 中等症II, 重症].
pub const SEVERITY_LEVELS: &[&str] = &["mild", "moderate1", "moderate2", "severe"];

/// A YYYY-MM-DD date not after `today` (problems collected under `field`).
pub(crate) fn date(
    c: &mut Collect,
    field: &'static str,
    v: &str,
    today: NaiveDate,
) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d") {
        Ok(d) if d > today => {
            c.push(field, "err-the-date-is-in-the-future-check-it");
            None
        }
        Ok(d) => Some(d),
        Err(_) => {
            c.push(
                field,
                "err-write-the-date-as-yyyy-mm-dd-for-example-2026-11",
            );
            None
        }
    }
}

/// One of `options` (a problem listing them otherwise).
pub(crate) fn one_of(
    c: &mut Collect,
    field: &'static str,
    v: &str,
    options: &[&'static str],
) -> Option<&'static str> {
    let found = options.iter().copied().find(|o| *o == v.trim());
    if found.is_none() {
        c.push_with(
            field,
            "err-choose-one-of",
            vec![("options", options.join(", "))],
        );
    }
    found
}

/// Trimmed text, or None when empty.
pub(crate) fn opt(v: &str) -> Option<String> {
    Some(v.trim().to_string()).filter(|v| !v.is_empty())
}

/// A test record as typed or sent to the API.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["specimen_date"]))]
pub struct TestInput {
    #[schemars(transform = crate::api_schema::date)]
    pub specimen_date: String,
    #[schemars(length(max = 200))]
    pub testing_site: String,
    /// When the result is to be communicated [連絡予定日].
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub planned_contact_date: String,
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub result_date: String,
    #[schemars(length(max = 200))]
    pub laboratory: String,
    #[schemars(length(max = 200))]
    pub specimen_type: String,
    /// pcr, antigen_quantitative, antigen_qualitative, lamp, other (default pcr).
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice_or_blank(s, TEST_METHODS))]
    pub method: String,
    /// positive, negative, pending (default), inconclusive.
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice_or_blank(s, TEST_RESULTS))]
    pub result: String,
    /// Results for other pathogens, free text ("influenza A negative; RSV negative").
    #[schemars(length(max = 200))]
    pub other_pathogens: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewTest {
    pub specimen_date: NaiveDate,
    pub testing_site: Option<String>,
    pub planned_contact_date: Option<NaiveDate>,
    pub result_date: Option<NaiveDate>,
    pub laboratory: Option<String>,
    pub specimen_type: Option<String>,
    pub method: &'static str,
    pub result: &'static str,
    pub other_pathogens: Option<String>,
}

impl TestInput {
    pub fn parse(&self, today: NaiveDate) -> Result<NewTest> {
        let mut c = Collect::default();
        let specimen_date = date(&mut c, "specimen_date", &self.specimen_date, today);
        let result_date = if self.result_date.trim().is_empty() {
            None
        } else {
            date(&mut c, "result_date", &self.result_date, today)
        };
        if let (Some(s), Some(r)) = (specimen_date, result_date)
            && r < s
        {
            c.push(
                "result_date",
                "err-the-result-cannot-come-before-the-specimen-was",
            );
        }
        // A planned contact date may lie ahead.
        let planned_contact_date = if self.planned_contact_date.trim().is_empty() {
            None
        } else {
            date(
                &mut c,
                "planned_contact_date",
                &self.planned_contact_date,
                NaiveDate::MAX,
            )
        };
        let method = if self.method.trim().is_empty() {
            Some("pcr")
        } else {
            one_of(&mut c, "method", &self.method, TEST_METHODS)
        };
        let result = if self.result.trim().is_empty() {
            Some("pending")
        } else {
            one_of(&mut c, "result", &self.result, TEST_RESULTS)
        };
        for (field, v) in [
            ("testing_site", &self.testing_site),
            ("laboratory", &self.laboratory),
            ("specimen_type", &self.specimen_type),
            ("other_pathogens", &self.other_pathogens),
        ] {
            if v.chars().count() > 200 {
                c.push(field, "err-use-at-most-200-characters");
            }
        }
        c.finish()?;
        Ok(NewTest {
            specimen_date: specimen_date.expect("checked"),
            testing_site: opt(&self.testing_site),
            planned_contact_date,
            result_date,
            laboratory: opt(&self.laboratory),
            specimen_type: opt(&self.specimen_type),
            method: method.expect("checked"),
            result: result.expect("checked"),
            other_pathogens: opt(&self.other_pathogens),
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct TestRecord {
    pub id: i64,
    pub person_id: i64,
    pub specimen_date: NaiveDate,
    pub testing_site: Option<String>,
    pub planned_contact_date: Option<NaiveDate>,
    pub result_date: Option<NaiveDate>,
    pub laboratory: Option<String>,
    pub specimen_type: Option<String>,
    pub method: Option<String>,
    pub result: String,
    pub other_pathogens: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Adds a test record. Needs write access to tests. Audited.
pub async fn add_test(
    db: &Db,
    viewer: &Viewer,
    person_id: i64,
    t: &NewTest,
    ip: Option<&str>,
) -> Result<i64> {
    crate::store::guard::check(
        db,
        Access::Staff(viewer),
        person_id,
        FieldGroup::Tests,
        Action::Write,
    )
    .await?;
    let at = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO person_tests (person_id, specimen_date, testing_site, result_date, laboratory, specimen_type,
               method, result, other_pathogens, entered_by, created_at, planned_contact_date)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id")
            .bind(person_id).bind(t.specimen_date).bind(&t.testing_site).bind(t.result_date).bind(&t.laboratory)
            .bind(&t.specimen_type).bind(t.method).bind(t.result).bind(&t.other_pathogens).bind(viewer.staff_id).bind(at)
            .bind(t.planned_contact_date)
            .fetch_one(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "person.test.add", "person", Some(person_id), ip).await?;
        tx.commit().await?;
        Ok(id)
    })
}

/// A person's test records, newest specimen first. As `viewer` (checked, audited) or as a
/// caller that has just checked scope and field group (None).
pub async fn tests(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
    ip: Option<&str>,
) -> Result<Vec<TestRecord>> {
    crate::store::guard::read_records(
        db,
        access,
        person_id,
        FieldGroup::Tests,
        "person.test.read",
        "SELECT id, person_id, specimen_date, testing_site, planned_contact_date, result_date, laboratory, specimen_type,
                method, result, other_pathogens, created_at
         FROM person_tests WHERE person_id = $1 ORDER BY specimen_date DESC, id DESC",
        ip,
    )
    .await
}

/// A severity entry as typed or sent to the API.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["level"]))]
pub struct SeverityInput {
    /// mild, moderate1, moderate2, severe.
    #[schemars(transform = severity_level)]
    pub level: String,
    /// YYYY-MM-DD; default today.
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub from_date: String,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct Severity {
    pub id: i64,
    pub person_id: i64,
    pub level: String,
    pub from_date: NaiveDate,
    pub created_at: DateTime<Utc>,
}

impl SeverityInput {
    pub fn parse(&self, today: NaiveDate) -> Result<(&'static str, NaiveDate)> {
        let mut c = Collect::default();
        let level = one_of(&mut c, "level", &self.level, SEVERITY_LEVELS);
        let from = if self.from_date.trim().is_empty() {
            Some(today)
        } else {
            date(&mut c, "from_date", &self.from_date, today)
        };
        c.finish()?;
        Ok((level.expect("checked"), from.expect("checked")))
    }
}

/// The notice's three-level severity for reports: moderate I and II are "moderate".
pub fn severity_three_level(level: &str) -> &'static str {
    match level {
        "mild" => "mild",
        "moderate1" | "moderate2" => "moderate",
        "severe" => "severe",
        _ => "",
    }
}

/// Records the severity from a date. Needs write access to severity. Audited.
pub async fn add_severity(
    db: &Db,
    viewer: &Viewer,
    person_id: i64,
    (level, from): (&str, NaiveDate),
    ip: Option<&str>,
) -> Result<i64> {
    crate::store::guard::check(
        db,
        Access::Staff(viewer),
        person_id,
        FieldGroup::Severity,
        Action::Write,
    )
    .await?;
    let at = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO person_severities (person_id, level, from_date, entered_by, created_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(person_id).bind(level).bind(from).bind(viewer.staff_id).bind(at).fetch_one(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "person.severity.add", "person", Some(person_id), ip).await?;
        tx.commit().await?;
        Ok(id)
    })
}

/// A person's severity history, newest first (see [`tests`] for `viewer`).
pub async fn severities(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
    ip: Option<&str>,
) -> Result<Vec<Severity>> {
    crate::store::guard::read_records(
        db,
        access,
        person_id,
        FieldGroup::Severity,
        "person.severity.read",
        "SELECT id, person_id, level, from_date, created_at FROM person_severities
         WHERE person_id = $1 ORDER BY from_date DESC, id DESC",
        ip,
    )
    .await
}

/// Settings of a place in the behaviour history.
pub const SETTINGS: &[&str] = &[
    "home",
    "work",
    "school",
    "restaurant",
    "medical",
    "welfare",
    "transport",
    "event",
    "other",
];
pub const INFECTION_LINKS: &[&str] = &["confirmed", "presumed", "unknown"];

/// A behaviour-history entry [行動歴] as typed or sent to the API.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["on_date", "place"]))]
pub struct BehaviourInput {
    #[schemars(transform = crate::api_schema::date)]
    pub on_date: String,
    /// Free text: "12:00–13:30".
    #[schemars(length(max = 500))]
    pub time_text: String,
    #[schemars(length(max = 500))]
    #[schemars(transform = crate::api_schema::not_blank)]
    pub place: String,
    pub place_phone: String,
    /// home, work, school, restaurant, medical, welfare, transport, event, other.
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice_or_blank(s, SETTINGS))]
    pub setting: String,
    /// Who they met there (names, how many).
    #[schemars(length(max = 500))]
    pub people_met: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewBehaviour {
    pub on_date: NaiveDate,
    pub time_text: Option<String>,
    pub place: String,
    pub place_phone: Option<String>,
    pub setting: &'static str,
    pub people_met: Option<String>,
}

impl BehaviourInput {
    pub fn parse(&self, today: NaiveDate) -> Result<NewBehaviour> {
        let mut c = Collect::default();
        let on_date = date(&mut c, "on_date", &self.on_date, today);
        if self.place.trim().is_empty() {
            c.push("place", "err-where-was-it-a-name-or-an-address");
        }
        let setting = if self.setting.trim().is_empty() {
            Some("other")
        } else {
            one_of(&mut c, "setting", &self.setting, SETTINGS)
        };
        for (field, v) in [
            ("place", &self.place),
            ("people_met", &self.people_met),
            ("time_text", &self.time_text),
        ] {
            if v.chars().count() > 500 {
                c.push(field, "err-use-at-most-500-characters");
            }
        }
        c.finish()?;
        Ok(NewBehaviour {
            on_date: on_date.expect("checked"),
            time_text: opt(&self.time_text),
            place: self.place.trim().to_string(),
            place_phone: opt(&self.place_phone),
            setting: setting.expect("checked"),
            people_met: opt(&self.people_met),
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct Behaviour {
    pub id: i64,
    pub person_id: i64,
    pub on_date: NaiveDate,
    pub time_text: Option<String>,
    pub place: String,
    pub place_phone: Option<String>,
    pub setting: String,
    pub people_met: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Adds a behaviour-history entry. Needs write access to behaviour history. Audited.
pub async fn add_behaviour(
    db: &Db,
    viewer: &Viewer,
    person_id: i64,
    b: &NewBehaviour,
    ip: Option<&str>,
) -> Result<i64> {
    crate::store::guard::check(
        db,
        Access::Staff(viewer),
        person_id,
        FieldGroup::BehaviourHistory,
        Action::Write,
    )
    .await?;
    let at = now();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO person_behaviours (person_id, on_date, time_text, place, place_phone, setting, people_met, entered_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id")
            .bind(person_id).bind(b.on_date).bind(&b.time_text).bind(&b.place).bind(&b.place_phone)
            .bind(b.setting).bind(&b.people_met).bind(viewer.staff_id).bind(at)
            .fetch_one(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "person.behaviour.add", "person", Some(person_id), ip).await?;
        tx.commit().await?;
        Ok(id)
    })
}

/// A person's behaviour history, oldest first (see [`persons::read_records`]).
pub async fn behaviours(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
    ip: Option<&str>,
) -> Result<Vec<Behaviour>> {
    crate::store::guard::read_records(
        db,
        access,
        person_id,
        FieldGroup::BehaviourHistory,
        "person.behaviour.read",
        "SELECT id, person_id, on_date, time_text, place, place_phone, setting, people_met, created_at
         FROM person_behaviours WHERE person_id = $1 ORDER BY on_date, id",
        ip,
    )
    .await
}

/// The infection link and route of a case ◎. The schema states the choices (the API's
/// contract: a request valid by it is accepted).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["link"]))]
pub struct InfectionInput {
    /// confirmed, presumed, unknown.
    #[schemars(transform = infection_link)]
    pub link: String,
    /// Area (prefecture, city, or country).
    pub area: String,
    /// Setting type (see [`SETTINGS`]; empty: not known).
    #[schemars(transform = infection_setting)]
    pub setting: String,
    pub place: String,
}

/// A required choice in the API's schema: the store's own options as its enum, and no
/// default (the struct's empty default is refused).
fn required_choice(schema: &mut schemars::Schema, options: &[&str]) {
    schema.insert("enum".into(), serde_json::json!(options));
    schema.remove("default");
}

fn severity_level(schema: &mut schemars::Schema) {
    required_choice(schema, SEVERITY_LEVELS);
}

fn infection_link(schema: &mut schemars::Schema) {
    required_choice(schema, INFECTION_LINKS);
}

/// The infection setting: one of [`SETTINGS`], or empty (not known).
fn infection_setting(schema: &mut schemars::Schema) {
    let options: Vec<&str> = std::iter::once("")
        .chain(SETTINGS.iter().copied())
        .collect();
    schema.insert("enum".into(), serde_json::json!(options));
}

/// Records the infection link and route. Needs write access to the infection link. Audited.
pub async fn set_infection(
    db: &Db,
    viewer: &Viewer,
    person_id: i64,
    input: &InfectionInput,
    ip: Option<&str>,
) -> Result<()> {
    let mut c = Collect::default();
    let link = one_of(&mut c, "link", &input.link, INFECTION_LINKS);
    let setting = opt(&input.setting).and_then(|s| one_of(&mut c, "setting", &s, SETTINGS));
    c.finish()?;
    crate::store::guard::check(
        db,
        Access::Staff(viewer),
        person_id,
        FieldGroup::InfectionLink,
        Action::Write,
    )
    .await?;
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        sqlx::query("UPDATE persons SET infection_link = $1, infection_area = $2, infection_setting = $3, infection_place = $4, updated_at = $5 WHERE id = $6")
            .bind(link).bind(opt(&input.area)).bind(setting).bind(opt(&input.place)).bind(now()).bind(person_id)
            .execute(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "person.infection", "person", Some(person_id), ip).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// The infection link and route as recorded (each absent until recorded).
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct Infection {
    /// confirmed, presumed, unknown.
    pub link: Option<String>,
    /// Area (prefecture, city, or country).
    pub area: Option<String>,
    /// household, workplace, school, care_facility, medical, restaurant, other, unknown.
    pub setting: Option<String>,
    pub place: Option<String>,
}

/// The infection link and route of a person. With a viewer: checked against the matrix and
/// audited (`person.infection.read`); without one the caller has checked (a page that
/// audited its read of the person).
pub async fn infection(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
    ip: Option<&str>,
) -> Result<Infection> {
    let rows: Vec<Infection> = crate::store::guard::read_records(
        db,
        access,
        person_id,
        FieldGroup::InfectionLink,
        "person.infection.read",
        "SELECT infection_link AS link, infection_area AS area, infection_setting AS setting, infection_place AS place
         FROM persons WHERE id = $1",
        ip,
    )
    .await?;
    rows.into_iter()
        .next()
        .ok_or(crate::Error::NotFound("person"))
}

/// One behaviour-history entry of case `person_id` (for registering a contact met there).
async fn behaviour(db: &Db, person_id: i64, id: i64) -> Result<Behaviour> {
    with_db!(db, p => sqlx::query_as(
        "SELECT id, person_id, on_date, time_text, place, place_phone, setting, people_met, created_at
         FROM person_behaviours WHERE person_id = $1 AND id = $2")
        .bind(person_id).bind(id).fetch_optional(p).await?)
    .ok_or_else(|| crate::Error::invalid("behaviour_id", "err-no-behaviour-history-entry-with-this-id-for-this"))
}

/// Prepares `input` as a close contact of case `case_id`: linked to the case, monitored as a
/// contact, and — when it names a behaviour-history entry of the case — last exposed on that
/// entry's date unless a date was typed. `access` must be allowed to write the case's contacts.
pub async fn as_contact_of(
    db: &Db,
    access: Access<'_>,
    case_id: i64,
    input: &mut persons::PersonInput,
) -> Result<()> {
    crate::store::guard::check(db, access, case_id, FieldGroup::Contacts, Action::Write).await?;
    input.source_person_id = Some(case_id);
    input.monitoring_type = "contact".into();
    if let Some(bid) = input.behaviour_id {
        let b = behaviour(db, case_id, bid).await?;
        if input.last_exposure_date.trim().is_empty() {
            input.last_exposure_date = b.on_date.to_string();
        }
    }
    Ok(())
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    /// The API's schemas for the infection link and the severity state the same choices the
    /// store checks, required where the store requires them.
    #[test]
    fn the_infection_and_severity_schemas_state_the_stores_choices() {
        let schema = serde_json::to_value(schemars::schema_for!(InfectionInput)).unwrap();
        let choices = |field: &str| -> Vec<String> {
            schema["properties"][field]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{field} has an enum: {schema}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(choices("link"), INFECTION_LINKS);
        let mut settings = vec![String::new()];
        settings.extend(SETTINGS.iter().map(|s| s.to_string()));
        assert_eq!(choices("setting"), settings);
        assert_eq!(schema["required"], serde_json::json!(["link"]));
        let severity = serde_json::to_value(schemars::schema_for!(SeverityInput)).unwrap();
        assert_eq!(
            severity["properties"]["level"]["enum"],
            serde_json::json!(SEVERITY_LEVELS)
        );
        assert_eq!(severity["required"], serde_json::json!(["level"]));
        assert!(severity["properties"]["level"].get("default").is_none());
        assert!(
            schema["properties"]["link"].get("default").is_none(),
            "a required choice has no default outside its choices"
        );
    }
}
