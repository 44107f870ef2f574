//! The registry's smaller record groups, each a typed document per person: welfare liaison
//! [福祉部門との連携], household [同居者], free memo, interview [問診], underlying conditions
//! [基礎疾患], admission [入院], care contacts, and the date release was communicated
//! [待機解除連絡年月日]. Every field is optional (input burden); what is given is checked.
//! Stored as JSON in `person_sections`, one row per person and section, written whole.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::db::BeginWrite;
use crate::{
    Db, Error, Result,
    access::{Access, Action, FieldGroup, Viewer},
    db::now,
    error::Collect,
    store::{Actor, audit},
    with_db,
};

/// A section and the field group that guards it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Welfare,
    Household,
    Memo,
    Interview,
    UnderlyingConditions,
    Admission,
    CareContacts,
    ReleaseDate,
    /// People found by the investigation: reached? a close contact?
    InvestigationContacts,
}

impl Section {
    pub const ALL: [Section; 9] = [
        Section::Welfare,
        Section::Household,
        Section::Memo,
        Section::Interview,
        Section::UnderlyingConditions,
        Section::Admission,
        Section::CareContacts,
        Section::ReleaseDate,
        Section::InvestigationContacts,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Section::Welfare => "welfare",
            Section::Household => "household",
            Section::Memo => "memo",
            Section::Interview => "interview",
            Section::UnderlyingConditions => "underlying_conditions",
            Section::Admission => "admission",
            Section::CareContacts => "care_contacts",
            Section::ReleaseDate => "release_date",
            Section::InvestigationContacts => "investigation_contacts",
        }
    }

    pub fn parse(s: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|x| x.key() == s)
    }

    pub fn group(self) -> FieldGroup {
        match self {
            Section::Welfare => FieldGroup::Welfare,
            Section::Household => FieldGroup::Household,
            Section::Memo => FieldGroup::Memo,
            Section::Interview => FieldGroup::Interview,
            Section::UnderlyingConditions => FieldGroup::UnderlyingConditions,
            Section::Admission => FieldGroup::Admission,
            Section::CareContacts => FieldGroup::CareContacts,
            Section::ReleaseDate => FieldGroup::ReleaseDate,
            Section::InvestigationContacts => FieldGroup::Contacts,
        }
    }

    /// The JSON Schema of this section's document (the API's OpenAPI document states each
    /// section's fields, lengths and choices; dates may not be in the future, which a schema
    /// cannot say).
    pub fn schema(self, g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        match self {
            Section::Welfare => g.subschema_for::<Welfare>(),
            Section::Household => g.subschema_for::<Household>(),
            Section::Memo => g.subschema_for::<Memo>(),
            Section::Interview => g.subschema_for::<Interview>(),
            Section::UnderlyingConditions => g.subschema_for::<UnderlyingConditions>(),
            Section::Admission => g.subschema_for::<Admission>(),
            Section::CareContacts => g.subschema_for::<CareContacts>(),
            Section::ReleaseDate => g.subschema_for::<ReleaseDate>(),
            Section::InvestigationContacts => g.subschema_for::<InvestigationContacts>(),
        }
    }

    /// Checks a document for this section; returns it normalised (trimmed, unknown keys
    /// refused with their name).
    pub fn validate(self, doc: &serde_json::Value, today: NaiveDate) -> Result<serde_json::Value> {
        fn typed<T: for<'de> Deserialize<'de> + Serialize + Check>(
            doc: &serde_json::Value,
            today: NaiveDate,
        ) -> Result<serde_json::Value> {
            let v: T = serde_json::from_value(doc.clone()).map_err(|e| {
                Error::invalid(
                    "document",
                    format!("{e}; see the API documentation for this section's fields"),
                )
            })?;
            let mut c = Collect::default();
            v.check(&mut c, today);
            c.finish()?;
            serde_json::to_value(&v).map_err(|e| Error::Internal(e.to_string()))
        }
        match self {
            Section::Welfare => typed::<Welfare>(doc, today),
            Section::Household => typed::<Household>(doc, today),
            Section::Memo => typed::<Memo>(doc, today),
            Section::Interview => typed::<Interview>(doc, today),
            Section::UnderlyingConditions => typed::<UnderlyingConditions>(doc, today),
            Section::Admission => typed::<Admission>(doc, today),
            Section::CareContacts => typed::<CareContacts>(doc, today),
            Section::ReleaseDate => typed::<ReleaseDate>(doc, today),
            Section::InvestigationContacts => typed::<InvestigationContacts>(doc, today),
        }
    }
}

