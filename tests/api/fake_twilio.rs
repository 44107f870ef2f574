//! A loopback stand-in for a Twilio-compatible provider, for driving whole call flows and
//! faults: it accepts `Messages.json` / `Calls.json`, places calls by fetching our TwiML and
//! posting the scripted keys back (signed like Twilio), reports call and message status, and
//! can answer with 429 (with `Retry-After`), 5xx, 401 (code 20003), an invalid-number error
//! or a hang for chosen numbers.
//!
//! It is no kinder than the real provider: status reports of a message or an unanswered
//! call are delivered **before** the create request is answered (so they reach us before the
//! batch has recorded the provider's id), the final one **twice in parallel**, and once more
//! **late**; the keypad's finish key is left out of `Digits` (`375#` arrives as `Digits=375`
//! with `FinishedOnKey=#`, a lone `#` as an empty `Digits`).
//! What it proves: our sending, webhook handling and retries against Twilio's wire format.
//! (That our requests satisfy Twilio's real contract is proved separately with Prism.)
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Form, Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
};
use mimamori_core::signature;
use serde_json::json;

pub const SID: &str = "ACfake000000000000000000000000000";
pub const TOKEN: &str = "fake-auth-token";

#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer 429 the first `n` times.
    TooMany(usize),
    /// Answer 429 with `Retry-After: secs` the first `n` times.
    TooManyRetryAfter(usize, u64),
    ServerError,
    InvalidNumber,
    /// 401 with code 20003 (authentication failed), as for a wrong auth token.
    Unauthorized,
    Slow(Duration),
    /// Accept the SMS, then report it `undelivered` with this error code (30003: unreachable).
    Undelivered(&'static str),
}

