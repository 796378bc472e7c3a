//! A reusable client for the agent socket protocol (`docs/realtime.md`), used by the
//! integration tests and the fan-out benchmark. It keeps every frame it received and the latest
//! cursor, so a test can reconnect with `resume` exactly as the dashboard does.

#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every JSON frame received, in order.
    pub log: Vec<Value>,
    /// The cursor of the newest frame that carried one.
    pub cursor: Option<String>,
    /// The `hello` frame.
    pub hello: Value,
    /// The code of the server's close frame, once one arrived.
    pub close_code: Option<u16>,
}

impl WsClient {
    /// Connect as the holder of `token` (optionally resuming from `cursor` via the query string)
    /// and read the `hello` frame.
    pub async fn connect(base: &str, token: &str, cursor: Option<&str>) -> Self {
        Self::connect_with(base, ("Authorization", &format!("Bearer {token}")), cursor).await
    }

    /// Connect with the dashboard's session cookie (`sb_session=<value>`) instead of a token, from
    /// the dashboard's own origin like a browser (a cookie socket from elsewhere is refused).
    pub async fn connect_with_cookie(base: &str, cookie: &str) -> Self {
        Self::connect_with(base, ("Cookie", cookie), None).await
    }

    async fn connect_with(base: &str, (name, value): (&'static str, &str), cursor: Option<&str>) -> Self {
        let mut url = format!("{}/api/v1/ws", base.replacen("http", "ws", 1));
        if let Some(c) = cursor {
            url.push_str(&format!("?cursor={c}"));
        }
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert(name, value.parse().unwrap());
        if name == "Cookie" {
            req.headers_mut().insert("Origin", base.parse().unwrap());
        }
        let (stream, _) = tokio_tungstenite::connect_async(req).await.expect("socket connects");
        let mut c = Self { stream, log: Vec::new(), cursor: None, hello: Value::Null, close_code: None };
        let hello = c.next_within(Duration::from_secs(10)).await.expect("hello frame");
        assert_eq!(hello["type"], "hello", "{hello}");
        c.cursor = hello["cursor"].as_str().map(str::to_owned);
        c.hello = hello;
        c
    }

    /// Try to connect; the HTTP status of a refused upgrade.
    pub async fn refused(base: &str, token: Option<&str>) -> u16 {
        let url = format!("{}/api/v1/ws", base.replacen("http", "ws", 1));
        let mut req = url.into_client_request().unwrap();
        if let Some(t) = token {
            req.headers_mut().insert("Authorization", format!("Bearer {t}").parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("the upgrade was accepted"),
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream.send(Message::text(frame.to_string())).await.expect("frame sent");
    }

    /// The next JSON frame, or `None` after `wait` (or when the socket closed).
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()??.ok()?;
            match msg {
                Message::Text(text) => {
                    let v: Value = serde_json::from_str(&text).expect("frames are JSON");
                    if let Some(c) = v["cursor"].as_str() {
                        self.cursor = Some(c.to_owned());
                    }
                    self.log.push(v.clone());
                    return Some(v);
                }
                Message::Close(frame) => {
                    self.close_code = frame.map(|f| u16::from(f.code));
                    return None;
                }
                _ => continue,
            }
        }
    }

    /// Read frames until one matches `pred` (returned); panics after `wait` naming `what`.
    pub async fn wait_for(&mut self, what: &str, wait: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(v) if pred(&v) => return v,
                Some(_) => continue,
                None => panic!("no {what} within {wait:?}; received: {:#?}", self.log),
            }
        }
    }

    /// Everything that arrives within `wait` (for asserting something did NOT arrive).
    pub async fn drain(&mut self, wait: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(v) = self.next_within(wait).await {
            out.push(v);
        }
        out
    }

    /// Wait up to `wait` for the server to close the socket; its close code (`None`: still open,
    /// or closed without a code).
    pub async fn closed_within(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        while self.close_code.is_none() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || self.next_within(left).await.is_none() {
                break;
            }
        }
        self.close_code
    }

    pub async fn ping(&mut self) -> Value {
        self.send(json!({"type": "ping"})).await;
        self.wait_for("pong", Duration::from_secs(5), |v| v["type"] == "pong").await
    }

    /// Close cleanly.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// Drop the TCP connection without a close frame (a crashed tab, a cut network).
    pub fn kill(self) {
        drop(self);
    }
}

/// `message.created` frames in `frames`, as (conversation_id, seq).
pub fn messages(frames: &[Value]) -> Vec<(i64, i64)> {
    frames
        .iter()
        .filter(|f| f["type"] == "message.created")
        .map(|f| (f["conversation_id"].as_i64().unwrap(), f["seq"].as_i64().unwrap()))
        .collect()
}
