//! Logging in: user ID + password, then a second factor — always. The code goes by SMS or
//! e-mail through the channel layer (the dev outbox in the embedded default), or comes from
//! an authenticator app (TOTP). Repeated wrong passwords lock the account with a growing
//! back-off; suspended accounts cannot log in. Persons under observation never log in.
use axum::{
    Form, Json, Router,
    extract::{State, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use axum_extra::extract::{
    CookieJar,
    cookie::{Cookie, SameSite},
};
use base64::Engine;
use chrono::Duration;
use maud::html;
use mimamori_core::{
    db::now,
    domain::Lang,
    provider::{Audience, OutboundMessage, SendError},
    store::{Actor, audit, outbox, sessions, staff},
    with_db,
};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

use super::{
    AppState,
    auth::{self, verify_login},
    error::{AppError, HtmlError},
    i18n::{UiLang, tr, tr_args},
    layout,
};

const MFA_COOKIE: &str = "mimamori_mfa";
const MFA_TTL_MINUTES: i64 = 5;
const MFA_MAX_TRIES: i32 = 5;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/login/mfa", get(mfa_form).post(mfa))
        .route("/login/mfa/voice", post(mfa_by_voice))
        .route("/api/v1/session", post(api_login))
        .route("/api/v1/session/mfa", post(api_mfa))
}

/// Why a password step did not lead to a second factor. An unknown ID, a wrong password
/// and a locked account get the same answer (no account enumeration); "suspended" and "no
/// second factor" are said only to someone who gave the right password.
pub enum Refusal {
    Wrong,
    Suspended,
    NoSecondFactor,
    /// The provider would not take the login code (after retries).
    CodeNotSent,
}

/// A second factor waiting for its code.
pub struct Pending {
    pub token: String,
    pub method: &'static str,
    /// Where the code went, masked ("***-5678").
    pub hint: String,
}

/// How often a login code's send is tried before the person is told it could not be sent.
const CODE_SEND_TRIES: u32 = 3;

fn mask(s: &str) -> String {
    let tail: String = s
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("***{tail}")
}

/// TOTP of a base64 secret (RFC 6238: SHA-1, 6 digits, 30 s, ±1 step).
pub fn totp(secret_b64: &str) -> Option<totp_rs::Totp> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(secret_b64)
        .ok()?;
    totp_rs::Builder::new().with_secret(bytes).build().ok()
}

