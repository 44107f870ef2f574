//! Building and running the application: connect, migrate, load flows and demo data, bind
//! the listener (port 0 in tests), serve and/or run workers, shut down gracefully.
use std::{net::SocketAddr, path::Path, sync::Arc};

use anyhow::Context;
use mimamori_core::{
    Db, config::Config, flows::Flows, provider::Channels, rules::Thresholds, store::staff,
    token::LinkSigner, voice::Prompts,
};
use mimamori_workers::Deps;
use rand::Rng;
use tokio::net::TcpListener;

use crate::web::{self, AppState};

/// Which parts run in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Web and workers in one process (the embedded default).
    Serve,
    Web,
    Work,
}

pub struct Application {
    listener: Option<TcpListener>,
    port: u16,
    /// The patients' door (`http.patient_addr`), when configured.
    door: Option<Door>,
    state: AppState,
    /// The patient lane's state: its own pool, answer writer and audit writer.
    patient: AppState,
    deps: Arc<Deps>,
    role: Role,
}

/// The patients' door: its listener and the runtime (threads of its own) that serves it and
/// owns the patient lane's pool and writers, so their sockets are woken by its own I/O
/// driver, not by the console's busy threads.
struct Door {
    listener: std::net::TcpListener,
    port: u16,
    rt: DoorRuntime,
}

/// The door's runtime, shut down without blocking when dropped: a runtime dropped inside
/// another's task panics, and the door may go with an `Application` that fails to build or
/// never runs.
struct DoorRuntime(Option<tokio::runtime::Runtime>);

impl std::ops::Deref for DoorRuntime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("the door's runtime until dropped")
    }
}

impl Drop for DoorRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Door {
    fn open(config: &Config) -> anyhow::Result<Door> {
        let addr = &config.http.patient_addr;
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on {addr} (http.patient_addr)"))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let threads = match config.http.patient_threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(DOOR_THREAD)
            .enable_all()
            .build()
            .context("cannot start the patients' door's threads")?;
        Ok(Door {
            listener,
            port,
            rt: DoorRuntime(Some(rt)),
        })
    }
}

/// The name of the patients' door's threads.
const DOOR_THREAD: &str = "patient-door";

/// Opens the database named by the configuration and applies all migrations.
pub async fn open_db(config: &Config) -> anyhow::Result<Db> {
    let url = config.database_url();
    let db = Db::connect_waiting(
        &url,
        config.database.max_connections,
        config.connection_wait(),
    )
    .await
    .with_context(|| {
        format!(
            "cannot open the {} database",
            if url.starts_with("sqlite") {
                "SQLite"
            } else {
                "PostgreSQL"
            }
        )
    })?;
    db.migrate().await.context("applying migrations")?;
    mimamori_workers::setup(&db)
        .await
        .context("setting up the job queue tables")?;
    Ok(db)
}

/// The patient lane's state: on its own pool when `database.patient_connections` gives it
/// one, else the console's.
async fn patient_state(state: AppState, config: Arc<Config>) -> anyhow::Result<AppState> {
    Ok(match patient_pool(&config).await? {
        Some(pool) => state.on_pool(pool),
        None => state,
    })
}

/// The patient lane's own pool (`database.patient_connections`), or `None` to share the
/// main one (0, or an in-memory SQLite database that a second pool would not see).
async fn patient_pool(config: &Config) -> anyhow::Result<Option<Db>> {
    let url = config.database_url();
    let n = config.database.patient_connections;
    if n == 0 || url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(None);
    }
    let db = Db::connect_waiting(&url, n, config.connection_wait())
        .await
        .context("cannot open the patient lane's database pool")?;
    Ok(Some(db))
}

pub use crate::web::auth::hash_password;

