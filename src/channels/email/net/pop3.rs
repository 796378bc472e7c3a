//! The POP3 client (EM-1), written here because no maintained crate speaks POP3 over our tokio-rustls stream
//! with `STLS` (async-pop has no STLS and brings native-tls). RFC 1939 + RFC 2449 (CAPA) + RFC 2595 (STLS):
//! greeting, `STLS`, `USER`/`PASS`, `UIDL`, `RETR` (multi-line, dot-unstuffed), `DELE`, `QUIT`.
//!
//! POP3 has no flags and no folders: only the inbox; "mark read" leaves the mail on the server (the caller skips
//! keys it already imported); `DELE` takes effect at `QUIT` ([`Pop3Session::close`]) — a session dropped without
//! it deletes nothing. The server shows the maildrop as it was at login: mail arriving later appears in the next
//! session. Keys are the `UIDL`s.
//!
//! The pure parts (status lines, listings, dot-unstuffing) are functions with unit tests; every answer is bounded
//! in size, so a hostile server cannot make us buffer without limit.

use std::collections::{HashMap, HashSet};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::tls::{self, NetStream};
use super::{AfterImport, Credentials, Endpoint, MailKey, NetError, TlsMode, Waiting};

/// Longest single-line answer we accept.
const MAX_LINE: usize = 64 * 1024;
/// Largest multi-line answer (a whole mail) we accept.
pub const MAX_MAIL_BYTES: usize = 100 * 1024 * 1024;

/// A logged-in POP3 connection.
#[derive(Debug)]
pub struct Pop3Session {
    conn: Conn,
    /// Message number of each UIDL, from the last `UIDL` listing.
    listing: Vec<(u32, String)>,
    /// UIDLs `DELE`d in this session (gone from `pending`, removed at `QUIT`).
    deleted: HashSet<String>,
}

#[derive(Debug)]
struct Conn {
    io: BufReader<NetStream>,
}

/// An answer's first line: `+OK text` or `-ERR text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok(String),
    Err(String),
}

