//! The bot's WebSocket to Mattermost (`{server_url}/api/v4/websocket`, ws:// or wss://): connect through the
//! outgoing policy (`Policy::connect_tcp`, then TLS for wss on the project's rustls configuration), send the
//! authentication challenge, and read events. Resuming names the `connection_id` of the previous `hello` and the
//! next `sequence_number` expected; a server that cannot replay answers with a fresh `hello` (a new id), which the
//! connector answers with a re-sync over REST.
//!
//! [`parse`] turns a text frame into a [`Frame`] (pure, unit-tested): `hello`, `posted` — whose `post` and
//! `mentions` are JSON *strings* inside the JSON —, `typing`, replies to our requests, and anything else.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use super::mapping::Post;
use crate::channels::email::net::tls::{NetStream, client_config};
use crate::outbound::Policy;

/// Opening the connection (TCP, TLS, upgrade, challenge) may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A frame larger than this closes the connection.
const MAX_FRAME: usize = 4 * 1024 * 1024;

/// Why the socket could not be opened or broke.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("Mattermost refused the bot token on the WebSocket (401)")]
    Unauthorized,
    #[error("{0}")]
    Refused(String),
    #[error("the server URL cannot be used for a WebSocket")]
    BadUrl,
    #[error("cannot reach the Mattermost WebSocket: {0}")]
    Network(String),
    #[error("the Mattermost WebSocket closed")]
    Closed,
}

/// An event or reply from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Hello {
        connection_id: String,
        seq: Option<i64>,
    },
    Posted {
        post: Box<Post>,
        channel_type: String,
        mentions: Option<Vec<String>>,
        seq: Option<i64>,
    },
    Typing {
        user_id: String,
        channel_id: String,
        parent_id: String,
        seq: Option<i64>,
    },
    /// The answer to one of our requests (`seq_reply`); `ok` false for `FAIL`.
    Reply {
        seq_reply: i64,
        ok: bool,
    },
    /// Another event (its `seq` counts all the same).
    Other {
        event: String,
        seq: Option<i64>,
    },
}

impl Frame {
    /// The event's sequence number, for events that have one.
    pub fn seq(&self) -> Option<i64> {
        match self {
            Frame::Hello { seq, .. }
            | Frame::Posted { seq, .. }
            | Frame::Typing { seq, .. }
            | Frame::Other { seq, .. } => *seq,
            Frame::Reply { .. } => None,
        }
    }
}

