//! The web layer's error: a status, a message safe to show, and for validation errors the
//! fields. 5xx bodies say nothing internal; the detail goes to the log.
use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use mimamori_core::{Error as CoreError, FieldError};
use serde_json::json;

#[derive(Debug)]
pub enum AppError {
    Core(CoreError),
    Unauthorized,
    BadRequest(String),
    /// A body the framework refused before the handler (too large, not JSON): its status.
    Rejected(StatusCode, String),
    /// Too many at once: try again after this many seconds (503 with `Retry-After`).
    Busy(u64),
    Internal(anyhow::Error),
}

/// Seconds a request the database could not serve in time (no connection within the pool's
/// wait, or its session could not be read) is told to wait.
pub(crate) const NO_CONNECTION_RETRY_SECS: u64 = 5;

impl From<CoreError> for AppError {
    fn from(e: CoreError) -> Self {
        match e {
            // Every connection busy for the pool's whole wait (a storm): told to retry, as
            // the console gate tells the requests it sheds — not an internal error.
            CoreError::Db(sqlx::Error::PoolTimedOut) => {
                tracing::warn!("no database connection in time: told to retry");
                AppError::Busy(NO_CONNECTION_RETRY_SECS)
            }
            e => AppError::Core(e),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::Internal(e)
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        AppError::Internal(e.into())
    }
}

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            AppError::Core(CoreError::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Core(CoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            AppError::Core(CoreError::Conflict { .. }) => StatusCode::CONFLICT,
            AppError::Core(CoreError::Forbidden(_)) => StatusCode::FORBIDDEN,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Rejected(s, _) => *s,
            AppError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AppError::Core(CoreError::Invalid(_)) => "invalid",
            AppError::Core(CoreError::NotFound(_)) => "not_found",
            AppError::Core(CoreError::Conflict { .. }) => "conflict",
            AppError::Core(CoreError::Forbidden(_)) => "forbidden",
            AppError::Unauthorized => "unauthorized",
            AppError::BadRequest(_) => "bad_request",
            AppError::Rejected(s, _) if *s == StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            AppError::Rejected(s, _) if *s == StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "unsupported_media_type"
            }
            AppError::Rejected(..) => "bad_request",
            AppError::Busy(_) => "busy",
            _ => "internal",
        }
    }

    /// A message that is safe to show the client.
    /// The catalogue key that says in words what a 403, 404, 409 or 422 means.
    fn explained(&self) -> Option<&'static str> {
        match self {
            AppError::Core(CoreError::Invalid(_)) => Some("error-invalid"),
            AppError::Core(CoreError::NotFound(_)) => Some("error-not-found"),
            AppError::Core(CoreError::Conflict { .. }) => Some("error-conflict"),
            AppError::Core(CoreError::Forbidden(_)) => Some("error-forbidden"),
            _ => None,
        }
    }

    pub fn public_message(&self) -> String {
        match self {
            AppError::Core(
                e @ (CoreError::Invalid(_)
                | CoreError::NotFound(_)
                | CoreError::Conflict { .. }
                | CoreError::Forbidden(_)),
            ) => e.to_string(),
            AppError::Unauthorized => {
                "log in first: POST /api/v1/session or the console login".into()
            }
            AppError::BadRequest(m) | AppError::Rejected(_, m) => m.clone(),
            AppError::Busy(secs) => format!(
                "{} / {}",
                crate::web::i18n::tr_args(
                    mimamori_core::domain::Lang::Ja,
                    "error-busy",
                    &[("secs", (*secs as i64).into())]
                ),
                crate::web::i18n::tr_args(
                    mimamori_core::domain::Lang::En,
                    "error-busy",
                    &[("secs", (*secs as i64).into())]
                )
            ),
            _ => {
                "internal error; the request id in the x-request-id header identifies it in the log"
                    .into()
            }
        }
    }

    pub fn fields(&self) -> &[FieldError] {
        match self {
            AppError::Core(CoreError::Invalid(f)) => f,
            _ => &[],
        }
    }

    /// `Retry-After` on a 503 for too many at once.
    fn retry_after(&self, r: &mut Response) {
        if let AppError::Busy(secs) = self
            && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
        {
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
    }

    fn log(&self) {
        if self.status_code().is_server_error() {
            match self {
                AppError::Core(e) => tracing::error!(error = ?e, "request failed"),
                AppError::Internal(e) => tracing::error!(error = ?e, "request failed"),
                _ => {}
            }
        }
    }
}

/// JSON rendering, used by the API.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let lang = crate::web::i18n::current();
        let fields: Vec<serde_json::Value> = self
            .fields()
            .iter()
            .map(
                |f| match f.key.as_deref().and_then(|k| k.strip_prefix("err-")) {
                    Some(rule) => {
                        json!({"field": f.field, "reason": f.message(lang), "rule": rule})
                    }
                    None => json!({"field": f.field, "reason": f.message(lang)}),
                },
            )
            .collect();
        let body = json!({
            "error": { "code": self.code(), "message": self.public_message(), "fields": fields }
        });
        let mut r = (self.status_code(), Json(body)).into_response();
        self.retry_after(&mut r);
        r
    }
}

/// HTML rendering, used by console and patient pages.
pub struct HtmlError(pub AppError);

impl<E: Into<AppError>> From<E> for HtmlError {
    fn from(e: E) -> Self {
        HtmlError(e.into())
    }
}

impl IntoResponse for HtmlError {
    fn into_response(self) -> Response {
        self.0.log();
        if matches!(self.0, AppError::Unauthorized) {
            return axum::response::Redirect::to("/login").into_response();
        }
        let status = self.0.status_code();
        let both = |k: &str| {
            use crate::web::i18n::tr;
            use mimamori_core::domain::Lang;
            format!("{} / {}", tr(Lang::Ja, k), tr(Lang::En, k))
        };
        let page = crate::web::layout::bare(
            &both("error-title"),
            maud::html! {
                main class="narrow" {
                    // Both languages, as the page's text: not the English HTTP reason
                    // ("503 Service Unavailable"); the code stays for a support call.
                    h1 { (both("error-title")) " (" (status.as_u16()) ")" }
                    @let lang = crate::web::i18n::current();
                    @let fields = self.0.fields();
                    // What happened in both languages first; then the fields, each in the
                    // reader's language, or else the detail (English, for a support call).
                    @if let Some(key) = self.0.explained() {
                        p { (both(key)) }
                        @if fields.is_empty() {
                            p class="muted" { (self.0.public_message()) }
                        }
                    } @else {
                        p { (self.0.public_message()) }
                    }
                    @if !fields.is_empty() {
                        ul { @for f in fields { li { strong { (f.field) } ": " (f.message(lang)) } } }
                        p { (both("error-go-back")) }
                    }
                    p { a href="/" { (both("error-to-console")) } }
                }
            },
        );
        let mut r = (status, page).into_response();
        self.0.retry_after(&mut r);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request that waited the pool's whole wait for a connection is told to retry (503
    /// with `Retry-After`, code `busy`), not answered 500; other database errors stay 500.
    #[test]
    fn no_connection_in_time_is_busy_not_internal() {
        let e = AppError::from(CoreError::Db(sqlx::Error::PoolTimedOut));
        assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code(), "busy");
        let r = e.into_response();
        assert_eq!(r.headers()["retry-after"], "5");
        let e = AppError::from(CoreError::Db(sqlx::Error::RowNotFound));
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
