//! People under observation: list, registration form, and a person's page with the chart
//! and every attempt to reach them.
use axum::{
    Form, Router,
    extract::{ConnectInfo, Path, Query, State},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use chrono::Duration;
use maud::{Markup, html};
use mimamori_core::{
    Error,
    domain::Lang,
    store::{Actor, checkins, observations, persons, staff},
};
use serde::Deserialize;

use crate::web::{
    AppState,
    auth::CurrentStaff,
    chart,
    error::HtmlError,
    i18n::{UiLang, t},
    layout,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/persons", get(list).post(create))
        .route("/persons/new", get(new_form))
        .route("/persons/{id}", get(show))
}

#[derive(Deserialize, Default)]
struct Page {
    #[serde(default)]
    page: i64,
}

const PAGE_SIZE: i64 = 50;

fn status_label(lang: Lang, s: &str) -> &'static str {
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
    let rows = persons::list(
        &s.db,
        Actor::Staff(who.id),
        who.health_centre_id,
        PAGE_SIZE,
        page * PAGE_SIZE,
    )
    .await?;
    let total = persons::count(&s.db, who.health_centre_id).await?;
    Ok(layout::page(
        lang,
        &who,
        t(lang, "対象者一覧", "People under observation"),
        html! {
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
                @if page > 0 { a href=(format!("/persons?page={}", page - 1)) { "← " (t(lang, "前へ", "Previous")) } " " }
                @if (page + 1) * PAGE_SIZE < total { a href=(format!("/persons?page={}", page + 1)) { (t(lang, "次へ", "Next")) " →" } }
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

async fn new_form(who: CurrentStaff, UiLang(lang): UiLang) -> Html<String> {
    layout::page(
        lang,
        &who,
        t(lang, "対象者の登録", "Register a person"),
        form_markup(lang, &who, &persons::PersonInput::default(), &[]),
    )
}

async fn create(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Form(f): Form<RegisterForm>,
) -> Result<Response, HtmlError> {
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

async fn show(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
) -> Result<Html<String>, HtmlError> {
    let ip = addr.ip().to_string();
    let p = persons::get(
        &s.db,
        Actor::Staff(who.id),
        Some(who.health_centre_id),
        id,
        Some(&ip),
    )
    .await?;
    let centre = staff::health_centre(&s.db, p.health_centre_id).await?;
    let obs = observations::list_for_person(&s.db, p.id).await?;
    let cks = checkins::list_for_person(&s.db, p.id).await?;
    let attempts = checkins::attempts_for_person(&s.db, p.id).await?;
    let tz: chrono_tz::Tz = centre.time_zone.parse().unwrap_or(chrono_tz::Asia::Tokyo);
    let missed: Vec<_> = cks
        .iter()
        .filter(|c| matches!(c.status.as_str(), "missed" | "failed"))
        .map(|c| c.local_date)
        .collect();
    let svg = chart::render(&chart::ChartInput {
        lang,
        tz,
        start: p.observation_start,
        end: p.observation_end,
        observations: &obs,
        missed: &missed,
    });
    let local =
        |d: chrono::DateTime<chrono::Utc>| d.with_timezone(&tz).format("%m/%d %H:%M").to_string();
    let flow = s.flows.for_monitoring(&p.monitoring_type);
    Ok(layout::page(
        lang,
        &who,
        &p.name,
        html! {
            div class="card" {
                p {
                    (t(lang, "区分", "Type")) ": " (if p.monitoring_type == "contact" { t(lang, "濃厚接触者", "close contact") } else { t(lang, "患者", "patient") })
                    " · " (t(lang, "観察期間", "Observation")) ": " (p.observation_start) " – " (p.observation_end)
                    " · " (t(lang, "連絡方法", "Channel")) ": " (p.channel)
                    " · " (t(lang, "状態", "Status")) ": " (status_label(lang, &p.status))
                }
                p class="muted" {
                    (t(lang, "電話", "Phone")) ": " (p.phone.as_deref().unwrap_or("—")) " · "
                    (t(lang, "メール", "E-mail")) ": " (p.email.as_deref().unwrap_or("—"))
                }
            }
            section class="card" aria-labelledby="chart-h" {
                h2 id="chart-h" { (t(lang, "健康観察の推移", "Observations")) }
                (svg)
            }
            section class="card" {
                h2 { (t(lang, "記録", "Records")) }
                table {
                    thead { tr {
                        th { (t(lang, "日時", "Time")) } th { (t(lang, "体温", "Temp.")) } th { "SpO2" }
                        th { (t(lang, "「はい」と答えた症状", "Symptoms answered yes")) } th { (t(lang, "経路", "Source")) }
                    } }
                    tbody {
                        @for o in obs.iter().rev() {
                            @let yes: Vec<String> = o.symptom_map().into_iter().filter(|(_, v)| *v).map(|(k, _)| {
                                flow.questions.iter().find(|q| *q.id.get_ref() == k).map(|q| flow.text(q, lang).to_string()).unwrap_or(k)
                            }).collect();
                            tr class=(if o.urgent { "urgent-row" } else { "" }) {
                                td { (local(o.observed_at)) }
                                td { (o.temperature_c.map(|v| format!("{v:.1} ℃")).unwrap_or_else(|| "—".into())) }
                                td { (o.spo2.map(|v| format!("{v} %")).unwrap_or_else(|| "—".into())) }
                                td { @if o.urgent { strong class="err" { (t(lang, "緊急 ", "URGENT ")) } } (yes.join("、")) }
                                td { (o.source) }
                            }
                        }
                    }
                }
            }
            section class="card" {
                h2 { (t(lang, "連絡予定と結果", "Check-ins and contact attempts")) }
                table {
                    thead { tr { th { (t(lang, "日付", "Date")) } th { (t(lang, "予定時刻", "Due")) } th { (t(lang, "結果", "Outcome")) } th { (t(lang, "連絡", "Attempts")) } } }
                    tbody {
                        @for c in cks.iter().rev() {
                            tr {
                                td { (c.local_date) }
                                td { (local(c.due_at)) }
                                td { span class=(format!("tag {}", c.status)) { (status_label(lang, &c.status)) } }
                                td {
                                    @for a in attempts.iter().filter(|a| a.checkin_id == c.id) {
                                        div { (local(a.created_at)) " " (a.channel) " (" (a.provider) ") " (a.status)
                                            @if let Some(e) = &a.error { " — " (e) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}
