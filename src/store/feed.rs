//! The durable change feed (issue #14): for consumers that must act on each committed change
//! exactly once, cluster-wide, across restarts — the owner-offline mail (CC-12), the agents'
//! notification inbox (issue #17, `store::notifications`) and the email notifications (issue #18,
//! `store::mail_notifications`) today; the rule engine and integration
//! webhooks next.
//!
//! **Mechanism: rows written in the change's own transaction, deleted in the consumer's.**
//! [`super::events::record`] (every change that writes an `events` row) also writes one `change_feed` row
//! per [`Consumer`] subscribed to that event's kind. A consumer takes its oldest rows in a
//! transaction that performs its effect and deletes them: commit means "done, once"; a crash
//! before the commit rolls both back and the rows are taken again. On PostgreSQL the rows are
//! read `FOR UPDATE SKIP LOCKED`, so consumers on several nodes share the work without waiting
//! for or repeating each other; on SQLite one process owns the file and the writer lock orders
//! them. Why not a cursor over `events`: ids are drawn before commit, so a cursor can pass an id
//! whose transaction commits later (out of order) — exactness would need gap tracking; rows
//! need none, and a consumer added later starts with what is committed after it.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::channels::{Assign, assign_rule};
use super::models::{
    CONVERSATION_CREATED, CONVERSATION_UPDATED, ChannelInstance, Conversation, EventRow, MESSAGE_CREATED, NewDelivery,
};
pub use super::models::{Detail, FeedRow};
use super::schema::{change_feed, channel_instances, conversations, customers, outbox};
use super::{Store, StoreResult, Tx};
use crate::db;
use crate::domain::routing::Presence;

/// The consumers of the feed. Adding one: a variant, the event kinds it wants, its effect in
/// [`take`] (written in the same transaction as the rows' deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    /// Mail the customer's owner when a new conversation was given to them while they were not
    /// online (CC-12, seed 004).
    OwnerOffline,
    /// The agents' notification inbox (issue #17): assigned, mentioned, customer replied, chat
    /// waiting (`store::notifications::produce`).
    Notifications,
    /// Email notifications (issue #18, NT-1…NT-13): who is mailed about a change, one outbox row per mail
    /// (`store::mail_notifications::produce`).
    MailNotifications,
}

impl Consumer {
    pub const ALL: [Consumer; 3] = [Consumer::OwnerOffline, Consumer::Notifications, Consumer::MailNotifications];

    pub fn as_str(self) -> &'static str {
        match self {
            Consumer::OwnerOffline => "owner_offline",
            Consumer::Notifications => "notifications",
            Consumer::MailNotifications => "mail_notifications",
        }
    }

    /// Whether this consumer wants events of `kind`.
    pub fn wants(self, kind: &str) -> bool {
        match self {
            Consumer::OwnerOffline => kind == CONVERSATION_CREATED,
            Consumer::Notifications | Consumer::MailNotifications => {
                [CONVERSATION_CREATED, CONVERSATION_UPDATED, MESSAGE_CREATED].contains(&kind)
            }
        }
    }
}

/// Outbox kind of the "a conversation of your customer arrived while you were away" email.
pub const OWNER_OFFLINE_EMAIL: &str = "email.owner_offline";

/// Write the feed rows of one event inside its transaction (called by [`super::events::record`]).
pub(crate) async fn record(tx: &mut Tx<'_>, event: &EventRow, detail: &Detail) -> StoreResult<()> {
    let detail = detail.stored();
    for consumer in Consumer::ALL {
        if consumer.wants(&event.kind) {
            db!(
                tx,
                diesel::insert_into(change_feed::table)
                    .values((
                        change_feed::consumer.eq(consumer.as_str()),
                        change_feed::event_id.eq(event.id),
                        change_feed::conversation_id.eq(event.conversation_id),
                        change_feed::kind.eq(&event.kind),
                        change_feed::created_at.eq(event.created_at),
                        change_feed::detail.eq(&detail),
                    ))
                    .execute(tx)
                    .await
            )?;
        }
    }
    Ok(())
}

