//! One's own account: change the password (rules in `core::password`) and register an
//! authenticator app (TOTP) as the second factor. Every change is audited.
use axum::{
    Form, Router,
    extract::State,
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use axum_extra::extract::{
    CookieJar,
    cookie::{Cookie, SameSite},
};
use base64::Engine;
use maud::{Markup, html};
use mimamori_core::{
    domain::Lang,
    password,
    store::{Actor, audit, staff},
    with_db,
};
use rand::Rng;
use serde::Deserialize;

use crate::web::{
    AppState,
    auth::{CurrentStaff, verify_login},
    error::HtmlError,
    i18n::{UiLang, tr},
    layout, login,
};

const PENDING_TOTP: &str = "mimamori_totp_pending";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(show))
        .route("/account/password", post(change_password))
        .route("/account/totp", post(start_totp))
        .route("/account/totp/confirm", post(confirm_totp))
}

fn page(
    lang: Lang,
    who: &CurrentStaff,
    notice: Option<Markup>,
    error: Option<String>,
    enrol: Option<(String, String)>,
) -> Html<String> {
    layout::page(
        lang,
        who,
        tr(lang, "account"),
        html! {
            @if let Some(n) = notice { div class="ok" role="status" { (n) } }
            @if let Some(e) = error { div class="errors" role="alert" { (e) } }
            section class="card" {
                h2 { (tr(lang, "change-password")) }
                p class="muted" { (tr(lang, "at-least-12-characters-not-your-user-id")) }
                form method="post" action="/account/password" {
                    input type="hidden" name="csrf" value=(who.csrf);
                    label for="current" { (tr(lang, "current-password")) } input id="current" name="current" type="password" autocomplete="current-password" required;
                    label for="new" { (tr(lang, "new-password")) } input id="new" name="new" type="password" autocomplete="new-password" required;
                    label for="again" { (tr(lang, "new-password-again")) } input id="again" name="again" type="password" autocomplete="new-password" required;
                    button type="submit" { (tr(lang, "change")) }
                }
            }
            section class="card" {
                h2 { (tr(lang, "authenticator-app-second-factor")) }
                @if let Some((secret, uri)) = enrol {
                    p { (tr(lang, "add-this-key-to-your-authenticator-app")) }
                    p { code class="totp-secret" style="font-size:1.2rem" { (secret) } }
                    p class="muted" { (uri) }
                    form method="post" action="/account/totp/confirm" {
                        input type="hidden" name="csrf" value=(who.csrf);
                        label for="code" { (tr(lang, "code")) } input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required;
                        button type="submit" { (tr(lang, "register")) }
                    }
                } @else {
                    form method="post" action="/account/totp" {
                        input type="hidden" name="csrf" value=(who.csrf);
                        button type="submit" { (tr(lang, "set-up-an-authenticator-app")) }
                    }
                }
            }
        },
    )
}

/// The page again with what was wrong, as 422.
fn refused(lang: Lang, who: &CurrentStaff, message: impl Into<String>) -> Response {
    (
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        page(lang, who, None, Some(message.into()), None),
    )
        .into_response()
}

async fn show(who: CurrentStaff, UiLang(lang): UiLang) -> Html<String> {
    page(lang, &who, None, None, None)
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    again: String,
}

async fn change_password(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Form(f): Form<PasswordForm>,
) -> Result<Response, HtmlError> {
    who.check_csrf(&f.csrf)?;
    let me = staff::staff_by_id(&s.db, who.id).await?;
    if verify_login(&s, &me.username, &f.current).await? != Some(who.id) {
        return Ok(refused(
            lang,
            &who,
            tr(lang, "the-current-password-is-wrong"),
        ));
    }
    if f.new != f.again {
        return Ok(refused(
            lang,
            &who,
            tr(lang, "the-two-new-passwords-differ"),
        ));
    }
    if let Err(e) = password::check(&f.new, &me.username) {
        return Ok(refused(lang, &who, e.to_string()));
    }
    let new = f.new.clone();
    let hash = tokio::task::spawn_blocking(move || crate::web::auth::hash_password(&new)).await??;
    staff::set_password(&s.db, who.id, &hash).await?;
    with_db!(&s.db, p => audit(p, Actor::Staff(who.id), "account.password", "staff", Some(who.id), None).await)?;
    Ok(page(
        lang,
        &who,
        Some(html! { (tr(lang, "password-changed")) }),
        None,
        None,
    )
    .into_response())
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

/// Generates a secret; it is kept only in this browser (an HttpOnly cookie) until the code
/// from the app confirms it.
async fn start_totp(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    jar: CookieJar,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, HtmlError> {
    who.check_csrf(&f.csrf)?;
    let bytes: [u8; 20] = rand::rng().random();
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let secret = password::base32(&bytes);
    let me = staff::staff_by_id(&s.db, who.id).await?;
    let uri = format!(
        "otpauth://totp/mimamori:{}?secret={secret}&issuer=mimamori&algorithm=SHA1&digits=6&period=30",
        me.username
    );
    let cookie = Cookie::build((PENDING_TOTP, b64))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(s.secure_cookies)
        .path("/account")
        .build();
    Ok((
        jar.add(cookie),
        page(lang, &who, None, None, Some((secret, uri))),
    )
        .into_response())
}

#[derive(Deserialize)]
struct ConfirmForm {
    csrf: String,
    code: String,
}

async fn confirm_totp(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    jar: CookieJar,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, HtmlError> {
    who.check_csrf(&f.csrf)?;
    let Some(b64) = jar.get(PENDING_TOTP).map(|c| c.value().to_string()) else {
        return Ok(page(
            lang,
            &who,
            None,
            Some(tr(lang, "please-start-the-set-up-again").into()),
            None,
        )
        .into_response());
    };
    let ok = login::totp(&b64).is_some_and(|t| t.check_current(f.code.trim()).is_some());
    if !ok {
        return Ok(refused(
            lang,
            &who,
            tr(lang, "wrong-code-check-the-device-s-clock-too"),
        ));
    }
    staff::set_totp(&s.db, who.id, Some(&b64)).await?;
    with_db!(&s.db, p => audit(p, Actor::Staff(who.id), "account.totp", "staff", Some(who.id), None).await)?;
    let jar = jar.remove(Cookie::build(PENDING_TOTP).path("/account"));
    Ok((
        jar,
        page(
            lang,
            &who,
            Some(html! { (tr(lang, "authenticator-registered-it-gives-your")) }),
            None,
            None,
        ),
    )
        .into_response())
}
