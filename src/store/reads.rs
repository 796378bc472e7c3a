//! Read cursors (issue #17 item 1): per agent and conversation, the seq of the newest message the
//! agent has read (`conversation_reads`). A cursor only rises; no row means nothing read yet.
//!
//! What is *unread* for an agent is one rule, used by every reader here: the customer's messages
//! (direction `in`) with a seq above the agent's cursor. Notes, replies and system lines never
//! count. The per-view totals ([`summary`]) count the conversations an agent still has work in:
//! in their scope, not merged away, and not in a status whose base is closed; a conversation is in
//! the *chats* view while it is a chat in progress, else in *tickets* (the dashboard's navigation).
//!
//! Writing a cursor is not a conversation change (no event row, no conversation actor): the change
//! layer commits it through [`mark`] and announces it on the bus for the agent's other sockets.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::dsl::max;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::conversations::load_in_scope;
use super::schema::{conversation_reads, conversations, messages, statuses};
use super::{Store, StoreError, StoreResult, Tx, now};
use crate::db;
use crate::domain::{ChannelScope, Direction, Mode, StatusBase};

/// Most conversations [`summary`] lists one by one (the totals count them all).
pub const SUMMARY_ITEMS: usize = 1000;

/// An agent's cursor on a conversation after [`mark`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMark {
    pub conversation_id: i64,
    pub channel_id: i64,
    /// The cursor now (the higher of the stored one and the one asked for).
    pub last_read_seq: i64,
    /// Whether this call moved it.
    pub moved: bool,
    /// Customer messages after the cursor.
    pub unread: i64,
}

/// Which navigation view a conversation is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// A chat in progress.
    Chats,
    /// A ticket, or a chat that ended.
    Tickets,
}

impl View {
    pub fn as_str(self) -> &'static str {
        match self {
            View::Chats => "chats",
            View::Tickets => "tickets",
        }
    }

    fn of(mode: Mode, ended_at: Option<NaiveDateTime>) -> Self {
        if mode == Mode::Sync && ended_at.is_none() { View::Chats } else { View::Tickets }
    }
}

/// One conversation with unread customer messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadItem {
    pub conversation_id: i64,
    pub number: i64,
    pub view: View,
    pub unread: i64,
    pub last_read_seq: i64,
}

/// Per view: conversations with unread messages, and those messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub conversations: i64,
    pub messages: i64,
}

/// An agent's unread state ([`summary`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub chats: Totals,
    pub tickets: Totals,
    /// Newest conversations first, at most [`SUMMARY_ITEMS`].
    pub items: Vec<UnreadItem>,
    /// More conversations had unread messages than `items` lists.
    pub truncated: bool,
}

/// Raise `agent_id`'s cursor on conversation `id` to `seq` (never lowers it). `NotFound` when the
/// conversation is out of `scope`; `BadReference` when no message of it has that seq.
pub async fn mark(store: &Store, agent_id: i64, id: i64, seq: i64, scope: &ChannelScope) -> StoreResult<ReadMark> {
    let scope = scope.clone();
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let c = load_in_scope(tx, id, &scope).await?;
                if seq < 1 || seq > c.last_seq {
                    return Err(StoreError::BadReference(format!(
                        "seq {seq} names no message of this conversation (1–{})",
                        c.last_seq
                    )));
                }
                let t = now();
                let mut moved = raise(tx, agent_id, id, seq, t).await? > 0;
                if !moved {
                    let inserted: usize = db!(
                        tx,
                        diesel::insert_into(conversation_reads::table)
                            .values((
                                conversation_reads::agent_id.eq(agent_id),
                                conversation_reads::conversation_id.eq(id),
                                conversation_reads::last_read_seq.eq(seq),
                                conversation_reads::updated_at.eq(t),
                            ))
                            .on_conflict_do_nothing()
                            .execute(tx)
                            .await
                    )?;
                    // A row another transaction inserted meanwhile (PostgreSQL): raise it now that it is visible.
                    moved = inserted > 0 || raise(tx, agent_id, id, seq, t).await? > 0;
                }
                let last_read_seq = cursor(tx, agent_id, id).await?;
                let unread = unread_after(tx, id, last_read_seq).await?;
                Ok(ReadMark { conversation_id: id, channel_id: c.channel_instance_id, last_read_seq, moved, unread })
            })
            .await
        })
        .await
}

/// Move an existing cursor up to `seq`; the rows changed (0 when absent or already there).
async fn raise(tx: &mut Tx<'_>, agent_id: i64, id: i64, seq: i64, t: NaiveDateTime) -> StoreResult<usize> {
    Ok(db!(
        tx,
        diesel::update(
            conversation_reads::table
                .filter(conversation_reads::agent_id.eq(agent_id))
                .filter(conversation_reads::conversation_id.eq(id))
                .filter(conversation_reads::last_read_seq.lt(seq)),
        )
        .set((conversation_reads::last_read_seq.eq(seq), conversation_reads::updated_at.eq(t)))
        .execute(tx)
        .await
    )?)
}

async fn cursor(tx: &mut Tx<'_>, agent_id: i64, id: i64) -> StoreResult<i64> {
    let seq: Option<i64> = db!(
        tx,
        conversation_reads::table
            .find((agent_id, id))
            .select(conversation_reads::last_read_seq)
            .first(tx)
            .await
            .optional()
    )?;
    Ok(seq.unwrap_or(0))
}

async fn unread_after(tx: &mut Tx<'_>, id: i64, after: i64) -> StoreResult<i64> {
    Ok(db!(
        tx,
        messages::table
            .filter(messages::conversation_id.eq(id))
            .filter(messages::direction.eq(Direction::In.as_str()))
            .filter(messages::seq.gt(after))
            .count()
            .get_result(tx)
            .await
    )?)
}

