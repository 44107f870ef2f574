//! Sending and answering through a Twilio-compatible provider (the loopback fake): voice
//! calls answered by keypad, retries after busy / 429 / 5xx, permanent failures, delivery
//! callbacks, STOP / START, inbound calls, households, and the phone simulator.
use crate::helpers::all_no_keys;
use std::time::Duration;

use mimamori_core::{store::escalations, with_db};
use secrecy::SecretString;
use serde_json::json;

use crate::{
    fake_twilio::{Fake, Fault, Pickup, SID, TOKEN, signed_post},
    helpers::{TestApp, spawn_app_with},
};

async fn app_with_fake(max_attempts: i32) -> (TestApp, Fake) {
    app_with_fake_timeout(max_attempts, 10).await
}

async fn app_with_fake_timeout(max_attempts: i32, timeout_secs: u64) -> (TestApp, Fake) {
    let fake = Fake::start().await;
    let base = fake.base.clone();
    let app = spawn_app_with(move |c| {
        c.twilio.api_base = base;
        c.twilio.account_sid = SID.into();
        c.twilio.auth_token = SecretString::from(TOKEN);
        c.twilio.sms_from = vec!["+815000000001".into()];
        c.twilio.messages_per_sec = 0.0;
        c.twilio.calls_per_sec = 0.0;
        c.checkin.retry_backoff_secs = 0;
        c.checkin.max_send_attempts = max_attempts;
        c.twilio.request_timeout_secs = timeout_secs;
    })
    .await;
    (app, fake)
}

async fn checkin_status(app: &TestApp, person: i64) -> String {
    with_db!(&app.db, p => sqlx::query_scalar("SELECT status FROM checkins WHERE person_id = $1").bind(person).fetch_one(p).await.unwrap())
}

async fn wait_status(app: &TestApp, person: i64, want: &str) {
    for _ in 0..200 {
        if checkin_status(app, person).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "check-in of person {person} never became {want} (is {})",
        checkin_status(app, person).await
    );
}

async fn attempt_statuses(app: &TestApp, person: i64) -> Vec<String> {
    with_db!(&app.db, p => sqlx::query_scalar(
        "SELECT a.status FROM contact_attempts a JOIN checkins c ON c.id = a.checkin_id WHERE c.person_id = $1 ORDER BY a.id")
        .bind(person).fetch_all(p).await.unwrap())
}

