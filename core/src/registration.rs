//! **Registration, once** — the one path by which a person enters the registry, whether from
//! the console form or the JSON API: parse (every bad field at once) → people the registering
//! staff member may see who look like the same person (folded kana name, date of birth,
//! phone) → create, with today's check-in and the audit row in one transaction. Filing an
//! occurrence report [発生届] takes the same steps and links the report to its person.
use chrono::{Duration, NaiveDate};

use crate::{
    Db, Error, Result,
    access::{Action, FieldGroup, Role, Viewer},
    periods::Periods,
    stats::reporting::{Groups, Mode, Reporting},
    store::{
        Actor,
        persons::{self, DuplicateCandidate, PersonInput},
        reports::{self, Filed, ReportInput},
        staff,
    },
};

/// What asking to register led to.
#[derive(Debug)]
pub enum Registration<T> {
    /// Done: the new person's id (or the filed report).
    Done(T),
    /// People who may be the one being registered: nothing was written. Ask again with
    /// `not_duplicate` (or, for a report, the right `person_id`).
    PossibleDuplicates(Vec<DuplicateCandidate>),
}

/// What registration needs besides the input: the observation-period rules, today's date
/// in Japan and the answer window of check-ins.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub periods: &'a Periods,
    pub today: NaiveDate,
    pub window: Duration,
    pub ip: Option<&'a str>,
    /// Which cases get a full occurrence report (`flows/reporting.toml`).
    pub reporting: &'a Reporting,
}

/// Registers a person for `viewer` (health-centre staff: their own centre).
pub async fn register(
    db: &Db,
    viewer: &Viewer,
    input: &PersonInput,
    cx: Context<'_>,
) -> Result<Registration<i64>> {
    if viewer.role != Role::HealthCentreStaff {
        return Err(Error::Forbidden("only health-centre staff can use this"));
    }
    let p = input.parse_with(cx.periods, cx.today)?;
    if !input.not_duplicate {
        let dups = persons::possible_duplicates(db, viewer, &p).await?;
        if !dups.is_empty() {
            return Ok(Registration::PossibleDuplicates(dups));
        }
    }
    let id = persons::create(
        db,
        Actor::Staff(viewer.staff_id),
        viewer.health_centre_id,
        &p,
        cx.window,
        cx.ip,
    )
    .await?;
    tracing::info!(
        person_id = id,
        staff_id = viewer.staff_id,
        "person registered"
    );
    Ok(Registration::Done(id))
}

/// Files an occurrence report (health-centre staff, or a medical institution directly — to
/// its own centre or another of the same prefecture, never elsewhere): the person is created,
/// linked, or found to be a re-positive case; health-centre staff first see possible
/// duplicates unless they name the person or say `not_duplicate`.
pub async fn file_report(
    db: &Db,
    viewer: &Viewer,
    input: &ReportInput,
    cx: Context<'_>,
) -> Result<Registration<Filed>> {
    if !viewer.may(FieldGroup::OccurrenceReport, Action::Write)
        || !matches!(
            viewer.role,
            Role::HealthCentreStaff | Role::MedicalInstitution
        )
    {
        return Err(Error::Forbidden(
            "only health centres and medical institutions file occurrence reports",
        ));
    }
    let centre = match (viewer.role, input.health_centre_id) {
        (Role::MedicalInstitution, Some(c)) if c != viewer.health_centre_id => {
            let refuse = || {
                Error::invalid(
                    "health_centre_id",
                    "err-not-a-health-centre-you-may-report-to-your-own",
                )
            };
            let (theirs, ours) = staff::prefecture_of(db, c, viewer.health_centre_id)
                .await?
                .ok_or_else(refuse)?;
            if theirs.is_empty() || theirs != ours {
                return Err(refuse());
            }
            c
        }
        _ => viewer.health_centre_id,
    };
    let mut r = input.parse(cx.periods, cx.today)?;
    r.notifiable = notifiable(db, centre, input, &r, cx.reporting).await?;
    if viewer.role == Role::HealthCentreStaff
        && input.person_id.is_none()
        && !input.person.not_duplicate
    {
        let dups = persons::possible_duplicates(db, viewer, &r.person).await?;
        if !dups.is_empty() {
            return Ok(Registration::PossibleDuplicates(dups));
        }
    }
    let target = reports::target(db, viewer, centre, &r, input.person_id).await?;
    let filed = reports::file(db, viewer, centre, &r, target, cx.window, cx.ip).await?;
    tracing::info!(
        report_id = filed.report_id,
        person_id = filed.person_id,
        linkage = filed.linkage,
        staff_id = viewer.staff_id,
        "occurrence report filed"
    );
    Ok(Registration::Done(filed))
}

/// Under a counts-only rule in force on the diagnosis date in the centre's prefecture, a full
/// report is refused for someone in no notifiable group (they are counted in the daily
/// report instead); otherwise returns the groups that made it notifiable.
async fn notifiable(
    db: &Db,
    centre: i64,
    input: &ReportInput,
    r: &reports::NewReport,
    rules: &Reporting,
) -> Result<Option<String>> {
    let prefecture = staff::prefecture_of(db, centre, centre)
        .await?
        .map(|p| p.0)
        .unwrap_or_default();
    if rules.rule_on(r.diagnosis_date, &prefecture).mode == Mode::All {
        return Ok(None);
    }
    let groups = Groups {
        aged_65_or_over: r
            .person
            .date_of_birth
            .is_some_and(|dob| crate::stats::age_on(dob, r.diagnosis_date) >= 65),
        needs_admission: input.needs_admission,
        pregnant: input.pregnant,
        needs_treatment: input.needs_treatment,
        deceased: r.report_type == "deceased",
    };
    match groups.codes() {
        Some(c) => Ok(Some(c)),
        None => Err(Error::invalid_with(
            "notifiable",
            "err-report-outside-notifiable-groups",
            vec![("date", r.diagnosis_date.to_string())],
        )),
    }
}
