//! One agent socket (`GET /api/v1/ws`): the protocol in `docs/realtime.md`.
//!
//! The session forwards the hub's frames that the agent may see (channel access, DESIGN
//! invariant 4), keeps the agent's resume cursor, replays what a reconnecting client missed,
//! and holds the agent's markers (presence, viewing, replying), refreshing them on the bus while
//! the socket lives and clearing them when it closes. A socket that cannot keep up is closed
//! with its cursor so it can resume; it never slows the others.
//!
//! The socket follows who its agent is (issue #13, `realtime::identity`): it re-reads its
//! credential right after subscribing and whenever the hub says the agent's identity may have
//! changed, then narrows or widens its channel scope, or closes with
//! [`identity::CREDENTIALS_ENDED`] or [`identity::ROLE_CHANGED`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{CloseCode, CloseReason};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::Realtime;
use super::cursor::Cursor;
use super::hub::Frame;
use super::identity::{self, Standing, Verdict};
use super::markers::Who;
use crate::auth::Principal;
use crate::bus::{BusEvent, MarkerKind, MarkerUpdate, StoredEvent, TypingEvent};
use crate::store;
use crate::view::event as render;

/// How often a socket re-announces its markers, and how long they live without it.
pub const MARKER_REFRESH: Duration = Duration::from_secs(3);
pub const MARKER_TTL: Duration = Duration::from_secs(8);
/// A "replying" marker without a new `typing` frame lapses sooner.
pub const REPLYING_TTL: Duration = Duration::from_secs(6);
/// Server pings; a client silent for [`CLIENT_TIMEOUT`] is gone.
const PING_EVERY: Duration = Duration::from_secs(15);
/// Pings ride the marker refresh timer: every this many refreshes.
const PINGS_EVERY: u32 = (PING_EVERY.as_millis() / MARKER_REFRESH.as_millis()) as u32;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(40);
/// Most events one resume replays; further behind, the client is told to reload.
const MAX_REPLAY: usize = 5_000;
/// Close code for a socket dropped because it fell behind (it may resume).
pub const SLOW_CONSUMER: u16 = 4008;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientFrame {
    View { conversation_id: i64 },
    Unview { conversation_id: i64 },
    Typing { conversation_id: i64, state: TypingState },
    Presence { status: PresenceStatus },
    Resume { cursor: String },
    Ping,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum TypingState {
    Start,
    Stop,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum PresenceStatus {
    Online,
    Away,
}

impl PresenceStatus {
    fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Away => "away",
        }
    }
}

struct Session {
    rt: Realtime,
    principal: Principal,
    socket: String,
    ws: actix_ws::Session,
    /// What the client has (or had, per its resume) received.
    cursor: Cursor,
    /// What this connection sent; merged into a client's cursor on `resume`.
    sent: Cursor,
    status: PresenceStatus,
    /// conversation → channel, for conversations this socket views.
    viewing: HashMap<i64, i64>,
    /// conversation → (channel, until)
    replying: HashMap<i64, (i64, Instant)>,
    /// conversation → channel, learnt once per conversation.
    channels: HashMap<i64, i64>,
    /// When the session this socket was opened with expires (none for API tokens).
    expires: Option<Instant>,
}

/// Run a socket until it closes. `resume` is the `?cursor=` of the upgrade request, if any.
///
/// An idle socket's memory is mostly this future, so what only the start needs (the snapshot,
/// the hello, a resume) and what only a client frame needs (store reads) runs in boxed futures
/// that are freed once done, instead of widening the state every idle socket keeps.
pub async fn run(
    rt: Realtime,
    principal: Principal,
    ws: actix_ws::Session,
    stream: actix_ws::MessageStream,
    resume: Option<Cursor>,
) {
    let mut frames = rt.hub.subscribe();
    // Counted from here on, so the hub watches this agent's identity (issue #13).
    let _tracked = rt.hub.track(principal.agent_id);
    let socket = format!("{}-{}", rt.node_id, uuid::Uuid::new_v4().simple());
    metrics::gauge!("switchboard_sockets").increment(1);
    let mut s = Session {
        rt,
        principal,
        socket,
        ws,
        cursor: Cursor::at(0),
        sent: Cursor::at(0),
        status: PresenceStatus::Online,
        viewing: HashMap::new(),
        replying: HashMap::new(),
        channels: HashMap::new(),
        expires: None,
    };
    let open = Box::pin(s.greet(resume)).await;
    if open {
        s.serve(&mut frames, stream).await;
    }
    s.clear_markers();
    metrics::gauge!("switchboard_sockets").decrement(1);
}

