//! The agents' notification inbox and the mentions of internal notes (issue #17 items 2 and 3).
//!
//! Notifications are written in ONE place: [`produce`], the effect of the change feed's
//! `notifications` consumer (`store::feed`), in the transaction that takes the feed rows — so each
//! committed change notifies once, cluster-wide, across restarts. What a change notifies is
//! decided by `domain::notifications::decide` from what the change recorded (its event, the
//! feed row's [`Detail`], the message and its mentions); here each recipient's access to the
//! conversation's channel is checked (an agent without it is never notified), and a customer's
//! further messages refresh that agent's unread "customer replied" notification of the
//! conversation instead of piling up new ones.
//!
//! Reads and read marks are per agent and filtered by the caller's channel scope: a notification
//! of a conversation the agent can no longer see is not listed, not counted and not found.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{CONVERSATION_CREATED, CONVERSATION_UPDATED, Conversation, MESSAGE_CREATED, Message, NewDelivery};
use super::models::{Detail, FeedRow};
use super::schema::{
    agent_notifications, agents, channel_access, conversations, customers, events, message_mentions, messages, outbox,
};
use super::{Store, StoreError, StoreResult, Tx, Violation, now};
use crate::db;
use crate::domain::notifications::{self as rules, ActorKind, Change, MentionError, NotificationKind};
use crate::domain::routing::Presence;
use crate::domain::{ChannelScope, Direction, Role};

/// Most notifications one page lists.
pub const MAX_PAGE: i64 = 100;
/// Outbox kind of the "you were mentioned while away" email (sent like the owner-offline mail, CC-12).
pub const MENTION_EMAIL: &str = "email.mentioned";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = agent_notifications)]
pub struct NotificationRow {
    pub id: i64,
    pub agent_id: i64,
    pub kind: NotificationKind,
    pub conversation_id: i64,
    pub message_id: Option<i64>,
    pub actor_kind: ActorKind,
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub excerpt: String,
    pub created_at: NaiveDateTime,
    pub read_at: Option<NaiveDateTime>,
}

/// A notification with what an agent needs to recognise its conversation.
#[derive(Debug, Clone)]
pub struct Notice {
    pub row: NotificationRow,
    pub channel_id: i64,
    pub number: i64,
    pub subject: String,
    pub customer_name: String,
    /// The agent's unread count right after this notification was written (for the socket frame;
    /// listed rows carry the page's count instead).
    pub unread_count: i64,
}

/// A page of one agent's notifications, newest first.
pub struct NoticePage {
    pub items: Vec<Notice>,
    pub unread_count: i64,
    pub has_more: bool,
}

type Context = (i64, i64, String, String);

/// Whether `agent_id` may see conversations of `channel_id` now: an active agent who is an admin or
/// was given the channel. The one check for both kinds of notice (this inbox and the notification mail).
pub(super) async fn may_see(tx: &mut Tx<'_>, agent_id: i64, channel_id: i64) -> StoreResult<bool> {
    let found: Option<(Role, bool)> =
        db!(tx, agents::table.find(agent_id).select((agents::role, agents::active)).first(tx).await.optional())?;
    match found {
        Some((_, false)) | None => Ok(false),
        Some((role, true)) if role.is_admin() => Ok(true),
        Some(_) => {
            let n: i64 = db!(
                tx,
                channel_access::table
                    .filter(channel_access::agent_id.eq(agent_id))
                    .filter(channel_access::channel_instance_id.eq(channel_id))
                    .count()
                    .get_result(tx)
                    .await
            )?;
            Ok(n > 0)
        }
    }
}

