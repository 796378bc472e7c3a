//! Ends chats whose stored inactivity deadline passed while no timer was watching them: after a
//! restart, or when the node that armed the timer died (CORE-5, DESIGN invariant 3). Each end
//! goes through the conversation's actor, and the store's conditional update makes it happen
//! once whichever node's sweeper or timer gets there first. It runs until the node stops
//! ([`Shutdown`]).

use std::time::Duration;

use super::super::commit::Core;
use super::Registry;
use crate::domain::ChannelScope;
use crate::shutdown::Shutdown;
use crate::store::audit::Actor;
use crate::store::conversations::EndReason;
use std::sync::Arc;

const EVERY: Duration = Duration::from_secs(1);
const BATCH: i64 = 200;

pub fn start(rt: Core, registry: Arc<Registry>, shutdown: &Shutdown) {
    shutdown.spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let overdue = match crate::store::conversations::overdue_chats(&rt.store, BATCH).await {
                Ok(list) => list,
                Err(e) => {
                    tracing::warn!(error = %e, "sweeper could not read overdue chats");
                    continue;
                }
            };
            for (id, _channel) in overdue {
                let msg = super::conversation::End(None, EndReason::Inactivity, ChannelScope::All, Actor::System);
                match super::ask(&rt, &registry, id, msg).await {
                    Ok(Ok(Some(_))) => tracing::info!(conversation_id = id, "chat ended by inactivity (sweeper)"),
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => tracing::warn!(conversation_id = id, error = %e, "sweeper could not end a chat"),
                    Err(e) => tracing::warn!(conversation_id = id, error = %e, "conversation actor unavailable"),
                }
            }
        }
    });
}