/// Parse a status line (with or without its CRLF).
pub fn parse_status(line: &[u8]) -> Result<Status, NetError> {
    let line = trim_eol(line);
    let text = |rest: &[u8]| String::from_utf8_lossy(rest).trim().to_owned();
    if let Some(rest) = line.strip_prefix(b"+OK") {
        Ok(Status::Ok(text(rest)))
    } else if let Some(rest) = line.strip_prefix(b"-ERR") {
        Ok(Status::Err(text(rest)))
    } else {
        // What a server that does not speak POP3 sent (an HTTP server on the port, say) is never shown to anyone.
        Err(NetError::Protocol("the server's answer is not POP3".into()))
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// One line of a multi-line answer: `None` for the terminating `.`, else the line with its leading dot removed
/// when the server doubled it ("dot-stuffing", RFC 1939 §3). The line ending is kept as sent.
pub fn unstuff_line(line: &[u8]) -> Option<&[u8]> {
    if trim_eol(line) == b"." {
        return None;
    }
    Some(line.strip_prefix(b".").unwrap_or(line))
}

/// `UIDL` listing lines (`"<msg> <uid>"`), in server order.
pub fn parse_uidl_lines(lines: &[Vec<u8>]) -> Result<Vec<(u32, String)>, NetError> {
    lines
        .iter()
        .map(|raw| {
            let line = String::from_utf8_lossy(trim_eol(raw)).into_owned();
            let mut parts = line.split_ascii_whitespace();
            let number = parts.next().and_then(|n| n.parse::<u32>().ok()).filter(|n| *n > 0);
            let uid = parts.next().filter(|u| u.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            match (number, uid, parts.next()) {
                (Some(n), Some(uid), None) => Ok((n, uid.to_owned())),
                _ => Err(NetError::Protocol(format!("bad UIDL line {line:?}"))),
            }
        })
        .collect()
}

/// A `LIST` listing (`"<number> <octets>"` per line): message number → size.
pub fn parse_list_lines(lines: &[Vec<u8>]) -> Result<HashMap<u32, u64>, NetError> {
    parse_uidl_lines(lines)?
        .into_iter()
        .map(|(n, size)| match size.parse::<u64>() {
            Ok(size) => Ok((n, size)),
            Err(_) => Err(NetError::Protocol(format!("bad LIST line {n} {size:?}"))),
        })
        .collect()
}

/// The capabilities of a `CAPA` listing, upper-cased first words (`STLS`, `UIDL`, `USER`, `SASL`, …).
pub fn parse_capa_lines(lines: &[Vec<u8>]) -> HashSet<String> {
    lines
        .iter()
        .filter_map(|l| {
            String::from_utf8_lossy(trim_eol(l)).split_ascii_whitespace().next().map(str::to_ascii_uppercase)
        })
        .collect()
}

impl Conn {
    async fn read_line(&mut self, max: usize) -> Result<Vec<u8>, NetError> {
        let mut line = Vec::new();
        loop {
            let available = self.io.fill_buf().await?;
            if available.is_empty() {
                return Err(NetError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            let (take, done) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if line.len() + take > max {
                return Err(NetError::Protocol(format!("the server sent a line longer than {max} bytes")));
            }
            line.extend_from_slice(&available[..take]);
            self.io.consume(take);
            if done {
                return Ok(line);
            }
        }
    }

    async fn status(&mut self) -> Result<Status, NetError> {
        let line = self.read_line(MAX_LINE).await?;
        parse_status(&line)
    }

    async fn send(&mut self, command: &str) -> Result<(), NetError> {
        if command.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(NetError::Protocol("a POP3 argument may not contain a line break".into()));
        }
        let stream = self.io.get_mut();
        stream.write_all(command.as_bytes()).await?;
        stream.write_all(b"\r\n").await?;
        stream.flush().await?;
        Ok(())
    }

    /// Send a command and require `+OK`; `-ERR` becomes the error `on_err` makes of the server's text.
    async fn command(&mut self, command: &str, on_err: impl FnOnce(String) -> NetError) -> Result<String, NetError> {
        self.send(command).await?;
        match self.status().await? {
            Status::Ok(text) => Ok(text),
            Status::Err(text) => Err(on_err(text)),
        }
    }

    /// The lines after `+OK` of a multi-line answer, unstuffed, up to (without) the final `.`.
    async fn multiline(&mut self, budget: usize) -> Result<Vec<Vec<u8>>, NetError> {
        let mut lines = Vec::new();
        let mut used = 0usize;
        loop {
            let line = self.read_line(budget.saturating_sub(used).max(3)).await?;
            used += line.len();
            if used > budget {
                return Err(NetError::Protocol(format!("the answer is larger than {budget} bytes")));
            }
            match unstuff_line(&line) {
                None => return Ok(lines),
                Some(content) => lines.push(content.to_vec()),
            }
        }
    }
}

fn protocol(what: &'static str) -> impl FnOnce(String) -> NetError {
    move |text| NetError::Protocol(format!("{what}: -ERR {text}"))
}

impl Pop3Session {
    pub async fn connect(ep: &Endpoint, creds: &Credentials, folder: &str) -> Result<Pop3Session, NetError> {
        let folder = folder.trim();
        if !(folder.is_empty() || folder.eq_ignore_ascii_case("INBOX")) {
            return Err(NetError::MissingFolder {
                folder: folder.to_owned(),
                message: "POP3 only has the inbox".into(),
            });
        }
        let mut conn = Conn { io: BufReader::new(tls::connect(ep).await?) };
        match conn.status().await? {
            Status::Ok(_) => {}
            Status::Err(text) => return Err(NetError::Protocol(format!("the server refused us: -ERR {text}"))),
        }
        if ep.tls == TlsMode::Starttls {
            conn.command("STLS", |text| NetError::Tls {
                host: ep.host.clone(),
                message: format!("the server refused STLS: -ERR {text}"),
            })
            .await?;
            if !conn.io.buffer().is_empty() {
                return Err(NetError::Protocol("the server sent data after agreeing to STLS".into()));
            }
            let stream = tls::upgrade(conn.io.into_inner(), ep).await?;
            conn = Conn { io: BufReader::new(stream) };
        }
        conn.command(&format!("USER {}", creds.username), NetError::Auth).await?;
        conn.command(&format!("PASS {}", creds.password), NetError::Auth).await?;
        let mut session = Pop3Session { conn, listing: Vec::new(), deleted: HashSet::new() };
        session.list().await?;
        Ok(session)
    }

    /// The server's capabilities (`CAPA`, RFC 2449).
    pub async fn capabilities(&mut self) -> Result<HashSet<String>, NetError> {
        self.conn.command("CAPA", protocol("CAPA")).await?;
        Ok(parse_capa_lines(&self.conn.multiline(MAX_LINE).await?))
    }

    async fn list(&mut self) -> Result<(), NetError> {
        self.conn
            .command("UIDL", |text| NetError::Unsupported(format!("the POP3 server has no UIDL: -ERR {text}")))
            .await?;
        let lines = self.conn.multiline(MAX_MAIL_BYTES).await?;
        let mut listing = parse_uidl_lines(&lines)?;
        listing.sort_by_key(|(n, _)| *n);
        self.listing = listing;
        Ok(())
    }

    /// Every mail on the server (oldest first: by message number) that this session has not deleted.
    pub async fn pending(&mut self) -> Result<Vec<MailKey>, NetError> {
        self.list().await?;
        Ok(self
            .listing
            .iter()
            .filter(|(_, uid)| !self.deleted.contains(uid))
            .map(|(_, uid)| MailKey(uid.clone()))
            .collect())
    }

    /// [`Self::pending`] with each mail's size (`LIST`).
    pub async fn waiting(&mut self) -> Result<Vec<Waiting>, NetError> {
        let keys = self.pending().await?;
        self.conn.command("LIST", protocol("LIST")).await?;
        let sizes = parse_list_lines(&self.conn.multiline(MAX_MAIL_BYTES).await?)?;
        Ok(keys
            .into_iter()
            .map(|key| {
                let size = self.number_of(&key).ok().and_then(|n| sizes.get(&n).copied());
                Waiting { key, size }
            })
            .collect())
    }

    fn number_of(&self, key: &MailKey) -> Result<u32, NetError> {
        if self.deleted.contains(&key.0) {
            return Err(NetError::NotFound(key.clone()));
        }
        self.listing
            .iter()
            .find(|(_, uid)| *uid == key.0)
            .map(|(n, _)| *n)
            .ok_or_else(|| NetError::NotFound(key.clone()))
    }

    /// `RETR`: the mail's bytes as stored (dot-unstuffed).
    pub async fn fetch(&mut self, key: &MailKey) -> Result<Vec<u8>, NetError> {
        if self.number_of(key).is_err() {
            self.list().await?;
        }
        let number = self.number_of(key)?;
        self.conn.command(&format!("RETR {number}"), |_| NetError::NotFound(key.clone())).await?;
        Ok(self.conn.multiline(MAX_MAIL_BYTES).await?.concat())
    }

    /// [`Self::fetch`] for several mails, in order; mails no longer on the server are left out.
    pub async fn fetch_many(&mut self, keys: &[MailKey]) -> Result<Vec<(MailKey, Vec<u8>)>, NetError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match self.fetch(key).await {
                Ok(raw) => out.push((key.clone(), raw)),
                Err(NetError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// [`AfterImport::Delete`]: `DELE` (done at [`Pop3Session::close`]); [`AfterImport::MarkRead`]: nothing.
    pub async fn ack(&mut self, key: &MailKey, after: AfterImport) -> Result<(), NetError> {
        let number = self.number_of(key)?;
        if after == AfterImport::Delete {
            self.conn.command(&format!("DELE {number}"), |_| NetError::NotFound(key.clone())).await?;
            self.deleted.insert(key.0.clone());
        }
        Ok(())
    }

    /// [`Self::ack`] for several mails; mails no longer on the server are skipped.
    pub async fn ack_many(&mut self, keys: &[MailKey], after: AfterImport) -> Result<(), NetError> {
        for key in keys {
            match self.ack(key, after).await {
                Ok(()) | Err(NetError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `QUIT`: the server removes the mails `DELE`d in this session.
    pub async fn close(mut self) -> Result<(), NetError> {
        self.conn
            .command("QUIT", |text| NetError::Protocol(format!("QUIT failed, deletions not done: -ERR {text}")))
            .await?;
        let _ = self.conn.io.get_mut().shutdown().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"+OK Dovecot ready.\r\n").unwrap(), Status::Ok("Dovecot ready.".into()));
        assert_eq!(parse_status(b"+OK\r\n").unwrap(), Status::Ok(String::new()));
        assert_eq!(
            parse_status(b"-ERR [AUTH] Authentication failed.\r\n").unwrap(),
            Status::Err("[AUTH] Authentication failed.".into())
        );
        assert_eq!(parse_status(b"-ERR\n").unwrap(), Status::Err(String::new()));
        assert!(matches!(parse_status(b"* OK IMAP4rev1\r\n"), Err(NetError::Protocol(_))));
        let e = parse_status(b"HTTP/1.1 400 internal-secret\r\n").unwrap_err().to_string();
        assert!(
            !e.contains("internal-secret") && e.contains("not POP3"),
            "what a non-POP3 server sent is not echoed: {e}"
        );
        assert!(matches!(parse_status(b""), Err(NetError::Protocol(_))));
    }

    #[test]
    fn dot_unstuffing() {
        assert_eq!(unstuff_line(b".\r\n"), None);
        assert_eq!(unstuff_line(b".\n"), None);
        assert_eq!(unstuff_line(b"..\r\n"), Some(&b".\r\n"[..]));
        assert_eq!(unstuff_line(b"..dot at start\r\n"), Some(&b".dot at start\r\n"[..]));
        assert_eq!(unstuff_line(b"text.\r\n"), Some(&b"text.\r\n"[..]));
        assert_eq!(unstuff_line(b"\r\n"), Some(&b"\r\n"[..]));
        assert_eq!(unstuff_line(b". \r\n"), Some(&b" \r\n"[..]));
    }

    #[test]
    fn uidl_listing() {
        let lines = vec![b"1 000000016b0ecad6\r\n".to_vec(), b"2  abc-DEF_9\r\n".to_vec()];
        assert_eq!(
            parse_uidl_lines(&lines).unwrap(),
            vec![(1, "000000016b0ecad6".to_owned()), (2, "abc-DEF_9".to_owned())]
        );
        assert!(parse_uidl_lines(&[]).unwrap().is_empty());
        for bad in [&b"x abc\r\n"[..], b"0 abc\r\n", b"1\r\n", b"1 a b\r\n"] {
            assert!(parse_uidl_lines(&[bad.to_vec()]).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn list_listing() {
        let lines = vec![b"1 120\r\n".to_vec(), b"2 4096\r\n".to_vec()];
        assert_eq!(parse_list_lines(&lines).unwrap(), HashMap::from([(1, 120), (2, 4096)]));
        assert!(parse_list_lines(&[b"1 big\r\n".to_vec()]).is_err());
    }

    #[test]
    fn capa_listing() {
        let lines: Vec<Vec<u8>> = ["CAPA\r\n", "TOP\r\n", "UIDL\r\n", "stls\r\n", "SASL PLAIN LOGIN\r\n"]
            .iter()
            .map(|l| l.as_bytes().to_vec())
            .collect();
        let caps = parse_capa_lines(&lines);
        assert!(caps.contains("STLS") && caps.contains("UIDL") && caps.contains("SASL"));
        assert!(!caps.contains("USER"));
    }

    /// A whole exchange against a scripted server: greeting, login, UIDL, RETR with a stuffed line, DELE, QUIT.
    #[tokio::test]
    async fn scripted_server_session() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let script: &[(&str, &str)] = &[
                ("", "+OK ready\r\n"),
                ("USER u\r\n", "+OK\r\n"),
                ("PASS p w\r\n", "+OK logged in\r\n"),
                ("UIDL\r\n", "+OK\r\n1 aa\r\n2 bb\r\n.\r\n"),
                ("UIDL\r\n", "+OK\r\n1 aa\r\n2 bb\r\n.\r\n"),
                ("RETR 2\r\n", "+OK 20 octets\r\nSubject: x\r\n\r\n..hidden\r\n.\r\n"),
                ("DELE 2\r\n", "+OK\r\n"),
                ("QUIT\r\n", "+OK bye\r\n"),
            ];
            for (expect, answer) in script {
                let mut buf = vec![0u8; expect.len()];
                sock.read_exact(&mut buf).await.unwrap();
                got.push(String::from_utf8(buf).unwrap());
                assert_eq!(got.last().unwrap(), expect);
                sock.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        let policy = crate::outbound::Policy::new(crate::outbound::AllowedInternal::parse("127.0.0.1").unwrap());
        let ep = Endpoint { host: "127.0.0.1".into(), port, tls: TlsMode::None, tls_insecure: false, policy };
        let creds = Credentials { username: "u".into(), password: "p w".into() };
        let mut s = Pop3Session::connect(&ep, &creds, "INBOX").await.unwrap();
        let keys = s.pending().await.unwrap();
        assert_eq!(keys, vec![MailKey("aa".into()), MailKey("bb".into())]);
        assert_eq!(s.fetch(&keys[1]).await.unwrap(), b"Subject: x\r\n\r\n.hidden\r\n");
        s.ack(&keys[1], AfterImport::Delete).await.unwrap();
        s.ack(&keys[0], AfterImport::MarkRead).await.unwrap();
        assert!(matches!(s.ack(&keys[1], AfterImport::Delete).await, Err(NetError::NotFound(_))));
        s.close().await.unwrap();
        server.await.unwrap();
    }
}
