//! The change layer: the only code that turns a decision into a committed change and then
//! publishes it (issue #14). Every producer comes through [`Changes`]: the REST handlers, custom
//! channel inbound, the mail importer, the inactivity sweeper; auto-assignment happens inside the
//! creation transaction (`store::routing`), so a new conversation is born assigned.
//!
//! ```text
//! producer ─► Changes ─► actor of the conversation (actors/, one change at a time)
//!                            └─► commit: store (one transaction + event rows + change-feed rows) ─► bus
//! ```
//!
//! - [`commit`]: each change as one step — commit, then publish what the commit recorded.
//! - [`actors`]: one actor per live conversation; changes to an existing conversation go through it.
//! - [`feed`]: the durable change feed's consumers (exactly once, cluster-wide, across restarts): the
//!   owner-offline mail and the agents' notifications, announced on the bus after their commit.
//!
//! `realtime` is the delivery side only (hub, sessions, markers) and knows nothing of this module.

pub mod actors;
pub mod commit;
pub mod feed;

use std::sync::Arc;

use actix::MailboxError;

use self::actors::conversation::{Arm, ConversationActor, End, Inbound, MailIn, Merge, Patch, Rate, Reply, mailbox};
use self::actors::{Registry, sweeper};
use self::commit::Core;
use crate::bus::{Bus, BusEvent};
use crate::domain::ChannelScope;
use crate::shutdown::{Shutdown, StopError};
use crate::store::audit::Actor as Who;
use crate::store::conversations::{ConversationPatch, CreatedConversation, EndReason, NewConversation};
use crate::store::email::{BatchImport, BatchMail, MailTarget, ToTicket};
use crate::store::messages::{CustomerMessage, NewReply, Target};
use crate::store::{Store, StoreResult};

pub use self::commit::{Created, Inbound as InboundOutcome, Replied, Updated};

/// Handle on the node's change machinery (cheap to clone).
#[derive(Clone)]
pub struct Changes {
    /// The store every change commits through (also what connectors read from).
    pub store: Store,
    core: Core,
    registry: Arc<Registry>,
}

impl Changes {
    /// Start the actor arbiters, the inactivity sweeper and the change-feed consumers. Their loops
    /// run under `shutdown`; the arbiter threads end with [`Self::stop`] (see
    /// `server::RunningServer::stop` for the order).
    pub fn start(store: Store, bus: Arc<dyn Bus>, shutdown: &Shutdown) -> anyhow::Result<Self> {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(2);
        let changes =
            Changes { store: store.clone(), core: Core { store, bus }, registry: Arc::new(Registry::new(threads)?) };
        sweeper::start(changes.core.clone(), changes.registry.clone(), shutdown);
        feed::start(changes.core.store.clone(), changes.core.bus.clone(), shutdown);
        Ok(changes)
    }

    /// End and join the actor arbiter threads (after the tracked tasks stopped).
    pub async fn stop(&self, deadline: tokio::time::Instant) -> Result<(), StopError> {
        self.registry.stop(deadline).await
    }

    /// Actor arbiter threads not yet ended (tests check none is left after a stop).
    pub fn actor_threads_running(&self) -> usize {
        self.registry.threads_running()
    }

    /// Send a message to a conversation's actor (starting it if needed).
    async fn ask<M>(&self, conversation_id: i64, msg: M) -> Result<M::Result, MailboxError>
    where
        M: actix::Message + Send + Clone + 'static,
        M::Result: Send,
        ConversationActor: actix::Handler<M>,
    {
        actors::ask(&self.core, &self.registry, conversation_id, msg).await
    }

    /// Follow a conversation's stored inactivity deadline (after its creation).
    async fn arm(&self, conversation_id: i64, deadline: Option<chrono::NaiveDateTime>) {
        if deadline.is_some() {
            let _ = self.ask(conversation_id, Arm(deadline)).await;
        }
    }

