//! Filing an occurrence report [発生届] from the console (health-centre staff, or a medical
//! institution directly); the API shares [`submit`].
use axum::{
    Form, Router,
    extract::{ConnectInfo, State},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use maud::{Markup, html};
use mimamori_core::{
    Error,
    access::{Action, FieldGroup, Role},
    domain::Lang,
    store::{persons, reports},
};
use serde::Deserialize;

use crate::web::{
    AppState,
    auth::CurrentStaff,
    error::{AppError, HtmlError},
    i18n::{UiLang, t},
    japan_today as today, layout,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/reports/new", get(new_form).post(create))
}

/// What filing led to.
pub enum Outcome {
    Filed(reports::Filed),
    /// Health-centre staff: people who may be the patient; file again with `person_id` or
    /// `not_duplicate`.
    Duplicates(Vec<persons::DuplicateCandidate>),
}

/// Validates and files a report for `who`: only health-centre staff and medical
/// institutions; a medical institution may name the responsible centre.
pub async fn submit(
    s: &AppState,
    who: &CurrentStaff,
    input: &reports::ReportInput,
    ip: &str,
) -> Result<Outcome, AppError> {
    let viewer = who.viewer();
    if !viewer.may(FieldGroup::OccurrenceReport, Action::Write)
        || !matches!(who.role, Role::HealthCentreStaff | Role::MedicalInstitution)
    {
        return Err(Error::Forbidden(
            "only health centres and medical institutions file occurrence reports",
        )
        .into());
    }
    let centre = match (who.role, input.health_centre_id) {
        // A medical institution reports to its own health centre or another centre of the
        // same prefecture — never to a centre elsewhere (which would reach its people).
        (Role::MedicalInstitution, Some(c)) if c != who.health_centre_id => {
            let refuse = || {
                Error::invalid(
                    "health_centre_id",
                    "not a health centre you may report to (your own centre or one of its prefecture); leave it empty for your usual centre",
                )
            };
            let (theirs, ours) =
                mimamori_core::store::staff::prefecture_of(&s.db, c, who.health_centre_id)
                    .await?
                    .ok_or_else(refuse)?;
            if theirs.is_empty() || theirs != ours {
                return Err(refuse().into());
            }
            c
        }
        _ => who.health_centre_id,
    };
    let r = input.parse(&s.periods, today())?;
    if who.role == Role::HealthCentreStaff
        && input.person_id.is_none()
        && !input.person.not_duplicate
    {
        let dups = persons::possible_duplicates(&s.db, &viewer, &r.person).await?;
        if !dups.is_empty() {
            return Ok(Outcome::Duplicates(dups));
        }
    }
    let target = reports::target(&s.db, &viewer, centre, &r, input.person_id).await?;
    let window = chrono::Duration::minutes(s.config.checkin.answer_window_minutes);
    let filed = reports::file(&s.db, &viewer, centre, &r, target, window, Some(ip)).await?;
    tracing::info!(
        report_id = filed.report_id,
        person_id = filed.person_id,
        linkage = filed.linkage,
        staff_id = who.id,
        "occurrence report filed"
    );
    Ok(Outcome::Filed(filed))
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
            .map(|e| crate::web::messages::localise(lang, &e.reason))
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
        p class="muted" { (t(lang, "※は発生届の必須項目です。それ以外は任意です。", "※ marks the notification's mandatory fields; everything else is optional.")) }
        form method="post" action="/reports/new" novalidate {
            input type="hidden" name="csrf" value=(who.csrf);
            @if !dups.is_empty() {
                div class="errors" role="alert" id="duplicates" {
                    p { strong { (t(lang, "この患者は登録済みの可能性があります。該当する人を選ぶか、別人として届け出てください。", "This patient may already be registered: choose the record, or file as a different person.")) } }
                    @for d in dups {
                        label style="font-weight:400" {
                            input type="radio" name="person_id" value=(d.id) style="width:auto";
                            " " a href=(format!("/persons/{}", d.id)) { (d.name) } " (ID " (d.id) ", " (d.status) ")"
                        }
                    }
                    label style="font-weight:400" { input type="checkbox" name="not_duplicate" value="true" style="width:auto"; " " (t(lang, "別人として届け出る", "File as a different person")) }
                }
            }
            fieldset {
                legend { (t(lang, "届出", "Notification")) }
                (select("report_type", t(lang, "類型", "Type"), reports::REPORT_TYPES, &v.report_type, true))
                (field("diagnosis_date", t(lang, "診断年月日", "Diagnosis date"), "date", &v.diagnosis_date, true))
                (select("diagnosis_method", t(lang, "診断方法", "Diagnosis method"), reports::DIAGNOSIS_METHODS, &v.diagnosis_method, true))
                (field("doctor_name", t(lang, "診断した医師", "Diagnosing doctor"), "text", &v.doctor_name, true))
                (field("institution_name", t(lang, "医療機関", "Medical institution"), "text", &v.institution_name, true))
                (field("institution_phone", t(lang, "医療機関の電話", "Institution phone"), "tel", &v.institution_phone, false))
            }
            fieldset {
                legend { (t(lang, "患者", "Patient")) }
                (field("name", t(lang, "氏名", "Name"), "text", &p.name, true))
                (field("name_kana", t(lang, "フリガナ", "Name in kana"), "text", &p.name_kana, false))
                (select("sex", t(lang, "性別", "Sex"), &["male", "female", "other", "unknown"], &p.sex, true))
                (field("date_of_birth", t(lang, "生年月日", "Date of birth"), "date", &p.date_of_birth, true))
                (field("phone", t(lang, "電話番号", "Phone"), "tel", &p.phone, true))
                (field("email", t(lang, "メール", "E-mail"), "email", &p.email, false))
                (field("prefecture_code", t(lang, "都道府県コード", "Prefecture code"), "text", &p.prefecture_code, false))
                (field("municipality", t(lang, "市区町村", "Municipality"), "text", &p.municipality, true))
                (field("address", t(lang, "町名以下", "Rest of the address"), "text", &p.address, false))
                (field("occupation", t(lang, "職業", "Occupation"), "text", &p.occupation, false))
            }
            fieldset {
                legend { (t(lang, "経過・感染", "Course and infection")) }
                (field("onset_date", t(lang, "発症年月日（患者は必須）", "Onset date (patients: required)"), "date", &p.onset_date, false))
                (field("specimen_date", t(lang, "検体採取日（無症状病原体保有者は必須）", "Specimen date (asymptomatic: required)"), "date", &p.specimen_date, false))
                (field("death_date", t(lang, "死亡年月日（死亡者は必須）", "Date of death (deceased: required)"), "date", &v.death_date, false))
                (field("estimated_infection_date", t(lang, "推定感染年月日", "Estimated infection date"), "date", &v.estimated_infection_date, false))
                (field("infection_place", t(lang, "推定感染地域・場所", "Estimated place of infection"), "text", &v.infection_place, false))
                (select("infection_route", t(lang, "感染経路", "Infection route"), reports::INFECTION_ROUTES, &v.infection_route, false))
                (select("severity", t(lang, "重症度", "Severity"), mimamori_core::store::registry::SEVERITY_LEVELS, &v.severity, false))
                (field("symptoms", t(lang, "症状", "Symptoms"), "text", &v.symptoms, false))
                (field("notes", t(lang, "備考", "Notes"), "text", &v.notes, false))
            }
            button type="submit" { (t(lang, "届け出る", "File the report")) }
        }
    }
}

