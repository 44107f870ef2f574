//! `GET /healthz`: 200 when the database answers (`"status": "degraded"` with the open
//! operator alarms), 503 when it does not.
use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use mimamori_core::store::alarms;
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
        Ok(Ok(())) => {
            // Operator alarms (a provider refusing our credential): still serving, so 200,
            // but "degraded" with what is wrong, for the operator and monitoring.
            let alarms = alarms::open(&s.db).await.unwrap_or_default();
            let status = if alarms.is_empty() { "ok" } else { "degraded" };
            let list: Vec<_> = alarms
                .iter()
                .map(|a| json!({ "provider": a.provider, "code": a.code, "detail": a.detail, "since": a.raised_at, "occurrences": a.occurrences }))
                .collect();
            (
                StatusCode::OK,
                Json(json!({
                    "status": status,
                    "database": { "backend": s.db.backend(), "reachable": true },
                    "operator_alarms": list,
                })),
            )
        }
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
