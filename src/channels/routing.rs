//! Routing of new conversations per channel (CC-12): default properties (applied by the store
//! when it creates the conversation, `store::channels::Defaults`) and auto-assignment, done here
//! right after creation: to nobody, round-robin to chosen agents and teams who are online, or to
//! the customer's owner — who, when offline, is also sent an email (queued in the outbox).

use serde::{Deserialize, Serialize};

use crate::domain::ChannelScope;
use crate::domain::routing::{Presence, round_robin};
use crate::realtime::Realtime;
use crate::store::audit::Actor;
use crate::store::conversations::ConversationPatch;
use crate::store::{self, StoreResult};

/// The `routing` object of a channel's settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoutingSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub assign: Assign,
}

/// Who new conversations go to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Assign {
    /// Unassigned; any agent takes it.
    #[default]
    Nobody,
    /// Round-robin among these agents and the members of these teams who are online.
    RoundRobin {
        #[serde(default)]
        agent_ids: Vec<i64>,
        #[serde(default)]
        team_ids: Vec<i64>,
    },
    /// The customer's owner (`owner_agent_id`); an offline owner is also emailed.
    Owner,
}

/// Outbox kind of the "a conversation of your customer arrived while you were away" email.
pub const OWNER_OFFLINE_EMAIL: &str = "email.owner_offline";

fn presence(rt: &Realtime, agent_id: i64) -> Presence {
    match rt.hub.presence(agent_id) {
        "online" => Presence::Online,
        "away" => Presence::Away,
        _ => Presence::Offline,
    }
}

/// Assign a newly created conversation by its channel's rule. Returns the assignee, if any.
pub async fn assign(
    rt: &Realtime,
    conversation_id: i64,
    channel_id: i64,
    customer_id: i64,
) -> StoreResult<Option<i64>> {
    let channel = store::channels::get_cached(&rt.store, channel_id, &ChannelScope::All).await?;
    let settings: serde_json::Value = serde_json::from_str(&channel.settings).unwrap_or_default();
    let rule: Assign = serde_json::from_value(settings["routing"]["assign"].clone()).unwrap_or_default();
    let pick = match rule {
        Assign::Nobody => return Ok(None),
        Assign::RoundRobin { agent_ids, team_ids } => {
            let mut candidates = agent_ids;
            for team in team_ids {
                if let Ok((_, members)) = store::teams::get(&rt.store, team).await {
                    candidates.extend(members);
                }
            }
            let eligible = store::agents::with_channel_access(&rt.store, &candidates, channel_id).await?;
            let turn = store::counters::next(&rt.store, &format!("round_robin:{channel_id}")).await?;
            round_robin(&eligible, |a| presence(rt, a), turn as u64)
        }
        Assign::Owner => {
            let customer = store::customers::get(&rt.store, customer_id, &ChannelScope::All).await?;
            let Some(owner) = customer.customer.owner_agent_id else {
                return Ok(None);
            };
            if presence(rt, owner) != Presence::Online {
                store::outbox::enqueue_notification(
                    &rt.store,
                    channel_id,
                    conversation_id,
                    OWNER_OFFLINE_EMAIL,
                    serde_json::json!({"agent_id": owner, "conversation_id": conversation_id}),
                )
                .await?;
            }
            Some(owner)
        }
    };
    let Some(agent) = pick else { return Ok(None) };
    let patch = ConversationPatch { assignee_id: Some(Some(agent)), ..Default::default() };
    match rt.update(conversation_id, patch, &ChannelScope::All, Actor::System).await {
        Ok(_) => Ok(Some(agent)),
        // The owner may lack access to this channel: leave it unassigned rather than fail the message.
        Err(store::StoreError::Rule(reason)) => {
            tracing::info!(conversation_id, agent, %reason, "auto-assignment skipped");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_shapes() {
        let s: RoutingSettings = serde_json::from_str(
            r#"{"team_id":2,"tags":["vip"],"assign":{"mode":"round_robin","agent_ids":[1,2],"team_ids":[3]}}"#,
        )
        .unwrap();
        assert_eq!(s.assign, Assign::RoundRobin { agent_ids: vec![1, 2], team_ids: vec![3] });
        assert_eq!(serde_json::from_str::<RoutingSettings>("{}").unwrap().assign, Assign::Nobody);
        assert_eq!(
            serde_json::from_str::<RoutingSettings>(r#"{"assign":{"mode":"owner"}}"#).unwrap().assign,
            Assign::Owner
        );
        assert!(serde_json::from_str::<RoutingSettings>(r#"{"assign":{"mode":"random"}}"#).is_err());
        assert!(serde_json::from_str::<RoutingSettings>(r#"{"colour":"red"}"#).is_err());
    }
}
