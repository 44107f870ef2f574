//! Delivery under real provider timing and faults (issue 12), through the real app and
//! workers against the loopback provider double — which reports before the batch has
//! recorded the provider's id, twice in parallel and late; leaves `#` out of `Digits`;
//! answers 429 with Retry-After, 401 / 20003, 5xx and hangs.
use std::time::{Duration, Instant};

use mimamori_core::{store::escalations, with_db};
use secrecy::SecretString;
use serde_json::json;

use crate::{
    fake_twilio::{Fake, Fault, Pickup, SID, TOKEN},
    helpers::{TestApp, all_no_keys, spawn_app_with},
};

/// The app on the fake provider, configured as the tests here need and then by `tweak`.
async fn on_fake(
    tweak: impl Fn(&mut mimamori_core::config::Config) + Send + 'static,
) -> (TestApp, Fake) {
    let fake = Fake::start().await;
    let base = fake.base.clone();
    let app = spawn_app_with(move |c| {
        c.twilio.api_base = base.clone();
        c.twilio.account_sid = SID.into();
        c.twilio.auth_token = SecretString::from(TOKEN);
        c.twilio.sms_from = vec!["+815000000001".into()];
        c.checkin.retry_backoff_secs = 0;
        c.twilio.request_timeout_secs = 2;
        tweak(c);
    })
    .await;
    (app, fake)
}

/// The app on the fake provider with sends paced per sender number (`per_sec`).
async fn paced(per_sec: f64, max_attempts: i32) -> (TestApp, Fake) {
    on_fake(move |c| {
        c.twilio.messages_per_sec = per_sec;
        c.twilio.calls_per_sec = per_sec;
        c.twilio.operator_halt_secs = 1;
        c.checkin.max_send_attempts = max_attempts;
        c.checkin.operator_retry_secs = 1;
    })
    .await
}

async fn statuses(app: &TestApp) -> Vec<(i64, String)> {
    with_db!(&app.db, p => sqlx::query_as("SELECT person_id, status FROM checkins ORDER BY person_id")
        .fetch_all(p).await.unwrap())
}

