//! HTTP: the console (`/`, `/persons`, `/outbox`), the patient pages behind signed links
//! (`/c/{token}`), the JSON API (`/api/v1`) and `/healthz`. One router per module, merged here.
pub mod api;
pub mod auth;
pub mod cache;
pub mod chart;
pub mod console;
pub mod error;
pub mod health;
pub mod hooks;
pub mod i18n;
pub mod input;
pub mod lanes;
pub mod layout;
pub mod login;
pub mod patient;
pub mod simulator;
pub mod voicecall;
pub mod who;

use std::{sync::Arc, time::Duration};

use axum::{Router, http::HeaderName};
use mimamori_core::{
    Db, config::Config, flows::Flows, provider::Channels, rules::Thresholds, token::LinkSigner,
    voice::Prompts,
};
use tower_http::{
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

/// What every request handler is given: one shared [`AppShared`], so cloning it for a
/// request (axum clones the state for each extractor and middleware) is one reference count,
/// not twenty fields' worth — with the link signer's key copied each time, the clones and
/// their drops were ~5 % of the server's CPU under answer ingest (`perf`, BENCHMARKS.md
/// "Answer ingest: one statement a batch"). Fields are read through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

impl std::ops::Deref for AppState {
    type Target = AppShared;
    fn deref(&self) -> &AppShared {
        &self.0
    }
}

impl From<AppShared> for AppState {
    fn from(shared: AppShared) -> AppState {
        AppState(Arc::new(shared))
    }
}

#[derive(Clone)]
pub struct AppShared {
    pub db: Db,
    pub config: Arc<Config>,
    pub signer: LinkSigner,
    pub flows: Arc<Flows>,
    pub prompts: Arc<Prompts>,
    pub rules: Arc<Thresholds>,
    /// The answer writer (group commit; see `mimamori_core::ingest`).
    pub ingest: mimamori_core::ingest::Ingest,
    /// The link pages' reads of a check-in, gathered (see `mimamori_core::link_reads`).
    pub reads: mimamori_core::link_reads::LinkReads,
    /// Observation-period rules (`flows/periods.toml`).
    pub periods: Arc<mimamori_core::periods::Periods>,
    /// Which cases get a full occurrence report (`flows/reporting.toml`).
    pub reporting: Arc<mimamori_core::stats::reporting::Reporting>,
    /// For one-time login codes sent by SMS or e-mail.
    pub channels: Channels,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
    /// Person pages and sessions served from memory while the change feed is heard.
    pub caches: Arc<cache::Caches>,
    /// Group commit for the audit rows of reads served from memory.
    pub audit: mimamori_core::store::audit::AuditWriter,
    /// Tomorrow's delivery capacity plan, recomputed at most every five minutes (it counts
    /// everyone under observation).
    pub capacity:
        Arc<tokio::sync::Mutex<Option<(std::time::Instant, mimamori_core::capacity::Plan)>>>,
    /// Password checks running at once (`http.login_concurrency`); logins beyond it queue.
    pub logins: Arc<tokio::sync::Semaphore>,
    /// Console imports: dry runs awaiting the go-ahead, imports in flight.
    pub imports: console::imports::Imports,
    /// Admission of console and API requests (see [`lanes`]).
    pub console_gate: Arc<lanes::ConsoleGate>,
}

impl AppState {
    pub fn new(
        db: Db,
        config: Arc<Config>,
        signer: LinkSigner,
        flows: Arc<Flows>,
        prompts: Arc<Prompts>,
        rules: Arc<Thresholds>,
        channels: Channels,
    ) -> Self {
        let secure_cookies = config.public_url.starts_with("https://");
        let caches = cache::start(&db, config.http.cache);
        let logins = match config.http.login_concurrency {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        AppState::from(AppShared {
            db: db.clone(),
            signer,
            flows,
            prompts,
            ingest: mimamori_core::ingest::Ingest::spawn_on_own_thread(db.clone(), rules.clone()),
            reads: mimamori_core::link_reads::LinkReads::spawn_on_own_thread(db.clone()),
            caches,
            audit: mimamori_core::store::audit::AuditWriter::spawn_on_own_thread(db.clone()),
            rules,
            periods: Arc::default(),
            reporting: Arc::default(),
            channels,
            secure_cookies,
            capacity: Arc::default(),
            logins: Arc::new(tokio::sync::Semaphore::new(logins)),
            imports: Arc::default(),
            console_gate: Arc::new(lanes::ConsoleGate::new(
                config.http.console_concurrency,
                config.http.console_queue,
                Duration::from_millis(config.http.console_queue_ms),
            )),
            config,
        })
    }

    /// The same state on the patient lane's own pool, with its own answer writer and link
    /// reader: what the link form and the provider's webhooks run on (see [`lanes`]). The
    /// audit writer stays the main pool's: nothing on this lane writes through it (the page
    /// after an answer is audited by its own read, `checkins::done_contexts`).
    pub fn on_pool(&self, db: Db) -> AppState {
        AppState::from(AppShared {
            ingest: mimamori_core::ingest::Ingest::spawn_on_own_thread(
                db.clone(),
                self.rules.clone(),
            ),
            reads: mimamori_core::link_reads::LinkReads::spawn_on_own_thread(db.clone()),
            db,
            ..(*self.0).clone()
        })
    }

    /// What registration needs from this server: period rules, today in Japan, the answer
    /// window, the client's address.
    pub fn registration<'a>(
        &'a self,
        ip: Option<&'a str>,
    ) -> mimamori_core::registration::Context<'a> {
        mimamori_core::registration::Context {
            periods: &self.periods,
            today: japan_today(),
            window: chrono::Duration::minutes(self.config.checkin.answer_window_minutes),
            ip,
            reporting: &self.reporting,
        }
    }

    /// Public base URL without a trailing slash.
    pub fn base(&self) -> &str {
        self.config.public_url.trim_end_matches('/')
    }
}