/// The owner-offline effect of one `conversation.created` row: queue the mail to the owner when
/// the conversation went to the customer's owner by the channel's owner rule and the owner is
/// not online now (normally a second after the creation). Returns whether a mail was queued.
async fn owner_offline(
    tx: &mut Tx<'_>,
    row: &FeedRow,
    presence: &(dyn Fn(i64) -> Presence + Sync),
) -> StoreResult<bool> {
    let c: Option<Conversation> = db!(
        tx,
        conversations::table.find(row.conversation_id).select(Conversation::as_select()).first(tx).await.optional()
    )?;
    let c = match c {
        // Most new conversations are not assigned: nothing more to read.
        Some(c) if c.assignee_id.is_some() => c,
        _ => return Ok(false),
    };
    let channel: ChannelInstance = db!(
        tx,
        channel_instances::table.find(c.channel_instance_id).select(ChannelInstance::as_select()).first(tx).await
    )?;
    let owner: Option<i64> =
        db!(tx, customers::table.find(c.customer_id).select(customers::owner_agent_id).first(tx).await)?;
    // The assignee is known (unassigned rows stopped above): it must be the owner.
    let due = assign_rule(&channel) == Assign::Owner
        && owner == c.assignee_id
        && owner.is_some_and(|o| presence(o) != Presence::Online);
    if due {
        let t = super::now();
        let delivery = NewDelivery {
            delivery_id: uuid::Uuid::new_v4().to_string(),
            channel_instance_id: channel.id,
            conversation_id: Some(c.id),
            message_id: None,
            kind: OWNER_OFFLINE_EMAIL,
            payload: serde_json::json!({"agent_id": owner, "conversation_id": c.id}).to_string(),
            state: "pending",
            attempts: 0,
            next_attempt_at: t,
            created_at: t,
        };
        db!(tx, diesel::insert_into(outbox::table).values(&delivery).execute(tx).await)?;
    }
    Ok(due)
}

/// What one [`take`] did: how many rows it took (0: nothing waited), and the notifications it
/// wrote (new or refreshed), for the caller to announce after the commit.
#[derive(Debug, Default)]
pub struct Taken {
    pub rows: usize,
    pub notifications: Vec<super::notifications::Notice>,
}

/// Take up to `limit` of `consumer`'s rows: act on them and delete them, in one transaction.
pub async fn take(store: &Store, consumer: Consumer, limit: i64) -> StoreResult<Taken> {
    store
        .run(move |store| async move {
            let presence = |a: i64| store.presence(a);
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let mine = || {
                    change_feed::table
                        .filter(change_feed::consumer.eq(consumer.as_str()))
                        .order(change_feed::id)
                        .limit(limit)
                };
                let rows: Vec<FeedRow> = match tx.reborrow() {
                    // Consumers on several nodes share the rows without waiting for each other.
                    Tx::Postgres(tx) => mine().for_update().skip_locked().select(FeedRow::as_select()).load(tx).await?,
                    // One process owns the file; the writer lock orders consumers.
                    Tx::Sqlite(tx) => mine().select(FeedRow::as_select()).load(tx).await?,
                };
                let mut notifications = Vec::new();
                for row in &rows {
                    match consumer {
                        Consumer::OwnerOffline => {
                            if owner_offline(tx, row, &presence).await? {
                                tracing::info!(
                                    conversation_id = row.conversation_id,
                                    "owner is not online: mail queued"
                                );
                            }
                        }
                        Consumer::Notifications => {
                            notifications.extend(super::notifications::produce(tx, row, &presence).await?);
                        }
                        Consumer::MailNotifications => {
                            let queued = super::mail_notifications::produce(tx, row).await?;
                            if queued > 0 {
                                tracing::debug!(
                                    conversation_id = row.conversation_id,
                                    queued,
                                    "notification mail queued"
                                );
                            }
                        }
                    }
                }
                let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                db!(tx, diesel::delete(change_feed::table.filter(change_feed::id.eq_any(&ids))).execute(tx).await)?;
                Ok(Taken { rows: rows.len(), notifications })
            })
            .await
        })
        .await
}

/// How many rows wait for `consumer` (metrics, tests).
pub async fn pending(store: &Store, consumer: Consumer) -> StoreResult<i64> {
    let name = consumer.as_str();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(tx, change_feed::table.filter(change_feed::consumer.eq(name)).count().get_result::<i64>(tx).await)?)
        })
        .await
}
