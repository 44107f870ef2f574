//! The page behind the personal link in an SMS or e-mail: no login, an HMAC-signed,
//! expiring, single-check-in token. Mobile-first, no JavaScript, the person's language.
//! Nothing about the person is shown before the token is verified; a bad link gets a page
//! that says what to do, never an error dump.
use std::collections::BTreeMap;

use axum::{
    Form, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{Html, IntoResponse, Response},
    routing::get,
};
use maud::{Markup, html};
use mimamori_core::{
    FieldError,
    domain::{Lang, Spo2, Temperature},
    error::Collect,
    flows::{Flow, QuestionKind},
    store::{
        Actor, audit,
        checkins::{self, LinkContext},
        observations::{Answer, Closed},
    },
    token::TokenError,
    with_db,
};

use super::{AppState, error::HtmlError, i18n::t, layout};

pub fn router() -> Router<AppState> {
    Router::new().route("/c/{token}", get(show).post(submit))
}

fn lang_of(ctx: &LinkContext) -> Lang {
    if ctx.language == "en" {
        Lang::En
    } else {
        Lang::Ja
    }
}

/// A page explaining why the link cannot be used (both languages: the person is unknown).
fn link_problem(status: StatusCode, ja: &str, en: &str, phone: Option<(&str, &str)>) -> Response {
    let body = html! {
        main class="narrow" {
            h1 { "健康観察 / Health check" }
            p lang="ja" { (ja) }
            p lang="en" { (en) }
            @if let Some((name, tel)) = phone {
                p { (name) ": " a href=(format!("tel:{tel}")) { (tel) } }
            } @else {
                p lang="ja" { "新しいリンクが必要な場合は、担当の保健所にお電話ください。" }
                p lang="en" { "For a new link, please phone your health centre." }
            }
        }
    };
    (status, layout::bare("健康観察 / Health check", body)).into_response()
}

/// Verifies the token and loads the check-in, or answers with the right explanation.
async fn open(s: &AppState, token: &str) -> Result<LinkContext, Response> {
    let id = match s.signer.verify(token, chrono::Utc::now().timestamp()) {
        Ok(id) => id,
        Err(TokenError::Expired) => {
            return Err(link_problem(
                StatusCode::GONE,
                "このリンクは有効期限が切れています。",
                "This link has expired.",
                None,
            ));
        }
        Err(_) => {
            return Err(link_problem(
                StatusCode::NOT_FOUND,
                "このリンクは正しくありません。メッセージのリンクをそのまま開いてください。",
                "This link is not valid. Please open the link exactly as it appears in the message.",
                None,
            ));
        }
    };
    checkins::link_context(&s.db, id).await.map_err(|e| {
        tracing::warn!(checkin_id = id, error = %e, "signed link for an unknown check-in");
        link_problem(
            StatusCode::NOT_FOUND,
            "このリンクは使用できません。",
            "This link cannot be used.",
            None,
        )
    })
}

fn closed_page(ctx: &LinkContext) -> Response {
    let phone = Some((
        ctx.health_centre_name.as_str(),
        ctx.health_centre_phone.as_str(),
    ));
    if ctx.status == "answered" {
        link_problem(
            StatusCode::CONFLICT,
            "本日の回答はすでに受け付けています。ありがとうございました。具合が悪くなったときは保健所にお電話ください。",
            "Today's answer has already been received. Thank you. If you feel worse, please phone the health centre.",
            phone,
        )
    } else {
        link_problem(
            StatusCode::GONE,
            "この回答の受付は終了しました。体調について伝えたいことがあれば保健所にお電話ください。",
            "Answers for this check-in are closed. If you need to tell us about your health, please phone the health centre.",
            phone,
        )
    }
}

fn is_open(ctx: &LinkContext) -> bool {
    matches!(ctx.status.as_str(), "planned" | "sending" | "sent")
}

const GROUPS: [(&str, &str, &str); 3] = [
    ("vitals", "体温・酸素飽和度", "Temperature and SpO2"),
    ("symptoms", "症状", "Symptoms"),
    (
        "urgent",
        "緊急性の高い症状（1つでも「はい」ならすぐ保健所へ電話）",
        "Urgent warning signs (any yes: phone the health centre now)",
    ),
];