/// The active agents who may see conversations of `channel_id`, with their names, by name.
async fn mentionable_in(tx: &mut Tx<'_>, channel_id: i64) -> StoreResult<Vec<(i64, String)>> {
    let everyone: Vec<(i64, String, Role)> = db!(
        tx,
        agents::table
            .filter(agents::active.eq(true))
            .select((agents::id, agents::name, agents::role))
            .order((agents::name, agents::id))
            .load(tx)
            .await
    )?;
    let granted: Vec<i64> = db!(
        tx,
        channel_access::table
            .filter(channel_access::channel_instance_id.eq(channel_id))
            .select(channel_access::agent_id)
            .load(tx)
            .await
    )?;
    Ok(everyone
        .into_iter()
        .filter(|(id, _, role)| role.is_admin() || granted.contains(id))
        .map(|(id, name, _)| (id, name))
        .collect())
}

/// The agents who may be mentioned in notes of conversation `id` (those who may see its channel),
/// by name; `NotFound` when the caller's scope does not hold it.
pub async fn mentionable(store: &Store, id: i64, scope: &ChannelScope) -> StoreResult<Vec<(i64, String)>> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let channel: i64 = db!(
                tx,
                conversations::table.find(id).select(conversations::channel_instance_id).first(tx).await.optional()
            )?
            .filter(|c| scope.allows(*c))
            .ok_or(StoreError::NotFound)?;
            mentionable_in(tx, channel).await
        })
        .await
}

/// Record the agents note `message` mentions (inside the note's transaction): `requested` is checked
/// against the note's text and the channel's agents (`domain::notifications::mentioned`); an agent
/// who may not see the channel is refused (the note is not written).
pub(crate) async fn record_mentions(tx: &mut Tx<'_>, message: &Message, requested: &[i64]) -> StoreResult<Vec<i64>> {
    let agents = mentionable_in(tx, message.channel_instance_id).await?;
    let ids = rules::mentioned(&message.body_text, requested, &agents).map_err(|e| match e {
        MentionError::TooMany => StoreError::Rule(Violation::TooManyMentions { max: rules::MAX_MENTIONS }),
        MentionError::NotMentionable(agent_id) => StoreError::Rule(Violation::NotMentionable { agent_id }),
    })?;
    for agent_id in &ids {
        db!(
            tx,
            diesel::insert_into(message_mentions::table)
                .values((message_mentions::message_id.eq(message.id), message_mentions::agent_id.eq(agent_id)))
                .execute(tx)
                .await
        )?;
    }
    Ok(ids)
}

/// The mentions of `message_ids`: (message, agent, agent's name), by message and name.
pub async fn mentions_of(store: &Store, message_ids: Vec<i64>) -> StoreResult<Vec<(i64, i64, String)>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let pairs: Vec<(i64, i64)> = db!(
                tx,
                message_mentions::table
                    .filter(message_mentions::message_id.eq_any(&message_ids))
                    .select((message_mentions::message_id, message_mentions::agent_id))
                    .load(tx)
                    .await
            )?;
            let mut agent_ids: Vec<i64> = pairs.iter().map(|(_, a)| *a).collect();
            agent_ids.sort_unstable();
            agent_ids.dedup();
            let names: Vec<(i64, String)> = db!(
                tx,
                agents::table.filter(agents::id.eq_any(&agent_ids)).select((agents::id, agents::name)).load(tx).await
            )?;
            let mut out: Vec<(i64, i64, String)> = pairs
                .into_iter()
                .map(|(m, a)| (m, a, names.iter().find(|(id, _)| *id == a).map(|(_, n)| n.clone()).unwrap_or_default()))
                .collect();
            out.sort_by(|x, y| (x.0, &x.2).cmp(&(y.0, &y.2)));
            Ok(out)
        })
        .await
}

/// What `agent_id` may see now (their sockets filter by the same).
async fn scope_of(tx: &mut Tx<'_>, agent_id: i64) -> StoreResult<ChannelScope> {
    let role: Role = db!(tx, agents::table.find(agent_id).select(agents::role).first(tx).await)?;
    let granted: Vec<i64> = db!(
        tx,
        channel_access::table
            .filter(channel_access::agent_id.eq(agent_id))
            .select(channel_access::channel_instance_id)
            .load(tx)
            .await
    )?;
    Ok(ChannelScope::for_role(role, granted))
}

