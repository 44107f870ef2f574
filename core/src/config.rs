//! The typed configuration. Loading (file → environment) happens in the binary; this crate
//! only defines the shape and the embedded defaults, so `cargo run` works with no config.
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    /// Base of links sent to people and of webhook URLs, e.g. `https://mimamori.example.jp`.
    /// Empty means `http://` + the address the server is bound to (tests, local use).
    pub public_url: String,
    /// `text` (default) or `json`.
    pub log_format: String,
    /// Folder for the embedded database and the generated signing key.
    pub data_dir: String,
    /// Key for signing patient links. When unset, a random key is generated once and kept in
    /// `{data_dir}/link-secret.key`.
    pub link_secret: Option<SecretString>,
    pub checkin: CheckinConfig,
    pub workers: WorkersConfig,
    pub demo: DemoConfig,
    pub flows_dir: String,
    /// Voice prompt texts and recordings (`voice-prompts/`).
    pub voice_prompts_dir: String,
    pub twilio: TwilioConfig,
    pub smtp: SmtpConfig,
}

/// A list of sender numbers given as a list, or as one comma-separated string (how an
/// environment variable carries several).
fn numbers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Numbers {
        List(Vec<String>),
        One(String),
    }
    let list = match Numbers::deserialize(d)? {
        Numbers::List(l) => l,
        Numbers::One(s) => s.split(',').map(str::to_string).collect(),
    };
    Ok(list
        .into_iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect())
}

