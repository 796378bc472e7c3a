//! The email channel's network clients (EM-1 fetching and marking, EM-4 IDLE, EO-1/EO-3 sending):
//! IMAP and POP3 to read a mailbox, SMTP to send. Sockets and protocols only: no store, no parsing of the mail
//! beyond what the protocol needs, no decisions about tickets.
//!
//! What it owns:
//! - the settings types a channel stores ([`Protocol`], [`TlsMode`], [`Endpoint`], [`Credentials`],
//!   [`AfterImport`]) and [`MailKey`], the id of a mail on the server that the caller remembers as imported;
//! - [`Session`], one logged-in connection to a mailbox (IMAP in [`imap`], POP3 in [`pop3`]) with the same shape
//!   for both: `pending` → `fetch` → (caller commits the ticket) → `ack` → `close`, and batch forms of each
//!   (`waiting` with sizes, `fetch_many`, `ack_many`: one IMAP round trip for many mails);
//! - [`tls`]: TCP + rustls, implicit TLS, STARTTLS upgrade, the opt-in "accept any certificate" verifier;
//! - [`smtp`]: building an outgoing RFC 5322 message and sending it with lettre, with errors that say whether a
//!   retry can help.
//!
//! Time limits: connecting and logging in is bounded by [`CONNECT_TIMEOUT`], every later command by
//! [`COMMAND_TIMEOUT`]; a hung server becomes [`NetError::Timeout`], never a stuck task.
//! After any error other than [`NetError::NotFound`], drop the session and connect again: the connection may be in
//! the middle of a command.

pub mod imap;
pub mod pop3;
pub mod smtp;
pub mod tls;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use smtp::{Address, BuiltMail, OutgoingAttachment, OutgoingMail, SendError, SmtpSettings, build, send, send_raw};

/// Connecting, the TLS handshake and logging in, together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// One command after login (a `fetch` of a large mail included).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Imap,
    Pop3,
}

/// How the connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, POP3S 995, SMTPS 465).
    Implicit,
    /// Plain first, then `STARTTLS` (IMAP, SMTP) or `STLS` (POP3); refusing the upgrade is an error, never a
    /// silent fallback to plain text.
    Starttls,
    /// No encryption (only for servers on a trusted network).
    None,
}

/// Where a mail server listens. `tls_insecure` accepts any certificate (self-signed servers the admin trusts).
/// `policy` decides which addresses of `host` may be connected to (internal ones only when allowed,
/// `crate::outbound`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub tls_insecure: bool,
    pub policy: crate::outbound::Policy,
}

/// A login. `Debug` does not show the password.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// What happens on the server to a mail once its ticket is committed (EM-1: deleted, or read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterImport {
    /// Removed from the server (IMAP `\Deleted` + expunge; POP3 `DELE`, committed by `QUIT`).
    Delete,
    /// Left on the server, marked `\Seen` (IMAP). POP3 has no flags: the mail stays, and the caller skips keys it
    /// already imported.
    MarkRead,
}

/// A mail waiting on the server, with its size when the server says it (to size batches of fetches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub key: MailKey,
    pub size: Option<u64>,
}

/// A mail on the server. IMAP: `"<uidvalidity>:<uid>"`; POP3: the `UIDL`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailKey(pub String);

impl fmt::Display for MailKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The TCP connection could not be made (refused, unreachable, unknown host), or the host is internal and not
    /// allowed (`SWITCHBOARD_ALLOWED_INTERNAL_HOSTS`).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: crate::outbound::OutboundError,
    },
    /// The TLS handshake failed (e.g. an untrusted or expired certificate), or the server refused STARTTLS/STLS.
    #[error("TLS with {host} failed: {message}")]
    Tls { host: String, message: String },
    /// The server did not answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The connection broke after it was made.
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    /// The server refused the username or password (or the login method).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The folder to read does not exist (or cannot be selected); nothing is created.
    #[error("folder {folder:?} is not available: {message}")]
    MissingFolder { folder: String, message: String },
    /// The mail is no longer on the server (removed by someone else, or a key of an older UIDVALIDITY).
    #[error("mail {0} is not on the server")]
    NotFound(MailKey),
    /// The server does not offer this (IDLE on POP3 or on an IMAP server without it).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// An unexpected answer.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl NetError {
    /// Reaching the server failed (refused, TLS, timeout, dropped): the mailbox is unreachable right now, as opposed
    /// to refusing us (authentication, folder) or misbehaving.
    pub fn is_connection(&self) -> bool {
        matches!(self, NetError::Connect { .. } | NetError::Tls { .. } | NetError::Timeout(_) | NetError::Io(_))
    }
}

/// Bound a future in time; the error names what was waited for.
pub(crate) async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, NetError>>,
) -> Result<T, NetError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result,
        Err(_) => Err(NetError::Timeout(format!("{what} took longer than {} s", limit.as_secs()))),
    }
}

/// One logged-in connection to a mailbox folder.
pub enum Session {
    Imap(imap::ImapSession),
    Pop3(pop3::Pop3Session),
}

impl Session {
    /// Connect, encrypt as `ep.tls` says, log in and open `folder` (IMAP; POP3 only has the inbox, so the folder
    /// must be empty or `INBOX`). Bounded by [`CONNECT_TIMEOUT`].
    pub async fn connect(
        protocol: Protocol,
        ep: &Endpoint,
        creds: &Credentials,
        folder: &str,
    ) -> Result<Session, NetError> {
        within(CONNECT_TIMEOUT, "connecting and logging in", async {
            Ok(match protocol {
                Protocol::Imap => Session::Imap(imap::ImapSession::connect(ep, creds, folder).await?),
                Protocol::Pop3 => Session::Pop3(pop3::Pop3Session::connect(ep, creds, folder).await?),
            })
        })
        .await
    }

