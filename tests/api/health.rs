use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_reports_a_reachable_database() {
    let app = spawn_app().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["database"]["reachable"], true);
    assert_eq!(
        v["database"]["backend"],
        mimamori_core::testing::requested_backend()
    );
    app.finish().await;
}

#[tokio::test]
async fn healthz_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    // An outage takes both pools: the console's and the patient lane's (which serves
    // /healthz, so a console overload never makes the process look dead).
    app.app_db.close().await;
    app.app_patient_db.close().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["database"]["reachable"], false);
    app.finish().await;
}

/// An SMTP URL pointing at a closed port does not start silently: the start-up check raises
/// an operator alarm (`/healthz` degraded, naming SMTP) while patients are still served.
#[tokio::test]
async fn a_dead_smtp_server_is_an_operator_alarm_at_start_up() {
    let closed = crate::peers::free_port();
    let app = crate::helpers::spawn_app_with(move |c| {
        c.smtp.url = Some(format!("smtp://127.0.0.1:{closed}"));
        c.http.metrics_token = secrecy::SecretString::from("scrape-me");
    })
    .await;
    let mut v = serde_json::Value::Null;
    for _ in 0..100 {
        v = app.get("/healthz").await.json().await.unwrap();
        if v["status"] == "degraded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(v["status"], "degraded", "{v}");
    assert_eq!(v["operator_alarms"][0]["provider"], "smtp");
    assert!(
        v["operator_alarms"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("cannot connect")
    );
    // The alarm is a metric too (counts only, behind a bearer token).
    assert_eq!(app.get("/metrics").await.status(), 401);
    let m = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains(r#"mimamori_operator_alarm{provider="smtp"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"mimamori_operator_alarm{provider="twilio"} 0"#),
        "{m}"
    );
    assert!(
        m.contains(r#"mimamori_open_escalations{priority="urgent"} 0"#),
        "{m}"
    );
    assert!(m.contains("mimamori_pending_staff_alerts 0"), "{m}");
    for path in ["one_statement", "rule_fired", "rebuilt", "read_changed"] {
        assert!(
            m.contains(&format!(
                "mimamori_answer_batches_total{{path=\"{path}\"}} "
            )),
            "{m}"
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn metrics_are_off_without_a_token() {
    let app = crate::helpers::spawn_app().await;
    assert_eq!(app.get("/metrics").await.status(), 404);
    app.finish().await;
}