impl Session {
    /// The hello (taken after subscribing: anything delivered in between is in both, and the
    /// cursor drops the duplicate), current collisions, this socket's markers, then the replay
    /// of `resume`. False when the socket closed.
    async fn greet(&mut self, resume: Option<Cursor>) -> bool {
        // A change committed between the upgrade's authentication and the subscription above
        // reached neither this socket nor the hub: read it now. The identity version is read
        // first and handed to the hub, so anything committed after it is announced to us.
        let agent_id = self.principal.agent_id;
        let version = match store::agents::identity_versions(&self.rt.store, &[agent_id]).await {
            Ok(v) => v.first().map(|(_, v)| *v),
            Err(e) => return self.unavailable(e).await,
        };
        if !self.recheck().await {
            return false;
        }
        if let Some(version) = version {
            self.rt.hub.baseline(agent_id, version);
        }
        let snapshot = self.rt.hub.snapshot();
        self.cursor = snapshot.cursor;
        let presence: Vec<_> = snapshot
            .presence
            .iter()
            .map(|(who, status)| json!({"agent_id": who.agent_id, "name": who.name, "status": status}))
            .collect();
        let hello = json!({
            "type": "hello",
            "agent_id": self.principal.agent_id,
            "socket": self.socket,
            "cursor": self.cursor.encode(),
            "presence": presence,
        });
        let mut open = self.send(hello.to_string()).await;
        for frame in &snapshot.collisions {
            if open && let Some(text) = self.render(frame) {
                open = self.send(text).await;
            }
        }
        self.publish_markers();
        if open && let Some(cursor) = resume {
            open = self.resume(cursor).await;
        }
        open
    }

    async fn send(&mut self, text: String) -> bool {
        self.ws.text(text).await.is_ok()
    }