    /// Keys of the mails waiting, oldest first. IMAP: `UID SEARCH UNSEEN UNDELETED` in the folder; POP3: every
    /// `UIDL` (the maildrop as it was at login, less what this session deleted).
    pub async fn pending(&mut self) -> Result<Vec<MailKey>, NetError> {
        within(COMMAND_TIMEOUT, "listing the mailbox", async {
            match self {
                Session::Imap(s) => s.pending().await,
                Session::Pop3(s) => s.pending().await,
            }
        })
        .await
    }

    /// [`Session::pending`] with each mail's size (IMAP `RFC822.SIZE`, POP3 `LIST`): one more round trip.
    pub async fn waiting(&mut self) -> Result<Vec<Waiting>, NetError> {
        within(COMMAND_TIMEOUT, "listing the mailbox", async {
            match self {
                Session::Imap(s) => s.waiting().await,
                Session::Pop3(s) => s.waiting().await,
            }
        })
        .await
    }

    /// The raw RFC 5322 bytes of a mail. IMAP fetches `BODY.PEEK[]`, so fetching does not mark it seen.
    pub async fn fetch(&mut self, key: &MailKey) -> Result<Vec<u8>, NetError> {
        within(COMMAND_TIMEOUT, "fetching a mail", async {
            match self {
                Session::Imap(s) => s.fetch(key).await,
                Session::Pop3(s) => s.fetch(key).await,
            }
        })
        .await
    }

    /// Several mails, in the order of `keys` (IMAP: one `UID FETCH`; POP3: one `RETR` after another). Mails no
    /// longer on the server are left out rather than failing the batch.
    pub async fn fetch_many(&mut self, keys: &[MailKey]) -> Result<Vec<(MailKey, Vec<u8>)>, NetError> {
        within(COMMAND_TIMEOUT, "fetching mail", async {
            match self {
                Session::Imap(s) => s.fetch_many(keys).await,
                Session::Pop3(s) => s.fetch_many(keys).await,
            }
        })
        .await
    }

    /// Mark the mail done on the server (EM-1). Call it only after the ticket is committed.
    pub async fn ack(&mut self, key: &MailKey, after: AfterImport) -> Result<(), NetError> {
        within(COMMAND_TIMEOUT, "marking a mail imported", async {
            match self {
                Session::Imap(s) => s.ack(key, after).await,
                Session::Pop3(s) => s.ack(key, after).await,
            }
        })
        .await
    }

    /// [`Session::ack`] for several mails (IMAP: one `UID STORE`, one `UID EXPUNGE`). Mails no longer on the server
    /// are skipped.
    pub async fn ack_many(&mut self, keys: &[MailKey], after: AfterImport) -> Result<(), NetError> {
        within(COMMAND_TIMEOUT, "marking mail imported", async {
            match self {
                Session::Imap(s) => s.ack_many(keys, after).await,
                Session::Pop3(s) => s.ack_many(keys, after).await,
            }
        })
        .await
    }

    /// Whether [`Session::idle`] works here (IMAP servers announcing `IDLE`).
    pub fn supports_idle(&self) -> bool {
        match self {
            Session::Imap(s) => s.supports_idle(),
            Session::Pop3(_) => false,
        }
    }

    /// IMAP IDLE: `Ok(true)` when the server announced a change in the folder (new mail, usually), `Ok(false)` when
    /// `max` passed quietly. [`NetError::Unsupported`] for POP3 and IMAP servers without IDLE. Dropping the future
    /// half-way leaves the session unusable (connect again).
    pub async fn idle(&mut self, max: std::time::Duration) -> Result<bool, NetError> {
        match self {
            Session::Imap(s) => s.idle(max).await,
            Session::Pop3(_) => Err(NetError::Unsupported("POP3 has no IDLE".into())),
        }
    }

    /// Log out: IMAP `LOGOUT`; POP3 `QUIT`, which is what makes its deletions happen.
    pub async fn close(self) -> Result<(), NetError> {
        within(COMMAND_TIMEOUT, "logging out", async {
            match self {
                Session::Imap(s) => s.close().await,
                Session::Pop3(s) => s.close().await,
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The connector runs sessions in tokio tasks: every future of the facade must be `Send`.
    #[allow(dead_code, unreachable_code, clippy::diverging_sub_expression)]
    fn futures_are_send(mut s: Session, ep: Endpoint, creds: Credentials, key: MailKey) {
        assert_send(&tls::connect(&ep));
        assert_send(&Session::connect(Protocol::Imap, &ep, &creds, "INBOX"));
        assert_send(&s.pending());
        assert_send(&s.fetch(&key));
        assert_send(&s.waiting());
        assert_send(&s.fetch_many(std::slice::from_ref(&key)));
        assert_send(&s.ack(&key, AfterImport::Delete));
        assert_send(&s.ack_many(std::slice::from_ref(&key), AfterImport::Delete));
        assert_send(&s.idle(Duration::from_secs(1)));
        assert_send(&s.close());
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = Credentials { username: "desk".into(), password: "hunter2".into() };
        let shown = format!("{c:?}");
        assert!(shown.contains("desk") && !shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn settings_enums_are_lowercase_in_json() {
        assert_eq!(serde_json::to_string(&TlsMode::Starttls).unwrap(), "\"starttls\"");
        assert_eq!(serde_json::from_str::<Protocol>("\"pop3\"").unwrap(), Protocol::Pop3);
    }
}