#[derive(Clone, Debug)]
pub enum Pickup {
    /// Answer and press these keys in turn (`None`: let the Gather time out).
    Keys(Vec<Option<&'static str>>),
    /// Report this call status without answering (`busy`, `no-answer`).
    Status(&'static str),
    /// An answering machine picks up: our TwiML is fetched with `AnsweredBy=machine_start`,
    /// then the call completes.
    Machine,
}

#[derive(Default)]
pub struct Inner {
    /// Our webhooks never hear of outcomes (refused under load, lost on the way): they can
    /// only be asked for (`GET …/Calls/{sid}.json`, `…/Messages/{sid}.json`).
    pub drop_reports: bool,
    /// The final status (and error code) of each call and message, as reported or not.
    pub outcomes: HashMap<String, (String, Option<String>)>,
    /// The account's status (`active` when None).
    pub account_status: Option<String>,
    /// The account's numbers with (sms, voice) capability; None: every number, both.
    pub owned: Option<Vec<(String, bool, bool)>>,
    pub messages: Vec<HashMap<String, String>>,
    pub calls: Vec<HashMap<String, String>>,
    pub faults: HashMap<String, Fault>,
    /// Per number, what happens on each successive call.
    pub pickups: HashMap<String, Vec<Pickup>>,
    /// Every TwiML document the calls received.
    pub twiml: Vec<String>,
    /// When each create request arrived, per `To` (for Retry-After compliance).
    pub requests: Vec<(String, std::time::Instant)>,
    /// Answers our app gave to status reports (HTTP status codes).
    pub report_answers: Vec<u16>,
    /// Every report was delivered this many times in parallel (default 2).
    pub report_copies: usize,
    counter: usize,
}

#[derive(Clone)]
pub struct Fake {
    pub inner: Arc<Mutex<Inner>>,
    pub base: String,
}

impl Fake {
    pub async fn start() -> Fake {
        let inner = Arc::new(Mutex::new(Inner {
            report_copies: 2,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(message))
            .route("/2010-04-01/Accounts/{sid}/Calls.json", post(call))
            .route("/2010-04-01/Accounts/{file}", axum::routing::get(account))
            .route(
                "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json",
                axum::routing::get(numbers),
            )
            .route(
                "/2010-04-01/Accounts/{sid}/Calls/{file}",
                axum::routing::get(fetch),
            )
            .route(
                "/2010-04-01/Accounts/{sid}/Messages/{file}",
                axum::routing::get(fetch),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { inner, base }
    }

    pub fn fault(&self, to: &str, f: Fault) {
        self.inner.lock().unwrap().faults.insert(to.into(), f);
    }

    pub fn pickups(&self, to: &str, p: Vec<Pickup>) {
        self.inner.lock().unwrap().pickups.insert(to.into(), p);
    }

    pub fn messages_to(&self, to: &str) -> Vec<HashMap<String, String>> {
        self.inner
            .lock()
            .unwrap()
            .messages
            .iter()
            .filter(|m| m.get("To").map(String::as_str) == Some(to))
            .cloned()
            .collect()
    }

    pub fn calls_to(&self, to: &str) -> usize {
        self.inner
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|m| m.get("To").map(String::as_str) == Some(to))
            .count()
    }
}

/// `GET /Accounts/{sid}.json`: the account, as Twilio describes it (`status: active`), or
/// 401 with code 20003 for a wrong credential.
async fn account(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(file): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    if file != format!("{SID}.json") || !check_auth(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": 20003, "message": "Authenticate", "status": 401})),
        )
            .into_response();
    }
    let status = inner
        .lock()
        .unwrap()
        .account_status
        .clone()
        .unwrap_or_else(|| "active".into());
    Json(json!({"sid": SID, "status": status, "type": "Full"})).into_response()
}

/// `GET …/IncomingPhoneNumbers.json?PhoneNumber=…`: the account's numbers matching, with
/// their capabilities. The fake owns every number unless `owned` says otherwise.
async fn numbers(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    if !check_auth(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let wanted = q.get("PhoneNumber").cloned().unwrap_or_default();
    let g = inner.lock().unwrap();
    let found: Vec<serde_json::Value> = match &g.owned {
        None => vec![json!({"phone_number": wanted, "capabilities": {"sms": true, "voice": true, "mms": false, "fax": false}})],
        Some(list) => list
            .iter()
            .filter(|(n, _, _)| *n == wanted)
            .map(|(n, sms, voice)| json!({"phone_number": n, "capabilities": {"sms": sms, "voice": voice, "mms": false, "fax": false}}))
            .collect(),
    };
    Json(json!({"incoming_phone_numbers": found, "page": 0, "page_size": 50})).into_response()
}

/// `GET …/Calls/{sid}.json` or `…/Messages/{sid}.json`: the resource with its status as
/// Twilio documents it (`queued` until its outcome is known).
async fn fetch(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((_, file)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !check_auth(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let sid = file.trim_end_matches(".json").to_string();
    let (status, code) = inner
        .lock()
        .unwrap()
        .outcomes
        .get(&sid)
        .cloned()
        .unwrap_or_else(|| ("queued".into(), None));
    let code = code.and_then(|c| c.parse::<i64>().ok());
    Json(json!({"sid": sid, "status": status, "error_code": code})).into_response()
}

fn check_auth(headers: &axum::http::HeaderMap) -> bool {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

async fn fault_for(inner: &Arc<Mutex<Inner>>, to: &str) -> Option<Response> {
    let f = {
        let mut g = inner.lock().unwrap();
        g.requests.push((to.to_string(), std::time::Instant::now()));
        match g.faults.get_mut(to) {
            Some(Fault::TooMany(n)) if *n > 0 => {
                *n -= 1;
                Some(Fault::TooMany(1))
            }
            Some(Fault::TooManyRetryAfter(n, secs)) if *n > 0 => {
                *n -= 1;
                Some(Fault::TooManyRetryAfter(1, *secs))
            }
            Some(Fault::TooMany(_)) | Some(Fault::TooManyRetryAfter(..)) => None,
            Some(Fault::Undelivered(_)) => None,
            other => other.cloned(),
        }
    };
    match f {
        Some(Fault::TooMany(_)) => Some((StatusCode::TOO_MANY_REQUESTS, Json(json!({"code": 20429, "message": "Too Many Requests", "status": 429}))).into_response()),
        Some(Fault::TooManyRetryAfter(_, secs)) => Some((StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())], Json(json!({"code": 20429, "message": "Too Many Requests", "status": 429}))).into_response()),
        Some(Fault::Unauthorized) => Some((StatusCode::UNAUTHORIZED, Json(json!({"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}))).into_response()),
        Some(Fault::ServerError) => Some((StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()),
        Some(Fault::InvalidNumber) => Some((StatusCode::BAD_REQUEST, Json(json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}))).into_response()),
        Some(Fault::Slow(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        Some(Fault::Undelivered(_)) | None => None,
    }
}

/// Delivers a status report as the real provider does: `copies` deliveries at the same
/// moment (Twilio may deliver a callback more than once), answered by our app before the
/// caller goes on; then, spawned, one more late delivery of the same report.
async fn report(inner: &Arc<Mutex<Inner>>, url: &str, params: Vec<(String, String)>) {
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let copies = {
        let mut g = inner.lock().unwrap();
        if let (Some(sid), Some(status)) = (
            get("CallSid").or_else(|| get("MessageSid")),
            get("CallStatus").or_else(|| get("MessageStatus")),
        ) {
            g.outcomes.insert(sid, (status, get("ErrorCode")));
        }
        if g.drop_reports {
            return;
        }
        g.report_copies.max(1)
    };
    let sends = (0..copies).map(|_| signed_post(url, &params));
    for r in futures::future::join_all(sends).await {
        inner
            .lock()
            .unwrap()
            .report_answers
            .push(r.status().as_u16());
    }
    let (inner, url) = (inner.clone(), url.to_string());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = signed_post(&url, &params).await;
        inner
            .lock()
            .unwrap()
            .report_answers
            .push(r.status().as_u16());
    });
}

async fn message(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(sid): Path<String>,
    headers: axum::http::HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    if sid != SID || !check_auth(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let to = f.get("To").cloned().unwrap_or_default();
    if let Some(r) = fault_for(&inner, &to).await {
        return r;
    }
    let (msid, undelivered) = {
        let mut g = inner.lock().unwrap();
        g.counter += 1;
        let msid = format!("SM{:032}", g.counter);
        g.messages.push(f.clone());
        let undelivered = match g.faults.get(&to) {
            Some(Fault::Undelivered(code)) => Some(*code),
            _ => None,
        };
        (msid, undelivered)
    };
    // The outcome is reported before the create request is answered: a paced batch records
    // the provider's id long after the handset's network has answered.
    if let Some(cb) = f.get("StatusCallback") {
        let mut p = vec![
            ("MessageSid".to_string(), msid.clone()),
            ("AccountSid".to_string(), SID.to_string()),
            ("To".to_string(), to.clone()),
        ];
        match undelivered {
            Some(code) => {
                p.push(("MessageStatus".into(), "undelivered".into()));
                p.push(("ErrorCode".into(), code.into()));
            }
            None => p.push(("MessageStatus".into(), "delivered".into())),
        }
        report(&inner, cb, p).await;
    }
    (
        StatusCode::CREATED,
        Json(json!({"sid": msid, "status": "queued"})),
    )
        .into_response()
}

async fn call(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(sid): Path<String>,
    headers: axum::http::HeaderMap,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    if sid != SID || !check_auth(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let map: HashMap<String, String> = f.iter().cloned().collect();
    let to = map.get("To").cloned().unwrap_or_default();
    if let Some(r) = fault_for(&inner, &to).await {
        return r;
    }
    let (call_sid, pickup) = {
        let mut g = inner.lock().unwrap();
        g.counter += 1;
        let call_sid = format!("CA{:032}", g.counter);
        g.calls.push(map.clone());
        let pickup = g.pickups.get_mut(&to).and_then(|v| {
            if v.is_empty() {
                None
            } else {
                Some(v.remove(0))
            }
        });
        (call_sid, pickup.unwrap_or(Pickup::Status("no-answer")))
    };
    match pickup {
        // Busy / no answer: the outcome is known within seconds, before a paced batch ends —
        // reported before the create request is answered.
        Pickup::Status(status) => {
            if let Some(cb) = map.get("StatusCallback") {
                let p = vec![
                    ("CallSid".to_string(), call_sid.clone()),
                    (
                        "From".to_string(),
                        map.get("From").cloned().unwrap_or_default(),
                    ),
                    ("To".to_string(), to.clone()),
                    ("CallStatus".to_string(), status.to_string()),
                ];
                report(&inner, cb, p).await;
            }
        }
        keys @ (Pickup::Keys(_) | Pickup::Machine) => {
            tokio::spawn(drive_call(inner.clone(), call_sid.clone(), map, keys));
        }
    }
    (
        StatusCode::CREATED,
        Json(json!({"sid": call_sid, "status": "queued"})),
    )
        .into_response()
}

/// Posts a form to our app, signed as Twilio would.
pub async fn signed_post(url: &str, params: &[(String, String)]) -> reqwest::Response {
    let sig = signature::sign(TOKEN, url, params);
    reqwest::Client::new()
        .post(url)
        .header("X-Twilio-Signature", sig)
        .form(params)
        .send()
        .await
        .unwrap()
}

fn gather_action(twiml: &str) -> Option<String> {
    let start = twiml.find("<Gather")?;
    let rest = &twiml[start..];
    let a = rest.find("action=\"")? + 8;
    let end = rest[a..].find('"')?;
    Some(rest[a..a + end].replace("&amp;", "&"))
}

async fn drive_call(
    inner: Arc<Mutex<Inner>>,
    call_sid: String,
    req: HashMap<String, String>,
    pickup: Pickup,
) {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let base = vec![
        ("CallSid".to_string(), call_sid.clone()),
        (
            "From".to_string(),
            req.get("From").cloned().unwrap_or_default(),
        ),
        ("To".to_string(), req.get("To").cloned().unwrap_or_default()),
    ];
    let status_cb = req.get("StatusCallback").cloned();
    // With machine detection asked for, the first request says who answered.
    let mut first = base.clone();
    if req.contains_key("MachineDetection") {
        let by = if matches!(pickup, Pickup::Machine) {
            "machine_start"
        } else {
            "human"
        };
        first.push(("AnsweredBy".into(), by.into()));
    }
    let keys = match pickup {
        Pickup::Keys(keys) => keys,
        Pickup::Machine => Vec::new(),
        Pickup::Status(_) => return,
    };
    let mut twiml = signed_post(req.get("Url").unwrap(), &first)
        .await
        .text()
        .await
        .unwrap();
    inner.lock().unwrap().twiml.push(twiml.clone());
    let mut keys = keys.into_iter();
    while let Some(action) = gather_action(&twiml) {
        let Some(k) = keys.next() else { break };
        let mut p = base.clone();
        p.extend(keypad(k));
        twiml = signed_post(&action, &p).await.text().await.unwrap();
        inner.lock().unwrap().twiml.push(twiml.clone());
    }
    if let Some(cb) = status_cb {
        let mut p = base.clone();
        p.push(("CallStatus".into(), "completed".into()));
        report(&inner, &cb, p).await;
    }
}

/// What the provider posts for keys pressed: the finish key `#` ends input and is left out
/// of `Digits` (reported as `FinishedOnKey`); `None` is a timeout (empty `Digits`).
pub fn keypad(keys: Option<&str>) -> Vec<(String, String)> {
    match keys {
        Some(k) if k.ends_with('#') => vec![
            ("Digits".into(), k.trim_end_matches('#').into()),
            ("FinishedOnKey".into(), "#".into()),
        ],
        Some(k) => vec![
            ("Digits".into(), k.into()),
            ("FinishedOnKey".into(), String::new()),
        ],
        None => vec![
            ("Digits".into(), String::new()),
            ("FinishedOnKey".into(), String::new()),
        ],
    }
}
