//! Building and starting the server from [`Settings`]: connect and migrate the store, print the
//! first-run hint, bind, and run actix-web until stopped — and stopping it again (#14 item 8):
//! [`RunningServer::stop`] is the one place that ends everything the node started, in order,
//! within `shutdown_grace_secs` (ARCHITECTURE.md, "Stopping"). Used by `switchboard serve` and by
//! the integration tests, which start servers in-process on port 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::blobs::Blobs;
use crate::changes::Changes;
use crate::channels::email::mailbox::Mailboxes;
use crate::config::Settings;
use crate::http::{AppState, routes};
use crate::realtime::Realtime;
use crate::shutdown::Shutdown;
use crate::store::{self, Store};
use crate::telemetry::{Metrics, track_requests};

/// The part of the grace period kept back from the HTTP drain for the background tasks and the
/// actor threads (at most; a quarter of a shorter grace period).
const RESERVE: Duration = Duration::from_secs(2);

/// A server that is accepting connections.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when `metrics_bind` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub store: Store,
    pub realtime: Realtime,
    pub changes: Changes,
    pub mailboxes: Mailboxes,
    /// The Mattermost bot connectors of this node (issue #15).
    pub bots: crate::channels::mattermost::connector::Bots,
    /// The Zalo OAs' webhook intake and jobs on this node (issue #16).
    pub zalo: crate::channels::zalo::connector::Zalo,
    /// Every background task of the node; [`Self::stop`] ends them.
    shutdown: Shutdown,
    /// How long [`Self::stop`] may take.
    grace: Duration,
    handle_signals: bool,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The `metrics_bind` listener, if any.
    metrics: Option<(ServerHandle, tokio::task::JoinHandle<std::io::Result<()>>)>,
}

/// Why a stop was not clean.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("in-flight requests were still running when the grace period ran out; their connections were closed")]
    HttpOverran,
    #[error("the HTTP server failed: {0}")]
    Http(#[from] std::io::Error),
    #[error("the HTTP server task failed: {0}")]
    HttpTask(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Background(#[from] crate::shutdown::StopError),
}

impl RunningServer {
    /// The node's shutdown owner: how many background tasks still run (tests check it is none after a stop).
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Run until SIGTERM or SIGINT (when signals are handled) or until the HTTP server ends by
    /// itself, then [`Self::stop`].
    pub async fn wait(mut self) -> Result<(), StopError> {
        if self.handle_signals {
            tokio::select! {
                signal = termination() => {
                    tracing::info!(%signal, grace = ?self.grace, "stopping");
                }
                ended = &mut self.task => {
                    tracing::warn!(?ended, "the HTTP server ended by itself; stopping");
                }
            }
        } else {
            let _ = (&mut self.task).await;
        }
        self.stop().await
    }

    /// Stop the node within the grace period, in this order: stop accepting and drain the
    /// in-flight requests (the HTTP listeners); stop the mailbox connectors; cancel every
    /// background task and wait for them; end the actor threads and join them. What was accepted
    /// was committed before its answer; what did not finish in time is dropped whole (an open
    /// transaction rolls back, an outbox claim lapses).
    pub async fn stop(self) -> Result<(), StopError> {
        let start = tokio::time::Instant::now();
        let deadline = start + self.grace;
        let http_deadline = deadline - RESERVE.min(self.grace / 4);
        // Agent sockets close now rather than hold the drain until its deadline.
        self.shutdown.close_connections();
        let http = drain(self.handle, self.task, http_deadline).await;
        let metrics = match self.metrics {
            Some((handle, task)) => drain(handle, task, http_deadline).await,
            None => Ok(()),
        };
        self.mailboxes.stop_all().await;
        self.mailboxes.release_leases().await;
        self.bots.stop_all().await;
        self.bots.release_leases().await;
        self.zalo.stop_all().await;
        self.zalo.release_leases().await;
        let tasks = self.shutdown.stop(deadline).await;
        let threads = self.changes.stop(deadline).await;
        tracing::debug!(took = ?start.elapsed(), "stopped");
        http?;
        metrics?;
        tasks?;
        threads?;
        Ok(())
    }
}

/// Stop a listener gracefully; past `deadline`, close its connections.
async fn drain(
    handle: ServerHandle,
    mut task: tokio::task::JoinHandle<std::io::Result<()>>,
    deadline: tokio::time::Instant,
) -> Result<(), StopError> {
    if task.is_finished() {
        return Ok(task.await??);
    }
    let graceful = async {
        handle.stop(true).await;
        (&mut task).await
    };
    match tokio::time::timeout_at(deadline, graceful).await {
        Ok(ended) => Ok(ended??),
        Err(_) => {
            handle.stop(false).await;
            let _ = task.await;
            Err(StopError::HttpOverran)
        }
    }
}

/// The first SIGTERM or SIGINT, by name.
async fn termination() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
            _ => {
                tracing::warn!("cannot listen for SIGTERM/SIGINT; stop the process with SIGKILL");
                std::future::pending().await
            }
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        }
    }
}

