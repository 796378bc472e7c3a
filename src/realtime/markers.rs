//! Presence and collision state (RT-2, RT-3): who is online or away, who is viewing a
//! conversation, who is writing a reply. Pure state with explicit time, so expiry is testable
//! without waiting: every node keeps the same picture from the bus's marker updates, and each
//! marker dies by itself when its socket stops refreshing it (a closed tab, a dead node).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::bus::{MarkerKind, MarkerUpdate};

/// An agent as shown in presence and collision frames.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Who {
    pub agent_id: i64,
    pub name: String,
}

/// What a marker update changed, for the hub to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The agent's overall status changed: `online`, `away` or `offline`.
    Presence { who: Who, status: &'static str },
    /// The viewing/replying lists of a conversation changed.
    Collision { conversation_id: i64, channel_id: i64 },
}

#[derive(Debug, Clone)]
struct Entry {
    agent_id: i64,
    name: String,
    expires: Instant,
}

#[derive(Debug, Default)]
struct ConversationMarks {
    channel_id: i64,
    /// socket → entry
    viewing: HashMap<String, Entry>,
    replying: HashMap<String, Entry>,
}

#[derive(Debug, Default)]
pub struct Markers {
    /// socket → (entry, status)
    presence: HashMap<String, (Entry, String)>,
    conversations: HashMap<i64, ConversationMarks>,
}

