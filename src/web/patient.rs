//! The page behind the personal link in an SMS or e-mail: no login, an HMAC-signed,
//! expiring, single-check-in token. Mobile-first, no JavaScript, the person's language.
//! Nothing about the person is shown before the token is verified; a bad link gets a page
//! that says what to do, never an error dump.
use std::collections::BTreeMap;

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use maud::{Markup, html};
use mimamori_core::{
    FieldError,
    domain::{Lang, Spo2, Temperature},
    error::Collect,
    flows::{Flow, QuestionKind},
    store::{
        Actor,
        checkins::{self, LinkContext},
        drafts,
        observations::{Answer, Closed},
    },
    token::TokenError,
};

use super::{AppState, error::HtmlError, i18n::t, layout};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/c/{token}", get(show).post(submit))
        .route("/c/{token}/done", get(done))
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
                p lang="ja" { "命に関わるときは 119 番へ。" }
                p lang="en" { "If it is life-threatening, call 119." }
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
            // A genuine link that has run out still names the centre to phone.
            let centre = match s.signer.verify_expired(token) {
                Some(id) => checkins::link_context(&s.db, id).await.ok(),
                None => None,
            };
            return Err(link_problem(
                StatusCode::GONE,
                "このリンクは有効期限が切れています。体調について伝えたいこと、新しいリンクが必要なことがあれば、保健所にお電話ください。",
                "This link has expired. To tell us about your health or to get a new link, please phone the health centre.",
                centre.as_ref().map(|c| {
                    (
                        c.health_centre_name.as_str(),
                        c.health_centre_phone.as_str(),
                    )
                }),
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

/// The form field of a group's "none of these" box.
fn none_key(group: &str) -> String {
    format!("none:{group}")
}

/// Groups with more than one yes/no question offer "none of these": every yes/no question
/// of the group is then stored as an explicit "no".
fn offers_none(flow: &Flow, group: &str) -> bool {
    flow.questions
        .iter()
        .filter(|q| q.group == group && q.kind == QuestionKind::YesNo)
        .count()
        > 1
}

/// The words of the "none of these" box: for the urgent signs they say plainly that each
/// sign above was read and none applies (the box comes after the signs, not before).
fn none_text(group: &str, lang: Lang) -> &'static str {
    if group == "urgent" {
        t(
            lang,
            "上の症状はどれもありません（すべて「いいえ」として送ります）",
            "I have none of the signs above (each is sent as \"No\")",
        )
    } else {
        t(
            lang,
            "今日はこの中の症状はどれもない（すべて「いいえ」として送ります）",
            "I have none of these symptoms today (each is sent as \"No\")",
        )
    }
}

/// Applies the "none of these" boxes: unanswered yes/no questions of such a group become
/// "no"; a "yes" next to a ticked box is a contradiction the person is asked to resolve.
fn apply_none(flow: &Flow, lang: Lang, values: &mut Answers) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (group, _, _) in screens(flow) {
        let key = none_key(group);
        if values.get(&key).map(String::as_str) != Some("yes") {
            continue;
        }
        let yes_no = flow
            .questions
            .iter()
            .filter(|q| q.group == group && q.kind == QuestionKind::YesNo);
        if yes_no
            .clone()
            .any(|q| values.get(q.id.get_ref().as_str()).map(String::as_str) == Some("yes"))
        {
            errors.push(FieldError {
                field: key.into(),
                reason: t(
                    lang,
                    "「どれもない」にチェックがありますが、「はい」の答えもあります。どちらかに直してください",
                    "you ticked \"none\" but also answered \"Yes\" to one: please correct one of them",
                )
                .to_string(),
            });
            continue;
        }
        for q in yes_no {
            values.insert(q.id.get_ref().to_string(), "no".into());
        }
    }
    errors
}

/// What the person types, kept between screens: only the flow's own fields.
type Answers = BTreeMap<String, String>;

fn known_field(flow: &Flow, key: &str) -> bool {
    flow.questions.iter().any(|q| q.id.get_ref() == key)
        || screens(flow).iter().any(|(g, _, _)| none_key(g) == key)
}

