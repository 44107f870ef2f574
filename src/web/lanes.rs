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

/// One count in a gauge while it lives (console requests waiting or deferring): counted out
/// when dropped, also when the request that holds it is dropped mid-wait.
struct Counted<'a> {
    gauge: &'a AtomicUsize,
    /// The count before this one came in.
    before: usize,
}

impl<'a> Counted<'a> {
    fn enter(gauge: &'a AtomicUsize) -> Self {
        let before = gauge.fetch_add(1, Ordering::AcqRel);
        Counted { gauge, before }
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.gauge.fetch_sub(1, Ordering::AcqRel);
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

/// The shortest gap the console's starts are paced at once its places are at their floor and
/// patients are still slow; gaps below it are dropped.
const PACE_MIN: Duration = Duration::from_millis(2);

/// The longest: at least 50 console requests a second still start, whatever the patients'
/// times (under a storm the gap stays near this: the patients' times on the server are too
/// noisy a signal to settle it lower — BENCHMARKS.md, "Surge: the console paced").
const PACE_MAX: Duration = Duration::from_millis(20);

/// How long without a slow patient before the gap halves (each patient in their usual time
/// also narrows it: this is for when no patient is answering).
const PACE_EASE: Duration = Duration::from_millis(500);

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
    /// Console requests deferring to patients (they count as console demand: under a storm
    /// the places may be free at the moment a patient's request ends because every new
    /// console request is waiting for it).
    deferring: AtomicUsize,
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
    /// The gap between console starts (µs, 0 = none) once the places are at their floor,
    /// and when the next console request may start (µs since `epoch`).
    pace_us: AtomicU64,
    next_start_us: AtomicU64,
    /// When the gap was last widened and last halved (µs since `epoch`).
    paced_at: AtomicU64,
    eased_at: AtomicU64,
}

impl ConsoleGate {
    /// At most `concurrency` console requests run (0 = 16 per core); fewer — down to one per
    /// core — while patients' requests take longer than usual: the limit halves when a
    /// patient request takes more than 1.5 times its usual time (+1 ms) and grows by one per
    /// 500 ms while none does (the surge benchmark: a fixed two per core let console work take the
    /// CPU patients need, answers p99 4.5× idle at 10× overload; one per core 1.9×, but
    /// then a page that waits on its audit commit ran at a third of its speed). At the floor,
    /// with the console pressing, a slow patient also spaces the console's starts apart
    /// ([`PACE_MIN`] doubling to [`PACE_MAX`]) and each patient in their usual time narrows
    /// the gap; it is gone before places come back.
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
            pace_us: AtomicU64::new(0),
            next_start_us: AtomicU64::new(0),
            paced_at: AtomicU64::new(0),
            eased_at: AtomicU64::new(0),
            running: Arc::new(Semaphore::new(concurrency)),
            waiting: AtomicUsize::new(0),
            max_waiting,
            wait,
            shed: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            patients: AtomicUsize::new(0),
            patients_done: tokio::sync::Notify::new(),
            deferring: AtomicUsize::new(0),
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
        // The usual time is learnt upwards only while the console leaves patients alone: under
        // a storm every answer is slower, and a usual time that followed them would stop
        // seeing the storm.
        let next = match base {
            0 => d,
            b if d < b => (3 * b + d) / 4,
            b if self.console_pressing() => b,
            b => b + (d - b) / 64,
        };
        self.baseline_us.store(next, Ordering::Relaxed);
        if base == 0 {
            return;
        }
        if d <= base + base / 2 + 1_000 {
            self.pace_less();
            return;
        }
        let now = self.now_us();
        self.pace_more(now);
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

