//! Our client and webhooks against the real peers (see `peers.rs`).
use crate::helpers::today;
use secrecy::SecretString;
use serde_json::json;

use crate::{
    helpers::{TestApp, spawn_app_with},
    peers,
};

async fn attempts(app: &TestApp) -> Vec<(String, String, Option<String>, Option<String>)> {
    mimamori_core::with_db!(&app.db, p => sqlx::query_as(
        "SELECT channel, status, provider_id, error FROM contact_attempts ORDER BY id").fetch_all(p).await.unwrap())
}

/// SMS and a voice call sent through Prism validating against Twilio's OpenAPI: any
/// request that breaks the contract (missing To, bad auth, wrong encoding) gets a 4xx and
/// the attempt would fail.
#[tokio::test]
async fn our_requests_satisfy_twilios_openapi_contract() {
    let (_prism, base) = peers::prism().await;
    let app = spawn_app_with(move |c| {
        c.twilio.api_base = base;
        c.twilio.account_sid = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into();
        c.twilio.auth_token = SecretString::from("prism-token");
        c.twilio.sms_from = vec!["+815000000001".into()];
        c.twilio.request_timeout_secs = 30;
    })
    .await;
    app.login().await;
    for (phone, channel) in [("090-7777-0001", "sms"), ("090-7777-0002", "voice")] {
        let r = app.post_json("/api/v1/persons", &json!({
            "name": "x", "phone": phone, "channel": channel, "observation_start": today(), "observation_end": today(), "checkin_time": "00:00"
        })).await;
        assert_eq!(r.status(), 201);
    }
    let mut got = Vec::new();
    for _ in 0..300 {
        got = attempts(&app).await;
        if got.len() == 2 && got.iter().all(|a| a.1 != "queued") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(got.len(), 2, "{got:?}");
    for (channel, status, provider_id, error) in &got {
        assert_eq!(
            status, "sent",
            "{channel}: Prism refused our request: {error:?}"
        );
        let prefix = if channel == "voice" { "CA" } else { "SM" };
        assert!(
            provider_id.as_deref().unwrap().starts_with(prefix),
            "{got:?}"
        );
    }
    app.finish().await;
}

/// A request signed by Twilio's own SDK is accepted; the same request with one parameter
/// changed is refused and stores nothing.
#[tokio::test]
async fn webhooks_accept_signatures_made_by_twilios_sdk() {
    let app = spawn_app_with(|c| {
        c.twilio.auth_token = SecretString::from("sdk-token-123");
    })
    .await;
    let url = format!("{}/hooks/twilio/sms", app.base);
    let params = [
        ("MessageSid", "SM1"),
        ("From", "+819000000000"),
        ("Body", "こんにちは"),
        ("To", "+815000000001"),
    ];
    let sig = peers::sdk_signature("sdk-token-123", &url, &params);
    let ours = mimamori_core::signature::sign(
        "sdk-token-123",
        &url,
        &params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(sig, ours, "our signing agrees with the SDK");
    let client = reqwest::Client::new();
    let r = client
        .post(&url)
        .header("X-Twilio-Signature", &sig)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<Message>"));
    let mut changed = params;
    changed[2] = ("Body", "STOP");
    let r = client
        .post(&url)
        .header("X-Twilio-Signature", &sig)
        .form(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_events").await, 1);
    app.finish().await;
}

/// E-mail check-ins over SMTP to a real server: multipart text + HTML with the signed link,
/// and the link works.
#[tokio::test]
async fn email_checkins_reach_a_real_smtp_server() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let (_smtp, port) = peers::smtp_server(&maildir).await;
    let app = spawn_app_with(move |c| {
        c.smtp.url = Some(format!("smtp://127.0.0.1:{port}"));
        c.smtp.from = "みなと保健所 <hoken@example.jp>".into();
    })
    .await;
    app.login().await;
    let r = app.post_json("/api/v1/persons", &json!({
        "name": "x", "email": "hanako@example.jp", "channel": "email", "observation_start": today(),
        "observation_end": today(), "checkin_time": "00:00"
    })).await;
    assert_eq!(r.status(), 201);
    let mut mail = String::new();
    for _ in 0..100 {
        mail = std::fs::read_dir(maildir.join("new"))
            .map(|d| {
                d.flatten()
                    .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        if !mail.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(mail.contains("To: hanako@example.jp"), "{mail}");
    assert!(
        mail.contains("multipart/alternative")
            && mail.contains("text/html")
            && mail.contains("text/plain")
    );
    assert!(mail.contains("Message-ID: <checkin-"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_messages").await,
        0,
        "not the dev outbox"
    );
    let parsed = mailparse::parse_mail(mail.as_bytes()).unwrap();
    assert_eq!(parsed.subparts.len(), 2);
    let text = parsed.subparts[0].get_body().unwrap();
    let html = parsed.subparts[1].get_body().unwrap();
    assert!(
        text.contains("の体温と体調を次のリンクから") && html.contains("<a href="),
        "{text}\n{html}"
    );
    let subject = parsed
        .headers
        .iter()
        .find(|h| h.get_key() == "Subject")
        .unwrap()
        .get_value();
    assert!(
        subject.starts_with("【テスト保健所】xさんの健康観察（") && subject.ends_with("）のお願い"),
        "whose check-in and the day, in a real mail client's header: {subject}"
    );
    let start = text
        .find(&format!("{}/c/", app.base))
        .expect("link in the text part");
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert!(html.contains(&link));
    let r = reqwest::get(&link).await.unwrap();
    assert_eq!(r.status(), 200, "{link}");
    // Answered through the e-mail's link: the observation says so.
    let r = reqwest::Client::new()
        .post(&link)
        .form(&crate::helpers::answers(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sources: Vec<String> = mimamori_core::with_db!(&app.db, p => sqlx::query_scalar(
        "SELECT source FROM observations").fetch_all(p).await.unwrap());
    assert_eq!(sources, ["email"]);
    app.finish().await;
}

/// The OpenAPI document at `/api/openapi.json` is generated from the route table and the
/// Rust types: a real validator (openapi-spec-validator) accepts it, it has every routed
/// operation, and its schemas are those of the requests (e.g. registration's fields).
#[tokio::test]
async fn the_openapi_document_is_valid_and_complete() {
    crate::peers::python_peer(crate::peers::OPENAPI_SPEC_VALIDATOR);
    let app = crate::helpers::spawn_app().await;
    let r = reqwest::get(app.url("/api/openapi.json")).await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value = r.json().await.unwrap();
    let ops: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    // 25 routes, the sections' one listed once per section (each with its own schema).
    let sections = mimamori_core::store::sections::Section::ALL;
    assert_eq!(
        ops,
        24 + sections.len(),
        "every routed operation is documented"
    );
    for s in sections {
        let op = &doc["paths"][format!("/api/v1/persons/{{id}}/sections/{}", s.key())]["put"];
        assert_eq!(op["operationId"], format!("put_section_{}", s.key()));
        let body = &op["requestBody"]["content"]["application/json"]["schema"]["$ref"];
        assert!(
            body.as_str()
                .is_some_and(|r| r.starts_with("#/components/schemas/")),
            "{op}"
        );
    }
    let reg = &doc["paths"]["/api/v1/persons"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["$ref"];
    assert_eq!(reg, "#/components/schemas/PersonInput");
    let fields = doc["components"]["schemas"]["PersonInput"]["properties"]
        .as_object()
        .unwrap();
    assert!(fields.contains_key("name_kana") && fields.contains_key("not_duplicate"));
    // A field's form in the schema, and in words what its pattern leaves out.
    assert_eq!(fields["date_of_birth"]["anyOf"][1]["format"], "date");
    assert!(
        fields["sex"]["enum"]
            .as_array()
            .is_some_and(|e| e.len() == 5)
    );
    let phone = fields["phone"]["description"].as_str().unwrap_or_default();
    assert!(phone.contains("090-1234-5678"), "{phone}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    app.finish().await;
}

/// The live check's lookups (account, incoming numbers) are requests Twilio's OpenAPI accepts:
/// Prism answers them (401 / 422 would mean our request is wrong) with documented shapes that
/// our client reads.
#[tokio::test]
async fn the_live_check_speaks_twilios_contract() {
    let (_prism, base) = peers::prism().await;
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mimamori"))
            .args(["check", "--live"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("MIMAMORI_CONFIG", "/nonexistent.toml")
            .env("MIMAMORI_TWILIO__API_BASE", base)
            .env(
                "MIMAMORI_TWILIO__ACCOUNT_SID",
                "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            )
            .env("MIMAMORI_TWILIO__AUTH_TOKEN", "prism-token")
            .env("MIMAMORI_TWILIO__SMS_FROM", "+815000000001")
            .env("MIMAMORI_TWILIO__REQUEST_TIMEOUT_SECS", "30")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for wrong in ["refuses", "cannot reach", "answered HTTP"] {
        assert!(!text.contains(wrong), "{text}");
    }
    assert!(text.contains("providers:"), "{text}");
}

/// Schemathesis — a fuzzer driven by our own OpenAPI document — against the running API with
/// a logged-in session: no server error, no response outside its documented schema, status
/// code or content type, no undocumented method accepted. Bounded (a few examples per
/// operation, fixed seed), every check on every operation, including that every schema-valid
/// request is accepted (`positive_data_acceptance`): the only refusals excused are the rules
/// OpenAPI 3.0 cannot state (a date in the future, checked against the request; rules across
/// fields or on the stored person), named by each field error's `rule`, in
/// `tests/api/schemathesis_hooks.py`. Session, merge and undo operations would end the
/// session or need prepared data.
#[tokio::test]
async fn schemathesis_finds_no_contract_breaks() {
    peers::python_peer(peers::SCHEMATHESIS);
    let app = crate::helpers::spawn_app().await;
    // A person the nurse may see, with both addresses: the operations on `/persons/{id}` are
    // sent to them with schema-valid data (a drawn id is almost never a person, and a 404
    // would leave the check that valid data is accepted with nothing to check).
    app.login().await;
    let person = app
        .register("090-1111-2222", "sms", json!({"email": "st@example.jp"}))
        .await;
    // Logged in by hand, to hand the session cookie to the fuzzer.
    let plain = reqwest::Client::new();
    let r = plain
        .post(app.url("/api/v1/session"))
        .json(&json!({"username": "nurse", "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .unwrap();
    let challenge: serde_json::Value = r.json().await.unwrap();
    let r = plain
        .post(app.url("/api/v1/session/mfa"))
        .json(&json!({"challenge": challenge["challenge"], "code": crate::helpers::totp_now()}))
        .send()
        .await
        .unwrap();
    let cookie = crate::helpers::session_cookie(&r);
    let cookie = cookie.split(';').next().unwrap().to_string();
    let csrf = r.json::<serde_json::Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let base = app.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args([
                "-c",
                "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'st'; schemathesis()",
                "--config-file",
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/schemathesis.toml"),
                "run",
                &format!("{base}/api/openapi.json"),
                "--url",
                &base,
                "-H",
                &format!("Cookie: {cookie}"),
                "-H",
                &format!("X-CSRF-Token: {csrf}"),
                "-n",
                "5",
                "--seed",
                "20261203",
                "--phases",
                "examples,coverage,fuzzing",
                "--exclude-path-regex",
                "session|merge|undo",
                "--no-color",
            ])
            .env("MIMAMORI_ST_PERSON", person.to_string())
            .env(
                "SCHEMATHESIS_HOOKS",
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/schemathesis_hooks.py"),
            )
            // Its cache of crashes goes to a temporary folder, not the source tree.
            .current_dir(std::env::temp_dir())
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // What the hooks excused, by operation and rule (shown with --nocapture).
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        if line.starts_with("excused") {
            eprintln!("{line}");
        }
    }
    assert!(
        out.status.success(),
        "schemathesis found contract breaks:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tested: usize = text
        .split("Tested: ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        tested >= 20,
        "the operations were tested ({tested}): {text}"
    );
    app.finish().await;
}
