//! What the console's forms share: the words for each field a store function can name in
//! an error, and the error summary at the top of a form (GOV.UK pattern: a titled box that
//! names each problem by its field's label and links to the field when it is on the form).
use maud::{Markup, html};
use mimamori_core::{FieldError, domain::Lang};

use crate::web::i18n::t;

/// Field id → (Japanese, English) label, for every field the registration, occurrence report
/// and basic-information forms can be told about.
const LABELS: &[(&str, &str, &str)] = &[
    ("name", "氏名", "Name"),
    ("name_kana", "フリガナ", "Name in kana"),
    ("phone", "電話番号", "Phone"),
    ("email", "メールアドレス", "E-mail"),
    ("channel", "毎日の連絡方法", "Daily contact by"),
    (
        "fallback_channel",
        "未回答時の連絡方法",
        "If unanswered, also try",
    ),
    ("language", "言語", "Language"),
    ("monitoring_type", "区分", "Type"),
    ("onset_date", "発症日", "Onset date"),
    ("specimen_date", "検体採取日", "Specimen date"),
    ("last_exposure_date", "最終接触日", "Last exposure"),
    ("observation_start", "観察開始日", "Observation starts"),
    ("observation_end", "観察終了日", "Observation ends"),
    (
        "period_override_reason",
        "規則と異なる終了日にする理由",
        "Reason for another end date",
    ),
    ("checkin_time", "毎日の連絡時刻", "Daily check-in times"),
    ("date_of_birth", "生年月日", "Date of birth"),
    ("sex", "性別", "Sex"),
    ("nationality", "国籍", "Nationality"),
    ("prefecture_code", "都道府県", "Prefecture"),
    ("municipality", "市区町村", "Municipality"),
    ("address", "町名以下", "Rest of the address"),
    ("occupation", "職業", "Occupation"),
    ("workplace", "勤務先・学校", "Workplace or school"),
    ("emergency_contact", "緊急連絡先", "Emergency contact"),
    ("reception_date", "受付日", "Reception date"),
    ("report_type", "届出の種類", "Kind of report"),
    ("diagnosis_date", "診断日", "Diagnosis date"),
    ("diagnosis_method", "診断方法", "Diagnosis method"),
    ("doctor_name", "診断した医師", "Diagnosing doctor"),
    ("institution_name", "医療機関名", "Medical institution"),
    (
        "institution_phone",
        "医療機関の電話番号",
        "Institution's phone",
    ),
    ("death_date", "死亡日", "Date of death"),
    (
        "estimated_infection_date",
        "推定感染日",
        "Estimated infection date",
    ),
    ("infection_place", "推定感染地域", "Where infected"),
    ("infection_route", "感染経路", "Infection route"),
    ("severity", "重症度", "Severity"),
    ("symptoms", "症状", "Symptoms"),
    ("notes", "備考", "Notes"),
    ("outcome", "電話の結果", "What came of the call"),
    ("action", "対応内容", "Action taken"),
    ("confirm", "確認", "Confirmation"),
    ("note", "メモ", "Note"),
];

/// The words for `field` (a field no table knows is "another item", never its code).
pub fn label(lang: Lang, field: &str) -> &'static str {
    LABELS
        .iter()
        .find(|(f, _, _)| *f == field)
        .map(|(_, ja, en)| t(lang, ja, en))
        .unwrap_or_else(|| t(lang, "その他の項目", "Another item"))
}

/// The box at the top of a form with problems: each named by its label and linked to its
/// field when the field is on this form (`on_form`); a problem with a field the form does
/// not show (one the store derives, e.g. the observation period of a report) is named in
/// words with what to change.
pub fn error_summary(lang: Lang, errors: &[FieldError], on_form: &[&str]) -> Markup {
    html! {
        @if !errors.is_empty() {
            div class="error-summary" role="alert" tabindex="-1" autofocus aria-labelledby="error-summary-title" {
                h2 id="error-summary-title" { (t(lang, "入力に問題があります（保存されていません）", "There is a problem (nothing was saved)")) }
                ul {
                    @for e in errors {
                        @let reason = crate::web::messages::localise(lang, &e.reason);
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
        let doc = format!("{}{title}", t(lang, "エラー: ", "Error: "));
        crate::web::layout::page_titled(lang, who, &doc, title, body)
    }
}

/// The words for a sex code.
pub fn sex_label(lang: Lang, s: &str) -> &'static str {
    match s {
        "male" => t(lang, "男性", "male"),
        "female" => t(lang, "女性", "female"),
        "other" => t(lang, "その他", "other"),
        "unknown" => t(lang, "不明", "unknown"),
        _ => "—",
    }
}