    /// A patient took more than 1.5 times the usual time (+1 ms): when the console is at its floor
    /// with every place in use or requests waiting (or deferring), it is what keeps the cores busy, and its
    /// starts are spaced further apart (the gap doubling, at most once per [`STEP`]).
    fn pace_more(&self, now: u64) {
        let last = self.paced_at.load(Ordering::Relaxed);
        if (last != 0 && now < last + STEP.as_micros() as u64)
            || self.limit() > self.min
            || !self.console_pressing()
            || self
                .paced_at
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let pace = self.pace_us.load(Ordering::Relaxed);
        self.set_pace((pace * 2).max(PACE_MIN.as_micros() as u64));
    }

    /// Sets the gap (µs): at most [`PACE_MAX`]; below [`PACE_MIN`] it is none.
    fn set_pace(&self, us: u64) {
        let us = us.min(PACE_MAX.as_micros() as u64);
        let us = if us < PACE_MIN.as_micros() as u64 {
            0
        } else {
            us
        };
        self.pace_us.store(us, Ordering::Relaxed);
    }

    /// Whether the console wants more than it is given: every place in use, or requests
    /// waiting for one or deferring to patients.
    fn console_pressing(&self) -> bool {
        self.waiting.load(Ordering::Acquire) > 0
            || self.deferring.load(Ordering::Acquire) > 0
            || self.running.available_permits() == 0
    }

    /// A patient in their usual time (see [`ConsoleGate::patient_took`]): the gap narrows by
    /// a twentieth. Against doubling for a slow one, the gap settles where about one patient
    /// request in fifteen is slow (an idle machine has fewer: the gap falls to nothing).
    fn pace_less(&self) {
        let pace = self.pace_us.load(Ordering::Relaxed);
        if pace > 0 {
            self.set_pace(pace - pace.div_ceil(20));
        }
    }