/// Read one text frame; `None` when it is not JSON of a known shape.
pub fn parse(text: &str) -> Option<Frame> {
    let v: Value = serde_json::from_str(text).ok()?;
    if let Some(reply) = v.get("seq_reply").and_then(Value::as_i64) {
        return Some(Frame::Reply { seq_reply: reply, ok: v.get("status").and_then(Value::as_str) == Some("OK") });
    }
    let event = v.get("event")?.as_str()?.to_owned();
    let seq = v.get("seq").and_then(Value::as_i64);
    let data = v.get("data").cloned().unwrap_or(Value::Null);
    let text_of = |key: &str| data.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    Some(match event.as_str() {
        "hello" => Frame::Hello { connection_id: text_of("connection_id"), seq },
        "posted" => {
            // JSON-in-JSON; tolerate an object too.
            let post: Post = match data.get("post")? {
                Value::String(s) => serde_json::from_str(s).ok()?,
                other => serde_json::from_value(other.clone()).ok()?,
            };
            let mentions = match data.get("mentions") {
                Some(Value::String(s)) => serde_json::from_str::<Vec<String>>(s).ok(),
                Some(Value::Array(a)) => Some(a.iter().filter_map(|m| m.as_str().map(str::to_owned)).collect()),
                _ => None,
            };
            Frame::Posted { post: Box::new(post), channel_type: text_of("channel_type"), mentions, seq }
        }
        "typing" => Frame::Typing {
            user_id: text_of("user_id"),
            parent_id: text_of("parent_id"),
            channel_id: v
                .get("broadcast")
                .and_then(|b| b.get("channel_id"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            seq,
        },
        _ => Frame::Other { event, seq },
    })
}

/// The WebSocket URL of a server: `http(s)://host[:port][/path]` → `ws(s)://…/api/v4/websocket`, with the resume
/// parameters when given.
pub fn websocket_url(server_url: &str, resume: Option<(&str, i64)>) -> Result<url::Url, SocketError> {
    let mut url = url::Url::parse(server_url.trim_end_matches('/')).map_err(|_| SocketError::BadUrl)?;
    let scheme = match url.scheme() {
        "http" => "ws",
        "https" => "wss",
        _ => return Err(SocketError::BadUrl),
    };
    url.set_scheme(scheme).map_err(|_| SocketError::BadUrl)?;
    let path = format!("{}/api/v4/websocket", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    if let Some((connection_id, next)) = resume {
        url.query_pairs_mut()
            .append_pair("connection_id", connection_id)
            .append_pair("sequence_number", &next.to_string());
    }
    Ok(url)
}

/// An open, authenticated socket.
pub struct Session {
    ws: WebSocketStream<NetStream>,
}

impl Session {
    /// Connect, upgrade (with the Bearer header, as official clients do) and send the authentication challenge.
    pub async fn open(
        policy: &Policy,
        server_url: &str,
        token: &str,
        resume: Option<(&str, i64)>,
    ) -> Result<Session, SocketError> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::open_now(policy, server_url, token, resume))
            .await
            .map_err(|_| SocketError::Network("timed out".into()))?
    }

    async fn open_now(
        policy: &Policy,
        server_url: &str,
        token: &str,
        resume: Option<(&str, i64)>,
    ) -> Result<Session, SocketError> {
        let url = websocket_url(server_url, resume)?;
        let host = url.host_str().ok_or(SocketError::BadUrl)?.to_owned();
        let port = url.port_or_known_default().ok_or(SocketError::BadUrl)?;
        let tcp = policy.connect_tcp(&host, port).await.map_err(|e| {
            if e.is_refused() { SocketError::Refused(e.to_string()) } else { SocketError::Network(e.to_string()) }
        })?;
        let stream = if url.scheme() == "wss" {
            let bare = host.trim_start_matches('[').trim_end_matches(']').to_owned();
            let name = rustls::pki_types::ServerName::try_from(bare).map_err(|_| SocketError::BadUrl)?;
            let tls = tokio_rustls::TlsConnector::from(client_config(false))
                .connect(name, tcp)
                .await
                .map_err(|e| SocketError::Network(format!("TLS: {e}")))?;
            NetStream::Tls(Box::new(tls))
        } else {
            NetStream::Plain(tcp)
        };
        let mut request = url.as_str().into_client_request().map_err(|_| SocketError::BadUrl)?;
        let bearer = format!("Bearer {token}").parse().map_err(|_| SocketError::Unauthorized)?;
        request.headers_mut().insert("Authorization", bearer);
        let config = tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME))
            .max_frame_size(Some(MAX_FRAME));
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await.map_err(|e| match e {
                tungstenite::Error::Http(r) if r.status().as_u16() == 401 => SocketError::Unauthorized,
                tungstenite::Error::Http(r) => SocketError::Network(format!("the upgrade was answered {}", r.status())),
                _ => SocketError::Network("the WebSocket upgrade failed".into()),
            })?;
        let challenge = json!({"seq": 1, "action": "authentication_challenge", "data": {"token": token}});
        ws.send(Message::text(challenge.to_string())).await.map_err(|_| SocketError::Closed)?;
        Ok(Session { ws })
    }

    /// The next frame we understand; `Err(Closed)` when the socket ends.
    pub async fn next(&mut self) -> Result<Frame, SocketError> {
        loop {
            match self.ws.next().await {
                None => return Err(SocketError::Closed),
                Some(Err(_)) => return Err(SocketError::Closed),
                Some(Ok(Message::Text(text))) => {
                    if let Some(frame) = parse(&text) {
                        return Ok(frame);
                    }
                }
                Some(Ok(Message::Close(_))) => return Err(SocketError::Closed),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Close politely (best effort).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.close(None)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posted_carries_json_in_json() {
        let text = r#"{"event":"posted","data":{"channel_display_name":"@alice","channel_name":"b__a","channel_type":"D","post":"{\"id\":\"ghk\",\"create_at\":1576937676623,\"user_id\":\"kh9\",\"channel_id\":\"amt\",\"root_id\":\"\",\"message\":\"@helpbot my printer is on fire\",\"type\":\"\",\"props\":{},\"file_ids\":[],\"metadata\":{}}","sender_name":"@alice","team_id":"","set_online":true,"mentions":"[\"botid\"]"},"broadcast":{"omit_users":null,"user_id":"","channel_id":"amt","team_id":""},"seq":7}"#;
        let Some(Frame::Posted { post, channel_type, mentions, seq }) = parse(text) else { panic!() };
        assert_eq!((post.id.as_str(), post.create_at, post.channel_id.as_str()), ("ghk", 1576937676623, "amt"));
        assert_eq!(post.message, "@helpbot my printer is on fire");
        assert_eq!((channel_type.as_str(), mentions, seq), ("D", Some(vec!["botid".to_string()]), Some(7)));
    }

    #[test]
    fn hello_replies_typing_and_the_rest() {
        let hello = r#"{"event":"hello","data":{"server_version":"7.1.0","connection_id":"k3d"},"broadcast":{"omit_users":null,"user_id":"b","channel_id":"","team_id":""},"seq":0}"#;
        assert_eq!(parse(hello), Some(Frame::Hello { connection_id: "k3d".into(), seq: Some(0) }));
        assert_eq!(parse(r#"{"status":"OK","seq_reply":1}"#), Some(Frame::Reply { seq_reply: 1, ok: true }));
        assert_eq!(
            parse(r#"{"status":"FAIL","seq_reply":2,"error":{"id":"x","message":"y"}}"#),
            Some(Frame::Reply { seq_reply: 2, ok: false })
        );
        let typing =
            r#"{"event":"typing","data":{"parent_id":"","user_id":"u"},"broadcast":{"channel_id":"c"},"seq":3}"#;
        assert_eq!(
            parse(typing),
            Some(Frame::Typing { user_id: "u".into(), channel_id: "c".into(), parent_id: String::new(), seq: Some(3) })
        );
        assert_eq!(
            parse(r#"{"event":"status_change","data":{},"seq":4}"#),
            Some(Frame::Other { event: "status_change".into(), seq: Some(4) })
        );
        assert_eq!(parse("nonsense"), None);
    }

    #[test]
    fn websocket_urls() {
        assert_eq!(
            websocket_url("https://chat.example.com/", None).unwrap().as_str(),
            "wss://chat.example.com/api/v4/websocket"
        );
        assert_eq!(
            websocket_url("http://127.0.0.1:8065/mm", Some(("k3d", 8))).unwrap().as_str(),
            "ws://127.0.0.1:8065/mm/api/v4/websocket?connection_id=k3d&sequence_number=8"
        );
        assert!(websocket_url("ftp://x", None).is_err());
    }
}
