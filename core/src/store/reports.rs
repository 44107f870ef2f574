//! Occurrence reports [発生届]. Filing validates the notification's mandatory fields and, in
//! one transaction, creates the person at the responsible health centre (or links the
//! report to the person already there, or opens a re-positive case linked to an ended one),
//! stores the report and audits it. A medical institution filing directly gets its patient
//! assigned to it, so the institution sees the record it filed and nothing else.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::db::BeginWrite;
use crate::{
    Db, Error, Result,
    access::{Access, Action, FieldGroup, Role, Viewer},
    db::now,
    error::Collect,
    periods::Periods,
    store::{
        Actor, audit,
        persons::{self, NewPerson, PersonInput, insert_person},
        registry::{date, one_of, opt},
    },
    with_db,
};

pub const REPORT_TYPES: &[&str] = &["patient", "asymptomatic", "suspected", "deceased"];
pub const DIAGNOSIS_METHODS: &[&str] = &[
    "pcr",
    "antigen_quantitative",
    "antigen_qualitative",
    "lamp",
    "clinical",
    "other",
];
pub const INFECTION_ROUTES: &[&str] = &["droplet", "contact", "aerosol", "unknown", "other"];

/// An occurrence report as filed: the patient (the registration fields) and the
/// notification's own fields.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
#[schemars(transform = report_schema)]
pub struct ReportInput {
    #[serde(flatten)]
    pub person: PersonInput,
    /// patient, asymptomatic, suspected, deceased.
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice(s, REPORT_TYPES))]
    pub report_type: String,
    #[schemars(transform = crate::api_schema::date)]
    pub diagnosis_date: String,
    /// pcr, antigen_quantitative, antigen_qualitative, lamp, clinical, other.
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice(s, DIAGNOSIS_METHODS))]
    pub diagnosis_method: String,
    #[schemars(transform = crate::api_schema::not_blank)]
    pub doctor_name: String,
    #[schemars(transform = crate::api_schema::not_blank)]
    pub institution_name: String,
    pub institution_phone: String,
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub death_date: String,
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub estimated_infection_date: String,
    /// Where the infection is thought to have happened (prefecture or country, setting).
    pub infection_place: String,
    /// droplet, contact, aerosol, unknown, other.
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice_or_blank(s, INFECTION_ROUTES))]
    pub infection_route: String,
    pub symptoms: String,
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice_or_blank(s, crate::store::registry::SEVERITY_LEVELS))]
    pub severity: String,
    pub notes: String,
    /// The responsible health centre (a medical institution's filing; default the filer's).
    #[serde(deserialize_with = "crate::domain::lenient::opt_i64")]
    #[schemars(with = "Option<i64>")]
    pub health_centre_id: Option<i64>,
    /// The person this report is about, when the filer has chosen an existing record.
    #[serde(deserialize_with = "crate::domain::lenient::opt_i64")]
    #[schemars(with = "Option<i64>")]
    pub person_id: Option<i64>,
    /// Under counts-only reporting rules (`flows/reporting.toml`): the notifiable group the
    /// person is in besides age — needs admission, pregnant, at risk needing a COVID-19 drug
    /// or new oxygen.
    #[serde(deserialize_with = "crate::domain::lenient::flag")]
    #[schemars(with = "bool")]
    pub needs_admission: bool,
    #[serde(deserialize_with = "crate::domain::lenient::flag")]
    #[schemars(with = "bool")]
    pub pregnant: bool,
    #[serde(deserialize_with = "crate::domain::lenient::flag")]
    #[schemars(with = "bool")]
    pub needs_treatment: bool,
}

#[derive(Debug, Clone)]
pub struct NewReport {
    pub person: NewPerson,
    pub report_type: &'static str,
    pub diagnosis_date: NaiveDate,
    pub diagnosis_method: &'static str,
    pub doctor_name: String,
    pub institution_name: String,
    pub institution_phone: Option<String>,
    pub death_date: Option<NaiveDate>,
    pub estimated_infection_date: Option<NaiveDate>,
    pub infection_place: Option<String>,
    pub infection_route: Option<&'static str>,
    pub symptoms: Option<String>,
    pub severity: Option<&'static str>,
    pub notes: Option<String>,
    /// Why a full report under counts-only rules (set by `registration::file_report`).
    pub notifiable: Option<String>,
}

