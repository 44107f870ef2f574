//! Filing an occurrence report [発生届] from the console (health-centre staff, or a medical
//! institution directly), through `mimamori_core::registration::file_report` as the API.
use axum::{
    Form, Router,
    extract::{ConnectInfo, State},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use maud::{Markup, html};
use mimamori_core::{
    Error,
    access::Role,
    domain::Lang,
    registration::{self, Registration},
    store::{persons, reports},
};
use serde::Deserialize;

use crate::web::{
    AppState,
    auth::CurrentStaff,
    error::{AppError, HtmlError},
    i18n::{UiLang, tr},
    layout,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/reports/new", get(new_form).post(create))
}

#[derive(Deserialize, Default)]
struct ReportForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    report: reports::ReportInput,
}

/// The fields on the occurrence report form (an error about any other is named in words).
const REPORT_FIELDS: &[&str] = &[
    "report_type",
    "diagnosis_date",
    "diagnosis_method",
    "doctor_name",
    "institution_name",
    "institution_phone",
    "name",
    "name_kana",
    "sex",
    "date_of_birth",
    "phone",
    "email",
    "prefecture_code",
    "municipality",
    "address",
    "occupation",
    "onset_date",
    "specimen_date",
    "death_date",
    "estimated_infection_date",
    "infection_place",
    "infection_route",
    "severity",
    "symptoms",
    "notes",
    "notifiable",
];