    async fn serve(
        &mut self,
        frames: &mut tokio::sync::broadcast::Receiver<Arc<Frame>>,
        stream: actix_ws::MessageStream,
    ) {
        let mut stream = stream.max_frame_size(64 * 1024).aggregate_continuations().max_continuation_size(64 * 1024);
        // One timer per socket: markers every tick, a ping every PINGS_EVERY ticks.
        let mut tick = tokio::time::interval(MARKER_REFRESH);
        tick.reset();
        let mut until_ping = PINGS_EVERY;
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                incoming = stream.recv() => {
                    last_heard = Instant::now();
                    match incoming {
                        Some(Ok(actix_ws::AggregatedMessage::Text(text))) => {
                            if !Box::pin(self.client_frame(&text)).await {
                                return;
                            }
                        }
                        Some(Ok(actix_ws::AggregatedMessage::Ping(bytes))) => {
                            if self.ws.pong(&bytes).await.is_err() {
                                return;
                            }
                        }
                        Some(Ok(actix_ws::AggregatedMessage::Pong(_))) => {}
                        Some(Ok(actix_ws::AggregatedMessage::Binary(_))) => {
                            if !self.error("bad_frame", "frames are JSON text").await {
                                return;
                            }
                        }
                        Some(Ok(actix_ws::AggregatedMessage::Close(_))) | None | Some(Err(_)) => return,
                    }
                }
                frame = frames.recv() => match frame {
                    Ok(frame) if matches!(&*frame, Frame::Access { agent_id } if *agent_id == self.principal.agent_id) => {
                        if !Box::pin(self.recheck()).await {
                            return;
                        }
                    }
                    Ok(frame) => {
                        if let Some(text) = self.render(&frame)
                            && !self.send(text).await
                        {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        metrics::counter!("switchboard_sockets_dropped_slow_total").increment(1);
                        tracing::info!(agent_id = self.principal.agent_id, missed, "dropping a slow socket");
                        let bye = json!({"type": "error", "error": "slow_consumer",
                            "message": "this connection fell behind; reconnect and resume with the cursor",
                            "cursor": self.cursor.encode()});
                        let _ = self.ws.text(bye.to_string()).await;
                        let ws = self.ws.clone();
                        let _ = ws.close(Some(CloseReason { code: CloseCode::Other(SLOW_CONSUMER), description: Some("slow consumer".into()) })).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = self.rt.shutdown.connections_closing() => {
                    // The node is stopping: the client reconnects (to another node) and resumes.
                    let ws = self.ws.clone();
                    let _ = ws.close(Some(CloseReason { code: CloseCode::Restart, description: Some("server stopping".into()) })).await;
                    return;
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let lapsed: Vec<i64> = self.replying.iter().filter(|(_, (_, until))| *until <= now).map(|(c, _)| *c).collect();
                    for c in lapsed {
                        self.set_replying(c, false);
                    }
                    if self.expires.is_some_and(|at| at <= now) && !Box::pin(self.recheck()).await {
                        return;
                    }
                    self.publish_markers();
                    until_ping -= 1;
                    if until_ping == 0 {
                        until_ping = PINGS_EVERY;
                        if last_heard.elapsed() > CLIENT_TIMEOUT {
                            let ws = self.ws.clone();
                            let _ = ws.close(Some(CloseReason { code: CloseCode::Away, description: Some("no answer to pings".into()) })).await;
                            return;
                        }
                        if self.ws.ping(b"").await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Render a hub frame for this agent, or `None` if it is not theirs to see.
    fn render(&mut self, frame: &Frame) -> Option<String> {
        match frame {
            Frame::Stored(e) => {
                if !self.principal.scope.allows(e.channel_id) || !self.cursor.observe(e.id) {
                    return None;
                }
                self.sent.observe(e.id);
                Some(self.event_text(e))
            }
            Frame::Presence { who, status } => Some(
                json!({"type": "presence", "agent_id": who.agent_id, "name": who.name, "status": status}).to_string(),
            ),
            Frame::Collision { conversation_id, channel_id, viewing, replying } => {
                if !self.principal.scope.allows(*channel_id) {
                    return None;
                }
                let list = |v: &Vec<Who>| {
                    v.iter().map(|w| json!({"agent_id": w.agent_id, "name": w.name})).collect::<Vec<_>>()
                };
                Some(json!({"type": "collision", "conversation_id": conversation_id, "viewing": list(viewing), "replying": list(replying)}).to_string())
            }
            Frame::Typing(t) => {
                if !self.principal.scope.allows(t.channel_id) || t.agent_id == Some(self.principal.agent_id) {
                    return None;
                }
                let who = match t.agent_id {
                    Some(id) => json!({"agent_id": id, "name": t.name}),
                    None => json!("customer"),
                };
                Some(
                    json!({"type": "typing", "conversation_id": t.conversation_id, "who": who, "state": t.state})
                        .to_string(),
                )
            }
            Frame::Access { .. } => None,
            // Only the agent's own, and only while they may see its conversation.
            Frame::Notification(n) => {
                (n.agent_id == self.principal.agent_id && self.principal.scope.allows(n.channel_id)).then(|| {
                    format!(r#"{{"type":"notification","unread_count":{},"notification":{}}}"#, n.unread_count, n.body)
                })
            }
            Frame::NotificationsRead { agent_id, ids, all, unread_count } => (*agent_id == self.principal.agent_id)
                .then(|| {
                    json!({"type": "notifications.read", "ids": ids, "all": all, "unread_count": unread_count})
                        .to_string()
                }),
            // Only the agent's own sockets, and only while the conversation is in their scope.
            Frame::Read(r) => (r.agent_id == self.principal.agent_id && self.principal.scope.allows(r.channel_id))
                .then(|| {
                    json!({"type": "read", "conversation_id": r.conversation_id, "last_read_seq": r.last_read_seq,
                        "unread": r.unread})
                    .to_string()
                }),
        }
    }

    fn event_text(&self, e: &StoredEvent) -> String {
        let seq = e.seq.map(|s| s.to_string()).unwrap_or_else(|| "null".into());
        format!(
            r#"{{"type":"{}","event_id":{},"conversation_id":{},"seq":{},"cursor":"{}",{}}}"#,
            e.kind,
            e.id,
            e.conversation_id,
            seq,
            self.cursor.encode(),
            e.body
        )
    }

    /// Unknown standing is no standing: close with 1011, so the client reconnects and its upgrade
    /// authenticates afresh. Always false.
    async fn unavailable(&mut self, e: store::StoreError) -> bool {
        tracing::warn!(error = %e, agent_id = self.principal.agent_id, "could not re-check credentials");
        let _ = self.error("unavailable", "could not check your credentials; reconnect").await;
        let ws = self.ws.clone();
        let _ = ws.close(Some(CloseReason { code: CloseCode::Error, description: Some("unavailable".into()) })).await;
        false
    }

    /// Re-read this socket's credential and act on it (issue #13); false when the socket closed.
    async fn recheck(&mut self) -> bool {
        let now = match identity::standing(&self.rt.store, &self.principal.credential).await {
            Ok(now) => now,
            Err(e) => return self.unavailable(e).await,
        };
        if let Standing::Valid { name, expires_at, .. } = &now {
            self.principal.name.clone_from(name);
            self.expires = expires_at.map(|at| Instant::now() + (at - store::now()).to_std().unwrap_or(Duration::ZERO));
        }
        match identity::judge(&self.principal, &now) {
            Verdict::Keep => true,
            Verdict::Rescope(scope) => {
                self.viewing.retain(|_, ch| scope.allows(*ch));
                self.replying.retain(|_, (ch, _)| scope.allows(*ch));
                self.channels.retain(|_, ch| scope.allows(*ch));
                self.principal.scope = scope;
                true
            }
            Verdict::Close { code, error, message } => {
                tracing::info!(agent_id = self.principal.agent_id, code, reason = error, "closing a socket");
                let _ = self.error(error, message).await;
                let ws = self.ws.clone();
                let _ =
                    ws.close(Some(CloseReason { code: CloseCode::Other(code), description: Some(error.into()) })).await;
                false
            }
        }
    }

    /// Handle one client frame; false when the socket must close.
    async fn client_frame(&mut self, text: &str) -> bool {
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => return self.error("bad_frame", &e.to_string()).await,
        };
        match frame {
            ClientFrame::Ping => self.send(json!({"type": "pong"}).to_string()).await,
            ClientFrame::Presence { status } => {
                self.status = status;
                self.publish(MarkerKind::Presence { status: status.as_str().into() }, true, MARKER_TTL);
                true
            }
            ClientFrame::View { conversation_id } => match self.channel_of(conversation_id).await {
                Some(channel_id) => {
                    self.viewing.insert(conversation_id, channel_id);
                    self.publish(MarkerKind::Viewing { conversation_id, channel_id }, true, MARKER_TTL);
                    true
                }
                None => self.error("not_found", "conversation not found").await,
            },
            ClientFrame::Unview { conversation_id } => {
                if let Some(channel_id) = self.viewing.remove(&conversation_id) {
                    self.publish(MarkerKind::Viewing { conversation_id, channel_id }, false, MARKER_TTL);
                }
                self.set_replying(conversation_id, false);
                true
            }
            ClientFrame::Typing { conversation_id, state } => match self.channel_of(conversation_id).await {
                Some(channel_id) => {
                    let on = state == TypingState::Start;
                    if on {
                        self.replying.insert(conversation_id, (channel_id, Instant::now() + REPLYING_TTL));
                        self.publish(MarkerKind::Replying { conversation_id, channel_id }, true, REPLYING_TTL);
                    } else {
                        self.set_replying(conversation_id, false);
                    }
                    self.rt.bus.publish(BusEvent::Typing(TypingEvent {
                        conversation_id,
                        channel_id,
                        agent_id: Some(self.principal.agent_id),
                        name: self.principal.name.clone(),
                        state: if on { "start" } else { "stop" }.into(),
                    }));
                    true
                }
                None => self.error("not_found", "conversation not found").await,
            },
            ClientFrame::Resume { cursor } => match Cursor::decode(&cursor) {
                Ok(mut c) => {
                    c.merge(&self.sent);
                    self.resume(c).await
                }
                Err(_) => self.error("bad_cursor", "malformed cursor; reload and start again").await,
            },
        }
    }

    /// Replay from the event log everything `from` has not seen, then continue live.
    async fn resume(&mut self, from: Cursor) -> bool {
        self.cursor = from;
        let mut replayed = 0usize;
        loop {
            let rows = match store::events::since(&self.rt.store, self.cursor.replay_from(), &self.principal.scope, 500)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "replay failed");
                    return self.error("unavailable", "could not read missed events; reconnect").await;
                }
            };
            let last = rows.last().map(|r| r.id);
            let missing: Vec<_> = rows.into_iter().filter(|r| self.cursor.is_missing(r.id)).collect();
            if missing.is_empty() && last.is_none_or(|l| l <= self.cursor.max()) {
                break;
            }
            if replayed + missing.len() > MAX_REPLAY {
                let text = json!({"type": "resync", "message": "too far behind to replay; reload", "cursor": self.rt.hub.snapshot().cursor.encode()});
                self.cursor = self.rt.hub.snapshot().cursor;
                return self.send(text.to_string()).await;
            }
            let events = match render::from_log(&self.rt.store, missing).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "replay render failed");
                    return self.error("unavailable", "could not read missed events; reconnect").await;
                }
            };
            let progressed = !events.is_empty();
            for e in events {
                if self.cursor.observe(e.id) {
                    self.sent.observe(e.id);
                    replayed += 1;
                    let text = self.event_text(&e);
                    if !self.send(text).await {
                        return false;
                    }
                }
            }
            if !progressed {
                // Everything left in this page was already seen; move past it.
                match last {
                    Some(l) if l > self.cursor.max() => {
                        self.cursor.observe(l);
                    }
                    _ => break,
                }
            }
        }
        self.send(json!({"type": "resumed", "replayed": replayed, "cursor": self.cursor.encode()}).to_string()).await
    }

