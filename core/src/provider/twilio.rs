//! Twilio-compatible REST client: `POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json`
//! and `…/Calls.json`, form-encoded, Basic auth. Tested against Prism serving Twilio's
//! official OpenAPI document.
use std::time::Duration;

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

impl Twilio {
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

    async fn post(&self, resource: &str, form: &[(&str, &str)]) -> Result<String, SendError> {
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
        if err.code.is_some_and(|c| PERMANENT_CODES.contains(&c)) {
            Err(SendError::Permanent(reason))
        } else {
            Err(SendError::Transient(reason))
        }
    }
}

impl Provider for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn send<'a>(&'a self, m: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(async move {
            match m.channel {
                "voice" => {
                    let from = self.calls.acquire().await;
                    let url = m
                        .url
                        .as_deref()
                        .ok_or_else(|| SendError::Permanent("no TwiML URL".into()))?;
                    let mut form = vec![
                        ("To", m.to.as_str()),
                        ("From", from.as_str()),
                        ("Url", url),
                        ("Method", "POST"),
                    ];
                    // Status callbacks default to the `completed` event, which carries the
                    // outcome (completed, busy, no-answer, failed) — all we need.
                    if let Some(cb) = &m.status_callback {
                        form.extend([
                            ("StatusCallback", cb.as_str()),
                            ("StatusCallbackMethod", "POST"),
                        ]);
                    }
                    self.post("Calls", &form).await
                }
                _ => {
                    let from = self.sms.acquire().await;
                    let mut form = vec![
                        ("To", m.to.as_str()),
                        ("From", from.as_str()),
                        ("Body", m.body.as_str()),
                    ];
                    if let Some(cb) = &m.status_callback {
                        form.push(("StatusCallback", cb.as_str()));
                    }
                    self.post("Messages", &form).await
                }
            }
        })
    }
}
