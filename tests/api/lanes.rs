//! Lanes under overload (#18): the console is shed with 503 + Retry-After before the patient
//! path slows, and patients have their own database connections.
use std::time::{Duration, Instant};

use mimamori_core::{Db, with_db};
use serde_json::json;

use crate::helpers::{answers, link_in, spawn_app_with};

/// Holds every free connection of `db` (waiting at most `patience` for each) until `release`
/// fires.
fn hold_pool(
    db: Db,
    patience: Duration,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::sync::oneshot::Receiver<usize>,
) {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let (held_tx, held_rx) = tokio::sync::oneshot::channel::<usize>();
    tokio::spawn(async move {
        macro_rules! hold {
            ($p:expr) => {{
                let mut conns = Vec::new();
                while let Ok(Ok(c)) = tokio::time::timeout(patience, $p.acquire()).await {
                    conns.push(c);
                }
                let _ = held_tx.send(conns.len());
                let _ = released.await;
                drop(conns);
            }};
        }
        match db {
            Db::Sqlite(p) => hold!(p),
            Db::Postgres(p) => hold!(p),
        }
    });
    (release, held_rx)
}

/// A console whose one place is held: every connection of its pool is taken (a storm of
/// slow searches) and one console request for `path` waits in that place for a connection.
/// Returns the release of the pool and that request's eventual status.
pub(crate) async fn hold_the_consoles_one_place(
    app: &crate::helpers::TestApp,
    path: &str,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<reqwest::StatusCode>,
) {
    let (release, held) = hold_pool(app.app_db.clone(), Duration::from_millis(300));
    assert!(held.await.unwrap() > 0, "the console pool is held");
    let stuck = tokio::spawn({
        let client = app.client.clone();
        let url = app.url(path);
        async move { client.get(url).send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    (release, stuck)
}

#[tokio::test]
async fn patients_answer_while_the_console_is_shed_and_its_pool_is_taken() {
    // One console request at a time and nobody may wait for it.
    let app = spawn_app_with(|c| {
        c.http.console_concurrency = 1;
        c.http.console_queue = 0;
        c.http.console_queue_ms = 0;
        c.http.metrics_token = secrecy::SecretString::from("m-token");
    })
    .await;
    app.login().await;
    let person = app.register("080-3000-0001", "sms", json!({})).await;
    let link = link_in(&app.wait_for_message("+818030000001").await.body);

    // Every connection of the console's pool is taken (a storm of slow searches)…
    // …and one console request holds the only place, waiting for a connection.
    let (release, stuck) = hold_the_consoles_one_place(&app, "/api/v1/persons").await;

    // The API is told at once to retry, in its JSON error body with Retry-After.
    let t = Instant::now();
    let r = app.get("/api/v1/persons").await;
    assert_eq!(r.status(), 503);
    assert!(t.elapsed() < Duration::from_secs(2), "shed, not queued");
    assert_eq!(r.headers()["retry-after"], "1");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "busy");
    // A console page gets a page saying so, in both languages.
    let r = app.get("/persons").await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let page = r.text().await.unwrap();
    assert!(page.contains("混み合って"), "Japanese: {page}");
    assert!(page.contains("system is busy"), "English: {page}");

    // The patient opens the link and answers on the lane's own pool, unhindered.
    let client = reqwest::Client::new();
    let t = Instant::now();
    let r = client.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(&link)
        .form(&answers(&[("temperature", "37.8")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the answer is taken");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the patient did not wait for the console's pool: {:?}",
        t.elapsed()
    );
    let stored: Vec<f64> = with_db!(&app.db, p => sqlx::query_scalar(
        "SELECT temperature_c FROM observations WHERE person_id = $1").bind(person).fetch_all(p).await.unwrap());
    assert_eq!(stored, vec![37.8], "the answer is stored");

    // The operator sees the shedding in /metrics (a patient-lane path, served throughout).
    let m = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth("m-token")
        .send()
        .await
        .unwrap();
    assert_eq!(m.status(), 200);
    let m = m.text().await.unwrap();
    assert!(
        m.contains("mimamori_console_requests_total{outcome=\"shed\"} 2"),
        "{m}"
    );

    // Once the console's connections come back, the waiting request is served.
    let _ = release.send(());
    assert_eq!(stuck.await.unwrap(), 200);
    let r = app.get("/api/v1/persons").await;
    assert_eq!(r.status(), 200, "admitted again after the load");
    app.finish().await;
}

/// `database.connection_wait_secs` bounds how long an admitted console request waits for a
/// connection its pool does not have: then it is told to retry (503, `Retry-After`, JSON
/// `busy`) — not 500, not sent to log in — and is served again once connections are back.
#[tokio::test]
async fn a_request_that_waits_out_the_connection_wait_is_told_to_retry() {
    let app = spawn_app_with(|c| c.database.connection_wait_secs = 1).await;
    app.login().await;
    let (release, held) = hold_pool(app.app_db.clone(), Duration::from_millis(300));
    assert!(held.await.unwrap() > 0, "the console pool is held");
    let t = Instant::now();
    let r = app.get("/api/v1/persons").await;
    let waited = t.elapsed();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "busy", "{v}");
    assert!(
        waited >= Duration::from_millis(900),
        "it waited for a connection first: {waited:?}"
    );
    // The configured second, not the default ten (generous for a loaded machine).
    assert!(waited < Duration::from_secs(8), "{waited:?}");
    let _ = release.send(());
    let r = app.get("/api/v1/persons").await;
    assert_eq!(r.status(), 200, "served once connections are back");
    app.finish().await;
}

#[tokio::test]
async fn a_console_burst_within_the_waiting_room_is_queued_not_refused() {
    let app = spawn_app_with(|c| {
        c.http.console_concurrency = 1;
        c.http.console_queue = 64;
        c.http.console_queue_ms = 10_000;
    })
    .await;
    app.login().await;
    let answers = futures::future::join_all((0..24).map(|_| app.get("/api/v1/persons"))).await;
    let statuses: Vec<_> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    app.finish().await;
}

/// The patients' door (`http.patient_addr`): a second address on threads of its own that
/// serves the patient lane — the link form, the provider's webhooks, health checks — and
/// nothing else. An answer through it is stored; the console, the API and the login are not
/// found there; the console's own address still serves patients too.
#[tokio::test]
async fn the_patients_door_serves_patients_and_nothing_else() {
    let app = spawn_app_with(|c| c.http.patient_addr = "127.0.0.1:0".into()).await;
    let door = app.patient_base.clone().expect("a patients' door");
    assert_ne!(door, app.base);
    app.login().await;
    let person = app.register("080-3000-0031", "sms", json!({})).await;
    let link = link_in(&app.wait_for_message("+818030000031").await.body);
    assert!(
        link.starts_with(&app.base),
        "links keep the public address: {link}"
    );
    let through_door = link.replacen(&app.base, &door, 1);

    let client = reqwest::Client::new();
    let r = client.get(&through_door).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("<form"), "the patient's form: {page}");
    let r = client
        .post(&through_door)
        .form(&answers(&[("temperature", "37.9")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the answer is taken at the door");
    let stored: Vec<f64> = with_db!(&app.db, p => sqlx::query_scalar(
        "SELECT temperature_c FROM observations WHERE person_id = $1").bind(person).fetch_all(p).await.unwrap());
    assert_eq!(stored, vec![37.9], "the answer is stored");
    assert_eq!(
        client
            .get(format!("{door}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Nothing of the console through the door, even with a staff session's cookie.
    for path in [
        "/",
        "/persons",
        "/login",
        "/api/v1/persons",
        "/api/openapi.json",
        "/escalations",
    ] {
        let r = app
            .client
            .get(format!("{door}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path} at the patients' door");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("看護師"),
            "{path}: nothing of the session: {body}"
        );
        // The patient's page, in both languages, with no way to a console not served here.
        assert!(
            body.contains("このリンクは正しくありません"),
            "{path}: {body}"
        );
        assert!(body.contains("This link is not valid"), "{path}: {body}");
        assert!(!body.contains("href=\"/\""), "{path}: {body}");
    }
    let r = client
        .post(format!("{door}/api/v1/session"))
        .json(&json!({"username": "nurse", "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "no login at the patients' door");
    // The console's address serves the console as before.
    assert_eq!(app.get("/api/v1/persons").await.status(), 200);
    app.finish().await;
}

/// A door whose application never serves (built, then dropped, as a failed start-up does) is
/// let go without a panic; an address that cannot be listened on is refused by name.
#[tokio::test]
async fn a_door_is_let_go_quietly_and_a_bad_address_is_named() {
    let tdb = mimamori_core::testing::TestDb::new().await;
    let mut cfg = crate::helpers::config(&tdb.url);
    cfg.http.patient_addr = "127.0.0.1:0".into();
    let app = mimamori::Application::build(cfg, mimamori::Role::Web)
        .await
        .unwrap();
    assert!(app.patient_port().is_some());
    // A runtime dropped inside another's task would panic here.
    drop(app);
    let mut cfg = crate::helpers::config(&tdb.url);
    cfg.http.patient_addr = "not-an-address".into();
    let Err(e) = mimamori::Application::build(cfg, mimamori::Role::Web).await else {
        panic!("a door at an impossible address");
    };
    assert!(format!("{e:#}").contains("http.patient_addr"), "{e:#}");
    tdb.drop_db().await;
}
