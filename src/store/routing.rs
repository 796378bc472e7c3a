//! Auto-assignment of a new conversation inside its creation transaction (CC-12, seed 004): the
//! channel's rule ([`super::channels::Assign`]) read with what the transaction sees — team
//! members, who may work the channel, the customer's owner, the channel's round-robin turn — and
//! the node's presence picture handed in. So a new conversation is born assigned: one commit, one
//! `conversation.created` event. The pick itself is `domain::routing::round_robin`.

/// Decide the assignee of a new conversation of `$channel` for `$customer_id` inside a
/// transaction; evaluates to `Option<i64>`. `$presence` is a `Fn(i64) -> Presence`.
/// Only agents who are active and may work the channel (admins, or granted access) are chosen;
/// an owner who may not is left out (the conversation stays unassigned).
macro_rules! route_new {
    ($conn:ident, $channel:expr, $customer_id:expr, $presence:expr) => {{
        #[allow(unused_imports)]
        use $crate::domain::routing::{Presence, round_robin};
        #[allow(unused_imports)]
        use $crate::store::channels::{Assign, assign_rule};
        #[allow(unused_imports)]
        use $crate::store::schema::{agents, channel_access, customers, team_members};
        let channel: &$crate::store::models::ChannelInstance = $channel;
        let eligible = |rows: Vec<(i64, String)>, granted: Vec<i64>| -> Vec<i64> {
            rows.into_iter()
                .filter(|(id, role)| {
                    role.parse::<$crate::domain::Role>().is_ok_and(|r| r.is_admin()) || granted.contains(id)
                })
                .map(|(id, _)| id)
                .collect()
        };
        let rule = assign_rule(channel);
        let candidates: Vec<i64> = match &rule {
            Assign::Nobody => Vec::new(),
            Assign::RoundRobin { agent_ids, team_ids } => {
                let mut agent_ids = agent_ids.clone();
                if !team_ids.is_empty() {
                    let members: Vec<i64> = team_members::table
                        .filter(team_members::team_id.eq_any(team_ids))
                        .select(team_members::agent_id)
                        .load($conn)
                        .await?;
                    agent_ids.extend(members);
                }
                agent_ids
            }
            Assign::Owner => customers::table
                .find($customer_id)
                .select(customers::owner_agent_id)
                .first::<Option<i64>>($conn)
                .await
                .optional()?
                .flatten()
                .into_iter()
                .collect(),
        };
        if candidates.is_empty() {
            None
        } else {
            let rows: Vec<(i64, String)> = agents::table
                .filter(agents::id.eq_any(&candidates))
                .filter(agents::active.eq(true))
                .select((agents::id, agents::role))
                .load($conn)
                .await?;
            let granted: Vec<i64> = channel_access::table
                .filter(channel_access::channel_instance_id.eq(channel.id))
                .filter(channel_access::agent_id.eq_any(&candidates))
                .select(channel_access::agent_id)
                .load($conn)
                .await?;
            let able = eligible(rows, granted);
            match rule {
                Assign::Owner => able.iter().next().copied(),
                _ => {
                    let presence = $presence;
                    if able.iter().any(|a| presence(*a) == Presence::Online) {
                        let turn = $crate::store::counters::next_in!($conn, &format!("round_robin:{}", channel.id));
                        round_robin(&able, presence, turn as u64)
                    } else {
                        None
                    }
                }
            }
        }
    }};
}
pub(crate) use route_new;
