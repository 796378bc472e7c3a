//! The bus: how a node tells every node — itself included — what happened.
//!
//! One trait, two implementations: [`local::LocalBus`] (one node, in-process) and
//! [`redis::RedisBus`] (many nodes, Redis pub/sub). Publishing never blocks the caller. The bus
//! may drop messages (Redis pub/sub does, under pressure or across a reconnect): stored events
//! are repaired from the event log by each node's hub, markers are refreshed every few seconds,
//! typing is best-effort by nature.
//!
//! These are wire types (JSON on Redis): keep field names stable across versions of the binary
//! that may run side by side during a rolling upgrade.

pub mod local;
pub mod redis;

use serde::{Deserialize, Serialize};

/// Something a node publishes for every node's agent sockets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum BusEvent {
    /// A change recorded in the event log.
    Stored(StoredEvent),
    /// Presence, viewing or replying marker set or cleared by one socket.
    Marker(MarkerUpdate),
    /// Someone is typing in a conversation.
    Typing(TypingEvent),
    /// Who an agent is changed (role, active flag, password, channel access, a session or API
    /// token ended): their sockets re-check their credentials (`realtime::identity`).
    Access { agent_id: i64 },
    /// A channel's configuration was committed (created, edited, enabled, disabled, deleted), or an admin asked for
    /// a mailbox check now (issue #14): every node drops its cached channel rows and its connector supervisors
    /// reconcile from the database (`cluster::supervisor`), which it also does every second on its own.
    Channel(ChannelChange),
    /// A notification was written for an agent (issue #17): their sockets on every node get a
    /// `notification` frame. Dropped ones are read back by the dashboard when it (re)connects.
    Notification(NotificationEvent),
    /// An agent marked notifications read (`ids`, or `all`): their other sockets update the bell.
    NotificationsRead { agent_id: i64, ids: Vec<i64>, all: bool, unread_count: i64 },
    /// An agent's read cursor on a conversation rose (issue #17 item 1): their sockets, on every node, are told.
    Read(ReadMoved),
}

/// A notification for one agent, rendered once (`view::notification`) by the node that wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationEvent {
    pub agent_id: i64,
    /// The channel of its conversation: a socket whose scope lost the channel drops it.
    pub channel_id: i64,
    /// The agent's unread count after it.
    pub unread_count: i64,
    /// The JSON object of the notification.
    pub body: String,
}

/// An agent's read cursor after it rose (`store::reads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMoved {
    pub agent_id: i64,
    pub conversation_id: i64,
    pub channel_id: i64,
    pub last_read_seq: i64,
    /// Customer messages after the cursor.
    pub unread: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelChange {
    pub channel_id: i64,
    pub what: ChannelChangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelChangeKind {
    /// Its row changed (or is gone): reload it.
    Changed,
    /// "Check now" (EM-4): the node polling the mailbox checks it at once.
    CheckNow,
}

/// A change from the event log, with its JSON already rendered once by the node that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: i64,
    pub conversation_id: i64,
    pub channel_id: i64,
    /// `conversation.created`, `message.created`, `conversation.updated`, `conversation.ended`.
    pub kind: String,
    pub seq: Option<i64>,
    /// JSON object members (without braces), e.g. `"conversation":{…},"message":{…}`.
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum MarkerKind {
    Presence { status: String },
    Viewing { conversation_id: i64, channel_id: i64 },
    Replying { conversation_id: i64, channel_id: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkerUpdate {
    /// Globally unique id of the socket holding the marker.
    pub socket: String,
    pub agent_id: i64,
    pub name: String,
    pub kind: MarkerKind,
    /// Set (true) or clear (false).
    pub on: bool,
    /// How long the marker lives unless refreshed (milliseconds, counted by each receiver).
    pub ttl_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingEvent {
    pub conversation_id: i64,
    pub channel_id: i64,
    /// `None`: the customer.
    pub agent_id: Option<i64>,
    pub name: String,
    /// `start` or `stop`.
    pub state: String,
}

/// Delivers [`BusEvent`]s to every node's hub.
pub trait Bus: Send + Sync + 'static {
    /// Hand an event to the bus. Never blocks; may drop under pressure (see module docs).
    fn publish(&self, event: BusEvent);
    /// Name for logs and metrics: `local` or `redis`.
    fn kind(&self) -> &'static str;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_tagged_json() {
        let e = BusEvent::Marker(MarkerUpdate {
            socket: "n1-7".into(),
            agent_id: 3,
            name: "Ann".into(),
            kind: MarkerKind::Viewing { conversation_id: 9, channel_id: 2 },
            on: true,
            ttl_ms: 15_000,
        });
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.starts_with(r#"{"t":"marker","socket":"n1-7""#), "{text}");
        assert!(text.contains(r#""kind":{"k":"viewing","conversation_id":9,"channel_id":2}"#), "{text}");
        assert_eq!(serde_json::from_str::<BusEvent>(&text).unwrap(), e);
        assert_eq!(serde_json::to_string(&BusEvent::Access { agent_id: 4 }).unwrap(), r#"{"t":"access","agent_id":4}"#);
        let c = BusEvent::Channel(ChannelChange { channel_id: 5, what: ChannelChangeKind::CheckNow });
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(text, r#"{"t":"channel","channel_id":5,"what":"check_now"}"#);
        assert_eq!(serde_json::from_str::<BusEvent>(&text).unwrap(), c);
        let r =
            BusEvent::Read(ReadMoved { agent_id: 1, conversation_id: 2, channel_id: 3, last_read_seq: 4, unread: 0 });
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"t":"read","agent_id":1,"conversation_id":2,"channel_id":3,"last_read_seq":4,"unread":0}"#
        );
        assert_eq!(serde_json::from_str::<BusEvent>(&text).unwrap(), r);
    }
}
