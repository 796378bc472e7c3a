//! A node's hub: the one subscriber of the bus on this node, and the fan-out to its agent
//! sockets.
//!
//! - Stored events are deduplicated against a node-wide [`Cursor`], so an event that arrives
//!   both over the bus and through repair is delivered once.
//! - Repair: every second the hub reads the event log past its cursor's window and delivers
//!   what the bus dropped (events older than [`REPAIR_AFTER`], so normal bus traffic wins the race).
//! - Markers: presence and collision state, expired every second; changes become frames.
//! - Identities (issue #13): every second the hub reads the `identity_version` of the agents with
//!   sockets on this node and sends [`Frame::Access`] for each that changed, so their sockets
//!   re-check their credentials even when the bus dropped the announcement
//!   (`realtime::identity`). A new socket reports the version it read before its own first
//!   check ([`Hub::baseline`]); the hub keeps the lowest such version, so a change committed
//!   after any of its sockets looked is announced, and a new agent costs no burst of re-checks.
//!
//! The loop (bus events, repair, marker expiry, identity poll) runs until the node stops
//! ([`Shutdown`]).
//! - Channel changes (issue #14): a [`BusEvent::Channel`] invalidates the store's cached channel rows and is handed
//!   to this node's connector supervisors ([`Hub::channel_changes`]), which act on it (`cluster::supervisor`).
//!
//! Sockets receive frames over a bounded broadcast channel: a socket that falls behind by more
//! than its capacity is told it lagged and is dropped with its resume cursor, never slowing the
//! others down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};

use super::cursor::Cursor;
use super::markers::{Change, Markers, Who};
use crate::bus::{BusEvent, ChannelChange, ChannelChangeKind, ReadMoved, StoredEvent, TypingEvent};
use crate::shutdown::Shutdown;
use crate::store::{self, Store};
use crate::view::event as render;

/// Frames buffered per socket before it counts as too slow.
pub const SOCKET_BUFFER: usize = 4096;
/// How old an event must be before repair delivers it instead of waiting for the bus.
pub const REPAIR_AFTER: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_secs(1);
/// Channel changes buffered for a slow connector supervisor (one that lags reconciles from the database anyway).
const CHANNEL_CHANGES: usize = 256;

/// What the hub hands to every socket of this node.
#[derive(Debug, Clone)]
pub enum Frame {
    Stored(Arc<StoredEvent>),
    Presence {
        who: Who,
        status: &'static str,
    },
    Collision {
        conversation_id: i64,
        channel_id: i64,
        viewing: Vec<Who>,
        replying: Vec<Who>,
    },
    Typing(TypingEvent),
    /// Who the agent is may have changed: their sockets re-check their credentials.
    Access {
        agent_id: i64,
    },
    /// A notification for one agent (issue #17).
    Notification(Arc<crate::bus::NotificationEvent>),
    /// One agent marked notifications read.
    NotificationsRead {
        agent_id: i64,
        ids: Vec<i64>,
        all: bool,
        unread_count: i64,
    },
    /// An agent's read cursor rose: their sockets are told (issue #17 item 1).
    Read(ReadMoved),
}

struct State {
    cursor: Cursor,
    markers: Markers,
    /// Agents with sockets on this node: how many, and the identity version they are known to
    /// have acted on (`None` until the first poll or socket baseline after the first registered).
    local: HashMap<i64, (usize, Option<i64>)>,
}

/// Handle on the hub (cheap to clone).
#[derive(Clone)]
pub struct Hub {
    frames: broadcast::Sender<Arc<Frame>>,
    /// Channel changes from the bus, for this node's connector supervisors.
    channels: broadcast::Sender<ChannelChange>,
    state: Arc<Mutex<State>>,
}