async fn agent_name(tx: &mut Tx<'_>, id: i64) -> StoreResult<String> {
    Ok(db!(tx, agents::table.find(id).select(agents::name).first::<String>(tx).await.optional())?.unwrap_or_default())
}

async fn unread_in(tx: &mut Tx<'_>, agent_id: i64, scope: &ChannelScope) -> StoreResult<i64> {
    let ids = scope.ids();
    Ok(db!(tx, {
        let mut q = agent_notifications::table
            .inner_join(conversations::table)
            .filter(agent_notifications::agent_id.eq(agent_id))
            .filter(agent_notifications::read_at.is_null())
            .into_boxed();
        if let Some(ids) = &ids {
            q = q.filter(conversations::channel_instance_id.eq_any(ids));
        }
        q.count().get_result::<i64>(tx).await
    })?)
}

/// The effect of one feed row of the `notifications` consumer: write the notifications its change
/// calls for (see the module docs). Returns them, to be announced after the commit.
///
/// A mentioned agent who is not online (`presence`: the node's picture) is also mailed, through the
/// outbox ([`MENTION_EMAIL`]).
pub(crate) async fn produce(
    tx: &mut Tx<'_>,
    row: &FeedRow,
    presence: &(dyn Fn(i64) -> Presence + Sync),
) -> StoreResult<Vec<Notice>> {
    let c: Option<Conversation> = db!(
        tx,
        conversations::table.find(row.conversation_id).select(Conversation::as_select()).first(tx).await.optional()
    )?;
    let Some(c) = c else { return Ok(Vec::new()) };
    let detail = Detail::of(row);
    let message_id: Option<i64> =
        db!(tx, events::table.find(row.event_id).select(events::message_id).first(tx).await.optional())?.flatten();
    let message: Option<Message> = match message_id {
        Some(id) => db!(tx, messages::table.find(id).select(Message::as_select()).first(tx).await.optional())?,
        None => None,
    };
    let mut decisions = Vec::new();
    match row.kind.as_str() {
        CONVERSATION_CREATED => decisions.extend(rules::decide(&Change::Created {
            assigned_to: detail.assigned_to,
            actor: detail.actor,
            mode: c.mode,
        })),
        CONVERSATION_UPDATED => {
            decisions.extend(rules::decide(&Change::Updated { assigned_to: detail.assigned_to, actor: detail.actor }))
        }
        MESSAGE_CREATED => {
            // A reply that also changed the conversation ("send and set…") may have assigned it.
            decisions.extend(rules::decide(&Change::Updated { assigned_to: detail.assigned_to, actor: detail.actor }));
            if let Some(m) = &message {
                let mentions: Vec<i64> = if m.direction == Direction::Note {
                    db!(
                        tx,
                        message_mentions::table
                            .filter(message_mentions::message_id.eq(m.id))
                            .select(message_mentions::agent_id)
                            .load(tx)
                            .await
                    )?
                } else {
                    Vec::new()
                };
                decisions.extend(rules::decide(&Change::Message {
                    direction: m.direction,
                    author_agent: m.author_agent_id,
                    assignee: c.assignee_id,
                    mentions: &mentions,
                }));
            }
        }
        _ => {}
    }
    if decisions.is_empty() {
        return Ok(Vec::new());
    }
    let customer_name: String =
        db!(tx, customers::table.find(c.customer_id).select(customers::name).first(tx).await.optional())?
            .unwrap_or_default();
    // Who caused it: the customer of a reply, the author of a note; an assignment's agent, or routing for a new
    // conversation (whoever created it, routing chose the assignee).
    let assigner = match detail.actor {
        Some(a) if row.kind != CONVERSATION_CREATED => (ActorKind::Agent, Some(a), agent_name(tx, a).await?),
        _ => (ActorKind::System, None, "Routing".to_owned()),
    };
    let author = match message.as_ref().and_then(|m| m.author_agent_id) {
        Some(a) => (ActorKind::Agent, Some(a), agent_name(tx, a).await?),
        None => (ActorKind::Customer, Some(c.customer_id), customer_name.clone()),
    };
    let text = match &message {
        Some(m) => rules::excerpt(&m.body_text),
        None if !c.subject.trim().is_empty() => rules::excerpt(&c.subject),
        None => String::new(),
    };
    let t = now();
    let mut out = Vec::new();
    for (agent_id, kind) in decisions {
        if !may_see(tx, agent_id, c.channel_instance_id).await? {
            continue;
        }
        let (actor_kind, actor_id, actor_name) = match kind {
            NotificationKind::Assigned | NotificationKind::ChatWaiting => assigner.clone(),
            NotificationKind::CustomerReplied | NotificationKind::Mentioned => author.clone(),
        };
        let refreshed: Option<NotificationRow> = if kind == NotificationKind::CustomerReplied {
            db!(
                tx,
                diesel::update(
                    agent_notifications::table
                        .filter(agent_notifications::agent_id.eq(agent_id))
                        .filter(agent_notifications::conversation_id.eq(c.id))
                        .filter(agent_notifications::kind.eq(kind))
                        .filter(agent_notifications::read_at.is_null()),
                )
                .set((
                    agent_notifications::message_id.eq(message_id),
                    agent_notifications::actor_kind.eq(actor_kind),
                    agent_notifications::actor_id.eq(actor_id),
                    agent_notifications::actor_name.eq(&actor_name),
                    agent_notifications::excerpt.eq(&text),
                    agent_notifications::created_at.eq(t),
                ))
                .returning(NotificationRow::as_returning())
                .get_results(tx)
                .await
            )?
            .into_iter()
            .next()
        } else {
            None
        };
        let written = match refreshed {
            Some(r) => r,
            None => db!(
                tx,
                diesel::insert_into(agent_notifications::table)
                    .values((
                        agent_notifications::agent_id.eq(agent_id),
                        agent_notifications::kind.eq(kind),
                        agent_notifications::conversation_id.eq(c.id),
                        agent_notifications::message_id.eq(message_id),
                        agent_notifications::actor_kind.eq(actor_kind),
                        agent_notifications::actor_id.eq(actor_id),
                        agent_notifications::actor_name.eq(&actor_name),
                        agent_notifications::excerpt.eq(&text),
                        agent_notifications::created_at.eq(t),
                    ))
                    .returning(NotificationRow::as_returning())
                    .get_result(tx)
                    .await
            )?,
        };
        if kind == NotificationKind::Mentioned && presence(agent_id) != Presence::Online {
            let payload = serde_json::json!({
                "agent_id": agent_id, "conversation_id": c.id, "about": "mentioned",
                "actor": &actor_name, "excerpt": &text,
            });
            let delivery = NewDelivery {
                delivery_id: uuid::Uuid::new_v4().to_string(),
                channel_instance_id: c.channel_instance_id,
                conversation_id: Some(c.id),
                message_id: None,
                kind: MENTION_EMAIL,
                payload: payload.to_string(),
                state: "pending",
                attempts: 0,
                next_attempt_at: t,
                created_at: t,
            };
            db!(tx, diesel::insert_into(outbox::table).values(&delivery).execute(tx).await)?;
        }
        let scope = scope_of(tx, agent_id).await?;
        let unread_count = unread_in(tx, agent_id, &scope).await?;
        out.push(Notice {
            row: written,
            channel_id: c.channel_instance_id,
            number: c.number,
            subject: c.subject.clone(),
            customer_name: customer_name.clone(),
            unread_count,
        });
    }
    Ok(out)
}

