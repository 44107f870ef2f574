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
}

#[derive(Deserialize, Default)]
struct Page {
    #[serde(default)]
    page: i64,
    #[serde(default)]
    list: String,
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
    let rows = persons::list_by(
        &s.db,
        &who.viewer(),
        which,
        today,
        PAGE_SIZE,
        page * PAGE_SIZE,
    )
    .await?;
    let total = persons::count_by(&s.db, &who.viewer(), which, today).await?;
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
            p class="muted" { (total) " " (t(lang, "人", "people")) }
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
                @if page > 0 { a href=(format!("/persons?list={}&page={}", which.key(), page - 1)) { "← " (t(lang, "前へ", "Previous")) } " " }
                @if (page + 1) * PAGE_SIZE < total { a href=(format!("/persons?list={}&page={}", which.key(), page + 1)) { (t(lang, "次へ", "Next")) " →" } }
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
) -> Markup {
    let err = |f: &str| {
        errors
            .iter()
            .find(|e| e.field == f)
            .map(|e| e.reason.clone())
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
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive();
    let start = if v.observation_start.is_empty() {
        today.to_string()
    } else {
        v.observation_start.clone()
    };
    let end = if v.observation_end.is_empty() {
        (today + Duration::days(7)).to_string()
    } else {
        v.observation_end.clone()
    };
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
        @if !errors.is_empty() {
            div class="errors" role="alert" {
                p { (t(lang, "入力内容を確認してください：", "Please check these fields:")) }
                ul { @for e in errors { li { a href=(format!("#{}", e.field)) { (e.field) } ": " (e.reason) } } }
            }
        }
        form method="post" action="/persons" novalidate {
            input type="hidden" name="csrf" value=(who.csrf);
            (field("name", t(lang, "氏名", "Name"), "text", &v.name, ""))
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
            (field("observation_start", t(lang, "観察開始日", "Observation starts"), "date", &start, ""))
            (field("observation_end", t(lang, "観察終了日", "Observation ends"), "date", &end, ""))
            (field("checkin_time", t(lang, "毎日の連絡時刻", "Daily check-in times"), "text", &checkin_time,
                t(lang, "例：09:00　1日2回なら 09:00,17:00", "e.g. 09:00; twice a day: 09:00,17:00")))
            (field("date_of_birth", t(lang, "生年月日（電話での本人確認に使用）", "Date of birth (identifies callers on the phone line)"), "date", &v.date_of_birth, ""))
            button type="submit" { (t(lang, "登録する", "Register")) }
        }
    }
}

async fn new_form(who: CurrentStaff, UiLang(lang): UiLang) -> Result<Html<String>, HtmlError> {
    who.require_health_centre()?;
    Ok(layout::page(
        lang,
        &who,
        t(lang, "対象者の登録", "Register a person"),
        form_markup(lang, &who, &persons::PersonInput::default(), &[]),
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
    let parsed = f.person.parse();
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
            layout::page(
                lang,
                &who,
                t(lang, "対象者の登録", "Register a person"),
                form_markup(lang, &who, &f.person, &errors),
            ),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}
