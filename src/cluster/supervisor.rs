//! The lease-driven connector supervisor (issue #14): the one owner of "run one task per enabled channel instance
//! of a kind, on one node of the deployment at a time". The mailbox connectors (`channels::email::mailbox`) and the
//! Mattermost bots (`channels::mattermost::connector`) are each a [`Supervisor`] with their own [`Starter`].
//!
//! Each node's supervisor *reconciles* from the database: the connectors that should run here are those of the
//! enabled instances of its [`ChannelKind`] that the [`Starter`] can run and whose lease ([`super::lease`], the
//! starter's [`Job`]) this node holds, each started from the row stored now. A reconcile starts what is missing,
//! restarts what runs from another [`Starter::fingerprint`] (or has ended), and stops the rest. It runs:
//!
//! - once in [`Supervisor::start_all`], so a single node runs its connectors at once;
//! - when a channel change arrives on the bus ([`crate::bus::ChannelChange`]; lagging behind counts as one);
//! - every [`RECONCILE_EVERY`] regardless, which also renews the leases and heals a dropped announcement;
//! - when a request handler asks ([`Supervisor::reconcile`]), so its answer already shows the change here.
//!
//! When the rows cannot be read, what runs keeps running while its lease lasts (the leases are still renewed).
//! With the in-process bus this node is the whole deployment: its leases are [`Leases::solo`]. A "check now"
//! ([`Supervisor::check_now`]) wakes the connector here when this node runs it, else asks every node over the bus;
//! the node running it wakes it. [`Supervisor::stop_all`] stops the supervisor and every connector for good (nothing
//! restarts afterwards); [`Supervisor::release_leases`] then hands the leases back so other nodes take over at once.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use super::lease::{Job, Leases, Timing};
use crate::bus::{Bus, BusEvent, ChannelChange, ChannelChangeKind};
use crate::domain::{ChannelKind, ChannelScope};
use crate::realtime::Realtime;
use crate::store::{self, Store, models::ChannelInstance};

/// How often a node reconciles its connectors with the database without being told (and renews its leases).
pub const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// One connector's task, before it is spawned.
pub type Connector = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What a [`Supervisor`] runs: one connector per channel instance of its kind.
pub trait Starter: Send + Sync + 'static {
    /// The job (lease) of this instance's connector, e.g. [`Job::Mailbox`].
    fn job(&self, channel_id: i64) -> Job;
    /// Whether this enabled instance can run at all (its settings read, its token present, ...).
    fn runnable(&self, channel: &ChannelInstance) -> bool;
    /// What the connector is started from: when it changes, the connector restarts.
    fn fingerprint(&self, channel: &ChannelInstance) -> String;
    /// The connector of `channel` (enabled, runnable, its lease held); `wake` is notified on "check now". `None`
    /// when it cannot start (say why in a log line); the next reconcile tries again.
    fn start(&self, channel: &ChannelInstance, wake: Arc<Notify>) -> Option<Connector>;
}

/// Handle on one kind's connectors on this node (cheap to clone).
pub struct Supervisor<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Supervisor<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

struct Inner<S> {
    /// For logs: "mailboxes", "Mattermost bots".
    name: &'static str,
    kind: ChannelKind,
    starter: S,
    store: Store,
    bus: Arc<dyn Bus>,
    /// Where connectors run: the runtime that made this handle (the server's multi-threaded one), also when one is
    /// (re)started from a request handler, whose worker must not carry it.
    runtime: tokio::runtime::Handle,
    /// The channel changes from the bus, subscribed at creation (so none is missed before the start) and handed to
    /// the supervisor task by the first [`Supervisor::start_all`].
    changes: Mutex<Option<broadcast::Receiver<ChannelChange>>>,
    running: Mutex<HashMap<i64, Running>>,
    /// Which instances this node may run.
    leases: Leases,
    /// One reconcile at a time (the supervisor task's and a request handler's).
    reconciling: tokio::sync::Mutex<()>,
    /// The supervisor task, once started.
    task: Mutex<Option<JoinHandle<()>>>,
    /// Set by [`Supervisor::stop_all`]: nothing starts again.
    stopped: AtomicBool,
}

