//! Building and starting the server from [`Settings`]: connect and migrate the store, print the
//! first-run hint, bind, and run actix-web until stopped. Used by `switchboard serve` and by the
//! integration tests, which start servers in-process on port 0.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::blobs::Blobs;
use crate::channels::email::mailbox::Mailboxes;
use crate::config::Settings;
use crate::http::{AppState, routes};
use crate::realtime::Realtime;
use crate::store::{self, Store};
use crate::telemetry::{Metrics, track_requests};

/// How long in-flight requests get to finish on SIGTERM.
const SHUTDOWN_GRACE_SECS: u64 = 10;

/// A server that is accepting connections.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when `metrics_bind` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub store: Store,
    pub realtime: Realtime,
    pub mailboxes: Mailboxes,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The `metrics_bind` listener, if any.
    metrics: Option<(ServerHandle, tokio::task::JoinHandle<std::io::Result<()>>)>,
}

impl RunningServer {
    /// Wait until the server stops (SIGTERM/SIGINT when signals are handled, or [`Self::stop`]).
    pub async fn wait(self) -> anyhow::Result<()> {
        let result = self.task.await;
        self.mailboxes.stop_all();
        self.mailboxes.release_leases().await;
        if let Some((handle, task)) = self.metrics {
            handle.stop(true).await;
            task.await??;
        }
        result??;
        Ok(())
    }

    /// Stop accepting, let in-flight requests finish, and wait.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.handle.stop(true).await;
        self.wait().await
    }
}

/// Options that differ between the real process and in-process test servers.
#[derive(Debug, Clone, Copy)]
pub struct StartOptions {
    /// Install SIGTERM/SIGINT handlers (graceful shutdown). Off for test servers.
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
    let settings = Arc::new(settings);
    let store = open_store(&settings).await?;
    let realtime = Realtime::start(store.clone(), settings.redis_url.as_deref()).await?;
    let blobs = Blobs::new(&settings.data_dir);
    let outbound = crate::outbound::Policy::new(settings.allowed_internal.clone());
    crate::channels::dispatcher::start(
        realtime.clone(),
        blobs.clone(),
        settings.public_url.clone(),
        settings.outbox_backoff_scale,
        outbound.clone(),
    );
    let mailboxes = Mailboxes::new(realtime.clone(), blobs.clone(), outbound);
    let readers = mailboxes.start_all().await?;
    if readers > 0 {
        tracing::info!(mailboxes = readers, "mailbox connectors started");
    }
    let state = web::Data::new(AppState {
        store: store.clone(),
        settings: settings.clone(),
        blobs,
        metrics: Metrics::global(),
        realtime: realtime.clone(),
        mailboxes: mailboxes.clone(),
        tokens: crate::store::cache::Cache::new(crate::http::session::TOKEN_TTL),
        routes: crate::store::cache::Cache::new(crate::http::handlers::custom_channels::ROUTE_TTL),
        login_throttle: {
            let throttle = Arc::new(crate::auth::throttle::LoginThrottle::new(settings.login_limits));
            throttle.sweep_in_background();
            throttle
        },
    });
    let listener = std::net::TcpListener::bind(settings.bind)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
    let addr = listener.local_addr()?;
    let (max_body, max_upload) = (settings.max_body_bytes, settings.max_upload_bytes);
    let metrics = match settings.metrics_bind {
        Some(bind) => Some(start_metrics_listener(bind, state.clone(), options)?),
        None => None,
    };
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(crate::http::reject_nul))
            .wrap(from_fn(track_requests))
            .wrap(Compress::default())
            .wrap(TracingLogger::default())
            .configure(|cfg| routes::configure(cfg, max_body, max_upload))
    })
    .workers(settings.workers)
    .shutdown_timeout(SHUTDOWN_GRACE_SECS)
    .listen(listener)?;
    if !options.handle_signals {
        server = server.disable_signals();
    }
    let server = server.run();
    let handle = server.handle();
    let task = tokio::spawn(server);

    let public = if settings.public_url.ends_with(&addr.port().to_string()) || settings.bind.port() != 0 {
        settings.public_url.clone()
    } else {
        format!("http://{addr}")
    };
    tracing::info!(%addr, backend = store.backend_name(), "Switchboard is listening");
    if !store::agents::any_admin(&store).await? {
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
    Ok(RunningServer { addr, metrics_addr, store, realtime, mailboxes, handle, task, metrics })
}

/// The `metrics_bind` listener: `/metrics` only (with the token check, if one is set), one worker.
fn start_metrics_listener(
    bind: SocketAddr,
    state: web::Data<AppState>,
    options: StartOptions,
) -> anyhow::Result<(SocketAddr, ServerHandle, tokio::task::JoinHandle<std::io::Result<()>>)> {
    use crate::http::handlers::ops;
    let listener = std::net::TcpListener::bind(bind)
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind} (metrics_bind): {e}"))?;
    let addr = listener.local_addr()?;
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(ops::MetricsListener)
            .route("/metrics", web::get().to(ops::metrics))
            .default_service(web::to(ops::api_not_found))
    })
    .workers(1)
    .shutdown_timeout(SHUTDOWN_GRACE_SECS)
    .listen(listener)?;
    if !options.handle_signals {
        server = server.disable_signals();
    }
    let server = server.run();
    let handle = server.handle();
    tracing::info!(%addr, "metrics listening");
    Ok((addr, handle, tokio::spawn(server)))
}
