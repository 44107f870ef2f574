//! Channel providers: where an SMS, e-mail or call actually goes.
//!
//! * `outbox` — development: every message and call is stored in `outbox_messages` and shown
//!   on the Outbox console page (calls can be answered with the phone simulator).
//! * `twilio` — any Twilio-compatible REST API (SMS and voice), with per-number rate limits.
//! * `smtp` — e-mail through lettre.
//!
//! [`Channels`] picks the provider of each channel from the configuration.
pub mod limiter;
pub mod smtp;
pub mod twilio;

use std::{future::Future, pin::Pin, sync::Arc};

use crate::{Db, config::Config, store::outbox};

#[derive(Debug, Clone)]
pub struct OutboundMessage {
    /// `sms`, `email` or `voice`.
    pub channel: &'static str,
    pub to: String,
    pub subject: Option<String>,
    /// SMS text, e-mail text part, or a note for a call.
    pub body: String,
    pub html: Option<String>,
    /// Voice: the URL of our TwiML for this call.
    pub url: Option<String>,
    /// Where the provider reports delivery / call status.
    pub status_callback: Option<String>,
    /// Same key, same message: a provider must not send it twice.
    pub idempotency_key: String,
    /// Staff alerts and login codes: served before any paced patient send waiting for the
    /// same sender number (never more than the number's rate).
    pub priority: bool,
    /// Whose message it is: the dev outbox shows it only to those who may see that person
    /// (or to that staff member).
    pub audience: Audience,
}

/// Whose message an outbound message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Person(i64),
    Staff(i64),
    /// Benchmarks and checks: shown to nobody.
    Nobody,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Will never succeed (invalid number, unsubscribed): end the check-in.
    Permanent(String),
    /// May succeed later (rate limit, provider down, timeout): retry with back-off.
    Transient(String),
    /// Our own set-up is wrong (bad credential, suspended account, sender not allowed): no
    /// patient is at fault. Raises an operator alarm; the check-in is put back, not failed.
    Operator(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Permanent(r) => write!(f, "permanent: {r}"),
            SendError::Transient(r) => write!(f, "transient: {r}"),
            SendError::Operator(r) => write!(f, "operator: {r}"),
        }
    }
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<String, SendError>> + Send + 'a>>;

/// What a provider says of an earlier send when asked (reconciliation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Looked {
    /// The provider's status word (`delivered`, `undelivered`, `busy`, `no-answer`,
    /// `completed`, `in-progress`, …).
    pub status: String,
    pub error_code: Option<String>,
}

pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Looked>, SendError>> + Send + 'a>>;

pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;
    /// Asks the provider what became of message or call `id` sent on `channel` (`None`: this
    /// provider does not report, e.g. the dev outbox or SMTP).
    fn lookup<'a>(&'a self, channel: &'a str, id: &'a str) -> LookupFuture<'a> {
        let _ = (channel, id);
        Box::pin(async { Ok(None) })
    }
    /// Sends and returns the provider's id of the message or call.
    fn send<'a>(&'a self, msg: &'a OutboundMessage) -> SendFuture<'a>;
}

/// Development provider: stores every message in `outbox_messages`.
pub struct Outbox {
    pub db: Db,
}

impl Provider for Outbox {
    fn name(&self) -> &'static str {
        "outbox"
    }
    fn send<'a>(&'a self, m: &'a OutboundMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let body = match (&m.url, m.channel) {
                (Some(url), "voice") => format!("{}\n{url}", m.body),
                _ => m.body.clone(),
            };
            outbox::put(
                &self.db,
                outbox::NewMessage {
                    channel: m.channel,
                    to: &m.to,
                    subject: m.subject.as_deref(),
                    body: &body,
                    key: &m.idempotency_key,
                    audience: m.audience,
                },
            )
            .await
            .map(|id| format!("OB{id}"))
            .map_err(|e| SendError::Transient(e.to_string()))
        })
    }
}