/// Whether `n` is an E.164 number (`+` then 8 to 15 digits, no leading 0).
pub fn is_e164(n: &str) -> bool {
    n.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// A Twilio-compatible REST API for SMS and voice. Unset `account_sid` = dev outbox.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TwilioConfig {
    pub api_base: String,
    pub account_sid: String,
    /// Basic-auth password and the key of webhook signatures (X-Twilio-Signature).
    pub auth_token: SecretString,
    /// Sender numbers for SMS; sends are spread over them. A list in the file; in the
    /// environment a comma-separated value (`+815000000001,+815000000002`) or a list.
    #[serde(deserialize_with = "numbers")]
    pub sms_from: Vec<String>,
    /// Caller ids for automated calls (as `sms_from`).
    #[serde(deserialize_with = "numbers")]
    pub voice_from: Vec<String>,
    /// Per sender number; 0 = unlimited.
    pub messages_per_sec: f64,
    pub calls_per_sec: f64,
    /// Timeout of one REST request, in seconds.
    pub request_timeout_secs: u64,
    /// After the provider refuses our credential or account (401, 20003, …), sending stops
    /// this many seconds before one request tries again.
    pub operator_halt_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SmtpConfig {
    /// `smtp://host:25` (plain, local only), `smtp://host:587?tls=required` (STARTTLS),
    /// `smtps://user:pass@host:465` (TLS). Unset = e-mails go to the dev outbox.
    pub url: Option<String>,
    pub from: String,
}

impl Default for TwilioConfig {
    fn default() -> Self {
        TwilioConfig {
            api_base: "https://api.twilio.com".into(),
            account_sid: String::new(),
            auth_token: SecretString::from(""),
            sms_from: Vec::new(),
            voice_from: Vec::new(),
            messages_per_sec: 10.0,
            calls_per_sec: 1.0,
            request_timeout_secs: 10,
            operator_halt_secs: 30,
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            url: None,
            from: "mimamori <noreply@mimamori.invalid>".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// `postgres://…` or `sqlite://…`; when unset, `{data_dir}/mimamori.db`.
    pub url: Option<String>,
    pub max_connections: u32,
    /// A second pool for the patient lane (link form, provider webhooks, the answer writer):
    /// console load cannot take the connections patients need. 0 = share the main pool.
    pub patient_connections: u32,
    /// How long a request or worker waits for a free connection of its pool before it gives
    /// up (a request is then told to retry: 503 `busy`). Seconds, at least 1.
    pub connection_wait_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    pub addr: String,
    /// Per-request timeout in seconds.
    pub request_timeout_secs: u64,
    /// Serve person observation pages and sessions from memory while the database's change
    /// feed is heard (PostgreSQL only; see `mimamori_core::changes`). `false` reads every
    /// request from the database.
    pub cache: bool,
    /// Behind our own TLS-terminating proxy (docker-compose's Caddy): take the client's
    /// address from the last `X-Forwarded-For` entry the proxy wrote, for the audit log.
    /// Leave false when clients reach this process directly (they could forge the header).
    pub behind_proxy: bool,
    /// Bearer token for `GET /metrics` (Prometheus text: operator alarms, open escalations,
    /// pending staff alerts). Empty: `/metrics` is off (404).
    pub metrics_token: secrecy::SecretString,
    /// Password checks (argon2, memory- and CPU-hard) at the same time; 0 = one per core. A
    /// login storm queues behind them instead of starving the patient path of CPU.
    pub login_concurrency: usize,
    /// How long a login waits in that queue before it is told to retry (503 + Retry-After).
    pub login_queue_secs: u64,
    /// Most console and API requests running at once; 0 = 16 per core. Fewer (down to one
    /// per core) while patients' requests run slower than usual. Patient pages, provider
    /// webhooks and logins are not counted (see `web::lanes`).
    pub console_concurrency: usize,
    /// Console requests allowed to wait for one of those places; further ones are told at
    /// once to retry (503 + Retry-After).
    pub console_queue: usize,
    /// How long a console request waits for a place before it is told to retry.
    pub console_queue_ms: u64,
    /// The patients' door: a second address serving only the patient lane (the link form,
    /// the provider's webhooks, `/healthz`, `/metrics`) on threads of its own, with its own
    /// connections, accept queue and database pool — the console cannot take its CPU time
    /// slices, sockets or connections. A proxy sends `/c/` and `/hooks/` there. Empty: one
    /// address serves everything (the lanes still apply).
    pub patient_addr: String,
    /// Threads of the patients' door; 0 = one per core.
    pub patient_threads: usize,
    /// Most megabytes of uploaded import files the console holds at once (being checked,
    /// waiting for their go-ahead, being imported; each file counted twice, for its report).
    /// A further upload is told to retry in a minute (503) — or to use `mimamori import`.
    pub import_files_mb: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CheckinConfig {
    /// How long after a check-in is due an answer is accepted before it counts as missed.
    pub answer_window_minutes: i64,
    /// Lifetime of the signed link in an SMS or e-mail.
    pub link_ttl_hours: i64,
    /// Sending attempts per check-in before it ends as `failed`.
    pub max_send_attempts: i32,
    /// Delay before a failed send is tried again (multiplied by the attempt number).
    pub retry_backoff_secs: i64,
    /// Unanswered this long after sending: send a reminder (0 = no reminders).
    pub reminder_after_minutes: i64,
    /// Reminders per check-in. The last one goes through the person's fallback channel
    /// (e.g. a voice call) when they have one.
    pub max_reminders: i32,
    /// A check-in held back by an operator alarm (wrong credential) is tried again after
    /// this many seconds — not failed, not counted as an attempt.
    pub operator_retry_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WorkersConfig {
    /// How often the dispatcher looks for due check-ins, in milliseconds.
    pub dispatch_interval_ms: u64,
    /// How often an idle queue worker looks for new jobs, in milliseconds.
    pub queue_poll_ms: u64,
    /// How often pending staff alerts (urgent escalations) are looked for, in milliseconds,
    /// besides being sent as soon as they are queued; they have their own lane, never behind
    /// a batch of patient sends.
    pub alert_interval_ms: u64,
    /// Check-ins claimed per batch.
    pub batch_size: i64,
    /// A claim older than this is considered abandoned (crashed worker) and taken again.
    pub claim_lease_secs: i64,
    /// How often attempts whose provider report never arrived are asked of the provider.
    pub reconcile_interval_secs: u64,
    /// How often the statistics job re-derives the figures of changed records (seconds; the
    /// statistics pages are at most this much behind the entries).
    pub stats_interval_secs: u64,
    /// How long an attempt waits for its report before it is asked of the provider.
    pub reconcile_after_secs: i64,
    /// Cron expression (seconds first) of the daily planning run, in `planning_time_zone`.
    pub planning_cron: String,
    pub planning_time_zone: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DemoConfig {
    /// Load demo data when the database has no health centre yet.
    pub load_on_empty: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: DatabaseConfig::default(),
            http: HttpConfig::default(),
            public_url: "http://127.0.0.1:8080".into(),
            log_format: "text".into(),
            data_dir: "mimamori-data".into(),
            link_secret: None,
            checkin: CheckinConfig::default(),
            workers: WorkersConfig::default(),
            demo: DemoConfig::default(),
            flows_dir: "flows".into(),
            voice_prompts_dir: "voice-prompts".into(),
            twilio: TwilioConfig::default(),
            smtp: SmtpConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: 16,
            patient_connections: 4,
            connection_wait_secs: 10,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: "127.0.0.1:8080".into(),
            request_timeout_secs: 15,
            cache: true,
            behind_proxy: false,
            metrics_token: SecretString::from(""),
            login_concurrency: 0,
            login_queue_secs: 10,
            console_concurrency: 0,
            console_queue: 64,
            console_queue_ms: 2000,
            import_files_mb: 512,
            patient_addr: String::new(),
            patient_threads: 0,
        }
    }
}

impl Default for CheckinConfig {
    fn default() -> Self {
        CheckinConfig {
            answer_window_minutes: 600,
            link_ttl_hours: 24,
            max_send_attempts: 3,
            retry_backoff_secs: 600,
            reminder_after_minutes: 180,
            max_reminders: 2,
            operator_retry_secs: 60,
        }
    }
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            dispatch_interval_ms: 1000,
            queue_poll_ms: 1000,
            alert_interval_ms: 500,
            batch_size: 200,
            claim_lease_secs: 300,
            reconcile_interval_secs: 60,
            stats_interval_secs: 10,
            reconcile_after_secs: 120,
            planning_cron: "0 5 0 * * *".into(),
            planning_time_zone: "Asia/Tokyo".into(),
        }
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            load_on_empty: true,
        }
    }
}

impl Config {
    /// The database URL in effect: the configured one, or the embedded SQLite file.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(u) if !u.is_empty() => u.clone(),
            _ => format!(
                "sqlite://{}/mimamori.db",
                self.data_dir.trim_end_matches('/')
            ),
        }
    }

    /// How long a caller waits for a free database connection (`database.connection_wait_secs`).
    pub fn connection_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.database.connection_wait_secs.max(1))
    }

    /// Problems that make the configuration unusable, each naming the key and the fix.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.http.addr.parse::<std::net::SocketAddr>().is_err() {
            out.push(format!(
                "http.addr (MIMAMORI_HTTP__ADDR): '{}' is not an address; use host:port such as 127.0.0.1:8080",
                self.http.addr
            ));
        }
        if !(self.public_url.is_empty()
            || self.public_url.starts_with("http://")
            || self.public_url.starts_with("https://"))
        {
            out.push(
                "public_url (MIMAMORI_PUBLIC_URL): must start with http:// or https://".into(),
            );
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            out.push("log_format (MIMAMORI_LOG_FORMAT): use 'text' or 'json'".into());
        }
        let url = self.database_url();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            out.push(
                "database.url (MIMAMORI_DATABASE__URL): use postgres://… or sqlite://…".into(),
            );
        }
        if self
            .workers
            .planning_time_zone
            .parse::<chrono_tz::Tz>()
            .is_err()
        {
            out.push(format!(
                "workers.planning_time_zone: '{}' is not an IANA time zone such as Asia/Tokyo",
                self.workers.planning_time_zone
            ));
        }
        if self.database.connection_wait_secs < 1 {
            out.push(
                "database.connection_wait_secs (MIMAMORI_DATABASE__CONNECTION_WAIT_SECS): must be at least 1 (seconds)"
                    .into(),
            );
        }
        if self.checkin.max_send_attempts < 1 {
            out.push("checkin.max_send_attempts: must be at least 1".into());
        }
        if !self.twilio.account_sid.is_empty() {
            use secrecy::ExposeSecret;
            if self.twilio.auth_token.expose_secret().is_empty() {
                out.push("twilio.auth_token (MIMAMORI_TWILIO__AUTH_TOKEN): required with twilio.account_sid".into());
            }
            if self.twilio.sms_from.is_empty() && self.twilio.voice_from.is_empty() {
                out.push(
                    "twilio.sms_from / twilio.voice_from: give at least one sender number".into(),
                );
            }
            for (key, list) in [
                ("twilio.sms_from", &self.twilio.sms_from),
                ("twilio.voice_from", &self.twilio.voice_from),
            ] {
                for n in list.iter().filter(|n| !is_e164(n)) {
                    out.push(format!(
                        "{key}: '{n}' is not an E.164 number; write it as +81 and the number without its leading 0 (e.g. +815012345678)"
                    ));
                }
            }
            if !self.twilio.api_base.starts_with("http") {
                out.push(
                    "twilio.api_base (MIMAMORI_TWILIO__API_BASE): must be an http(s) URL".into(),
                );
            }
        }
        if self.workers.batch_size < 1 {
            out.push("workers.batch_size: must be at least 1".into());
        }
        out
    }
}