/// One agent's notifications in `scope`, newest first: those with an id below `before`, at most
/// `limit` (1…[`MAX_PAGE`]), and the agent's unread count.
pub async fn list(
    store: &Store,
    agent_id: i64,
    scope: &ChannelScope,
    before: Option<i64>,
    unread_only: bool,
    limit: i64,
) -> StoreResult<NoticePage> {
    let scope = scope.clone();
    let limit = limit.clamp(1, MAX_PAGE);
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let ids = scope.ids();
            let rows: Vec<(NotificationRow, Context)> = db!(tx, {
                let mut q = agent_notifications::table
                    .inner_join(conversations::table.inner_join(customers::table))
                    .filter(agent_notifications::agent_id.eq(agent_id))
                    .select((
                        NotificationRow::as_select(),
                        (
                            conversations::channel_instance_id,
                            conversations::number,
                            conversations::subject,
                            customers::name,
                        ),
                    ))
                    .into_boxed();
                if let Some(ids) = &ids {
                    q = q.filter(conversations::channel_instance_id.eq_any(ids));
                }
                if let Some(before) = before {
                    q = q.filter(agent_notifications::id.lt(before));
                }
                if unread_only {
                    q = q.filter(agent_notifications::read_at.is_null());
                }
                q.order(agent_notifications::id.desc()).limit(limit + 1).load(tx).await
            })?;
            let unread_count = unread_in(tx, agent_id, &scope).await?;
            let has_more = rows.len() as i64 > limit;
            let items = rows
                .into_iter()
                .take(limit as usize)
                .map(|(row, (channel_id, number, subject, customer_name))| Notice {
                    row,
                    channel_id,
                    number,
                    subject,
                    customer_name,
                    unread_count,
                })
                .collect();
            Ok(NoticePage { items, unread_count, has_more })
        })
        .await
}

