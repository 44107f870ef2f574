//! People walking the product in headless Chromium at the size they use it, every page
//! checked with axe-core (0 violations of any impact, or the test fails), screenshots kept.
//!
//! Screenshots: `MIMAMORI_SCREENSHOTS=screens cargo test --test api walks` writes the PNGs
//! of every walk to `./screens` (default: the test target's temporary directory).
use serde_json::{Value, json};

use crate::helpers::{LINK_SECRET, TestApp, link_in, spawn_app, today};

fn screens_dir() -> String {
    std::env::var("MIMAMORI_SCREENSHOTS")
        .unwrap_or_else(|_| format!("{}/screens", env!("CARGO_TARGET_TMPDIR")))
}

/// Runs a walk and fails on a broken expectation or on any axe violation, naming the page.
async fn walk(viewport: (u32, u32), javascript: bool, steps: Vec<Value>) -> Value {
    let spec = json!({
        "viewport": {"width": viewport.0, "height": viewport.1},
        "javascript": javascript,
        "out": screens_dir(),
        "steps": steps,
    });
    let report = tokio::task::spawn_blocking(move || crate::peers::walk(&spec))
        .await
        .unwrap();
    assert!(
        report["failed"].is_null(),
        "walk stopped: {}",
        report["failed"]
    );
    let mut found = Vec::new();
    for (page, violations) in report["axe"].as_object().unwrap() {
        for v in violations.as_array().unwrap() {
            found.push(format!(
                "{page}: {} ({}) {} at {}",
                v["id"], v["impact"], v["help"], v["nodes"]
            ));
        }
    }
    assert!(
        found.is_empty(),
        "axe-core violations:\n{}",
        found.join("\n")
    );
    assert_eq!(
        report["dialogs"], 0,
        "no 'Confirm Form Resubmission' or other dialog"
    );
    report
}

async fn register(app: &TestApp, name: &str, phone: &str, lang: &str) -> String {
    let r = app
        .post_json(
            "/api/v1/persons",
            &json!({
                "name": name, "phone": phone, "language": lang,
                "observation_start": today(), "observation_end": today(), "checkin_time": "00:00"
            }),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let e164 = format!("+81{}", &phone[1..]);
    let who = mimamori_core::domain::short_name(name);
    let mut n = 1;
    let msg = loop {
        let msgs = app.wait_for_messages(&e164, n).await;
        if let Some(m) = msgs.into_iter().find(|m| m.body.contains(who)) {
            break m;
        }
        n += 1;
    };
    link_in(&msg.body)
}

fn go(url: &str) -> Value {
    json!({"goto": url})
}
fn see(text: &str) -> Value {
    json!({"see": text})
}
fn fill(sel: &str, value: &str) -> Value {
    json!({"fill": sel, "value": value})
}
fn check(sel: &str) -> Value {
    json!({"check": sel})
}
fn next() -> Value {
    json!({"submit": "button[value=next]"})
}
fn axe(name: &str) -> Value {
    json!({"axe": name})
}
fn shot(name: &str) -> Value {
    json!({"shot": name})
}

/// A patient on a 360×740 phone with JavaScript off: a normal day (bad input, Back, reload),
/// an urgent warning sign, a low SpO2, an expired link, a family phone, and the English form.
#[tokio::test]
async fn a_patient_on_an_old_phone() {
    let app = spawn_app().await;
    app.login().await;
    let normal = register(&app, "山田 花子", "08031310001", "ja").await;
    let _family = register(&app, "山田 太郎", "08031310001", "ja").await;
    let urgent = register(&app, "佐藤 一郎", "08031310002", "ja").await;
    let low = register(&app, "鈴木 次郎", "08031310003", "ja").await;
    let english = register(&app, "Jane Smith", "08031310004", "en").await;
    let id: i64 = normal
        .rsplit("/c/")
        .next()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let expired = format!(
        "{}/c/{}",
        app.base,
        mimamori_core::token::LinkSigner::new(LINK_SECRET.as_bytes()).sign(id, 1)
    );
    let steps = vec![
        // A normal day, with a mistake on the way.
        go(&normal),
        see("花子さんの"),
        see("tel:"),
        axe("patient-form-1"),
        shot("patient-01-form"),
        fill("#temperature", "abc"),
        next(),
        json!({"status": 422}),
        json!({"title": "エラー: "}),
        json!({"focused": "#error-summary"}),
        see("href=\"#temperature\""),
        axe("patient-form-1-error"),
        shot("patient-02-error"),
        fill("#temperature", "３６．８度"),
        next(),
        see("2 / 3"),
        axe("patient-form-2"),
        shot("patient-03-symptoms"),
        check("[name=\"none:symptoms\"]"),
        check("input[name=feeling][value=same]"),
        next(),
        see("3 / 3"),
        axe("patient-form-3"),
        shot("patient-04-urgent-signs"),
        // Browser Back and forward again: no resubmission, what was ticked is kept.
        json!({"back": true}),
        see("2 / 3"),
        json!({"reload": true}),
        see("2 / 3"),
        next(),
        see("3 / 3"),
        check("[name=\"none:urgent\"]"),
        next(),
        see("<h1>回答を受け付けました</h1>"),
        see("このあと"),
        see("太郎さんの回答へ"),
        axe("patient-thanks"),
        shot("patient-05-thanks-family"),
        json!({"reload": true}),
        json!({"status": 200}),
        // The family phone: on to the next member.
        json!({"submit": "ul.next a"}),
        see("太郎さんの"),
        json!({"back": true}),
        json!({"back": true}),
        see("すでに受け付けています"),
        axe("patient-already-answered"),
        // An urgent warning sign: one "yes" is enough.
        go(&urgent),
        fill("#temperature", "37.2"),
        next(),
        check("[name=\"none:symptoms\"]"),
        check("input[name=feeling][value=same]"),
        next(),
        check("#urgent_purple_lips"),
        next(),
        see("すぐに保健所へ電話してください"),
        see("119"),
        axe("patient-urgent"),
        shot("patient-06-urgent"),
        // Low SpO2 with every sign "no".
        go(&low),
        fill("#temperature", "38.9"),
        fill("#spo2", "88"),
        next(),
        check("[name=\"none:symptoms\"]"),
        check("input[name=feeling][value=same]"),
        next(),
        check("[name=\"none:urgent\"]"),
        next(),
        see("すぐに保健所へ電話してください"),
        shot("patient-07-low-spo2"),
        // An expired link still says whom to phone.
        go(&expired),
        json!({"status": 410}),
        see("tel:"),
        axe("patient-expired"),
        shot("patient-08-expired"),
        // The English form, with an error.
        go(&english),
        see("Jane's health check"),
        next(),
        json!({"title": "Error: "}),
        axe("patient-form-en-error"),
        shot("patient-09-english-error"),
    ];
    let axed = steps.iter().filter(|s| s.get("axe").is_some()).count();
    let report = walk((360, 740), false, steps).await;
    assert_eq!(
        report["axe"].as_object().unwrap().len(),
        axed,
        "every page was checked"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM observations").await, 3);
    app.finish().await;
}
