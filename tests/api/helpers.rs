use std::{sync::OnceLock, time::Duration};

use mimamori::{Application, Role};
use mimamori_core::{
    Db,
    config::Config,
    store::{outbox, staff},
    testing::TestDb,
    with_db,
};
use secrecy::SecretString;

pub const PASSWORD: &str = "correct horse battery staple";
pub const LINK_SECRET: &str = "test-link-secret-0123456789abcdef0123456789";
/// base64 of 20 bytes: the authenticator-app secret of every test login.
pub const TOTP_SECRET: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQ=";

/// The current authenticator code for [`TOTP_SECRET`].
pub fn totp_now() -> String {
    mimamori::web::login::totp(TOTP_SECRET)
        .unwrap()
        .generate_current()
        .to_string()
}

/// The `name=value` of the session cookie a login response sets.
pub fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("mimamori_session="))
        .expect("a session cookie")
}

/// Logs `client` in as `username` (password, then the TOTP code); returns the CSRF token.
pub async fn login_as(base: &str, client: &reqwest::Client, username: &str) -> String {
    let r = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{username}");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["mfa"], "totp");
    let r = client
        .post(format!("{base}/api/v1/session/mfa"))
        .json(&serde_json::json!({"challenge": v["challenge"], "code": totp_now()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{username}");
    let v: serde_json::Value = r.json().await.unwrap();
    v["csrf_token"].as_str().unwrap().to_string()
}

fn password_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| mimamori::startup::hash_password(PASSWORD).unwrap())
}

pub struct TestApp {
    pub base: String,
    /// The patients' door (`http.patient_addr`), when the test opened one.
    pub patient_base: Option<String>,
    /// The test's own connection to the app's database, for assertions.
    pub db: Db,
    /// The application's pool (closing it and `app_patient_db` simulates a database outage).
    pub app_db: Db,
    /// The patient lane's pool (link form, webhooks, health checks).
    pub app_patient_db: Db,
    pub client: reqwest::Client,
    pub centre: i64,
    tdb: TestDb,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub fn config(db_url: &str) -> Config {
    let mut c = Config::default();
    c.database.url = Some(db_url.to_string());
    c.database.max_connections = 8;
    c.http.addr = "127.0.0.1:0".into();
    c.public_url = String::new();
    c.demo.load_on_empty = false;
    c.link_secret = Some(SecretString::from(LINK_SECRET));
    c.workers.dispatch_interval_ms = 50;
    c.workers.stats_interval_secs = 1;
    c.flows_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/flows").into();
    c
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var("MIMAMORI_TEST_LOG").is_ok() {
        mimamori::telemetry::init("text", mimamori::telemetry::SERVER_FILTER);
    }
    let tdb = TestDb::new().await;
    let centre = staff::create_health_centre(&tdb.db, "テスト保健所", "03-1111-2222", "Asia/Tokyo")
        .await
        .unwrap();
    let nurse = staff::create_staff(&tdb.db, centre, "nurse", password_hash(), "看護師 一郎")
        .await
        .unwrap();
    staff::set_totp(&tdb.db, nurse, Some(TOTP_SECRET))
        .await
        .unwrap();
    let mut cfg = config(&tdb.url);
    tweak(&mut cfg);
    let app = Application::build(cfg, Role::Serve)
        .await
        .expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let patient_base = app.patient_port().map(|p| format!("http://127.0.0.1:{p}"));
    let app_db = app.db().clone();
    let app_patient_db = app.patient_db().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        base,
        patient_base,
        db: tdb.db.clone(),
        app_db,
        app_patient_db,
        client,
        centre,
        tdb,
        stop: Some(tx),
        handle,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// A person's observations through the JSON API, oldest first.
    pub async fn observations(&self, person: impl std::fmt::Display) -> Vec<serde_json::Value> {
        let r = self
            .get(&format!("/api/v1/persons/{person}/observations"))
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A console form with a file, as a browser sends it (see [`multipart`]).
    pub async fn post_multipart(
        &self,
        path: &str,
        fields: Vec<(&str, String)>,
        file: Option<Vec<u8>>,
    ) -> reqwest::Response {
        post_multipart_as(&self.client, &self.url(path), fields, file).await
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Registers a person through the API, observed today with a check-in due at once
    /// (`extra` adds or replaces fields); returns the id.
    pub async fn register(&self, phone: &str, channel: &str, extra: serde_json::Value) -> i64 {
        let mut body = serde_json::json!({
            "name": "テスト", "phone": phone, "channel": channel, "observation_start": today(),
            "observation_end": today(), "checkin_time": "00:00"
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = self.post_json("/api/v1/persons", &body).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        r.json::<serde_json::Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap()
    }

    /// A user of this health centre with `role` (in organisation `org`), logged in on a
    /// client of their own.
    pub async fn user(
        &self,
        username: &str,
        role: mimamori_core::access::Role,
        org: Option<i64>,
    ) -> reqwest::Client {
        self.user_with_csrf(username, role, org).await.0
    }

    /// [`TestApp::user`], with the CSRF token of its session (to post forms as them).
    pub async fn user_with_csrf(
        &self,
        username: &str,
        role: mimamori_core::access::Role,
        org: Option<i64>,
    ) -> (reqwest::Client, String) {
        let id = staff::create_staff(&self.db, self.centre, username, password_hash(), username)
            .await
            .unwrap();
        staff::set_role(&self.db, id, role, org).await.unwrap();
        staff::set_totp(&self.db, id, Some(TOTP_SECRET))
            .await
            .unwrap();
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let csrf = login_as(&self.base, &client, username).await;
        (client, csrf)
    }

    /// Logs in through the API (password + TOTP); returns the CSRF token of the session.
    pub async fn login(&self) -> String {
        login_as(&self.base, &self.client, "nurse").await
    }

    /// Waits until the outbox holds a message to `to`, and returns the newest one.
    pub async fn wait_for_message(&self, to: &str) -> outbox::OutboxMessage {
        for _ in 0..200 {
            let msgs = outbox::all(&self.db, 1000).await.unwrap();
            if let Some(m) = msgs.into_iter().find(|m| m.to_addr == to) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no message to {to} within 10 s");
    }

    /// Waits until the outbox holds `n` messages to `to`, and returns them.
    pub async fn wait_for_messages(&self, to: &str, n: usize) -> Vec<outbox::OutboxMessage> {
        for _ in 0..200 {
            let msgs: Vec<_> = outbox::all(&self.db, 1000)
                .await
                .unwrap()
                .into_iter()
                .filter(|m| m.to_addr == to)
                .collect();
            if msgs.len() >= n {
                return msgs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fewer than {n} messages to {to} within 10 s");
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        with_db!(&self.db, p => sqlx::query_scalar(sql).fetch_one(p).await.unwrap())
    }

    /// Stops the app (graceful shutdown must finish promptly), checks that no work was left
    /// half-done, and removes the database.
    pub async fn finish(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let res = tokio::time::timeout(Duration::from_secs(20), self.handle)
            .await
            .expect("graceful shutdown within 20 s");
        res.expect("app task").expect("app ran without error");
        let stuck = with_db!(&self.db, p => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM checkins WHERE status = 'sending'").fetch_one(p).await.unwrap());
        assert_eq!(stuck, 0, "check-ins left claimed but not recorded");
        self.tdb.drop_db().await;
    }
}

/// The personal link in a message body.
pub fn link_in(body: &str) -> String {
    let start = body.find("http").expect("a link in the message");
    body[start..].split_whitespace().next().unwrap().to_string()
}

/// Today's date in Tokyo, as forms and the API take it.
pub fn today() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive()
        .to_string()
}

/// A person registered at another health centre (out of the test nurse's scope).
pub async fn person_elsewhere(app: &TestApp) -> i64 {
    let other = staff::create_health_centre(&app.db, "他の保健所", "0", "Asia/Tokyo")
        .await
        .unwrap();
    let p = mimamori_core::store::persons::PersonInput {
        name: "x".into(),
        phone: "09011112222".into(),
        observation_start: today(),
        observation_end: today(),
        ..Default::default()
    }
    .parse()
    .unwrap();
    mimamori_core::store::persons::create(
        &app.db,
        mimamori_core::store::Actor::System,
        other,
        &p,
        chrono::Duration::hours(1),
        None,
    )
    .await
    .unwrap()
}

/// The repository's flows (`flows/`), as a deployment would load them.
pub fn flows() -> &'static mimamori_core::flows::Flows {
    static FLOWS: OnceLock<mimamori_core::flows::Flows> = OnceLock::new();
    FLOWS.get_or_init(|| {
        mimamori_core::flows::Flows::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/flows"
        )))
        .unwrap()
    })
}

/// A complete web answer to the patient flow — 36.5 °C, SpO2 97, every yes/no "no", the
/// first option of every choice — with `overrides` replacing (or adding) fields.
pub fn answers(overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    answers_in(None, overrides)
}

/// The fields of [`answers`] that sit on one screen (`group`) of the form.
pub fn answers_in(group: Option<&str>, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let flow = flows().get("patient-daily").unwrap();
    let mut out: Vec<(String, String)> = flow
        .healthy_form()
        .into_iter()
        .filter(|(id, _)| group.is_none_or(|g| flow.question(id).unwrap().group == g))
        .collect();
    for (k, v) in overrides {
        match out.iter_mut().find(|(f, _)| f == k) {
            Some(e) => e.1 = v.to_string(),
            None => out.push((k.to_string(), v.to_string())),
        }
    }
    out
}

/// Keypad presses for a whole call through `flow_id`: 37.5 °C, SpO2 96 (when asked), "no"
/// (2) to every yes/no and grouped question, key 2 for every choice, then 1 to confirm the
/// read-back.
pub fn all_no_keys(flow_id: &str) -> Vec<Option<&'static str>> {
    use mimamori_core::flows::QuestionKind;
    let flow = flows().get(flow_id).unwrap();
    let mut keys: Vec<Option<&'static str>> = flow
        .voice_items
        .iter()
        .map(|i| match i.kind {
            QuestionKind::Temperature => Some("375#"),
            QuestionKind::Spo2 => Some("96#"),
            QuestionKind::YesNo | QuestionKind::Choice => Some("2"),
        })
        .collect();
    keys.push(Some("1"));
    keys
}

/// The field names of a 422 answer, in order (asserting it is one).
pub async fn invalid_fields(r: reqwest::Response) -> Vec<String> {
    assert_eq!(r.status(), 422);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid");
    v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_string())
        .collect()
}

/// Posts a [`multipart`] form to `url` with `client` (another member's session, another
/// address).
pub async fn post_multipart_as(
    client: &reqwest::Client,
    url: &str,
    fields: Vec<(&str, String)>,
    file: Option<Vec<u8>>,
) -> reqwest::Response {
    let (content_type, body) = multipart(fields, file);
    client
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A `multipart/form-data` body by hand (the tests' reqwest has no multipart feature): the
/// fields, then a CSV file when given. Returns the content type and the body.
pub fn multipart(fields: Vec<(&str, String)>, file: Option<Vec<u8>>) -> (String, Vec<u8>) {
    let b = "mimamori-test-boundary";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").bytes(),
        );
    }
    if let Some(f) = file {
        body.extend(format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"list.csv\"\r\nContent-Type: text/csv\r\n\r\n").bytes());
        body.extend(f);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{b}--\r\n").bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

/// An occurrence-report file of `rows` patients for the console's import, their case
/// numbers `{tag}0`, `{tag}1`, …
pub fn occurrence_csv(rows: usize, tag: &str) -> Vec<u8> {
    let mut csv = String::from(
        "case_number,report_type,diagnosis_date,diagnosis_method,doctor_name,institution_name,name,date_of_birth,phone,onset_date,sex,municipality\n",
    );
    for i in 0..rows {
        csv.push_str(&format!(
            "{tag}{i},patient,2022-01-10,pcr,医師,病院,患者 {i},1950-01-01,090{i:08},2022-01-09,female,港区\n"
        ));
    }
    csv.into_bytes()
}

/// The logged-in member chooses a file whose check goes on in the background (6,000 rows,
/// with a 1 s request limit), then a one-row file while it is still being checked; returns
/// the first file's progress page (once its check has ended, after the newer one's) and the
/// newer file's dry-run page.
pub async fn newer_file_while_checking(app: &TestApp, csrf: &str) -> (String, String) {
    let post = |bytes| {
        app.post_multipart(
            "/imports",
            vec![("csrf", csrf.to_string()), ("mapping", String::new())],
            Some(bytes),
        )
    };
    let r = post(occurrence_csv(6_000, "A")).await;
    assert_eq!(
        r.status(),
        303,
        "the first file is checked in the background"
    );
    let first = r.headers()["location"].to_str().unwrap().to_string();
    let newer = checked(app, csrf, occurrence_csv(1, "B")).await;
    for _ in 0..1200 {
        let r = app.get(&first).await;
        assert_eq!(r.status(), 200, "the first file's page");
        if !r.text().await.unwrap().contains("ファイルを確認しています") {
            return (first, newer);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the first file's check did not end");
}

/// Uploads `file` from the console's import form (the default mapping) and returns its dry
/// run's page: answered at once, or behind its progress page when the check takes longer.
pub async fn checked(app: &TestApp, csrf: &str, file: Vec<u8>) -> String {
    let r = app
        .post_multipart(
            "/imports",
            vec![("csrf", csrf.to_string()), ("mapping", String::new())],
            Some(file),
        )
        .await;
    match r.status().as_u16() {
        200 => r.text().await.unwrap(),
        303 => {
            let progress = r.headers()["location"].to_str().unwrap().to_string();
            for _ in 0..1200 {
                let r = app.get(&progress).await;
                if r.status() == 303 {
                    let to = r.headers()["location"].to_str().unwrap().to_string();
                    return app.get(&to).await.text().await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the check did not end");
        }
        other => panic!("the upload: {other}"),
    }
}

/// The go-ahead token on a dry run's page (`what`: why one is expected there).
pub fn go_ahead_token(page: &str, what: &str) -> String {
    page.split("name=\"token\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("{what}: {page}"))
        .to_string()
}

/// Gives the go-ahead for the dry run `token` and waits until its import ends.
pub async fn go_ahead_and_wait(app: &TestApp, csrf: &str, token: &str) {
    let r = app
        .post_multipart(
            "/imports",
            vec![("csrf", csrf.to_string()), ("token", token.to_string())],
            None,
        )
        .await;
    assert!(r.status().is_redirection(), "the import starts");
    let mut done = 0;
    for _ in 0..1200 {
        done = app
            .get(&format!("/imports/0?token={token}"))
            .await
            .status()
            .as_u16();
        if done == 303 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(done, 303, "the import ends");
}