    /// A new conversation with its first message, routed and assigned in one transaction.
    pub async fn create(&self, input: NewConversation, scope: &ChannelScope, who: Who) -> StoreResult<Created> {
        let out = commit::create(&self.core, input, scope, who).await?;
        self.arm(out.conversation.id, out.deadline).await;
        Ok(out)
    }

    /// Store a batch of mail in order (the mail importer, EM-1…EM-13): new tickets, logged and duplicate mail in the
    /// batch's transactions (`store::email::import_until_ticket`); a mail that threads into an existing ticket through
    /// that ticket's actor, like every change to an existing conversation, before the mails after it. Returns what was
    /// stored, in order (to publish with [`Self::created`] / [`Self::appended`]), and the error that stopped the batch
    /// early, if one did: that mail and the ones after it were not stored.
    pub async fn import_mail(&self, mails: Vec<BatchMail>) -> BatchImport {
        let mut stored = Vec::new();
        let mut mails = mails;
        loop {
            let step = crate::store::email::import_until_ticket(&self.store, mails).await;
            stored.extend(step.stored);
            let Some(ToTicket { mail, subject, rest }) = step.to_ticket else {
                return BatchImport { stored, failed: step.failed };
            };
            let MailTarget::Reply { conversation_id } = mail.target else {
                unreachable!("only a mail for an existing ticket stops a batch")
            };
            match self.ask(conversation_id, MailIn(Arc::new(mail), subject)).await.map_err(mailbox) {
                Ok(Ok(imported)) => stored.push(imported),
                Ok(Err(e)) | Err(e) => return BatchImport { stored, failed: Some(e) },
            }
            mails = rest;
        }
    }

    /// Publish a conversation a connector committed with its first message (mail import).
    pub async fn created(&self, created: &CreatedConversation) -> StoreResult<Created> {
        let out = commit::created(&self.core, created).await?;
        self.arm(out.conversation.id, out.deadline).await;
        Ok(out)
    }

    /// Publish a message the mail importer committed to an existing conversation (through its actor,
    /// [`Self::import_mail`]).
    pub async fn appended(
        &self,
        message: crate::store::models::Message,
        files: Vec<crate::store::models::Attachment>,
        row: crate::store::conversations::ConversationRow,
        events: &[crate::store::events::EventRow],
    ) -> StoreResult<Replied> {
        let id = row.conversation.id;
        let out = commit::appended(&self.core, message, files, row, events).await?;
        self.arm(id, out.deadline).await;
        Ok(out)
    }

    pub async fn reply(&self, reply: NewReply, scope: &ChannelScope, who: Who) -> StoreResult<Replied> {
        let id = reply.conversation_id;
        self.ask(id, Reply(reply, scope.clone(), who)).await.map_err(mailbox)?
    }

    pub async fn update(
        &self,
        id: i64,
        patch: ConversationPatch,
        scope: &ChannelScope,
        who: Who,
    ) -> StoreResult<Updated> {
        self.ask(id, Patch(patch, scope.clone(), who)).await.map_err(mailbox)?
    }

    /// A customer rates their ticket (HD-12, issue #18), through the conversation's actor like every change to it.
    pub async fn rate(&self, id: i64, customer_id: i64, rating: crate::domain::Rating) -> StoreResult<Updated> {
        self.ask(id, Rate(customer_id, rating)).await.map_err(mailbox)?
    }

    /// A ticket a customer opens in the portal (CU-2): created on the web channel (made on first use), routed and
    /// assigned in its transaction, published like every new conversation.
    pub async fn portal_ticket(&self, input: crate::store::portal::NewTicket) -> StoreResult<Created> {
        let out = commit::portal_ticket(&self.core, input).await?;
        self.arm(out.conversation.id, out.deadline).await;
        Ok(out)
    }

    pub async fn merge(&self, id: i64, into: i64, scope: &ChannelScope, who: Who) -> StoreResult<Updated> {
        self.ask(id, Merge(into, scope.clone(), who)).await.map_err(mailbox)?
    }