/// What a new socket needs to start: the cursor it starts from, who is online, current collisions.
pub struct Snapshot {
    pub cursor: Cursor,
    pub presence: Vec<(Who, &'static str)>,
    pub collisions: Vec<Frame>,
}

impl Hub {
    /// Start the hub's loop, reading the bus from `incoming`. The cursor starts at the newest
    /// stored event, so nothing from before the node started is replayed to it. Runs until `shutdown`
    /// stops the node.
    pub async fn start(store: Store, incoming: mpsc::Receiver<BusEvent>, shutdown: &Shutdown) -> anyhow::Result<Self> {
        let start = store::events::max_id(&store).await?;
        let (frames, _) = broadcast::channel(SOCKET_BUFFER);
        let hub = Hub {
            frames,
            channels: broadcast::channel(CHANNEL_CHANGES).0,
            state: Arc::new(Mutex::new(State {
                cursor: Cursor::at(start),
                markers: Markers::default(),
                local: HashMap::new(),
            })),
        };
        shutdown.spawn(hub.clone().run(store, incoming));
        Ok(hub)
    }

    /// An agent's overall status on this node's picture: `online`, `away` or `offline`.
    pub fn presence(&self, agent_id: i64) -> &'static str {
        self.lock().markers.status(agent_id)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Frame>> {
        self.frames.subscribe()
    }

    /// Channel changes announced on the bus from now on (issue #14).
    pub fn channel_changes(&self) -> broadcast::Receiver<ChannelChange> {
        self.channels.subscribe()
    }

    /// A tracked socket of `agent_id` checked its credential after reading `version`: anything
    /// newer must reach it (see the module docs).
    pub fn baseline(&self, agent_id: i64, version: i64) {
        if let Some((_, seen)) = self.lock().local.get_mut(&agent_id) {
            *seen = Some(seen.map_or(version, |s| s.min(version)));
        }
    }

    /// Count a socket of `agent_id` on this node until the guard is dropped, so the hub watches
    /// the agent's identity version (see the module docs).
    pub fn track(&self, agent_id: i64) -> Tracked {
        self.lock().local.entry(agent_id).or_insert((0, None)).0 += 1;
        Tracked { hub: self.clone(), agent_id }
    }

    /// Take after [`Self::subscribe`]: anything delivered in between is then in both, and the
    /// socket's cursor drops the duplicate.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        let collisions =
            state.markers.marked_conversations().into_iter().map(|id| collision_frame(&state.markers, id, 0)).collect();
        Snapshot { cursor: state.cursor.clone(), presence: state.markers.everyone(), collisions }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock would be a bug in pure code; keep serving regardless.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(&self, frame: Frame) {
        // No receivers is fine (no sockets on this node).
        let _ = self.frames.send(Arc::new(frame));
    }

    fn announce(&self, changes: Vec<Change>) {
        for change in changes {
            let frame = match change {
                Change::Presence { who, status } => Frame::Presence { who, status },
                Change::Collision { conversation_id, channel_id } => {
                    collision_frame(&self.lock().markers, conversation_id, channel_id)
                }
            };
            self.send(frame);
        }
    }

    /// Deliver a stored event unless it was delivered already.
    fn deliver(&self, event: StoredEvent) {
        let fresh = self.lock().cursor.observe(event.id);
        if fresh {
            metrics::counter!("switchboard_events_delivered_total").increment(1);
            self.send(Frame::Stored(Arc::new(event)));
        }
    }

