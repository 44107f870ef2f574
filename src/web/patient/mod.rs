//! The page behind the personal link in an SMS or e-mail: no login, an HMAC-signed,
//! expiring, single-check-in token. Mobile-first, no JavaScript, the person's language.
//! Nothing about the person is shown before the token is verified; a bad link gets a page
//! that says what to do, never an error dump.

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use maud::html;
use mimamori_core::answer;
use mimamori_core::{
    domain::Lang,
    flows::Flow,
    store::{
        checkins::{self, LinkContext},
        drafts,
        observations::Closed,
    },
    token::TokenError,
};

mod form;

use form::{
    Answers, apply_none, call_footer, form_response, known_field, none_key, screens, whose,
};

use super::{
    AppState,
    error::HtmlError,
    i18n::{tr, tr_args},
    layout,
};

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

/// What the patients' door answers for a path it does not serve: the patient's "not a valid
/// link" page in both languages (a patient who mistyped the address lands here; the generic
/// error page would offer a way back to a console that is not served at the door).
pub fn not_at_the_door() -> Response {
    link_problem(StatusCode::NOT_FOUND, "link-not-valid", None)
}

/// A page explaining why the link cannot be used (both languages: the person is unknown).
/// `key`: the message (`link-…` in the catalogue), shown in both languages.
fn link_problem(status: StatusCode, key: &str, phone: Option<(&str, &str)>) -> Response {
    let both = |k: &str| (tr(Lang::Ja, k), tr(Lang::En, k));
    let (title_ja, title_en) = both("link-title");
    let title = format!("{title_ja} / {title_en}");
    let body = html! {
        main class="narrow" {
            h1 { (title) }
            p lang="ja" { (tr(Lang::Ja, key)) }
            p lang="en" { (tr(Lang::En, key)) }
            @if let Some((name, tel)) = phone {
                p { (name) ": " a href=(format!("tel:{tel}")) { (tel) } }
                p lang="ja" { (tr(Lang::Ja, "link-call-119")) }
                p lang="en" { (tr(Lang::En, "link-call-119")) }
            } @else {
                p lang="ja" { (tr(Lang::Ja, "link-phone-for-new")) }
                p lang="en" { (tr(Lang::En, "link-phone-for-new")) }
            }
        }
    };
    (status, layout::bare(&title, body)).into_response()
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
                "link-expired",
                centre.as_ref().map(|c| {
                    (
                        c.health_centre_name.as_str(),
                        c.health_centre_phone.as_str(),
                    )
                }),
            ));
        }
        Err(_) => {
            return Err(link_problem(StatusCode::NOT_FOUND, "link-not-valid", None));
        }
    };
    s.reads.link(id).await.map_err(|e| {
        tracing::warn!(checkin_id = id, error = %e, "signed link for an unknown check-in");
        link_problem(StatusCode::NOT_FOUND, "link-unusable", None)
    })
}

fn closed_page(ctx: &LinkContext) -> Response {
    let phone = Some((
        ctx.health_centre_name.as_str(),
        ctx.health_centre_phone.as_str(),
    ));
    if ctx.status == "answered" {
        link_problem(StatusCode::CONFLICT, "link-already-answered", phone)
    } else {
        link_problem(StatusCode::GONE, "link-closed", phone)
    }
}

fn is_open(ctx: &LinkContext) -> bool {
    mimamori_core::codes::CheckinStatus::is_open_str(&ctx.status)
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
            "link-unreadable",
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
                    "link-field-twice",
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
        answer::from_form(flow, &checked)
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
    let answer = match answer::from_form(flow, &values) {
        Ok(a) if errors.is_empty() => a,
        other => {
            errors.extend(other.err().unwrap_or_default());
            // Show the first screen with a problem.
            let first = screens(flow)
                .iter()
                .position(|(g, _)| {
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
        Ok(id) => s.reads.done(id).await.ok(),
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
    // This page's read was audited with it (`checkins::done_contexts`: the page after an
    // answer, its urgency and the household, as the person's own read).
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
        tr(lang, "phone-the-health-centre-now")
    } else {
        tr(lang, "your-answers-have-been-received")
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
                        p { strong { (tr(lang, "your-answers-show-you-may-need-help")) } }
                        p { (ctx.health_centre_name) ": " a style="color:#fff;font-size:1.4rem" href=(format!("tel:{}", ctx.health_centre_phone)) { (ctx.health_centre_phone) } }
                        p { (tr(lang, "if-you-cannot-get-through-or-it-is-life")) }
                    }
                }
                div class="ok" role="status" {
                    p { (tr(lang, "your-answers-have-been-received-thank")) }
                }
                h2 { (tr(lang, "what-happens-next")) }
                ul {
                    @if urgent {
                        li { (tr(lang, "the-health-centre-s-staff-have-been-told")) }
                    } @else {
                        li { (tr(lang, "the-health-centre-s-staff-will-look-at")) }
                    }
                    li { (tr(lang, "you-will-get-a-message-at-about-the-same")) }
                }
                @if !next.is_empty() {
                    h2 { (tr(lang, "others-on-this-phone")) }
                    p { (tr(lang, "you-can-answer-for-them-next")) }
                    ul class="next" {
                        @for (who, href) in next {
                            li { a class="button" href=(href) {
                                (tr_args(lang, "link-answer-for", &[("who", who.as_str().into())]))
                            } }
                        }
                    }
                }
                (call_footer(ctx, lang))
            }
        },
    )
}