/// Options that differ between the real process and in-process test servers.
#[derive(Debug, Clone, Copy)]
pub struct StartOptions {
    /// Stop on SIGTERM/SIGINT in [`RunningServer::wait`]. Off for test servers.
    pub handle_signals: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self { handle_signals: true }
    }
}

/// Connect to the database, apply pending migrations, load the secret key and seal what older
/// versions or a previous key left (`store::sealing`).
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database, settings.db_pool_size).await?;
    let ran = store.migrate().await?;
    if ran > 0 {
        tracing::info!(migrations = ran, backend = store.backend_name(), "database migrated");
    }
    open_secrets(settings, &store).await?;
    Ok(store)
}

/// The secrets-at-rest step of [`open_store`]. Every failure stops the start with a message that
/// says what to do; no key or secret is ever logged, only key ids.
async fn open_secrets(settings: &Settings, store: &Store) -> anyhow::Result<()> {
    use crate::secrets::{KeySource, SecretBox, key};
    let (current, source) = key::load_or_create(settings.secret_key.as_ref(), &settings.data_dir)?;
    match &source {
        KeySource::Created(path) => tracing::warn!(
            path = %path.display(), key_id = %current.id(),
            "created a new secret key for channel secrets and mailbox passwords: back it up, and give every node \
             the same key (SWITCHBOARD_SECRET_KEY)"
        ),
        KeySource::File(path) => tracing::debug!(path = %path.display(), key_id = %current.id(), "secret key read"),
        KeySource::Setting => tracing::debug!(key_id = %current.id(), "secret key from the settings"),
    }
    store.install_secrets(SecretBox::new(current, settings.secret_key_previous.clone()));
    let prepared = store::sealing::prepare(store).await?;
    if let Some(old) = prepared.rotated_from {
        tracing::info!(from = %old, sealed = prepared.sealed, "secrets sealed again under the new key; the previous key \
                       may now be removed from SWITCHBOARD_SECRET_KEY_PREVIOUS");
    } else if prepared.sealed > 0 {
        tracing::info!(sealed = prepared.sealed, "sealed secrets stored in plaintext by an older version");
    }
    Ok(())
}

pub async fn start(settings: Settings, options: StartOptions) -> anyhow::Result<RunningServer> {
    let shutdown = Shutdown::new();
    let settings = Arc::new(settings);
    let store = open_store(&settings).await?;
    let realtime = match Realtime::start(store.clone(), settings.redis_url.as_deref(), &shutdown).await {
        Ok(rt) => rt,
        Err(e) => {
            let _ = shutdown.stop(tokio::time::Instant::now() + RESERVE).await;
            return Err(e);
        }
    };
    let changes = match Changes::start(store.clone(), realtime.bus.clone(), &shutdown) {
        Ok(changes) => changes,
        Err(e) => {
            let _ = shutdown.stop(tokio::time::Instant::now() + RESERVE).await;
            return Err(e);
        }
    };
    let blobs = Blobs::new(&settings.data_dir);
    let outbound = crate::outbound::Policy::new(settings.allowed_internal.clone());
    let mailboxes = Mailboxes::new(realtime.clone(), changes.clone(), blobs.clone(), outbound.clone());
    let bots =
        crate::channels::mattermost::connector::Bots::new(&realtime, changes.clone(), blobs.clone(), outbound.clone());
    let zalo = crate::channels::zalo::connector::Zalo::new(
        &realtime,
        crate::channels::zalo::processor::Ctx {
            store: store.clone(),
            changes: changes.clone(),
            blobs: blobs.clone(),
            http: crate::outbound::http_client::HttpClient::new(outbound.clone()),
            max_file: settings.max_upload_bytes,
        },
        &shutdown,
    );
    let node = Node { settings, store, realtime, changes, mailboxes, bots, zalo, shutdown, blobs, outbound };
    match serve(&node, options).await {
        Ok(running) => Ok(running),
        Err(e) => {
            // Whatever started before the failure stops with it.
            let deadline = tokio::time::Instant::now() + RESERVE;
            node.mailboxes.stop_all().await;
            node.bots.stop_all().await;
            node.zalo.stop_all().await;
            let _ = node.shutdown.stop(deadline).await;
            let _ = node.changes.stop(deadline).await;
            Err(e)
        }
    }
}

/// What [`serve`] starts the rest from.
struct Node {
    settings: Arc<Settings>,
    store: Store,
    realtime: Realtime,
    changes: Changes,
    mailboxes: Mailboxes,
    bots: crate::channels::mattermost::connector::Bots,
    zalo: crate::channels::zalo::connector::Zalo,
    shutdown: Shutdown,
    blobs: Blobs,
    outbound: crate::outbound::Policy,
}