    async fn run(self, store: Store, mut incoming: mpsc::Receiver<BusEvent>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = incoming.recv() => {
                    let Some(event) = event else { return };
                    if matches!(event, BusEvent::Access { .. } | BusEvent::Channel(ChannelChange { what: ChannelChangeKind::Changed, .. })) {
                        // Some node changed an agent's access or a channel: cached principals and channels are reloaded.
                        store.changed();
                    }
                    self.handle(event);
                }
                _ = tick.tick() => {
                    let changes = self.lock().markers.expire(Instant::now());
                    self.announce(changes);
                    if let Err(e) = self.repair(&store).await {
                        tracing::warn!(error = %e, "event repair failed");
                    }
                    if let Err(e) = self.poll_identities(&store).await {
                        tracing::warn!(error = %e, "identity poll failed");
                    }
                }
            }
        }
    }

    fn handle(&self, event: BusEvent) {
        match event {
            BusEvent::Stored(e) => self.deliver(e),
            BusEvent::Marker(update) => {
                let changes = self.lock().markers.apply(&update, Instant::now());
                self.announce(changes);
            }
            BusEvent::Typing(t) => self.send(Frame::Typing(t)),
            BusEvent::Access { agent_id } => self.send(Frame::Access { agent_id }),
            BusEvent::Notification(n) => self.send(Frame::Notification(Arc::new(n))),
            BusEvent::NotificationsRead { agent_id, ids, all, unread_count } => {
                self.send(Frame::NotificationsRead { agent_id, ids, all, unread_count })
            }
            BusEvent::Read(read) => self.send(Frame::Read(read)),
            BusEvent::Channel(change) => {
                // No supervisor subscribed (yet) is fine: it reconciles from the database when it starts.
                let _ = self.channels.send(change);
            }
        }
    }

    /// Deliver logged events the bus lost.
    async fn repair(&self, store: &Store) -> anyhow::Result<()> {
        let cursor = self.lock().cursor.clone();
        let rows = store::events::since(store, cursor.replay_from(), &crate::domain::ChannelScope::All, 1000).await?;
        let settled = store::now() - chrono::Duration::from_std(REPAIR_AFTER)?;
        let missing: Vec<_> = rows.into_iter().filter(|r| cursor.is_missing(r.id) && r.created_at <= settled).collect();
        if missing.is_empty() {
            return Ok(());
        }
        metrics::counter!("switchboard_events_repaired_total").increment(missing.len() as u64);
        tracing::debug!(count = missing.len(), "repairing events the bus dropped");
        for event in render::from_log(store, missing).await? {
            self.deliver(event);
        }
        Ok(())
    }

    /// Tell the sockets of every local agent whose identity version changed to re-check; an agent
    /// row that is gone counts as changed. A first read only sets the baseline.
    async fn poll_identities(&self, store: &Store) -> anyhow::Result<()> {
        let ids: Vec<i64> = self.lock().local.keys().copied().collect();
        if ids.is_empty() {
            return Ok(());
        }
        let versions: HashMap<i64, i64> = store::agents::identity_versions(store, &ids).await?.into_iter().collect();
        let mut recheck = Vec::new();
        let mut changed = false;
        {
            let mut state = self.lock();
            for (agent_id, (_, seen)) in state.local.iter_mut() {
                match (*seen, versions.get(agent_id).copied()) {
                    (None, Some(v)) => *seen = Some(v),
                    (Some(s), Some(v)) if s == v => {}
                    (_, now) => {
                        changed = true;
                        *seen = now;
                        recheck.push(*agent_id);
                    }
                }
            }
        }
        if changed {
            // A change the bus did not bring: cached principals are reloaded too.
            tracing::debug!(agents = ?recheck, "identity change seen by polling");
            store.changed();
        }
        for agent_id in recheck {
            self.send(Frame::Access { agent_id });
        }
        Ok(())
    }

    /// Apply a marker change made on this node right away (it also goes over the bus for the
    /// other nodes; applying it twice is harmless).
    pub fn apply_local(&self, update: &crate::bus::MarkerUpdate) {
        let changes = self.lock().markers.apply(update, Instant::now());
        self.announce(changes);
    }

    /// Forget a socket's markers at once (clean close).
    pub fn drop_socket(&self, socket: &str) {
        let changes = self.lock().markers.drop_socket(socket);
        self.announce(changes);
    }
}

/// A socket counted by [`Hub::track`]; uncounted when dropped.
pub struct Tracked {
    hub: Hub,
    agent_id: i64,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut state = self.hub.lock();
        if let Some(entry) = state.local.get_mut(&self.agent_id) {
            entry.0 -= 1;
            if entry.0 == 0 {
                state.local.remove(&self.agent_id);
            }
        }
    }
}

/// The current lists of a conversation. `channel_id` is used when no marker is left to tell it
/// (the lists just became empty), so the "nobody" frame still reaches those who may see it.
fn collision_frame(markers: &Markers, conversation_id: i64, channel_id: i64) -> Frame {
    let (viewing, replying, known) = markers.collision(conversation_id);
    let channel_id = if viewing.is_empty() && replying.is_empty() { channel_id } else { known };
    Frame::Collision { conversation_id, channel_id, viewing, replying }
}

impl crate::domain::routing::PresenceSource for Hub {
    fn presence(&self, agent_id: i64) -> crate::domain::routing::Presence {
        use crate::domain::routing::Presence;
        match Hub::presence(self, agent_id) {
            "online" => Presence::Online,
            "away" => Presence::Away,
            _ => Presence::Offline,
        }
    }
}