    /// After a quiet spell, first the gap between starts halves (per [`PACE_EASE`]), then one
    /// more place comes back (per [`GROW`]).
    fn grow(&self) {
        let now = self.now_us();
        let cut = self.changed_at.load(Ordering::Relaxed);
        let pace = self.pace_us.load(Ordering::Relaxed);
        if pace > 0 {
            let ease = PACE_EASE.as_micros() as u64;
            let eased = self.eased_at.load(Ordering::Relaxed);
            let paced = self.paced_at.load(Ordering::Relaxed);
            if now >= paced + ease
                && (eased == 0 || now >= eased + ease)
                && self
                    .eased_at
                    .compare_exchange(eased, now, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                self.set_pace(pace / 2);
            }
            return;
        }
        let step = GROW.as_micros() as u64;
        let grown = self.grown_at.load(Ordering::Relaxed);
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

    /// The console's current gap between starts (zero unless patients are slow while its
    /// places are at their floor and all in use).
    pub fn pace(&self) -> Duration {
        Duration::from_micros(self.pace_us.load(Ordering::Relaxed))
    }

    /// Waits for this request's start under the pace, holding its place: while the console is
    /// paced, its starts are at least the gap apart.
    async fn paced(&self) {
        let pace = self.pace_us.load(Ordering::Relaxed);
        if pace == 0 {
            return;
        }
        let now = self.now_us();
        let mut next = self.next_start_us.load(Ordering::Relaxed);
        let slot = loop {
            let slot = next.max(now);
            match self.next_start_us.compare_exchange_weak(
                next,
                slot + pace,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break slot,
                Err(seen) => next = seen,
            }
        };
        if slot > now {
            tokio::time::sleep(Duration::from_micros(slot - now)).await;
        }
    }

    /// An admitted request's place, once its start is due under the pace (holding the
    /// place while it waits for it).
    async fn seat(&self, permit: tokio::sync::OwnedSemaphorePermit) -> Place<'_> {
        self.admitted.fetch_add(1, Ordering::Relaxed);
        let place = Place {
            gate: self,
            permit: Some(permit),
        };
        self.paced().await;
        place
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
            let _counted = Counted::enter(&self.deferring);
            let _ = tokio::time::timeout(PATIENTS_FIRST, done).await;
        }
        if let Ok(p) = self.running.clone().try_acquire_owned() {
            return Some(self.seat(p).await);
        }
        // Count ourselves in; leave at once when the room is already full. Counted out
        // however the wait ends — also when the request is dropped while it waits (its
        // client went away): a count left behind would fill the room for good.
        let waiting = Counted::enter(&self.waiting);
        if waiting.before >= self.max_waiting {
            drop(waiting);
            self.shed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let got = tokio::time::timeout(self.wait, self.running.clone().acquire_owned()).await;
        drop(waiting);
        match got {
            Ok(Ok(p)) => Some(self.seat(p).await),
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
    async fn at_its_floor_a_busy_console_is_paced_until_patients_are_quiet() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // The floor from the start: one place per core.
        let g = ConsoleGate::new(cores, 64, Duration::from_secs(2));
        for _ in 0..20 {
            g.patient_took(Duration::from_millis(4));
        }
        // A console with places free is not what slows patients: no pace.
        g.patient_took(Duration::from_millis(30));
        assert_eq!(g.pace(), Duration::ZERO);
        // Every place in use: each slow patient (one per step) doubles the gap, up to the most.
        let busy: Vec<_> = futures::future::join_all((0..cores).map(|_| g.admit())).await;
        assert!(busy.iter().all(Option::is_some));
        let mut expected = PACE_MIN;
        for _ in 0..8 {
            tokio::time::sleep(STEP + Duration::from_millis(5)).await;
            g.patient_took(Duration::from_millis(30));
            assert_eq!(g.pace(), expected);
            expected = (expected * 2).min(PACE_MAX);
        }
        assert_eq!(g.pace(), PACE_MAX);
        drop(busy);
        // Starts are spaced by the gap, even with places free.
        let t = std::time::Instant::now();
        for _ in 0..4 {
            drop(g.admit().await.expect("admitted"));
        }
        assert!(
            t.elapsed() >= PACE_MAX * 3,
            "four starts take three gaps at least: {:?}",
            t.elapsed()
        );
        // Quiet: the gap halves per interval, and only then do places come back.
        tokio::time::sleep(PACE_EASE + Duration::from_millis(10)).await;
        drop(g.admit().await);
        assert_eq!(g.pace(), PACE_MAX / 2);
        assert_eq!(g.limit(), cores);
        // Patients in their usual time narrow it a little each, to nothing.
        for _ in 0..10 {
            g.patient_took(Duration::from_millis(4));
        }
        let narrowed = g.pace();
        assert!(
            narrowed < PACE_MAX / 2 && narrowed > PACE_MAX / 4,
            "{narrowed:?}"
        );
        for _ in 0..250 {
            g.patient_took(Duration::from_millis(4));
        }
        assert_eq!(g.pace(), Duration::ZERO);
        assert_eq!(g.limit(), cores);
    }

    #[tokio::test]
    async fn a_request_dropped_while_it_waits_leaves_its_place_in_the_room() {
        // One place, a room of one: a request whose client goes away while it waits (its
        // future dropped) must not keep counting, or the room stays full for good.
        let g = ConsoleGate::new(1, 1, Duration::from_secs(5));
        let first = g.admit().await.expect("a free place");
        for _ in 0..3 {
            let waiter = g.admit();
            assert!(
                tokio::time::timeout(Duration::from_millis(20), waiter)
                    .await
                    .is_err(),
                "waits while the place is held"
            );
            assert_eq!(
                g.waiting.load(Ordering::Acquire),
                0,
                "counted out when dropped"
            );
        }
        // The same while deferring to a patient.
        let p = Patient::enter(&g);
        let deferring = g.admit();
        assert!(
            tokio::time::timeout(Duration::from_millis(5), deferring)
                .await
                .is_err()
        );
        assert_eq!(g.deferring.load(Ordering::Acquire), 0);
        drop(p);
        drop(first);
        assert!(g.admit().await.is_some(), "the room was not left full");
        assert_eq!(g.shed.load(Ordering::Relaxed), 0);
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
