//! The node's one shutdown owner (#14 item 8): nothing detached outlives a stop.
//!
//! Every background loop of a node — the hub, the Redis bus reader and publisher, the outbox
//! dispatcher and its delivery attempts, the inactivity sweeper, the login throttle's sweep — is
//! started through [`Shutdown::spawn`]: it runs until it ends by itself or the node stops, and it is
//! counted until then. [`Shutdown::stop`] cancels them all and waits for them with what is left
//! of the grace period. A task stopped this way is dropped at its next await point; whatever it
//! was writing either committed (store operations finish on the store's runtime, `Store::run`)
//! or never started, and an outbox claim it held lapses and the delivery is retried.
//!
//! Before that, [`Shutdown::close_connections`] tells long-lived connections (agent sockets) to
//! close, so they do not hold the HTTP drain until its deadline.
//!
//! The stop order of a whole node is `server::RunningServer::stop` (ARCHITECTURE.md, "Stopping").

use std::future::Future;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Cancellation plus the set of running background tasks (cheap to clone; clones share both).
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Long-lived connections close ([`Self::close_connections`]).
    closing: CancellationToken,
    /// Background tasks end ([`Self::stop`]).
    token: CancellationToken,
    tracker: TaskTracker,
}

/// What [`Shutdown::stop`] could not do in time.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("{running} background task(s) still running when the grace period ran out")]
    TasksOverran { running: usize },
    #[error("{threads} actor thread(s) still running when the grace period ran out")]
    ThreadsOverran { threads: usize },
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Run `task` on the current runtime until it ends or the node stops.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_on(&Handle::current(), task)
    }

    /// [`Self::spawn`] on a given runtime.
    pub fn spawn_on<F>(&self, runtime: &Handle, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let token = self.token.clone();
        self.tracker.spawn_on(
            async move {
                tokio::select! {
                    biased;
                    _ = token.cancelled() => {}
                    _ = task => {}
                }
            },
            runtime,
        )
    }

    /// The node stopped accepting connections: long-lived ones (agent sockets) should close now.
    pub fn close_connections(&self) {
        self.closing.cancel();
    }

    /// Resolves once [`Self::close_connections`] or [`Self::stop`] was called.
    pub async fn connections_closing(&self) {
        tokio::select! {
            _ = self.closing.cancelled() => {}
            _ = self.token.cancelled() => {}
        }
    }

    /// Whether the node is stopping (no new work should start).
    pub fn is_stopping(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once the node is stopping.
    pub async fn stopping(&self) {
        self.token.cancelled().await
    }

    /// How many background tasks are still running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Cancel every task and wait until they have all ended, or until `deadline`.
    pub async fn stop(&self, deadline: Instant) -> Result<(), StopError> {
        self.token.cancel();
        self.tracker.close();
        match tokio::time::timeout_at(deadline, self.tracker.wait()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(StopError::TasksOverran { running: self.tracker.len() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn stop_cancels_loops_and_waits_for_them() {
        let shutdown = Shutdown::new();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        shutdown.spawn(async move {
            let _keep = tx; // dropped when the loop is cancelled
            std::future::pending::<()>().await
        });
        shutdown.spawn(async {});
        assert!(!shutdown.is_stopping());
        shutdown.stop(Instant::now() + Duration::from_secs(5)).await.expect("stops in time");
        assert_eq!(shutdown.running(), 0);
        assert!(rx.recv().await.is_none(), "the loop's state was dropped");
        // A task started after the stop does not run.
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        shutdown
            .spawn(async move {
                tokio::task::yield_now().await;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            })
            .await
            .unwrap();
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_stuck_past_the_deadline_is_reported() {
        let shutdown = Shutdown::new();
        let (started, is_started) = tokio::sync::oneshot::channel();
        shutdown.spawn(async move {
            let _ = started.send(());
            // Stuck inside one poll: no await point where cancellation could stop it.
            std::thread::sleep(Duration::from_millis(500));
        });
        is_started.await.unwrap();
        let err = shutdown.stop(Instant::now() + Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(err, StopError::TasksOverran { running: 1 }), "{err}");
        shutdown.stop(Instant::now() + Duration::from_secs(5)).await.expect("it ends after all");
        assert_eq!(shutdown.running(), 0);
    }
}
