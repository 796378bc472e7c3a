//! A lean HTTP/1.1 keep-alive client for the load loops: one connection, one request at a time,
//! `Content-Length` or chunked answers. Far cheaper per request than a general client, which
//! matters when the load generator shares two cores with the server it measures.

#![allow(dead_code)]

use std::io;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub struct HttpConn {
    addr: String,
    stream: Option<TcpStream>,
    buf: BytesMut,
    req: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

impl HttpConn {
    /// A connection to `addr` (`127.0.0.1:PORT`), opened on first use and again after a close.
    pub fn new(addr: &str) -> Self {
        Self { addr: addr.to_owned(), stream: None, buf: BytesMut::with_capacity(4096), req: Vec::with_capacity(1024) }
    }

    async fn stream(&mut self) -> io::Result<&mut TcpStream> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.buf.clear();
            self.stream = Some(s);
        }
        Ok(self.stream.as_mut().expect("connected"))
    }

    /// Send one request; `headers` are extra header lines, each ending in `\r\n`.
    pub async fn request(&mut self, method: &str, path: &str, headers: &str, body: &[u8]) -> io::Result<Response> {
        // One retry on a fresh connection if the server had closed an idle keep-alive connection.
        let fresh = self.stream.is_none();
        match self.request_once(method, path, headers, body).await {
            Err(e) if !fresh && is_reset(&e) => {
                self.stream = None;
                self.request_once(method, path, headers, body).await
            }
            other => other,
        }
    }

    async fn request_once(&mut self, method: &str, path: &str, headers: &str, body: &[u8]) -> io::Result<Response> {
        let mut req = std::mem::take(&mut self.req);
        req.clear();
        use std::io::Write;
        write!(
            req,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n{headers}\r\n",
            self.addr,
            body.len()
        )?;
        req.extend_from_slice(body);
        let result = async {
            self.stream().await?.write_all(&req).await?;
            self.read_response().await
        }
        .await;
        self.req = req;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(8192);
        }
        let stream = self.stream.as_mut().ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "closed"))?;
        let n = stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by the server"));
        }
        Ok(())
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "response head is not UTF-8"))?
            .to_owned();
        self.buf.advance(head_end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 =
            status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad status line {status_line:?}"))
            })?;
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        for line in lines {
            let Some((k, v)) = line.split_once(':') else { continue };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            match k.as_str() {
                "content-length" => length = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "connection" => close = v.contains("close"),
                _ => {}
            }
        }
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    self.fill().await?;
                };
                let size_text = std::str::from_utf8(&self.buf[..line_end]).unwrap_or("").to_owned();
                let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
                self.buf.advance(line_end + 2);
                while self.buf.len() < size + 2 {
                    self.fill().await?;
                }
                body.extend_from_slice(&self.buf[..size]);
                self.buf.advance(size + 2);
                if size == 0 {
                    break;
                }
            }
            body
        } else if let Some(n) = length {
            while self.buf.len() < n {
                self.fill().await?;
            }
            let body = self.buf[..n].to_vec();
            self.buf.advance(n);
            body
        } else if status == 204 || status == 304 || status < 200 {
            Vec::new()
        } else {
            // Read to the end of the connection.
            loop {
                match self.fill().await {
                    Ok(()) => continue,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(e),
                }
            }
            close = true;
            let body = self.buf.to_vec();
            self.buf.clear();
            body
        };
        if close {
            self.stream = None;
        }
        Ok(Response { status, body })
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// `Authorization` and `Content-Type: application/json` header lines for a token.
pub fn json_headers(token: Option<&str>) -> String {
    match token {
        Some(t) => format!("Authorization: Bearer {t}\r\nContent-Type: application/json\r\n"),
        None => "Content-Type: application/json\r\n".to_owned(),
    }
}
