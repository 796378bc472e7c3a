//! The actor of one conversation: the one writer of that conversation on this node. See the
//! module docs of `changes::actors`.

use std::time::Duration;

use actix::prelude::*;
use chrono::NaiveDateTime;

use crate::domain::ChannelScope;
use std::sync::Arc;

use super::super::commit::{self as ops, Core};
use crate::store::audit::Actor as Who;
use crate::store::conversations::{ConversationPatch, EndReason};
use crate::store::messages::NewReply;
use crate::store::{StoreError, StoreResult};

/// An actor with nothing to do for this long (and no timer pending) stops.
pub const IDLE: Duration = Duration::from_secs(300);
/// How often the registry asks its actors whether they are idle (one timer per arbiter thread).
pub const SWEEP: Duration = Duration::from_secs(30);

/// The live actors of a node by conversation id (the registry's map).
pub type Live = dashmap::DashMap<i64, Addr<ConversationActor>>;

pub struct ConversationActor {
    id: i64,
    rt: Core,
    /// The registry's map of live actors, which this one leaves when it stops.
    live: Arc<Live>,
    timer: Option<SpawnHandle>,
    deadline: Option<NaiveDateTime>,
    last_used: std::time::Instant,
}

impl ConversationActor {
    pub fn new(id: i64, rt: Core, live: Arc<Live>) -> Self {
        Self { id, rt, live, timer: None, deadline: None, last_used: std::time::Instant::now() }
    }

    /// (Re)arm the inactivity timer for the stored deadline of a chat still in progress.
    fn arm(&mut self, ctx: &mut Context<Self>, deadline: Option<NaiveDateTime>) {
        if self.deadline == deadline && (self.timer.is_some() || deadline.is_none()) {
            return;
        }
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        self.deadline = deadline;
        let Some(at) = deadline else { return };
        let wait = (at - crate::store::now()).to_std().unwrap_or_default();
        // A few milliseconds late rather than early: the store only ends a chat whose deadline passed.
        self.timer = Some(ctx.run_later(wait + Duration::from_millis(5), |act, ctx| {
            act.timer = None;
            let rt = act.rt.clone();
            let id = act.id;
            ctx.wait(
                async move { ops::end(&rt, id, &ChannelScope::All, None, EndReason::Inactivity, Who::System).await }
                    .into_actor(act)
                    .map(|res, act, ctx| {
                        match res {
                            Ok(Some(_)) => act.deadline = None,
                            // Someone wrote in time: the stored deadline moved; follow it.
                            Ok(None) => act.refresh(ctx),
                            Err(e) => tracing::warn!(conversation_id = act.id, error = %e, "inactivity end failed"),
                        }
                    }),
            );
        }));
    }

    /// Reload the stored deadline and arm for it.
    fn refresh(&mut self, ctx: &mut Context<Self>) {
        let rt = self.rt.clone();
        let id = self.id;
        ctx.wait(async move { crate::store::conversations::deadline(&rt.store, id).await }.into_actor(self).map(
            |res, act, ctx| {
                if let Ok(deadline) = res {
                    act.deadline = None;
                    act.arm(ctx, deadline);
                }
            },
        ));
    }
}

impl Actor for ConversationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(64);
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.live.remove_if(&self.id, |_, a| *a == ctx.address());
    }
}

/// Stop if idle for [`IDLE`] with no timer pending (sent by the registry's sweep every [`SWEEP`]).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct StopIfIdle;

impl Handler<StopIfIdle> for ConversationActor {
    type Result = ();
    fn handle(&mut self, _: StopIfIdle, ctx: &mut Context<Self>) {
        if self.timer.is_none() && self.last_used.elapsed() >= IDLE {
            ctx.stop();
        }
    }
}

/// Follow the stored deadline of the conversation (after a change made elsewhere, e.g. its creation).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Arm(pub Option<NaiveDateTime>);

impl Handler<Arm> for ConversationActor {
    type Result = ();
    fn handle(&mut self, msg: Arm, ctx: &mut Context<Self>) {
        self.last_used = std::time::Instant::now();
        self.arm(ctx, msg.0);
    }
}

/// Append an agent reply or note.
#[derive(Message, Clone)]
#[rtype(result = "StoreResult<ops::Replied>")]
pub struct Reply(pub NewReply, pub ChannelScope, pub Who);

/// Change properties.
#[derive(Message, Clone)]
#[rtype(result = "StoreResult<ops::Updated>")]
pub struct Patch(pub ConversationPatch, pub ChannelScope, pub Who);

/// Merge this conversation into another.
#[derive(Message, Clone)]
#[rtype(result = "StoreResult<ops::Updated>")]
pub struct Merge(pub i64, pub ChannelScope, pub Who);

/// End the chat (agent, rule or inactivity), optionally setting a status.
#[derive(Message, Clone)]
#[rtype(result = "StoreResult<Option<ops::Updated>>")]
pub struct End(pub Option<String>, pub EndReason, pub ChannelScope, pub Who);