impl ReportInput {
    /// Checks every mandatory field of the notification (each problem named) and the
    /// patient's registration; the observation period follows `periods`.
    pub fn parse(&self, periods: &Periods, today: NaiveDate) -> Result<NewReport> {
        let mut c = Collect::default();
        let report_type = one_of(&mut c, "report_type", &self.report_type, REPORT_TYPES);
        let date = |c: &mut Collect, field: &'static str, v: &str, required: bool| {
            if v.trim().is_empty() {
                if required {
                    c.push(field, "err-required-on-the-occurrence-report-write-yyyy-mm");
                }
                return None;
            }
            date(c, field, v, today)
        };
        let diagnosis_date = date(&mut c, "diagnosis_date", &self.diagnosis_date, true);
        let diagnosis_method = one_of(
            &mut c,
            "diagnosis_method",
            &self.diagnosis_method,
            DIAGNOSIS_METHODS,
        );
        for (field, v, why) in [
            (
                "doctor_name",
                &self.doctor_name,
                "err-report-needs-the-doctor-s-name",
            ),
            (
                "institution_name",
                &self.institution_name,
                "err-report-needs-the-institution-s-name",
            ),
            (
                "person.sex",
                &self.person.sex,
                "err-report-needs-the-patient-s-sex",
            ),
            (
                "person.date_of_birth",
                &self.person.date_of_birth,
                "err-report-needs-the-patient-s-date-of-birth",
            ),
            (
                "person.municipality",
                &self.person.municipality,
                "err-report-needs-the-patient-s-municipality",
            ),
            (
                "person.phone",
                &self.person.phone,
                "err-report-needs-the-patient-s-phone",
            ),
        ] {
            if v.trim().is_empty() {
                c.push(field.trim_start_matches("person."), why);
            }
        }
        let kind = report_type.unwrap_or("patient");
        if kind == "patient" && self.person.onset_date.trim().is_empty() {
            c.push(
                "onset_date",
                "err-a-symptomatic-patient-s-onset-date-is-required",
            );
        }
        if kind == "asymptomatic" && self.person.specimen_date.trim().is_empty() {
            c.push(
                "specimen_date",
                "err-an-asymptomatic-carrier-s-specimen-date-is",
            );
        }
        let death_date = date(&mut c, "death_date", &self.death_date, kind == "deceased");
        let estimated_infection_date = date(
            &mut c,
            "estimated_infection_date",
            &self.estimated_infection_date,
            false,
        );
        let infection_route = opt(&self.infection_route)
            .and_then(|r| one_of(&mut c, "infection_route", &r, INFECTION_ROUTES));
        let severity = opt(&self.severity).and_then(|v| {
            one_of(
                &mut c,
                "severity",
                &v,
                crate::store::registry::SEVERITY_LEVELS,
            )
        });
        // The patient as a person under observation (a patient, whatever the report type).
        let mut person = self.person.clone();
        person.monitoring_type = "patient".into();
        if person.channel.trim().is_empty() {
            person.channel = "sms".into();
        }
        if person.checkin_time.trim().is_empty() {
            person.checkin_time = "09:00".into();
        }
        if person.observation_end.trim().is_empty() && kind == "deceased" {
            person.observation_end = today.to_string();
            person.observation_start = today.to_string();
            // The death is why the period ends here, whatever the rules would say.
            if person.period_override_reason.trim().is_empty() {
                person.period_override_reason = "死亡 (deceased report)".into();
            }
        }
        let parsed = match person.parse_with(periods, today) {
            Ok(p) => Some(p),
            Err(Error::Invalid(f)) => {
                // A missing day 0 is already named (the onset or specimen date the report
                // type needs): the period it would give is not asked for again (the report
                // form has no period fields; the API may still send them).
                let day0_named =
                    c.0.iter()
                        .any(|x| matches!(&*x.field, "onset_date" | "specimen_date"));
                let period_asked = |e: &crate::error::FieldError| {
                    matches!(
                        e.key.as_deref(),
                        Some(
                            "err-enter-the-start-date-or-an-onset-specimen-or"
                                | "err-enter-the-end-date-or-an-onset-specimen-or-last"
                        )
                    )
                };
                for e in f {
                    let named = c.0.iter().any(|x| x.field == e.field);
                    let implied = day0_named && period_asked(&e);
                    if !named && !implied {
                        c.0.push(e);
                    }
                }
                None
            }
            Err(e) => return Err(e),
        };
        c.finish()?;
        Ok(NewReport {
            person: parsed.expect("checked"),
            report_type: report_type.expect("checked"),
            diagnosis_date: diagnosis_date.expect("checked"),
            diagnosis_method: diagnosis_method.expect("checked"),
            doctor_name: self.doctor_name.trim().to_string(),
            institution_name: self.institution_name.trim().to_string(),
            institution_phone: opt(&self.institution_phone),
            death_date,
            estimated_infection_date,
            infection_place: opt(&self.infection_place),
            infection_route,
            symptoms: opt(&self.symptoms),
            severity,
            notes: opt(&self.notes),
            notifiable: None,
        })
    }
}

