//! A lean WebSocket client for the load generator (RFC 6455, no extensions): a hand-written
//! upgrade, then frames parsed in place from one growing buffer. It answers pings itself and hands
//! each text message to a callback without copying, so one process can hold ~19,000 sockets and
//! read hundreds of thousands of frames per second on a shared two-core machine.
//!
//! Also speaks just enough Engine.IO/Socket.IO v4 (`0{…}` open → `40` connect, `2` ping → `3` pong)
//! to subscribe to the Socket.IO reference server.

#![allow(dead_code)]

use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const OP_CONT: u8 = 0;
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;

/// Which server a socket talks to, and so what "subscribed" means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// Switchboard's agent socket: subscribed at the `hello` frame.
    Switchboard,
    /// Socket.IO over the WebSocket transport: subscribed at the `40` connect answer.
    SocketIo,
    /// The raw reference broadcaster: subscribed at its `hello` frame.
    Raw,
}

pub struct WsConn {
    stream: TcpStream,
    buf: BytesMut,
    /// A fragmented message being reassembled.
    frag: Vec<u8>,
    out: Vec<u8>,
}

/// What the callback wants done after a text message.
pub enum Reply {
    None,
    Text(&'static [u8]),
}

fn io_err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// Append a masked client frame (the mask key is zero, which leaves the payload as it is).
fn encode(op: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x80 | op);
    let n = payload.len();
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if n < 65_536 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
}

impl WsConn {
    /// Open a TCP connection to `addr` and upgrade `path`; `headers` are extra request lines
    /// (each ending in `\r\n`).
    pub async fn connect(addr: &str, path: &str, headers: &str) -> io::Result<Self> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
        );
        stream.write_all(req.as_bytes()).await?;
        let mut buf = BytesMut::with_capacity(2048);
        let end = loop {
            if let Some(i) = memchr::memmem::find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.capacity() - buf.len() < 512 {
                buf.reserve(2048);
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(io_err("closed during the upgrade"));
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(io_err(format!("upgrade refused: {}", head.lines().next().unwrap_or(""))));
        }
        buf.advance(end);
        Ok(Self { stream, buf, frag: Vec::new(), out: Vec::new() })
    }

    /// Connect with the subscription handshake of `proto` and return once subscribed.
    pub async fn subscribe(addr: &str, proto: Proto, token: Option<&str>, wait: Duration) -> io::Result<Self> {
        let (path, headers) = match proto {
            Proto::Switchboard => {
                ("/api/v1/ws", token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default())
            }
            Proto::SocketIo => ("/socket.io/?EIO=4&transport=websocket", String::new()),
            Proto::Raw => ("/ws", String::new()),
        };
        let mut c = Self::connect(addr, path, &headers).await?;
        let subscribed = tokio::time::timeout(wait, async {
            let mut done = false;
            while !done {
                let open = c
                    .read_some(&mut |text: &[u8]| match proto {
                        Proto::Switchboard | Proto::Raw => {
                            if memchr::memmem::find(text, b"hello").is_some() {
                                done = true;
                            }
                            Reply::None
                        }
                        Proto::SocketIo => {
                            if text.starts_with(b"0{") {
                                Reply::Text(b"40")
                            } else if text.starts_with(b"40") {
                                done = true;
                                Reply::None
                            } else if text == b"2" {
                                Reply::Text(b"3")
                            } else {
                                Reply::None
                            }
                        }
                    })
                    .await?;
                if !open {
                    return Err(io_err("closed before subscribing"));
                }
            }
            Ok(())
        })
        .await;
        match subscribed {
            Ok(Ok(())) => Ok(c),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io_err(format!("not subscribed within {wait:?}"))),
        }
    }

    pub async fn send_text(&mut self, text: &[u8]) -> io::Result<()> {
        self.out.clear();
        encode(OP_TEXT, text, &mut self.out);
        self.stream.write_all(&self.out).await
    }

    /// Handle every complete frame already buffered (reading from the socket once first if there
    /// is none): text messages go to `on_text` (its reply, if any, is sent), pings are answered.
    /// `Ok(false)` once the socket closed.
    pub async fn read_some(&mut self, on_text: &mut impl FnMut(&[u8]) -> Reply) -> io::Result<bool> {
        if !self.complete_frame() {
            if self.buf.capacity() - self.buf.len() < 1024 {
                self.buf.reserve(16 * 1024);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(false);
            }
        }
        let open = self.process(on_text);
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(open)
    }

    /// Whether the buffer holds at least one whole frame.
    fn complete_frame(&self) -> bool {
        let b = &self.buf[..];
        if b.len() < 2 {
            return false;
        }
        let mask = if b[1] & 0x80 != 0 { 4 } else { 0 };
        match (b[1] & 0x7f) as usize {
            126 => b.len() >= 4 && b.len() >= 4 + mask + u16::from_be_bytes([b[2], b[3]]) as usize,
            127 => {
                b.len() >= 10
                    && b.len() >= 10 + mask + u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")) as usize
            }
            n => b.len() >= 2 + mask + n,
        }
    }

    /// Handle the complete frames in the buffer; replies are queued in `out`. False after a close.
    fn process(&mut self, on_text: &mut impl FnMut(&[u8]) -> Reply) -> bool {
        self.out.clear();
        loop {
            let b = &self.buf[..];
            if b.len() < 2 {
                return true;
            }
            let (fin, op, masked, len7) = (b[0] & 0x80 != 0, b[0] & 0x0f, b[1] & 0x80 != 0, (b[1] & 0x7f) as usize);
            let (mut hdr, len) = match len7 {
                126 if b.len() >= 4 => (4, u16::from_be_bytes([b[2], b[3]]) as usize),
                127 if b.len() >= 10 => (10, u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")) as usize),
                126 | 127 => return true,
                n => (2, n),
            };
            let mask = if masked {
                if b.len() < hdr + 4 {
                    return true;
                }
                let m = [b[hdr], b[hdr + 1], b[hdr + 2], b[hdr + 3]];
                hdr += 4;
                Some(m)
            } else {
                None
            };
            let have = b.len();
            if have < hdr + len {
                self.buf.reserve(hdr + len - have);
                return true;
            }
            if let Some(m) = mask {
                for (i, x) in self.buf[hdr..hdr + len].iter_mut().enumerate() {
                    *x ^= m[i % 4];
                }
            }
            let payload = &self.buf[hdr..hdr + len];
            let mut open = true;
            match op {
                OP_TEXT | OP_BINARY if fin => {
                    if let Reply::Text(t) = on_text(payload) {
                        encode(OP_TEXT, t, &mut self.out);
                    }
                }
                OP_TEXT | OP_BINARY => {
                    self.frag.clear();
                    self.frag.extend_from_slice(payload);
                }
                OP_CONT => {
                    self.frag.extend_from_slice(payload);
                    if fin {
                        let whole = std::mem::take(&mut self.frag);
                        if let Reply::Text(t) = on_text(&whole) {
                            encode(OP_TEXT, t, &mut self.out);
                        }
                    }
                }
                OP_PING => {
                    let p = payload.to_vec();
                    encode(OP_PONG, &p, &mut self.out);
                }
                OP_CLOSE => open = false,
                _ => {}
            }
            self.buf.advance(hdr + len);
            if !open {
                return false;
            }
        }
    }

    /// Read until the socket closes (or fails), handing every text message to `on_text`.
    pub async fn run(mut self, mut on_text: impl FnMut(&[u8]) -> Reply) {
        while let Ok(true) = self.read_some(&mut on_text).await {}
    }
}