/// Password step: checks lock, suspension and password, then creates the second-factor
/// challenge and sends its code. The password hash is checked on every path (also for an
/// unknown or locked ID), so the answer's timing does not tell them apart either.
pub async fn password_step(
    s: &AppState,
    username: &str,
    password: &str,
    ip: Option<&str>,
) -> Result<Result<Pending, Refusal>, AppError> {
    let account = staff::staff_by_username(&s.db, username.trim()).await?;
    let verified = verify_login(s, username, password).await?;
    let Some(a) = account else {
        return Ok(Err(Refusal::Wrong));
    };
    let st = sessions::login_state(&s.db, a.id).await?;
    if st.locked_until.is_some_and(|u| u > now()) {
        with_db!(&s.db, p => audit(p, Actor::Staff(a.id), "login.locked", "staff", Some(a.id), ip).await)?;
        return Ok(Err(Refusal::Wrong));
    }
    let Some(id) = verified else {
        sessions::login_failed(&s.db, a.id).await?;
        with_db!(&s.db, p => audit(p, Actor::Staff(a.id), "login.failed", "staff", Some(a.id), ip).await)?;
        return Ok(Err(Refusal::Wrong));
    };
    if st.suspended {
        return Ok(Err(Refusal::Suspended));
    }
    let token = auth::random_token();
    let ttl = Duration::minutes(MFA_TTL_MINUTES);
    if st.totp_secret.is_some() {
        sessions::create_challenge(&s.db, &token, id, "totp", None, ttl).await?;
        return Ok(Ok(Pending {
            token,
            method: "totp",
            hint: String::new(),
        }));
    }
    let (channel, to) = match (&st.phone, &st.email) {
        (Some(p), _) => ("sms", p.clone()),
        (None, Some(e)) => ("email", e.clone()),
        _ => return Ok(Err(Refusal::NoSecondFactor)),
    };
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000));
    sessions::create_challenge(&s.db, &token, id, channel, Some(&code), ttl).await?;
    let msg = OutboundMessage {
        channel: if channel == "sms" { "sms" } else { "email" },
        to: to.clone(),
        subject: Some(format!(
            "{} / {}",
            tr(Lang::Ja, "login-code-subject"),
            tr(Lang::En, "login-code-subject")
        )),
        body: {
            let args = [
                ("code", code.as_str().into()),
                ("minutes", MFA_TTL_MINUTES.into()),
            ];
            format!(
                "{} / {}",
                tr_args(Lang::Ja, "login-code-text", &args),
                tr_args(Lang::En, "login-code-text", &args)
            )
        },
        html: None,
        url: None,
        status_callback: None,
        idempotency_key: format!("mfa-{}", &token[..16]),
        priority: true,
        audience: Audience::Staff(id),
    };
    if let Err(e) = send_code(s, &msg).await {
        tracing::warn!(staff_id = id, error = %e, "login code not sent");
        sessions::delete_challenge(&s.db, &token).await?;
        with_db!(&s.db, p => audit(p, Actor::Staff(id), "login.mfa_not_sent", "staff", Some(id), ip).await)?;
        return Ok(Err(Refusal::CodeNotSent));
    }
    with_db!(&s.db, p => audit(p, Actor::Staff(id), "login.mfa_sent", "staff", Some(id), ip).await)?;
    Ok(Ok(Pending {
        token,
        method: if channel == "sms" { "sms" } else { "email" },
        hint: mask(&to),
    }))
}

/// Sends a login code, trying again after a temporary refusal (429, 5xx, timeout) — the
/// person is waiting, so at most [`CODE_SEND_TRIES`] tries within about two seconds.
async fn send_code(s: &AppState, msg: &OutboundMessage) -> Result<String, SendError> {
    let provider = s.channels.for_channel(msg.channel);
    let mut tries = 0;
    loop {
        tries += 1;
        match provider.send(msg).await {
            Err(SendError::Transient(_)) if tries < CODE_SEND_TRIES => {
                tokio::time::sleep(std::time::Duration::from_millis(300 * u64::from(tries))).await;
            }
            r => return r,
        }
    }
}

/// Second-factor step: returns the staff id when the code is right. A wrong code counts
/// toward the account's lock like a wrong password; a locked account's codes are refused.
pub async fn code_step(
    s: &AppState,
    token: &str,
    code: &str,
    ip: Option<&str>,
) -> Result<Option<i64>, AppError> {
    let Some(c) = sessions::challenge_attempt(&s.db, token).await? else {
        return Ok(None);
    };
    let st = sessions::login_state(&s.db, c.staff_id).await?;
    if c.expires_at < now() || c.tries > MFA_MAX_TRIES || st.locked_until.is_some_and(|u| u > now())
    {
        sessions::delete_challenge(&s.db, token).await?;
        return Ok(None);
    }
    let ok = if c.method == "totp" {
        st.totp_secret
            .as_deref()
            .and_then(totp)
            .is_some_and(|t| t.check_current(code.trim()).is_some())
    } else {
        sessions::code_matches(&c, token, code)
    };
    with_db!(&s.db, p => audit(p, Actor::Staff(c.staff_id), if ok { "login.ok" } else { "login.mfa_failed" }, "staff", Some(c.staff_id), ip).await)?;
    if !ok {
        if sessions::login_failed(&s.db, c.staff_id).await?.is_some() {
            sessions::delete_challenge(&s.db, token).await?;
        }
        return Ok(None);
    }
    sessions::delete_challenge(&s.db, token).await?;
    sessions::login_succeeded(&s.db, c.staff_id).await?;
    Ok(Some(c.staff_id))
}