/// The report's schema: the notification's mandatory fields required, and the patient's
/// fields the notification makes mandatory (sex, date of birth, municipality, phone) stated
/// as such over the registration's optional ones. What depends on the report type (an onset
/// date for a patient, a specimen date for an asymptomatic carrier, the date of death) the
/// refusals name by their `rule`.
fn report_schema(schema: &mut schemars::Schema) {
    use crate::api_schema as s;
    if let Some(props) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        let mut tighten = |field: &str, f: &dyn Fn(&mut schemars::Schema)| {
            if let Some(v) = props.get_mut(field)
                && let Ok(mut sub) = schemars::Schema::try_from(v.take())
            {
                sub.remove("anyOf");
                sub.remove("enum");
                f(&mut sub);
                *v = sub.to_value();
            }
        };
        tighten("sex", &|x| s::choice(x, s::SEXES));
        tighten("date_of_birth", &s::date);
        tighten("municipality", &s::not_blank);
        tighten("phone", &s::phone);
    }
    let required = [
        "name",
        "report_type",
        "diagnosis_date",
        "diagnosis_method",
        "doctor_name",
        "institution_name",
        "sex",
        "date_of_birth",
        "municipality",
        "phone",
    ];
    schema.insert("required".into(), serde_json::json!(required));
}

/// What filing did.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Filed {
    pub report_id: i64,
    pub person_id: i64,
    /// created, linked or repositive.
    pub linkage: &'static str,
    /// For a re-positive case: the earlier case.
    pub previous_case_id: Option<i64>,
}

/// Where a report goes: a person already registered (and whether their case has ended).
#[derive(Debug, Clone, Copy)]
pub enum Target {
    New,
    Existing(i64),
    /// A new record, with a possible match for the responsible centre to confirm (a
    /// medical institution's report never links itself to an existing person).
    Proposed(i64),
}