/// The provider of each channel.
#[derive(Clone)]
pub struct Channels {
    pub sms: Arc<dyn Provider>,
    pub email: Arc<dyn Provider>,
    pub voice: Arc<dyn Provider>,
}

impl Channels {
    /// Twilio for SMS and voice when an account is configured, SMTP for e-mail when a URL is
    /// configured; the dev outbox otherwise.
    pub fn from_config(cfg: &Config, db: &Db) -> Result<Channels, String> {
        let outbox: Arc<dyn Provider> = Arc::new(Outbox { db: db.clone() });
        let (sms, voice) = if cfg.twilio.account_sid.is_empty() {
            (outbox.clone(), outbox.clone())
        } else {
            let t: Arc<dyn Provider> = Arc::new(twilio::Twilio::new(&cfg.twilio)?);
            (t.clone(), t)
        };
        let email: Arc<dyn Provider> = match &cfg.smtp.url {
            Some(url) if !url.is_empty() => Arc::new(smtp::Smtp::new(url, &cfg.smtp.from)?),
            _ => outbox,
        };
        Ok(Channels { sms, email, voice })
    }

    /// Asks every configured provider whether it would work — the Twilio account and each
    /// sender number, the SMTP login — without sending anything (`mimamori check --live`,
    /// start-up). Each problem in words; empty when all is well or nothing is configured.
    pub async fn live_check(cfg: &Config) -> Vec<String> {
        let mut problems = Vec::new();
        if !cfg.twilio.account_sid.is_empty() {
            match twilio::Twilio::new(&cfg.twilio) {
                Err(e) => problems.push(e),
                Ok(t) => {
                    let mut senders: Vec<twilio::Sender<'_>> = Vec::new();
                    for n in &cfg.twilio.sms_from {
                        senders.push(twilio::Sender {
                            number: n,
                            sms: true,
                            voice: cfg.twilio.voice_from.is_empty(),
                        });
                    }
                    for n in &cfg.twilio.voice_from {
                        match senders.iter_mut().find(|s| s.number == n) {
                            Some(s) => s.voice = true,
                            None => senders.push(twilio::Sender {
                                number: n,
                                sms: false,
                                voice: true,
                            }),
                        }
                    }
                    problems.extend(t.check_account(&senders).await);
                }
            }
        }
        if let Some(url) = cfg.smtp.url.as_deref().filter(|u| !u.is_empty()) {
            match smtp::Smtp::new(url, &cfg.smtp.from) {
                Err(e) => problems.push(e),
                Ok(m) => {
                    if let Err(e) = m.check().await {
                        problems.push(e);
                    }
                }
            }
        }
        problems
    }

    /// Every channel through one provider (tests, benchmarks).
    pub fn all(p: Arc<dyn Provider>) -> Channels {
        Channels {
            sms: p.clone(),
            email: p.clone(),
            voice: p,
        }
    }

    pub fn for_channel(&self, channel: &str) -> &dyn Provider {
        match channel {
            "email" => self.email.as_ref(),
            "voice" => self.voice.as_ref(),
            _ => self.sms.as_ref(),
        }
    }
}

/// Counts UCS-2 SMS segments: 70 characters fit in one, 67 per segment when split.
/// (Bodies that are pure GSM-7 would fit more; we count every body as UCS-2, which is what a
/// Japanese text is.)
pub fn ucs2_segments(text: &str) -> usize {
    let units = text.encode_utf16().count();
    if units <= 70 { 1 } else { units.div_ceil(67) }
}

#[cfg(test)]
mod tests {
    use super::ucs2_segments;

    #[test]
    fn segments() {
        assert_eq!(ucs2_segments(&"あ".repeat(70)), 1);
        assert_eq!(ucs2_segments(&"あ".repeat(71)), 2);
        assert_eq!(ucs2_segments(&"あ".repeat(134)), 2);
        assert_eq!(ucs2_segments(&"あ".repeat(135)), 3);
    }
}