/// `on_text` for a subscribed socket that only answers Socket.IO pings.
pub fn keepalive(proto: Proto) -> impl FnMut(&[u8]) -> Reply {
    move |text: &[u8]| if proto == Proto::SocketIo && text == b"2" { Reply::Text(b"3") } else { Reply::None }
}

/// Subscribe sockets number `range` (spread round-robin over `addrs`, 64 handshakes at a time, each
/// tried three times) and read each on its own task, handing its text to `rec`. Prints progress.
pub async fn subscribe_many(
    addrs: &[String],
    proto: Proto,
    token: Option<&str>,
    range: std::ops::Range<usize>,
    rec: std::sync::Arc<super::record::Recorder>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    use anyhow::Context;
    use futures_util::StreamExt;

    let total = range.end;
    let began = std::time::Instant::now();
    let mut connects = futures_util::stream::iter(range.clone())
        .map(|i| {
            let addr = addrs[i % addrs.len()].clone();
            let token = token.map(str::to_owned);
            async move {
                let mut last = None;
                for attempt in 0..3u64 {
                    match WsConn::subscribe(&addr, proto, token.as_deref(), Duration::from_secs(30)).await {
                        Ok(c) => return Ok(c),
                        Err(e) => last = Some(e),
                    }
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
                Err(last.expect("an error"))
            }
        })
        .buffer_unordered(64);
    let mut tasks = Vec::with_capacity(range.len());
    while let Some(conn) = connects.next().await {
        let conn = conn.with_context(|| format!("socket {} of {total}", range.start + tasks.len() + 1))?;
        let rec = rec.clone();
        tasks.push(tokio::spawn(async move {
            conn.run(|text| {
                if proto == Proto::SocketIo && text == b"2" {
                    return Reply::Text(b"3");
                }
                rec.on_text(text);
                Reply::None
            })
            .await;
            rec.closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }));
        let done = range.start + tasks.len();
        if done.is_multiple_of(5000) && done < total {
            eprintln!("    {done} sockets subscribed ({:.1} s)", began.elapsed().as_secs_f64());
        }
    }
    eprintln!("    {total} sockets subscribed to {} node(s) in {:.1} s", addrs.len(), began.elapsed().as_secs_f64());
    Ok(tasks)
}