    pub async fn end(
        &self,
        id: i64,
        status: Option<String>,
        reason: EndReason,
        scope: &ChannelScope,
        who: Who,
    ) -> StoreResult<Option<Updated>> {
        self.ask(id, End(status, reason, scope.clone(), who)).await.map_err(mailbox)?
    }

    /// A customer's message from a channel (CC-8, CC-9). It goes through the actor of the
    /// conversation it is for: the named one, or for [`Target::Latest`] the one the caller
    /// believes is the customer's latest (`latest`: read by the caller, or remembered from their
    /// previous message). The store decides where it lands by the last-chat rule in its
    /// transaction, so a stale `latest` only means another actor serialised this one change.
    pub async fn customer_message(&self, msg: CustomerMessage, latest: Option<i64>) -> StoreResult<InboundOutcome> {
        let via = match &msg.target {
            Target::Conversation { id, .. } => Some(*id),
            Target::Latest { .. } | Target::Fresh { .. } => latest,
        };
        let out = match via {
            Some(id) => self.ask(id, Inbound(msg)).await.map_err(mailbox)??,
            None => commit::customer_message(&self.core, msg).await?,
        };
        // A conversation started for it is watched by its own actor.
        if via != Some(out.conversation.id) {
            self.arm(out.conversation.id, out.deadline).await;
        }
        Ok(out)
    }

    /// Publish the `message.updated` events a store change committed (a delivery's outcome recorded by the
    /// dispatcher, receipts recorded by a channel's processor).
    pub async fn message_updated(&self, events: &[crate::store::events::EventRow]) -> StoreResult<()> {
        commit::message_updated(&self.core, events).await
    }

    /// Raise an agent's read cursor on a conversation (issue #17 item 1; `store::reads::mark`) and, when it
    /// moved, tell the agent's sockets on every node. Not a conversation change: no actor, no event row; a
    /// dropped announcement is repaired by the dashboard reading `GET /me/unread` when its socket (re)connects.
    pub async fn mark_read(
        &self,
        agent_id: i64,
        conversation_id: i64,
        seq: i64,
        scope: &ChannelScope,
    ) -> StoreResult<crate::store::reads::ReadMark> {
        let mark = crate::store::reads::mark(&self.store, agent_id, conversation_id, seq, scope).await?;
        if mark.moved {
            self.core.bus.publish(BusEvent::Read(crate::bus::ReadMoved {
                agent_id,
                conversation_id,
                channel_id: mark.channel_id,
                last_read_seq: mark.last_read_seq,
                unread: mark.unread,
            }));
        }
        Ok(mark)
    }

    /// Who an agent is changed (role, active flag, password, channel access, a session or token
    /// ended): their sockets on every node re-check their credentials (`realtime::identity`).
    /// Call after the commit; the hub's identity poll repairs a dropped announcement.
    pub fn access_changed(&self, agent_id: i64) {
        self.core.bus.publish(BusEvent::Access { agent_id });
    }

    /// An agent marked notifications read (issue #17; `ids`, or `all`): their other sockets on every node
    /// update the bell. Call after the commit; a dropped announcement is repaired by the next read of the inbox.
    pub fn notifications_read(&self, agent_id: i64, ids: Vec<i64>, all: bool, unread_count: i64) {
        self.core.bus.publish(BusEvent::NotificationsRead { agent_id, ids, all, unread_count });
    }

    /// A channel's row was committed (created, edited, enabled, disabled, deleted): every node drops
    /// its cached channel rows and its connector supervisors reconcile. Call after the commit; each
    /// supervisor's periodic reconcile repairs a dropped announcement, and the channel cache's
    /// time-to-live bounds a stale row.
    pub fn channel_changed(&self, channel_id: i64) {
        use crate::bus::{ChannelChange, ChannelChangeKind};
        self.core.bus.publish(BusEvent::Channel(ChannelChange { channel_id, what: ChannelChangeKind::Changed }));
    }
}
