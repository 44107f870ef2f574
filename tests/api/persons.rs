use serde_json::json;

use crate::helpers::{spawn_app, today};

#[tokio::test]
async fn api_registers_reads_and_audits_a_person() {
    let app = spawn_app().await;
    app.login().await;
    let r = app
        .post_json(
            "/api/v1/persons",
            &json!({
                "name": "山田 花子", "phone": "090-1234-5678", "channel": "sms",
                "observation_start": today(), "observation_end": today(), "checkin_time": "09:00"
            }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["phone"], "+819012345678");
    assert_eq!(p["status"], "observing");
    let id = p["id"].as_i64().unwrap();
    let r = app.get(&format!("/api/v1/persons/{id}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["name"],
        "山田 花子"
    );
    let r = app.get(&format!("/api/v1/persons/{id}/checkins")).await;
    assert_eq!(
        r.json::<Vec<serde_json::Value>>().await.unwrap().len(),
        1,
        "today's check-in planned at registration"
    );
    // create + read after create + read + read for checkins, each with the client address.
    let ips: Vec<Option<String>> = mimamori_core::with_db!(&app.db, pool => sqlx::query_scalar(
        "SELECT ip FROM audit_log WHERE target_kind = 'person' AND actor_kind = 'staff' ORDER BY id").fetch_all(pool).await.unwrap());
    assert_eq!(ips.len(), 4);
    assert!(ips.iter().all(|ip| ip.as_deref() == Some("127.0.0.1")));
    app.finish().await;
}

/// The framework's own refusals (a path id that is not a number, a query that does not parse,
/// a body that is not JSON) come in the API's JSON error body, as the document says.
#[tokio::test]
async fn malformed_api_requests_get_the_json_error_body() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    for (r, status, code) in [
        (app.get("/api/v1/persons/abc").await, 400, "bad_request"),
        (app.get("/api/v1/persons?page=x").await, 400, "bad_request"),
        (
            app.client
                .post(app.url("/api/v1/persons"))
                .header("x-csrf-token", &csrf)
                .header("content-type", "text/plain")
                .body("name=x")
                .send()
                .await
                .unwrap(),
            415,
            "unsupported_media_type",
        ),
        (
            app.client
                .post(app.url("/api/v1/persons"))
                .header("x-csrf-token", &csrf)
                .header("content-type", "application/json")
                .body("{not json")
                .send()
                .await
                .unwrap(),
            400,
            "bad_request",
        ),
    ] {
        assert_eq!(r.status(), status);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }
    // A struct is not read from an array by position: `[null, null]` is no change at all.
    let id = app.register("090-1234-0009", "sms", json!({})).await;
    let r = app
        .client
        .patch(app.url(&format!("/api/v1/persons/{id}")))
        .json(&json!([null, null]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object"),
        "{v}"
    );
    let doc: serde_json::Value = app.get("/api/openapi.json").await.json().await.unwrap();
    assert!(doc["paths"]["/api/v1/persons/{id}"]["get"]["responses"]["400"].is_object());
    assert!(doc["paths"]["/api/v1/persons"]["post"]["responses"]["415"].is_object());
    // Optional fields are `nullable`, which is OpenAPI 3.0's keyword: the document says 3.0.
    assert_eq!(doc["openapi"], "3.0.3");
    assert_eq!(
        doc["components"]["schemas"]["Infection"]["properties"]["link"]["nullable"],
        true
    );
    app.finish().await;
}

#[tokio::test]
async fn api_rejects_bad_input_naming_every_field_and_writes_nothing() {
    let app = spawn_app().await;
    app.login().await;
    let r = app
        .post_json(
            "/api/v1/persons",
            &json!({
                "name": "", "phone": "12-34", "channel": "sms",
                "observation_start": "2026-12-10", "observation_end": "2026-12-01"
            }),
        )
        .await;
    assert_eq!(r.status(), 422);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid");
    let fields: Vec<&str> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "phone", "observation_end"]);
    assert!(
        v["error"]["fields"][2]["reason"]
            .as_str()
            .unwrap()
            .contains("on or after")
    );
    let r = app
        .client
        .post(app.url("/api/v1/persons"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("request body")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM persons").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM checkins").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn console_form_shows_errors_inline_and_keeps_what_was_typed() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let base = [
        ("name", "佐藤 太郎"),
        ("phone", "abc"),
        ("channel", "sms"),
        ("language", "ja"),
        ("monitoring_type", "patient"),
        ("observation_start", "2026-11-24"),
        ("observation_end", "2026-11-30"),
        ("checkin_time", "09:00"),
    ];
    let r = app.post_form("/persons", &base).await;
    assert_eq!(r.status(), 400, "no CSRF token");
    let mut with_csrf = base.to_vec();
    with_csrf.push(("csrf", &csrf));
    let r = app.post_form("/persons", &with_csrf).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("090-1234-5678") && html.contains(r#"value="佐藤 太郎""#),
        "error names the fix and keeps input"
    );
    assert!(html.contains(r#"aria-invalid="true""#));
    // The summary names the field in words and links to it; the title says "Error".
    assert!(html.contains("<title>エラー: ") && html.contains(r##"<a href="#phone">電話番号："##));
    assert!(
        html.contains("<h1>対象者の登録</h1>"),
        "the heading stays as it was"
    );
    assert!(
        !html.contains(">phone:"),
        "no field codes in the Japanese console"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM persons").await, 0);
    app.finish().await;
}

/// Codes are shown in words: sex, the prefecture by name, how each message went out.
#[tokio::test]
async fn the_japanese_console_shows_words_not_codes() {
    let app = spawn_app().await;
    app.login().await;
    let id = app
        .register(
            "080-5656-0001",
            "sms",
            serde_json::json!({"sex": "male", "prefecture_code": "13", "municipality": "港区"}),
        )
        .await;
    app.wait_for_message("+818056560001").await;
    let record = app
        .get(&format!("/persons/{id}?tab=record"))
        .await
        .text()
        .await
        .unwrap();
    assert!(record.contains("<dd>男性</dd>"), "{record}");
    assert!(record.contains("東京都 港区"));
    let mut page = String::new();
    for _ in 0..50 {
        page = app
            .get(&format!("/persons/{id}"))
            .await
            .text()
            .await
            .unwrap();
        if page.contains("送信済み") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        page.contains("初回 · SMS · <strong>送信済み</strong>"),
        "{page}"
    );
    assert!(!page.contains("initial sms"));
    app.finish().await;
}

#[tokio::test]
async fn people_of_another_health_centre_are_not_found() {
    let app = spawn_app().await;
    app.login().await;
    let id = crate::helpers::person_elsewhere(&app).await;
    assert_eq!(
        app.get(&format!("/api/v1/persons/{id}")).await.status(),
        404
    );
    assert_eq!(app.get(&format!("/persons/{id}")).await.status(), 404);
    let list = app.get("/persons").await.text().await.unwrap();
    assert!(!list.contains(&format!("/persons/{id}\"")));
    app.finish().await;
}

/// Staff move a person from an SMS at 23:59 to an automated call now: the answer is the
/// updated record, today's check-in is re-planned and goes out as a call at once. Bad input
/// names each field and changes nothing; the person page offers the same change as a form.
#[tokio::test]
async fn a_schedule_change_takes_effect_today() {
    // 23:59 is later today in Japan except in the last minutes before midnight, when the
    // SMS would be due at once: those minutes are waited out (the test failed once at 23:59).
    let japan = chrono::Utc::now() + chrono::Duration::hours(9);
    let late = chrono::NaiveTime::from_hms_opt(23, 57, 0).unwrap();
    if japan.time() >= late {
        let to_midnight = chrono::NaiveTime::from_hms_opt(23, 59, 59).unwrap() - japan.time();
        tokio::time::sleep(
            (to_midnight + chrono::Duration::seconds(5))
                .to_std()
                .unwrap(),
        )
        .await;
    }
    let app = spawn_app().await;
    let csrf = app.login().await;
    let id = app
        .register("090-7777-0001", "sms", json!({"checkin_time": "23:59"}))
        .await;
    let patch = |body: serde_json::Value| {
        app.client
            .patch(app.url(&format!("/api/v1/persons/{id}/schedule")))
            .json(&body)
            .send()
    };
    let r = patch(json!({"checkin_time": "25:00", "channel": "pigeon"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let fields = crate::helpers::invalid_fields(r).await;
    assert_eq!(fields, ["channel", "checkin_time"]);

    let r = patch(json!({"checkin_time": "00:00", "channel": "voice"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["channel"],
        "voice"
    );
    let call = app.wait_for_message("+819077770001").await;
    assert_eq!(
        call.channel, "voice",
        "today's check-in went out on the new channel"
    );

    let page = app
        .get(&format!("/persons/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!(r#"action="/persons/{id}/schedule""#))
            && page.contains(r#"value="00:00""#)
    );
    let r = app
        .post_form(
            &format!("/persons/{id}/schedule"),
            &[
                ("csrf", &csrf),
                ("checkin_time", "09:00,17:00"),
                ("fallback_channel", "sms"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303, "back to the person page");
    // Impossible times: the page again with the times as typed and the problem beside them.
    let r = app
        .post_form(
            &format!("/persons/{id}/schedule"),
            &[("csrf", &csrf), ("checkin_time", "25:00,9時")],
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("保存されていません") && html.contains(r#"value="25:00,9時""#),
        "{html}"
    );
    let p: serde_json::Value = app
        .get(&format!("/api/v1/persons/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (p["channel"].as_str(), p["fallback_channel"].as_str()),
        (Some("voice"), Some("sms"))
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'person.schedule'")
            .await,
        2
    );
    app.finish().await;
}

/// Errors come in the request's language: the API in English unless `Accept-Language`
/// asks for Japanese, each field's `rule` the same in both; the console in its language
/// (Japanese first).
#[tokio::test]
async fn errors_speak_the_request_language() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let body = json!({"name": "", "phone": "12", "observation_start": today(), "observation_end": today()});
    let en: serde_json::Value = app
        .post_json("/api/v1/persons", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        en["error"]["fields"][0]["reason"],
        "enter the person's name"
    );
    let ja: serde_json::Value = app
        .client
        .post(app.url("/api/v1/persons"))
        .header("accept-language", "ja-JP,ja;q=0.9")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ja["error"]["fields"][0]["reason"], "氏名を入力してください");
    // The rule broken is named the same in both languages, for programs to match on.
    for f in 0..2 {
        let rule = &en["error"]["fields"][f]["rule"];
        assert!(rule.as_str().is_some_and(|r| !r.is_empty()), "{en}");
        assert_eq!(rule, &ja["error"]["fields"][f]["rule"]);
    }
    assert_eq!(en["error"]["fields"][0]["rule"], "enter-the-person-s-name");
    let phone = ja["error"]["fields"][1]["reason"].as_str().unwrap();
    assert!(
        phone.contains("市外局番") || phone.contains("10桁"),
        "{phone}"
    );
    let page = app
        .post_form(
            "/persons",
            &[("csrf", &csrf), ("name", ""), ("observation_end", &today())],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("氏名を入力してください"),
        "the console shows Japanese"
    );
    app.finish().await;
}

/// A NUL character anywhere (a name, a search, a PATCH field, a console form, a provider's
/// `From`) is a clear field error on both backends — never a 500 from PostgreSQL — and
/// nothing is written. A body over the limit is 413 with a JSON error.
#[tokio::test]
async fn nul_characters_and_huge_bodies_are_clear_errors() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let before = app.count("SELECT COUNT(*) FROM persons").await;
    let field_of = |v: &serde_json::Value| {
        v["error"]["fields"][0]["field"]
            .as_str()
            .map(str::to_string)
    };

    let r = app
        .post_json(
            "/api/v1/persons",
            &json!({
                "name": "山田\u{0}花子", "phone": "090-1234-5678", "channel": "sms",
                "observation_start": today(), "observation_end": today(), "checkin_time": "09:00"
            }),
        )
        .await;
    assert_eq!(r.status(), 422);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(field_of(&v).as_deref(), Some("name"));
    assert!(
        v["error"]["fields"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("NUL")
    );

    let r = app.get("/api/v1/persons?q=%00").await;
    assert_eq!(r.status(), 422);
    assert_eq!(field_of(&r.json().await.unwrap()).as_deref(), Some("q"));
    assert_eq!(
        app.get("/persons?q=a%00b").await.status(),
        422,
        "console search"
    );

    let id = app.register("090-1234-0001", "sms", json!({})).await;
    let r = app
        .client
        .patch(app.url(&format!("/api/v1/persons/{id}")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"address": "港区\u{0}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(
        field_of(&r.json().await.unwrap()).as_deref(),
        Some("address")
    );

    let r = app
        .post_form(
            "/persons",
            &[
                ("csrf", csrf.as_str()),
                ("name", "a\0b"),
                ("phone", "090-1111-2222"),
            ],
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("NUL"));

    let r = app
        .client
        .post(app.url("/hooks/twilio/sms"))
        .form(&[
            ("MessageSid", "SMx"),
            ("From", "+81\u{0}90"),
            ("Body", "STOP"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        422,
        "refused before the signature is even looked at"
    );

    let huge = "x".repeat(3 * 1024 * 1024);
    let r = app
        .post_json("/api/v1/persons", &json!({ "name": huge }))
        .await;
    assert_eq!(r.status(), 413);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "too_large");
    // A huge webhook is "too large" (not a signature refusal), and a huge patient form gets
    // the bilingual page.
    for kind in ["application/x-www-form-urlencoded"] {
        let r = app
            .client
            .post(app.url("/hooks/twilio/sms"))
            .header("content-type", kind)
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{kind}");
    }
    let r = app
        .client
        .post(app.url("/c/1.2.abc"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("temperature={huge}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let page = r.text().await.unwrap();
    assert!(page.contains("送信内容が大きすぎます") && page.contains("Too much at once"));
    let r = app
        .client
        .post(app.url("/c/1.2.abc"))
        .header("content-type", "text/plain")
        .body("temperature=36.5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let page = r.text().await.unwrap();
    assert!(page.contains("回答を読み取れませんでした") && page.contains("could not be read"));

    assert_eq!(
        app.count("SELECT COUNT(*) FROM persons").await,
        before + 1,
        "only the good one"
    );
    app.finish().await;
}