trait Check {
    fn check(&self, c: &mut Collect, today: NaiveDate);
}

fn not_future(c: &mut Collect, field: &'static str, d: Option<NaiveDate>, today: NaiveDate) {
    if d.is_some_and(|d| d > today) {
        c.push(field, "err-the-date-is-in-the-future-check-it");
    }
}

fn max_len(c: &mut Collect, field: &'static str, v: &Option<String>, max: usize) {
    if v.as_ref().is_some_and(|v| v.chars().count() > max) {
        c.push(field, format!("use at most {max} characters"));
    }
}

/// Welfare liaison needed [福祉部門との連携の要否].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Welfare {
    pub disability: bool,
    pub public_assistance: bool,
    pub childcare_needed: bool,
    pub carer_needed: bool,
    #[schemars(length(max = 500))]
    pub other: Option<String>,
}
impl Check for Welfare {
    fn check(&self, c: &mut Collect, _: NaiveDate) {
        max_len(c, "other", &self.other, 500);
    }
}

/// A household member [同居者]; `person_id` once registered as a contact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(extend("required" = ["name"]))]
pub struct Member {
    /// Required, not blank.
    #[schemars(transform = crate::api_schema::not_blank)]
    pub name: String,
    pub relation: Option<String>,
    pub phone: Option<String>,
    pub person_id: Option<i64>,
}

