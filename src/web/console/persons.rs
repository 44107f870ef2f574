//! People under observation: list, registration form, and a person's page with the chart
//! and every attempt to reach them.
use axum::{
    Form, Router,
    extract::{ConnectInfo, Query, State},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use chrono::Duration;
use maud::{Markup, html};
use mimamori_core::{
    Error,
    access::{Action, FieldGroup},
    domain::Lang,
    store::{
        Actor,
        persons::{self, List},
        staff,
    },
};
use serde::Deserialize;

use crate::web::{
    AppState,
    auth::CurrentStaff,
    error::HtmlError,
    i18n::{UiLang, t},
    layout,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/persons", get(list).post(create))
        .route("/persons/new", get(new_form))
        .route(
            "/persons/{id}/contacts",
            get(new_contact_form).post(create_contact),
        )
        .route("/persons/{id}/edit", get(edit_form).post(edit))
}

const BASIC_FIELDS: &[(&str, &str, &str, &str)] = &[
    ("name", "氏名", "Name", "text"),
    ("name_kana", "フリガナ", "Name in kana", "text"),
    ("phone", "電話番号", "Phone", "tel"),
    ("email", "メールアドレス", "E-mail", "email"),
    ("date_of_birth", "生年月日", "Date of birth", "date"),
    (
        "sex",
        "性別（male / female / other / unknown）",
        "Sex (male / female / other / unknown)",
        "text",
    ),
    ("nationality", "国籍", "Nationality", "text"),
    (
        "prefecture_code",
        "都道府県コード",
        "Prefecture code",
        "text",
    ),
    ("municipality", "市区町村", "Municipality", "text"),
    ("address", "町名以下", "Rest of the address", "text"),
    ("occupation", "職業", "Occupation", "text"),
    ("workplace", "勤務先・学校", "Workplace or school", "text"),
    (
        "emergency_contact",
        "緊急連絡先",
        "Emergency contact",
        "text",
    ),
    ("observation_end", "観察終了日", "Observation ends", "date"),
    (
        "period_override_reason",
        "終了日を変える理由",
        "Reason for changing the end date",
        "text",
    ),
];

fn edit_markup(
    lang: Lang,
    who: &CurrentStaff,
    id: i64,
    values: &std::collections::BTreeMap<String, String>,
    errors: &[mimamori_core::FieldError],
) -> Markup {
    html! {
        (super::forms::error_summary(lang, errors, &BASIC_FIELDS.iter().map(|f| f.0).collect::<Vec<_>>()))
        form method="post" action=(format!("/persons/{id}/edit")) novalidate {
            input type="hidden" name="csrf" value=(who.csrf);
            @for (name, ja, en, kind) in BASIC_FIELDS {
                @let e = errors.iter().find(|e| e.field == *name);
                label for=(name) { (t(lang, ja, en)) }
                input id=(name) name=(name) type=(kind) value=(values.get(*name).map(String::as_str).unwrap_or(""))
                    aria-invalid=[e.map(|_| "true")] aria-describedby=(format!("{name}-err"));
                @if let Some(e) = e { div class="err" id=(format!("{name}-err")) { (crate::web::messages::localise(lang, &e.reason)) } }
            }
            button type="submit" { (t(lang, "保存する", "Save")) }
        }
    }
}

async fn edit_form(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> Result<Html<String>, HtmlError> {
    persons::check(
        &s.db,
        Some(&who.viewer()),
        id,
        FieldGroup::Basic,
        Action::Write,
    )
    .await?;
    let p = persons::get(&s.db, Some(&who.viewer()), id, None).await?;
    let json = serde_json::to_value(&p).unwrap_or_default();
    let values = BASIC_FIELDS
        .iter()
        .map(|(k, ..)| {
            let v = match &json[*k] {
                serde_json::Value::String(x) => x.clone(),
                _ => String::new(),
            };
            (k.to_string(), v)
        })
        .collect();
    Ok(layout::page(
        lang,
        &who,
        t(lang, "基本情報の編集", "Edit basic information"),
        edit_markup(lang, &who, id, &values, &[]),
    ))
}

async fn edit(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, HtmlError> {
    let values: std::collections::BTreeMap<String, String> = form.into_iter().collect();
    who.check_csrf(values.get("csrf").map(String::as_str).unwrap_or(""))?;
    let get = |k: &str| values.get(k).cloned();
    let input = persons::BasicInput {
        name: get("name"),
        name_kana: get("name_kana"),
        phone: get("phone"),
        email: get("email"),
        date_of_birth: get("date_of_birth"),
        sex: get("sex"),
        nationality: get("nationality"),
        prefecture_code: get("prefecture_code"),
        municipality: get("municipality"),
        address: get("address"),
        occupation: get("occupation"),
        workplace: get("workplace"),
        emergency_contact: get("emergency_contact"),
        observation_end: get("observation_end"),
        period_override_reason: get("period_override_reason"),
    };
    match persons::update_basic(
        &s.db,
        &who.viewer(),
        id,
        &input,
        Some(&addr.ip().to_string()),
    )
    .await
    {
        Ok(()) => Ok(Redirect::to(&format!("/persons/{id}?tab=record")).into_response()),
        Err(Error::Invalid(errors)) => Ok((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            super::forms::page(
                lang,
                &who,
                t(lang, "基本情報の編集", "Edit basic information"),
                &errors,
                edit_markup(lang, &who, id, &values, &errors),
            ),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
struct Page {
    #[serde(default)]
    page: i64,
    #[serde(default)]
    list: String,
    /// Name / kana prefix, phone or id.
    #[serde(default)]
    q: String,
    /// patient or contact.
    #[serde(default, rename = "type")]
    monitoring_type: String,
}

const PAGE_SIZE: i64 = 50;

pub fn status_label(lang: Lang, s: &str) -> &'static str {
    match s {
        "observing" => t(lang, "観察中", "observing"),
        "opted_out" => t(lang, "配信停止", "opted out"),
        "admitted" => t(lang, "入院", "admitted"),
        "ended" => t(lang, "終了", "ended"),
        "planned" => t(lang, "予定", "planned"),
        "sending" => t(lang, "送信中", "sending"),
        "sent" => t(lang, "送信済", "sent"),
        "answered" => t(lang, "回答済", "answered"),
        "missed" => t(lang, "未回答", "missed"),
        "failed" => t(lang, "送信失敗", "failed"),
        "cancelled" => t(lang, "取消", "cancelled"),
        _ => "?",
    }
}

async fn list(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Query(q): Query<Page>,
) -> Result<Html<String>, HtmlError> {
    let page = q.page.max(0);
    let which = List::parse(&q.list);
    let centre = staff::health_centre(&s.db, who.health_centre_id).await?;
    let today = super::centre_today(&centre.time_zone);
    let search = persons::Search {
        q: q.q.clone(),
        monitoring_type: q.monitoring_type.clone(),
    };
    let (rows, total) = persons::search(
        &s.db,
        &who.viewer(),
        which,
        today,
        &search,
        PAGE_SIZE,
        page * PAGE_SIZE,
    )
    .await?;
    let qs = |page: i64| {
        serde_urlencoded::to_string([
            ("list", which.key()),
            ("q", q.q.as_str()),
            ("type", q.monitoring_type.as_str()),
            ("page", page.to_string().as_str()),
        ])
        .unwrap_or_default()
    };
    let title = format!(
        "{} — {}",
        t(lang, "対象者一覧", "People"),
        super::list_label(lang, which)
    );
    Ok(layout::page(
        lang,
        &who,
        &title,
        html! {
            nav aria-label=(t(lang, "状況別一覧", "Line lists")) style="display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:1rem" {
                @for l in List::ALL {
                    a class=(if l == which { "tag answered" } else { "tag" }) href=(format!("/persons?list={}", l.key()))
                        aria-current=[(l == which).then_some("page")] { (super::list_label(lang, l)) }
                }
            }
            form method="get" action="/persons" role="search" style="display:flex;gap:.5rem;align-items:flex-end;flex-wrap:wrap" {
                input type="hidden" name="list" value=(which.key());
                label { (t(lang, "氏名・フリガナ・電話・ID", "Name, kana, phone or ID")) " "
                    input type="search" name="q" value=(q.q) autofocus style="width:16rem"; }
                label { (t(lang, "区分", "Type")) " "
                    select name="type" style="width:auto" {
                        option value="" { (t(lang, "すべて", "All")) }
                        option value="patient" selected[q.monitoring_type == "patient"] { (t(lang, "患者", "patients")) }
                        option value="contact" selected[q.monitoring_type == "contact"] { (t(lang, "濃厚接触者", "contacts")) }
                    } }
                button type="submit" style="margin:0" { (t(lang, "検索", "Search")) }
            }
            p class="muted" {
                @if total > persons::COUNT_CAP { (persons::COUNT_CAP) (t(lang, "人以上", "+ people")) }
                @else { (total) " " (t(lang, "人", "people")) }
            }
            table {
                thead { tr {
                    th { "ID" } th { (t(lang, "氏名", "Name")) } th { (t(lang, "区分", "Type")) }
                    th { (t(lang, "連絡方法", "Channel")) } th { (t(lang, "観察期間", "Observation period")) }
                    th { (t(lang, "状態", "Status")) }
                } }
                tbody {
                    @for p in &rows {
                        tr {
                            td { (p.id) }
                            td { a href=(format!("/persons/{}", p.id)) { (p.name) } }
                            td { (if p.monitoring_type == "contact" { t(lang, "濃厚接触者", "contact") } else { t(lang, "患者", "patient") }) }
                            td { (p.channel) }
                            td { (p.observation_start) " – " (p.observation_end) }
                            td { (status_label(lang, &p.status)) }
                        }
                    }
                }
            }
            nav aria-label="pages" {
                @if page > 0 { a href=(format!("/persons?{}", qs(page - 1))) { "← " (t(lang, "前へ", "Previous")) } " " }
                @if (page + 1) * PAGE_SIZE < total { a href=(format!("/persons?{}", qs(page + 1))) { (t(lang, "次へ", "Next")) " →" } }
            }
        },
    ))
}

#[derive(Deserialize, Default)]
struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    person: persons::PersonInput,
}

fn form_markup(
    lang: Lang,
    who: &CurrentStaff,
    v: &persons::PersonInput,
    errors: &[mimamori_core::FieldError],
    dups: &[persons::DuplicateCandidate],
) -> Markup {
    let action = match v.source_person_id {
        Some(src) => format!("/persons/{src}/contacts"),
        None => "/persons".to_string(),
    };
    let err = |f: &str| {
        errors
            .iter()
            .find(|e| e.field == f)
            .map(|e| crate::web::messages::localise(lang, &e.reason))
    };
    let field = |name: &'static str,
                 label: &'static str,
                 kind: &'static str,
                 value: &str,
                 hint: &'static str| {
        let e = err(name);
        html! {
            label for=(name) { (label) }
            @if !hint.is_empty() { div class="muted" id=(format!("{name}-hint")) { (hint) } }
            input id=(name) name=(name) type=(kind) value=(value)
                aria-invalid=[e.as_ref().map(|_| "true")]
                aria-describedby=(format!("{name}-hint {name}-err"));
            @if let Some(e) = e { div class="err" id=(format!("{name}-err")) { (e) } }
        }
    };
    let today = crate::web::japan_today();
    let start = if v.observation_start.is_empty() {
        today.to_string()
    } else {
        v.observation_start.clone()
    };
    let end = v.observation_end.clone();
    let checkin_time = if v.checkin_time.is_empty() {
        "09:00".to_string()
    } else {
        v.checkin_time.clone()
    };
    let channel = if v.channel.is_empty() {
        "sms"
    } else {
        v.channel.as_str()
    };
    html! {
        (super::forms::error_summary(lang, errors, REGISTRATION_FIELDS))
        form method="post" action=(action) novalidate {
            input type="hidden" name="csrf" value=(who.csrf);
            @if !dups.is_empty() {
                (duplicates_panel(lang, dups))
                label style="font-weight:400" { input type="checkbox" name="not_duplicate" value="true" style="width:auto"; " " (t(lang, "別人として登録", "Register as a different person")) }
            }
            p class="muted" { (t(lang, "※は必須です。電話番号はSMS・自動音声電話に、メールアドレスはメールに必要です。", "※ marks required fields. A phone number is needed for SMS and calls, an e-mail address for e-mail.")) }
            (field("name", t(lang, "氏名 ※", "Name ※"), "text", &v.name, ""))
            (field("phone", t(lang, "電話番号", "Phone"), "tel", &v.phone, t(lang, "例：090-1234-5678", "e.g. 090-1234-5678")))
            (field("email", t(lang, "メールアドレス", "E-mail"), "email", &v.email, ""))
            label for="channel" { (t(lang, "毎日の連絡方法", "Daily contact by")) }
            select id="channel" name="channel" {
                option value="sms" selected[channel == "sms"] { (t(lang, "SMS（リンク）", "SMS with link")) }
                option value="email" selected[channel == "email"] { (t(lang, "メール", "E-mail")) }
                option value="voice" selected[channel == "voice"] { (t(lang, "自動音声電話", "Automated voice call")) }
            }
            label for="fallback_channel" { (t(lang, "未回答時の連絡方法（任意）", "If unanswered, also try (optional)")) }
            select id="fallback_channel" name="fallback_channel" {
                option value="" selected[v.fallback_channel.is_empty()] { (t(lang, "なし", "None")) }
                option value="voice" selected[v.fallback_channel == "voice"] { (t(lang, "自動音声電話", "Automated voice call")) }
                option value="sms" selected[v.fallback_channel == "sms"] { (t(lang, "SMS（リンク）", "SMS with link")) }
                option value="email" selected[v.fallback_channel == "email"] { (t(lang, "メール", "E-mail")) }
            }
            label style="font-weight:400" {
                input type="checkbox" name="slow_speech" value="true" checked[v.slow_speech] style="width:auto";
                " " (t(lang, "自動音声をゆっくり読み上げ、入力を長めに待つ（ご高齢の方など）", "Automated calls read slowly and wait longer for keys (e.g. elderly people)"))
            }
            label for="language" { (t(lang, "言語", "Language")) }
            select id="language" name="language" {
                option value="ja" selected[v.language != "en"] { "日本語" }
                option value="en" selected[v.language == "en"] { "English" }
            }
            label for="monitoring_type" { (t(lang, "区分", "Type")) }
            select id="monitoring_type" name="monitoring_type" {
                option value="patient" selected[v.monitoring_type != "contact"] { (t(lang, "患者（自宅療養）", "Patient at home")) }
                option value="contact" selected[v.monitoring_type == "contact"] { (t(lang, "濃厚接触者", "Close contact")) }
            }
            (field("onset_date", t(lang, "発症日（有症状の患者）", "Onset date (symptomatic patient)"), "date", &v.onset_date, ""))
            (field("specimen_date", t(lang, "検体採取日（無症状の患者）", "Specimen date (asymptomatic patient)"), "date", &v.specimen_date, ""))
            (field("last_exposure_date", t(lang, "最終接触日（濃厚接触者）", "Last exposure (close contact)"), "date", &v.last_exposure_date, ""))
            (field("observation_start", t(lang, "観察開始日 ※", "Observation starts ※"), "date", &start, ""))
            (field("observation_end", t(lang, "観察終了日", "Observation ends"), "date", &end,
                t(lang, "空欄なら上の日付と療養期間の規則（flows/periods.toml）から自動計算", "empty: computed from the date above and the period rules (flows/periods.toml)")))
            (field("period_override_reason", t(lang, "規則と異なる終了日にする理由", "Reason for an end date other than the rules'"), "text", &v.period_override_reason, ""))
            (field("checkin_time", t(lang, "毎日の連絡時刻 ※", "Daily check-in times ※"), "text", &checkin_time,
                t(lang, "日本時間（保健所の時刻）。例：09:00　1日2回なら 09:00,17:00", "Japan time (the health centre's clock). e.g. 09:00; twice a day: 09:00,17:00")))
            (field("date_of_birth", t(lang, "生年月日（電話での本人確認に使用）", "Date of birth (identifies callers on the phone line)"), "date", &v.date_of_birth, ""))
            (field("name_kana", t(lang, "フリガナ（重複の確認に使用）", "Name in kana (used to find duplicates)"), "text", &v.name_kana, ""))
            details open[has_details(v)] {
                summary { (t(lang, "その他の基本情報（任意）", "More basic information (optional)")) }
                label for="sex" { (t(lang, "性別", "Sex")) }
                select id="sex" name="sex" {
                    option value="" { "—" }
                    @for (k, ja, en) in [("male", "男性", "male"), ("female", "女性", "female"), ("other", "その他", "other"), ("unknown", "不明", "unknown")] {
                        option value=(k) selected[v.sex == k] { (t(lang, ja, en)) }
                    }
                }
                (field("nationality", t(lang, "国籍", "Nationality"), "text", &v.nationality, ""))
                (field("prefecture_code", t(lang, "住所：都道府県コード", "Address: prefecture code"), "text", &v.prefecture_code, t(lang, "例：13（東京都）", "e.g. 13 (Tokyo)")))
                (field("municipality", t(lang, "住所：市区町村", "Address: municipality"), "text", &v.municipality, ""))
                (field("address", t(lang, "住所：町名以下", "Address: the rest"), "text", &v.address, ""))
                (field("occupation", t(lang, "職業", "Occupation"), "text", &v.occupation, ""))
                (field("workplace", t(lang, "勤務先・学校", "Workplace or school"), "text", &v.workplace, ""))
                (field("emergency_contact", t(lang, "緊急連絡先", "Emergency contact"), "text", &v.emergency_contact, ""))
                (field("reception_date", t(lang, "受付日（空欄は今日）", "Reception date (empty: today)"), "date", &v.reception_date, ""))
            }
            @if let Some(src) = v.source_person_id { input type="hidden" name="source_person_id" value=(src); }
            @if let Some(b) = v.behaviour_id { input type="hidden" name="behaviour_id" value=(b); }
            button type="submit" { (t(lang, "登録する", "Register")) }
        }
    }
}

/// The fields on the registration form (an error about any other is named in words).
const REGISTRATION_FIELDS: &[&str] = &[
    "name",
    "phone",
    "email",
    "channel",
    "fallback_channel",
    "language",
    "monitoring_type",
    "onset_date",
    "specimen_date",
    "last_exposure_date",
    "observation_start",
    "observation_end",
    "period_override_reason",
    "checkin_time",
    "date_of_birth",
    "name_kana",
    "sex",
    "nationality",
    "prefecture_code",
    "municipality",
    "address",
    "occupation",
    "workplace",
    "emergency_contact",
    "reception_date",
];

fn has_details(v: &persons::PersonInput) -> bool {
    [
        &v.sex,
        &v.nationality,
        &v.prefecture_code,
        &v.municipality,
        &v.address,
        &v.occupation,
        &v.workplace,
        &v.emergency_contact,
        &v.reception_date,
    ]
    .iter()
    .any(|f| !f.is_empty())
}

/// The "possible duplicate" panel: who matched and on what, with a way to register anyway.
fn duplicates_panel(lang: Lang, dups: &[persons::DuplicateCandidate]) -> Markup {
    html! {
        div class="errors" role="alert" id="duplicates" {
            p { strong { (t(lang, "同一人物の可能性がある登録があります。", "This may be a person already registered.")) } }
            ul {
                @for d in dups {
                    li {
                        a href=(format!("/persons/{}", d.id)) { (d.name) } " (ID " (d.id) ") — "
                        (t(lang, "一致：", "matched: "))
                        (d.matched.iter().map(|m| match *m {
                            "name_kana" => t(lang, "フリガナ", "kana name"),
                            "date_of_birth" => t(lang, "生年月日", "date of birth"),
                            "phone" => t(lang, "電話番号", "phone"),
                            "sex" => t(lang, "性別", "sex"),
                            _ => t(lang, "住所", "address"),
                        }).collect::<Vec<_>>().join("、"))
                    }
                }
            }
            p { (t(lang, "別人の場合は「別人として登録」にチェックして、もう一度登録してください。", "If this is someone else, tick \"register as a different person\" and register again.")) }
        }
    }
}

async fn new_form(who: CurrentStaff, UiLang(lang): UiLang) -> Result<Html<String>, HtmlError> {
    who.require_health_centre()?;
    Ok(layout::page(
        lang,
        &who,
        t(lang, "対象者の登録", "Register a person"),
        form_markup(lang, &who, &persons::PersonInput::default(), &[], &[]),
    ))
}

async fn create(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<RegisterForm>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    who.check_csrf(&f.csrf)?;
    register(&s, &who, lang, &addr, f).await
}

/// The registration form for a close contact of case `id`: linked to the case, monitored
/// as a contact, the observation period counted from the last exposure.
#[derive(Deserialize, Default)]
struct ContactQuery {
    /// A behaviour-history entry of the case where the contact was met.
    #[serde(default, deserialize_with = "mimamori_core::domain::lenient::opt_i64")]
    behaviour: Option<i64>,
    /// A household member being registered: their name and phone.
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone: String,
}

async fn new_contact_form(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Query(q): Query<ContactQuery>,
) -> Result<Html<String>, HtmlError> {
    persons::check(
        &s.db,
        Some(&who.viewer()),
        id,
        FieldGroup::Contacts,
        Action::Write,
    )
    .await?;
    let mut v = persons::PersonInput {
        behaviour_id: q.behaviour,
        name: q.name,
        phone: q.phone,
        ..Default::default()
    };
    mimamori_core::store::registry::as_contact_of(&s.db, id, &mut v).await?;
    Ok(layout::page(
        lang,
        &who,
        t(lang, "濃厚接触者の登録", "Register a close contact"),
        form_markup(lang, &who, &v, &[], &[]),
    ))
}

async fn create_contact(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Form(mut f): Form<RegisterForm>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    who.check_csrf(&f.csrf)?;
    persons::check(
        &s.db,
        Some(&who.viewer()),
        id,
        FieldGroup::Contacts,
        Action::Write,
    )
    .await?;
    mimamori_core::store::registry::as_contact_of(&s.db, id, &mut f.person).await?;
    register(&s, &who, lang, &addr, f).await
}

/// Registers from the console form: validation errors and possible duplicates re-show the
/// form with what was typed.
async fn register(
    s: &AppState,
    who: &CurrentStaff,
    lang: Lang,
    addr: &std::net::SocketAddr,
    f: RegisterForm,
) -> Result<Response, HtmlError> {
    let title = if f.person.source_person_id.is_some() {
        t(lang, "濃厚接触者の登録", "Register a close contact")
    } else {
        t(lang, "対象者の登録", "Register a person")
    };
    let parsed = s.parse_person(&f.person);
    if let Ok(p) = &parsed
        && !f.person.not_duplicate
    {
        let dups = persons::possible_duplicates(&s.db, &who.viewer(), p).await?;
        if !dups.is_empty() {
            return Ok((
                axum::http::StatusCode::CONFLICT,
                layout::page(
                    lang,
                    who,
                    title,
                    form_markup(lang, who, &f.person, &[], &dups),
                ),
            )
                .into_response());
        }
    }
    let result = match parsed {
        Ok(p) => {
            let window = Duration::minutes(s.config.checkin.answer_window_minutes);
            persons::create(
                &s.db,
                Actor::Staff(who.id),
                who.health_centre_id,
                &p,
                window,
                Some(&addr.ip().to_string()),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(id) => {
            tracing::info!(person_id = id, staff_id = who.id, "person registered");
            Ok(Redirect::to(&format!("/persons/{id}")).into_response())
        }
        Err(Error::Invalid(errors)) => Ok((
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            super::forms::page(
                lang,
                who,
                title,
                &errors,
                form_markup(lang, who, &f.person, &errors, &[]),
            ),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}