/// At start-up, asks the configured providers whether they would work (nothing is sent): a
/// refused Twilio credential, a sender number not on the account, an SMTP server that does
/// not answer or refuses the login is logged at error and raised as an operator alarm
/// (console banner, `/healthz` degraded) — the process still serves patients, and the first
/// successful send clears the alarm.
async fn provider_check(db: Db, config: Arc<Config>) {
    let problems = mimamori_core::provider::Channels::live_check(&config).await;
    let configured = [
        ("twilio", !config.twilio.account_sid.is_empty()),
        (
            "smtp",
            config.smtp.url.as_deref().is_some_and(|u| !u.is_empty()),
        ),
    ];
    for (provider, _) in configured.into_iter().filter(|(_, on)| *on) {
        let mine: Vec<&str> = problems
            .iter()
            .filter(|p| p.starts_with(provider))
            .map(String::as_str)
            .collect();
        let result = if mine.is_empty() {
            mimamori_core::store::alarms::clear(&db, provider)
                .await
                .map(|_| ())
        } else {
            let detail = mine.join("; ");
            tracing::error!(provider, problems = %detail, "OPERATOR ALARM: the provider check at start-up failed");
            mimamori_core::store::alarms::raise(&db, provider, "startup_check", &detail)
                .await
                .map(|_| ())
        };
        if let Err(e) = result {
            tracing::warn!(provider, error = %e, "recording the start-up provider check failed");
        }
    }
}

/// Whether some channel has no provider and goes to the dev outbox.
pub fn dev_outbox(config: &Config) -> bool {
    config.twilio.account_sid.is_empty() || config.smtp.url.as_deref().unwrap_or("").is_empty()
}

/// Loads the demo set when the database has no health centre yet; prints the login.
pub async fn load_demo_if_empty(db: &Db, dev_outbox: bool) -> anyhow::Result<()> {
    if staff::count_health_centres(db).await? > 0 {
        return Ok(());
    }
    let password: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(14)
        .map(char::from)
        .collect();
    let hash = tokio::task::spawn_blocking({
        let p = password.clone();
        move || hash_password(&p)
    })
    .await??;
    let login = mimamori_core::demo::load(db, "demo", &hash, 50).await?;
    let second_factor = if dev_outbox {
        "second factor: the code is shown on the code page (dev outbox: no SMS or e-mail provider is configured)"
    } else {
        "second factor: login codes go through the configured SMS / e-mail provider to each account's contact; give the demo accounts real ones on the ID page first"
    };
    // Printed to the operator's terminal on purpose (not to the log): the only copy.
    println!(
        "\n  mimamori demo data loaded (health centre {}).\n  Console login — user: {}  password: {}\n  Follow-up contractor login (sees its assigned people only) — user: {}  same password\n  Other roles, same password: demo-officer, demo-prefecture, demo-hospital, demo-hotel, demo-analyst, demo-ministry\n  ({second_factor})\n",
        login.health_centre_id, login.username, password, login.contractor_username
    );
    Ok(())
}

