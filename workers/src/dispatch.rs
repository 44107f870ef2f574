//! The dispatcher: claim due check-ins (and unanswered ones due a reminder), send each
//! through its channel's provider, record the attempt; close overdue ones as missed.
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use mimamori_core::{
    config::Config,
    db::now,
    domain::Lang,
    i18n::{Arg, tr, tr_args},
    provider::{Audience, OutboundMessage, SendError, smtp::escape},
    store::{
        alarms,
        checkins::{self, DueCheckin, Failed, Lane},
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
    /// Put back because of an operator fault (alarm raised), not counted as attempts.
    pub held: usize,
    pub missed: u64,
}

impl Pass {
    fn handled(&self) -> usize {
        self.sent + self.retried + self.failed
    }
}

/// How many sends run at once within a batch.
const CONCURRENCY: usize = 32;

/// Passes kept in flight while there is work: the next batch is claimed and recorded while
/// the previous one's paced sends are still going out, so the sender numbers never idle
/// between batches (one pass at a time reached 0.83 of the configured SMS rate). The claims
/// keep the passes' batches apart.
const PASSES_IN_FLIGHT: usize = 2;

/// Told once by a pass with a full batch when half its sends are done: time to prepare the
/// next batch.
type Halfway = tokio::sync::mpsc::UnboundedSender<()>;

/// Runs the dispatcher until shutdown: one loop per lane (calls; SMS and e-mail), so that
/// a morning of texts does not leave the call numbers idle, nor the other way round (one
/// loop for both reached the configured SMS rate only while no calls were due).
pub async fn run(deps: Arc<Deps>, shutdown: Shutdown) {
    let lanes: Vec<_> = Lane::ALL
        .into_iter()
        .map(|lane| tokio::spawn(run_lane(deps.clone(), shutdown.clone(), lane)))
        .collect();
    for lane in lanes {
        if let Err(e) = lane.await {
            tracing::error!(error = %e, "dispatcher lane ended abnormally");
        }
    }
    tracing::info!("dispatcher stopped");
}

/// One lane's passes until shutdown. While batches come full, the next pass starts when the
/// running one is halfway through its sends, so its claim and bookkeeping happen while the
/// numbers are still busy and they never idle between batches (starting it only at the end,
/// or two at once, left a gap of claim + record time every batch: 0.94 of the SMS rate).
async fn run_lane(deps: Arc<Deps>, mut shutdown: Shutdown, lane: Lane) {
    use futures::stream::FuturesUnordered;
    let interval = std::time::Duration::from_millis(deps.config.workers.dispatch_interval_ms);
    let (halfway, mut halfway_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let one = |deps: Arc<Deps>, halfway: Halfway| async move {
        pass_in(&deps, Some(lane), Some(halfway)).await
    };
    let mut running = FuturesUnordered::new();
    running.push(one(deps.clone(), halfway.clone()));
    loop {
        tokio::select! {
            Some(()) = halfway_rx.recv() => {
                if !*shutdown.borrow() && running.len() < PASSES_IN_FLIGHT {
                    running.push(one(deps.clone(), halfway.clone()));
                }
            }
            Some(result) = running.next() => {
                let busy = match result {
                    Ok(p) => p.handled() >= deps.config.workers.batch_size as usize,
                    Err(e) => {
                        tracing::error!(error = %e, "dispatcher pass failed");
                        false
                    }
                };
                if *shutdown.borrow() {
                    break;
                }
                if running.is_empty() {
                    if !busy {
                        tokio::select! {
                            _ = tokio::time::sleep(interval) => {}
                            _ = shutdown.changed() => break,
                        }
                    }
                    running.push(one(deps.clone(), halfway.clone()));
                }
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    // Passes in flight finish their batch (their sends are recorded) before the worker stops.
    while running.next().await.is_some() {}
}

/// Staff alerts in their own lane: pending notifications of urgent escalations leave within
/// a second of being queued, never behind a batch of paced patient sends (which runs in
/// [`run`]; the provider serves these first, see `RateLimiter::acquire`).
///
/// The worker sends as soon as alerts are queued — told by PostgreSQL's announcement
/// (`escalations::listen_for_alerts`) or, on SQLite, by the writer that committed them —
/// and looks every `workers.alert_interval_ms` besides, in case an announcement was missed.
pub async fn run_alerts(deps: Arc<Deps>, mut shutdown: Shutdown) {
    let interval = std::time::Duration::from_millis(deps.config.workers.alert_interval_ms);
    let listener = tokio::spawn(escalations::listen_for_alerts(deps.db.clone()));
    loop {
        if let Err(e) = notify_staff(&deps).await {
            tracing::error!(error = %e, "staff alerts failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = escalations::alerts_queued() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
    listener.abort();
}

/// Every minute: purges the link form's stale drafts, and asks the provider what became of attempts whose report never arrived (our
/// webhook refused it under load, or it was lost on the way — Twilio does not send a status
/// callback again) and applies the answer as if the report had come, through the same
/// `delivery::report` (so a late real report is a duplicate). No outcome stays unknown.
pub async fn run_reconcile(deps: Arc<Deps>, mut shutdown: Shutdown) {
    let interval =
        std::time::Duration::from_secs(deps.config.workers.reconcile_interval_secs.max(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        // Drafts of the link form whose check-in has closed, or untouched for two days.
        match mimamori_core::store::drafts::purge(&deps.db, now() - Duration::days(2)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "answer drafts of closed check-ins deleted"),
            Err(e) => tracing::error!(error = %e, "purging answer drafts failed"),
        }
        match reconcile(&deps).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                applied = n,
                "outcomes whose report never arrived, asked of the provider"
            ),
            Err(e) => tracing::error!(error = %e, "reconciliation failed"),
        }
    }
}

/// One reconciliation pass; returns how many outcomes it applied.
pub async fn reconcile(deps: &Deps) -> mimamori_core::Result<usize> {
    let before = now() - Duration::seconds(deps.config.workers.reconcile_after_secs);
    let open = checkins::open_attempts(&deps.db, before, 500).await?;
    let policy = mimamori_core::delivery::Policy {
        max_attempts: deps.config.checkin.max_send_attempts,
        backoff: Duration::seconds(deps.config.checkin.retry_backoff_secs),
    };
    let mut applied = 0;
    for a in open {
        let provider = deps.channels.for_channel(&a.channel);
        if provider.name() != a.provider {
            continue;
        }
        let looked = match provider.lookup(&a.channel, &a.provider_id).await {
            Ok(Some(l)) => l,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(attempt = %a.key, error = %e, "reconciliation lookup failed");
                continue;
            }
        };
        let report = if a.channel == "voice" {
            mimamori_core::delivery::Report::Call {
                sid: &a.provider_id,
                status: &looked.status,
            }
        } else {
            mimamori_core::delivery::Report::Message {
                sid: &a.provider_id,
                status: &looked.status,
                error_code: looked.error_code.as_deref(),
            }
        };
        if !report.is_final() {
            checkins::touch_attempt(&deps.db, &a.key, now()).await?;
            continue;
        }
        if let mimamori_core::delivery::Handled::Applied(_) =
            mimamori_core::delivery::report(&deps.db, policy, Some(&a.key), report).await?
        {
            applied += 1;
        }
    }
    Ok(applied)
}

/// One pass: close overdue check-ins as missed, then claim one batch of due check-ins and
/// reminders, record their attempts (one transaction), send them concurrently, and record
/// the results (one transaction; failures one by one).
pub async fn pass(deps: &Deps) -> mimamori_core::Result<Pass> {
    pass_in(deps, None, None).await
}

/// [`pass`] for one lane (`None`: both). Overdue check-ins are closed by the text lane's
/// passes (and by `None`), once per pass.
async fn pass_in(
    deps: &Deps,
    lane: Option<Lane>,
    halfway: Option<Halfway>,
) -> mimamori_core::Result<Pass> {
    let t = now();
    let cfg = &deps.config;
    let (missed, escalated) = if lane == Some(Lane::Voice) {
        (Vec::new(), Vec::new())
    } else {
        checkins::close_overdue(&deps.db, t, &deps.rules).await?
    };
    if !escalated.is_empty() {
        // A silent high-risk person's escalation may be urgent: its alerts leave now.
        escalations::wake_alerts(&deps.db);
    }
    let mut out = Pass {
        missed: missed.len() as u64,
        ..Pass::default()
    };
    if !missed.is_empty() {
        tracing::info!(
            missed = missed.len(),
            non_reporting = escalated.len(),
            "check-ins closed as missed"
        );
    }
    let lease = Duration::seconds(cfg.workers.claim_lease_secs);
    let mut batch =
        checkins::claim_due_in(&deps.db, lane, t, lease, cfg.workers.batch_size).await?;
    // Reminders, by each flow's policy (falling back to the `[checkin]` configuration).
    for monitoring_type in ["patient", "contact"] {
        let (after, max) = reminder_policy(deps, monitoring_type);
        let room = cfg.workers.batch_size - batch.len() as i64;
        if after > 0 && max > 0 && room > 0 {
            let after = Duration::minutes(after);
            batch.extend(
                checkins::claim_reminders_in(&deps.db, lane, monitoring_type, t, after, max, room)
                    .await?,
            );
        }
    }
    if batch.is_empty() {
        return Ok(out);
    }

    let mut work = Vec::with_capacity(batch.len());
    for c in batch {
        let channel = channel_of(deps, &c);
        let key = checkins::attempt_key(c.id, c.reminders, &channel, c.attempts);
        let kind = match (c.reminders, channel.as_str()) {
            (_, "voice") => "call",
            (0, _) => "initial",
            _ => "reminder",
        };
        let msg = message(&deps.config, &deps.signer, &c, &channel, &key, t);
        work.push(Work {
            c,
            channel,
            key,
            kind,
            msg,
        });
    }
    let attempts: Vec<checkins::NewAttempt> = work
        .iter()
        .map(|w| checkins::NewAttempt {
            checkin_id: w.c.id,
            key: &w.key,
            channel: &w.channel,
            provider: deps.channels.for_channel(&w.channel).name(),
            kind: w.kind,
            claim: Some(&w.c.claim),
        })
        .collect();
    let already = checkins::begin_attempts(&deps.db, &attempts).await?;
    drop(attempts);

    let ids: Vec<i64> = work.iter().map(|w| w.c.id).collect();
    let claims: Vec<String> = checkins::claims_of(work.iter().map(|w| w.c.claim.as_str()))
        .into_iter()
        .map(String::from)
        .collect();
    let full = ids.len() >= cfg.workers.batch_size as usize;
    let half = ids.len() / 2;
    let mut done = 0usize;
    let sending = futures::stream::iter(work)
        .map(|w| {
            let previous = already.get(&w.key).cloned();
            async move {
                let r = match (&w.msg, previous) {
                    // This attempt already went out before a crash: record it, do not resend.
                    (_, Some(id)) => Ok(id),
                    (Ok(m), None) => deps.channels.for_channel(&w.channel).send(m).await,
                    (Err(reason), None) => Err(SendError::Permanent((*reason).to_string())),
                };
                (w, r)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .inspect(|_| {
            done += 1;
            if full
                && done == half.max(1)
                && let Some(h) = &halfway
            {
                let _ = h.send(());
            }
        })
        .collect::<Vec<(Work, Result<String, SendError>)>>();
    // A paced batch can outlast the claim's lease: renew it every third of the lease while
    // sending, so no other worker takes (and sends) what this one still holds.
    tokio::pin!(sending);
    let every = std::time::Duration::from_secs((cfg.workers.claim_lease_secs / 3).max(1) as u64);
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let results = loop {
        tokio::select! {
            r = &mut sending => break r,
            _ = renew.tick() => {
                let claims: Vec<&str> = claims.iter().map(String::as_str).collect();
                if let Err(e) = checkins::renew_claims(&deps.db, &ids, &claims, mimamori_core::db::now()).await {
                    tracing::error!(error = %e, "renewing the batch's claim failed");
                }
            }
        }
    };

    let mut sent = Vec::new();
    let mut reached = std::collections::BTreeSet::new();
    for (w, r) in results {
        let provider = deps.channels.for_channel(&w.channel).name();
        match r {
            Ok(provider_id) => {
                reached.insert(provider);
                sent.push(checkins::Sent {
                    checkin_id: w.c.id,
                    claim: w.c.claim,
                    key: w.key,
                    provider_id,
                });
            }
            Err(SendError::Operator(reason)) => {
                out.held += 1;
                hold_for_operator(deps, &w, provider, &reason, t).await;
            }
            Err(err) => match record_failure(deps, &w, &err).await {
                Ok(Failed::Ended) => out.failed += 1,
                Ok(_) => out.retried += 1,
                Err(e) => {
                    tracing::error!(error = %e, checkin_id = w.c.id, "recording a failed send failed")
                }
            },
        }
    }
    for provider in reached {
        if alarms::clear(&deps.db, provider).await? {
            tracing::warn!(
                provider,
                "operator alarm cleared: the provider accepts sends again"
            );
        }
    }
    out.sent = sent.len();
    checkins::mark_sent_many(&deps.db, &sent).await?;
    if out.sent + out.failed + out.retried > 0 {
        tracing::info!(
            sent = out.sent,
            retried = out.retried,
            failed = out.failed,
            held = out.held,
            "dispatcher batch"
        );
    }
    Ok(out)
}

/// Sends pending staff notifications (urgent escalations) by SMS or e-mail: ids and a link
/// to the console, never names or answers.
async fn notify_staff(deps: &Deps) -> mimamori_core::Result<()> {
    let pending = escalations::pending_notifications(&deps.db, 100).await?;
    for n in pending {
        let base = deps.config.public_url.trim_end_matches('/');
        let link = format!("{base}/persons/{}", n.person_id);
        let (channel, to) = match (n.channel.as_str(), &n.phone, &n.email) {
            ("sms", Some(p), _) => ("sms", p.clone()),
            (_, _, Some(e)) => ("email", e.clone()),
            (_, Some(p), _) => ("sms", p.clone()),
            _ => {
                escalations::notification_result(&deps.db, n.id, Some("no contact")).await?;
                continue;
            }
        };
        // Staff alerts go out in both languages (the on-duty nurse's language is not known).
        let id = n.person_id.to_string();
        let both = |key: &str| {
            let args = [
                ("id", Arg::from(&id)),
                ("reason", Arg::from(n.reason.as_str())),
                ("link", Arg::from(&link)),
            ];
            format!(
                "{} / {}",
                tr_args(Lang::Ja, key, &args),
                tr_args(Lang::En, key, &args)
            )
        };
        let body = both("staff-alert-text");
        let msg = OutboundMessage {
            channel,
            to,
            subject: Some(both("staff-alert-subject")),
            body,
            html: None,
            url: None,
            status_callback: None,
            idempotency_key: format!("notify-{}-try-{}", n.id, n.attempts),
            priority: true,
            audience: Audience::Staff(n.staff_id),
        };
        let r = deps.channels.for_channel(channel).send(&msg).await;
        let err = r.as_ref().err().map(|e| e.to_string());
        escalations::notification_result(&deps.db, n.id, err.as_deref()).await?;
        tracing::info!(
            notification_id = n.id,
            person_id = n.person_id,
            ok = err.is_none(),
            "staff notified"
        );
    }
    Ok(())
}

struct Work {
    c: DueCheckin,
    channel: String,
    key: String,
    kind: &'static str,
    msg: Result<OutboundMessage, &'static str>,
}

/// (minutes after sending, how many) of the flow serving `monitoring_type`.
fn reminder_policy(deps: &Deps, monitoring_type: &str) -> (i64, i32) {
    let p = &deps.flows.for_monitoring(monitoring_type).policy;
    (
        p.reminder_after_minutes
            .unwrap_or(deps.config.checkin.reminder_after_minutes),
        p.max_reminders.unwrap_or(deps.config.checkin.max_reminders),
    )
}

/// The channel of this send: the person's own; their fallback once the primary channel has
/// failed (busy, no answer, undeliverable, invalid) or for the last reminder.
fn channel_of(deps: &Deps, c: &DueCheckin) -> String {
    let (_, max) = reminder_policy(deps, &c.monitoring_type);
    let last_reminder = c.reminders > 0 && c.reminders >= max;
    match (&c.fallback_channel, last_reminder || c.on_fallback) {
        (Some(f), true) => f.clone(),
        _ => c.channel.clone(),
    }
}

/// A send refused for a fault of our own set-up: the check-in goes back (no attempt counted,
/// no patient escalation) and one operator alarm is raised (logged at error when new).
async fn hold_for_operator(deps: &Deps, w: &Work, provider: &str, reason: &str, t: DateTime<Utc>) {
    let retry_at = t + Duration::seconds(deps.config.checkin.operator_retry_secs);
    if let Err(e) = checkins::put_back(&deps.db, &w.key, &w.c.claim, reason, retry_at).await {
        tracing::error!(error = %e, checkin_id = w.c.id, "putting a held check-in back failed");
    }
    let code = reason.split("code ").nth(1).unwrap_or(reason).to_string();
    match alarms::raise(&deps.db, provider, &code, reason).await {
        Ok(true) => tracing::error!(
            provider,
            reason,
            "OPERATOR ALARM: the provider refuses our credentials or account; sending on it is \
             stopped and check-ins are held, not failed. Fix the configuration."
        ),
        Ok(false) => {}
        Err(e) => tracing::error!(error = %e, "raising the operator alarm failed"),
    }
}

/// Records a failed send: retried with back-off, moved to the fallback channel, or ended as
/// `failed` with an `unreachable` escalation — one transaction ([`checkins::fail_in_tx`]).
#[tracing::instrument(skip_all, fields(checkin_id = w.c.id, person_id = w.c.person_id))]
async fn record_failure(deps: &Deps, w: &Work, err: &SendError) -> mimamori_core::Result<Failed> {
    let (permanent, reason) = match err {
        SendError::Permanent(r) => (true, r.as_str()),
        SendError::Transient(r) | SendError::Operator(r) => (false, r.as_str()),
    };
    let cfg = &deps.config.checkin;
    let outcome = checkins::mark_failed(
        &deps.db,
        checkins::Failure {
            key: &w.key,
            channel: &w.channel,
            status: "failed",
            error: reason,
            permanent,
            max_attempts: cfg.max_send_attempts,
            backoff: Duration::seconds(cfg.retry_backoff_secs),
        },
    )
    .await?;
    tracing::warn!(permanent, ?outcome, reason, channel = %w.channel, "send failed");
    Ok(outcome)
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
    let lang = if c.language == "en" {
        Lang::En
    } else {
        Lang::Ja
    };
    // Whose check-in and which day: a family sharing one phone gets one message each.
    let who = mimamori_core::domain::short_name(&c.person_name);
    let day = c.local_date.format("%-m/%-d").to_string();
    let args = [
        ("centre", Arg::from(c.health_centre_name.as_str())),
        ("who", Arg::from(who)),
        ("day", Arg::from(&day)),
        ("link", Arg::from(&link)),
        ("phone", Arg::from(c.health_centre_phone.as_str())),
    ];
    match channel {
        "email" => {
            let to = c.email.clone().ok_or("no e-mail address")?;
            let subject = tr_args(lang, "checkin-email-subject", &args);
            let text = format!(
                "{}\n{link}\n\n{}\n",
                tr_args(lang, "checkin-email-text-lead", &args),
                tr_args(lang, "checkin-email-urgent", &args)
            );
            let lead = tr_args(lang, "checkin-email-lead", &args);
            let urgent = tr_args(lang, "checkin-email-urgent", &args);
            let button = tr(lang, "checkin-email-button");
            let html = format!(
                "<!doctype html><html lang=\"{lang}\"><body style=\"font-family:sans-serif;font-size:16px;line-height:1.6\">\
                 <p>{lead}</p><p><a href=\"{href}\" style=\"display:inline-block;padding:12px 20px;background:#0b57d0;color:#fff;text-decoration:none;border-radius:6px\">{button}</a></p>\
                 <p style=\"color:#555\">{href}</p><p><strong>{urgent}</strong></p></body></html>",
                lang = lang.as_str(),
                lead = escape(&lead),
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
                priority: false,
                audience: Audience::Person(c.person_id),
            })
        }
        "voice" => {
            let to = c.phone.clone().ok_or("no phone number")?;
            Ok(OutboundMessage {
                channel: "voice",
                to,
                subject: None,
                body: tr(lang, "checkin-call-label").into(),
                html: None,
                url: Some(format!("{base}/hooks/twilio/voice?t={token}")),
                status_callback: Some(format!("{base}/hooks/twilio/status/call?a={key}")),
                idempotency_key: key.into(),
                priority: false,
                audience: Audience::Person(c.person_id),
            })
        }
        _ => {
            let to = c.phone.clone().ok_or("no phone number")?;
            let text = if c.reminders > 0 {
                "checkin-sms-reminder"
            } else {
                "checkin-sms"
            };
            let body = tr_args(lang, text, &args);
            Ok(OutboundMessage {
                channel: "sms",
                to,
                subject: None,
                body,
                html: None,
                url: None,
                status_callback: Some(format!("{base}/hooks/twilio/status/message?a={key}")),
                idempotency_key: key.into(),
                priority: false,
                audience: Audience::Person(c.person_id),
            })
        }
    }
}
