//! Real programs nobody here wrote, started by the tests:
//! * Prism serving Twilio's official OpenAPI document — our REST requests must satisfy
//!   Twilio's contract (Prism answers 4xx to anything that does not);
//! * Twilio's official Node SDK — its signatures must be accepted by our webhooks;
//! * aiosmtpd — a real SMTP server receiving our e-mails;
//! * openapi-spec-validator — checks our generated OpenAPI document.
//!
//! Missing peers are installed on first use (`npm ci` in `tests/peers`, `pip install` of the
//! Python ones).
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::Duration,
};

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

static INSTALL: Mutex<()> = Mutex::new(());

/// Installs the Node peers (Prism, Twilio SDK) once.
pub fn node_peers() -> PathBuf {
    let _g = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = peers_dir();
    let installed = [
        "node_modules/.bin/prism",
        "node_modules/twilio",
        "node_modules/playwright-core",
        "node_modules/axe-core",
    ]
    .iter()
    .all(|p| dir.join(p).exists());
    if !installed {
        let st = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for the test peers (Node.js 18+)");
        assert!(st.success(), "npm ci in tests/peers failed");
    }
    dir
}

/// Makes sure `python3 -m aiosmtpd` works.
pub fn aiosmtpd() {
    python_package("aiosmtpd", "aiosmtpd==1.4.6");
}

/// Makes sure the Python module `import` can be imported, installing `spec` with pip if not.
/// The Python peers, as (module to import, pip requirement).
pub const OPENAPI_SPEC_VALIDATOR: (&str, &str) =
    ("openapi_spec_validator", "openapi-spec-validator==0.7.1");
pub const SCHEMATHESIS: (&str, &str) = ("schemathesis", "schemathesis==4.32.5");
pub const CHECK_JSONSCHEMA: (&str, &str) = ("check_jsonschema", "check-jsonschema==0.29.4");

/// [`python_package`] of one of the constants above.
pub fn python_peer((import, spec): (&str, &str)) {
    python_package(import, spec)
}

/// Installs every peer the tests start, one after another. `.ci/run` runs it before the
/// tests, so that on a fresh machine the installs (Chromium and its fonts, Caddy, the npm
/// and pip packages) do not compete for the cores with tests that time their pages — a
/// Chromium page once waited past its 30 s while they ran. The tests still install what is
/// missing on first use, so `cargo test` alone works as before.
#[test]
#[ignore = "a set-up step: cargo test --test api -- --ignored --exact peers::install_every_peer"]
fn install_every_peer() {
    node_peers();
    aiosmtpd();
    for peer in [OPENAPI_SPEC_VALIDATOR, SCHEMATHESIS, CHECK_JSONSCHEMA] {
        python_peer(peer);
    }
    chromium();
    crate::transport::caddy();
}

pub fn python_package(import: &str, spec: &str) {
    let _g = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let ok = Command::new("python3")
        .args(["-c", &format!("import {import}")])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let st = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", spec])
            .status()
            .expect("python3 is needed for the test peers");
        assert!(st.success(), "pip install {spec} failed");
    }
}

/// A child process killed when dropped.
pub struct Peer(Child);

impl Peer {
    pub fn spawn(cmd: &mut Command) -> Peer {
        Peer(cmd.spawn().expect("starting a test peer"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_port(port: u16, what: &str, secs: u64) {
    for _ in 0..secs * 10 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not start listening on {port} within {secs} s");
}

/// Prism mocking Twilio's API 2010-04-01 from the official OpenAPI document, with request
/// validation: invalid requests get 4xx.
pub async fn prism() -> (Peer, String) {
    let dir = node_peers();
    // Twilio's official OpenAPI document (MIT, see TWILIO-OPENAPI-LICENSE), kept in the repo.
    let spec = dir.join("twilio_api_v2010.json");
    assert!(
        spec.exists(),
        "Twilio's OpenAPI document not found at {}",
        spec.display()
    );
    let port = free_port();
    let child = Command::new(dir.join("node_modules/.bin/prism"))
        .args([
            "mock",
            "--errors",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .arg(&spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prism");
    let peer = Peer(child);
    wait_port(port, "prism", 90).await;
    (peer, format!("http://127.0.0.1:{port}"))
}

/// A real SMTP server that stores every message in a Maildir (`{maildir}/new/`).
pub async fn smtp_server(maildir: &Path) -> (Peer, u16) {
    aiosmtpd();
    let port = free_port();
    let child = Command::new("python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    let peer = Peer(child);
    wait_port(port, "aiosmtpd", 30).await;
    (peer, port)
}

/// The signature Twilio's own Node SDK computes for a webhook.
pub fn sdk_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let dir = node_peers();
    let obj: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let script = "const t=require('twilio');const [tok,url,p]=JSON.parse(process.argv[1]);process.stdout.write(t.getExpectedTwilioSignature(tok,url,p));";
    let arg = serde_json::json!([token, url, obj]).to_string();
    let out = Command::new("node")
        .args(["-e", script, &arg])
        .current_dir(dir)
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Debian's Chromium (and Japanese fonts, so screenshots show text, not boxes), installed
/// with apt when missing (the machine's only browser source).
pub fn chromium() -> PathBuf {
    let _g = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let bin = PathBuf::from("/usr/bin/chromium");
    let fonts = Path::new("/usr/share/fonts/opentype/noto").exists();
    if !bin.exists() || !fonts {
        let st = Command::new("apt-get")
            .args(["install", "-y", "-q", "chromium", "fonts-noto-cjk"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .expect("apt-get is needed to install Chromium for the browser test");
        assert!(st.success(), "apt-get install chromium failed");
    }
    bin
}

/// Runs a browser script of `tests/peers` with `args` against Debian's Chromium; it prints
/// one JSON report on standard output.
fn browser_script(script: &str, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let dir = node_peers();
    let chromium = chromium();
    let o = Command::new("node")
        .arg(script)
        .args(args)
        .env("CHROMIUM", chromium)
        .current_dir(dir)
        .output()
        .expect("node");
    assert!(
        o.status.success(),
        "browser run of {script} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("the browser script prints JSON")
}

/// Runs `tests/peers/screenshot.mjs`: logs in, opens `path`, checks the chart is visible.
pub fn screenshot(
    base: &str,
    user: &str,
    password: &str,
    code: &str,
    path: &str,
    out: &Path,
) -> serde_json::Value {
    let args = [base, user, password, code, path].map(std::ffi::OsStr::new);
    let mut all: Vec<&std::ffi::OsStr> = args.to_vec();
    all.push(out.as_os_str());
    browser_script("screenshot.mjs", &all)
}

/// Runs `tests/peers/walk.mjs` with `spec` (see the script for the steps): a walk through
/// pages in headless Chromium, each checked with axe-core. Returns its report.
pub fn walk(spec: &serde_json::Value) -> serde_json::Value {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), spec.to_string()).expect("write spec");
    browser_script("walk.mjs", &[file.path().as_os_str()])
}