/// Unread customer messages of each of `ids` for `agent_id` (conversations with none are absent).
/// The caller has already checked the conversations are in the agent's scope.
pub async fn unread_counts(store: &Store, agent_id: i64, ids: Vec<i64>) -> StoreResult<HashMap<i64, i64>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let rows: Vec<(i64, i64)> = db!(
                tx,
                messages::table
                    .left_join(
                        conversation_reads::table.on(conversation_reads::conversation_id
                            .eq(messages::conversation_id)
                            .and(conversation_reads::agent_id.eq(agent_id))),
                    )
                    .filter(messages::conversation_id.eq_any(&ids))
                    .filter(messages::direction.eq(Direction::In.as_str()))
                    .filter(conversation_reads::last_read_seq.nullable().is_null().or(
                        messages::seq.nullable().gt(conversation_reads::last_read_seq.nullable()).assume_not_null()
                    ),)
                    .group_by(messages::conversation_id)
                    .select((messages::conversation_id, diesel::dsl::count_star()))
                    .load(tx)
                    .await
            )?;
            Ok(rows.into_iter().collect())
        })
        .await
}

/// `agent_id`'s unread state over the conversations of `scope` (see the module docs for what counts).
pub async fn summary(store: &Store, agent_id: i64, scope: &ChannelScope) -> StoreResult<Summary> {
    let ids = scope.ids();
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            type Row = (i64, Option<i64>, Option<Mode>, Option<NaiveDateTime>, Option<i64>, i64);
            let rows: Vec<Row> = db!(tx, {
                let mut q = messages::table
                    .inner_join(conversations::table.on(conversations::id.eq(messages::conversation_id)))
                    .inner_join(statuses::table.on(statuses::key.eq(conversations::status)))
                    .left_join(
                        conversation_reads::table.on(conversation_reads::conversation_id
                            .eq(messages::conversation_id)
                            .and(conversation_reads::agent_id.eq(agent_id))),
                    )
                    .filter(messages::direction.eq(Direction::In.as_str()))
                    .filter(conversations::merged_into_id.is_null())
                    .filter(statuses::base.ne(StatusBase::Closed))
                    .filter(conversation_reads::last_read_seq.nullable().is_null().or(
                        messages::seq.nullable().gt(conversation_reads::last_read_seq.nullable()).assume_not_null(),
                    ))
                    // Grouped by the message's conversation alone (one row per conversation): the other columns
                    // are the same on every row of a group, read through `max`.
                    .group_by(messages::conversation_id)
                    .select((
                        messages::conversation_id,
                        max(conversations::number),
                        max(conversations::mode),
                        max(conversations::ended_at),
                        max(conversation_reads::last_read_seq.nullable()),
                        diesel::dsl::count_star(),
                    ))
                    .into_boxed();
                if let Some(ids) = &ids {
                    q = q.filter(conversations::channel_instance_id.eq_any(ids));
                }
                q.load(tx).await
            })?;
            Ok(summarise(rows.into_iter().map(|(id, number, mode, ended_at, seq, unread)| UnreadItem {
                conversation_id: id,
                number: number.unwrap_or(0),
                view: View::of(mode.unwrap_or(Mode::Async), ended_at),
                unread,
                last_read_seq: seq.unwrap_or(0),
            })))
        })
        .await
}

/// Totals per view and the newest [`SUMMARY_ITEMS`] conversations.
fn summarise(items: impl Iterator<Item = UnreadItem>) -> Summary {
    let mut out = Summary::default();
    for item in items {
        let totals = match item.view {
            View::Chats => &mut out.chats,
            View::Tickets => &mut out.tickets,
        };
        totals.conversations += 1;
        totals.messages += item.unread;
        out.items.push(item);
    }
    out.items.sort_by_key(|i| std::cmp::Reverse(i.conversation_id));
    out.truncated = out.items.len() > SUMMARY_ITEMS;
    out.items.truncate(SUMMARY_ITEMS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: i64, view: View, unread: i64) -> UnreadItem {
        UnreadItem { conversation_id: id, number: id + 100, view, unread, last_read_seq: 0 }
    }

    #[test]
    fn totals_per_view_and_newest_first() {
        let s =
            summarise(vec![item(1, View::Tickets, 2), item(3, View::Chats, 1), item(2, View::Tickets, 5)].into_iter());
        assert_eq!(s.chats, Totals { conversations: 1, messages: 1 });
        assert_eq!(s.tickets, Totals { conversations: 2, messages: 7 });
        assert_eq!(s.items.iter().map(|i| i.conversation_id).collect::<Vec<_>>(), vec![3, 2, 1]);
        assert!(!s.truncated);
    }

    #[test]
    fn a_long_list_is_cut_but_counted() {
        let s = summarise((1..=(SUMMARY_ITEMS as i64 + 5)).map(|id| item(id, View::Tickets, 1)));
        assert_eq!(s.items.len(), SUMMARY_ITEMS);
        assert!(s.truncated);
        assert_eq!(s.tickets.conversations, SUMMARY_ITEMS as i64 + 5);
        assert_eq!(s.items[0].conversation_id, SUMMARY_ITEMS as i64 + 5);
    }

    #[test]
    fn a_chat_in_progress_is_in_chats() {
        assert_eq!(View::of(Mode::Sync, None), View::Chats);
        assert_eq!(View::of(Mode::Sync, Some(now())), View::Tickets);
        assert_eq!(View::of(Mode::Async, None), View::Tickets);
    }
}
