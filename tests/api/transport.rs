//! The production shape's transport: `docker-compose.yml` is checked against the Compose
//! specification's JSON schema (no Docker engine here), and the TLS proxy it runs — Caddy with
//! `deploy/Caddyfile` — is started for real in front of the app: TLS 1.2 answers with HSTS,
//! TLS 1.1 is refused by the server, and the client's address reaches the audit log as the
//! proxy saw it (a forged `X-Forwarded-For` does not).
use std::{path::Path, process::Command, time::Duration};

use crate::{
    helpers::spawn_app_with,
    peers::{Peer, free_port},
};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn docker_compose_follows_the_compose_specification() {
    crate::peers::python_peer(crate::peers::CHECK_JSONSCHEMA);
    let out = Command::new("python3")
        .args(["-m", "check_jsonschema", "--schemafile"])
        .arg(repo().join("tests/peers/compose-spec.json"))
        .arg(repo().join("docker-compose.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The proxy is the only way in: web publishes no port.
    let compose = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    let web = compose.split("\n  web:").nth(1).unwrap();
    let web = web.split("\n  proxy:").next().unwrap();
    assert!(!web.contains("ports:"), "web publishes no port");
    assert!(web.contains("MIMAMORI_HTTP__BEHIND_PROXY"));
}

/// Caddy from Debian (installed on first use, like the other peers).
pub(crate) fn caddy() {
    let found = Command::new("caddy")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let st = Command::new("apt-get")
            .args(["install", "-y", "-q", "caddy"])
            .status()
            .expect("apt-get is needed to install Caddy");
        assert!(st.success(), "apt-get install caddy failed");
    }
}

/// `openssl s_client` offering exactly one TLS version; its combined output.
fn handshake(port: u16, version: &str) -> String {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
            version,
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is needed for the TLS test");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The port of a `host:port` address.
fn port_of(addr: &str) -> String {
    addr.rsplit(':').next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn the_tls_proxy_allows_only_tls_1_2_and_up_and_keeps_the_client_address() {
    caddy();
    let app = spawn_app_with(|c| {
        c.http.behind_proxy = true;
        c.http.patient_addr = "127.0.0.1:0".into();
    })
    .await;
    let upstream = app.base.trim_start_matches("http://").to_string();
    let door = app.patient_base.clone().expect("a patients' door");
    let door = door.trim_start_matches("http://").to_string();
    let (https, http) = (free_port(), free_port());
    let data = tempfile::tempdir().unwrap();
    let caddyfile = repo().join("deploy/Caddyfile");
    let check = Command::new("caddy")
        .args(["validate", "--adapter", "caddyfile", "--config"])
        .arg(&caddyfile)
        .env("XDG_DATA_HOME", data.path())
        .env("XDG_CONFIG_HOME", data.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let proxy = Peer::spawn(
        Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&caddyfile)
            .env("XDG_DATA_HOME", data.path())
            .env("XDG_CONFIG_HOME", data.path())
            .env("MIMAMORI_DOMAIN", "localhost")
            .env("MIMAMORI_TLS_ISSUER", "internal")
            .env("MIMAMORI_HTTPS_PORT", https.to_string())
            .env("MIMAMORI_HTTP_PORT", http.to_string())
            .env("MIMAMORI_UPSTREAM_HOST", "127.0.0.1")
            .env("MIMAMORI_UPSTREAM_PORT", port_of(&upstream))
            .env("MIMAMORI_PATIENT_UPSTREAM_PORT", port_of(&door))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve("localhost", ([127, 0, 0, 1], https).into())
        .build()
        .unwrap();
    let url = |p: &str| format!("https://localhost:{https}{p}");
    let mut up = None;
    for _ in 0..100 {
        if let Ok(r) = client.get(url("/healthz")).send().await {
            up = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = up.expect("Caddy did not answer within 10 s");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );

    let tls12 = handshake(https, "-tls1_2");
    assert!(
        tls12.contains("Protocol  : TLSv1.2") || tls12.contains("TLSv1.2"),
        "{tls12}"
    );
    let tls11 = handshake(https, "-tls1_1");
    assert!(
        tls11.contains("alert protocol version"),
        "the server refuses TLS 1.1: {tls11}"
    );

    // Through the proxy a forged X-Forwarded-For is dropped: the audit keeps the address the
    // proxy saw. Straight to a process behind a proxy, the header is believed (that is why
    // only the proxy may reach it).
    let failed_login = |c: &reqwest::Client, u: String, forged: &'static str| {
        c.post(u)
            .header("x-forwarded-for", forged)
            .form(&[("username", "nurse"), ("password", "wrong")])
            .send()
    };
    assert_eq!(
        failed_login(&client, url("/login"), "6.6.6.6")
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        failed_login(&app.client, app.url("/login"), "203.0.113.7")
            .await
            .unwrap()
            .status(),
        401
    );
    let ips: Vec<Option<String>> = mimamori_core::with_db!(&app.db, p => sqlx::query_scalar(
        "SELECT ip FROM audit_log WHERE action = 'login.failed' ORDER BY id").fetch_all(p).await.unwrap());
    // A patient's link through the proxy is answered as at the patients' door, and the
    // console through the proxy is the console (the door answers 404 to it).
    let r = client.get(url("/c/not-a-link")).send().await.unwrap();
    let direct = reqwest::get(format!("http://{door}/c/not-a-link"))
        .await
        .unwrap();
    assert_eq!(r.status(), direct.status());
    assert_eq!(r.text().await.unwrap(), direct.text().await.unwrap());
    let login = client.get(url("/login")).send().await.unwrap();
    assert_eq!(login.status(), 200);
    // The console stays on one replica per browser: the proxy gives it its cookie.
    let sticky = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap_or("").starts_with("mimamori_lb="));
    assert!(sticky, "{:?}", login.headers());
    // An import's file passes the proxy's 4 MB limit for everything else (the app's own
    // limit for it is 50 MiB) and is read by the app; a larger request elsewhere is refused
    // at the proxy.
    let nurse = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve("localhost", ([127, 0, 0, 1], https).into())
        .cookie_store(true)
        .build()
        .unwrap();
    let csrf = crate::helpers::login_as(&url(""), &nurse, "nurse").await;
    let upload = crate::helpers::post_multipart_as(
        &nurse,
        &url("/imports"),
        vec![("csrf", csrf)],
        Some(vec![b'x'; 5 * 1024 * 1024]),
    )
    .await;
    assert_eq!(
        upload.status(),
        422,
        "the app read the file and refused it by name"
    );
    let elsewhere = client
        .post(url("/persons"))
        .body(vec![b'x'; 5 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    // (The Caddy of these tests, 2.6, answers 502 when the limit cuts the body it forwards.)
    assert!(
        matches!(elsewhere.status().as_u16(), 413 | 502),
        "{}",
        elsewhere.status()
    );
    assert_eq!(
        ips,
        [
            Some("127.0.0.1".to_string()),
            Some("203.0.113.7".to_string())
        ]
    );
    // The proxy goes first: the request it cut short holds a connection to the app.
    drop(proxy);
    app.finish().await;
}
