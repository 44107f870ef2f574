//! The dispatcher: claim due check-ins (and unanswered ones due a reminder), send each
//! through its channel's provider, record the attempt; close overdue ones as missed.
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use mimamori_core::{
    config::Config,
    db::now,
    provider::{OutboundMessage, SendError, smtp::escape},
    store::{
        checkins::{self, DueCheckin},
        escalations,
    },
    token::LinkSigner,
};

use crate::{Deps, Shutdown};

/// What one dispatcher pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub missed: u64,
}

impl Pass {
    fn handled(&self) -> usize {
        self.sent + self.retried + self.failed
    }
}

/// How many sends run at once within a batch.
const CONCURRENCY: usize = 32;

/// Runs passes until shutdown; a pass that found a full batch is followed at once by the next.
pub async fn run(deps: Arc<Deps>, mut shutdown: Shutdown) {
    let interval = std::time::Duration::from_millis(deps.config.workers.dispatch_interval_ms);
    loop {
        let busy = match pass(&deps).await {
            Ok(p) => p.handled() >= deps.config.workers.batch_size as usize,
            Err(e) => {
                tracing::error!(error = %e, "dispatcher pass failed");
                false
            }
        };
        if *shutdown.borrow() {
            break;
        }
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => break,
            }
        }
    }
    tracing::info!("dispatcher stopped");
}

/// One pass: close overdue check-ins as missed, then claim and send one batch of due
/// check-ins and one of reminders.
pub async fn pass(deps: &Deps) -> mimamori_core::Result<Pass> {
    let t = now();
    let cfg = &deps.config;
    let mut out = Pass {
        missed: checkins::close_overdue(&deps.db, t).await?,
        ..Pass::default()
    };
    if out.missed > 0 {
        tracing::info!(missed = out.missed, "check-ins closed as missed");
    }
    let lease = Duration::seconds(cfg.workers.claim_lease_secs);
    let mut batch = checkins::claim_due(&deps.db, t, lease, cfg.workers.batch_size).await?;
    if cfg.checkin.reminder_after_minutes > 0 && cfg.checkin.max_reminders > 0 {
        let room = cfg.workers.batch_size - batch.len() as i64;
        if room > 0 {
            let after = Duration::minutes(cfg.checkin.reminder_after_minutes);
            batch.extend(
                checkins::claim_reminders(&deps.db, t, after, cfg.checkin.max_reminders, room)
                    .await?,
            );
        }
    }
    let results: Vec<_> = futures::stream::iter(batch)
        .map(|c| async move { send_one(deps, c).await })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for r in results {
        match r {
            Ok(Outcome::Sent) => out.sent += 1,
            Ok(Outcome::Retry) => out.retried += 1,
            Ok(Outcome::Failed) => out.failed += 1,
            Err(e) => tracing::error!(error = %e, "recording a send failed"),
        }
    }
    Ok(out)
}

enum Outcome {
    Sent,
    Retry,
    Failed,
}

/// The channel of this send: the person's own, or for the last reminder their fallback.
fn channel_of(deps: &Deps, c: &DueCheckin) -> String {
    let last_reminder = c.reminders > 0 && c.reminders >= deps.config.checkin.max_reminders;
    match (&c.fallback_channel, last_reminder) {
        (Some(f), true) => f.clone(),
        _ => c.channel.clone(),
    }
}

#[tracing::instrument(skip_all, fields(checkin_id = c.id, person_id = c.person_id, reminder = c.reminders))]
async fn send_one(deps: &Deps, c: DueCheckin) -> mimamori_core::Result<Outcome> {
    let key = checkins::attempt_key(c.id, c.reminders, c.attempts);
    let channel = channel_of(deps, &c);
    let provider = deps.channels.for_channel(&channel);
    let kind = match (c.reminders, channel.as_str()) {
        (_, "voice") => "call",
        (0, _) => "initial",
        _ => "reminder",
    };
    let msg = match message(&deps.config, &deps.signer, &c, &channel, &key, now()) {
        Ok(m) => m,
        Err(reason) => {
            checkins::begin_attempt(&deps.db, c.id, &key, &channel, provider.name(), kind).await?;
            checkins::mark_failed(&deps.db, c.id, &key, reason, true, 1, Duration::zero()).await?;
            escalations::open(&deps.db, c.person_id, "unreachable", "high").await?;
            tracing::warn!(reason, "check-in cannot be sent");
            return Ok(Outcome::Failed);
        }
    };
    if let Some(provider_id) =
        checkins::begin_attempt(&deps.db, c.id, &key, &channel, provider.name(), kind).await?
    {
        // This attempt already went out before a crash; record it, do not send again.
        checkins::mark_sent(&deps.db, c.id, &key, &provider_id).await?;
        return Ok(Outcome::Sent);
    }
    match provider.send(&msg).await {
        Ok(provider_id) => {
            checkins::mark_sent(&deps.db, c.id, &key, &provider_id).await?;
            tracing::info!(provider = provider.name(), channel, "check-in sent");
            Ok(Outcome::Sent)
        }
        Err(err) => {
            let (permanent, reason) = match &err {
                SendError::Permanent(r) => (true, r.as_str()),
                SendError::Transient(r) => (false, r.as_str()),
            };
            let cfg = &deps.config.checkin;
            let ended = checkins::mark_failed(
                &deps.db,
                c.id,
                &key,
                reason,
                permanent,
                cfg.max_send_attempts,
                Duration::seconds(cfg.retry_backoff_secs),
            )
            .await?;
            if ended {
                // Nobody is lost silently: a person we could not reach goes to the staff.
                escalations::open(&deps.db, c.person_id, "unreachable", "high").await?;
            }
            tracing::warn!(permanent, ended, reason, "send failed");
            Ok(if ended {
                Outcome::Failed
            } else {
                Outcome::Retry
            })
        }
    }
}