/// A customer rates the conversation (HD-12, issue #18): customer id and rating.
#[derive(Message, Clone)]
#[rtype(result = "StoreResult<ops::Updated>")]
pub struct Rate(pub i64, pub crate::domain::Rating);

/// Run `work` as this actor's only job until it finishes, then follow the conversation's deadline.
macro_rules! serialized {
    ($self:ident, $work:expr, $deadline:expr) => {{
        $self.last_used = std::time::Instant::now();
        AtomicResponse::new(Box::pin($work.into_actor($self).map(|res, act, ctx| {
            if let Ok(r) = &res {
                let deadline: Option<Option<NaiveDateTime>> = $deadline(r);
                if let Some(d) = deadline {
                    act.arm(ctx, d);
                }
            }
            res
        })))
    }};
}

impl Handler<Reply> for ConversationActor {
    type Result = AtomicResponse<Self, StoreResult<ops::Replied>>;
    fn handle(&mut self, Reply(reply, scope, who): Reply, _: &mut Context<Self>) -> Self::Result {
        let rt = self.rt.clone();
        serialized!(self, async move { ops::reply(&rt, reply, &scope, who).await }, |r: &ops::Replied| Some(r.deadline))
    }
}

impl Handler<Patch> for ConversationActor {
    type Result = AtomicResponse<Self, StoreResult<ops::Updated>>;
    fn handle(&mut self, Patch(patch, scope, who): Patch, _: &mut Context<Self>) -> Self::Result {
        let rt = self.rt.clone();
        let id = self.id;
        serialized!(self, async move { ops::update(&rt, id, &patch, &scope, who).await }, |r: &ops::Updated| Some(
            r.deadline
        ))
    }
}

impl Handler<Rate> for ConversationActor {
    type Result = AtomicResponse<Self, StoreResult<ops::Updated>>;
    fn handle(&mut self, Rate(customer_id, rating): Rate, _: &mut Context<Self>) -> Self::Result {
        let rt = self.rt.clone();
        let id = self.id;
        serialized!(self, async move { ops::rate(&rt, id, customer_id, rating).await }, |r: &ops::Updated| Some(
            r.deadline
        ))
    }
}

impl Handler<Merge> for ConversationActor {
    type Result = AtomicResponse<Self, StoreResult<ops::Updated>>;
    fn handle(&mut self, Merge(into, scope, who): Merge, _: &mut Context<Self>) -> Self::Result {
        let rt = self.rt.clone();
        let id = self.id;
        // The merged conversation is closed: no timer any more.
        serialized!(self, async move { ops::merge(&rt, id, into, &scope, who).await }, |_: &ops::Updated| Some(None))
    }
}

impl Handler<End> for ConversationActor {
    type Result = AtomicResponse<Self, StoreResult<Option<ops::Updated>>>;
    fn handle(&mut self, End(status, reason, scope, who): End, _: &mut Context<Self>) -> Self::Result {
        let rt = self.rt.clone();
        let id = self.id;
        serialized!(self, async move { ops::end(&rt, id, &scope, status, reason, who).await }, |r: &Option<
            ops::Updated,
        >| {
            r.as_ref().map(|_| None)
        })
    }
}

/// A customer's message for this conversation (or, by the last-chat rule, a new one).
#[derive(Message, Clone)]
#[rtype(result = "StoreResult<ops::Inbound>")]
pub struct Inbound(pub crate::store::messages::CustomerMessage);

impl Handler<Inbound> for ConversationActor {
    type Result = AtomicResponse<Self, StoreResult<ops::Inbound>>;
    fn handle(&mut self, Inbound(msg): Inbound, _: &mut Context<Self>) -> Self::Result {
        let rt = self.rt.clone();
        self.last_used = std::time::Instant::now();
        AtomicResponse::new(Box::pin(async move { ops::customer_message(&rt, msg).await }.into_actor(self).map(
            |res, act, ctx| {
                // A new conversation started instead is armed by its own actor (`Changes`).
                if let Ok(r) = &res
                    && r.conversation.id == act.id
                {
                    act.arm(ctx, r.deadline);
                }
                res
            },
        )))
    }
}

/// A mail threaded into this conversation (the importer's; a customer's mail to a closed ticket may start a new
/// one, CORE-7). Committed here, one change at a time with the others; published by the importer in mail order.
#[derive(Message, Clone)]
#[rtype(result = "StoreResult<crate::store::email::Imported>")]
pub struct MailIn(pub Arc<crate::store::email::IncomingMail>, pub String);

impl Handler<MailIn> for ConversationActor {
    type Result = AtomicResponse<Self, StoreResult<crate::store::email::Imported>>;
    fn handle(&mut self, MailIn(mail, subject): MailIn, _: &mut Context<Self>) -> Self::Result {
        let rt = self.rt.clone();
        // The importer's announcement arms the deadline (`Changes::appended`, `Changes::created`).
        serialized!(self, async move { ops::mail(&rt, mail, subject).await }, |_: &crate::store::email::Imported| None)
    }
}

/// A mailbox error means the node is shutting down.
pub fn mailbox(e: MailboxError) -> StoreError {
    StoreError::Pool(format!("conversation actor unavailable: {e}"))
}
