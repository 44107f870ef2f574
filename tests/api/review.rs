//! The review flow end to end: an answer with low SpO2 → an urgent escalation on top of the
//! queue and a notification to the on-duty nurse → acknowledge, act, resolve — each step on
//! the person's timeline and in the audit log; line lists and dashboard counts follow.
use mimamori_core::with_db;
use serde_json::json;

use crate::helpers::{TestApp, answers, link_in, spawn_app, spawn_app_with, today};

async fn person_answering(app: &TestApp, phone: &str, e164: &str, spo2: &str, urgent: &str) -> i64 {
    let id = app
        .register(phone, "sms", json!({"name": "田中 花子"}))
        .await;
    let link = link_in(&app.wait_for_message(e164).await.body);
    let answers = answers(&[
        ("temperature", "37.2"),
        ("spo2", spo2),
        ("urgent_breathing_hard", urgent),
    ]);
    assert_eq!(
        reqwest::Client::new()
            .post(&link)
            .form(&answers)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    id
}

#[tokio::test]
async fn urgent_people_are_on_top_and_staff_act_and_resolve() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    with_db!(&app.db, p => sqlx::query("UPDATE staff SET on_duty = TRUE, phone = '+819099990000' WHERE username = 'nurse'")
        .execute(p).await.unwrap().rows_affected());
    // High (SpO2 95) first, then urgent (SpO2 93): urgent must still be on top.
    let high = person_answering(&app, "080-1000-0001", "+818010000001", "95", "no").await;
    let urgent = person_answering(&app, "080-1000-0002", "+818010000002", "93", "no").await;

    let queue = app.get("/escalations").await.text().await.unwrap();
    let (pu, ph) = (
        queue.find(&format!("/persons/{urgent}\"")).unwrap(),
        queue.find(&format!("/persons/{high}\"")).unwrap(),
    );
    assert!(pu < ph, "urgent first");
    assert!(queue.contains("SpO2 93 % ≤ 93"));
    // The queue's live count: open urgent cases nobody has taken on (a count, no person),
    // read by the page's script without reloading it.
    let live: serde_json::Value = app.get("/escalations/live").await.json().await.unwrap();
    assert_eq!(live["urgent_open"], 1);
    assert!(queue.contains(r#"data-urgent="1""#) && queue.contains(r#"src="/static/queue.js""#));
    let js = app.get("/static/queue.js").await;
    assert_eq!(js.status(), 200);
    assert!(js.text().await.unwrap().contains("/escalations/live"));
    let home = app.get("/").await.text().await.unwrap();
    assert!(
        home.contains(r#"id="urgent-count">1<"#),
        "dashboard counts one urgent"
    );
    let list = app.get("/persons?list=urgent").await.text().await.unwrap();
    assert!(
        list.contains(&format!("/persons/{urgent}\""))
            && !list.contains(&format!("/persons/{high}\""))
    );

    // The on-duty nurse is told within the dispatcher's next pass: id and link, no name.
    let note = app.wait_for_message("+819099990000").await;
    assert!(
        note.body.contains(&format!("対象者ID {urgent}"))
            && note.body.contains(&format!("/persons/{urgent}"))
    );
    assert!(!note.body.contains("田中"));
    // The message is in the outbox a moment before its notification row is marked sent.
    let mut sent = 0;
    for _ in 0..100 {
        sent = app
            .count("SELECT COUNT(*) FROM notifications WHERE status = 'sent'")
            .await;
        if sent > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        (sent, app.count("SELECT COUNT(*) FROM notifications").await),
        (1, 1),
        "only the urgent one notifies"
    );

    let esc: i64 = with_db!(&app.db, p => sqlx::query_scalar("SELECT id FROM escalations WHERE person_id = $1").bind(urgent).fetch_one(p).await.unwrap());
    let step = |form: Vec<(&'static str, String)>| {
        let url = format!("/escalations/{esc}/steps");
        let app = &app;
        async move {
            let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.post_form(&url, &f).await
        }
    };
    assert_eq!(
        step(vec![
            ("csrf", "forged".into()),
            ("step", "acknowledge".into())
        ])
        .await
        .status(),
        400
    );
    let r = step(vec![
        ("csrf", csrf.clone()),
        ("step", "acknowledge".into()),
        ("back", format!("/persons/{urgent}")),
    ])
    .await;
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["location"].to_str().unwrap()
        ),
        (
            303,
            format!("/persons/{urgent}?done=acknowledged&esc={esc}").as_str()
        ),
        "back where the nurse was, saying what was done"
    );
    let page = app
        .get(&format!("/persons/{urgent}?done=acknowledged&esc={esc}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!(r#"action="/escalations/{esc}/undo""#)),
        "the step can be undone from the page it returns to"
    );
    let r = step(vec![
        ("csrf", csrf.clone()),
        ("step", "action".into()),
        ("action", "teleport".into()),
    ])
    .await;
    assert_eq!(r.status(), 422, "unknown action is refused");
    step(vec![
        ("csrf", csrf.clone()),
        ("step", "action".into()),
        ("action", "phoned".into()),
        ("note", "本人と通話、受診調整へ".into()),
    ])
    .await;
    step(vec![
        ("csrf", csrf.clone()),
        ("step", "action".into()),
        ("action", "arranged_admission".into()),
        ("note", String::new()),
    ])
    .await;
    // An urgent case is not resolved by one click: without the confirmation it stays open,
    // and the page names the problem and offers the forms again.
    let r = step(vec![
        ("csrf", csrf.clone()),
        ("step", "resolve".into()),
        ("note", "入院".into()),
    ])
    .await;
    assert_eq!(r.status(), 422);
    let problem = r.text().await.unwrap();
    assert!(
        problem.contains("<title>エラー: ") && problem.contains(r#"name="confirm""#),
        "{problem}"
    );
    step(vec![
        ("csrf", csrf.clone()),
        ("step", "resolve".into()),
        ("note", "入院".into()),
        ("confirm", "yes".into()),
    ])
    .await;
    let r = step(vec![("csrf", csrf.clone()), ("step", "acknowledge".into())]).await;
    assert_eq!(r.status(), 409, "a resolved escalation takes no more steps");

    let queue = app.get("/escalations").await.text().await.unwrap();
    assert!(
        !queue.contains(&format!("/persons/{urgent}\"")),
        "resolved leaves the queue"
    );
    // Undone within its minutes: back on the queue, taken on as before; then resolved again.
    let r = app
        .post_form(
            &format!("/escalations/{esc}/undo"),
            &[("csrf", csrf.as_str()), ("back", "/escalations")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let queue = app.get("/escalations").await.text().await.unwrap();
    assert!(
        queue.contains(&format!("/persons/{urgent}\"")),
        "undo puts it back"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM escalations WHERE status = 'acknowledged'")
            .await,
        1
    );
    step(vec![
        ("csrf", csrf.clone()),
        ("step", "resolve".into()),
        ("note", "入院".into()),
        ("confirm", "yes".into()),
    ])
    .await;
    let page = app
        .get(&format!("/persons/{urgent}"))
        .await
        .text()
        .await
        .unwrap();
    for text in [
        "本人と通話、受診調整へ",
        "入院調整",
        "解決",
        "対応開始",
        "取り消し",
        "看護師 一郎",
    ] {
        assert!(page.contains(text), "timeline shows {text}");
    }
    let kinds: Vec<String> = with_db!(&app.db, p => sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE target_id = $1 AND action LIKE 'escalation.%' ORDER BY id").bind(urgent).fetch_all(p).await.unwrap());
    // Opening is audited too: every escalation goes through `escalations::raise`.
    assert_eq!(
        kinds,
        [
            "escalation.open",
            "escalation.acknowledged",
            // The refused steps (an unknown action, a resolve without confirmation) show
            // the case again: a read.
            "escalation.view",
            "escalation.action",
            "escalation.action",
            "escalation.view",
            "escalation.resolved",
            "escalation.undo",
            "escalation.resolved"
        ]
    );

    // An entry with an impossible SpO2 comes back as typed (ticked boxes too), nothing saved.
    let before = app.count("SELECT COUNT(*) FROM observations").await;
    let r = app
        .post_form(
            &format!("/persons/{urgent}/observations"),
            &[
                ("csrf", &csrf),
                ("spo2", "200"),
                ("yes", "cough"),
                ("note", "家族から電話で聞き取り"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("保存されていません")
            && html.contains(r#"value="200""#)
            && html.contains(r#"value="家族から電話で聞き取り""#)
            && html.contains(r#"name="yes" value="cough" checked"#),
        "{html}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM observations").await, before);

    // A new trigger after resolution opens a new escalation.
    let again = app
        .post_form(
            &format!("/persons/{urgent}/observations"),
            &[
                ("csrf", &csrf),
                ("spo2", "91"),
                ("reporter", "family"),
                ("note", "家族から電話"),
            ],
        )
        .await;
    assert_eq!(again.status(), 303);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM escalations WHERE status <> 'resolved' AND reason = 'spo2_low'"
        )
        .await,
        2
    );
    let page = app
        .get(&format!("/persons/{urgent}"))
        .await
        .text()
        .await
        .unwrap();
    // Source and reporter in words: entered by staff, told by the family.
    assert!(page.contains("家族から電話") && page.contains("職員・委託先の入力 / 家族"));
    app.finish().await;
}

#[tokio::test]
async fn escalations_of_another_health_centre_cannot_be_touched() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let pid = crate::helpers::person_elsewhere(&app).await;
    let esc = mimamori_core::store::escalations::open(
        &app.db,
        mimamori_core::store::escalations::Raise {
            person_id: pid,
            reason: "callback",
            priority: mimamori_core::rules::Priority::High,
            detail: "test",
            actor: mimamori_core::store::Actor::System,
        },
    )
    .await
    .unwrap()
    .escalation_id;
    let r = app
        .post_form(
            &format!("/escalations/{esc}/steps"),
            &[("csrf", &csrf), ("step", "resolve")],
        )
        .await;
    assert_eq!(r.status(), 404);
    assert!(
        !app.get("/escalations")
            .await
            .text()
            .await
            .unwrap()
            .contains(&format!("/persons/{pid}\""))
    );
    app.finish().await;
}

#[tokio::test]
async fn two_missed_checkins_in_a_row_escalate_as_non_reporting() {
    let app = spawn_app().await;
    app.login().await;
    let p = mimamori_core::store::persons::PersonInput {
        name: "x".into(),
        email: "x@example.jp".into(),
        channel: "email".into(),
        observation_start: today(),
        observation_end: today(),
        checkin_time: "00:00".into(),
        ..Default::default()
    }
    .parse()
    .unwrap();
    let pid = mimamori_core::store::persons::create(
        &app.db,
        mimamori_core::store::Actor::System,
        app.centre,
        &p,
        chrono::Duration::hours(1),
        None,
    )
    .await
    .unwrap();
    // Yesterday's check-in was missed too; today's deadline has passed.
    let now = mimamori_core::db::now();
    with_db!(&app.db, p => {
        sqlx::query("INSERT INTO checkins (person_id, local_date, slot, due_at, deadline_at, status, attempts) VALUES ($1, $2, 0, $3, $3, 'missed', 0)")
            .bind(pid).bind(chrono::Utc::now().date_naive() - chrono::Duration::days(1)).bind(now - chrono::Duration::days(1)).execute(p).await.unwrap();
        sqlx::query("UPDATE checkins SET deadline_at = $1 WHERE person_id = $2 AND status <> 'missed'")
            .bind(now - chrono::Duration::minutes(1)).bind(pid).execute(p).await.unwrap();
    });
    for _ in 0..100 {
        if app
            .count("SELECT COUNT(*) FROM escalations WHERE reason = 'non_reporting'")
            .await
            == 1
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM escalations WHERE reason = 'non_reporting'")
            .await,
        1
    );
    let list = app
        .get("/persons?list=non_reporting")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains(&format!("/persons/{pid}\"")));
    app.finish().await;
}

#[tokio::test]
async fn cohort_shows_sparklines_most_worrying_first() {
    let app = spawn_app().await;
    app.login().await;
    let calm = person_answering(&app, "080-2000-0001", "+818020000001", "98", "no").await;
    let worried = person_answering(&app, "080-2000-0002", "+818020000002", "97", "yes").await;
    let page = app.get("/cohort").await.text().await.unwrap();
    let (pw, pc) = (
        page.find(&format!("/persons/{worried}\"")).unwrap(),
        page.find(&format!("/persons/{calm}\"")).unwrap(),
    );
    assert!(pw < pc, "the person with an urgent escalation comes first");
    assert_eq!(page.matches(r#"class="sparkline""#).count(), 2);
    assert!(page.contains("37.2 ℃ / 98 %"));
    app.finish().await;
}

/// Over HTTP: recording a hospital stay answers with the person now admitted, bad input
/// names each field, and the review queue filters by current residence and by contractor.
#[tokio::test]
async fn the_queue_filters_by_residence_and_contractor() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let a = person_answering(&app, "080-3000-0001", "+818030000001", "93", "no").await;
    let b = person_answering(&app, "080-3000-0002", "+818030000002", "93", "no").await;
    let r = app
        .post_json(
            &format!("/api/v1/persons/{a}/residences"),
            &json!({"kind": "castle", "from_date": "tomorrow"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let r = app
        .post_json(
            &format!("/api/v1/persons/{a}/residences"),
            &json!({"kind": "hospital", "place": "みなと病院"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (p["status"].as_str(), p["residence_kind"].as_str()),
        (Some("admitted"), Some("hospital"))
    );

    let in_queue = |html: &str, id: i64| html.contains(&format!("/persons/{id}\""));
    let hospital = app
        .get("/escalations?residence=hospital")
        .await
        .text()
        .await
        .unwrap();
    assert!(in_queue(&hospital, a) && !in_queue(&hospital, b));
    let home = app
        .get("/escalations?residence=home")
        .await
        .text()
        .await
        .unwrap();
    assert!(!in_queue(&home, a) && in_queue(&home, b));

    let centre: i64 = with_db!(&app.db, p => sqlx::query_scalar(
        "SELECT health_centre_id FROM staff WHERE username = 'nurse'").fetch_one(p).await.unwrap());
    let org = mimamori_core::store::staff::create_organisation(
        &app.db,
        "contractor",
        "みまもり委託",
        centre,
    )
    .await
    .unwrap();
    let r = app
        .post_form(
            &format!("/persons/{b}/assign"),
            &[("csrf", &csrf), ("organisation_id", &org.to_string())],
        )
        .await;
    assert_eq!(r.status(), 303);
    let by_org = app
        .get(&format!("/escalations?org={org}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!in_queue(&by_org, a) && in_queue(&by_org, b));
    app.finish().await;
}

/// An urgent answer's staff alert leaves when it is queued, not at the alert worker's next
/// look: with that look set to ten minutes, the on-duty nurse still has the alert within the
/// test's wait (10 s) — on PostgreSQL through the database's announcement to the worker, on
/// SQLite through the answer writer waking it after the commit. A high (not urgent) answer
/// queues no alert.
#[tokio::test]
async fn an_urgent_answer_alerts_the_nurse_at_once_not_at_the_next_poll() {
    let app = spawn_app_with(|c| c.workers.alert_interval_ms = 600_000).await;
    app.login().await;
    with_db!(&app.db, p => sqlx::query("UPDATE staff SET on_duty = TRUE, phone = '+819099990001' WHERE username = 'nurse'")
        .execute(p).await.unwrap().rows_affected());
    // Let the worker's first look (at its start) pass, so only a wake-up can send.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let high = person_answering(&app, "080-1000-0011", "+818010000011", "95", "no").await;
    let urgent = person_answering(&app, "080-1000-0012", "+818010000012", "93", "no").await;
    let note = app.wait_for_message("+819099990001").await;
    assert!(note.body.contains(&format!("/persons/{urgent}")));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM notifications").await,
        1,
        "one alert, for the urgent answer only (not person {high})"
    );
    app.finish().await;
}
