//! Lanes: under overload the patient path goes first (#18).
//!
//! - The **patient lane** — the link form (`/c/…`), the provider's webhooks (`/hooks/…`:
//!   voice steps, SMS, delivery reports), the health checks and `/metrics` — is never shed here. It has
//!   its own database pool (`database.patient_connections`), its own answer writer and its
//!   own audit writer (see [`crate::web::AppState::patient_lane`]), so console queries cannot
//!   hold every connection it needs.
//! - **Logins** have their own queue (`http.login_concurrency`, see `auth::verify_login`).
//! - Everything else — console pages, the JSON API, exports — passes the [`ConsoleGate`]: at
//!   most `http.console_concurrency` requests run at once; up to `http.console_queue` more
//!   wait, each for at most `http.console_queue_ms`; the rest are answered at once with 503
//!   and `Retry-After` (a bilingual page, or the API's JSON `busy`). A console that is told
//!   to retry costs microseconds; one that queues without bound holds memory and a
//!   connection per request and slows the patients' answers behind it (the 2022 outages).
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::web::{
    AppState,
    error::{AppError, HtmlError},
};

/// Paths served whatever the console's load: patients, the provider, health checks.
pub fn patient_lane(path: &str) -> bool {
    path.starts_with("/c/")
        || path.starts_with("/hooks/")
        || path.starts_with("/healthz")
        || path == "/metrics"
        || path.starts_with("/voice-prompts/")
}

/// Logins queue behind their own limit instead (a login storm waits, it is not shed).
fn login_lane(path: &str) -> bool {
    matches!(
        path,
        "/login" | "/login/mfa" | "/login/mfa/voice" | "/api/v1/session" | "/api/v1/session/mfa"
    )
}

/// The console's admission: running requests, a bounded waiting room, counters.
pub struct ConsoleGate {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    wait: Duration,
    /// Requests answered 503 since start (for `/metrics` and the surge benchmark).
    pub shed: AtomicU64,
    /// Requests admitted since start.
    pub admitted: AtomicU64,
}

impl ConsoleGate {
    /// `concurrency` 0 = two per core.
    pub fn new(concurrency: usize, max_waiting: usize, wait: Duration) -> ConsoleGate {
        let concurrency = match concurrency {
            0 => 2 * std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        ConsoleGate {
            running: Arc::new(Semaphore::new(concurrency)),
            waiting: AtomicUsize::new(0),
            max_waiting,
            wait,
            shed: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
        }
    }

    /// A permit to run, or `None`: the waiting room is full or the wait ran out.
    pub async fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(p) = self.running.clone().try_acquire_owned() {
            self.admitted.fetch_add(1, Ordering::Relaxed);
            return Some(p);
        }
        // Count ourselves in; leave at once when the room is already full.
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            self.shed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let got = tokio::time::timeout(self.wait, self.running.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match got {
            Ok(Ok(p)) => {
                self.admitted.fetch_add(1, Ordering::Relaxed);
                Some(p)
            }
            _ => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Seconds a shed client is told to wait: the queue's patience, at least one.
    fn retry_after(&self) -> u64 {
        self.wait.as_secs().clamp(1, 30)
    }
}

/// The middleware: patient and login lanes pass; the console waits for a permit or is told
/// to retry.
pub async fn gate(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    if patient_lane(path) || login_lane(path) {
        return next.run(req).await;
    }
    let api = path.starts_with("/api/");
    match state.console_gate.admit().await {
        Some(permit) => {
            let res = next.run(req).await;
            drop(permit);
            res
        }
        None => {
            tracing::warn!("console busy: request shed with Retry-After");
            let e = AppError::Busy(state.console_gate.retry_after());
            if api {
                e.into_response()
            } else {
                HtmlError(e).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_by_path() {
        assert!(patient_lane("/c/abc.def"));
        assert!(patient_lane("/hooks/twilio/voice/step"));
        assert!(patient_lane("/healthz/live"));
        assert!(!patient_lane("/persons"));
        assert!(!patient_lane("/api/v1/persons"));
        assert!(!patient_lane("/cohort"));
        assert!(login_lane("/api/v1/session"));
        assert!(!login_lane("/api/v1/sessions"));
    }

    #[tokio::test]
    async fn a_full_room_sheds_and_a_freed_permit_admits() {
        let g = Arc::new(ConsoleGate::new(1, 1, Duration::from_millis(200)));
        let first = g.admit().await.expect("a free permit admits");
        // One may wait; a third is shed at once.
        let waiter = tokio::spawn({
            let g = g.clone();
            async move { g.admit().await.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let t = std::time::Instant::now();
        assert!(g.admit().await.is_none(), "the waiting room holds one");
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "shed without waiting"
        );
        drop(first);
        assert!(waiter.await.unwrap(), "the waiter gets the freed permit");
        assert_eq!(g.shed.load(Ordering::Relaxed), 1);
        assert_eq!(g.admitted.load(Ordering::Relaxed), 2);
        // Nobody frees the permit the waiter got (it was dropped): a lone waiter now
        // gets it; with the permit held, a waiter times out and is shed.
        let held = g.admit().await.expect("free again");
        assert!(
            g.admit().await.is_none(),
            "times out while the permit is held"
        );
        drop(held);
        assert_eq!(g.shed.load(Ordering::Relaxed), 2);
    }
}
