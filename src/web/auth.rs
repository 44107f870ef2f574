//! Staff login with username + password (argon2id) and a session cookie (HttpOnly,
//! SameSite=Strict, Secure on https). Forms carry the session's CSRF token. Roles and MFA
//! come with the access issue.
use argon2::{
    Argon2,
    password_hash::{PasswordVerifier, phc::PasswordHash},
};
use axum::{
    Form, Router,
    extract::{FromRequestParts, Path, State},
    http::request::Parts,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use axum_extra::extract::{
    CookieJar,
    cookie::{Cookie, SameSite},
};
use chrono::Duration;
use mimamori_core::{
    access::{Role, Viewer},
    store::{sessions, staff},
};
use rand::Rng;
use serde::Deserialize;

use super::{AppState, error::AppError};

pub const SESSION_COOKIE: &str = "mimamori_session";
const SESSION_TTL_HOURS: i64 = 12;
const SESSION_IDLE_MINUTES: i64 = 60;

pub use super::who::{CurrentStaff, DevTools};

impl DevTools {
    pub fn of(s: &AppState) -> DevTools {
        let outbox = |c| s.channels.for_channel(c).name() == "outbox";
        DevTools {
            outbox: outbox("sms") || outbox("email") || outbox("voice"),
            simulator: outbox("voice"),
        }
    }
}

/// An argon2id hash of a new password (slow on purpose: call it off the async threads).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::PasswordHasher;
    Ok(Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?
        .to_string())
}

impl CurrentStaff {
    /// What the store needs to enforce this user's access.
    pub fn viewer(&self) -> Viewer {
        Viewer {
            staff_id: self.id,
            role: self.role,
            health_centre_id: self.health_centre_id,
            organisation_id: self.organisation_id,
        }
    }

    /// Pages and actions that belong to the health centre (registration, the review queue,
    /// the outbox, the phone simulator).
    pub fn require_health_centre(&self) -> Result<(), AppError> {
        if self.role == Role::HealthCentreStaff {
            Ok(())
        } else {
            Err(AppError::Core(mimamori_core::Error::Forbidden(
                "only health-centre staff can use this",
            )))
        }
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), AppError> {
        use subtle_eq::ct_eq;
        if ct_eq(token.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(AppError::BadRequest(
                "the form has expired; reload the page and submit again".into(),
            ))
        }
    }
}

mod subtle_eq {
    /// Constant-time comparison of two byte strings.
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Not logged in: the API gets 401 JSON, pages a redirect to the login form. Or the session
/// could not be read (`busy`: the database did not answer in time — a storm holding every
/// connection — or is down): told to retry after that many seconds (503 with
/// `Retry-After`, the console's "busy" page or the API's JSON error), never sent to log in
/// again, which would only add a login to the storm.
pub struct AuthRejection {
    api: bool,
    busy: Option<u64>,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        if let Some(secs) = self.busy {
            return if self.api {
                AppError::Busy(secs).into_response()
            } else {
                super::error::HtmlError(AppError::Busy(secs)).into_response()
            };
        }
        if self.api {
            AppError::Unauthorized.into_response()
        } else {
            Redirect::to("/login").into_response()
        }
    }
}

/// The live session for `token`: from this process's cache while the change feed is heard
/// (every ended session and changed account is announced), else from the database. A cached
/// session is re-read at least once a minute, which also keeps its idle timer moving.
async fn session(
    state: &AppState,
    token: &str,
) -> mimamori_core::Result<Option<sessions::Session>> {
    use super::cache::{CachedSession, SESSION_REFRESH};
    let idle = Duration::minutes(SESSION_IDLE_MINUTES);
    let key = sessions::hash_token(token);
    let cache = &state.caches.sessions;
    if let Some(c) = cache.get(0, &key) {
        let t = mimamori_core::db::now();
        if c.fetched.elapsed() < SESSION_REFRESH
            && c.session.expires_at > t
            && c.session.last_seen_at + idle > t
        {
            return Ok(Some(c.session.clone()));
        }
    }
    let ticket = cache.ticket(0);
    let s = sessions::session(&state.db, token, idle).await?;
    if let (Some(t), Some(s)) = (ticket, &s) {
        cache.put(
            t,
            key,
            CachedSession {
                session: s.clone(),
                fetched: std::time::Instant::now(),
            },
        );
    }
    Ok(s)
}

impl FromRequestParts<AppState> for CurrentStaff {
    type Rejection = AuthRejection;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Inside nested routers `uri` has lost its prefix; the original one has not.
        let api = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(parts.uri.path(), |u| u.0.path())
            .starts_with("/api/");
        let reject = || AuthRejection { api, busy: None };
        let jar = CookieJar::from_request_parts(parts, state)
            .await
            .map_err(|_| reject())?;
        let token = jar
            .get(SESSION_COOKIE)
            .ok_or_else(reject)?
            .value()
            .to_string();
        let session = session(state, &token).await.map_err(|e| {
            tracing::error!(error = ?e, "session lookup failed: told to retry");
            AuthRejection {
                api,
                busy: Some(super::error::NO_CONNECTION_RETRY_SECS),
            }
        })?;
        let session = session.ok_or_else(reject)?;
        let role = Role::parse(&session.role).ok_or_else(|| {
            tracing::error!(
                staff_id = session.staff_id,
                "staff account with an unknown role"
            );
            reject()
        })?;
        Ok(CurrentStaff {
            id: session.staff_id,
            health_centre_id: session.health_centre_id,
            display_name: session.display_name,
            csrf: session.csrf_token,
            role,
            organisation_id: session.organisation_id,
            dev_tools: DevTools::of(state),
        })
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/logout", axum::routing::post(logout))
        .route("/logout/all", axum::routing::post(logout_all))
        .route("/lang/{code}", get(set_lang))
}

pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Verifies username and password; returns the staff id. Hashing runs off the async
/// threads. An unknown user costs the same as a wrong password.
pub async fn verify_login(
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<Option<i64>, AppError> {
    let found = staff::staff_by_username(&state.db, username.trim()).await?;
    let (id, hash) = match found {
        Some(s) => (Some(s.id), s.password_hash),
        None => (None, DUMMY_HASH.to_string()),
    };
    let password = password.to_string();
    // A login storm (the 2022 outages began as one) queues here for a while rather than
    // taking every core from the patient path; past the wait it is told when to retry.
    let wait = std::time::Duration::from_secs(state.config.http.login_queue_secs);
    let _permit = match tokio::time::timeout(wait, state.logins.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        _ => {
            tracing::warn!("login queue full: asked to retry");
            return Err(AppError::Busy(
                state.config.http.login_queue_secs.clamp(1, 30),
            ));
        }
    };
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await?;
    Ok(if ok { id } else { None })
}

const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0W+LqTLLz8A2hXUTVaYkYd8S1ECu1dDRm0b+iYxTK6w";

/// Starts a session: returns the cookie jar with the session cookie and the CSRF token.
pub async fn start_session(
    state: &AppState,
    jar: CookieJar,
    staff_id: i64,
) -> Result<(CookieJar, String), AppError> {
    let token = random_token();
    let csrf = random_token();
    sessions::create_session(
        &state.db,
        &token,
        staff_id,
        &csrf,
        Duration::hours(SESSION_TTL_HOURS),
    )
    .await?;
    let cookie = Cookie::build((SESSION_COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.secure_cookies)
        .path("/")
        .build();
    Ok((jar.add(cookie), csrf))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    who: CurrentStaff,
    jar: CookieJar,
    Form(f): Form<CsrfForm>,
) -> Result<Response, super::error::HtmlError> {
    who.check_csrf(&f.csrf)?;
    if let Some(c) = jar.get(SESSION_COOKIE) {
        sessions::delete_session(&state.db, c.value()).await?;
    }
    Ok((
        jar.remove(Cookie::build(SESSION_COOKIE).path("/")),
        Redirect::to("/login"),
    )
        .into_response())
}

async fn set_lang(
    Path(code): Path<String>,
    jar: CookieJar,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let code = if code == "en" { "en" } else { "ja" };
    let back = headers
        .get("referer")
        .and_then(|v| v.to_str().ok())
        .and_then(|r| {
            r.find("://")
                .and_then(|i| r[i + 3..].find('/').map(|j| r[i + 3 + j..].to_string()))
        })
        .filter(|p| super::same_origin_path(p).is_some())
        .unwrap_or_else(|| "/".into());
    let cookie = Cookie::build(("lang", code))
        .path("/")
        .same_site(SameSite::Lax)
        .build();
    (jar.add(cookie), Redirect::to(&back))
}

/// Ends every session of the current user (lost phone, shared computer).
async fn logout_all(
    State(state): State<AppState>,
    who: CurrentStaff,
    jar: CookieJar,
    Form(f): Form<CsrfForm>,
) -> Result<Response, super::error::HtmlError> {
    who.check_csrf(&f.csrf)?;
    let n = sessions::delete_sessions_of(&state.db, who.id).await?;
    tracing::info!(staff_id = who.id, sessions = n, "logged out everywhere");
    Ok((
        jar.remove(Cookie::build(SESSION_COOKIE).path("/")),
        Redirect::to("/login"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session the database could not read is told to retry — a page in both languages
    /// or the API's JSON error, 503 with `Retry-After` — not sent to the login form.
    #[tokio::test]
    async fn a_session_that_cannot_be_read_is_told_to_retry_not_to_log_in() {
        let page = AuthRejection {
            api: false,
            busy: Some(2),
        }
        .into_response();
        assert_eq!(page.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(page.headers()["retry-after"], "2");
        let body = axum::body::to_bytes(page.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("混み合って") && body.contains("system is busy"),
            "{body}"
        );
        let api = AuthRejection {
            api: true,
            busy: Some(2),
        }
        .into_response();
        assert_eq!(api.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(api.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "busy");
        // Not logged in stays a redirect to the form (pages) and 401 (API).
        let r = AuthRejection {
            api: false,
            busy: None,
        }
        .into_response();
        assert_eq!(r.headers()["location"], "/login");
        let r = AuthRejection {
            api: true,
            busy: None,
        }
        .into_response();
        assert_eq!(r.status(), axum::http::StatusCode::UNAUTHORIZED);
    }
}
