//! The walking skeleton end to end: register → planned check-in → SMS with a signed link
//! in the dev outbox → the form behind the link → observation → chart on the person page.
use mimamori_core::token::LinkSigner;

use crate::helpers::{LINK_SECRET, answers, answers_in, link_in, spawn_app, today};

/// 37.8 °C, SpO2 95 and a cough; no urgent sign.
fn feverish() -> Vec<(String, String)> {
    answers(&[("temperature", "37.8"), ("spo2", "95"), ("cough", "yes")])
}

#[tokio::test]
async fn register_sms_link_form_observation_chart() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let r = app
        .post_form(
            "/persons",
            &[
                ("csrf", &csrf),
                ("name", "鈴木 一郎"),
                ("phone", "080-2222-3333"),
                ("channel", "sms"),
                ("language", "ja"),
                ("monitoring_type", "patient"),
                ("observation_start", &today()),
                ("observation_end", &today()),
                ("checkin_time", "00:00"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let person_path = r.headers()["location"].to_str().unwrap().to_string();

    // The dispatcher sends today's check-in through the outbox.
    let msg = app.wait_for_message("+818022223333").await;
    assert!(msg.body.starts_with("テスト保健所です。"), "{}", msg.body);
    assert!(mimamori_core::provider::ucs2_segments(&msg.body) <= 2);
    assert!(
        !msg.body.contains("鈴木"),
        "no full name in the SMS: the given name only, for a family phone"
    );
    let link = link_in(&msg.body);
    assert!(link.starts_with(&app.base));
    let outbox_page = app.get("/outbox").await.text().await.unwrap();
    assert!(outbox_page.contains(&format!(r#"href="{link}""#)));

    // The form, without logging in (a fresh client has no cookie).
    let patient = reqwest::Client::new();
    let form = patient.get(&link).send().await.unwrap();
    assert_eq!(form.status(), 200);
    // Nothing personal is kept in caches: the patient's page and the console's.
    assert_eq!(form.headers()["cache-control"], "no-store");
    assert_eq!(
        app.get(&person_path).await.headers()["cache-control"],
        "no-store"
    );
    let html = form.text().await.unwrap();
    assert!(
        html.contains("体温") && html.contains(r#"name="temperature""#) && !html.contains("鈴木")
    );

    // Out-of-range temperature: the page says how to fix it and nothing is recorded.
    let bad = answers(&[("temperature", "45")]);
    let r = patient.post(&link).form(&bad).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("34.0〜43.0"));
    assert_eq!(app.count("SELECT COUNT(*) FROM observations").await, 0);

    let r = patient.post(&link).form(&feverish()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("回答を受け付けました") && !html.contains("すぐに保健所へ電話"));

    // The link works once.
    let again = patient.get(&link).send().await.unwrap();
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("03-1111-2222"));

    // The person's page draws the observation.
    let page = app.get(&person_path).await.text().await.unwrap();
    assert!(
        page.contains("<svg")
            && page.contains(r#"class="series-temperature""#)
            && page.contains(r#"class="series-spo2""#)
    );
    assert!(page.contains("37.8 ℃") && page.contains("answered"));
    let id = person_path.rsplit('/').next().unwrap();
    let obs = app.observations(id).await;
    assert_eq!(obs.len(), 1);
    assert_eq!(obs[0]["temperature_c"], 37.8);
    assert_eq!(obs[0]["spo2"], 95);
    // Answered through the link of the SMS.
    assert_eq!(obs[0]["source"], "sms");
    app.finish().await;
}

#[tokio::test]
async fn urgent_sign_tells_the_person_to_phone_now() {
    let app = spawn_app().await;
    app.login().await;
    let r = app.post_json("/api/v1/persons", &serde_json::json!({
        "name": "x", "phone": "08044445555", "language": "en", "observation_start": today(), "observation_end": today(), "checkin_time": "00:00"
    })).await;
    assert_eq!(r.status(), 201);
    let link = link_in(&app.wait_for_message("+818044445555").await.body);
    let patient = reqwest::Client::new();
    let form = patient
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        form.contains("Body temperature") && form.contains(r#"lang="en""#),
        "English person, English form"
    );
    let answers = answers(&[("urgent_chest_pain", "yes"), ("spo2", "")]);
    let html = patient
        .post(&link)
        .form(&answers)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Phone the health centre now") && html.contains("tel:03-1111-2222"));
    let urgent: bool = mimamori_core::with_db!(&app.db, p => sqlx::query_scalar("SELECT urgent FROM observations").fetch_one(p).await.unwrap());
    assert!(urgent);
    app.finish().await;
}

/// Issue 14, item 1: SpO2 at the urgent threshold with every sign "no" is urgent too — the
/// person sees the same "phone now" page with the centre's number and 119, in a standards-
/// mode page (doctype first).
#[tokio::test]
async fn low_spo2_alone_tells_the_person_to_phone_now() {
    let app = spawn_app().await;
    app.login().await;
    let r = app.post_json("/api/v1/persons", &serde_json::json!({
        "name": "x", "phone": "08044446666", "observation_start": today(), "observation_end": today(), "checkin_time": "00:00"
    })).await;
    assert_eq!(r.status(), 201);
    let link = link_in(&app.wait_for_message("+818044446666").await.body);
    let page = reqwest::Client::new()
        .post(&link)
        .form(&answers(&[("temperature", "38.9"), ("spo2", "88")]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.starts_with("<!DOCTYPE html><html"), "{}", &page[..60]);
    assert!(
        page.contains("すぐに保健所へ電話")
            && page.contains("tel:03-1111-2222")
            && page.contains("119"),
        "{page}"
    );
    app.finish().await;
}

/// Japanese keyboards (issue 14): a full-width temperature with 度 and a full-width SpO2 with
/// ％ are accepted and stored as numbers; the form shows hints, not placeholder "values".
#[tokio::test]
async fn full_width_and_unit_input_is_accepted() {
    let app = spawn_app().await;
    app.login().await;
    let r = app.post_json("/api/v1/persons", &serde_json::json!({
        "name": "x", "phone": "08044447777", "observation_start": today(), "observation_end": today(), "checkin_time": "00:00"
    })).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let link = link_in(&app.wait_for_message("+818044447777").await.body);
    let form = reqwest::get(&link).await.unwrap().text().await.unwrap();
    assert!(
        !form.contains("placeholder="),
        "no placeholder that looks like a value"
    );
    assert!(form.contains(r#"aria-describedby="temperature-hint""#));
    let page = reqwest::Client::new()
        .post(&link)
        .form(&answers(&[
            ("temperature", "３７．５度"),
            ("spo2", "９６％"),
        ]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("回答を受け付けました"), "{page}");
    let obs = app.observations(id).await;
    assert_eq!(
        (obs[0]["temperature_c"].as_f64(), obs[0]["spo2"].as_i64()),
        (Some(37.5), Some(96))
    );
    app.finish().await;
}

/// Issue 13 hardening: security headers on every response; the language switch only goes
/// back to a path of this site.
#[tokio::test]
async fn security_headers_and_same_origin_redirects() {
    let app = spawn_app().await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/login", "/healthz/live", "/c/1.2.abc"] {
        let r = c.get(app.url(path)).send().await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-eval") && !csp.contains("script-src 'self' 'unsafe-inline'"));
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert!(
            h.get("strict-transport-security").is_none(),
            "http: no HSTS"
        );
    }
    for (referer, back) in [
        ("http://x/\\evil.example", "/"),
        ("http://x//evil.example", "/"),
        ("http://x/persons?q=1", "/persons?q=1"),
    ] {
        let r = c
            .get(app.url("/lang/en"))
            .header("referer", referer)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], back, "{referer}");
    }
    app.finish().await;
}

#[tokio::test]
async fn bad_links_get_a_clear_page_and_reveal_nothing() {
    let app = spawn_app().await;
    let signer = LinkSigner::new(LINK_SECRET.as_bytes());
    let now = chrono::Utc::now().timestamp();
    let patient = reqwest::Client::new();
    let tampered = format!(
        "{}/c/{}",
        app.base,
        signer.sign(1, now + 3600).replacen("1.", "2.", 1)
    );
    let r = patient.get(&tampered).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("このリンクは正しくありません")
    );
    let expired = format!("{}/c/{}", app.base, signer.sign(1, now - 1));
    let r = patient.get(&expired).send().await.unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("有効期限"));
    let r = patient
        .post(&expired)
        .form(&feverish())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let other_key = LinkSigner::new(b"another deployment's key 0123456789");
    let r = patient
        .get(format!("{}/c/{}", app.base, other_key.sign(1, now + 3600)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(app.count("SELECT COUNT(*) FROM observations").await, 0);
    app.finish().await;
}

#[tokio::test]
async fn queued_planning_job_plans_and_the_dispatcher_sends() {
    let app = spawn_app().await;
    // Wait for the start-up catch-up run, so that it cannot be what plans our person.
    for _ in 0..100 {
        if app
            .count("SELECT COUNT(*) FROM job_runs WHERE finished_at IS NOT NULL")
            .await
            > 0
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A person inserted behind the app's back (as a bulk import would) has no check-in yet.
    // Their slot is a minute ago: due now, well inside the answer window.
    let local = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Tokyo);
    let today = local.date_naive();
    let slot = (chrono::Timelike::hour(&local) * 60 + chrono::Timelike::minute(&local))
        .saturating_sub(1) as i32;
    let now = mimamori_core::db::now();
    mimamori_core::with_db!(&app.db, p => {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO persons (health_centre_id, name, phone, channel, observation_start, observation_end, created_at, updated_at)
             VALUES ($1, 'x', '+819077778888', 'sms', $2, $2, $3, $3) RETURNING id")
            .bind(app.centre).bind(today).bind(now).fetch_one(p).await.unwrap();
        sqlx::query("INSERT INTO person_slots (person_id, slot, minutes) VALUES ($1, 0, $2)")
            .bind(id).bind(slot).execute(p).await.unwrap();
    });
    assert_eq!(app.count("SELECT COUNT(*) FROM checkins").await, 0);
    mimamori_workers::enqueue_plan_day(&app.db, chrono::Utc::now())
        .await
        .unwrap();
    let msg = app.wait_for_message("+819077778888").await;
    assert!(msg.body.contains("/c/"));
    assert_eq!(app.count("SELECT COUNT(*) FROM checkins").await, 1);
    app.finish().await;
}

#[tokio::test]
async fn the_form_is_one_screen_per_group_and_works_without_javascript() {
    let app = spawn_app().await;
    app.login().await;
    let r = app.post_json("/api/v1/persons", &serde_json::json!({
        "name": "山田 花子", "phone": "08012120000", "observation_start": today(), "observation_end": today(), "checkin_time": "00:00"
    })).await;
    assert_eq!(r.status(), 201);
    let link = link_in(&app.wait_for_message("+818012120000").await.body);
    let path = link
        .split_once("/c/")
        .map(|(_, t)| format!("/c/{t}"))
        .unwrap();
    // A browser: follows nothing by itself, so every redirect is seen.
    let patient = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |url: String| {
        let patient = patient.clone();
        async move { patient.get(&url).send().await.unwrap() }
    };
    let page = |url: String| async move {
        let r = get(url).await;
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };
    let post = |form: Vec<(String, String)>| {
        let patient = patient.clone();
        let link = link.clone();
        async move { patient.post(&link).form(&form).send().await.unwrap() }
    };
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let redirected_to = |r: &reqwest::Response| {
        assert_eq!(r.status(), 303, "each screen is posted, then redirected to");
        r.headers()["location"].to_str().unwrap().to_string()
    };
    let first = page(link.clone()).await;
    assert!(
        first.contains(r#"name="temperature""#)
            && !first.contains(r#"name="cough""#)
            && first.contains("1 / 3")
    );
    assert!(!first.contains("<script"), "no JavaScript needed");
    assert!(
        first.contains("花子さんの") && !first.contains("山田"),
        "a family phone's form says whose it is, by the short name"
    );
    assert!(
        first.contains("tel:0"),
        "the centre's number is on every screen"
    );
    // Screen 1 with a bad value stays on screen 1, with a summary that names and links the
    // problem, the message tied to its input, and the title saying so.
    let r = post(pairs(&[
        ("screen", "0"),
        ("nav", "next"),
        ("temperature", "abc"),
        ("spo2", ""),
    ]))
    .await;
    assert_eq!(r.status(), 422);
    let bad = r.text().await.unwrap();
    assert!(bad.contains("1 / 3") && bad.contains("<title>エラー: "));
    assert!(bad.contains(r##"class="error-summary""##) && bad.contains(r##"href="#temperature""##));
    assert!(bad.contains(r#"aria-describedby="temperature-hint temperature-error""#));
    assert!(bad.contains(r#"id="temperature-error""#) && bad.contains(r#"value="abc""#));
    let r = post(pairs(&[
        ("screen", "0"),
        ("nav", "next"),
        ("temperature", "36.6"),
        ("spo2", ""),
    ]))
    .await;
    assert_eq!(redirected_to(&r), format!("{path}?s=1"));
    let second = page(format!("{link}?s=1")).await;
    assert!(second.contains("2 / 3") && second.contains(r#"name="cough""#));
    assert!(
        !second.contains(r#"name="temperature""#),
        "earlier answers wait on the server, not in the page"
    );
    // Back keeps what was typed on both screens.
    let r = post(pairs(&[("screen", "1"), ("nav", "back"), ("cough", "yes")])).await;
    assert_eq!(redirected_to(&r), format!("{path}?s=0"));
    assert!(
        page(format!("{link}?s=0"))
            .await
            .contains(r#"value="36.6""#)
    );
    assert!(
        page(format!("{link}?s=1"))
            .await
            .contains(r#"id="cough" name="cough" value="yes" checked"#)
    );
    // "None of these" next to a "yes" is a contradiction to resolve, not a guess.
    let r = post(pairs(&[
        ("screen", "1"),
        ("nav", "next"),
        ("none:symptoms", "yes"),
        ("cough", "yes"),
        ("feeling", "same"),
    ]))
    .await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains(r##"href="#none:symptoms""##)
    );
    // A healthy day: one box for the symptoms (each still stored as an explicit "no").
    let r = post(pairs(&[
        ("screen", "1"),
        ("nav", "next"),
        ("none:symptoms", "yes"),
        ("feeling", "same"),
    ]))
    .await;
    assert_eq!(redirected_to(&r), format!("{path}?s=2"));
    let third = page(format!("{link}?s=2")).await;
    // The last screen asks the 13 urgent warning signs one by one, under their three
    // headings, with "none of these" after them.
    assert!(third.contains("3 / 3") && third.contains(r#"name="urgent_purple_lips""#));
    assert_eq!(third.matches(r#"value="yes""#).count(), 14, "{third}");
    assert!(third.contains("表情・外見") && third.contains("意識障害等"));
    assert!(
        third.find(r#"name="urgent_purple_lips""#) < third.find(r#"name="none:urgent""#),
        "the urgent signs are read before \"none of these\""
    );
    assert!(
        third.find(r#"value="next""#) < third.find(r#"value="back""#),
        "Enter in a field goes forward, not back"
    );
    let r = post(
        answers_in(Some("urgent"), &[("urgent_purple_lips", "yes")])
            .into_iter()
            .chain(pairs(&[("screen", "2"), ("nav", "next")]))
            .collect(),
    )
    .await;
    assert_eq!(redirected_to(&r), format!("{path}/done"));
    let done = page(format!("{link}/done")).await;
    assert!(
        done.contains("<h1>すぐに保健所へ電話してください</h1>")
            && done.contains("回答を受け付けました")
    );
    assert!(
        done.contains("このあと"),
        "the thanks page says what happens next"
    );
    // Reload and Back behave: the thanks page again, then "already received" — never a
    // form resubmission.
    assert!(
        page(format!("{link}/done"))
            .await
            .contains("すぐに保健所へ電話")
    );
    assert_eq!(get(format!("{link}?s=2")).await.status(), 409);
    assert_eq!(app.count("SELECT COUNT(*) FROM observations").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM answer_drafts").await,
        0,
        "the draft is gone"
    );
    let symptoms: String = mimamori_core::with_db!(&app.db, p => sqlx::query_scalar(
        "SELECT symptoms FROM observations").fetch_one(p).await.unwrap());
    let symptoms: serde_json::Value = serde_json::from_str(&symptoms).unwrap();
    assert_eq!(symptoms["cough"], serde_json::json!(false), "{symptoms}");
    assert_eq!(symptoms["fatigue"], serde_json::json!(false), "{symptoms}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM escalations WHERE reason = 'urgent_sign'")
            .await,
        1
    );
    // Each screen read and written is audited as the person.
    assert!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'checkin.draft' AND actor_kind = 'person'")
            .await
            >= 3
    );
    app.finish().await;
}

/// Low SpO2 with every sign "no" is urgent too: the page says to phone now. A family
/// sharing one phone is walked on to the next member; an expired link still names the
/// centre's number.
#[tokio::test]
async fn low_spo2_family_phone_and_expired_link() {
    let app = spawn_app().await;
    app.login().await;
    for name in ["山田 花子", "山田 太郎"] {
        let r = app.post_json("/api/v1/persons", &serde_json::json!({
            "name": name, "phone": "08012129999", "observation_start": today(), "observation_end": today(), "checkin_time": "00:00"
        })).await;
        assert_eq!(r.status(), 201);
    }
    let msgs = app.wait_for_messages("+818012129999", 2).await;
    let hanako = msgs
        .iter()
        .find(|m| m.body.contains("花子さん"))
        .expect("花子's own SMS");
    assert!(
        msgs.iter().any(|m| m.body.contains("太郎さん")),
        "one SMS each, by name"
    );
    assert!(
        hanako.body.contains("急な悪化は0"),
        "the SMS gives the number to call"
    );
    let link = link_in(&hanako.body);
    let patient = reqwest::Client::new();
    let r = patient
        .post(&link)
        .form(&answers(&[("spo2", "88"), ("temperature", "38.9")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.url().path().ends_with("/done"));
    let done = r.text().await.unwrap();
    assert!(done.contains("すぐに保健所へ電話"), "{done}");
    assert!(
        done.contains("太郎さんの回答へ"),
        "walks on to the next member"
    );
    let next = done
        .split(r#"class="button" href=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let form = patient
        .get(format!("{}{next}", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("太郎さんの") && form.contains(r#"name="temperature""#));
    // An expired link (genuine signature) still names the centre to phone.
    let id: i64 = link
        .rsplit("/c/")
        .next()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let expired = mimamori_core::token::LinkSigner::new(LINK_SECRET.as_bytes()).sign(id, 1);
    let r = patient
        .get(format!("{}/c/{expired}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("有効期限") && page.contains("tel:0"),
        "{page}"
    );
    app.finish().await;
}

/// A choice question takes only its own options (the page names the field and lists the
/// options again; nothing is stored), and the person page shows the chosen option and the
/// urgent sign by name, day by day.
#[tokio::test]
async fn a_choice_is_validated_and_charted() {
    let app = spawn_app().await;
    app.login().await;
    let id = app
        .register("080-4444-0001", "sms", serde_json::json!({}))
        .await;
    let link = link_in(&app.wait_for_message("+818044440001").await.body);
    let patient = reqwest::Client::new();
    let r = patient
        .post(&link)
        .form(&answers(&[("feeling", "fine")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("どれか1つを選んでください") && html.contains(r#"value="worse""#));
    assert_eq!(app.count("SELECT COUNT(*) FROM observations").await, 0);

    let r = patient
        .post(&link)
        .form(&answers(&[
            ("feeling", "worse"),
            ("urgent_wheezing", "yes"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = app
        .get(&format!("/persons/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("悪くなった"),
        "the choice is on the person page"
    );
    assert!(
        page.contains("突然（2時間以内を目安に）ゼーゼーしはじめた"),
        "the urgent sign is named"
    );
    let detail: String = mimamori_core::with_db!(&app.db, p => sqlx::query_scalar(
        "SELECT detail FROM escalations WHERE person_id = $1 AND reason = 'urgent_sign'")
        .bind(id).fetch_one(p).await.unwrap());
    assert!(detail.contains("urgent_wheezing"), "{detail}");
    app.finish().await;
}
