//! Twilio-compatible REST client: `POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json`
//! and `…/Calls.json`, form-encoded, Basic auth. Tested against Prism serving Twilio's
//! official OpenAPI document.
use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{OutboundMessage, Provider, SendError, SendFuture, limiter::RateLimiter};
use crate::config::TwilioConfig;

pub struct Twilio {
    http: reqwest::Client,
    api_base: String,
    account_sid: String,
    auth_token: SecretString,
    sms: RateLimiter,
    calls: RateLimiter,
    /// After an operator fault (bad credential, suspended account), sending stops until this
    /// UNIX second; then one request tries again.
    halted_until: AtomicU64,
    halted_reason: std::sync::Mutex<String>,
    halt_secs: u64,
}

/// Twilio error codes that mean our own set-up is wrong, not the patient's number:
/// 20003 authentication failed, 20005 account not active, 20008 test credentials,
/// 21212 invalid From, 21606 From not SMS-capable, 21608 unverified (trial) number,
/// 21659 From not a Twilio number.
const OPERATOR_CODES: &[i64] = &[20003, 20005, 20008, 21212, 21606, 21608, 21659];

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize, Default)]
struct TwilioError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// Twilio error codes that will not go away by retrying.
/// 21211 invalid To, 21214 not reachable by phone, 21217 invalid number, 21610 unsubscribed
/// (STOP), 21612 cannot route, 21614 not a mobile number, 13224 invalid call number.
const PERMANENT_CODES: &[i64] = &[21211, 21214, 21217, 21610, 21612, 21614, 13224];

#[derive(Deserialize)]
struct AccountInfo {
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct NumberList {
    #[serde(default)]
    incoming_phone_numbers: Vec<OwnedNumber>,
}

#[derive(Deserialize)]
struct OwnedNumber {
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default)]
    capabilities: Option<Capabilities>,
}

#[derive(Deserialize, Default)]
struct Capabilities {
    #[serde(default)]
    sms: bool,
    #[serde(default)]
    voice: bool,
}

/// A sender number and what it must be able to do.
pub struct Sender<'a> {
    pub number: &'a str,
    pub sms: bool,
    pub voice: bool,
}

impl Twilio {
    /// Asks the provider, without sending anything, whether the account answers with our
    /// credential and is active, and whether each sender number belongs to it and can do
    /// what it is configured for. Returns each problem in words (empty: all good).
    pub async fn check_account(&self, senders: &[Sender<'_>]) -> Vec<String> {
        let mut problems = Vec::new();
        let get = |url: String| {
            self.http
                .get(url)
                .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
                .send()
        };
        let account_url = format!(
            "{}/2010-04-01/Accounts/{}.json",
            self.api_base, self.account_sid
        );
        match get(account_url).await {
            Err(e) => {
                problems.push(format!(
                    "twilio: cannot reach {} ({})",
                    self.api_base,
                    if e.is_timeout() {
                        "timeout"
                    } else {
                        "connection failed"
                    }
                ));
                return problems;
            }
            Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED => {
                problems.push(
                    "twilio: the provider refuses twilio.account_sid / twilio.auth_token (401, 20003): check both".into(),
                );
                return problems;
            }
            Ok(r) if !r.status().is_success() => {
                problems.push(format!(
                    "twilio: the account lookup answered HTTP {}",
                    r.status().as_u16()
                ));
                return problems;
            }
            Ok(r) => {
                let info: Option<AccountInfo> = r.json().await.ok();
                match info.and_then(|i| i.status).as_deref() {
                    Some("active") | None => {}
                    Some(other) => problems.push(format!(
                        "twilio: the account is {other}, not active: nothing can be sent"
                    )),
                }
            }
        }
        for s in senders {
            let url = format!(
                "{}?PhoneNumber={}",
                self.url("IncomingPhoneNumbers"),
                s.number.replace('+', "%2B")
            );
            let owned: Option<NumberList> = match get(url).await {
                Ok(r) if r.status().is_success() => r.json().await.ok(),
                _ => None,
            };
            let found = owned.and_then(|l| {
                l.incoming_phone_numbers
                    .into_iter()
                    .find(|n| n.phone_number.as_deref() == Some(s.number))
            });
            match found {
                None => problems.push(format!(
                    "twilio: sender {} is not a number of this account",
                    s.number
                )),
                Some(n) => {
                    let caps = n.capabilities.unwrap_or_default();
                    if s.sms && !caps.sms {
                        problems.push(format!(
                            "twilio: sender {} cannot send SMS (twilio.sms_from)",
                            s.number
                        ));
                    }
                    if s.voice && !caps.voice {
                        problems.push(format!(
                            "twilio: sender {} cannot place calls (twilio.voice_from)",
                            s.number
                        ));
                    }
                }
            }
        }
        problems
    }

    pub fn new(cfg: &TwilioConfig) -> Result<Twilio, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.request_timeout_secs))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Twilio {
            http,
            api_base: cfg.api_base.trim_end_matches('/').to_string(),
            account_sid: cfg.account_sid.clone(),
            auth_token: cfg.auth_token.clone(),
            sms: RateLimiter::new(cfg.sms_from.clone(), cfg.messages_per_sec),
            halted_until: AtomicU64::new(0),
            halted_reason: std::sync::Mutex::new(String::new()),
            halt_secs: cfg.operator_halt_secs,
            calls: RateLimiter::new(
                if cfg.voice_from.is_empty() {
                    cfg.sms_from.clone()
                } else {
                    cfg.voice_from.clone()
                },
                cfg.calls_per_sec,
            ),
        })
    }

    fn url(&self, resource: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/{resource}.json",
            self.api_base, self.account_sid
        )
    }

    async fn post(
        &self,
        resource: &str,
        limiter: &RateLimiter,
        from: &str,
        form: &[(&str, &str)],
    ) -> Result<String, SendError> {
        if unix_now() < self.halted_until.load(Ordering::SeqCst) {
            let why = self
                .halted_reason
                .lock()
                .map(|r| r.clone())
                .unwrap_or_default();
            return Err(SendError::Operator(format!("sending stopped: {why}")));
        }
        let res = self
            .http
            .post(self.url(resource))
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(form)
            .send()
            .await
            .map_err(|e| {
                SendError::Transient(if e.is_timeout() {
                    "timeout".into()
                } else {
                    "connection failed".into()
                })
            })?;
        let status = res.status();
        if status.is_success() {
            let c: Created = res
                .json()
                .await
                .map_err(|_| SendError::Transient("unreadable provider answer".into()))?;
            return Ok(c.sid);
        }
        let retry_after = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let err: TwilioError = res.json().await.unwrap_or_default();
        let code = err.code.map(|c| c.to_string()).unwrap_or_default();
        // The provider's message can echo the number; keep only status and code.
        let reason = format!(
            "HTTP {}{}",
            status.as_u16(),
            if code.is_empty() {
                String::new()
            } else {
                format!(" code {code}")
            }
        );
        tracing::warn!(
            status = status.as_u16(),
            code = err.code,
            detail = err.message.is_some(),
            "provider refused"
        );
        if status.as_u16() == 429 {
            // Honour Retry-After for this sender number (1 s when the provider gives none).
            limiter.hold(
                from,
                Duration::from_secs(retry_after.unwrap_or(1).min(3600)),
            );
        }
        let operator = matches!(status.as_u16(), 401 | 403)
            || err.code.is_some_and(|c| OPERATOR_CODES.contains(&c));
        if operator {
            if let Ok(mut r) = self.halted_reason.lock() {
                *r = reason.clone();
            }
            self.halted_until
                .store(unix_now() + self.halt_secs, Ordering::SeqCst);
            Err(SendError::Operator(reason))
        } else if err.code.is_some_and(|c| PERMANENT_CODES.contains(&c)) {
            Err(SendError::Permanent(reason))
        } else {
            Err(SendError::Transient(reason))
        }
    }
}

