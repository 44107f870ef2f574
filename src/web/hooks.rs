//! Twilio webhooks (`/hooks/twilio/…`). Every request's `X-Twilio-Signature` is checked
//! against the exact public URL and the sorted POST parameters before anything is read or
//! written; a bad or missing signature gets 403 and changes nothing. Duplicate deliveries
//! are recognised (`webhook_events`) and get the first answer again.
use axum::{
    Router,
    body::Bytes,
    extract::{FromRequest, Query, Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use chrono::NaiveDate;
use mimamori_core::{delivery, domain::Lang, signature, store::calls, voice};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{AppState, voicecall};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/hooks/twilio/voice", post(voice_start))
        .route("/hooks/twilio/voice/step", post(voice_step))
        .route("/hooks/twilio/voice/inbound", post(voice_inbound))
        .route("/hooks/twilio/voice/identify", post(voice_identify))
        .route("/hooks/twilio/status/call", post(call_status))
        .route("/hooks/twilio/status/message", post(message_status))
        .route("/hooks/twilio/sms", post(sms_inbound))
        .route("/hooks/twilio/login-code", post(login_code))
}

/// A webhook whose signature has been verified; its POST parameters.
pub struct Signed(Vec<(String, String)>);

impl Signed {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// The call this webhook is about.
    fn call_sid(&self) -> Option<String> {
        self.get("CallSid").map(str::to_string)
    }
}

/// A voice webhook without a CallSid is refused.
fn missing_call() -> Response {
    (StatusCode::BAD_REQUEST, "CallSid missing").into_response()
}

impl FromRequest<AppState> for Signed {
    type Rejection = Response;
    async fn from_request(req: Request, s: &AppState) -> Result<Self, Self::Rejection> {
        let forbidden = |why: &'static str| {
            tracing::warn!(why, "webhook refused");
            (StatusCode::FORBIDDEN, why).into_response()
        };
        let token = s.config.twilio.auth_token.expose_secret().to_string();
        if token.is_empty() {
            return Err(forbidden(
                "webhooks are disabled: twilio.auth_token is not configured",
            ));
        }
        let path_query = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let url = format!("{}{path_query}", s.base());
        let sig = req
            .headers()
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = Bytes::from_request(req, s).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                tracing::warn!("webhook refused: body over the limit");
                (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response()
            } else {
                forbidden("unreadable body")
            }
        })?;
        let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|_| forbidden("body is not form-encoded"))?;
        match sig {
            Some(sig) if signature::verify(&token, &url, &params, &sig) => Ok(Signed(params)),
            Some(_) => {
                // The URL the signature was checked against: a wrong `public_url` (or a proxy
                // rewriting the path) shows here. A signed check-in token (`t=`) is cut.
                let shown = match url.split_once("t=") {
                    Some((head, _)) => format!("{head}t=…"),
                    None => url.clone(),
                };
                tracing::warn!(checked_against = %shown, "webhook signature does not match");
                Err(forbidden("bad signature"))
            }
            None => Err(forbidden("missing X-Twilio-Signature")),
        }
    }
}

