//! Input that no handler can store, refused at the door with a clear field error: a NUL
//! character (PostgreSQL cannot keep one in text, SQLite would keep it and break exports) in
//! any query parameter, form field or JSON string, and bodies over the request limit (413,
//! not an opaque 400 or 403 from whichever extractor met them first). Bodies are read once
//! here, up to the limit, and handed on unchanged.
use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use mimamori_core::Error;

use super::error::{AppError, HtmlError};

/// The largest request body accepted (forms, JSON, provider webhooks).
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

const NUL_REASON: &str = "err-contains-a-nul-character";

fn refuse(path: &str, e: AppError) -> Response {
    if path.starts_with("/api/") {
        e.into_response()
    } else {
        HtmlError(e).into_response()
    }
}

/// The first form or query field whose name or value holds a NUL character.
fn nul_in_pairs(encoded: &[u8]) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(encoded).ok()?;
    pairs
        .into_iter()
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        .map(|(k, _)| k.replace('\0', ""))
}

/// The path of the first JSON string (or key) holding a NUL character: `name`,
/// `contacts[2].phone`.
fn nul_in_json(v: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) if s.contains('\0') => Some(if at.is_empty() {
            "body".into()
        } else {
            at.into()
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_in_json(x, &format!("{at}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(k, x)| {
            let name = k.replace('\0', "");
            let here = if at.is_empty() {
                name
            } else {
                format!("{at}.{name}")
            };
            if k.contains('\0') {
                Some(here)
            } else {
                nul_in_json(x, &here)
            }
        }),
        _ => None,
    }
}

pub async fn screen(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if let Some(field) = req.uri().query().and_then(|q| nul_in_pairs(q.as_bytes())) {
        return refuse(&path, Error::invalid(field, NUL_REASON).into());
    }
    if req.uri().path().contains('\0') || req.uri().path().contains("%00") {
        return refuse(
            &path,
            AppError::BadRequest("the address contains a NUL character".into()),
        );
    }
    let kind = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let form = kind.starts_with("application/x-www-form-urlencoded");
    let json = kind.starts_with("application/json");
    if !form && !json {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return too_large(&path),
    };
    let field = if form {
        nul_in_pairs(&bytes)
    } else {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| nul_in_json(&v, ""))
    };
    if let Some(field) = field {
        return refuse(&path, Error::invalid(field, NUL_REASON).into());
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn too_large(path: &str) -> Response {
    let message = format!(
        "the request is larger than {} MB; send less at once",
        BODY_LIMIT / 1024 / 1024
    );
    if path.starts_with("/api/") {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(serde_json::json!({
                "error": { "code": "too_large", "message": message, "fields": [] }
            })),
        )
            .into_response()
    } else {
        use super::i18n::{tr, tr_args};
        use mimamori_core::domain::Lang;
        let mb = [("mb", (BODY_LIMIT / 1024 / 1024) as i64)].map(|(k, v)| (k, v.into()));
        let page = super::layout::bare(
            &format!(
                "{} / {}",
                tr(Lang::Ja, "error-title"),
                tr(Lang::En, "error-title")
            ),
            maud::html! {
                main class="narrow" {
                    h1 { (tr(Lang::Ja, "error-too-large")) " / " (tr(Lang::En, "error-too-large")) }
                    p lang="ja" { (tr_args(Lang::Ja, "error-too-large-text", &mb)) }
                    p lang="en" { (tr_args(Lang::En, "error-too-large-text", &mb)) }
                }
            },
        );
        (StatusCode::PAYLOAD_TOO_LARGE, page).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_field_with_the_nul() {
        assert_eq!(nul_in_pairs(b"a=1&name=x%00y").as_deref(), Some("name"));
        assert_eq!(nul_in_pairs(b"a=1&name=xy"), None);
        let v =
            serde_json::json!({"name": "ok", "contacts": [{"phone": "1"}, {"phone": "0\u{0}"}]});
        assert_eq!(nul_in_json(&v, "").as_deref(), Some("contacts[1].phone"));
        assert_eq!(nul_in_json(&serde_json::json!({"a": [1, "b"]}), ""), None);
    }
}