/// The screens of a flow: one per group of questions that it has, in a fixed order.
fn screens(flow: &Flow) -> Vec<(&'static str, &'static str, &'static str)> {
    GROUPS
        .iter()
        .copied()
        .filter(|(g, _, _)| flow.questions.iter().any(|q| q.group == *g))
        .collect()
}

/// One screen of the form; answers from the other screens travel as hidden fields, so the
/// form needs no JavaScript and no server-side draft.
fn form_page(
    flow: &Flow,
    lang: Lang,
    token: &str,
    values: &BTreeMap<String, String>,
    errors: &[FieldError],
    screen: usize,
) -> Markup {
    let all = screens(flow);
    let screen = screen.min(all.len().saturating_sub(1));
    let (group, ja, en) = all[screen];
    let err = |id: &str| {
        errors
            .iter()
            .find(|e| e.field == id)
            .map(|e| e.reason.clone())
    };
    let last = screen + 1 == all.len();
    html! {
        main class="narrow" {
            h1 { (flow.title(lang)) }
            p class="muted" { (format!("{} / {}", screen + 1, all.len())) }
            @if !errors.is_empty() {
                div class="errors" role="alert" {
                    p { (t(lang, "入力を確認してください。", "Please check your answers.")) }
                }
            }
            form method="post" action=(format!("/c/{token}")) {
                input type="hidden" name="screen" value=(screen);
                @for q in flow.questions.iter().filter(|q| q.group != group) {
                    @if let Some(v) = values.get(q.id.get_ref()) {
                        input type="hidden" name=(q.id.get_ref()) value=(v);
                    }
                }
                fieldset {
                    legend { (t(lang, ja, en)) }
                    @for (i, q) in flow.questions.iter().enumerate().filter(|(_, q)| q.group == group) {
                        @let id = q.id.get_ref().as_str();
                        // Questions the call asks together get their group's heading here.
                        @if let Some(g) = q.voice_group.as_deref().filter(|g| {
                            i == 0 || flow.questions[i - 1].voice_group.as_deref() != Some(*g)
                        }) {
                            h2 class="subhead" { (flow.group_text(g, lang)) }
                        }
                        @let v = values.get(id).map(String::as_str).unwrap_or("");
                        @match q.kind {
                            QuestionKind::Temperature | QuestionKind::Spo2 => {
                                label for=(id) { (flow.text(q, lang)) }
                                // A hint beside the box, not a placeholder that looks like a
                                // value already filled in.
                                p class="muted" id=(format!("{id}-hint")) style="margin:.2rem 0" {
                                    @if q.kind == QuestionKind::Temperature {
                                        (t(lang, "例：36.5（「36.5度」や全角でも入力できます）", "e.g. 36.5"))
                                    } @else {
                                        (t(lang, "例：97（パルスオキシメーターの数字）", "e.g. 97 (the pulse oximeter's number)"))
                                    }
                                }
                                input id=(id) name=(id) type="text" inputmode="decimal" value=(v)
                                    autocomplete="off" aria-invalid=[err(id).map(|_| "true")]
                                    aria-describedby=(format!("{id}-hint"));
                            }
                            QuestionKind::YesNo => {
                                p class="q" id=(format!("{id}-q")) { (flow.text(q, lang)) }
                                div class="yn" role="radiogroup" aria-labelledby=(format!("{id}-q")) {
                                    label { input type="radio" name=(id) value="yes" checked[v == "yes"]; (t(lang, "はい", "Yes")) }
                                    label { input type="radio" name=(id) value="no" checked[v == "no"]; (t(lang, "いいえ", "No")) }
                                }
                            }
                            QuestionKind::Choice => {
                                p class="q" id=(format!("{id}-q")) { (flow.text(q, lang)) }
                                div class="choices" role="radiogroup" aria-labelledby=(format!("{id}-q")) {
                                    @for c in &q.choices {
                                        label { input type="radio" name=(id) value=(c.id) checked[v == c.id]; (flow.choice_text(c, lang)) }
                                    }
                                }
                            }
                        }
                        @if let Some(e) = err(id) { div class="err" { (e) } }
                    }
                }
                @if screen > 0 {
                    button type="submit" name="nav" value="back" style="background:#555" { (t(lang, "戻る", "Back")) } " "
                }
                button type="submit" name="nav" value="next" {
                    (if last { t(lang, "送信する", "Send") } else { t(lang, "次へ", "Next") })
                }
            }
        }
    }
}