/// Mark one of the agent's notifications read (again: a no-op). `NotFound` for another agent's, or
/// for one whose conversation `scope` does not hold. Returns it and the agent's unread count.
pub async fn mark_read(store: &Store, agent_id: i64, id: i64, scope: &ChannelScope) -> StoreResult<Notice> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let found: Option<(NotificationRow, Context)> = db!(
                    tx,
                    agent_notifications::table
                        .inner_join(conversations::table.inner_join(customers::table))
                        .filter(agent_notifications::id.eq(id))
                        .filter(agent_notifications::agent_id.eq(agent_id))
                        .select((
                            NotificationRow::as_select(),
                            (
                                conversations::channel_instance_id,
                                conversations::number,
                                conversations::subject,
                                customers::name
                            ),
                        ))
                        .first(tx)
                        .await
                        .optional()
                )?;
                let (mut row, (channel_id, number, subject, customer_name)) =
                    found.filter(|(_, (ch, ..))| scope.allows(*ch)).ok_or(StoreError::NotFound)?;
                if row.read_at.is_none() {
                    let t = now();
                    db!(
                        tx,
                        diesel::update(agent_notifications::table.find(id))
                            .set(agent_notifications::read_at.eq(t))
                            .execute(tx)
                            .await
                    )?;
                    row.read_at = Some(t);
                }
                let unread_count = unread_in(tx, agent_id, &scope).await?;
                Ok(Notice { row, channel_id, number, subject, customer_name, unread_count })
            })
            .await
        })
        .await
}

/// Mark all of the agent's notifications in `scope` read; returns the unread count left (0).
pub async fn mark_all_read(store: &Store, agent_id: i64, scope: &ChannelScope) -> StoreResult<i64> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let mine = agent_notifications::agent_id.eq(agent_id).and(agent_notifications::read_at.is_null());
                match scope.ids() {
                    None => db!(
                        tx,
                        diesel::update(agent_notifications::table.filter(mine))
                            .set(agent_notifications::read_at.eq(t))
                            .execute(tx)
                            .await
                    )?,
                    Some(ids) => db!(
                        tx,
                        diesel::update(
                            agent_notifications::table.filter(mine).filter(
                                agent_notifications::conversation_id.eq_any(
                                    conversations::table
                                        .filter(conversations::channel_instance_id.eq_any(ids.clone()))
                                        .select(conversations::id),
                                ),
                            ),
                        )
                        .set(agent_notifications::read_at.eq(t))
                        .execute(tx)
                        .await
                    )?,
                };
                unread_in(tx, agent_id, &scope).await
            })
            .await
        })
        .await
}