fn twiml(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// Runs `f` once per delivery `key`: the key is claimed first (atomically, under a unique
/// key), so two deliveries at the same moment cannot both take effect; a duplicate gets the
/// first delivery's answer once it is there. A failed `f` gives the claim up, so the
/// provider's retry is handled.
async fn once<F, Fut>(s: &AppState, key: &str, f: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<String, mimamori_core::Error>>,
{
    match calls::claim(&s.db, key).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!("duplicate webhook delivery");
            // The first delivery may still be working: wait for its answer (up to ~5 s).
            for _ in 0..100 {
                match calls::seen(&s.db, key).await {
                    Ok(Some(previous)) if !previous.is_empty() => return twiml(previous),
                    Ok(None) => break,
                    Ok(Some(_)) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                    Err(e) => {
                        tracing::error!(error = %e, "webhook dedupe lookup failed");
                        break;
                    }
                }
            }
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook dedupe claim failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    match f().await {
        Ok(body) => {
            if let Err(e) = calls::answered(&s.db, key, &body).await {
                tracing::error!(error = %e, "remembering a webhook failed");
            }
            twiml(body)
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook failed");
            if let Err(e) = calls::release(&s.db, key).await {
                tracing::error!(error = %e, "releasing a webhook claim failed");
            }
            // Twilio retries on 5xx; a fallback TwiML keeps the caller informed.
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

fn render(s: &AppState, step: &voicecall::Step, sid_action: &str) -> String {
    let p = voicecall::prompts(s, step.lang);
    let audio = format!("{}/voice-prompts/audio/{}", s.base(), step.lang.as_str());
    voice::twiml_paced(&step.turn, p, sid_action, &audio, step.pace)
}

fn step_action(s: &AppState, seq: u32) -> String {
    format!("{}/hooks/twilio/voice/step?n={seq}", s.base())
}

#[derive(Deserialize)]
struct StartQuery {
    t: String,
}

/// The provider fetched our TwiML for an outbound call: start the flow of the check-in in
/// the signed token.
async fn voice_start(
    State(s): State<AppState>,
    Query(q): Query<StartQuery>,
    form: Signed,
) -> Response {
    let Some(sid) = form.call_sid() else {
        return missing_call();
    };
    let checkin = match s.signer.verify(&q.t, chrono::Utc::now().timestamp()) {
        Ok(id) => id,
        Err(_) => {
            let p = voicecall::prompts(&s, Lang::Ja);
            return twiml(voice::say_and_hang_up(p, &[("nothing_today", vec![])]));
        }
    };
    let key = format!("voice:{sid}:start");
    // Answering-machine detection: a machine hears a short message and the call ends; its
    // `completed` report (check-in still open) then counts as not answered and is retried.
    let machine = form
        .get("AnsweredBy")
        .is_some_and(|a| a.starts_with("machine") || a == "fax");
    once(&s, &key, || async {
        if machine {
            let ctx = mimamori_core::store::checkins::link_context(&s.db, checkin).await?;
            let lang = if ctx.language == "en" {
                Lang::En
            } else {
                Lang::Ja
            };
            let p = voicecall::prompts(&s, lang);
            tracing::info!(
                checkin_id = checkin,
                "answering machine: message left, retried later"
            );
            return Ok(voice::say_and_hang_up(
                p,
                &[(
                    "machine",
                    vec![("centre", ctx.centre_name_for(lang).to_string())],
                )],
            ));
        }
        let step = voicecall::engine(&s)
            .start(&sid, checkin, true, None)
            .await?;
        Ok(render(&s, &step, &step_action(&s, step.seq)))
    })
    .await
}

#[derive(Deserialize)]
struct StepQuery {
    n: u32,
}

/// Keys pressed (or a timeout) on a call.
async fn voice_step(
    State(s): State<AppState>,
    Query(q): Query<StepQuery>,
    form: Signed,
) -> Response {
    let Some(sid) = form.call_sid() else {
        return missing_call();
    };
    let digits = keys_pressed(form.get("Digits"), form.get("FinishedOnKey"));
    let key = format!("voice:{sid}:{}", q.n);
    once(&s, &key, || async {
        match voicecall::engine(&s)
            .step(&sid, digits.as_deref(), None)
            .await
        {
            Ok(step) => Ok(render(&s, &step, &step_action(&s, step.seq))),
            // A step for a call we never started (or whose state is gone): end it politely
            // rather than answer 500, which the provider reads out as an application error.
            Err(mimamori_core::Error::NotFound(_)) => {
                tracing::warn!("voice step for an unknown call");
                let p = voicecall::prompts(&s, Lang::Ja);
                Ok(voice::say_and_hang_up(p, &[("nothing_today", vec![])]))
            }
            Err(e) => Err(e),
        }
    })
    .await
}

/// What the caller pressed. The provider leaves the finish key out of `Digits`: a lone `#`
/// arrives as an empty `Digits` with `FinishedOnKey=#` (skip), which is not silence.
fn keys_pressed(digits: Option<&str>, finished_on: Option<&str>) -> Option<String> {
    match (digits.filter(|d| !d.is_empty()), finished_on) {
        (Some(d), _) => Some(d.to_string()),
        (None, Some("#")) => Some("#".to_string()),
        (None, _) => None,
    }
}

/// Date-of-birth tries on the inbound line before the caller is asked to phone the centre.
const IDENTIFY_TRIES: u32 = 2;

/// The turn asking for the date of birth (`prompt`: first ask or retry), whose keys go to
/// `/voice/identify?try={try}`.
fn ask_dob(s: &AppState, prompt: &str, attempt: u32) -> String {
    let p = voicecall::prompts(s, Lang::Ja);
    let turn = voice::Turn {
        says: vec![voice::Utterance {
            id: prompt.into(),
            text: p.text(prompt, &[]),
        }],
        gather: Some(voice::GatherSpec {
            finish_on_hash: false,
            num_digits: Some(8),
        }),
        callback: false,
        completed: None,
        gave_up: false,
    };
    let action = format!("{}/hooks/twilio/voice/identify?try={attempt}", s.base());
    voice::twiml(&turn, p, &action, "")
}

/// A person phones the published number: identify them by caller id and date of birth.
async fn voice_inbound(State(s): State<AppState>, form: Signed) -> Response {
    let sid = form.get("CallSid").unwrap_or_default().to_string();
    let key = format!("voice:{sid}:inbound");
    once(&s, &key, || async { Ok(ask_dob(&s, "identify_dob", 1)) }).await
}

#[derive(Deserialize)]
struct IdentifyQuery {
    #[serde(rename = "try", default = "first_try")]
    attempt: u32,
}

fn first_try() -> u32 {
    1
}

/// The date of birth typed on the inbound line: the caller's open check-in starts; a wrong
/// or unknown date gets a second try; a known caller with nothing open hears so.
async fn voice_identify(
    State(s): State<AppState>,
    Query(q): Query<IdentifyQuery>,
    form: Signed,
) -> Response {
    let sid = form.get("CallSid").unwrap_or_default().to_string();
    let from = form.get("From").unwrap_or_default().to_string();
    let digits = form.get("Digits").unwrap_or_default().to_string();
    let key = format!("voice:{sid}:identify:{}", q.attempt);
    once(&s, &key, || async {
        let dob = NaiveDate::parse_from_str(&digits, "%Y%m%d").ok();
        let found = match dob {
            Some(d) => calls::identify(&s.db, &from, d).await?,
            None => None,
        };
        let known = match (found, dob) {
            (None, Some(d)) => calls::known_caller(&s.db, &from, d).await?,
            _ => false,
        };
        let p = voicecall::prompts(&s, Lang::Ja);
        match found {
            Some(checkin) => {
                let inbound = voice::CallState {
                    inbound: true,
                    ..Default::default()
                };
                let step = voicecall::engine(&s)
                    .start(&sid, checkin, true, Some(&inbound))
                    .await?;
                Ok(render(&s, &step, &step_action(&s, step.seq)))
            }
            None if known => {
                tracing::info!("inbound caller identified; nothing open today");
                Ok(voice::say_and_hang_up(p, &[("nothing_today", vec![])]))
            }
            None if q.attempt < IDENTIFY_TRIES => Ok(ask_dob(&s, "identify_retry", q.attempt + 1)),
            None => {
                tracing::info!("inbound caller not identified");
                Ok(voice::say_and_hang_up(p, &[("identify_failed", vec![])]))
            }
        }
    })
    .await
}

#[derive(Deserialize)]
struct AttemptQuery {
    /// Our key of the attempt, put in the status-callback URL before the request left.
    a: Option<String>,
}

/// A provider report (call or message status), applied by [`delivery::report`]: matched by
/// our attempt key, de-duplicated atomically in the transaction that does the work. A report
/// for no known attempt is answered 404 and not remembered.
async fn status_report(s: &AppState, a: Option<&str>, r: delivery::Report<'_>) -> Response {
    let cfg = &s.config.checkin;
    let policy = delivery::Policy {
        max_attempts: cfg.max_send_attempts,
        backoff: chrono::Duration::seconds(cfg.retry_backoff_secs),
    };
    match delivery::report(&s.db, policy, a, r).await {
        Ok(delivery::Handled::Unknown) => {
            tracing::warn!(attempt = a, "report for an unknown attempt");
            (StatusCode::NOT_FOUND, "unknown attempt").into_response()
        }
        Ok(h) => {
            if h == delivery::Handled::Duplicate {
                tracing::info!("duplicate webhook delivery");
            } else {
                tracing::info!(attempt = a, outcome = ?h, "provider report");
            }
            twiml("<Response/>".into())
        }
        Err(e) => {
            tracing::error!(error = %e, "provider report failed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
        }
    }
}

/// Call progress: busy, no-answer, failed or a completed call without an answer send the
/// check-in back for a retry, then to the fallback channel, then end it with an escalation.
async fn call_status(
    State(s): State<AppState>,
    Query(q): Query<AttemptQuery>,
    form: Signed,
) -> Response {
    let sid = form.get("CallSid").unwrap_or_default();
    let status = form.get("CallStatus").unwrap_or_default();
    status_report(&s, q.a.as_deref(), delivery::Report::Call { sid, status }).await
}

/// Message delivery status: `undelivered` / `failed` go the same way as a failed call (an
/// unreachable-number code at once).
async fn message_status(
    State(s): State<AppState>,
    Query(q): Query<AttemptQuery>,
    form: Signed,
) -> Response {
    let sid = form.get("MessageSid").unwrap_or_default();
    let status = form.get("MessageStatus").unwrap_or_default();
    let error_code = form.get("ErrorCode").filter(|c| !c.is_empty());
    status_report(
        &s,
        q.a.as_deref(),
        delivery::Report::Message {
            sid,
            status,
            error_code,
        },
    )
    .await
}

/// Inbound SMS: STOP / START keywords (opt-out and back in), recorded and honoured by
/// planning.
async fn sms_inbound(State(s): State<AppState>, form: Signed) -> Response {
    let sid = form.get("MessageSid").unwrap_or_default().to_string();
    let from = form.get("From").unwrap_or_default().to_string();
    let body = form.get("Body").unwrap_or_default().to_string();
    let key = format!("sms:{sid}");
    once(&s, &key, || async {
        let reply = delivery::inbound_sms(&s.db, &from, &body).await?.reply();
        Ok(format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>{reply}</Message></Response>"#))
    })
    .await
}

#[derive(Deserialize)]
struct CodeQuery {
    t: String,
}

/// Reads a staff login code out loud, twice (the code travels in a signed, expiring token
/// made for this purpose only).
async fn login_code(
    State(s): State<AppState>,
    Query(q): Query<CodeQuery>,
    _form: Signed,
) -> Response {
    let p = voicecall::prompts(&s, Lang::Ja);
    let text = match s
        .signer
        .verify_for("login-code", &q.t, chrono::Utc::now().timestamp())
    {
        Ok(code) => {
            let digits: Vec<String> = format!("{code:06}")
                .chars()
                .map(|c| c.to_string())
                .collect();
            let d = digits.join("、");
            crate::web::i18n::tr_args(
                Lang::Ja,
                "login-code-voice",
                &[("digits", d.as_str().into())],
            )
        }
        Err(_) => crate::web::i18n::tr(Lang::Ja, "login-code-voice-expired").to_string(),
    };
    let turn = voice::Turn {
        says: vec![voice::Utterance {
            id: "login_code".into(),
            text,
        }],
        gather: None,
        callback: false,
        completed: None,
        gave_up: false,
    };
    twiml(voice::twiml(&turn, p, "", ""))
}
