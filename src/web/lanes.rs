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

/// The longest a console request defers to patient requests in flight before it goes on.
const PATIENTS_FIRST: Duration = Duration::from_millis(25);

/// A patient-lane request in flight (see [`ConsoleGate::admit`]).
struct Patient<'a>(&'a ConsoleGate);

impl<'a> Patient<'a> {
    fn enter(g: &'a ConsoleGate) -> Self {
        g.patients.fetch_add(1, Ordering::AcqRel);
        Patient(g)
    }
}

impl Drop for Patient<'_> {
    fn drop(&mut self) {
        if self.0.patients.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.patients_done.notify_waiters();
        }
    }
}

/// Places held back from the console: free ones taken, and a debt of ones still in use,
/// taken as they come back.
#[derive(Default)]
struct Held {
    permits: Vec<tokio::sync::OwnedSemaphorePermit>,
    debt: usize,
}

/// A console request's place; when the limit was cut while it ran, the place is kept back
/// instead of being handed to the next request.
pub struct Place<'a> {
    gate: &'a ConsoleGate,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            let mut held = self.gate.held.lock().unwrap_or_else(|e| e.into_inner());
            if held.debt > 0 {
                held.debt -= 1;
                held.permits.push(p);
            }
        }
    }
}

/// How often the console's limit may be cut (halved at most once per interval).
const STEP: Duration = Duration::from_millis(100);

/// How often it may grow back (one place per interval): slowly, so that a console which
/// has just been cut does not take the CPU back before patients are served again.
const GROW: Duration = Duration::from_millis(500);

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
    /// Patient-lane requests in flight; while there are any, the console starts nothing new
    /// (for at most [`PATIENTS_FIRST`]).
    patients: AtomicUsize,
    patients_done: tokio::sync::Notify,
    /// When shedding was last logged (seconds since `epoch`): at most once per 10 s.
    logged_at: AtomicU64,
    epoch: std::time::Instant,
    /// The adaptive limit: places held back from the console (`max - held` may run), the
    /// fewest it may keep, and when it was last cut (µs since `epoch`).
    held: std::sync::Mutex<Held>,
    max: usize,
    min: usize,
    changed_at: AtomicU64,
    /// When a place was last given back (µs since `epoch`).
    grown_at: AtomicU64,
    /// Patients' usual request time (µs): follows fast answers quickly, slow ones slowly.
    baseline_us: AtomicU64,
}

impl ConsoleGate {
    /// At most `concurrency` console requests run (0 = 16 per core); fewer — down to one per
    /// core — while patients' requests take longer than usual: the limit halves when a
    /// patient request takes more than 1.5 times its usual time (+1 ms) and grows by one per
    /// 500 ms while none does (the surge benchmark: a fixed two per core let console work take the
    /// CPU patients need, answers p99 4.5× idle at 10× overload; one per core 1.9×, but
    /// then a page that waits on its audit commit ran at a third of its speed).
    pub fn new(concurrency: usize, max_waiting: usize, wait: Duration) -> ConsoleGate {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let concurrency = match concurrency {
            0 => 16 * cores,
            n => n,
        };
        ConsoleGate {
            held: std::sync::Mutex::new(Held::default()),
            max: concurrency,
            min: cores.min(concurrency),
            changed_at: AtomicU64::new(0),
            grown_at: AtomicU64::new(0),
            baseline_us: AtomicU64::new(0),
            running: Arc::new(Semaphore::new(concurrency)),
            waiting: AtomicUsize::new(0),
            max_waiting,
            wait,
            shed: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            patients: AtomicUsize::new(0),
            patients_done: tokio::sync::Notify::new(),
            logged_at: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
        }
    }

    /// The console's current limit.
    pub fn limit(&self) -> usize {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        self.max - held.permits.len() - held.debt
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    /// A patient request took `d`: learn the usual time; halve the console's limit when it
    /// took more than 1.5 times that (plus 1 ms of slack).
    fn patient_took(&self, d: Duration) {
        let d = d.as_micros() as u64;
        let base = self.baseline_us.load(Ordering::Relaxed);
        let next = match base {
            0 => d,
            b if d < b => (3 * b + d) / 4,
            b => b + (d - b) / 64,
        };
        self.baseline_us.store(next, Ordering::Relaxed);
        if base == 0 || d <= base + base / 2 + 1_000 {
            return;
        }
        let now = self.now_us();
        let last = self.changed_at.load(Ordering::Relaxed);
        if (last != 0 && now < last + STEP.as_micros() as u64)
            || self
                .changed_at
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let limit = self.max - held.permits.len() - held.debt;
        let target = (limit / 2).max(self.min);
        // Free places are held back at once; places in use when their request ends.
        for _ in target..limit {
            match self.running.clone().try_acquire_owned() {
                Ok(p) => held.permits.push(p),
                Err(_) => held.debt += 1,
            }
        }
    }

    /// One more place for the console, one per step, when no patient was slow for a step.
    fn grow(&self) {
        let step = GROW.as_micros() as u64;
        let now = self.now_us();
        let (cut, grown) = (
            self.changed_at.load(Ordering::Relaxed),
            self.grown_at.load(Ordering::Relaxed),
        );
        let quiet = cut == 0 || now >= cut + step;
        if quiet
            && (grown == 0 || now >= grown + step)
            && self
                .grown_at
                .compare_exchange(grown, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            if held.debt > 0 {
                held.debt -= 1;
            } else {
                drop(held.permits.pop());
            }
        }
    }

    /// A permit to run, or `None`: the waiting room is full or the wait ran out.
    pub async fn admit(&self) -> Option<Place<'_>> {
        self.grow();
        // Patients first: while an answer or a provider report is being handled, new console
        // work waits for it (briefly: a patient request takes milliseconds).
        let done = self.patients_done.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        if self.patients.load(Ordering::Acquire) > 0 {
            let _ = tokio::time::timeout(PATIENTS_FIRST, done).await;
        }
        if let Ok(p) = self.running.clone().try_acquire_owned() {
            self.admitted.fetch_add(1, Ordering::Relaxed);
            return Some(Place {
                gate: self,
                permit: Some(p),
            });
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
                Some(Place {
                    gate: self,
                    permit: Some(p),
                })
            }
            _ => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// A warning when shedding starts and every 10 s while it lasts, with the running total.
    fn log_shed(&self) {
        let now = self.epoch.elapsed().as_secs() + 10;
        let last = self.logged_at.load(Ordering::Relaxed);
        if now >= last + 10
            && self
                .logged_at
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                shed_total = self.shed.load(Ordering::Relaxed),
                "console busy: requests are being told to retry (503 with Retry-After)"
            );
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
    if patient_lane(path) {
        let gate = &state.console_gate;
        let patient = Patient::enter(gate);
        let t = std::time::Instant::now();
        let res = next.run(req).await;
        gate.patient_took(t.elapsed());
        drop(patient);
        return res;
    }
    if login_lane(path) {
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
            let gate = &state.console_gate;
            gate.log_shed();
            if api {
                AppError::Busy(gate.retry_after()).into_response()
            } else {
                busy_page(gate.retry_after())
            }
        }
    }
}