/// Waits until no check-in is open (planned, sending, sent-and-not-yet-reported).
async fn settle(app: &TestApp, done: impl Fn(&[(i64, String)]) -> bool) -> Vec<(i64, String)> {
    for _ in 0..400 {
        let s = statuses(app).await;
        if done(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Everything the store knows of the attempts, to tell a slow retry from a person
    // nobody will reach.
    let attempts: Vec<(i64, i64, String, String, String, Option<String>)> = with_db!(&app.db, p => sqlx::query_as(
        "SELECT a.checkin_id, c.person_id, a.kind, a.status, a.channel, a.provider_id \
         FROM contact_attempts a JOIN checkins c ON c.id = a.checkin_id ORDER BY a.id")
        .fetch_all(p).await.unwrap());
    let checkins: Vec<(i64, i64, String, i32, i32, bool)> = with_db!(&app.db, p => sqlx::query_as(
        "SELECT id, person_id, status, attempts, reminders, on_fallback FROM checkins ORDER BY id")
        .fetch_all(p).await.unwrap());
    panic!(
        "never settled: {:?}\ncheck-ins (id, person, status, attempts, reminders, on fallback): {checkins:?}\n\
         attempts (check-in, person, kind, status, channel, provider id): {attempts:?}",
        statuses(app).await
    );
}

#[tokio::test]
async fn a_paced_batch_under_real_timing_loses_nobody() {
    // 5 sends a second per number: the batch takes seconds, reports come back in
    // milliseconds — before the batch has recorded any provider id.
    let (app, fake) = paced(5.0, 2).await;
    app.login().await;
    // Busy twice on the call, then the fallback SMS reaches them.
    fake.pickups(
        "+819041110001",
        vec![Pickup::Status("busy"), Pickup::Status("busy")],
    );
    let to_fallback = app
        .register("090-4111-0001", "voice", json!({"fallback_channel": "sms"}))
        .await;
    // Never answers the call, no fallback: unreachable today.
    fake.pickups(
        "+819041110002",
        vec![Pickup::Status("no-answer"), Pickup::Status("no-answer")],
    );
    let no_answer = app.register("090-4111-0002", "voice", json!({})).await;
    // An SMS the network cannot deliver.
    fake.fault("+819041110003", Fault::Undelivered("30003"));
    let undeliverable = app.register("090-4111-0003", "sms", json!({})).await;
    // Answers the call, skipping SpO2 with a lone # (an empty Digits).
    let mut keys = all_no_keys("patient-daily");
    keys[1] = Some("#");
    fake.pickups("+819041110004", vec![Pickup::Keys(keys)]);
    let answers = app.register("090-4111-0004", "voice", json!({})).await;
    // Plain SMS people, delivered.
    let mut delivered = Vec::new();
    for i in 5..=9 {
        delivered.push(
            app.register(&format!("090-4111-000{i}"), "sms", json!({}))
                .await,
        );
    }

    let final_of = |s: &[(i64, String)], p: i64| {
        s.iter()
            .find(|(id, _)| *id == p)
            .map(|(_, st)| st.clone())
            .unwrap_or_default()
    };
    let end = settle(&app, |s| {
        // "sent" comes with the first call already: wait for the fallback SMS too.
        final_of(s, to_fallback) == "sent"
            && !fake.messages_to("+819041110001").is_empty()
            && final_of(s, no_answer) == "failed"
            && final_of(s, undeliverable) == "failed"
            && final_of(s, answers) == "answered"
            && delivered.iter().all(|p| final_of(s, *p) == "sent")
    })
    .await;
    assert!(
        end.iter().all(|(_, s)| s != "sending" && s != "planned"),
        "{end:?}"
    );
    // The fallback SMS went out after two busy calls.
    assert_eq!(fake.calls_to("+819041110001"), 2);
    assert_eq!(fake.messages_to("+819041110001").len(), 1);
    // Everyone never reached on any channel is escalated as unreachable, today.
    for p in [no_answer, undeliverable] {
        let open = escalations::open_for_person(
            &app.db,
            mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
            p,
        )
        .await
        .unwrap();
        assert_eq!(
            open.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(),
            ["unreachable"],
            "person {p}"
        );
    }
    for p in [to_fallback, answers] {
        assert!(
            escalations::open_for_person(
                &app.db,
                mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
                p
            )
            .await
            .unwrap()
            .is_empty()
        );
    }
    // SpO2 skipped with a lone #, the rest recorded.
    let obs = app.observations(answers).await;
    assert_eq!(
        (obs[0]["temperature_c"].as_f64(), obs[0]["spo2"].as_i64()),
        (Some(37.5), None)
    );
    // No attempt stays "sent" once its provider has reported, and nothing was sent twice:
    // every create request belongs to exactly one attempt.
    // (A call's own `completed` report comes after the answer that closed its check-in:
    // give the last reports the few seconds the provider takes.)
    let mut attempts: Vec<(String, Option<String>)> = Vec::new();
    for _ in 0..100 {
        attempts = with_db!(&app.db, p => sqlx::query_as(
            "SELECT status, provider_id FROM contact_attempts ORDER BY id").fetch_all(p).await.unwrap());
        if !attempts.iter().any(|(s, _)| s == "sent" || s == "queued") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let creates = {
        let g = fake.inner.lock().unwrap();
        g.messages.len() + g.calls.len()
    };
    assert_eq!(attempts.len(), creates, "{attempts:?}");
    assert!(attempts.iter().all(|(_, id)| id.is_some()));
    assert!(
        !attempts.iter().any(|(s, _)| s == "sent" || s == "queued"),
        "{attempts:?}"
    );
    // Sends ≤ 1.2 × what a failure-free day needs beyond the retries the faults called for:
    // 9 people, 2 + 1 sends for the busy one, 2 for the no-answer one.
    assert!(creates <= 12, "{creates} sends");
    // Every report was answered 200, duplicates included.
    for _ in 0..40 {
        if fake
            .inner
            .lock()
            .unwrap()
            .report_answers
            .iter()
            .all(|c| *c == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        fake.inner
            .lock()
            .unwrap()
            .report_answers
            .iter()
            .all(|c| *c == 200)
    );
    app.finish().await;
}

#[tokio::test]
async fn a_wrong_credential_is_one_operator_alarm_not_patient_escalations() {
    let (app, fake) = paced(0.0, 2).await;
    app.login().await;
    // The credential is refused before anyone is registered: registration plans today's
    // check-in at once, and the dispatcher may send it before a fault set afterwards.
    for p in 1..=3 {
        fake.fault(&format!("+81904222000{p}"), Fault::Unauthorized);
    }
    let people = [
        app.register("090-4222-0001", "sms", json!({})).await,
        app.register("090-4222-0002", "sms", json!({})).await,
        app.register("090-4222-0003", "sms", json!({})).await,
    ];
    // The alarm is raised and visible; nobody is failed or escalated.
    let mut health = serde_json::Value::Null;
    for _ in 0..100 {
        health = app.get("/healthz").await.json().await.unwrap();
        if health["status"] == "degraded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["operator_alarms"][0]["provider"], "twilio");
    assert_eq!(health["operator_alarms"][0]["code"], "20003");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM operator_alarms").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM escalations").await, 0);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM checkins WHERE status = 'failed'")
            .await,
        0
    );
    let home = app.get("/").await.text().await.unwrap();
    assert!(home.contains("運用アラーム"), "dashboard banner");
    // The credential is fixed: the held check-ins go out and the alarm clears.
    fake.inner.lock().unwrap().faults.clear();
    settle(&app, |s| s.iter().all(|(_, st)| st == "sent")).await;
    for p in people {
        assert!(
            escalations::open_for_person(
                &app.db,
                mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
                p
            )
            .await
            .unwrap()
            .is_empty()
        );
    }
    let health: serde_json::Value = app.get("/healthz").await.json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    app.finish().await;
}

#[tokio::test]
async fn retry_after_is_honoured_for_the_sender_number() {
    let (app, fake) = paced(0.0, 3).await;
    app.login().await;
    fake.fault("+819043330001", Fault::TooManyRetryAfter(1, 2));
    let p = app.register("090-4333-0001", "sms", json!({})).await;
    settle(&app, |s| s.iter().any(|(id, st)| *id == p && st == "sent")).await;
    let times: Vec<Instant> = fake
        .inner
        .lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(to, _)| to == "+819043330001")
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(times.len(), 2, "one refused, one sent");
    assert!(
        times[1] - times[0] >= Duration::from_millis(1900),
        "nothing sent within Retry-After: {:?}",
        times[1] - times[0]
    );
    app.finish().await;
}

#[tokio::test]
async fn an_urgent_alert_is_not_kept_behind_paced_sends() {
    // 2 SMS a second from the one sender number and 12 people due: the batch takes ~6 s.
    let (app, fake) = paced(2.0, 2).await;
    let csrf = app.login().await;
    with_db!(&app.db, p => sqlx::query("UPDATE staff SET on_duty = TRUE, phone = '+819099990000' WHERE username = 'nurse'")
        .execute(p).await.unwrap().rows_affected());
    let urgent = app
        .register("090-4444-0000", "email", json!({"email": "a@example.jp"}))
        .await;
    for i in 1..=12 {
        app.register(&format!("090-4444-00{i:02}"), "sms", json!({}))
            .await;
    }
    // Wait until the paced batch is under way.
    for _ in 0..100 {
        if fake.inner.lock().unwrap().messages.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = app
        .post_form(
            &format!("/persons/{urgent}/observations"),
            &[("csrf", &csrf), ("spo2", "88"), ("note", "電話で聞き取り")],
        )
        .await;
    assert!(r.status().is_success() || r.status().is_redirection());
    let raised = Instant::now();
    let mut alerted = None;
    for _ in 0..300 {
        if !fake.messages_to("+819099990000").is_empty() {
            alerted = Some(raised.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let alerted = alerted.expect("the on-duty nurse was never alerted");
    let waiting = {
        let g = fake.inner.lock().unwrap();
        13 - g.messages.len()
    };
    assert!(
        alerted < Duration::from_millis(2000),
        "alert after {alerted:?}"
    );
    assert!(
        waiting > 0,
        "the alert overtook the paced sends still waiting"
    );
    app.finish().await;
}

/// Our webhooks never hear a single outcome (every report refused under load or lost — the
/// provider does not send a status callback again): the worker asks the provider what became
/// of each attempt and applies it as the report would have. The undeliverable SMS ends
/// failed with an unreachable escalation, the unanswered calls are retried then escalated,
/// the delivered SMS waits for its answer; no attempt stays "sent".
#[tokio::test]
async fn outcomes_whose_reports_never_arrive_are_asked_of_the_provider() {
    let (app, fake) = on_fake(|c| {
        c.checkin.max_send_attempts = 2;
        c.workers.reconcile_interval_secs = 1;
        c.workers.reconcile_after_secs = 1;
    })
    .await;
    fake.inner.lock().unwrap().drop_reports = true;
    app.login().await;
    fake.fault("+819042220001", Fault::Undelivered("30003"));
    let undeliverable = app.register("090-4222-0001", "sms", json!({})).await;
    fake.pickups(
        "+819042220002",
        vec![Pickup::Status("no-answer"), Pickup::Status("no-answer")],
    );
    let no_answer = app.register("090-4222-0002", "voice", json!({})).await;
    let delivered = app.register("090-4222-0003", "sms", json!({})).await;
    let final_of = |s: &[(i64, String)], p: i64| {
        s.iter()
            .find(|(id, _)| *id == p)
            .map(|(_, st)| st.clone())
            .unwrap_or_default()
    };
    settle(&app, |s| {
        final_of(s, undeliverable) == "failed" && final_of(s, no_answer) == "failed"
    })
    .await;
    assert_eq!(
        fake.calls_to("+819042220002"),
        2,
        "the unanswered call was retried"
    );
    for p in [undeliverable, no_answer] {
        let open = escalations::open_for_person(
            &app.db,
            mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
            p,
        )
        .await
        .unwrap();
        assert_eq!(
            open.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(),
            ["unreachable"]
        );
    }
    let mut left = Vec::new();
    for _ in 0..100 {
        left = with_db!(&app.db, p => sqlx::query_scalar::<_, String>(
            "SELECT status FROM contact_attempts WHERE status IN ('queued', 'sent')").fetch_all(p).await.unwrap());
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left.is_empty(), "{left:?}");
    let status: String = with_db!(&app.db, p => sqlx::query_scalar(
        "SELECT a.status FROM contact_attempts a JOIN checkins c ON c.id = a.checkin_id WHERE c.person_id = $1")
        .bind(delivered).fetch_one(p).await.unwrap());
    assert_eq!(status, "delivered");
    assert_eq!(
        fake.inner.lock().unwrap().report_answers.len(),
        0,
        "not one report reached us"
    );
    app.finish().await;
}