impl Application {
    pub async fn build(mut config: Config, role: Role) -> anyhow::Result<Application> {
        let problems = config.problems();
        anyhow::ensure!(
            problems.is_empty(),
            "configuration problems:\n  {}",
            problems.join("\n  ")
        );
        let catalogue = mimamori_core::i18n::problems();
        anyhow::ensure!(
            catalogue.is_empty(),
            "the message catalogue is incomplete:\n  {}",
            catalogue.join("\n  ")
        );
        let flows = Arc::new(
            Flows::load(Path::new(&config.flows_dir))
                .map_err(|p| anyhow::anyhow!("flows are invalid:\n  {}", p.join("\n  ")))?,
        );
        let prompts = Prompts::load(Path::new(&config.voice_prompts_dir))
            .map_err(|p| anyhow::anyhow!("voice prompts are invalid:\n  {}", p.join("\n  ")))?;
        let missing = prompts.missing_for(&flows);
        anyhow::ensure!(
            missing.is_empty(),
            "voice prompts are incomplete:\n  {}",
            missing.join("\n  ")
        );
        let rules = Thresholds::load(Path::new(&config.flows_dir))
            .map_err(|e| anyhow::anyhow!("rules are invalid: {e}"))?;
        let misfit = rules.problems_with(&flows);
        anyhow::ensure!(
            misfit.is_empty(),
            "rules do not fit the flows:\n  {}",
            misfit.join("\n  ")
        );
        let periods = mimamori_core::periods::Periods::load(Path::new(&config.flows_dir))
            .map_err(|e| anyhow::anyhow!("observation periods are invalid: {e}"))?;
        let reporting =
            mimamori_core::stats::reporting::Reporting::load(Path::new(&config.flows_dir))
                .map_err(|e| anyhow::anyhow!("reporting rules are invalid: {e}"))?;
        let db = open_db(&config).await?;
        if config.demo.load_on_empty && role != Role::Work {
            load_demo_if_empty(&db, dev_outbox(&config)).await?;
        }
        let signer = LinkSigner::new(&crate::settings::link_key(&config)?);
        let (listener, port) = if role == Role::Work {
            (None, 0)
        } else {
            let l = TcpListener::bind(&config.http.addr)
                .await
                .with_context(|| format!("cannot listen on {} (http.addr)", config.http.addr))?;
            let port = l.local_addr()?.port();
            (Some(l), port)
        };
        if config.public_url.is_empty() {
            let ip = config
                .http
                .addr
                .parse::<SocketAddr>()
                .map(|a| a.ip().to_string())
                .unwrap_or_else(|_| "127.0.0.1".into());
            config.public_url = format!("http://{ip}:{port}");
        }
        let config = Arc::new(config);
        let deps = Arc::new(Deps {
            db: db.clone(),
            config: (*config).clone(),
            channels: Channels::from_config(&config, &db).map_err(|e| anyhow::anyhow!(e))?,
            signer: signer.clone(),
            rules: rules.clone(),
            flows: flows.clone(),
        });
        let state = AppState::new(
            db,
            config.clone(),
            signer,
            flows,
            Arc::new(prompts),
            Arc::new(rules),
            deps.channels.clone(),
        );
        let state = AppState::from(crate::web::AppShared {
            periods: Arc::new(periods),
            reporting: Arc::new(reporting),
            ..(*state).clone()
        });
        let door = if role != Role::Work && !config.http.patient_addr.is_empty() {
            Some(Door::open(&config)?)
        } else {
            None
        };
        let patient = if role == Role::Work {
            state.clone()
        } else if let Some(door) = &door {
            // Opened on the door's runtime: the pool's connections and the answer and audit
            // writers' tasks belong to its threads.
            door.rt
                .spawn(patient_state(state.clone(), config.clone()))
                .await??
        } else {
            patient_state(state.clone(), config.clone()).await?
        };
        tokio::spawn(provider_check(deps.db.clone(), config.clone()));
        Ok(Application {
            listener,
            port,
            door,
            state,
            patient,
            deps,
            role,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The patients' door's port, when there is one.
    pub fn patient_port(&self) -> Option<u16> {
        self.door.as_ref().map(|d| d.port)
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// The patient lane's pool (the main one when it is shared).
    pub fn patient_db(&self) -> &Db {
        &self.patient.db
    }

    /// Serves until `shutdown` completes; then stops taking requests and jobs, finishes the
    /// ones in flight and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
        let workers = if self.role != Role::Web {
            Some(tokio::spawn(mimamori_workers::run(
                self.deps.clone(),
                rx.clone(),
            )))
        } else {
            None
        };
        let door = self.door.map(|door| {
            tracing::info!(port = door.port, "the patients' door is listening");
            let app = web::router(self.state.clone(), self.patient.clone())
                .layer(axum::middleware::from_fn(web::lanes::patients_only));
            let rx = rx.clone();
            let listener = door.listener;
            // On the door's own runtime: its connections are accepted, read and written by
            // its threads.
            let served = door.rt.spawn(async move {
                let listener = TcpListener::from_std(listener)?;
                serve(listener, app, rx).await
            });
            (door.rt, served)
        });
        if let Some(listener) = self.listener {
            tracing::info!(
                port = self.port,
                backend = self.state.db.backend(),
                "listening"
            );
            let app = web::router(self.state.clone(), self.patient.clone());
            // An error here drops the door's runtime too (shut down in the background).
            serve(listener, app, rx.clone()).await?;
        }
        let door_rt = match door {
            Some((rt, served)) => {
                served.await??;
                Some(rt)
            }
            None => None,
        };
        if let Some(w) = workers {
            w.await??;
        }
        self.patient.db.close().await;
        self.state.db.close().await;
        // Its work is done; dropped, it shuts down in the background.
        drop(door_rt);
        tracing::info!("stopped");
        Ok(())
    }
}

/// Serves `app` on `listener` until the shutdown watch turns true. TCP_NODELAY on every
/// connection: axum does not set it, and with Nagle's algorithm a response's second small
/// segment waits for the client's delayed acknowledgement (up to 40 ms).
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use axum::serve::ListenerExt as _;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY could not be set");
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = shutdown.wait_for(|s| *s).await;
    })
    .await?;
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight work");
}
