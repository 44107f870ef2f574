//! Channel providers: where an SMS, e-mail or call actually goes. The dev `outbox` stores
//! messages in the database for the Outbox console page; real providers come with the
//! check-in engine.
use std::{future::Future, pin::Pin};

use crate::{Db, store::outbox};

#[derive(Debug, Clone)]
pub struct OutboundMessage {
    pub channel: &'static str,
    pub to: String,
    pub subject: Option<String>,
    pub body: String,
    /// Same key, same message: a provider must not send it twice.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Will never succeed (invalid number, opted out): end the check-in.
    Permanent(String),
    /// May succeed later (rate limit, provider down, timeout): retry with back-off.
    Transient(String),
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<String, SendError>> + Send + 'a>>;

pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;
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
            outbox::put(
                &self.db,
                m.channel,
                &m.to,
                m.subject.as_deref(),
                &m.body,
                &m.idempotency_key,
            )
            .await
            .map(|id| format!("OB{id}"))
            .map_err(|e| SendError::Transient(e.to_string()))
        })
    }
}

/// Counts UCS-2 SMS segments: 70 characters fit in one, 67 per segment when split.
pub fn ucs2_segments(text: &str) -> usize {
    let units = text.encode_utf16().count();
    if units <= 70 { 1 } else { units.div_ceil(67) }
}