struct Running {
    /// What it was started from ([`Starter::fingerprint`]): a change restarts it.
    fingerprint: String,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl<S: Starter> Supervisor<S> {
    /// Call from inside the runtime connectors should run on.
    pub fn new(name: &'static str, rt: &Realtime, kind: ChannelKind, starter: S) -> Self {
        // With the in-process bus this node is the whole deployment.
        let leases = if rt.bus.kind() == "local" {
            Leases::solo(rt.store.clone(), rt.node_id.clone(), Timing::DEFAULT)
        } else {
            Leases::new(rt.store.clone(), rt.node_id.clone(), Timing::DEFAULT)
        };
        Self {
            inner: Arc::new(Inner {
                name,
                kind,
                starter,
                store: rt.store.clone(),
                bus: rt.bus.clone(),
                runtime: tokio::runtime::Handle::current(),
                changes: Mutex::new(Some(rt.hub.channel_changes())),
                running: Mutex::new(HashMap::new()),
                leases,
                reconciling: tokio::sync::Mutex::new(()),
                task: Mutex::new(None),
                stopped: AtomicBool::new(false),
            }),
        }
    }

    /// What starts the connectors.
    pub fn starter(&self) -> &S {
        &self.inner.starter
    }

    /// Start the connectors this node should run (one reconcile), then the supervisor task that keeps them
    /// reconciled (once: a second call only reconciles). Returns how many connectors run.
    pub async fn start_all(&self) -> store::StoreResult<usize> {
        self.reconcile().await?;
        let changes = self.inner.changes.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(changes) = changes {
            let task = self.inner.runtime.spawn(supervise(Arc::downgrade(&self.inner), changes));
            if let Some(old) = self.lock_task().replace(task) {
                old.abort();
            }
        }
        Ok(self.lock().len())
    }

    /// Make the connectors of this node those of the enabled instances whose lease it holds, as stored now (see
    /// the module docs).
    pub async fn reconcile(&self) -> store::StoreResult<()> {
        let inner = &self.inner;
        let _one = inner.reconciling.lock().await;
        if inner.stopped.load(Ordering::Acquire) {
            return Ok(());
        }
        let channels = match store::channels::list(&inner.store, &ChannelScope::All, Some(inner.kind)).await {
            Ok(c) => c,
            Err(e) => {
                // Without the rows, keep what runs while its lease lasts.
                let jobs: Vec<Job> = self.lock().keys().map(|id| inner.starter.job(*id)).collect();
                let held = inner.leases.hold(&jobs).await;
                self.lock().retain(|id, r| {
                    let keep = held.contains(&inner.starter.job(*id));
                    if !keep {
                        r.task.abort();
                    }
                    keep
                });
                return Err(e);
            }
        };
        let wanted: Vec<&ChannelInstance> =
            channels.iter().filter(|c| c.enabled && c.kind == inner.kind && inner.starter.runnable(c)).collect();
        let jobs: Vec<Job> = wanted.iter().map(|c| inner.starter.job(c.id)).collect();
        let held = inner.leases.hold(&jobs).await;
        let desired: HashMap<i64, &ChannelInstance> =
            wanted.into_iter().filter(|c| held.contains(&inner.starter.job(c.id))).map(|c| (c.id, c)).collect();
        let mut running = self.lock();
        running.retain(|id, r| {
            let keep =
                !r.task.is_finished() && desired.get(id).is_some_and(|c| inner.starter.fingerprint(c) == r.fingerprint);
            if !keep {
                r.task.abort();
            }
            keep
        });
        for (id, channel) in desired {
            if running.contains_key(&id) {
                continue;
            }
            let wake = Arc::new(Notify::new());
            if let Some(connector) = inner.starter.start(channel, wake.clone()) {
                let task = inner.runtime.spawn(connector);
                running.insert(id, Running { fingerprint: inner.starter.fingerprint(channel), wake, task });
            }
        }
        Ok(())
    }

    /// Stop the supervisor task and every connector and wait until each has ended (the server is stopping);
    /// nothing starts again. Call [`Self::release_leases`] afterwards so the other nodes take over at once.
    pub async fn stop_all(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        let mut tasks: Vec<JoinHandle<()>> = self.lock_task().take().into_iter().collect();
        tasks.extend(self.lock().drain().map(|(_, r)| r.task));
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Hand this node's leases of this kind back (after [`Self::stop_all`], on a clean stop).
    pub async fn release_leases(&self) {
        self.inner.leases.release_all().await;
    }

    /// Wake the instance's connector now: here when this node runs it, else by asking every node over the bus (the
    /// one running it wakes it). True when it was woken here.
    pub fn check_now(&self, channel_id: i64) -> bool {
        if self.wake(channel_id) {
            return true;
        }
        self.inner.bus.publish(BusEvent::Channel(ChannelChange { channel_id, what: ChannelChangeKind::CheckNow }));
        false
    }

    /// Wake this node's connector of the instance, if it runs one.
    fn wake(&self, channel_id: i64) -> bool {
        match self.lock().get(&channel_id) {
            Some(r) if !r.task.is_finished() => {
                r.wake.notify_one();
                true
            }
            _ => false,
        }
    }

    /// Whether a connector runs for this instance on this node.
    pub fn is_running(&self, channel_id: i64) -> bool {
        self.lock().get(&channel_id).is_some_and(|r| !r.task.is_finished())
    }

    /// This node's id, as written in the leases it holds.
    pub fn node_id(&self) -> &str {
        self.inner.leases.me()
    }

    /// The node that holds the instance's lease (and so runs its connector while it is enabled), if its lease
    /// lasts.
    pub async fn holder_of(&self, channel_id: i64) -> store::StoreResult<Option<String>> {
        let name = self.inner.starter.job(channel_id).lease_name();
        let leases = store::leases::of(&self.inner.store, &[name]).await?;
        let now = store::now();
        Ok(leases.into_iter().find(|l| l.expires_at > now).map(|l| l.holder))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Running>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_task(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        self.inner.task.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<S> Drop for Inner<S> {
    fn drop(&mut self) {
        if let Some(s) = self.task.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            s.abort();
        }
        for r in self.running.get_mut().unwrap_or_else(|p| p.into_inner()).values() {
            r.task.abort();
        }
    }
}

/// The supervisor task: reconcile on every channel change from the bus and every [`RECONCILE_EVERY`]; wake a
/// connector on "check now". Holds the handle weakly, so dropping every [`Supervisor`] ends it.
async fn supervise<S: Starter>(inner: Weak<Inner<S>>, mut changes: broadcast::Receiver<ChannelChange>) {
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let check = tokio::select! {
            _ = tick.tick() => None,
            change = changes.recv() => match change {
                Ok(ChannelChange { channel_id, what: ChannelChangeKind::CheckNow }) => Some(channel_id),
                // A change, or changes missed: reconcile from the database either way.
                Ok(ChannelChange { what: ChannelChangeKind::Changed, .. }) | Err(broadcast::error::RecvError::Lagged(_)) => None,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        let Some(inner) = inner.upgrade() else { return };
        let supervisor = Supervisor { inner };
        match check {
            Some(channel_id) => {
                supervisor.wake(channel_id);
            }
            None => {
                if let Err(e) = supervisor.reconcile().await {
                    tracing::warn!(supervisor = supervisor.inner.name, error = %e, "cannot reconcile connectors");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::domain::Mode;
    use crate::secrets::{SecretBox, SecretKey};
    use crate::shutdown::Shutdown;
    use crate::store::DatabaseUrl;
    use crate::store::audit::Actor;
    use crate::store::channels::{ChannelPatch, CreateChannel};

    /// Starts a connector that counts its wakes; counts its starts.
    #[derive(Default)]
    struct Counting {
        starts: Arc<AtomicUsize>,
        wakes: Arc<AtomicUsize>,
    }

    impl Starter for Counting {
        fn job(&self, channel_id: i64) -> Job {
            Job::Mailbox(channel_id)
        }

        fn runnable(&self, channel: &ChannelInstance) -> bool {
            !channel.settings.contains("unrunnable")
        }

        fn fingerprint(&self, channel: &ChannelInstance) -> String {
            channel.settings.clone()
        }

        fn start(&self, _channel: &ChannelInstance, wake: Arc<Notify>) -> Option<Connector> {
            self.starts.fetch_add(1, Ordering::SeqCst);
            let wakes = self.wakes.clone();
            Some(Box::pin(async move {
                loop {
                    wake.notified().await;
                    wakes.fetch_add(1, Ordering::SeqCst);
                }
            }))
        }
    }

    /// A single node on SQLite with the in-process bus.
    async fn node(dir: &tempfile::TempDir) -> Realtime {
        let url = DatabaseUrl::Sqlite(dir.path().join("sup.db").display().to_string());
        let store = Store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        store.install_secrets(SecretBox::new(SecretKey::generate(), vec![]));
        Realtime::start(store, None, &Shutdown::new()).await.unwrap()
    }

    async fn channel(rt: &Realtime, settings: &str, enabled: bool) -> i64 {
        let input = CreateChannel {
            kind: ChannelKind::Custom,
            name: "c".into(),
            mode: Mode::Sync,
            settings: settings.into(),
            secret: None,
            enabled,
            inactivity_timeout_s: 3600,
            default_team_id: None,
        };
        store::channels::create(&rt.store, input, Actor::System).await.unwrap().id
    }

    async fn patch(rt: &Realtime, id: i64, patch: ChannelPatch) {
        store::channels::update(&rt.store, id, patch, Actor::System).await.unwrap();
    }

    /// Wait (bounded) until `done` holds.
    async fn eventually(what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn runs_the_enabled_runnable_instances_of_its_kind_and_holds_their_leases() {
        let dir = tempfile::tempdir().unwrap();
        let rt = node(&dir).await;
        let on = channel(&rt, r#"{"a":1}"#, true).await;
        let off = channel(&rt, r#"{"a":1}"#, false).await;
        let unrunnable = channel(&rt, r#"{"unrunnable":1}"#, true).await;
        let counting = Counting::default();
        let starts = counting.starts.clone();
        let sup = Supervisor::new("test", &rt, ChannelKind::Custom, counting);
        assert_eq!(sup.start_all().await.unwrap(), 1);
        assert!(sup.is_running(on));
        assert!(!sup.is_running(off) && !sup.is_running(unrunnable));
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert_eq!(sup.holder_of(on).await.unwrap().as_deref(), Some(sup.node_id()));
        assert_eq!(sup.holder_of(off).await.unwrap(), None);
        // Another kind's supervisor runs none of them.
        let other = Supervisor::new("other", &rt, ChannelKind::Email, Counting::default());
        assert_eq!(other.start_all().await.unwrap(), 0);
        other.stop_all().await;
        sup.stop_all().await;
    }

    #[tokio::test]
    async fn a_new_fingerprint_restarts_and_a_disabled_instance_stops() {
        let dir = tempfile::tempdir().unwrap();
        let rt = node(&dir).await;
        let id = channel(&rt, r#"{"a":1}"#, true).await;
        let counting = Counting::default();
        let starts = counting.starts.clone();
        let sup = Supervisor::new("test", &rt, ChannelKind::Custom, counting);
        sup.start_all().await.unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 1);

        // What the fingerprint does not cover leaves it running as it is.
        patch(&rt, id, ChannelPatch { name: Some("renamed".into()), ..Default::default() }).await;
        sup.reconcile().await.unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 1);

        patch(&rt, id, ChannelPatch { settings: Some(r#"{"a":2}"#.into()), ..Default::default() }).await;
        sup.reconcile().await.unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 2, "restarted");
        assert!(sup.is_running(id));

        patch(&rt, id, ChannelPatch { enabled: Some(false), ..Default::default() }).await;
        sup.reconcile().await.unwrap();
        assert!(!sup.is_running(id));
        assert_eq!(sup.holder_of(id).await.unwrap(), None, "its lease is let go");
        sup.stop_all().await;
    }

    #[tokio::test]
    async fn the_supervisor_task_acts_on_channel_changes_and_check_now() {
        let dir = tempfile::tempdir().unwrap();
        let rt = node(&dir).await;
        let counting = Counting::default();
        let wakes = counting.wakes.clone();
        let sup = Supervisor::new("test", &rt, ChannelKind::Custom, counting);
        assert_eq!(sup.start_all().await.unwrap(), 0);
        let id = channel(&rt, "{}", true).await;
        rt.bus.publish(BusEvent::Channel(ChannelChange { channel_id: id, what: ChannelChangeKind::Changed }));
        eventually("the new instance runs", || sup.is_running(id)).await;
        assert!(sup.check_now(id), "woken here");
        eventually("the connector was woken", || wakes.load(Ordering::SeqCst) == 1).await;
        // Over the bus (as from another node): the supervisor task wakes it.
        rt.bus.publish(BusEvent::Channel(ChannelChange { channel_id: id, what: ChannelChangeKind::CheckNow }));
        eventually("the connector was woken again", || wakes.load(Ordering::SeqCst) == 2).await;
        sup.stop_all().await;
    }

    #[tokio::test]
    async fn after_stop_all_nothing_restarts_and_the_leases_go_back() {
        let dir = tempfile::tempdir().unwrap();
        let rt = node(&dir).await;
        let id = channel(&rt, "{}", true).await;
        let counting = Counting::default();
        let starts = counting.starts.clone();
        let sup = Supervisor::new("test", &rt, ChannelKind::Custom, counting);
        sup.start_all().await.unwrap();
        assert!(sup.is_running(id));
        sup.stop_all().await;
        assert!(!sup.is_running(id));
        sup.reconcile().await.unwrap();
        assert_eq!(sup.start_all().await.unwrap(), 0);
        assert!(!sup.is_running(id));
        assert_eq!(starts.load(Ordering::SeqCst), 1, "nothing started again");
        assert_eq!(sup.holder_of(id).await.unwrap().as_deref(), Some(sup.node_id()), "held until released");
        sup.release_leases().await;
        assert_eq!(sup.holder_of(id).await.unwrap(), None);
    }
}