/// Household flags and members.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Household {
    pub lives_with_elderly: bool,
    pub lives_with_underlying_disease: bool,
    pub lives_with_immunosuppressed: bool,
    pub lives_with_pregnant: bool,
    pub lives_with_healthcare_worker: bool,
    #[schemars(length(max = 30))]
    pub members: Vec<Member>,
}
impl Check for Household {
    fn check(&self, c: &mut Collect, _: NaiveDate) {
        if self.members.len() > 30 {
            c.push("members", "err-at-most-30-household-members");
        }
        if self.members.iter().any(|m| m.name.trim().is_empty()) {
            c.push("members", "err-every-member-needs-a-name");
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Memo {
    #[schemars(length(max = 4000))]
    pub text: Option<String>,
}
impl Check for Memo {
    fn check(&self, c: &mut Collect, _: NaiveDate) {
        max_len(c, "text", &self.text, 4000);
    }
}

/// Interview [問診].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Interview {
    /// Not in the future.
    pub date: Option<NaiveDate>,
    pub institution: Option<String>,
    pub insurance_number: Option<String>,
    #[schemars(length(max = 1000))]
    pub symptoms: Option<String>,
    pub referred_by_institution: Option<String>,
    pub referred_by_doctor: Option<String>,
    pub previous_admissions: Option<String>,
    #[schemars(length(max = 2000))]
    pub remarks: Option<String>,
}
impl Check for Interview {
    fn check(&self, c: &mut Collect, today: NaiveDate) {
        not_future(c, "date", self.date, today);
        max_len(c, "symptoms", &self.symptoms, 1000);
        max_len(c, "remarks", &self.remarks, 2000);
    }
}

/// Underlying conditions and medication [基礎疾患・服薬], pregnancy and smoking.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UnderlyingConditions {
    pub copd: bool,
    pub diabetes: bool,
    pub hypertension: bool,
    pub dyslipidaemia: bool,
    pub cerebrovascular: bool,
    pub dementia: bool,
    pub other: Option<String>,
    #[schemars(length(max = 1000))]
    pub medication: Option<String>,
    pub immunosuppressants: bool,
    pub anticancer_drugs: bool,
    pub dialysis: bool,
    #[schemars(range(max = 45))]
    pub pregnancy_weeks: Option<u8>,
    #[schemars(range(max = 100))]
    pub smoking_start_age: Option<u8>,
    #[schemars(range(max = 200))]
    pub cigarettes_per_day: Option<u16>,
}
impl UnderlyingConditions {
    /// Any condition, treatment or pregnancy that makes a person high risk for the silence
    /// rule ([`crate::rules::Risk`]): (any condition, pregnant).
    pub fn risk(&self) -> (bool, bool) {
        let condition = self.copd
            || self.diabetes
            || self.hypertension
            || self.dyslipidaemia
            || self.cerebrovascular
            || self.dementia
            || self.immunosuppressants
            || self.anticancer_drugs
            || self.dialysis
            || self.other.as_deref().is_some_and(|o| !o.trim().is_empty());
        (condition, self.pregnancy_weeks.is_some())
    }
}

impl Check for UnderlyingConditions {
    fn check(&self, c: &mut Collect, _: NaiveDate) {
        if self.pregnancy_weeks.is_some_and(|w| w > 45) {
            c.push("pregnancy_weeks", "err-weeks-of-pregnancy-0-to-45");
        }
        if self.smoking_start_age.is_some_and(|a| a > 100) {
            c.push("smoking_start_age", "err-an-age-in-years");
        }
        if self.cigarettes_per_day.is_some_and(|n| n > 200) {
            c.push("cigarettes_per_day", "err-at-most-200-a-day");
        }
        max_len(c, "medication", &self.medication, 1000);
    }
}

/// Admission ◎ [入院].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Admission {
    /// Not in the future.
    pub admitted_on: Option<NaiveDate>,
    /// Not in the future, nor before `admitted_on`.
    pub discharged_on: Option<NaiveDate>,
    pub hospital: Option<String>,
    pub doctor: Option<String>,
    pub ards: bool,
    pub xray_ct_findings: Option<String>,
    pub icu: bool,
    pub ventilator: bool,
    pub ecmo: bool,
    /// discharged, died, transferred, in_hospital.
    #[schemars(extend("enum" = ["discharged", "died", "transferred", "in_hospital", null]))]
    pub outcome: Option<String>,
    /// Not in the future; required when `outcome` is `died`.
    pub died_on: Option<NaiveDate>,
    pub cause_of_death: Option<String>,
}
impl Check for Admission {
    fn check(&self, c: &mut Collect, today: NaiveDate) {
        not_future(c, "admitted_on", self.admitted_on, today);
        not_future(c, "discharged_on", self.discharged_on, today);
        not_future(c, "died_on", self.died_on, today);
        if let (Some(a), Some(d)) = (self.admitted_on, self.discharged_on)
            && d < a
        {
            c.push(
                "discharged_on",
                "err-discharge-cannot-come-before-admission",
            );
        }
        if let Some(o) = &self.outcome
            && !["discharged", "died", "transferred", "in_hospital"].contains(&o.as_str())
        {
            c.push("outcome", "err-choose-discharged-died-transferred-or-in");
        }
        if self.outcome.as_deref() == Some("died") && self.died_on.is_none() {
            c.push("died_on", "err-give-the-date-of-death");
        }
    }
}

