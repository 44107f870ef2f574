//! The review queue [要注意者の確認]: open escalations of the health centre, most urgent and
//! oldest first; acknowledge, note, record the action taken, resolve — each step audited and
//! shown on the person's timeline.
use axum::{
    Form, Router,
    extract::{ConnectInfo, Path, Query, State},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use maud::{Markup, html};
use mimamori_core::{
    domain::Lang,
    store::{
        Actor,
        escalations::{self, Step},
        residences, staff,
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
        .route("/escalations", get(queue))
        .route("/escalations/{id}/steps", post(step))
}

pub fn reason_label(lang: Lang, r: &str) -> &'static str {
    match r {
        "urgent_sign" => t(lang, "緊急性の高い症状", "urgent warning sign"),
        "spo2_low" => t(lang, "SpO2 低下", "low SpO2"),
        "fever_streak" => t(lang, "発熱の継続", "fever streak"),
        "non_reporting" => t(lang, "未回答の継続", "not reporting"),
        "unreachable" => t(lang, "連絡不能", "unreachable"),
        "callback" => t(lang, "折り返し希望", "call back requested"),
        _ => "?",
    }
}

pub fn priority_label(lang: Lang, p: &str) -> &'static str {
    match p {
        "urgent" => t(lang, "緊急", "urgent"),
        "high" => t(lang, "高", "high"),
        _ => t(lang, "通常", "normal"),
    }
}

pub fn action_label(lang: Lang, a: &str) -> &'static str {
    match a {
        "phoned" => t(lang, "電話で確認", "phoned"),
        "arranged_admission" => t(lang, "入院調整", "arranged admission"),
        "advised" => t(lang, "受診・療養を助言", "advised"),
        _ => t(lang, "その他", "other"),
    }
}

pub fn residence_label(lang: Lang, k: &str) -> &'static str {
    match k {
        "home" => t(lang, "自宅", "home"),
        "hospital" => t(lang, "入院", "hospital"),
        "lodging" => t(lang, "宿泊療養施設", "lodging facility"),
        "welfare" => t(lang, "社会福祉施設", "welfare facility"),
        _ => t(lang, "その他", "other"),
    }
}

const REASONS: &[&str] = &[
    "urgent_sign",
    "spo2_low",
    "fever_streak",
    "non_reporting",
    "unreachable",
    "callback",
];

#[derive(Deserialize, Default)]
struct Filter {
    #[serde(default)]
    reason: String,
    /// Outside body id, or empty.
    #[serde(default)]
    org: String,
    #[serde(default)]
    residence: String,
}

/// The forms to act on one escalation (used here and on the person's page).
pub fn step_forms(lang: Lang, who: &CurrentStaff, id: i64, status: &str, back: &str) -> Markup {
    html! {
        div class="steps" style="display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end" {
            @if status == "open" {
                form method="post" action=(format!("/escalations/{id}/steps")) {
                    input type="hidden" name="csrf" value=(who.csrf);
                    input type="hidden" name="back" value=(back);
                    input type="hidden" name="step" value="acknowledge";
                    button type="submit" style="margin:0" { (t(lang, "対応する", "I'm on it")) }
                }
            }
            form method="post" action=(format!("/escalations/{id}/steps")) {
                input type="hidden" name="csrf" value=(who.csrf);
                input type="hidden" name="back" value=(back);
                input type="hidden" name="step" value="action";
                label { (t(lang, "対応内容", "Action")) " "
                    select name="action" style="width:auto" {
                        @for a in escalations::ACTIONS { option value=(a) { (action_label(lang, a)) } }
                    }
                }
                input name="note" placeholder=(t(lang, "メモ（任意）", "Note (optional)")) style="width:14rem";
                button type="submit" style="margin:0" { (t(lang, "記録", "Record")) }
            }
            form method="post" action=(format!("/escalations/{id}/steps")) {
                input type="hidden" name="csrf" value=(who.csrf);
                input type="hidden" name="back" value=(back);
                input type="hidden" name="step" value="resolve";
                input name="note" placeholder=(t(lang, "解決メモ", "Resolution note")) style="width:12rem";
                button type="submit" style="margin:0;background:#137333" { (t(lang, "解決", "Resolve")) }
            }
        }
    }
}

