//! The real-time core (RT-1…RT-7, SC-1…SC-4): what turns a committed change into frames on
//! every agent socket that may see it, on every node.
//!
//! ```text
//! HTTP handler ─► ConversationActor (actors/) ─► ops: store (commit) ─► bus ─► hub (each node) ─► sessions ─► browsers
//! ```
//!
//! - [`ops`]: a change through the store, then its events on the bus (never before the commit).
//! - [`hub`]: per node; deduplicates, repairs from the event log, fans out, keeps markers.
//! - [`session`]: one agent socket; access filtering, resume cursor, markers.
//! - [`identity`]: what a socket does when who its agent is changes (issue #13).
//! - [`cursor`], [`markers`]: pure state, unit-tested.
//! - [`render`]: the JSON of events.

pub mod cursor;
pub mod hub;
pub mod identity;
pub mod markers;
pub mod ops;
pub mod render;
pub mod session;

use std::sync::Arc;

use actix::MailboxError;
use tokio::sync::mpsc;

use crate::actors::conversation::{Arm, ConversationActor, End, Inbound, Merge, Patch, Reply, mailbox};
use crate::actors::{self, Registry};
use crate::bus::local::LocalBus;
use crate::bus::redis::RedisBus;
use crate::bus::{Bus, BusEvent};
use crate::domain::ChannelScope;
use crate::store::audit::Actor as Who;
use crate::store::conversations::{ConversationPatch, CreatedConversation, EndReason};
use crate::store::messages::NewReply;
use crate::store::{Store, StoreResult};

use self::hub::Hub;

/// Events waiting for the hub before the bus starts dropping them (repair catches up).
const HUB_QUEUE: usize = 65_536;

/// Handle on the node's real-time machinery (cheap to clone).
#[derive(Clone)]
pub struct Realtime {
    pub store: Store,
    pub bus: Arc<dyn Bus>,
    pub hub: Hub,
    /// Distinguishes this node's sockets from other nodes' in marker ids.
    pub node_id: Arc<str>,
    registry: Arc<Registry>,
}

impl Realtime {
    /// Start the hub, the bus (Redis when `redis_url` is given, else in-process), the actor
    /// arbiters and the inactivity sweeper.
    pub async fn start(store: Store, redis_url: Option<&str>) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel::<BusEvent>(HUB_QUEUE);
        let bus: Arc<dyn Bus> = match redis_url {
            Some(url) => {
                let deployment = crate::store::events::deployment_id(&store).await?;
                Arc::new(
                    RedisBus::connect(url, deployment, tx).await.map_err(|e| anyhow::anyhow!("Redis at {url}: {e}"))?,
                )
            }
            None => Arc::new(LocalBus::new(tx)),
        };
        let hub = Hub::start(store.clone(), rx).await?;
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(2);
        let rt = Realtime {
            store,
            bus,
            hub,
            node_id: uuid::Uuid::new_v4().simple().to_string()[..8].into(),
            registry: Arc::new(Registry::new(threads)?),
        };
        actors::sweeper::start(rt.clone());
        tracing::info!(bus = rt.bus.kind(), node = %rt.node_id, "real-time core started");
        Ok(rt)
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Send a message to a conversation's actor (starting it if needed).
    pub async fn ask<M>(&self, conversation_id: i64, msg: M) -> Result<M::Result, MailboxError>
    where
        M: actix::Message + Send + Clone + 'static,
        M::Result: Send,
        ConversationActor: actix::Handler<M>,
    {
        actors::ask(self, &self.registry, conversation_id, msg).await
    }

    pub async fn reply(&self, reply: NewReply, scope: &ChannelScope, who: Who) -> StoreResult<ops::Replied> {
        let id = reply.conversation_id;
        self.ask(id, Reply(reply, scope.clone(), who)).await.map_err(mailbox)?
    }

    pub async fn update(
        &self,
        id: i64,
        patch: ConversationPatch,
        scope: &ChannelScope,
        who: Who,
    ) -> StoreResult<ops::Updated> {
        self.ask(id, Patch(patch, scope.clone(), who)).await.map_err(mailbox)?
    }

    pub async fn merge(&self, id: i64, into: i64, scope: &ChannelScope, who: Who) -> StoreResult<ops::Updated> {
        self.ask(id, Merge(into, scope.clone(), who)).await.map_err(mailbox)?
    }

    pub async fn end(
        &self,
        id: i64,
        status: Option<String>,
        reason: EndReason,
        scope: &ChannelScope,
        who: Who,
    ) -> StoreResult<Option<ops::Updated>> {
        self.ask(id, End(status, reason, scope.clone(), who)).await.map_err(mailbox)?
    }

    /// A customer's message from a channel (CC-8, CC-9). It goes through the actor of the
    /// conversation it is for: the named one, or for [`Target::Latest`] the one the caller
    /// believes is the customer's latest (`latest`: read by the caller, or remembered from their
    /// previous message). The store decides where it lands by the last-chat rule in its
    /// transaction, so a stale `latest` only means another actor serialised this one change.
    ///
    /// [`Target::Latest`]: crate::store::messages::Target::Latest
    pub async fn customer_message(
        &self,
        msg: crate::store::messages::CustomerMessage,
        latest: Option<i64>,
    ) -> StoreResult<ops::Inbound> {
        use crate::store::messages::Target;
        let via = match &msg.target {
            Target::Conversation { id, .. } => Some(*id),
            Target::Latest { .. } => latest,
        };
        match via {
            Some(id) => self.ask(id, Inbound(msg)).await.map_err(mailbox)?,
            None => {
                let out = ops::customer_message(self, msg).await?;
                if out.deadline.is_some() {
                    let _ = self.ask(out.conversation.id, Arm(out.deadline)).await;
                }
                Ok(out)
            }
        }
    }

    /// Publish a conversation created elsewhere (its first message came with it) and start
    /// watching its inactivity deadline.
    pub async fn created(&self, created: &CreatedConversation) -> StoreResult<ops::Created> {
        let mut out = ops::created(self, created).await?;
        let c = &created.conversation.conversation;
        if out.deadline.is_some() {
            let _ = self.ask(c.id, Arm(out.deadline)).await;
        }
        if c.assignee_id.is_none() && created.message.direction == "in" {
            match crate::channels::routing::assign(self, c.id, c.channel_instance_id, c.customer_id).await {
                Ok(Some(agent)) => out.conversation.assignee_id = Some(agent),
                Ok(None) => {}
                Err(e) => tracing::warn!(conversation_id = c.id, error = %e, "auto-assignment failed"),
            }
        }
        Ok(out)
    }

    /// Who an agent is changed (role, active flag, password, channel access, a session or token
    /// ended): their sockets on every node re-check their credentials (`identity`). Call after
    /// the commit; the hub's identity poll repairs a dropped announcement.
    pub fn access_changed(&self, agent_id: i64) {
        self.bus.publish(BusEvent::Access { agent_id });
    }

    /// A channel's row was committed (created, edited, enabled, disabled, deleted): every node drops its cached
    /// channel rows and its mailbox supervisor reconciles (issue #14). Call after the commit; each supervisor's
    /// periodic reconcile repairs a dropped announcement, and the channel cache's time-to-live bounds a stale row.
    pub fn channel_changed(&self, channel_id: i64) {
        use crate::bus::{ChannelChange, ChannelChangeKind};
        self.bus.publish(BusEvent::Channel(ChannelChange { channel_id, what: ChannelChangeKind::Changed }));
    }
}