async fn show(State(s): State<AppState>, Path(token): Path<String>) -> Result<Response, HtmlError> {
    let ctx = match open(&s, &token).await {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    if !is_open(&ctx) {
        return Ok(closed_page(&ctx));
    }
    with_db!(&s.db, p => audit(p, Actor::Person(ctx.person_id), "checkin.open", "person", Some(ctx.person_id), None).await)?;
    let lang = lang_of(&ctx);
    let flow = s.flows.for_monitoring(&ctx.monitoring_type);
    Ok(layout::bare_lang(
        lang,
        flow.title(lang),
        form_page(flow, lang, &token, &BTreeMap::new(), &[], 0),
    )
    .into_response())
}

/// Validates the submitted answers against the flow: every question answered except
/// skippable ones; numbers in range.
fn parse_answers(
    flow: &Flow,
    lang: Lang,
    form: &BTreeMap<String, String>,
) -> Result<Answer, Vec<FieldError>> {
    let mut c = Collect::default();
    let mut a = Answer::default();
    for q in &flow.questions {
        let id = q.id.get_ref().as_str();
        let field = id.to_string();
        let v = form.get(id).map(|s| s.trim()).unwrap_or("");
        match q.kind {
            QuestionKind::Temperature if v.is_empty() && !q.skippable => c.push(
                field,
                t(
                    lang,
                    "体温を入力してください（例：36.5）",
                    "enter your temperature, e.g. 36.5",
                ),
            ),
            QuestionKind::Temperature if !v.is_empty() => {
                a.temperature = c.take(Temperature::parse("temperature", v).map_err(|_| {
                    mimamori_core::Error::invalid(
                        field,
                        t(
                            lang,
                            "34.0〜43.0 の数字で入力してください（例：36.5）",
                            "enter a number between 34.0 and 43.0, e.g. 36.5",
                        ),
                    )
                }));
            }
            QuestionKind::Spo2 if v.is_empty() && !q.skippable => c.push(
                field,
                t(
                    lang,
                    "SpO2 を入力してください（例：97）",
                    "enter your SpO2, e.g. 97",
                ),
            ),
            QuestionKind::Spo2 if !v.is_empty() => {
                a.spo2 = c.take(Spo2::parse("spo2", v).map_err(|_| {
                    mimamori_core::Error::invalid(
                        field,
                        t(
                            lang,
                            "50〜100 の整数で入力してください（例：97）",
                            "enter a whole number between 50 and 100, e.g. 97",
                        ),
                    )
                }));
            }
            QuestionKind::YesNo => match v {
                "yes" | "no" => a.yes_no(id, v == "yes", q.urgent),
                _ => c.push(
                    field,
                    t(
                        lang,
                        "「はい」か「いいえ」を選んでください",
                        "choose yes or no",
                    ),
                ),
            },
            QuestionKind::Choice => match q.choices.iter().find(|c| c.id == v) {
                Some(choice) => {
                    a.choices.insert(id.to_string(), choice.id.clone());
                }
                None => c.push(
                    field,
                    t(
                        lang,
                        "どれか1つを選んでください",
                        "choose one of the options",
                    ),
                ),
            },
            _ => {}
        }
    }
    match c.finish() {
        Ok(()) => Ok(a),
        Err(mimamori_core::Error::Invalid(f)) => Err(f),
        Err(_) => Err(Vec::new()),
    }
}

async fn submit(
    State(s): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, HtmlError> {
    let ctx = match open(&s, &token).await {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    if !is_open(&ctx) {
        return Ok(closed_page(&ctx));
    }
    let lang = lang_of(&ctx);
    let flow = s.flows.for_monitoring(&ctx.monitoring_type);
    let mut values: BTreeMap<String, String> = form.into_iter().collect();
    let nav = values.remove("nav");
    // Without `screen` the whole questionnaire was posted at once (older clients, API-like use).
    let screen: Option<usize> = values.remove("screen").and_then(|v| v.parse().ok());
    let page =
        |values: &BTreeMap<String, String>, errors: &[FieldError], n: usize, status: StatusCode| {
            (
                status,
                layout::bare_lang(
                    lang,
                    flow.title(lang),
                    form_page(flow, lang, &token, values, errors, n),
                ),
            )
                .into_response()
        };
    if let Some(n) = screen {
        if nav.as_deref() == Some("back") {
            return Ok(page(&values, &[], n.saturating_sub(1), StatusCode::OK));
        }
        let all = screens(flow);
        let group = all.get(n).map(|g| g.0).unwrap_or("");
        let here: Vec<FieldError> = parse_answers(flow, lang, &values)
            .err()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                flow.questions
                    .iter()
                    .any(|q| q.group == group && *q.id.get_ref() == e.field)
            })
            .collect();
        if !here.is_empty() {
            return Ok(page(&values, &here, n, StatusCode::UNPROCESSABLE_ENTITY));
        }
        if n + 1 < all.len() {
            return Ok(page(&values, &[], n + 1, StatusCode::OK));
        }
    }
    let answer = match parse_answers(flow, lang, &values) {
        Ok(a) => a,
        Err(errors) => {
            // Show the first screen with a problem.
            let all = screens(flow);
            let first = all
                .iter()
                .position(|(g, _, _)| {
                    flow.questions
                        .iter()
                        .any(|q| q.group == *g && errors.iter().any(|e| e.field == *q.id.get_ref()))
                })
                .unwrap_or(0);
            return Ok(page(
                &values,
                &errors,
                first,
                StatusCode::UNPROCESSABLE_ENTITY,
            ));
        }
    };
    match s
        .ingest
        .answer(ctx.checkin_id, ctx.link_source(), answer)
        .await?
    {
        Ok(rec) => {
            // Whatever made the answer urgent — a warning sign, SpO2 at or under the urgent
            // threshold, any urgent rule — the person is told to phone now.
            let urgent = rec
                .triggers
                .iter()
                .any(|t| t.priority == mimamori_core::rules::Priority::Urgent);
            tracing::info!(
                checkin_id = ctx.checkin_id,
                person_id = ctx.person_id,
                observation_id = rec.observation_id,
                urgent,
                "answer recorded"
            );
            Ok(thanks(&ctx, lang, urgent).into_response())
        }
        Err(Closed::AlreadyAnswered | Closed::Ended) => {
            let ctx = checkins::link_context(&s.db, ctx.checkin_id).await?;
            Ok(closed_page(&ctx))
        }
    }
}

fn thanks(ctx: &LinkContext, lang: Lang, urgent: bool) -> Html<String> {
    layout::bare_lang(
        lang,
        t(lang, "送信しました", "Sent"),
        html! {
            main class="narrow" {
                @if urgent {
                    div class="urgent" role="alert" {
                        p { strong { (t(lang, "急いで対応が必要な状態の可能性があります。すぐに保健所へ電話してください。", "Your answers show you may need help urgently. Phone the health centre now.")) } }
                        p { (ctx.health_centre_name) ": " a style="color:#fff;font-size:1.4rem" href=(format!("tel:{}", ctx.health_centre_phone)) { (ctx.health_centre_phone) } }
                        p { (t(lang, "つながらない場合や命に関わる場合は 119 番へ。", "If you cannot get through or it is life-threatening, call 119.")) }
                    }
                }
                div class="ok" role="status" {
                    p { (t(lang, "回答を受け付けました。ありがとうございました。", "Your answers have been received. Thank you.")) }
                }
            }
        },
    )
}
