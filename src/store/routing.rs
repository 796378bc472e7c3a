//! Auto-assignment of a new conversation inside its creation transaction (CC-12, seed 004): the
//! channel's rule ([`super::channels::Assign`]) read with what the transaction sees — team
//! members, who may work the channel, the customer's owner, the channel's round-robin turn — and
//! the node's presence picture handed in. So a new conversation is born assigned: one commit, one
//! `conversation.created` event. The pick itself is `domain::routing::round_robin`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::channels::{Assign, assign_rule};
use super::models::ChannelInstance;
use super::schema::{agents, channel_access, customers, team_members};
use super::{StoreResult, Tx, counters};
use crate::db;
use crate::domain::Role;
use crate::domain::routing::{Presence, round_robin};

/// Decide the assignee of a new conversation of `channel` for `customer_id` inside its creation
/// transaction. Only agents who are active and may work the channel (admins, or granted access)
/// are chosen; an owner who may not is left out (the conversation stays unassigned).
pub(crate) async fn route_new(
    tx: &mut Tx<'_>,
    channel: &ChannelInstance,
    customer_id: i64,
    presence: &(dyn Fn(i64) -> Presence + Sync),
) -> StoreResult<Option<i64>> {
    let rule = assign_rule(channel);
    let candidates: Vec<i64> = match &rule {
        Assign::Nobody => return Ok(None),
        Assign::RoundRobin { agent_ids, team_ids } => {
            let mut agent_ids = agent_ids.clone();
            if !team_ids.is_empty() {
                let members: Vec<i64> = db!(
                    tx,
                    team_members::table
                        .filter(team_members::team_id.eq_any(team_ids))
                        .select(team_members::agent_id)
                        .load(tx)
                        .await
                )?;
                agent_ids.extend(members);
            }
            agent_ids
        }
        Assign::Owner => {
            let owner: Option<Option<i64>> = db!(
                tx,
                customers::table.find(customer_id).select(customers::owner_agent_id).first(tx).await.optional()
            )?;
            owner.flatten().into_iter().collect()
        }
    };
    if candidates.is_empty() {
        return Ok(None);
    }
    let rows: Vec<(i64, Role)> = db!(
        tx,
        agents::table
            .filter(agents::id.eq_any(&candidates))
            .filter(agents::active.eq(true))
            .select((agents::id, agents::role))
            .load(tx)
            .await
    )?;
    let granted: Vec<i64> = db!(
        tx,
        channel_access::table
            .filter(channel_access::channel_instance_id.eq(channel.id))
            .filter(channel_access::agent_id.eq_any(&candidates))
            .select(channel_access::agent_id)
            .load(tx)
            .await
    )?;
    let able: Vec<i64> =
        rows.into_iter().filter(|(id, role)| role.is_admin() || granted.contains(id)).map(|(id, _)| id).collect();
    match rule {
        Assign::Owner => Ok(able.into_iter().next()),
        _ if able.iter().any(|a| presence(*a) == Presence::Online) => {
            let turn = counters::next(tx, &format!("round_robin:{}", channel.id)).await?;
            Ok(round_robin(&able, presence, turn as u64))
        }
        _ => Ok(None),
    }
}