async fn queue(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Query(f): Query<Filter>,
) -> Result<Html<String>, HtmlError> {
    who.require_health_centre()?;
    let reason = Some(f.reason.as_str()).filter(|r| REASONS.contains(r));
    let residence = Some(f.residence.as_str()).filter(|r| residences::KINDS.contains(r));
    let orgs = staff::organisations_of(&s.db, who.health_centre_id).await?;
    let org = f
        .org
        .parse::<i64>()
        .ok()
        .filter(|o| orgs.iter().any(|(id, _, _)| id == o));
    let filter = escalations::QueueFilter {
        reason,
        organisation_id: org,
        residence,
    };
    let rows = escalations::queue(
        &s.db,
        Actor::Staff(who.id),
        who.health_centre_id,
        &filter,
        500,
    )
    .await?;
    let tz = chrono_tz::Asia::Tokyo;
    Ok(layout::page(
        lang,
        &who,
        t(lang, "要確認キュー", "Review queue"),
        html! {
            form method="get" action="/escalations" {
                label for="reason" { (t(lang, "理由で絞り込み", "Filter by reason")) }
                select id="reason" name="reason" style="width:auto" {
                    option value="" { (t(lang, "すべて", "All")) }
                    @for r in REASONS { option value=(r) selected[reason == Some(*r)] { (reason_label(lang, r)) } }
                }
                " "
                label for="org" { (t(lang, "委託先・施設", "Contractor / facility")) }
                select id="org" name="org" style="width:auto" {
                    option value="" { (t(lang, "すべて", "All")) }
                    @for (id, _, name) in &orgs { option value=(id) selected[org == Some(*id)] { (name) } }
                }
                " "
                label for="residence" { (t(lang, "居所", "Residence")) }
                select id="residence" name="residence" style="width:auto" {
                    option value="" { (t(lang, "すべて", "All")) }
                    @for k in residences::KINDS { option value=(k) selected[residence == Some(*k)] { (residence_label(lang, k)) } }
                }
                " " button type="submit" style="margin:0" { (t(lang, "表示", "Show")) }
            }
            p class="muted" { (rows.len()) " " (t(lang, "件（緊急度の高い順、古い順）", "open (most urgent first, then oldest)")) }
            table {
                thead { tr {
                    th { (t(lang, "緊急度", "Priority")) } th { (t(lang, "対象者", "Person")) } th { (t(lang, "理由", "Reason")) }
                    th { (t(lang, "発生", "Since")) } th { (t(lang, "担当", "Who")) } th { (t(lang, "操作", "Act")) }
                } }
                tbody {
                    @for r in &rows {
                        tr class=(format!("esc esc-{}", r.priority)) {
                            td { span class=(format!("tag {}", if r.priority == "urgent" { "failed" } else { "" })) { (priority_label(lang, &r.priority)) } }
                            td { a href=(format!("/persons/{}", r.person_id)) { (r.name) } }
                            td { (reason_label(lang, &r.reason)) div class="muted" { (r.detail) } }
                            td { (r.opened_at.with_timezone(&tz).format("%m/%d %H:%M")) }
                            td { (r.assigned_name.as_deref().unwrap_or("—")) }
                            td { (step_forms(lang, &who, r.id, &r.status, "/escalations")) }
                        }
                    }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
struct StepForm {
    csrf: String,
    step: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    back: String,
}

async fn step(
    State(s): State<AppState>,
    who: CurrentStaff,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Path(id): Path<i64>,
    Form(f): Form<StepForm>,
) -> Result<Response, HtmlError> {
    who.require_health_centre()?;
    who.check_csrf(&f.csrf)?;
    let step = match f.step.as_str() {
        "acknowledge" => Step::Acknowledge,
        "note" => Step::Note(f.note),
        "action" => Step::Action(f.action, f.note),
        "resolve" => Step::Resolve(f.note),
        _ => return Err(crate::web::error::AppError::BadRequest("unknown step".into()).into()),
    };
    escalations::step(
        &s.db,
        who.health_centre_id,
        who.id,
        id,
        step,
        Some(&addr.ip().to_string()),
    )
    .await?;
    let back = if f.back.starts_with('/') && !f.back.starts_with("//") {
        f.back
    } else {
        "/escalations".into()
    };
    Ok(Redirect::to(&back).into_response())
}