fn refusal_text(lang: Lang, r: &Refusal) -> String {
    match r {
        Refusal::Wrong => tr(lang, "wrong-user-id-or-password-after-repeated").into(),
        Refusal::Suspended => tr(lang, "this-id-is-suspended-contact-your-id").into(),
        Refusal::NoSecondFactor => tr(lang, "no-second-factor-phone-e-mail-or").into(),
        Refusal::CodeNotSent => tr(lang, "we-could-not-send-your-login-code-the").into(),
    }
}

fn refusal_status(r: &Refusal) -> StatusCode {
    match r {
        Refusal::Wrong => StatusCode::UNAUTHORIZED,
        Refusal::Suspended | Refusal::NoSecondFactor => StatusCode::FORBIDDEN,
        Refusal::CodeNotSent => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn login_page(lang: Lang, error: Option<&str>) -> axum::response::Html<String> {
    layout::bare_lang(
        lang,
        tr(lang, "log-in"),
        html! {
            main class="narrow" {
                h1 { "見守り mimamori" }
                p class="muted" { (tr(lang, "staff-login")) }
                @if let Some(e) = error { p class="errors" role="alert" { (e) } }
                form method="post" action="/login" {
                    label for="username" { (tr(lang, "user-id")) }
                    input id="username" name="username" autocomplete="username" required autofocus;
                    label for="password" { (tr(lang, "password")) }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                    button type="submit" { (tr(lang, "next")) }
                }
                p { a href=(if lang == Lang::Ja { "/lang/en" } else { "/lang/ja" }) { (tr(lang, "t---login")) } }
            }
        },
    )
}

async fn login_form(UiLang(lang): UiLang) -> impl IntoResponse {
    login_page(lang, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
}

async fn login(
    State(s): State<AppState>,
    UiLang(lang): UiLang,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<std::net::SocketAddr>,
    jar: CookieJar,
    Form(f): Form<LoginForm>,
) -> Result<Response, HtmlError> {
    let ip = addr.ip().to_string();
    match password_step(&s, &f.username, &f.password, Some(&ip)).await? {
        Ok(p) => {
            let cookie = Cookie::build((MFA_COOKIE, p.token))
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(s.secure_cookies)
                .path("/login")
                .build();
            Ok((jar.add(cookie), Redirect::to("/login/mfa")).into_response())
        }
        Err(r) => {
            tracing::info!("login refused");
            Ok((
                refusal_status(&r),
                login_page(lang, Some(&refusal_text(lang, &r))),
            )
                .into_response())
        }
    }
}

/// What the code page says, all of it from the server's own records (the pending challenge
/// and, in development, the dev outbox) — never from the request.
struct CodePage {
    method: String,
    hint: String,
    dev_code: Option<String>,
}

async fn code_page_for(s: &AppState, jar: &CookieJar) -> Result<Option<CodePage>, AppError> {
    let Some(token) = jar.get(MFA_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(None);
    };
    let Some((staff_id, method)) = sessions::challenge_owner(&s.db, &token).await? else {
        return Ok(None);
    };
    let st = sessions::login_state(&s.db, staff_id).await?;
    let hint = match method.as_str() {
        "sms" => st.phone.as_deref().map(mask).unwrap_or_default(),
        "email" => st.email.as_deref().map(mask).unwrap_or_default(),
        _ => String::new(),
    };
    let dev_code = if method != "totp" && s.channels.for_channel(&method).name() == "outbox" {
        outbox::latest_for_staff(&s.db, staff_id)
            .await?
            .and_then(|body| last_code(body.lines().next().unwrap_or("")))
    } else {
        None
    };
    Ok(Some(CodePage {
        method,
        hint,
        dev_code,
    }))
}

/// The last run of six digits in a line (the login code in a dev-outbox message; a call's
/// URL, on the next line, is not read).
fn last_code(body: &str) -> Option<String> {
    let b = body.as_bytes();
    (0..b.len().saturating_sub(5))
        .rev()
        .find(|&i| {
            b[i..i + 6].iter().all(u8::is_ascii_digit)
                && (i == 0 || !b[i - 1].is_ascii_digit())
                && b.get(i + 6).is_none_or(|c| !c.is_ascii_digit())
        })
        .map(|i| body[i..i + 6].to_string())
}

fn mfa_page(lang: Lang, q: &CodePage, error: Option<&str>) -> axum::response::Html<String> {
    let how = match q.method.as_str() {
        "totp" => tr(lang, "enter-the-6-digit-code-shown-in-your"),
        "email" => tr(lang, "enter-the-code-we-sent-by-e-mail"),
        _ => tr(lang, "enter-the-code-we-sent-by-sms-or-the-one"),
    };
    layout::bare_lang(
        lang,
        tr(lang, "login-code"),
        html! {
            main class="narrow" {
                h1 { (tr(lang, "login-code")) }
                p { (how) " " @if !q.hint.is_empty() { span class="muted" { "(" (q.hint) ")" } } }
                @if let Some(code) = &q.dev_code {
                    p class="ok" { (tr(lang, "development-outbox-your-code-is-shown")) strong { (code) } }
                }
                @if let Some(e) = error { p class="errors" role="alert" { (e) } }
                form method="post" action="/login/mfa" {
                    label for="code" { (tr(lang, "code-6-digits")) }
                    input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus pattern="[0-9]{6}";
                    button type="submit" { (tr(lang, "log-in")) }
                }
                @if q.method == "sms" {
                    form method="post" action="/login/mfa/voice" {
                        button type="submit" style="background:#555" { (tr(lang, "call-me-and-read-the-code-instead")) }
                    }
                }
                p { a href="/login" { (tr(lang, "start-again")) } }
            }
        },
    )
}

async fn mfa_form(
    State(s): State<AppState>,
    UiLang(lang): UiLang,
    jar: CookieJar,
) -> Result<Response, HtmlError> {
    Ok(match code_page_for(&s, &jar).await? {
        Some(page) => mfa_page(lang, &page, None).into_response(),
        None => Redirect::to("/login").into_response(),
    })
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
}

async fn mfa(
    State(s): State<AppState>,
    UiLang(lang): UiLang,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<std::net::SocketAddr>,
    jar: CookieJar,
    Form(f): Form<CodeForm>,
) -> Result<Response, HtmlError> {
    let Some(token) = jar.get(MFA_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(Redirect::to("/login").into_response());
    };
    match code_step(&s, &token, &f.code, Some(&addr.ip().to_string())).await? {
        Some(id) => {
            let jar = jar.remove(Cookie::build(MFA_COOKIE).path("/login"));
            let (jar, _) = auth::start_session(&s, jar, id).await?;
            tracing::info!(staff_id = id, "login");
            Ok((jar, Redirect::to("/")).into_response())
        }
        None => {
            let error = tr(lang, "wrong-or-expired-code-after-repeated");
            let page = match code_page_for(&s, &jar).await? {
                Some(page) => page,
                // The challenge is used up: start again from the password.
                None => {
                    return Ok(
                        (StatusCode::UNAUTHORIZED, login_page(lang, Some(error))).into_response()
                    );
                }
            };
            Ok((StatusCode::UNAUTHORIZED, mfa_page(lang, &page, Some(error))).into_response())
        }
    }
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// `POST /api/v1/session` → 202 `{"mfa": "sms"|"email"|"totp", "challenge": …}`.
async fn api_login(
    State(s): State<AppState>,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<std::net::SocketAddr>,
    b: Result<Json<LoginBody>, JsonRejection>,
) -> Result<Response, AppError> {
    let b = b
        .map_err(|e| AppError::BadRequest(format!("request body: {}", e.body_text())))?
        .0;
    match password_step(&s, &b.username, &b.password, Some(&addr.ip().to_string())).await? {
        Ok(p) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "mfa": p.method, "sent_to": p.hint, "challenge": p.token })),
        )
            .into_response()),
        Err(r) => {
            let msg = refusal_text(Lang::En, &r);
            Ok((
                refusal_status(&r),
                Json(json!({ "error": { "code": "login_refused", "message": msg, "fields": [] } })),
            )
                .into_response())
        }
    }
}