/// Start the dispatcher, the mailbox connectors and the HTTP listeners. Nothing listens before
/// the last fallible step.
async fn serve(node: &Node, options: StartOptions) -> anyhow::Result<RunningServer> {
    let Node { settings, store, realtime, changes, mailboxes, bots, zalo, shutdown, blobs, outbound } = node;
    // Links in notification mail (issue #18).
    store.install_public_url(&settings.public_url);
    let links = crate::portal::links::Links::of_store(store, &settings.public_url)?;
    crate::channels::dispatcher::start(
        changes.clone(),
        blobs.clone(),
        links.clone(),
        settings.public_url.clone(),
        settings.outbox_backoff_scale,
        outbound.clone(),
        shutdown,
    );
    let readers = mailboxes.start_all().await?;
    if readers > 0 {
        tracing::info!(mailboxes = readers, "mailbox connectors started");
    }
    let bot_count = bots.start_all().await?;
    if bot_count > 0 {
        tracing::info!(bots = bot_count, "Mattermost bot connectors started");
    }
    let oas = zalo.start_all().await?;
    if oas > 0 {
        tracing::info!(oas, "Zalo OA jobs started");
    }
    let any_admin = store::agents::any_admin(store).await?;
    let state = web::Data::new(AppState {
        store: store.clone(),
        settings: settings.clone(),
        blobs: blobs.clone(),
        metrics: Metrics::global(),
        realtime: realtime.clone(),
        changes: changes.clone(),
        mailboxes: mailboxes.clone(),
        bots: bots.clone(),
        zalo: zalo.clone(),
        tokens: crate::store::cache::Cache::new(crate::http::session::TOKEN_TTL),
        routes: crate::store::cache::Cache::new(crate::http::handlers::custom_channels::ROUTE_TTL),
        login_throttle: {
            let throttle = Arc::new(crate::auth::throttle::LoginThrottle::new(settings.login_limits));
            throttle.sweep_in_background(shutdown);
            throttle
        },
        portal_throttle: {
            let throttle = Arc::new(crate::auth::throttle::LoginThrottle::new(settings.login_limits));
            throttle.sweep_in_background(shutdown);
            throttle
        },
        links: links.clone(),
    });
    let listener = std::net::TcpListener::bind(settings.bind)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
    let addr = listener.local_addr()?;
    let (max_body, max_upload) = (settings.max_body_bytes, settings.max_upload_bytes);
    let grace = settings.shutdown_grace;
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .wrap(from_fn(crate::http::reject_nul))
            .wrap(from_fn(track_requests))
            .wrap(Compress::default())
            .wrap(TracingLogger::default())
            .configure(|cfg| routes::configure(cfg, max_body, max_upload))
    })
    .workers(settings.workers)
    .shutdown_timeout(grace.as_secs())
    // Signals are handled by `RunningServer::wait`, which stops everything, not only HTTP.
    .disable_signals()
    .listen(listener)?;
    let metrics = match settings.metrics_bind {
        Some(bind) => Some(start_metrics_listener(bind, state, grace)?),
        None => None,
    };
    // Nothing fails from here on.
    let server = server.run();
    let handle = server.handle();
    let task = tokio::spawn(server);

    let public = if settings.public_url.ends_with(&addr.port().to_string()) || settings.bind.port() != 0 {
        settings.public_url.clone()
    } else {
        format!("http://{addr}")
    };
    tracing::info!(%addr, backend = store.backend_name(), "Switchboard is listening");
    if !any_admin {
        // Printed (not only logged) so a first-time user sees it whatever the log settings.
        eprintln!(
            "\nSwitchboard is running at {public}\n\
             No admin exists yet. Create the first one (same DATABASE_URL / SWITCHBOARD_DATA_DIR as the server):\n\n    \
             {cmd}\n\n\
             (from a source checkout: cargo run --release -- admin create --email … --password …)\n\
             then sign in at {public}/ with that email and password.\n",
            cmd = crate::FIRST_ADMIN_COMMAND,
        );
    } else {
        eprintln!("Switchboard is running at {public}");
    }
    let metrics_addr = metrics.as_ref().map(|(addr, ..)| *addr);
    let metrics = metrics.map(|(_, handle, task)| (handle, task));
    Ok(RunningServer {
        addr,
        metrics_addr,
        store: store.clone(),
        realtime: realtime.clone(),
        changes: changes.clone(),
        mailboxes: mailboxes.clone(),
        bots: bots.clone(),
        zalo: zalo.clone(),
        shutdown: shutdown.clone(),
        grace,
        handle_signals: options.handle_signals,
        handle,
        task,
        metrics,
    })
}

/// The `metrics_bind` listener: `/metrics` only (with the token check, if one is set), one worker.
fn start_metrics_listener(
    bind: SocketAddr,
    state: web::Data<AppState>,
    grace: Duration,
) -> anyhow::Result<(SocketAddr, ServerHandle, tokio::task::JoinHandle<std::io::Result<()>>)> {
    use crate::http::handlers::ops;
    let listener = std::net::TcpListener::bind(bind)
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind} (metrics_bind): {e}"))?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(ops::MetricsListener)
            .route("/metrics", web::get().to(ops::metrics))
            .default_service(web::to(ops::api_not_found))
    })
    .workers(1)
    .shutdown_timeout(grace.as_secs())
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    tracing::info!(%addr, "metrics listening");
    Ok((addr, handle, tokio::spawn(server)))
}