/// Contacts for care: emergency hospital, family doctor, follow-up body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CareContacts {
    #[schemars(length(max = 200))]
    pub emergency_hospital: Option<String>,
    #[schemars(length(max = 200))]
    pub family_doctor: Option<String>,
    #[schemars(length(max = 200))]
    pub follow_up_body: Option<String>,
}
impl Check for CareContacts {
    fn check(&self, c: &mut Collect, _: NaiveDate) {
        max_len(c, "emergency_hospital", &self.emergency_hospital, 200);
        max_len(c, "family_doctor", &self.family_doctor, 200);
        max_len(c, "follow_up_body", &self.follow_up_body, 200);
    }
}

/// Date release from waiting / isolation was communicated ◎ [待機解除連絡年月日].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReleaseDate {
    /// Not in the future.
    pub communicated_on: Option<NaiveDate>,
}
impl Check for ReleaseDate {
    fn check(&self, c: &mut Collect, today: NaiveDate) {
        not_future(c, "communicated_on", self.communicated_on, today);
    }
}

/// A stored section.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Stored {
    pub section: Section,
    pub data: serde_json::Value,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Writes a section whole (validated). Needs write access to its field group. Audited.
pub async fn put(
    db: &Db,
    viewer: &Viewer,
    person_id: i64,
    section: Section,
    doc: &serde_json::Value,
    today: NaiveDate,
    ip: Option<&str>,
) -> Result<serde_json::Value> {
    let data = section.validate(doc, today)?;
    crate::store::guard::check(
        db,
        Access::Staff(viewer),
        person_id,
        section.group(),
        Action::Write,
    )
    .await?;
    let t = now();
    let text = data.to_string();
    with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        sqlx::query(
            "INSERT INTO person_sections (person_id, section, data, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (person_id, section) DO UPDATE SET data = $3, updated_by = $4, updated_at = $5")
            .bind(person_id).bind(section.key()).bind(&text).bind(viewer.staff_id).bind(t)
            .execute(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), &format!("person.section.{}", section.key()), "person", Some(person_id), ip).await?;
        tx.commit().await?;
    });
    Ok(data)
}

/// The sections of a person `access` may read, each with its
/// document (an empty default when never written).
pub async fn get_all(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
    ip: Option<&str>,
) -> Result<Vec<Stored>> {
    let rows: Vec<(String, String, DateTime<Utc>)> = crate::store::guard::read_records(
        db,
        access,
        person_id,
        FieldGroup::Basic,
        "person.sections.read",
        "SELECT section, data, updated_at FROM person_sections WHERE person_id = $1",
        ip,
    )
    .await?;
    let today = now().date_naive();
    Ok(Section::ALL
        .into_iter()
        .filter(|s| {
            access
                .viewer()
                .is_none_or(|v| v.may(s.group(), Action::Read))
        })
        .map(|s| {
            let found = rows.iter().find(|(k, _, _)| k == s.key());
            Stored {
                section: s,
                data: found
                    .and_then(|(_, d, _)| serde_json::from_str(d).ok())
                    .unwrap_or_else(|| {
                        s.validate(&serde_json::json!({}), today)
                            .unwrap_or(serde_json::Value::Null)
                    }),
                updated_at: found.map(|(_, _, at)| *at),
            }
        })
        .collect())
}

/// A person named in the investigation [接触者]: whether they were reached and whether they
/// count as a close contact (close contacts are then registered to be observed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(extend("required" = ["name"]))]
pub struct InvestigationContact {
    /// Required, not blank.
    #[schemars(transform = crate::api_schema::not_blank)]
    pub name: String,
    pub phone: Option<String>,
    pub reached: bool,
    pub close_contact: bool,
    pub person_id: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct InvestigationContacts {
    #[schemars(length(max = 200))]
    pub contacts: Vec<InvestigationContact>,
}
impl Check for InvestigationContacts {
    fn check(&self, c: &mut Collect, _: NaiveDate) {
        if self.contacts.len() > 200 {
            c.push("contacts", "err-at-most-200-people-per-case");
        }
        if self.contacts.iter().any(|m| m.name.trim().is_empty()) {
            c.push("contacts", "err-every-person-needs-a-name");
        }
    }
}
