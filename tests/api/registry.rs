//! The case registry over HTTP: a case registered with its onset date gets the period of the
//! rules; a second registration of the same person is stopped with the candidates (API 409,
//! console panel) until confirmed; tests and severity are recorded; a close contact
//! registered from the case is linked to it and receives today's check-in.
use serde_json::json;

use crate::helpers::{spawn_app, today};

#[tokio::test]
async fn a_case_its_records_a_duplicate_and_a_contact() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let case = json!({
        "name": "山田 花子", "name_kana": "ヤマダ ハナコ", "date_of_birth": "1950-04-01",
        "phone": "090-5000-0001", "onset_date": today(), "checkin_time": "23:59",
        "sex": "female", "prefecture_code": "13", "municipality": "港区"
    });
    let r = app.post_json("/api/v1/persons", &case).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let p: serde_json::Value = r.json().await.unwrap();
    let id = p["id"].as_i64().unwrap();
    assert_eq!(p["period_rule"], "2022-09-07");
    let end = chrono::NaiveDate::parse_from_str(&today(), "%Y-%m-%d").unwrap()
        + chrono::Duration::days(7);
    assert_eq!(p["observation_end"], end.to_string());

    // The same person typed again, in half-width kana with another phone.
    let again = json!({
        "name": "山田花子", "name_kana": "ﾔﾏﾀﾞ ﾊﾅｺ", "date_of_birth": "1950-04-01",
        "phone": "090-5000-0009", "onset_date": today()
    });
    let r = app.post_json("/api/v1/persons", &again).await;
    assert_eq!(r.status(), 409);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "possible_duplicate");
    assert_eq!(e["error"]["candidates"][0]["id"], id);
    assert_eq!(
        e["error"]["candidates"][0]["matched"],
        json!(["name_kana", "date_of_birth"])
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM persons").await,
        1,
        "nothing registered"
    );
    let page = app
        .post_form(
            "/persons",
            &[
                ("csrf", &csrf),
                ("name", "山田花子"),
                ("name_kana", "やまだ はなこ"),
                ("date_of_birth", "1950-04-01"),
                ("phone", "090-5000-0009"),
                ("onset_date", &today()),
            ],
        )
        .await;
    assert_eq!(page.status(), 409);
    let html = page.text().await.unwrap();
    assert!(html.contains("同一人物の可能性") && html.contains(&format!("/persons/{id}\"")));
    assert!(html.contains(r#"name="not_duplicate""#) && html.contains(r#"value="やまだ はなこ""#));
    let mut confirmed = again.clone();
    confirmed["not_duplicate"] = json!(true);
    assert_eq!(
        app.post_json("/api/v1/persons", &confirmed).await.status(),
        201
    );

    // Tests and severity.
    let r = app
        .post_json(
            &format!("/api/v1/persons/{id}/tests"),
            &json!({"specimen_date": today(), "method": "antigen_quantitative", "result": "positive"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .post_json(
            &format!("/api/v1/persons/{id}/tests"),
            &json!({"specimen_date": "2026-02-30"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"]["fields"][0]["field"], "specimen_date");
    let r = app
        .post_json(
            &format!("/api/v1/persons/{id}/severities"),
            &json!({"level": "moderate1"}),
        )
        .await;
    assert_eq!(r.status(), 201);

    // A close contact from the case, in one step.
    let yesterday = chrono::NaiveDate::parse_from_str(&today(), "%Y-%m-%d").unwrap()
        - chrono::Duration::days(1);
    let r = app
        .post_json(
            &format!("/api/v1/persons/{id}/contacts"),
            &json!({"name": "山田 太郎", "phone": "090-5000-0002", "last_exposure_date": yesterday.to_string(), "checkin_time": "00:00"}),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let c: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (
            c["monitoring_type"].as_str(),
            c["source_person_id"].as_i64()
        ),
        (Some("contact"), Some(id))
    );
    let msg = app.wait_for_message("+819050000002").await;
    assert!(
        msg.body.contains("/c/"),
        "the contact gets today's check-in link"
    );
    let links: Vec<serde_json::Value> = app
        .get(&format!("/api/v1/persons/{id}/contacts"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(links.len(), 1);

    let page = app
        .get(&format!("/persons/{id}"))
        .await
        .text()
        .await
        .unwrap();
    for part in [
        "ヤマダ ハナコ",
        "陽性",
        "中等症I",
        "山田 太郎",
        "規則 2022-09-07",
    ] {
        assert!(page.contains(part), "{part}");
    }
    app.finish().await;
}
