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
        .route("/metrics", get(metrics))
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

/// `GET /metrics` with `Authorization: Bearer {http.metrics_token}`: Prometheus text format,
/// counts only (no person is identifiable), written by hand rather than with a metrics
/// crate: the alarms, escalations and staff alerts are read from the database at scrape
/// time (any process answers the same); the console's admissions and the answer batches'
/// paths are this process's own counters since it started.
async fn metrics(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use secrecy::ExposeSecret;
    let token = s.config.http.metrics_token.expose_secret();
    if token.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given != Some(token) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match mimamori_core::store::alarms::figures(&s.db).await {
        Ok(f) => {
            let mut out = String::new();
            out.push_str("# HELP mimamori_operator_alarm Open operator alarms (1 = a provider refuses our set-up).\n# TYPE mimamori_operator_alarm gauge\n");
            for p in ["twilio", "smtp"] {
                let open = f.alarms.iter().any(|a| a == p);
                out.push_str(&format!(
                    "mimamori_operator_alarm{{provider=\"{p}\"}} {}\n",
                    u8::from(open)
                ));
            }
            out.push_str("# HELP mimamori_open_escalations Escalations not yet resolved.\n# TYPE mimamori_open_escalations gauge\n");
            for (priority, n) in &f.open_escalations {
                out.push_str(&format!(
                    "mimamori_open_escalations{{priority=\"{priority}\"}} {n}\n"
                ));
            }
            out.push_str("# HELP mimamori_pending_staff_alerts Staff alerts not yet sent.\n# TYPE mimamori_pending_staff_alerts gauge\n");
            out.push_str(&format!(
                "mimamori_pending_staff_alerts {}\n",
                f.pending_alerts
            ));
            let gate = &s.console_gate;
            out.push_str(&format!(
                "# HELP mimamori_console_requests_total Console and API requests by admission (shed = told to retry with 503).\n# TYPE mimamori_console_requests_total counter\nmimamori_console_requests_total{{outcome=\"admitted\"}} {}\nmimamori_console_requests_total{{outcome=\"shed\"}} {}\n",
                gate.admitted.load(std::sync::atomic::Ordering::Relaxed),
                gate.shed.load(std::sync::atomic::Ordering::Relaxed)
            ));
            out.push_str(&format!(
                "# HELP mimamori_console_limit Console requests that may run at once now (cut while patients' answers are slower than usual).\n# TYPE mimamori_console_limit gauge\nmimamori_console_limit {}\n# HELP mimamori_console_pace_seconds Least time between console request starts now (0 unless patients are slow while the console is at its floor).\n# TYPE mimamori_console_pace_seconds gauge\nmimamori_console_pace_seconds {}\n",
                gate.limit(),
                gate.pace().as_secs_f64()
            ));
            let b = &mimamori_core::store::observations::BATCH_PATHS;
            out.push_str("# HELP mimamori_answer_batches_total Answer batches this process wrote on PostgreSQL, by path: one_statement (a read, then one statement), or through a transaction because a rule fired, a rule state was rebuilt, or the read had changed before the write.\n# TYPE mimamori_answer_batches_total counter\n");
            for (path, n) in [
                ("one_statement", &b.one_statement),
                ("rule_fired", &b.rule_fired),
                ("rebuilt", &b.rebuilt),
                ("read_changed", &b.read_changed),
            ] {
                out.push_str(&format!(
                    "mimamori_answer_batches_total{{path=\"{path}\"}} {}\n",
                    n.load(std::sync::atomic::Ordering::Relaxed)
                ));
            }
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4",
                )],
                out,
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics: database");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