/// The label an error summary links to for `field`.
fn field_label<'a>(flow: &'a Flow, lang: Lang, field: &str) -> &'a str {
    match flow.questions.iter().find(|q| q.id.get_ref() == field) {
        Some(q) => flow.text(q, lang),
        None => t(lang, "「どれもない」", "\"None of these\""),
    }
}

/// Whose check-in and which day, as the page's first line: a family sharing one phone gets
/// one link each.
fn whose(ctx: &LinkContext, lang: Lang) -> String {
    let who = mimamori_core::domain::short_name(&ctx.person_name);
    match lang {
        Lang::Ja => format!(
            "{who}さんの {} の健康観察",
            ctx.local_date.format("%-m月%-d日")
        ),
        Lang::En => format!(
            "{who}'s health check for {}",
            ctx.local_date.format("%-d %B")
        ),
    }
}

/// The centre's number, on every screen: what to do if things get worse now.
fn call_footer(ctx: &LinkContext, lang: Lang) -> Markup {
    html! {
        aside class="call" aria-label=(t(lang, "連絡先", "Who to call")) {
            p {
                (t(lang, "急に具合が悪くなったら回答を待たずに電話：", "Suddenly worse? Do not wait, call: "))
                (ctx.health_centre_name) " "
                a href=(format!("tel:{}", ctx.health_centre_phone)) { (ctx.health_centre_phone) }
            }
            p { (t(lang, "命に関わるときは 119 番へ。", "If it is life-threatening, call 119.")) }
        }
    }
}

/// One screen of the form. Each screen posts to the link and is redirected to the next
/// (Post/Redirect/Get); what was typed on other screens waits in the draft.
fn form_page(
    flow: &Flow,
    ctx: &LinkContext,
    token: &str,
    values: &Answers,
    errors: &[FieldError],
    screen: usize,
) -> Markup {
    let lang = lang_of(ctx);
    let all = screens(flow);
    let screen = screen.min(all.len().saturating_sub(1));
    let (group, ja, en) = all[screen];
    let err = |id: &str| {
        errors
            .iter()
            .find(|e| e.field == id)
            .map(|e| e.reason.clone())
    };
    let described = |id: &str, hint: Option<String>| {
        let mut ids: Vec<String> = hint.into_iter().collect();
        if err(id).is_some() {
            ids.push(format!("{id}-error"));
        }
        (!ids.is_empty()).then(|| ids.join(" "))
    };
    let last = screen + 1 == all.len();
    let none = offers_none(flow, group).then(|| none_key(group));
    let none_box = |key: &str| {
        html! {
            div class="none" {
                label {
                    input type="checkbox" id=(key) name=(key) value="yes"
                        checked[values.get(key).map(String::as_str) == Some("yes")]
                        aria-describedby=[described(key, None)];
                    (none_text(group, lang))
                }
                @if let Some(e) = err(key) {
                    p class="err" id=(format!("{key}-error")) {
                        span class="visually-hidden" { (t(lang, "エラー：", "Error: ")) } (e)
                    }
                }
            }
        }
    };
    html! {
        main class="narrow" {
            @if !errors.is_empty() {
                div class="error-summary" id="error-summary" role="alert" tabindex="-1" autofocus
                    aria-labelledby="error-summary-title" {
                    h2 id="error-summary-title" { (t(lang, "入力に問題があります", "There is a problem")) }
                    ul {
                        @for e in errors {
                            li { a href=(format!("#{}", e.field)) {
                                (field_label(flow, lang, &e.field)) "：" (e.reason)
                            } }
                        }
                    }
                }
            }
            h1 { (flow.title(lang)) }
            p class="whose" { strong { (whose(ctx, lang)) } }
            p class="muted" { (format!("{} / {}", screen + 1, all.len())) }
            form method="post" action=(format!("/c/{token}")) novalidate {
                input type="hidden" name="screen" value=(screen);
                fieldset {
                    legend { (t(lang, ja, en)) }
                    @if let Some(key) = none.as_deref().filter(|_| group != "urgent") {
                        (none_box(key))
                    }
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
                                        (t(lang, "例：97（パルスオキシメーターの数字。測れないときは空欄のまま次へ）", "e.g. 97 (the pulse oximeter's number; leave empty if you cannot measure it)"))
                                    }
                                }
                                input id=(id) name=(id) type="text" inputmode="decimal" value=(v)
                                    autocomplete="off" aria-invalid=[err(id).map(|_| "true")]
                                    aria-describedby=[described(id, Some(format!("{id}-hint")))];
                            }
                            QuestionKind::YesNo => {
                                p class="q" id=(format!("{id}-q")) { (flow.text(q, lang)) }
                                div class="yn" role="radiogroup" aria-labelledby=(format!("{id}-q"))
                                    aria-describedby=[described(id, None)] {
                                    label { input type="radio" id=(id) name=(id) value="yes" checked[v == "yes"]; (t(lang, "はい", "Yes")) }
                                    label { input type="radio" name=(id) value="no" checked[v == "no"]; (t(lang, "いいえ", "No")) }
                                }
                            }
                            QuestionKind::Choice => {
                                p class="q" id=(format!("{id}-q")) { (flow.text(q, lang)) }
                                div class="choices" role="radiogroup" aria-labelledby=(format!("{id}-q"))
                                    aria-describedby=[described(id, None)] {
                                    @for (n, c) in q.choices.iter().enumerate() {
                                        label { input type="radio" id=[(n == 0).then_some(id)] name=(id) value=(c.id) checked[v == c.id]; (flow.choice_text(c, lang)) }
                                    }
                                }
                            }
                        }
                        @if let Some(e) = err(id) {
                            p class="err" id=(format!("{id}-error")) {
                                span class="visually-hidden" { (t(lang, "エラー：", "Error: ")) } (e)
                            }
                        }
                    }
                    @if let Some(key) = none.as_deref().filter(|_| group == "urgent") {
                        (none_box(key))
                    }
                }
                // The primary button comes first, so Enter in a field goes forward.
                div class="actions" {
                    button type="submit" name="nav" value="next" {
                        (if last { t(lang, "送信する", "Send") } else { t(lang, "次へ", "Next") })
                    }
                    @if screen > 0 {
                        button type="submit" name="nav" value="back" class="secondary" { (t(lang, "戻る", "Back")) }
                    }
                }
            }
            (call_footer(ctx, lang))
        }
    }
}