#[derive(Deserialize)]
struct Fetched {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error_code: Option<serde_json::Value>,
}

impl Provider for Twilio {
    fn lookup<'a>(&'a self, channel: &'a str, id: &'a str) -> super::LookupFuture<'a> {
        Box::pin(async move {
            let resource = if channel == "voice" {
                format!("Calls/{id}")
            } else {
                format!("Messages/{id}")
            };
            let res = self
                .http
                .get(self.url(&resource))
                .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
                .send()
                .await
                .map_err(|_| SendError::Transient("lookup: connection failed".into()))?;
            if !res.status().is_success() {
                return Err(SendError::Transient(format!(
                    "lookup: HTTP {}",
                    res.status().as_u16()
                )));
            }
            let f: Fetched = res
                .json()
                .await
                .map_err(|_| SendError::Transient("lookup: unreadable answer".into()))?;
            Ok(f.status.map(|status| super::Looked {
                status,
                error_code: f.error_code.and_then(|c| match c {
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    serde_json::Value::String(s) if !s.is_empty() => Some(s),
                    _ => None,
                }),
            }))
        })
    }

    fn name(&self) -> &'static str {
        "twilio"
    }

    fn send<'a>(&'a self, m: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(async move {
            match m.channel {
                "voice" => {
                    let from = self.calls.acquire(m.priority).await;
                    let url = m
                        .url
                        .as_deref()
                        .ok_or_else(|| SendError::Permanent("no TwiML URL".into()))?;
                    let mut form = vec![
                        ("To", m.to.as_str()),
                        ("From", from.as_str()),
                        ("Url", url),
                        ("Method", "POST"),
                        // Answering machines get a short "we will call again" and the call
                        // counts as not answered (retried later), instead of questions read
                        // to a tape (`AnsweredBy` on our TwiML request).
                        ("MachineDetection", "Enable"),
                    ];
                    // Status callbacks default to the `completed` event, which carries the
                    // outcome (completed, busy, no-answer, failed) — all we need.
                    if let Some(cb) = &m.status_callback {
                        form.extend([
                            ("StatusCallback", cb.as_str()),
                            ("StatusCallbackMethod", "POST"),
                        ]);
                    }
                    self.post("Calls", &self.calls, &from, &form).await
                }
                _ => {
                    let from = self.sms.acquire(m.priority).await;
                    let mut form = vec![
                        ("To", m.to.as_str()),
                        ("From", from.as_str()),
                        ("Body", m.body.as_str()),
                    ];
                    if let Some(cb) = &m.status_callback {
                        form.push(("StatusCallback", cb.as_str()));
                    }
                    self.post("Messages", &self.sms, &from, &form).await
                }
            }
        })
    }
}
