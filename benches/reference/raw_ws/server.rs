//! The raw reference broadcaster for the fan-out benchmark: the ceiling of "one trigger → the same
//! text frame to every socket" with tokio + tokio-tungstenite and nothing else (no auth, no
//! persistence, no per-socket filtering or rendering).
//!
//! Compiled into the `fanout` benchmark binary, which starts itself again with
//! `SWITCHBOARD_BENCH_ROLE=raw-ws` to run this as a separate process:
//!
//! - any WebSocket upgrade subscribes the socket; it gets a `hello` text frame once subscribed;
//! - `POST /trigger` (HTTP/1.1 keep-alive) with a body: that body, as one shared text frame, to
//!   every subscribed socket (on every node when `RAW_REDIS_URL` is set: the trigger is published
//!   on Redis channel `RAW_REDIS_CHANNEL`, and each node sends what it receives from there);
//! - prints `listening on 127.0.0.1:PORT`; exits when its standard input closes (the benchmark
//!   process is gone) or after `RAW_MAX_SECS` (default 3600).
//!
//! Two runtime threads, like the two HTTP workers Switchboard runs on a two-core machine.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Frames buffered per socket (Switchboard's hub uses the same bound).
const BUFFER: usize = 4096;

pub fn main() -> anyhow::Result<()> {
    let threads = std::env::var("RAW_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    rt.block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let max_secs: u64 = std::env::var("RAW_MAX_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(3600);
    std::thread::spawn(move || {
        // Stop when the parent is gone (stdin closes) or the time bound passes.
        let start = std::time::Instant::now();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                line.clear();
            }
            let _ = tx.send(());
        });
        while start.elapsed() < Duration::from_secs(max_secs) {
            if rx.recv_timeout(Duration::from_secs(1)).is_ok() {
                break;
            }
        }
        std::process::exit(0);
    });

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let (tx, _) = broadcast::channel::<Utf8Bytes>(BUFFER);
    let redis = match std::env::var("RAW_REDIS_URL").ok().filter(|u| !u.is_empty()) {
        Some(url) => {
            let channel = std::env::var("RAW_REDIS_CHANNEL").unwrap_or_else(|_| "raw-bench".into());
            let client = redis::Client::open(url.as_str())?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            let forward = tx.clone();
            tokio::spawn(async move {
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    if let Ok(text) = msg.get_payload::<String>() {
                        let _ = forward.send(Utf8Bytes::from(text));
                    }
                }
            });
            Some((client.get_multiplexed_async_connection().await?, channel))
        }
        None => None,
    };
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (sock, _) = listener.accept().await?;
        let _ = sock.set_nodelay(true);
        let tx = tx.clone();
        let redis = redis.clone();
        tokio::spawn(async move {
            let mut first = [0u8; 4];
            match sock.peek(&mut first).await {
                Ok(4) if &first == b"POST" => {
                    let _ = trigger(sock, tx, redis).await;
                }
                _ => {
                    let _ = socket(sock, tx).await;
                }
            }
        });
    }
}

/// One subscribed WebSocket: every broadcast frame, in order; a lagging socket skips ahead.
async fn socket(sock: TcpStream, tx: broadcast::Sender<Utf8Bytes>) -> anyhow::Result<()> {
    // Small buffers: tungstenite's defaults (128 KiB each) would make this the memory outlier.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let mut ws = tokio_tungstenite::accept_async_with_config(sock, Some(config)).await?;
    let mut rx = tx.subscribe();
    ws.send(Message::text("hello")).await?;
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Ok(text) => ws.send(Message::Text(text)).await?,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                Some(Ok(_)) => {}
            },
        }
    }
}

/// `POST /trigger` requests on one keep-alive connection.
async fn trigger(
    mut sock: TcpStream,
    tx: broadcast::Sender<Utf8Bytes>,
    mut redis: Option<(redis::aio::MultiplexedConnection, String)>,
) -> anyhow::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 8192];
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
        buf.drain(..head_end + length);
        match &mut redis {
            Some((conn, channel)) => {
                let _: i64 = redis::cmd("PUBLISH").arg(&*channel).arg(body).query_async(conn).await?;
            }
            None => {
                let _ = tx.send(Utf8Bytes::from(body));
            }
        }
        sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok").await?;
    }
}