fn option_label(lang: Lang, o: &str) -> String {
    let l = match o {
        "patient" => t(lang, "患者（確定例）", "patient"),
        "asymptomatic" => t(lang, "無症状病原体保有者", "asymptomatic carrier"),
        "suspected" => t(lang, "疑似症患者", "suspected case"),
        "deceased" => t(lang, "感染症死亡者の死体", "deceased"),
        "pcr" => "PCR",
        "antigen_quantitative" => t(lang, "抗原定量", "antigen (quantitative)"),
        "antigen_qualitative" => t(lang, "抗原定性", "antigen (qualitative)"),
        "lamp" => "LAMP",
        "clinical" => t(lang, "臨床診断", "clinical"),
        "droplet" => t(lang, "飛沫", "droplet"),
        "contact" => t(lang, "接触", "contact"),
        "aerosol" => t(lang, "エアロゾル", "aerosol"),
        "unknown" => t(lang, "不明", "unknown"),
        "male" => t(lang, "男性", "male"),
        "female" => t(lang, "女性", "female"),
        "mild" => t(lang, "軽症", "mild"),
        "moderate1" => t(lang, "中等症I", "moderate I"),
        "moderate2" => t(lang, "中等症II", "moderate II"),
        "severe" => t(lang, "重症", "severe"),
        _ => t(lang, "その他", "other"),
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
        t(lang, "発生届", "Occurrence report"),
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
    let title = t(lang, "発生届", "Occurrence report");
    match submit(&s, &who, &f.report, &addr.ip().to_string()).await {
        Ok(Outcome::Filed(filed)) => {
            Ok(Redirect::to(&format!("/persons/{}", filed.person_id)).into_response())
        }
        Ok(Outcome::Duplicates(dups)) => Ok((
            axum::http::StatusCode::CONFLICT,
            layout::page(
                lang,
                &who,
                title,
                form_markup(lang, &who, &f.report, &[], &dups),
            ),
        )
            .into_response()),
        Err(AppError::Core(Error::Invalid(errors))) => Ok((
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
        Err(AppError::Core(e)) => Err(e.into()),
        Err(e) => Err(HtmlError::from(e)),
    }
}
