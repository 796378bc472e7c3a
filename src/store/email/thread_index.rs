//! The thread index: what threading (`channels::email::threading`) needs about the tickets a mail
//! names — by ticket number, by Message-ID / References, merge chains — read in one go, and the
//! active agents' addresses.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::channels::email::{TicketLookup, TicketRef};
use crate::db;
use crate::store::schema::{
    agents, channel_access, channel_instances, conversation_subscribers, conversations, customer_identities, messages,
};
use crate::store::{Store, StoreResult, Tx};

/// What threading needs about the tickets a mail may name, read in one go so the pure rules
/// (`channels::email::threading`) can run over it.
#[derive(Debug, Default, Clone)]
pub struct ThreadIndex {
    pub(super) by_number: HashMap<u64, TicketRef>,
    pub(super) by_message_id: HashMap<String, i64>,
    pub(super) merged_into: HashMap<i64, i64>,
}

impl TicketLookup for ThreadIndex {
    fn ticket_by_number(&self, number: u64) -> Option<TicketRef> {
        self.by_number.get(&number).cloned()
    }
    fn ticket_by_message_id(&self, message_id: &str) -> Option<i64> {
        self.by_message_id.get(message_id).copied()
    }
    fn survivor(&self, ticket: i64) -> i64 {
        let mut current = ticket;
        for _ in 0..32 {
            match self.merged_into.get(&current) {
                Some(next) => current = *next,
                None => break,
            }
        }
        current
    }
}

/// Read what [`ThreadIndex`] needs for a mail naming ticket `number` in its subject and these Message-IDs in its
/// headers. Only email tickets count.
pub(super) async fn read_thread_index(
    tx: &mut Tx<'_>,
    number: Option<u64>,
    ids: Vec<String>,
) -> StoreResult<ThreadIndex> {
    let mut index = ThreadIndex::default();
    let mut tickets: Vec<i64> = Vec::new();
    if let Some(n) = number.and_then(|n| i64::try_from(n).ok())
        && let Some(found) = by_number(tx, n).await?
    {
        tickets.push(found.id);
        index.by_number.insert(n as u64, found);
    }
    if !ids.is_empty() {
        let found: Vec<(String, i64)> = db!(
            tx,
            messages::table
                .inner_join(channel_instances::table.on(channel_instances::id.eq(messages::channel_instance_id)))
                .filter(messages::provider_message_id.eq_any(&ids))
                .filter(channel_instances::kind.eq("email"))
                .select((messages::provider_message_id.assume_not_null(), messages::conversation_id))
                .load(tx)
                .await
        )?;
        for (mid, conversation) in found {
            tickets.push(conversation);
            index.by_message_id.entry(mid).or_insert(conversation);
        }
    }
    // Merge chains, hop by hop (bounded).
    let mut frontier: HashSet<i64> = tickets.into_iter().collect();
    for _ in 0..8 {
        if frontier.is_empty() {
            break;
        }
        let ids: Vec<i64> = frontier.drain().collect();
        let rows: Vec<(i64, Option<i64>)> = db!(
            tx,
            conversations::table
                .filter(conversations::id.eq_any(&ids))
                .select((conversations::id, conversations::merged_into_id))
                .load(tx)
                .await
        )?;
        for (id, into) in rows {
            if let Some(into) = into
                && index.merged_into.insert(id, into).is_none()
            {
                frontier.insert(into);
            }
        }
    }
    Ok(index)
}

/// The email ticket with this number, with the addresses threading checks a mail naming it against (EM-6).
async fn by_number(tx: &mut Tx<'_>, n: i64) -> StoreResult<Option<TicketRef>> {
    let found: Option<(i64, i64, i64)> = db!(
        tx,
        conversations::table
            .inner_join(channel_instances::table)
            .filter(conversations::number.eq(n))
            .filter(channel_instances::kind.eq("email"))
            .select((conversations::id, conversations::customer_id, conversations::channel_instance_id))
            .first(tx)
            .await
            .optional()
    )?;
    let Some((id, customer_id, channel_id)) = found else { return Ok(None) };
    let customer_email: Option<String> = db!(
        tx,
        customer_identities::table
            .filter(customer_identities::customer_id.eq(customer_id))
            .filter(customer_identities::kind.eq("email"))
            .select(customer_identities::value)
            .order(customer_identities::id)
            .first(tx)
            .await
            .optional()
    )?;
    let subscriber_emails: Vec<String> = db!(
        tx,
        conversation_subscribers::table
            .filter(conversation_subscribers::conversation_id.eq(id))
            .select(conversation_subscribers::email)
            .load(tx)
            .await
    )?;
    // Agents who may work on this mailbox: admins, and those given access to it.
    let with_access: Vec<i64> = db!(
        tx,
        channel_access::table
            .filter(channel_access::channel_instance_id.eq(channel_id))
            .select(channel_access::agent_id)
            .load(tx)
            .await
    )?;
    let agent_emails: Vec<String> = db!(
        tx,
        agents::table
            .filter(agents::active.eq(true))
            .filter(agents::role.ne("agent").or(agents::id.eq_any(&with_access)))
            .select(agents::email)
            .load(tx)
            .await
    )?;
    Ok(Some(TicketRef { id, customer_email: customer_email.unwrap_or_default(), subscriber_emails, agent_emails }))
}

/// Active agents by lower-case address (EM-11 forwards, agent replies by mail).
pub async fn agent_addresses(store: &Store) -> StoreResult<HashMap<String, i64>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let rows: Vec<(String, i64)> = db!(
                tx,
                agents::table.filter(agents::active.eq(true)).select((agents::email, agents::id)).load(tx).await
            )?;
            Ok(rows.into_iter().map(|(e, id)| (e.to_lowercase(), id)).collect())
        })
        .await
}