#[tokio::test]
async fn a_voice_call_is_answered_with_the_keypad() {
    let (app, fake) = app_with_fake(3).await;
    app.login().await;
    fake.pickups(
        "+819011110001",
        vec![Pickup::Keys(all_no_keys("patient-daily"))],
    );
    let person = app.register("090-1111-0001", "voice", json!({})).await;
    wait_status(&app, person, "answered").await;
    let obs = app.observations(person).await;
    assert_eq!(
        (
            obs[0]["temperature_c"].as_f64(),
            obs[0]["spo2"].as_i64(),
            obs[0]["source"].as_str()
        ),
        (Some(37.5), Some(96), Some("voice"))
    );
    for _ in 0..100 {
        if attempt_statuses(&app, person).await == ["completed"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(attempt_statuses(&app, person).await, ["completed"]);
    let twiml = fake.inner.lock().unwrap().twiml.clone();
    assert!(
        twiml[0].contains(r#"<Gather input="dtmf""#) && twiml[0].contains("体温を入力してください")
    );
    assert!(
        twiml
            .last()
            .unwrap()
            .contains("ご回答ありがとうございました")
            && twiml.last().unwrap().contains("<Hangup/>")
    );
    app.finish().await;
}

#[tokio::test]
async fn a_busy_line_is_called_again() {
    let (app, fake) = app_with_fake(3).await;
    app.login().await;
    fake.pickups(
        "+819011110002",
        vec![
            Pickup::Status("busy"),
            Pickup::Keys(all_no_keys("patient-daily")),
        ],
    );
    let person = app.register("090-1111-0002", "voice", json!({})).await;
    wait_status(&app, person, "answered").await;
    assert_eq!(fake.calls_to("+819011110002"), 2);
    assert_eq!(attempt_statuses(&app, person).await[0], "busy");
    app.finish().await;
}

#[tokio::test]
async fn callback_request_and_a_household_on_one_call() {
    let (app, fake) = app_with_fake(3).await;
    app.login().await;
    let mut keys = vec![Some("0#")];
    keys.extend(all_no_keys("patient-daily"));
    keys.extend(all_no_keys("patient-daily"));
    fake.pickups("+819011110003", vec![Pickup::Keys(keys)]);
    // The SMS member is registered first, so their check-in is open when the call for the
    // voice member reaches its end.
    let b = app
        .register("090-1111-0003", "sms", json!({"name": "家族"}))
        .await;
    wait_status(&app, b, "sent").await;
    let a = app.register("090-1111-0003", "voice", json!({})).await;
    wait_status(&app, a, "answered").await;
    wait_status(&app, b, "answered").await;
    let (sa, sb) = (checkin_status(&app, a).await, checkin_status(&app, b).await);
    assert_eq!(
        (sa.as_str(), sb.as_str()),
        ("answered", "answered"),
        "one call answered for both members"
    );
    let esc = escalations::open_for_person(
        &app.db,
        mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
        a,
    )
    .await
    .unwrap();
    assert_eq!(
        esc.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(),
        ["callback"]
    );
    let twiml = fake.inner.lock().unwrap().twiml.join("\n");
    assert!(twiml.contains("折り返し電話を受け付けました") && twiml.contains("ご家族の方"));
    app.finish().await;
}

#[tokio::test]
async fn provider_faults_are_retried_or_end_visibly() {
    let (app, fake) = app_with_fake(2).await;
    app.login().await;
    fake.fault("+819022220001", Fault::TooMany(1));
    fake.fault("+819022220002", Fault::InvalidNumber);
    fake.fault("+819022220003", Fault::ServerError);
    let slow_ok = app.register("090-2222-0001", "sms", json!({})).await;
    let invalid = app.register("090-2222-0002", "sms", json!({})).await;
    let down = app.register("090-2222-0003", "sms", json!({})).await;
    wait_status(&app, slow_ok, "sent").await;
    assert_eq!(
        attempt_statuses(&app, slow_ok).await,
        ["failed", "delivered"]
    );
    assert_eq!(
        fake.messages_to("+819022220001").len(),
        1,
        "sent exactly once"
    );
    wait_status(&app, invalid, "failed").await;
    assert_eq!(
        attempt_statuses(&app, invalid).await,
        ["failed"],
        "a permanent error is not retried"
    );
    let esc = escalations::open_for_person(
        &app.db,
        mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
        invalid,
    )
    .await
    .unwrap();
    assert_eq!(esc[0].reason, "unreachable");
    wait_status(&app, down, "failed").await;
    assert_eq!(
        attempt_statuses(&app, down).await,
        ["failed", "failed"],
        "max_send_attempts = 2"
    );
    let err: Option<String> = with_db!(&app.db, p => sqlx::query_scalar(
        "SELECT a.error FROM contact_attempts a JOIN checkins c ON c.id = a.checkin_id WHERE c.person_id = $1 LIMIT 1")
        .bind(invalid).fetch_one(p).await.unwrap());
    assert_eq!(err.as_deref(), Some("HTTP 400 code 21211"));
    app.finish().await;
}

#[tokio::test]
async fn delivery_reports_before_the_batch_twice_and_late_take_effect_once() {
    let (app, fake) = app_with_fake(3).await;
    app.login().await;
    // The network reports "undelivered 30003" before the create request is even answered,
    // twice at the same moment, and once more later.
    fake.fault("+819033330001", Fault::Undelivered("30003"));
    let person = app.register("090-3333-0001", "sms", json!({})).await;
    wait_status(&app, person, "failed").await;
    let msg = fake.messages_to("+819033330001").remove(0);
    let cb = msg["StatusCallback"].clone();
    let key: String = with_db!(&app.db, p => sqlx::query_scalar("SELECT idempotency_key FROM contact_attempts").fetch_one(p).await.unwrap());
    assert_eq!(
        cb,
        format!("{}/hooks/twilio/status/message?a={key}", app.base),
        "our own attempt key travels in the callback URL"
    );
    for _ in 0..100 {
        if fake.inner.lock().unwrap().report_answers.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.inner.lock().unwrap().report_answers, [200, 200, 200]);
    assert_eq!(attempt_statuses(&app, person).await, ["undelivered"]);
    let provider_id: Option<String> = with_db!(&app.db, p => sqlx::query_scalar("SELECT provider_id FROM contact_attempts").fetch_one(p).await.unwrap());
    assert!(provider_id.is_some_and(|id| id.starts_with("SM")));
    assert_eq!(
        escalations::open_for_person(
            &app.db,
            mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
            person
        )
        .await
        .unwrap()[0]
            .reason,
        "unreachable"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_events").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM escalations").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM escalation_events").await,
        1,
        "three deliveries, one event"
    );

    // Forged: wrong or missing signature → 403, nothing stored.
    let params = vec![
        ("MessageSid".to_string(), "SM-forged".to_string()),
        ("MessageStatus".to_string(), "undelivered".to_string()),
    ];
    let r = reqwest::Client::new()
        .post(&cb)
        .header("X-Twilio-Signature", "AAAA")
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = reqwest::Client::new()
        .post(&cb)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A signed report for an attempt we never made: 404, and not remembered as handled.
    let unknown = format!(
        "{}/hooks/twilio/status/message?a=checkin-999-r0-sms-try-0",
        app.base
    );
    assert_eq!(signed_post(&unknown, &params).await.status(), 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_events").await, 1);
    app.finish().await;
}

#[tokio::test]
async fn stop_and_start_by_sms() {
    let (app, _fake) = app_with_fake(3).await;
    app.login().await;
    let person = app.register("090-4444-0001", "sms", json!({})).await;
    wait_status(&app, person, "sent").await;
    let url = format!("{}/hooks/twilio/sms", app.base);
    let sms = |sid: &str, body: &str| {
        vec![
            ("MessageSid".to_string(), sid.to_string()),
            ("From".to_string(), "+819044440001".to_string()),
            ("Body".to_string(), body.to_string()),
        ]
    };
    let r = signed_post(&url, &sms("SMin1", " stop ")).await;
    assert!(r.text().await.unwrap().contains("<Message>"));
    assert_eq!(checkin_status(&app, person).await, "opted_out");
    let status: String = with_db!(&app.db, p => sqlx::query_scalar("SELECT status FROM persons WHERE id = $1").bind(person).fetch_one(p).await.unwrap());
    assert_eq!(status, "opted_out");
    // Planning skips them.
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    assert_eq!(
        mimamori_core::store::checkins::plan_day(&app.db, tomorrow, chrono::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    signed_post(&url, &sms("SMin2", "START")).await;
    let status: String = with_db!(&app.db, p => sqlx::query_scalar("SELECT status FROM persons WHERE id = $1").bind(person).fetch_one(p).await.unwrap());
    assert_eq!(status, "observing");
    app.finish().await;
}

#[tokio::test]
async fn inbound_call_identified_by_caller_id_and_date_of_birth() {
    let (app, _fake) = app_with_fake(3).await;
    app.login().await;
    // E-mail channel: the check-in stays open while they phone in.
    let person = app
        .register(
            "090-5555-0001",
            "email",
            json!({"email": "a@example.jp", "date_of_birth": "1950-04-01"}),
        )
        .await;
    let call = |sid: &str| {
        vec![
            ("CallSid".to_string(), sid.to_string()),
            ("From".to_string(), "+819055550001".to_string()),
        ]
    };
    let twiml = signed_post(
        &format!("{}/hooks/twilio/voice/inbound", app.base),
        &call("CAin1"),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(twiml.contains("生年月日") && twiml.contains(r#"numDigits="8""#));
    // A wrong date gets a second try, a second wrong one the number to phone.
    let mut wrong = call("CAin1");
    wrong.push(("Digits".into(), "19500402".into()));
    let twiml = signed_post(&format!("{}/hooks/twilio/voice/identify", app.base), &wrong)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        twiml.contains("もう一度") && twiml.contains("identify?try=2"),
        "{twiml}"
    );
    let twiml = signed_post(
        &format!("{}/hooks/twilio/voice/identify?try=2", app.base),
        &wrong,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(twiml.contains("確認できませんでした") && twiml.contains("<Hangup/>"));
    let mut right = call("CAin2");
    right.push(("Digits".into(), "19500401".into()));
    let twiml = signed_post(&format!("{}/hooks/twilio/voice/identify", app.base), &right)
        .await
        .text()
        .await
        .unwrap();
    assert!(twiml.contains("体温を入力してください"), "{twiml}");
    let step = format!("{}/hooks/twilio/voice/step?n=1", app.base);
    let mut p = call("CAin2");
    p.push(("Digits".into(), "368#".into()));
    let first = signed_post(&step, &p).await.text().await.unwrap();
    // The same delivery again gets the same answer and does not advance the call.
    let again = signed_post(&step, &p).await.text().await.unwrap();
    assert_eq!(first, again);
    assert!(first.contains("酸素飽和度"));
    assert_ne!(checkin_status(&app, person).await, "answered");
    // The rest of the questionnaire: recorded as a call from the person, not an automated one.
    let mut last = first;
    for (n, k) in all_no_keys("patient-daily")
        .into_iter()
        .skip(1)
        .flatten()
        .enumerate()
    {
        let mut p = call("CAin2");
        p.push(("Digits".into(), k.into()));
        last = signed_post(
            &format!("{}/hooks/twilio/voice/step?n={}", app.base, n + 2),
            &p,
        )
        .await
        .text()
        .await
        .unwrap();
    }
    assert_eq!(checkin_status(&app, person).await, "answered", "{last}");
    let obs = app.observations(person).await;
    assert_eq!(
        (obs[0]["temperature_c"].as_f64(), obs[0]["source"].as_str()),
        (Some(36.8), Some("inbound_call"))
    );
    // Phoning again, identified, with nothing open: told so — not "could not confirm".
    let mut again = call("CAin3");
    again.push(("Digits".into(), "19500401".into()));
    let twiml = signed_post(&format!("{}/hooks/twilio/voice/identify", app.base), &again)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        twiml.contains("本日お答えいただく健康観察はありません"),
        "{twiml}"
    );
    app.finish().await;
}

/// An answering machine hears a short "we will call again" (never the questions), the call
/// counts as not answered and is tried again; the person answers the second call. English
/// calls read the centre's English name (or "your health centre"), never the Japanese one.
#[tokio::test]
async fn an_answering_machine_gets_a_message_and_a_second_call() {
    let (app, fake) = app_with_fake(3).await;
    app.login().await;
    with_db!(&app.db, p => sqlx::query("UPDATE health_centres SET name_en = 'Minato Health Centre'")
        .execute(p).await.unwrap().rows_affected());
    fake.pickups(
        "+819077770001",
        vec![Pickup::Machine, Pickup::Keys(all_no_keys("patient-daily"))],
    );
    let person = app
        .register("090-7777-0001", "voice", json!({"language": "en"}))
        .await;
    wait_status(&app, person, "answered").await;
    assert_eq!(fake.calls_to("+819077770001"), 2);
    let twiml = fake.inner.lock().unwrap().twiml.clone();
    assert!(twiml[0].contains("We will call you again later") && twiml[0].contains("<Hangup/>"));
    assert!(
        !twiml[0].contains("temperature"),
        "no questions to a machine"
    );
    assert!(
        twiml[1].contains("This is Minato Health Centre"),
        "{}",
        twiml[1]
    );
    assert!(twiml.iter().all(|t| !t.contains("テスト保健所")));
    let calls: Vec<(String, Option<String>)> = with_db!(&app.db, p => sqlx::query_as(
        "SELECT a.status, a.error FROM contact_attempts a JOIN checkins c ON c.id = a.checkin_id WHERE c.person_id = $1 ORDER BY a.id")
        .bind(person).fetch_all(p).await.unwrap());
    assert_eq!(calls[0].0, "completed", "{calls:?}");
    app.finish().await;
}

/// A call that is still asking when the check-in is answered another way (the SMS link, a
/// nurse's entry) stops: it says so and hangs up, and no second answer is recorded.
#[tokio::test]
async fn a_live_call_stops_once_the_check_in_is_answered_elsewhere() {
    let app = crate::helpers::spawn_app().await;
    let csrf = app.login().await;
    let person = app
        .register("090-6666-0009", "email", json!({"email": "c@example.jp"}))
        .await;
    let ck: i64 = with_db!(&app.db, p => sqlx::query_scalar("SELECT id FROM checkins WHERE person_id = $1").bind(person).fetch_one(p).await.unwrap());
    let html = app
        .post_form(
            "/simulator",
            &[("csrf", &csrf), ("checkin_id", &ck.to_string())],
        )
        .await
        .text()
        .await
        .unwrap();
    let sid = html
        .split("action=\"/simulator/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    app.post_form(
        &format!("/simulator/{sid}"),
        &[("csrf", &csrf), ("digits", "368#")],
    )
    .await;
    // Answered through the link meanwhile.
    let answer = mimamori_core::store::observations::Answer::default();
    mimamori_core::store::observations::answer_checkin(
        &app.db,
        ck,
        "email",
        &answer,
        &Default::default(),
    )
    .await
    .unwrap()
    .unwrap();
    let page = app
        .post_form(
            &format!("/simulator/{sid}"),
            &[("csrf", &csrf), ("digits", "#")],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("すでに回答をいただきました"), "{page}");
    assert!(page.contains("通話は終了しました"), "the call hangs up");
    assert_eq!(app.observations(person).await.len(), 1, "one answer only");
    app.finish().await;
}

#[tokio::test]
async fn the_phone_simulator_walks_a_call_in_the_console() {
    // With a real telephone provider the simulator is off (and not in the menu).
    let (real, _fake) = app_with_fake(3).await;
    real.login().await;
    let r = real.get("/simulator").await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("training"));
    assert!(
        !real
            .get("/")
            .await
            .text()
            .await
            .unwrap()
            .contains(r#"href="/simulator""#)
    );
    real.finish().await;

    let app = crate::helpers::spawn_app().await;
    let csrf = app.login().await;
    // E-mail person: the check-in is open; the simulator can call anyone with one.
    let person = app
        .register("090-6666-0001", "email", json!({"email": "b@example.jp"}))
        .await;
    let page = app.get("/simulator").await.text().await.unwrap();
    let ck: i64 = with_db!(&app.db, p => sqlx::query_scalar("SELECT id FROM checkins WHERE person_id = $1").bind(person).fetch_one(p).await.unwrap());
    assert!(page.contains(&format!(r#"name="checkin_id" value="{ck}""#)));
    let r = app
        .post_form(
            "/simulator",
            &[("csrf", &csrf), ("checkin_id", &ck.to_string())],
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("体温を入力してください"));
    let sid = html
        .split("action=\"/simulator/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let mut last = String::new();
    // 37.2 °C, no oximeter, then "no" / option 2 to everything, then confirm.
    let mut keys = vec!["372#", "#"];
    keys.extend(all_no_keys("patient-daily").into_iter().skip(2).flatten());
    for k in keys {
        last = app
            .post_form(
                &format!("/simulator/{sid}"),
                &[("csrf", &csrf), ("digits", k)],
            )
            .await
            .text()
            .await
            .unwrap();
    }
    assert!(last.contains("回答が記録されました"), "{last}");
    assert_eq!(checkin_status(&app, person).await, "answered");
    let obs = app.observations(person).await;
    assert_eq!(
        (
            obs[0]["temperature_c"].as_f64(),
            obs[0]["spo2"].is_null(),
            obs[0]["source"].as_str()
        ),
        (Some(37.2), true, Some("simulator"))
    );
    // A staff member's key presses are their simulated entry, never the person's answer.
    let (reporter, actor): (String, String) = with_db!(&app.db, p => sqlx::query_as(
        "SELECT o.reporter, a.actor_kind FROM observations o JOIN audit_log a ON a.target_id = o.person_id AND a.action = 'observation.create_simulated'
         WHERE o.person_id = $1").bind(person).fetch_one(p).await.unwrap());
    assert_eq!((reporter.as_str(), actor.as_str()), ("staff", "staff"));
    app.finish().await;
}

#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_is_retried_then_escalated() {
    let (app, fake) = app_with_fake_timeout(2, 1).await;
    app.login().await;
    fake.fault("+819088880001", Fault::Slow(Duration::from_secs(3)));
    let person = app.register("090-8888-0001", "sms", json!({})).await;
    wait_status(&app, person, "failed").await;
    let errors: Vec<Option<String>> = with_db!(&app.db, p => sqlx::query_scalar(
        "SELECT a.error FROM contact_attempts a JOIN checkins c ON c.id = a.checkin_id WHERE c.person_id = $1 ORDER BY a.id")
        .bind(person).fetch_all(p).await.unwrap());
    assert_eq!(
        errors,
        [Some("timeout".to_string()), Some("timeout".to_string())]
    );
    assert_eq!(
        escalations::open_for_person(
            &app.db,
            mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
            person
        )
        .await
        .unwrap()[0]
            .reason,
        "unreachable"
    );
    app.finish().await;
}

/// A person registered for slow speech gets calls read slowly with pauses and more time for
/// keys; the schedule form turns it off again.
#[tokio::test]
async fn slow_speech_is_per_person() {
    let (app, fake) = app_with_fake(3).await;
    let csrf = app.login().await;
    fake.pickups(
        "+819077770002",
        vec![Pickup::Keys(all_no_keys("patient-daily"))],
    );
    let person = app
        .register("090-7777-0002", "voice", json!({"slow_speech": true}))
        .await;
    wait_status(&app, person, "answered").await;
    let twiml = fake.inner.lock().unwrap().twiml.clone();
    assert!(twiml[0].contains(r#"<prosody rate="80%">"#) && twiml[0].contains(r#"timeout="15""#));
    let r = app
        .post_form(
            &format!("/persons/{person}/schedule"),
            &[("csrf", csrf.as_str()), ("slow_speech", "no")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let p: serde_json::Value = app
        .get(&format!("/api/v1/persons/{person}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["slow_speech"], false);
    app.finish().await;
}
