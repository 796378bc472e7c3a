//! This node's side of every Zalo OA (issue #16): the webhook [`Intake`] (any node stores and answers) and the
//! OAs' jobs (`processor::run`: events and token refresh), one per enabled OA on the node holding its lease
//! (`cluster::supervisor`, job `zalo:{id}`). Storing an event wakes the OA's job, here or, through the
//! supervisor's "check now" over the bus, on the node that runs it.

use std::sync::Arc;

use tokio::sync::Notify;

use super::Settings;
use super::intake::Intake;
use super::processor::{self, Ctx};
use crate::cluster::lease::Job;
use crate::cluster::supervisor::{Connector, Starter, Supervisor};
use crate::domain::ChannelKind;
use crate::realtime::Realtime;
use crate::shutdown::Shutdown;
use crate::store::models::ChannelInstance;
use crate::store::{self, StoreResult};

/// Starts one OA's job.
pub struct Jobs {
    ctx: Ctx,
}

impl Starter for Jobs {
    fn job(&self, channel_id: i64) -> Job {
        Job::Zalo(channel_id)
    }

    fn runnable(&self, channel: &ChannelInstance) -> bool {
        Settings::of(&channel.settings).is_some()
    }

    /// The settings as stored (opened): keys and URLs. The tokens are not in it — a refresh restarts nothing.
    fn fingerprint(&self, channel: &ChannelInstance) -> String {
        channel.settings.clone()
    }

    fn start(&self, channel: &ChannelInstance, wake: Arc<Notify>) -> Option<Connector> {
        let settings = Settings::of(&channel.settings)?;
        Some(Box::pin(processor::run(self.ctx.clone(), channel.id, settings, wake)))
    }
}

/// Handle on this node's Zalo side (cheap to clone).
#[derive(Clone)]
pub struct Zalo {
    pub intake: Intake,
    jobs: Supervisor<Jobs>,
    store: store::Store,
}

impl Zalo {
    /// Call from inside the runtime the jobs should run on.
    pub fn new(rt: &Realtime, ctx: Ctx, shutdown: &Shutdown) -> Self {
        let intake = Intake::start(rt.store.clone(), shutdown);
        let jobs = Supervisor::new("Zalo OAs", rt, ChannelKind::Zalo, Jobs { ctx });
        let waker = jobs.clone();
        intake.on_stored(move |channel_id| {
            waker.check_now(channel_id);
        });
        Self { intake, jobs, store: rt.store.clone() }
    }

    /// Start the jobs this node should run, then keep them reconciled. Returns how many run.
    pub async fn start_all(&self) -> StoreResult<usize> {
        self.jobs.start_all().await
    }

    /// Stop every job here; nothing starts again (the node is stopping).
    pub async fn stop_all(&self) {
        self.jobs.stop_all().await;
    }

    /// Hand this node's leases back (after [`Self::stop_all`]).
    pub async fn release_leases(&self) {
        self.jobs.release_leases().await;
    }

    /// Whether this node runs the OA's job.
    pub fn is_running(&self, channel_id: i64) -> bool {
        self.jobs.is_running(channel_id)
    }

    /// The node running the OA's job while its lease lasts.
    pub async fn holder_of(&self, channel_id: i64) -> StoreResult<Option<String>> {
        self.jobs.holder_of(channel_id).await
    }

    /// A channel's row changed here: reconcile now, so the answer already shows the change on this node.
    pub async fn changed(&self) {
        if let Err(e) = self.jobs.reconcile().await {
            tracing::warn!(error = %e, "cannot reconcile the Zalo jobs");
        }
    }

    /// This node's id (as in the leases).
    pub fn node_id(&self) -> &str {
        self.jobs.node_id()
    }

    /// How many of the OA's events wait to be processed (the dashboard shows it).
    pub async fn pending(&self, channel_id: i64) -> StoreResult<i64> {
        store::zalo::pending_count(&self.store, channel_id).await
    }
}
