//! `GET /healthz`: 200 when the database answers, 503 when it does not.
use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde_json::json;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/healthz/live", get(live))
}

async fn healthz(State(s): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let probe = tokio::time::timeout(std::time::Duration::from_secs(3), s.db.ping()).await;
    match probe {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(
                json!({ "status": "ok", "database": { "backend": s.db.backend(), "reachable": true } }),
            ),
        ),
        Ok(Err(e)) => {
            tracing::error!(error = ?e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({ "status": "unavailable", "database": { "backend": s.db.backend(), "reachable": false } }),
                ),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "status": "unavailable", "database": { "backend": s.db.backend(), "reachable": false, "timeout": true } }),
            ),
        ),
    }
}

/// Liveness: the process answers HTTP (no database involved). Also the "trivial handler"
/// the benchmarks compare pages against.
async fn live() -> &'static str {
    "ok"
}