/// The outbound message of a check-in on `channel`: an SMS or e-mail with the signed link,
/// or a call whose TwiML we serve.
pub fn message(
    config: &Config,
    signer: &LinkSigner,
    c: &DueCheckin,
    channel: &str,
    key: &str,
    at: DateTime<Utc>,
) -> Result<OutboundMessage, &'static str> {
    let ttl = Duration::hours(config.checkin.link_ttl_hours);
    let expires = c.deadline_at.max(at + ttl).timestamp();
    let token = signer.sign(c.id, expires);
    let base = config.public_url.trim_end_matches('/');
    let link = format!("{base}/c/{token}");
    let ja = c.language != "en";
    let centre = &c.health_centre_name;
    let phone = &c.health_centre_phone;
    match channel {
        "email" => {
            let to = c.email.clone().ok_or("no e-mail address")?;
            let (subject, text, lead, urgent) = if ja {
                (
                    format!("【{centre}】本日の健康観察のお願い"),
                    format!(
                        "本日の体温と体調を次のリンクから入力してください。\n{link}\n\n息苦しさなど急な症状があるときは、回答を待たずに{centre}（{phone}）へお電話ください。\n"
                    ),
                    "本日の体温と体調を入力してください。",
                    format!(
                        "息苦しさなど急な症状があるときは、回答を待たずに{centre}（{phone}）へお電話ください。"
                    ),
                )
            } else {
                (
                    format!("[{centre}] Your daily health check"),
                    format!(
                        "Please enter today's temperature and symptoms here:\n{link}\n\nIf you suddenly feel worse, do not wait: call {centre} at {phone}.\n"
                    ),
                    "Please enter today's temperature and symptoms.",
                    format!("If you suddenly feel worse, do not wait: call {centre} at {phone}."),
                )
            };
            let button = if ja {
                "健康観察を入力する"
            } else {
                "Open the health check"
            };
            let html = format!(
                "<!doctype html><html lang=\"{lang}\"><body style=\"font-family:sans-serif;font-size:16px;line-height:1.6\">\
                 <p>{lead}</p><p><a href=\"{href}\" style=\"display:inline-block;padding:12px 20px;background:#0b57d0;color:#fff;text-decoration:none;border-radius:6px\">{button}</a></p>\
                 <p style=\"color:#555\">{href}</p><p><strong>{urgent}</strong></p></body></html>",
                lang = if ja { "ja" } else { "en" },
                lead = escape(lead),
                href = escape(&link),
                button = escape(button),
                urgent = escape(&urgent),
            );
            Ok(OutboundMessage {
                channel: "email",
                to,
                subject: Some(subject),
                body: text,
                html: Some(html),
                url: None,
                status_callback: None,
                idempotency_key: key.into(),
            })
        }
        "voice" => {
            let to = c.phone.clone().ok_or("no phone number")?;
            Ok(OutboundMessage {
                channel: "voice",
                to,
                subject: None,
                body: if ja {
                    "自動音声電話".into()
                } else {
                    "Automated call".into()
                },
                html: None,
                url: Some(format!("{base}/hooks/twilio/voice?t={token}")),
                status_callback: Some(format!("{base}/hooks/twilio/status/call")),
                idempotency_key: key.into(),
            })
        }
        _ => {
            let to = c.phone.clone().ok_or("no phone number")?;
            let body = match (ja, c.reminders > 0) {
                (true, false) => format!("{centre}です。本日の健康観察をお願いします {link}"),
                (true, true) => {
                    format!("{centre}です。本日の健康観察が未回答です。ご回答をお願いします {link}")
                }
                (false, false) => format!("{centre}: please send today's health check {link}"),
                (false, true) => format!("{centre}: reminder, health check not yet sent {link}"),
            };
            Ok(OutboundMessage {
                channel: "sms",
                to,
                subject: None,
                body,
                html: None,
                url: None,
                status_callback: Some(format!("{base}/hooks/twilio/status/message")),
                idempotency_key: key.into(),
            })
        }
    }
}