#[derive(Deserialize)]
struct MfaBody {
    challenge: String,
    code: String,
}

/// `POST /api/v1/session/mfa` → the session cookie and `{"staff_id", "csrf_token"}`.
async fn api_mfa(
    State(s): State<AppState>,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<std::net::SocketAddr>,
    jar: CookieJar,
    b: Result<Json<MfaBody>, JsonRejection>,
) -> Result<(CookieJar, Json<serde_json::Value>), AppError> {
    let b = b
        .map_err(|e| AppError::BadRequest(format!("request body: {}", e.body_text())))?
        .0;
    let id = code_step(&s, &b.challenge, &b.code, Some(&addr.ip().to_string()))
        .await?
        .ok_or(AppError::Unauthorized)?;
    let (jar, csrf) = auth::start_session(&s, jar, id).await?;
    Ok((jar, Json(json!({ "staff_id": id, "csrf_token": csrf }))))
}

/// The code by an automated call instead of SMS (landlines, people who cannot read SMS): a
/// new code replaces the old one and is read out by `/hooks/twilio/login-code`.
async fn mfa_by_voice(
    State(s): State<AppState>,
    UiLang(lang): UiLang,
    jar: CookieJar,
) -> Result<Response, HtmlError> {
    let Some(token) = jar.get(MFA_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some((staff_id, method)) = sessions::challenge_owner(&s.db, &token).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let phone = sessions::login_state(&s.db, staff_id).await?.phone;
    let (Some(phone), false) = (phone, method == "totp") else {
        return Ok(Redirect::to("/login/mfa").into_response());
    };
    let code = rand::rng().random_range(0..1_000_000i64);
    let code_text = format!("{code:06}");
    sessions::replace_challenge_code(&s.db, &token, &code_text).await?;
    let provider = s.channels.for_channel("voice");
    // The dev outbox keeps the code in its note (no call is made there); a real call's note
    // never carries it.
    let body = if provider.name() == "outbox" {
        format!("mimamori login code call {code_text}")
    } else {
        "mimamori login code call".into()
    };
    let t = s.signer.sign_for(
        "login-code",
        code,
        (now() + Duration::minutes(MFA_TTL_MINUTES)).timestamp(),
    );
    let msg = OutboundMessage {
        channel: "voice",
        to: phone.clone(),
        subject: None,
        body,
        html: None,
        url: Some(format!("{}/hooks/twilio/login-code?t={t}", s.base())),
        status_callback: None,
        idempotency_key: format!("mfa-voice-{}", &t[t.len() - 12..]),
        priority: true,
        audience: Audience::Staff(staff_id),
    };
    if let Err(e) = send_code(&s, &msg).await {
        tracing::warn!(staff_id, error = %e, "login-code call not placed");
        let page = CodePage {
            method: method.clone(),
            hint: mask(&phone),
            dev_code: None,
        };
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            mfa_page(
                lang,
                &page,
                Some(&refusal_text(lang, &Refusal::CodeNotSent)),
            ),
        )
            .into_response());
    }
    with_db!(&s.db, p => audit(p, Actor::Staff(staff_id), "login.mfa_call", "staff", Some(staff_id), None).await)?;
    Ok(Redirect::to("/login/mfa").into_response())
}
