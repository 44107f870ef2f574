//! The dispatcher: claim due check-ins, send each through the provider, record the attempt.
use std::sync::Arc;

use chrono::Duration;
use futures::StreamExt;
use mimamori_core::{
    db::now,
    provider::{OutboundMessage, SendError},
    store::checkins::{self, DueCheckin},
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

/// How many sends run at once within a batch.
const CONCURRENCY: usize = 16;

/// Runs passes until shutdown; a pass that found a full batch is followed at once by the next.
pub async fn run(deps: Arc<Deps>, mut shutdown: Shutdown) {
    let interval = std::time::Duration::from_millis(deps.config.workers.dispatch_interval_ms);
    loop {
        let busy = match pass(&deps).await {
            Ok(p) => p.sent + p.retried + p.failed >= deps.config.workers.batch_size as usize,
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

/// One pass: close overdue check-ins as missed, then claim and send one batch.
pub async fn pass(deps: &Deps) -> mimamori_core::Result<Pass> {
    let t = now();
    let mut out = Pass {
        missed: checkins::close_overdue(&deps.db, t).await?,
        ..Pass::default()
    };
    if out.missed > 0 {
        tracing::info!(missed = out.missed, "check-ins closed as missed");
    }
    let lease = Duration::seconds(deps.config.workers.claim_lease_secs);
    let due = checkins::claim_due(&deps.db, t, lease, deps.config.workers.batch_size).await?;
    let results: Vec<_> = futures::stream::iter(due)
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

#[tracing::instrument(skip_all, fields(checkin_id = c.id, person_id = c.person_id))]
async fn send_one(deps: &Deps, c: DueCheckin) -> mimamori_core::Result<Outcome> {
    let key = checkins::attempt_key(c.id, c.attempts);
    let provider = deps.provider.name();
    let msg = match message(deps, &c, &key) {
        Ok(m) => m,
        Err(reason) => {
            checkins::begin_attempt(&deps.db, c.id, &key, &c.channel, provider).await?;
            let ended =
                checkins::mark_failed(&deps.db, c.id, &key, reason, true, 1, Duration::zero())
                    .await?;
            debug_assert!(ended);
            tracing::warn!(reason, "check-in cannot be sent");
            return Ok(Outcome::Failed);
        }
    };
    if let Some(provider_id) =
        checkins::begin_attempt(&deps.db, c.id, &key, msg.channel, provider).await?
    {
        // This attempt already went out before a crash; record it, do not send again.
        checkins::mark_sent(&deps.db, c.id, &key, &provider_id).await?;
        return Ok(Outcome::Sent);
    }
    match deps.provider.send(&msg).await {
        Ok(provider_id) => {
            checkins::mark_sent(&deps.db, c.id, &key, &provider_id).await?;
            tracing::info!(provider, "check-in sent");
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
            tracing::warn!(permanent, ended, "send failed");
            Ok(if ended {
                Outcome::Failed
            } else {
                Outcome::Retry
            })
        }
    }
}

/// The outbound message of a check-in. Voice calls come with the check-in engine; until
/// then a voice person gets the SMS link.
fn message(deps: &Deps, c: &DueCheckin, key: &str) -> Result<OutboundMessage, &'static str> {
    let ttl = Duration::hours(deps.config.checkin.link_ttl_hours);
    let expires = c.deadline_at.max(now() + ttl).timestamp();
    let token = deps.signer.sign(c.id, expires);
    let link = format!("{}/c/{token}", deps.config.public_url.trim_end_matches('/'));
    let ja = c.language != "en";
    match c.channel.as_str() {
        "email" => {
            let to = c.email.clone().ok_or("no e-mail address")?;
            let (subject, body) = if ja {
                (
                    format!("【{}】本日の健康観察のお願い", c.health_centre_name),
                    format!(
                        "本日の体温と体調を次のリンクから入力してください。\n{link}\n\n息苦しさなど急な症状があるときは、回答を待たずに{}（{}）へお電話ください。\n",
                        c.health_centre_name, c.health_centre_phone
                    ),
                )
            } else {
                (
                    format!("[{}] Your daily health check", c.health_centre_name),
                    format!(
                        "Please enter today's temperature and symptoms here:\n{link}\n\nIf you suddenly feel worse, do not wait: call {} at {}.\n",
                        c.health_centre_name, c.health_centre_phone
                    ),
                )
            };
            Ok(OutboundMessage {
                channel: "email",
                to,
                subject: Some(subject),
                body,
                idempotency_key: key.into(),
            })
        }
        _ => {
            let to = c.phone.clone().ok_or("no phone number")?;
            let body = if ja {
                format!(
                    "{}です。本日の健康観察をお願いします {link}",
                    c.health_centre_name
                )
            } else {
                format!(
                    "{}: please send today's health check {link}",
                    c.health_centre_name
                )
            };
            Ok(OutboundMessage {
                channel: "sms",
                to,
                subject: None,
                body,
                idempotency_key: key.into(),
            })
        }
    }
}