/// The patients' door (`http.patient_addr`) serves the patient lane only: anything else is
/// not found there, so the console is not reachable through the patients' address.
pub async fn patients_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if patient_lane(req.uri().path()) {
        next.run(req).await
    } else {
        crate::web::patient::not_at_the_door()
    }
}

/// The console's "busy, retry" page, rendered once per distinct wait (it is what thousands of
/// shed requests a second get).
fn busy_page(secs: u64) -> Response {
    use std::sync::OnceLock;
    static PAGE: OnceLock<(u64, axum::body::Bytes)> = OnceLock::new();
    let (for_secs, page) = PAGE.get_or_init(|| {
        let r = HtmlError(AppError::Busy(secs)).into_response();
        let body = futures::executor::block_on(axum::body::to_bytes(r.into_body(), 1 << 20))
            .unwrap_or_default();
        (secs, body)
    });
    if *for_secs != secs {
        return HtmlError(AppError::Busy(secs)).into_response();
    }
    let mut r = Response::new(axum::body::Body::from(page.clone()));
    *r.status_mut() = axum::http::StatusCode::SERVICE_UNAVAILABLE;
    let h = r.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(axum::http::header::RETRY_AFTER, secs.into());
    r
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

    #[tokio::test]
    async fn slow_patients_halve_the_console_and_quiet_lets_it_grow_back() {
        let g = ConsoleGate::new(16, 4, Duration::from_millis(50));
        assert_eq!(g.limit(), 16);
        // Patients answered in about 4 ms: that is their usual time.
        for _ in 0..20 {
            g.patient_took(Duration::from_millis(4));
        }
        assert_eq!(g.limit(), 16, "usual times change nothing");
        // One takes 30 ms: the console's places are halved…
        g.patient_took(Duration::from_millis(30));
        assert_eq!(g.limit(), 8);
        // …at most once per step.
        g.patient_took(Duration::from_millis(30));
        assert_eq!(g.limit(), 8);
        tokio::time::sleep(STEP + Duration::from_millis(10)).await;
        g.patient_took(Duration::from_millis(30));
        assert_eq!(g.limit(), 4);
        // A cut while places are in use holds them back as their requests end.
        let busy: Vec<_> = futures::future::join_all((0..4).map(|_| g.admit())).await;
        assert!(busy.iter().all(Option::is_some));
        tokio::time::sleep(STEP + Duration::from_millis(10)).await;
        g.patient_took(Duration::from_millis(30));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert_eq!(g.limit(), 2.max(cores.min(16)));
        drop(busy);
        assert!(
            g.running.available_permits() <= g.limit(),
            "returned places are kept back"
        );
        // Never below one per core.
        for _ in 0..6 {
            tokio::time::sleep(STEP + Duration::from_millis(5)).await;
            g.patient_took(Duration::from_millis(30));
        }
        assert_eq!(g.limit(), cores.min(16));
        // Quiet: one place back per GROW interval as console requests arrive.
        tokio::time::sleep(GROW + Duration::from_millis(10)).await;
        drop(g.admit().await);
        assert_eq!(g.limit(), cores.min(16) + 1);
    }

    #[tokio::test]
    async fn the_console_defers_to_a_patient_in_flight_but_not_for_ever() {
        let g = ConsoleGate::new(4, 4, Duration::from_secs(1));
        // No patient: admitted at once.
        let t = std::time::Instant::now();
        drop(g.admit().await);
        assert!(t.elapsed() < Duration::from_millis(10));
        // A patient in flight: the console waits until it is done.
        let (admitted, released) = {
            let p = Patient::enter(&g);
            let admit = g.admit();
            tokio::pin!(admit);
            let early = tokio::time::timeout(Duration::from_millis(5), admit.as_mut()).await;
            assert!(early.is_err(), "waits while the patient is served");
            drop(p);
            let t = std::time::Instant::now();
            (admit.await.is_some(), t.elapsed())
        };
        assert!(admitted);
        assert!(
            released < Duration::from_millis(10),
            "goes on when the patient is done"
        );
        // A patient that takes long does not hold the console back beyond the bound.
        let _p = Patient::enter(&g);
        let t = std::time::Instant::now();
        assert!(g.admit().await.is_some());
        assert!(t.elapsed() >= PATIENTS_FIRST && t.elapsed() < PATIENTS_FIRST * 4);
    }
}