    async fn channel_of(&mut self, conversation_id: i64) -> Option<i64> {
        if let Some(ch) = self.channels.get(&conversation_id) {
            return Some(*ch);
        }
        let row = store::conversations::get(&self.rt.store, conversation_id, &self.principal.scope).await.ok()?;
        let ch = row.conversation.channel_instance_id;
        self.channels.insert(conversation_id, ch);
        Some(ch)
    }

    async fn error(&mut self, code: &str, message: &str) -> bool {
        self.send(json!({"type": "error", "error": code, "message": message}).to_string()).await
    }

    fn set_replying(&mut self, conversation_id: i64, on: bool) {
        if !on && let Some((channel_id, _)) = self.replying.remove(&conversation_id) {
            self.publish(MarkerKind::Replying { conversation_id, channel_id }, false, REPLYING_TTL);
        }
    }

    fn publish(&self, kind: MarkerKind, on: bool, ttl: Duration) {
        self.rt.bus.publish(BusEvent::Marker(MarkerUpdate {
            socket: self.socket.clone(),
            agent_id: self.principal.agent_id,
            name: self.principal.name.clone(),
            kind,
            on,
            ttl_ms: ttl.as_millis() as u64,
        }));
    }

    fn publish_markers(&self) {
        self.publish(MarkerKind::Presence { status: self.status.as_str().into() }, true, MARKER_TTL);
        for (&conversation_id, &channel_id) in &self.viewing {
            self.publish(MarkerKind::Viewing { conversation_id, channel_id }, true, MARKER_TTL);
        }
        for (&conversation_id, &(channel_id, _)) in &self.replying {
            self.publish(MarkerKind::Replying { conversation_id, channel_id }, true, REPLYING_TTL);
        }
    }

    fn clear_markers(&self) {
        for (&conversation_id, &(channel_id, _)) in &self.replying {
            self.publish(MarkerKind::Replying { conversation_id, channel_id }, false, REPLYING_TTL);
        }
        for (&conversation_id, &channel_id) in &self.viewing {
            self.publish(MarkerKind::Viewing { conversation_id, channel_id }, false, MARKER_TTL);
        }
        self.publish(MarkerKind::Presence { status: self.status.as_str().into() }, false, MARKER_TTL);
    }
}