fn form_markup(
    lang: Lang,
    who: &CurrentStaff,
    v: &reports::ReportInput,
    errors: &[mimamori_core::FieldError],
    dups: &[persons::DuplicateCandidate],
) -> Markup {
    let err = |f: &str| {
        errors
            .iter()
            .find(|e| e.field == f)
            .map(|e| e.message(lang))
    };
    // ※ marks the notification's mandatory fields.
    let field = |name: &'static str,
                 label: &str,
                 kind: &'static str,
                 value: &str,
                 required: bool| {
        let e = err(name);
        html! {
            label for=(name) { (label) @if required { " ※" } }
            input id=(name) name=(name) type=(kind) value=(value) required[required]
                aria-invalid=[e.as_ref().map(|_| "true")] aria-describedby=(format!("{name}-err"));
            @if let Some(e) = e { div class="err" id=(format!("{name}-err")) { (e) } }
        }
    };
    let select = |name: &'static str,
                  label: &str,
                  options: &[&'static str],
                  value: &str,
                  required: bool| {
        let e = err(name);
        html! {
            label for=(name) { (label) @if required { " ※" } }
            select id=(name) name=(name) aria-invalid=[e.as_ref().map(|_| "true")] aria-describedby=(format!("{name}-err")) {
                @if !required || value.is_empty() { option value="" { "—" } }
                @for o in options { option value=(o) selected[value == *o] { (option_label(lang, o)) } }
            }
            @if let Some(e) = e { div class="err" id=(format!("{name}-err")) { (e) } }
        }
    };
    let p = &v.person;
    html! {
        (super::forms::error_summary(lang, errors, REPORT_FIELDS))
        p class="muted" { (tr(lang, "marks-the-notification-s-mandatory")) }
        form method="post" action="/reports/new" novalidate {
            input type="hidden" name="csrf" value=(who.csrf);
            @if !dups.is_empty() {
                div class="errors" role="alert" id="duplicates" {
                    p { strong { (tr(lang, "this-patient-may-already-be-registered")) } }
                    @for d in dups {
                        label style="font-weight:400" {
                            input type="radio" name="person_id" value=(d.id) style="width:auto";
                            " " a href=(format!("/persons/{}", d.id)) { (d.name) } " (ID " (d.id) ", " (d.status) ")"
                        }
                    }
                    label style="font-weight:400" { input type="checkbox" name="not_duplicate" value="true" style="width:auto"; " " (tr(lang, "file-as-a-different-person")) }
                }
            }
            fieldset {
                legend { (tr(lang, "notification")) }
                (select("report_type", tr(lang, "type--console-reports"), reports::REPORT_TYPES, &v.report_type, true))
                (field("diagnosis_date", tr(lang, "diagnosis-date"), "date", &v.diagnosis_date, true))
                (select("diagnosis_method", tr(lang, "diagnosis-method"), reports::DIAGNOSIS_METHODS, &v.diagnosis_method, true))
                (field("doctor_name", tr(lang, "diagnosing-doctor"), "text", &v.doctor_name, true))
                (field("institution_name", tr(lang, "medical-institution"), "text", &v.institution_name, true))
                (field("institution_phone", tr(lang, "institution-phone"), "tel", &v.institution_phone, false))
            }
            fieldset {
                legend { (tr(lang, "patient--console-reports")) }
                (field("name", tr(lang, "name"), "text", &p.name, true))
                (field("name_kana", tr(lang, "name-in-kana"), "text", &p.name_kana, false))
                (select("sex", tr(lang, "sex--console-person"), &["male", "female", "other", "unknown"], &p.sex, true))
                (field("date_of_birth", tr(lang, "date-of-birth--console-person"), "date", &p.date_of_birth, true))
                (field("phone", tr(lang, "phone--console-persons"), "tel", &p.phone, true))
                (field("email", tr(lang, "e-mail--console-person"), "email", &p.email, false))
                (field("prefecture_code", tr(lang, "prefecture-code"), "text", &p.prefecture_code, false))
                (field("municipality", tr(lang, "municipality--console-reports"), "text", &p.municipality, true))
                (field("address", tr(lang, "rest-of-the-address"), "text", &p.address, false))
                (field("occupation", tr(lang, "occupation--console-persons"), "text", &p.occupation, false))
            }
            fieldset {
                legend { (tr(lang, "course-and-infection")) }
                (field("onset_date", tr(lang, "onset-date-patients-required"), "date", &p.onset_date, false))
                (field("specimen_date", tr(lang, "specimen-date-asymptomatic-required"), "date", &p.specimen_date, false))
                (field("death_date", tr(lang, "date-of-death-deceased-required"), "date", &v.death_date, false))
                (field("estimated_infection_date", tr(lang, "estimated-infection-date"), "date", &v.estimated_infection_date, false))
                (field("infection_place", tr(lang, "estimated-place-of-infection"), "text", &v.infection_place, false))
                (select("infection_route", tr(lang, "infection-route"), reports::INFECTION_ROUTES, &v.infection_route, false))
                (select("severity", tr(lang, "severity"), mimamori_core::store::registry::SEVERITY_LEVELS, &v.severity, false))
                (field("symptoms", tr(lang, "symptoms"), "text", &v.symptoms, false))
                (field("notes", tr(lang, "notes"), "text", &v.notes, false))
            }
            fieldset id="notifiable" {
                legend { (tr(lang, "report-notifiable-groups")) }
                p class="muted" { (tr(lang, "report-notifiable-help")) }
                @if let Some(e) = err("notifiable") { div class="err" id="notifiable-err" { (e) } }
                @for (name, key, on) in [("needs_admission", "report-needs-admission", v.needs_admission), ("pregnant", "report-pregnant", v.pregnant), ("needs_treatment", "report-needs-treatment", v.needs_treatment)] {
                    label class="confirm" { input type="checkbox" name=(name) value="true" checked[on]; (tr(lang, key)) }
                }
            }
            button type="submit" { (tr(lang, "file-the-report")) }
        }
    }
}

fn option_label(lang: Lang, o: &str) -> String {
    let l = match o {
        "patient" => tr(lang, "patient--console-reports-2"),
        "asymptomatic" => tr(lang, "asymptomatic-carrier"),
        "suspected" => tr(lang, "suspected-case"),
        "deceased" => tr(lang, "deceased"),
        "pcr" => "PCR",
        "antigen_quantitative" => tr(lang, "antigen-quantitative"),
        "antigen_qualitative" => tr(lang, "antigen-qualitative"),
        "lamp" => "LAMP",
        "clinical" => tr(lang, "clinical"),
        "droplet" => tr(lang, "droplet"),
        "contact" => tr(lang, "contact--console-reports"),
        "aerosol" => tr(lang, "aerosol"),
        "unknown" => tr(lang, "unknown"),
        "male" => tr(lang, "male"),
        "female" => tr(lang, "female"),
        "mild" => tr(lang, "mild"),
        "moderate1" => tr(lang, "moderate-i"),
        "moderate2" => tr(lang, "moderate-ii"),
        "severe" => tr(lang, "severe"),
        _ => tr(lang, "other"),
    };
    l.to_string()
}

async fn new_form(who: CurrentStaff, UiLang(lang): UiLang) -> Result<Html<String>, HtmlError> {
    if !matches!(who.role, Role::HealthCentreStaff | Role::MedicalInstitution) {
        return Err(AppError::from(Error::Forbidden(
            "only health centres and medical institutions file occurrence reports",
        ))
        .into());
    }
    let v = reports::ReportInput {
        report_type: "patient".into(),
        diagnosis_method: "pcr".into(),
        ..Default::default()
    };
    Ok(layout::page(
        lang,
        &who,
        tr(lang, "occurrence-report"),
        form_markup(lang, &who, &v, &[], &[]),
    ))
}

async fn create(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<ReportForm>,
) -> Result<Response, HtmlError> {
    who.check_csrf(&f.csrf)?;
    let title = tr(lang, "occurrence-report");
    let ip = addr.ip().to_string();
    match registration::file_report(&s.db, &who.viewer(), &f.report, s.registration(Some(&ip)))
        .await
    {
        Ok(Registration::Done(filed)) => {
            Ok(Redirect::to(&format!("/persons/{}", filed.person_id)).into_response())
        }
        Ok(Registration::PossibleDuplicates(dups)) => Ok((
            axum::http::StatusCode::CONFLICT,
            layout::page(
                lang,
                &who,
                title,
                form_markup(lang, &who, &f.report, &[], &dups),
            ),
        )
            .into_response()),
        Err(Error::Invalid(errors)) => Ok((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            super::forms::page(
                lang,
                &who,
                title,
                &errors,
                form_markup(lang, &who, &f.report, &errors, &[]),
            ),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}
