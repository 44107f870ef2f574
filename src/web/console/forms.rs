//! What the console's forms share: the words for each field a store function can name in
//! an error, and the error summary at the top of a form (GOV.UK pattern: a titled box that
//! names each problem by its field's label and links to the field when it is on the form).
use maud::{Markup, html};
use mimamori_core::{FieldError, domain::Lang};

use crate::web::i18n::tr;

/// Field id → (Japanese, English) label, for every field the registration, occurrence report
/// and basic-information forms can be told about.
const LABELS: &[(&str, &str)] = &[
    ("name", "name"),
    ("name_kana", "name-in-kana"),
    ("phone", "phone--console-persons"),
    ("email", "e-mail--console-persons"),
    ("channel", "daily-contact-by"),
    ("fallback_channel", "if-unanswered-also-try"),
    ("language", "language"),
    ("monitoring_type", "type"),
    ("onset_date", "onset-date"),
    ("specimen_date", "specimen-date"),
    ("last_exposure_date", "last-exposure"),
    ("observation_start", "observation-starts--console-forms"),
    ("observation_end", "observation-ends"),
    ("period_override_reason", "reason-for-another-end-date"),
    ("checkin_time", "daily-check-in-times--console-forms"),
    ("date_of_birth", "date-of-birth--console-person"),
    ("sex", "sex--console-person"),
    ("nationality", "nationality--console-persons"),
    ("prefecture_code", "prefecture--console-forms"),
    ("municipality", "municipality--console-reports"),
    ("address", "rest-of-the-address"),
    ("occupation", "occupation--console-persons"),
    ("workplace", "workplace-or-school"),
    ("emergency_contact", "emergency-contact--console-person"),
    ("reception_date", "reception-date"),
    ("report_type", "kind-of-report"),
    ("diagnosis_date", "diagnosis-date--console-forms"),
    ("diagnosis_method", "diagnosis-method"),
    ("doctor_name", "diagnosing-doctor"),
    ("institution_name", "medical-institution--console-forms"),
    ("institution_phone", "institution-s-phone"),
    ("death_date", "date-of-death"),
    (
        "estimated_infection_date",
        "estimated-infection-date--console-forms",
    ),
    ("infection_place", "where-infected"),
    ("infection_route", "infection-route"),
    ("severity", "severity"),
    ("symptoms", "symptoms"),
    ("notes", "notes"),
    ("outcome", "what-came-of-the-call--console-forms"),
    ("action", "action-taken"),
    ("confirm", "confirmation"),
    ("note", "note--console-forms"),
    ("rules", "lab-draft"),
    ("days", "lab-days"),
];

/// The words for `field` (a field no table knows is "another item", never its code).
pub fn label(lang: Lang, field: &str) -> &'static str {
    LABELS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, key)| tr(lang, key))
        .or_else(|| super::rules::key_label(lang, field))
        .unwrap_or_else(|| tr(lang, "another-item"))
}

/// The box at the top of a form with problems: each named by its label and linked to its
/// field when the field is on this form (`on_form`); a problem with a field the form does
/// not show (one the store derives, e.g. the observation period of a report) is named in
/// words with what to change.
pub fn error_summary(lang: Lang, errors: &[FieldError], on_form: &[&str]) -> Markup {
    html! {
        @if !errors.is_empty() {
            div class="error-summary" role="alert" tabindex="-1" autofocus aria-labelledby="error-summary-title" {
                h2 id="error-summary-title" { (tr(lang, "there-is-a-problem-nothing-was-saved")) }
                ul {
                    @for e in errors {
                        @let reason = e.message(lang);
                        li {
                            @if on_form.contains(&&*e.field) {
                                a href=(format!("#{}", e.field)) { (label(lang, &e.field)) "：" (reason) }
                            } @else {
                                (label(lang, &e.field)) "：" (reason)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A console page of a form: its document title prefixed "エラー: " / "Error: " when it
/// shows problems, its heading as usual.
pub fn page(
    lang: Lang,
    who: &crate::web::auth::CurrentStaff,
    title: &str,
    errors: &[FieldError],
    body: Markup,
) -> axum::response::Html<String> {
    if errors.is_empty() {
        crate::web::layout::page(lang, who, title, body)
    } else {
        let doc = format!("{}{title}", tr(lang, "error"));
        crate::web::layout::page_titled(lang, who, &doc, title, body)
    }
}

/// The words for a sex code.
pub fn sex_label(lang: Lang, s: &str) -> &'static str {
    match s {
        "male" => tr(lang, "male"),
        "female" => tr(lang, "female"),
        "other" => tr(lang, "other"),
        "unknown" => tr(lang, "unknown"),
        _ => "—",
    }
}
