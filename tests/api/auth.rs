use crate::helpers::{PASSWORD, spawn_app};

#[tokio::test]
async fn pages_redirect_to_login_and_api_answers_401_json() {
    let app = spawn_app().await;
    for path in ["/", "/persons", "/persons/new", "/outbox", "/persons/1"] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/login", "{path}");
    }
    let r = app.get("/api/v1/persons/1").await;
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthorized");
    app.finish().await;
}

#[tokio::test]
async fn login_with_password_sets_a_strict_http_only_cookie() {
    let app = spawn_app().await;
    let r = app
        .post_form("/login", &[("username", "nurse"), ("password", "wrong")])
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("パスワードが違います"));
    let r = app
        .post_form("/login", &[("username", "nobody"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status(), 401);

    let r = app
        .post_form("/login", &[("username", "nurse"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status(), 303, "the password alone is not enough");
    assert_eq!(r.headers()["location"], "/login/mfa");
    assert_eq!(app.get("/").await.status(), 303, "no session yet");
    let r = app.post_form("/login/mfa", &[("code", "000000")]).await;
    assert_eq!(r.status(), 401);
    let r = app
        .post_form("/login/mfa", &[("code", &crate::helpers::totp_now())])
        .await;
    assert_eq!(r.status(), 303);
    let cookie = crate::helpers::session_cookie(&r);
    assert!(cookie.starts_with("mimamori_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let home = app.get("/").await;
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    assert!(html.contains("テスト保健所") && html.contains("看護師 一郎"));
    // Tomorrow's delivery capacity (dev outbox: no rate limit, so it fits).
    assert!(
        html.contains(r#"id="capacity""#) && html.contains("すべて回答期限内に送信できます"),
        "{html}"
    );
    app.finish().await;
}

#[tokio::test]
async fn logout_needs_the_csrf_token_and_ends_the_session() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let r = app.post_form("/logout", &[("csrf", "forged")]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        app.get("/").await.status(),
        200,
        "still logged in after a forged logout"
    );
    let r = app.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.get("/").await.status(), 303, "logged out");
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn language_switch_renders_the_console_in_english() {
    let app = spawn_app().await;
    app.login().await;
    assert!(
        app.get("/persons/new")
            .await
            .text()
            .await
            .unwrap()
            .contains("観察開始日")
    );
    assert_eq!(app.get("/lang/en").await.status(), 303);
    let html = app.get("/persons/new").await.text().await.unwrap();
    assert!(html.contains("Observation starts") && html.contains(r#"lang="en""#));
    app.finish().await;
}

#[tokio::test]
async fn sms_code_through_the_outbox_and_lockout_after_repeated_failures() {
    let app = spawn_app().await;
    let id = mimamori_core::store::staff::staff_by_username(&app.db, "nurse")
        .await
        .unwrap()
        .unwrap()
        .id;
    mimamori_core::store::staff::set_totp(&app.db, id, None)
        .await
        .unwrap();
    mimamori_core::store::staff::set_contact(&app.db, id, Some("+819012341234"), None)
        .await
        .unwrap();
    let r = app
        .post_json(
            "/api/v1/session",
            &serde_json::json!({"username": "nurse", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (v["mfa"].as_str(), v["sent_to"].as_str()),
        (Some("sms"), Some("***1234"))
    );
    let sms = app.wait_for_message("+819012341234").await;
    let code: String = sms
        .body
        .split("code: ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = app
        .post_json(
            "/api/v1/session/mfa",
            &serde_json::json!({"challenge": v["challenge"], "code": wrong}),
        )
        .await;
    assert_eq!(r.status(), 401);
    let r = app
        .post_json(
            "/api/v1/session/mfa",
            &serde_json::json!({"challenge": v["challenge"], "code": code}),
        )
        .await;
    assert_eq!(r.status(), 200, "the code from the SMS logs in");
    let r = app
        .post_json(
            "/api/v1/session/mfa",
            &serde_json::json!({"challenge": v["challenge"], "code": code}),
        )
        .await;
    assert_eq!(r.status(), 401, "a challenge works once");

    // Five wrong passwords lock the account; even the right one is refused then — with the
    // very answer an unknown ID gets after as many tries (no account enumeration).
    for _ in 0..5 {
        app.post_form("/login", &[("username", "nurse"), ("password", "nope")])
            .await;
        app.post_form("/login", &[("username", "ghost"), ("password", "nope")])
            .await;
    }
    let real = app
        .post_form("/login", &[("username", "nurse"), ("password", PASSWORD)])
        .await;
    let ghost = app
        .post_form("/login", &[("username", "ghost"), ("password", PASSWORD)])
        .await;
    assert_eq!(
        (real.status().as_u16(), ghost.status().as_u16()),
        (401, 401)
    );
    let (real, ghost) = (real.text().await.unwrap(), ghost.text().await.unwrap());
    assert_eq!(real, ghost, "a locked ID answers as an unknown one");
    assert!(
        real.contains("しばらく"),
        "the answer says a lock may apply"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions").await,
        1,
        "only the session of the first login"
    );
    let failed: i64 = app
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'login.failed'")
        .await;
    assert_eq!(failed, 5);
    app.finish().await;
}

#[tokio::test]
async fn an_account_without_a_second_factor_cannot_log_in() {
    let app = spawn_app().await;
    let id = mimamori_core::store::staff::staff_by_username(&app.db, "nurse")
        .await
        .unwrap()
        .unwrap()
        .id;
    mimamori_core::store::staff::set_totp(&app.db, id, None)
        .await
        .unwrap();
    let r = app
        .post_json(
            "/api/v1/session",
            &serde_json::json!({"username": "nurse", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("No second factor"));
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn the_officer_reads_and_exports_the_audit_log_of_their_body() {
    use mimamori_core::{access::Role, store::staff};
    let app = spawn_app().await;
    app.login().await;
    let r = app.post_json("/api/v1/persons", &serde_json::json!({
        "name": "x", "phone": "09011110000", "observation_start": "2026-11-24", "observation_end": "2026-11-24"
    })).await;
    let person = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.get("/audit").await.status(),
        403,
        "a nurse is not an officer"
    );
    let hash: String = mimamori_core::with_db!(&app.db, p => sqlx::query_scalar("SELECT password_hash FROM staff WHERE username = 'nurse'").fetch_one(p).await.unwrap());
    let officer = staff::create_staff(&app.db, app.centre, "officer", &hash, "認証 担当")
        .await
        .unwrap();
    staff::set_role(&app.db, officer, Role::AuthOfficer, None)
        .await
        .unwrap();
    staff::set_totp(&app.db, officer, Some(crate::helpers::TOTP_SECRET))
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    crate::helpers::login_as(&app.base, &client, "officer").await;
    let page = client
        .get(app.url(&format!("/audit?person_id={person}&actor_id=")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("person.create")
            && html.contains("看護師 一郎")
            && html.contains("127.0.0.1")
    );
    let csv = client
        .get(app.url("/audit.csv?action=login."))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let body = csv.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert!(
        lines[0].ends_with("id,at,actor_kind,actor_id,actor_name,action,target_kind,target_id,ip")
    );
    assert!(lines.len() >= 3, "nurse's and officer's logins: {body}");
    assert!(lines[1..].iter().all(|l| l.contains(",login.")), "{body}");
    // Reading the log is audited too, and nothing can rewrite it.
    assert!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'audit.read'")
            .await
            >= 2
    );
    app.finish().await;
}

fn base32_decode(s: &str) -> Vec<u8> {
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => continue,
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    out
}

#[tokio::test]
async fn own_password_and_authenticator_app() {
    use base64::Engine;
    let app = spawn_app().await;
    let csrf = app.login().await;
    let change = |current: &'static str, new: &'static str| {
        let (app, csrf) = (&app, csrf.clone());
        async move {
            app.post_form(
                "/account/password",
                &[
                    ("csrf", csrf.as_str()),
                    ("current", current),
                    ("new", new),
                    ("again", new),
                ],
            )
            .await
        }
    };
    let r = change("wrong", "kawa sakana hikari 7").await;
    assert_eq!(r.status(), 422);
    let r = change(PASSWORD, "Password123456!").await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("commonly breached"));
    assert_eq!(change(PASSWORD, "kawa sakana hikari 7").await.status(), 200);
    let r = app
        .post_json(
            "/api/v1/session",
            &serde_json::json!({"username": "nurse", "password": "kawa sakana hikari 7"}),
        )
        .await;
    assert_eq!(r.status(), 202, "the new password works");

    // Enrol a new authenticator: the secret is shown, confirmed with a code from it.
    let page = app
        .post_form("/account/totp", &[("csrf", csrf.as_str())])
        .await
        .text()
        .await
        .unwrap();
    let secret = page
        .split(r#"class="totp-secret""#)
        .nth(1)
        .unwrap()
        .split('>')
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let b64 = base64::engine::general_purpose::STANDARD.encode(base32_decode(&secret));
    let code = mimamori::web::login::totp(&b64)
        .unwrap()
        .generate_current()
        .to_string();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        app.post_form(
            "/account/totp/confirm",
            &[("csrf", csrf.as_str()), ("code", wrong)]
        )
        .await
        .status(),
        422
    );
    assert_eq!(
        app.post_form(
            "/account/totp/confirm",
            &[("csrf", csrf.as_str()), ("code", &code)]
        )
        .await
        .status(),
        200
    );
    let stored: Option<String> = mimamori_core::with_db!(&app.db, p => sqlx::query_scalar("SELECT totp_secret FROM staff WHERE username = 'nurse'").fetch_one(p).await.unwrap());
    assert_eq!(stored.as_deref(), Some(b64.as_str()));
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('account.password', 'account.totp')"
        )
        .await,
        2
    );
    app.finish().await;
}

#[tokio::test]
async fn login_code_read_out_by_an_automated_call() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.twilio.auth_token = secrecy::SecretString::from("voice-token")
    })
    .await;
    let id = mimamori_core::store::staff::staff_by_username(&app.db, "nurse")
        .await
        .unwrap()
        .unwrap()
        .id;
    mimamori_core::store::staff::set_totp(&app.db, id, None)
        .await
        .unwrap();
    mimamori_core::store::staff::set_contact(&app.db, id, Some("+81312345678"), None)
        .await
        .unwrap();
    assert_eq!(
        app.post_form("/login", &[("username", "nurse"), ("password", PASSWORD)])
            .await
            .status(),
        303
    );
    let r = app.post_form("/login/mfa/voice", &[]).await;
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    let page = app.get("/login/mfa").await.text().await.unwrap();
    assert!(
        page.contains("電話でお聞きになった") && page.contains("***5678"),
        "{page}"
    );
    // The call went out (dev outbox); the provider fetches our TwiML, signed.
    let call = mimamori_core::store::outbox::all(&app.db, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.channel == "voice")
        .unwrap();
    let url = call.body.lines().last().unwrap().to_string();
    assert!(url.contains("/hooks/twilio/login-code?t="));
    let params = vec![("CallSid".to_string(), "CAcode".to_string())];
    let sig = mimamori_core::signature::sign("voice-token", &url, &params);
    let twiml = reqwest::Client::new()
        .post(&url)
        .header("X-Twilio-Signature", sig)
        .form(&params)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let digits: String = twiml
        .split("確認コードです。")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| *c != '。')
        .filter(|c| c.is_ascii_digit())
        .collect();
    assert_eq!(digits.len(), 6, "{twiml}");
    let r = app.post_form("/login/mfa", &[("code", &digits)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.get("/").await.status(),
        200,
        "logged in with the code heard on the phone"
    );
    app.finish().await;
}

/// Logs in with the password (API) and returns the challenge.
async fn challenge(
    app: &crate::helpers::TestApp,
    username: &str,
    password: &str,
) -> reqwest::Response {
    app.post_json(
        "/api/v1/session",
        &serde_json::json!({"username": username, "password": password}),
    )
    .await
}

#[tokio::test]
async fn wrong_codes_count_toward_the_lock() {
    let app = spawn_app().await;
    // Five wrong codes, spread over new password steps (each used to give five more tries).
    for round in 0..5 {
        let r = challenge(&app, "nurse", PASSWORD).await;
        assert_eq!(r.status(), 202, "round {round}");
        let v: serde_json::Value = r.json().await.unwrap();
        let r = app
            .post_json(
                "/api/v1/session/mfa",
                &serde_json::json!({"challenge": v["challenge"], "code": "999999"}),
            )
            .await;
        assert_eq!(r.status(), 401);
    }
    // Now locked: the right password answers as a wrong one, and a pending challenge no
    // longer takes even the right code.
    let r = challenge(&app, "nurse", PASSWORD).await;
    assert_eq!(r.status(), 401);
    let r = app
        .post_form("/login", &[("username", "nurse"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status(), 401);
    let failed = app
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'login.mfa_failed'")
        .await;
    assert_eq!(failed, 5);
    let locked = app
        .count("SELECT COUNT(*) FROM staff WHERE username = 'nurse' AND locked_until IS NOT NULL")
        .await;
    assert_eq!(locked, 1);
    app.finish().await;
}

#[tokio::test]
async fn a_suspended_id_is_named_only_to_the_right_password() {
    let app = spawn_app().await;
    mimamori_core::with_db!(&app.db, p => sqlx::query("UPDATE staff SET suspended = TRUE WHERE username = 'nurse'")
        .execute(p).await.unwrap().rows_affected());
    let wrong = challenge(&app, "nurse", "not-the-password").await;
    let ghost = challenge(&app, "ghost", "not-the-password").await;
    assert_eq!(
        (wrong.status().as_u16(), ghost.status().as_u16()),
        (401, 401)
    );
    assert_eq!(
        wrong.text().await.unwrap(),
        ghost.text().await.unwrap(),
        "a suspended ID with a wrong password answers as an unknown one"
    );
    let right = challenge(&app, "nurse", PASSWORD).await;
    assert_eq!(right.status(), 403);
    assert!(right.text().await.unwrap().contains("suspended"));
    app.finish().await;
}

/// The code page shows only what the server holds: a URL cannot make it display a code or a
/// destination (phishing "call this number" / "your code is …").
#[tokio::test]
async fn the_code_page_renders_nothing_from_its_url() {
    let app = spawn_app().await;
    let evil = "/login/mfa?m=sms&h=CALL%20%2B81-3-EVIL&dev=123456";
    let r = app.get(evil).await;
    assert_eq!(r.status(), 303, "no pending login: back to the start");
    assert_eq!(r.headers()["location"], "/login");
    app.post_form("/login", &[("username", "nurse"), ("password", PASSWORD)])
        .await;
    let page = app.get(evil).await.text().await.unwrap();
    assert!(
        page.contains("認証アプリ"),
        "the method comes from the challenge"
    );
    assert!(!page.contains("EVIL") && !page.contains("123456"), "{page}");
    app.finish().await;
}

/// The provider refuses the login code once (429): it is sent again and the login goes on.
/// It keeps failing (5xx): the person is told in words, with what to do, not a bare 500.
#[tokio::test]
async fn a_login_code_is_retried_and_its_failure_explained() {
    use crate::fake_twilio::{Fake, Fault, SID, TOKEN};
    let fake = Fake::start().await;
    let base = fake.base.clone();
    let app = crate::helpers::spawn_app_with(move |c| {
        c.twilio.api_base = base;
        c.twilio.account_sid = SID.into();
        c.twilio.auth_token = secrecy::SecretString::from(TOKEN);
        c.twilio.sms_from = vec!["+815000000001".into()];
        c.twilio.request_timeout_secs = 2;
    })
    .await;
    let id = mimamori_core::store::staff::staff_by_username(&app.db, "nurse")
        .await
        .unwrap()
        .unwrap()
        .id;
    mimamori_core::store::staff::set_totp(&app.db, id, None)
        .await
        .unwrap();
    let phone = "+819011112222";
    mimamori_core::store::staff::set_contact(&app.db, id, Some(phone), None)
        .await
        .unwrap();
    fake.fault(phone, Fault::TooMany(1));
    let r = challenge(&app, "nurse", PASSWORD).await;
    assert_eq!(r.status(), 202, "sent on the second try");
    assert_eq!(fake.messages_to(phone).len(), 1);

    fake.fault(phone, Fault::ServerError);
    let r = app
        .post_form("/login", &[("username", "nurse"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status(), 503);
    let page = r.text().await.unwrap();
    assert!(page.contains("確認コードを送れませんでした"), "{page}");
    assert!(page.contains("認証アプリ"), "says what to do instead");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'login.mfa_not_sent'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM mfa_challenges").await,
        1,
        "the failed one is gone"
    );
    app.finish().await;
}

/// A login storm queues for the password check rather than failing (the 2022 outages began
/// as one), and past the queue's wait is told when to retry: 503 with `Retry-After`, in the
/// API's JSON error body.
#[tokio::test]
async fn many_logins_at_once_queue_and_past_the_wait_are_told_to_retry() {
    let post = |app: &crate::helpers::TestApp| {
        let (base, client) = (app.base.clone(), app.client.clone());
        async move {
            client
                .post(format!("{base}/api/v1/session"))
                .json(
                    &serde_json::json!({"username": "nurse", "password": crate::helpers::PASSWORD}),
                )
                .send()
                .await
                .unwrap()
        }
    };
    // One check at a time, ten seconds' patience: all eight get through.
    let app = crate::helpers::spawn_app_with(|c| {
        c.http.login_concurrency = 1;
        c.http.login_queue_secs = 10;
    })
    .await;
    let answers = futures::future::join_all((0..8).map(|_| post(&app))).await;
    assert!(
        answers.iter().all(|r| r.status() == 202),
        "{:?}",
        answers.iter().map(|r| r.status()).collect::<Vec<_>>()
    );
    app.finish().await;

    // No patience: those that find the check busy are told to come back.
    let app = crate::helpers::spawn_app_with(|c| {
        c.http.login_concurrency = 1;
        c.http.login_queue_secs = 0;
    })
    .await;
    let answers = futures::future::join_all((0..16).map(|_| post(&app))).await;
    let busy: Vec<_> = answers.iter().filter(|r| r.status() == 503).collect();
    assert!(!busy.is_empty(), "some found the check busy");
    assert!(answers.iter().any(|r| r.status() == 202), "one got through");
    assert!(
        answers
            .iter()
            .all(|r| r.status() == 202 || r.status() == 503),
        "nothing else"
    );
    assert_eq!(busy[0].headers()["retry-after"], "1");
    let r = answers.into_iter().find(|r| r.status() == 503).unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "busy");
    app.finish().await;
}