impl Markers {
    /// The overall status of an agent: online if any socket is online, else away if any is
    /// connected, else offline.
    pub fn status(&self, agent_id: i64) -> &'static str {
        let mut any = false;
        for (entry, status) in self.presence.values() {
            if entry.agent_id == agent_id {
                if status == "online" {
                    return "online";
                }
                any = true;
            }
        }
        if any { "away" } else { "offline" }
    }

    /// Every agent with at least one socket, and their status.
    pub fn everyone(&self) -> Vec<(Who, &'static str)> {
        let mut agents: BTreeMap<i64, String> = BTreeMap::new();
        for (entry, _) in self.presence.values() {
            agents.insert(entry.agent_id, entry.name.clone());
        }
        agents.into_iter().map(|(agent_id, name)| (Who { agent_id, name }, self.status(agent_id))).collect()
    }

    /// Who is viewing and who is replying in a conversation (each agent once, by id), and its channel.
    pub fn collision(&self, conversation_id: i64) -> (Vec<Who>, Vec<Who>, i64) {
        let Some(c) = self.conversations.get(&conversation_id) else {
            return (vec![], vec![], 0);
        };
        let list = |m: &HashMap<String, Entry>| {
            let mut v: Vec<Who> = m.values().map(|e| Who { agent_id: e.agent_id, name: e.name.clone() }).collect();
            v.sort();
            v.dedup_by_key(|w| w.agent_id);
            v
        };
        (list(&c.viewing), list(&c.replying), c.channel_id)
    }

    /// Conversations with any marker, for a newly connected socket's first picture.
    pub fn marked_conversations(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.conversations.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub fn apply(&mut self, update: &MarkerUpdate, now: Instant) -> Vec<Change> {
        let entry = Entry {
            agent_id: update.agent_id,
            name: update.name.clone(),
            expires: now + Duration::from_millis(update.ttl_ms),
        };
        match &update.kind {
            MarkerKind::Presence { status } => {
                let before = self.status(update.agent_id);
                if update.on {
                    self.presence.insert(update.socket.clone(), (entry, status.clone()));
                } else {
                    self.presence.remove(&update.socket);
                }
                self.presence_change(update.agent_id, &update.name, before)
            }
            MarkerKind::Viewing { conversation_id, channel_id }
            | MarkerKind::Replying { conversation_id, channel_id } => {
                let replying = matches!(update.kind, MarkerKind::Replying { .. });
                let before = self.collision(*conversation_id);
                let marks = self.conversations.entry(*conversation_id).or_default();
                marks.channel_id = *channel_id;
                let map = if replying { &mut marks.replying } else { &mut marks.viewing };
                if update.on {
                    map.insert(update.socket.clone(), entry);
                } else {
                    map.remove(&update.socket);
                }
                if marks.viewing.is_empty() && marks.replying.is_empty() {
                    self.conversations.remove(conversation_id);
                }
                let after = self.collision(*conversation_id);
                if (before.0, before.1) != (after.0, after.1) {
                    vec![Change::Collision { conversation_id: *conversation_id, channel_id: *channel_id }]
                } else {
                    vec![]
                }
            }
        }
    }

    /// Forget every marker of a socket (it closed cleanly).
    pub fn drop_socket(&mut self, socket: &str) -> Vec<Change> {
        let mut changes = Vec::new();
        if let Some((entry, _)) = self.presence.get(socket).cloned() {
            let before = self.status(entry.agent_id);
            self.presence.remove(socket);
            changes.extend(self.presence_change(entry.agent_id, &entry.name, before));
        }
        let ids: Vec<i64> = self.conversations.keys().copied().collect();
        for id in ids {
            let before = self.collision(id);
            if let Some(m) = self.conversations.get_mut(&id) {
                m.viewing.remove(socket);
                m.replying.remove(socket);
                let channel_id = m.channel_id;
                if m.viewing.is_empty() && m.replying.is_empty() {
                    self.conversations.remove(&id);
                }
                let after = self.collision(id);
                if (before.0, before.1) != (after.0, after.1) {
                    changes.push(Change::Collision { conversation_id: id, channel_id });
                }
            }
        }
        changes
    }

    /// Drop every marker whose time is up.
    pub fn expire(&mut self, now: Instant) -> Vec<Change> {
        let mut changes = Vec::new();
        let expired: Vec<(String, i64, String)> = self
            .presence
            .iter()
            .filter(|(_, (e, _))| e.expires <= now)
            .map(|(s, (e, _))| (s.clone(), e.agent_id, e.name.clone()))
            .collect();
        for (socket, agent_id, name) in expired {
            let before = self.status(agent_id);
            self.presence.remove(&socket);
            changes.extend(self.presence_change(agent_id, &name, before));
        }
        let ids: Vec<i64> = self.conversations.keys().copied().collect();
        for id in ids {
            let before = self.collision(id);
            let Some(m) = self.conversations.get_mut(&id) else {
                continue;
            };
            m.viewing.retain(|_, e| e.expires > now);
            m.replying.retain(|_, e| e.expires > now);
            let channel_id = m.channel_id;
            if m.viewing.is_empty() && m.replying.is_empty() {
                self.conversations.remove(&id);
            }
            let after = self.collision(id);
            if (before.0, before.1) != (after.0, after.1) {
                changes.push(Change::Collision { conversation_id: id, channel_id });
            }
        }
        changes
    }

    fn presence_change(&self, agent_id: i64, name: &str, before: &'static str) -> Vec<Change> {
        let after = self.status(agent_id);
        if after == before {
            vec![]
        } else {
            vec![Change::Presence { who: Who { agent_id, name: name.to_owned() }, status: after }]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upd(socket: &str, agent: i64, kind: MarkerKind, on: bool) -> MarkerUpdate {
        MarkerUpdate { socket: socket.into(), agent_id: agent, name: format!("a{agent}"), kind, on, ttl_ms: 10_000 }
    }
    fn presence(status: &str) -> MarkerKind {
        MarkerKind::Presence { status: status.into() }
    }
    fn viewing(c: i64) -> MarkerKind {
        MarkerKind::Viewing { conversation_id: c, channel_id: 7 }
    }
    fn replying(c: i64) -> MarkerKind {
        MarkerKind::Replying { conversation_id: c, channel_id: 7 }
    }

    #[test]
    fn rt_2_presence_aggregates_sockets() {
        let t = Instant::now();
        let mut m = Markers::default();
        let c = m.apply(&upd("s1", 1, presence("online"), true), t);
        assert_eq!(c, vec![Change::Presence { who: Who { agent_id: 1, name: "a1".into() }, status: "online" }]);
        assert!(m.apply(&upd("s2", 1, presence("away"), true), t).is_empty(), "still online through s1");
        let c = m.apply(&upd("s1", 1, presence("online"), false), t);
        assert_eq!(c[0], Change::Presence { who: Who { agent_id: 1, name: "a1".into() }, status: "away" });
        let c = m.drop_socket("s2");
        assert_eq!(c[0], Change::Presence { who: Who { agent_id: 1, name: "a1".into() }, status: "offline" });
        assert_eq!(m.status(1), "offline");
    }

    #[test]
    fn rt_3_collision_lists_and_expiry() {
        let t = Instant::now();
        let mut m = Markers::default();
        assert_eq!(m.apply(&upd("s1", 1, viewing(5), true), t).len(), 1);
        assert!(m.apply(&upd("s1", 1, viewing(5), true), t).is_empty(), "a refresh changes nothing");
        m.apply(&upd("s2", 2, viewing(5), true), t);
        m.apply(&upd("s2", 2, replying(5), true), t);
        let (v, r, channel) = m.collision(5);
        assert_eq!(v.iter().map(|w| w.agent_id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(r.iter().map(|w| w.agent_id).collect::<Vec<_>>(), vec![2]);
        assert_eq!(channel, 7);
        // Agent 2's socket dies: nothing refreshes it, and after the TTL it is gone.
        m.apply(&upd("s1", 1, viewing(5), true), t + Duration::from_secs(8));
        let changes = m.expire(t + Duration::from_secs(11));
        assert_eq!(changes, vec![Change::Collision { conversation_id: 5, channel_id: 7 }]);
        let (v, r, _) = m.collision(5);
        assert_eq!(v.len(), 1);
        assert!(r.is_empty());
        let changes = m.expire(t + Duration::from_secs(30));
        assert_eq!(changes.len(), 1);
        assert!(m.marked_conversations().is_empty());
    }

    #[test]
    fn one_agent_in_two_tabs_is_listed_once() {
        let t = Instant::now();
        let mut m = Markers::default();
        m.apply(&upd("s1", 1, viewing(5), true), t);
        assert!(m.apply(&upd("s2", 1, viewing(5), true), t).is_empty());
        assert!(m.apply(&upd("s1", 1, viewing(5), false), t).is_empty(), "still viewing in the other tab");
        assert_eq!(m.apply(&upd("s2", 1, viewing(5), false), t).len(), 1);
    }
}