/// Finds the existing record a report is about: the one the filer chose (within the
/// filer's own scope), or none. A medical institution's report is linked by itself only to
/// a patient already in its scope: otherwise, when one person of the responsible centre matches on kana name and date of
/// birth **and** on phone or written name, the match is proposed to the centre
/// ([`Target::Proposed`]) and the report creates a new record; the centre confirms by
/// merging. Health-centre staff get [`persons::possible_duplicates`] through the API instead.
pub async fn target(
    db: &Db,
    viewer: &Viewer,
    centre: i64,
    r: &NewReport,
    chosen: Option<i64>,
) -> Result<Target> {
    if let Some(id) = chosen {
        crate::store::guard::check(
            db,
            Access::Staff(viewer),
            id,
            FieldGroup::OccurrenceReport,
            Action::Write,
        )
        .await?;
        return Ok(Target::Existing(id));
    }
    if viewer.role != Role::MedicalInstitution {
        return Ok(Target::New);
    }
    let (Some(key), Some(dob)) = (&r.person.details.name_key, r.person.date_of_birth) else {
        return Ok(Target::New);
    };
    let phone = r.person.phone.as_ref().map(|p| p.as_str().to_string());
    let ids: Vec<i64> = with_db!(db, p => sqlx::query_scalar(
        "SELECT p.id FROM persons p WHERE p.health_centre_id = $1 AND p.name_key = $2 AND p.date_of_birth = $3
           AND (p.phone = $4 OR p.name = $5)
           AND p.merged_into IS NULL
           AND NOT EXISTS (SELECT 1 FROM persons q WHERE q.previous_case_id = p.id)
         ORDER BY p.id DESC LIMIT 2")
        .bind(centre).bind(key).bind(dob).bind(phone).bind(&r.person.name).fetch_all(p).await?);
    Ok(match ids.as_slice() {
        // Its own patient (already in its scope) is linked; anyone else is only proposed.
        [one] => match crate::store::guard::check(
            db,
            Access::Staff(viewer),
            *one,
            FieldGroup::OccurrenceReport,
            Action::Write,
        )
        .await
        {
            Ok(()) => Target::Existing(*one),
            Err(_) => Target::Proposed(*one),
        },
        _ => Target::New,
    })
}

/// Files the report (see the module documentation). `window` is the check-in answer window.
pub async fn file(
    db: &Db,
    viewer: &Viewer,
    centre: i64,
    r: &NewReport,
    target: Target,
    window: chrono::Duration,
    ip: Option<&str>,
) -> Result<Filed> {
    let t = now();
    let today = t.with_timezone(&chrono_tz::Asia::Tokyo).date_naive();
    // An existing person whose case has ended: a new case linked to the earlier one.
    let proposed = match target {
        Target::Proposed(id) => Some(id),
        _ => None,
    };
    let (existing, previous) = match target {
        Target::New | Target::Proposed(_) => (None, None),
        Target::Existing(id) => {
            let p = persons::load(db, id).await?;
            if p.status == "ended" || p.observation_end < today {
                (None, Some(id))
            } else {
                (Some(id), None)
            }
        }
    };
    let mut person = r.person.clone();
    person.details.previous_case_id = previous;
    let plans = persons::plans_today(db, centre, &person, window, t).await?;
    let linkage = match (existing, previous) {
        (Some(_), _) => "linked",
        (None, Some(_)) => "repositive",
        _ => "created",
    };
    let org = (viewer.role == Role::MedicalInstitution)
        .then_some(viewer.organisation_id)
        .flatten();
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let person_id = match existing {
            Some(id) => id,
            None => insert_person!(tx, centre, &person, plans, t)?,
        };
        if r.report_type == "deceased" {
            sqlx::query("UPDATE persons SET status = 'ended', updated_at = $1 WHERE id = $2")
                .bind(t).bind(person_id).execute(&mut *tx).await?;
            sqlx::query("UPDATE checkins SET status = 'cancelled', closed_at = $1 WHERE person_id = $2 AND status IN ('planned', 'sent')")
                .bind(t).bind(person_id).execute(&mut *tx).await?;
        }
        let report_id: i64 = sqlx::query_scalar(
            "INSERT INTO occurrence_reports (person_id, health_centre_id, report_type, diagnosis_date, diagnosis_method,
               doctor_name, institution_name, institution_phone, onset_date, specimen_date, death_date,
               estimated_infection_date, infection_place, infection_route, symptoms, severity, notes, linkage,
               filed_by, filed_by_organisation, created_at, proposed_person_id, notifiable)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
             RETURNING id")
            .bind(person_id).bind(centre).bind(r.report_type).bind(r.diagnosis_date).bind(r.diagnosis_method)
            .bind(&r.doctor_name).bind(&r.institution_name).bind(&r.institution_phone)
            .bind(person.details.onset_date).bind(person.details.specimen_date).bind(r.death_date)
            .bind(r.estimated_infection_date).bind(&r.infection_place).bind(r.infection_route).bind(&r.symptoms)
            .bind(r.severity).bind(&r.notes).bind(linkage).bind(viewer.staff_id).bind(org).bind(t).bind(proposed).bind(&r.notifiable)
            .fetch_one(&mut *tx).await?;
        if let Some(o) = org {
            sqlx::query("INSERT INTO person_assignments (person_id, organisation_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(person_id).bind(o).bind(t).execute(&mut *tx).await?;
        }
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "occurrence_report.file", "person", Some(person_id), ip).await?;
        tx.commit().await?;
        Ok(Filed { report_id, person_id, linkage, previous_case_id: previous })
    })
}

/// A filed report, for the person page and the API.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct Report {
    pub id: i64,
    pub person_id: i64,
    pub report_type: String,
    pub diagnosis_date: NaiveDate,
    pub diagnosis_method: String,
    pub doctor_name: String,
    pub institution_name: String,
    pub onset_date: Option<NaiveDate>,
    pub specimen_date: Option<NaiveDate>,
    pub death_date: Option<NaiveDate>,
    pub infection_place: Option<String>,
    pub infection_route: Option<String>,
    pub linkage: String,
    pub created_at: DateTime<Utc>,
    /// A medical institution's report that looks like an existing person of the centre: that
    /// person, for the centre to confirm by merging (never shown to the institution).
    pub proposed_person_id: Option<i64>,
}

/// The occurrence reports of a person (see [`persons::read_records`] for `viewer`).
pub async fn for_person(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
    ip: Option<&str>,
) -> Result<Vec<Report>> {
    crate::store::guard::read_records(
        db,
        access,
        person_id,
        FieldGroup::OccurrenceReport,
        "occurrence_report.read",
        "SELECT id, person_id, report_type, diagnosis_date, diagnosis_method, doctor_name, institution_name,
                onset_date, specimen_date, death_date, infection_place, infection_route, linkage, created_at,
                proposed_person_id
         FROM occurrence_reports WHERE person_id = $1 ORDER BY id DESC",
        ip,
    )
    .await
    .map(|mut list: Vec<Report>| {
        // Only the responsible centre sees what a report may be linked to.
        if access.viewer().is_some_and(|v| v.role != Role::HealthCentreStaff) {
            for r in &mut list {
                r.proposed_person_id = None;
            }
        }
        list
    })
}