#[derive(Clone, Default)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let v: u64 = rand::random();
        format!("{v:016x}").parse().ok().map(RequestId::new)
    }
}

/// Runs the request with its language known to error rendering: the console's `lang`
/// cookie, else the first of `Accept-Language`, else Japanese for pages and English for the
/// API.
async fn lang_layer(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use mimamori_core::domain::Lang;
    let headers = req.headers();
    let cookie = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("lang=").map(str::to_string));
    let accept = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let lang = match (cookie.as_deref(), accept.as_deref()) {
        (Some("en"), _) => Lang::En,
        (Some("ja"), _) => Lang::Ja,
        (_, Some(a)) if a.starts_with("ja") => Lang::Ja,
        (_, Some(a)) if a.starts_with("en") => Lang::En,
        _ if req.uri().path().starts_with("/api/") => Lang::En,
        _ => Lang::Ja,
    };
    i18n::REQUEST_LANG.scope(lang, next.run(req)).await
}

/// Behind our own proxy (`http.behind_proxy`), the client's address is the last
/// `X-Forwarded-For` entry (the one the proxy appended); every handler that audits an
/// address reads it from `ConnectInfo`, which is replaced here.
async fn client_address(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if state.config.http.behind_proxy {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
            .next_back();
        if let Some(ip) = forwarded {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(ip, 0)));
        }
    }
    next.run(req).await
}

/// Personal data stays out of browser and proxy caches (shared terminals at health centres,
/// a family's shared phone): every response but the voice prompts' audio is
/// `Cache-Control: no-store`, unless the handler said otherwise.
async fn no_store(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let cacheable = req.uri().path().starts_with("/voice-prompts/");
    let mut res = next.run(req).await;
    if !cacheable {
        res.headers_mut()
            .entry(axum::http::header::CACHE_CONTROL)
            .or_insert(axum::http::HeaderValue::from_static("no-store"));
    }
    res
}

/// Security headers on every response (ASVS V14): a content security policy that allows no
/// inline script and no framing, no MIME sniffing, no referrer leaving the site (patient
/// links carry a token), and HSTS when the public URL is https.
async fn security_headers(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if state.config.public_url.starts_with("https://") {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    res
}

/// A redirect target taken from a request (a `Referer`): only a path of this site — one
/// `/`, no scheme, no host, no backslash (browsers read `/\evil` as `//evil`), no control
/// characters.
pub fn same_origin_path(p: &str) -> Option<&str> {
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.contains('\\')
        && !p.chars().any(|c| c.is_control());
    ok.then_some(p)
}

/// Today's date in Japan (every health centre's time zone): the default for dates staff
/// leave empty and the limit for dates that cannot lie ahead.
pub fn japan_today() -> chrono::NaiveDate {
    mimamori_core::db::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive()
}

/// The whole site; `patient` is the state the patient lane runs on (its own pool).
pub fn router(state: AppState, patient: AppState) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let timeout = Duration::from_secs(state.config.http.request_timeout_secs);
    Router::new()
        .merge(health::router().with_state(patient.clone()))
        .merge(auth::router())
        .merge(login::router())
        .merge(console::router())
        .merge(patient::router().with_state(patient.clone()))
        .merge(hooks::router().with_state(patient))
        .merge(simulator::router())
        .nest_service(
            "/voice-prompts/audio",
            tower_http::services::ServeDir::new(
                std::path::Path::new(&state.config.voice_prompts_dir).join("audio"),
            ),
        )
        .nest(
            "/api/v1",
            api::router()
                .merge(console::stats::api_router())
                .layer(axum::middleware::from_fn(api::json_errors)),
        )
        .route("/api/openapi.json", axum::routing::get(api::openapi_json))
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cache::local_writes,
        ))
        .layer(axum::middleware::from_fn(input::screen))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            lanes::gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client_address,
        ))
        .layer(axum::middleware::from_fn(lang_layer))
        .layer(axum::middleware::from_fn(no_store))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                // The path is logged without its token: patient links carry a signed token.
                let path = req.uri().path();
                let path = if path.starts_with("/c/") {
                    "/c/{token}"
                } else {
                    path
                };
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("http", method = %req.method(), path = %path, request_id = %id)
            })
            // Server errors are logged at error, except the console's shedding (503 with
            // Retry-After), which `lanes` reports once in a while rather than thousands of
            // times a second under overload.
            .on_failure(
                |class: tower_http::classify::ServerErrorsFailureClass,
                 latency: Duration,
                 _: &tracing::Span| {
                    use tower_http::classify::ServerErrorsFailureClass as C;
                    if !matches!(class, C::StatusCode(s) if s == axum::http::StatusCode::SERVICE_UNAVAILABLE) {
                        tracing::error!(classification = %class, latency_ms = latency.as_millis() as u64, "response failed");
                    }
                },
            ),
        )
        .layer(SetRequestIdLayer::new(x_request_id, RandomRequestId))
}