/// The form page, its title prefixed "エラー:" / "Error:" when it shows problems.
fn form_response(
    flow: &Flow,
    ctx: &LinkContext,
    token: &str,
    values: &Answers,
    errors: &[FieldError],
    screen: usize,
) -> Response {
    let lang = lang_of(ctx);
    let title = if errors.is_empty() {
        flow.title(lang).to_string()
    } else {
        format!("{}{}", t(lang, "エラー: ", "Error: "), flow.title(lang))
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (
        status,
        layout::bare_lang(
            lang,
            &title,
            form_page(flow, ctx, token, values, errors, screen),
        ),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct ScreenQuery {
    s: Option<usize>,
}

async fn show(
    State(s): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<ScreenQuery>,
) -> Result<Response, HtmlError> {
    let ctx = match open(&s, &token).await {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    if !is_open(&ctx) {
        return Ok(closed_page(&ctx));
    }
    let values = drafts::open(&s.db, ctx.checkin_id, ctx.person_id).await?;
    let flow = s.flows.for_monitoring(&ctx.monitoring_type);
    Ok(form_response(
        flow,
        &ctx,
        &token,
        &values,
        &[],
        q.s.unwrap_or(0),
    ))
}

fn see_other(to: String) -> Response {
    Redirect::to(&to).into_response()
}

/// Validates the submitted answers against the flow: every question answered except
/// skippable ones; numbers in range.
fn parse_answers(flow: &Flow, lang: Lang, form: &Answers) -> Result<Answer, Vec<FieldError>> {
    let mut c = Collect::default();
    let mut a = Answer::default();
    // One urgent sign answered "yes" is enough to act on: the others are not required then,
    // so a person in trouble is not held back by twelve more questions.
    let urgent_yes = flow
        .questions
        .iter()
        .any(|q| q.urgent && form.get(q.id.get_ref().as_str()).map(|v| v.trim()) == Some("yes"));
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
                "" if q.urgent && urgent_yes => {}
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
    form: Result<Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Result<Response, HtmlError> {
    // Not a form (another content type, a broken body): a page in both languages, not the
    // framework's English text.
    let Ok(Form(form)) = form else {
        return Ok(link_problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "回答を読み取れませんでした。リンクを開き直して、もう一度送ってください。",
            "Your answers could not be read. Please open the link again and send them once more.",
            None,
        ));
    };
    let ctx = match open(&s, &token).await {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    if !is_open(&ctx) {
        return Ok(closed_page(&ctx));
    }
    let lang = lang_of(&ctx);
    let flow = s.flows.for_monitoring(&ctx.monitoring_type);
    let mut nav = None;
    let mut screen: Option<usize> = None;
    let mut posted = Answers::new();
    for (k, v) in form {
        match k.as_str() {
            "nav" => nav = Some(v),
            "screen" => screen = v.parse().ok(),
            // A field sent twice is refused, not silently the last value.
            _ if known_field(flow, &k) && posted.insert(k.clone(), v).is_some() => {
                return Ok(link_problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "同じ質問への答えが2つ送られました。リンクを開き直してください。",
                    "Two answers to the same question were sent. Please open the link again.",
                    Some((&ctx.health_centre_name, &ctx.health_centre_phone)),
                ));
            }
            _ => {}
        }
    }
    let here = format!("/c/{token}");
    let Some(n) = screen else {
        // Without `screen` the whole questionnaire was posted at once (older clients).
        return finish(&s, &ctx, flow, &token, posted).await;
    };
    let all = screens(flow);
    let n = n.min(all.len().saturating_sub(1));
    let group = all[n].0;
    // What this screen shows replaces what the draft held for it (a cleared box is cleared).
    let mut values = drafts::open(&s.db, ctx.checkin_id, ctx.person_id).await?;
    values.retain(|k, _| {
        k != &none_key(group)
            && !flow
                .questions
                .iter()
                .any(|q| q.group == group && q.id.get_ref() == k)
    });
    values.extend(posted);
    if nav.as_deref() == Some("back") {
        drafts::save(&s.db, ctx.checkin_id, ctx.person_id, &values).await?;
        return Ok(see_other(format!("{here}?s={}", n.saturating_sub(1))));
    }
    let mut checked = values.clone();
    let mut errors = apply_none(flow, lang, &mut checked);
    errors.extend(
        parse_answers(flow, lang, &checked)
            .err()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                flow.questions
                    .iter()
                    .any(|q| q.group == group && *q.id.get_ref() == e.field)
            }),
    );
    errors.retain(|e| {
        e.field == none_key(group)
            || flow
                .questions
                .iter()
                .any(|q| q.group == group && *q.id.get_ref() == e.field)
    });
    if !errors.is_empty() {
        return Ok(form_response(flow, &ctx, &token, &values, &errors, n));
    }
    if n + 1 < all.len() {
        drafts::save(&s.db, ctx.checkin_id, ctx.person_id, &values).await?;
        return Ok(see_other(format!("{here}?s={}", n + 1)));
    }
    finish(&s, &ctx, flow, &token, values).await
}

/// The last screen: the whole answer is checked and recorded, the draft discarded, and the
/// person redirected to the page that says what happens next.
async fn finish(
    s: &AppState,
    ctx: &LinkContext,
    flow: &Flow,
    token: &str,
    mut values: Answers,
) -> Result<Response, HtmlError> {
    let lang = lang_of(ctx);
    let shown = values.clone();
    let mut errors = apply_none(flow, lang, &mut values);
    let answer = match parse_answers(flow, lang, &values) {
        Ok(a) if errors.is_empty() => a,
        other => {
            errors.extend(other.err().unwrap_or_default());
            // Show the first screen with a problem.
            let first = screens(flow)
                .iter()
                .position(|(g, _, _)| {
                    errors.iter().any(|e| {
                        e.field == none_key(g)
                            || flow
                                .questions
                                .iter()
                                .any(|q| q.group == *g && e.field == *q.id.get_ref())
                    })
                })
                .unwrap_or(0);
            return Ok(form_response(flow, ctx, token, &shown, &errors, first));
        }
    };
    match s
        .ingest
        .answer(ctx.checkin_id, ctx.link_source(), answer)
        .await?
    {
        Ok(rec) => {
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
        }
        Err(Closed::AlreadyAnswered | Closed::Ended) => {}
    }
    // The draft went with the answer, in its transaction (`answer_checkins`).
    Ok(see_other(format!("/c/{token}/done")))
}

/// After the submit (and on reload): thanks, what happens next, the "phone now" box when
/// the answer was urgent, and the next member of a household sharing the phone.
async fn done(State(s): State<AppState>, Path(token): Path<String>) -> Result<Response, HtmlError> {
    // One read for the whole page (it follows every answer): the link's context, the
    // answer's urgency and whether the phone is shared.
    let d = match s.signer.verify(&token, chrono::Utc::now().timestamp()) {
        Ok(id) => checkins::done_context(&s.db, id).await.ok(),
        Err(_) => None,
    };
    let Some(d) = d else {
        // Expired or unknown: the same explanations as the form's.
        return Ok(match open(&s, &token).await {
            Ok(ctx) => closed_page(&ctx),
            Err(r) => r,
        });
    };
    let ctx = d.link;
    if is_open(&ctx) {
        return Ok(see_other(format!("/c/{token}")));
    }
    let Some(urgent) = d.urgent else {
        return Ok(closed_page(&ctx));
    };
    let household = if d.shared_phone {
        checkins::household_open(&s.db, ctx.checkin_id).await?
    } else {
        Vec::new()
    };
    // Through the batched audit writer: this page is on the answer path of every person.
    s.audit
        .record(mimamori_core::store::audit::OwnedAuditRow {
            actor: Actor::Person(ctx.person_id),
            action: "checkin.done",
            target_kind: "person",
            target_id: Some(ctx.person_id),
            ip: None,
        })
        .await?;
    let next: Vec<(String, String)> = household
        .iter()
        .map(|m| {
            let expires = m
                .deadline_at
                .max(chrono::Utc::now() + chrono::Duration::hours(s.config.checkin.link_ttl_hours))
                .timestamp();
            (
                mimamori_core::domain::short_name(&m.person_name).to_string(),
                format!("/c/{}", s.signer.sign(m.checkin_id, expires)),
            )
        })
        .collect();
    Ok(thanks(&ctx, lang_of(&ctx), urgent, &next).into_response())
}

fn thanks(ctx: &LinkContext, lang: Lang, urgent: bool, next: &[(String, String)]) -> Html<String> {
    let title = if urgent {
        t(
            lang,
            "すぐに保健所へ電話してください",
            "Phone the health centre now",
        )
    } else {
        t(
            lang,
            "回答を受け付けました",
            "Your answers have been received",
        )
    };
    layout::bare_lang(
        lang,
        title,
        html! {
            main class="narrow" {
                h1 { (title) }
                p class="whose" { (whose(ctx, lang)) }
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
                h2 { (t(lang, "このあと", "What happens next")) }
                ul {
                    @if urgent {
                        li { (t(lang, "保健所の担当者にも知らせました。電話がつながらなくても、保健所からの連絡を待たずに 119 番へ。", "The health centre's staff have been told as well. If you cannot get through, do not wait for their call: call 119.")) }
                    } @else {
                        li { (t(lang, "回答は保健所の担当者が確認します。気になる点があれば保健所から連絡します。", "The health centre's staff will look at your answers and contact you if anything needs attention.")) }
                    }
                    li { (t(lang, "明日も同じ時間ごろにメッセージが届きます。", "You will get a message at about the same time tomorrow.")) }
                }
                @if !next.is_empty() {
                    h2 { (t(lang, "同じ電話番号のご家族", "Others on this phone")) }
                    p { (t(lang, "続けて回答できます：", "You can answer for them next:")) }
                    ul class="next" {
                        @for (who, href) in next {
                            li { a class="button" href=(href) {
                                (match lang { Lang::Ja => format!("{who}さんの回答へ"), Lang::En => format!("Answer for {who}") })
                            } }
                        }
                    }
                }
                (call_footer(ctx, lang))
            }
        },
    )
}
