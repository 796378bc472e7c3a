//! A mailbox's settings as stored in its channel instance (`settings` JSON): how to read it
//! (EM-1, EM-4), what to do with what it reads (EM-7…EM-11) and how to answer (EO-2). Validation
//! lives here, next to the type, so the HTTP layer and the connector agree on what is valid.

use serde::{Deserialize, Serialize};

use super::net::{AfterImport, Credentials, Endpoint, Protocol, SmtpSettings, TlsMode};

/// Polling bounds in seconds. EM-4 asks for 1–5 minutes; shorter is allowed down to 5 s for
/// small deployments and tests, and IMAP IDLE makes new mail a ticket within seconds anyway.
pub const MIN_POLL_S: u64 = 5;
pub const MAX_POLL_S: u64 = 300;
pub const DEFAULT_POLL_S: u64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterImportSetting {
    Delete,
    MarkRead,
}

impl From<AfterImportSetting> for AfterImport {
    fn from(a: AfterImportSetting) -> Self {
        match a {
            AfterImportSetting::Delete => AfterImport::Delete,
            AfterImportSetting::MarkRead => AfterImport::MarkRead,
        }
    }
}

/// Outgoing mail (EO-2), as the API takes it and as it is stored. Office 365 OAuth would be
/// another `auth` variant here.
/// `Debug` shows no password (`secrets::redacted`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `implicit`, `starttls` or `none`.
    #[schema(value_type = String)]
    pub tls: TlsMode,
    #[serde(default)]
    pub tls_insecure: bool,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    pub from_address: String,
    #[serde(default)]
    pub from_name: Option<String>,
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Use `from_name` for agents' replies too, instead of the agent's own name (EO-2).
    #[serde(default)]
    pub use_from_name_for_all: bool,
}

impl SmtpConfig {
    /// Trimmed, with empty optional values as absent (what both create and update store).
    pub fn normalized(self) -> Self {
        let present = |v: Option<String>| v.map(|x| x.trim().to_owned()).filter(|x| !x.is_empty());
        Self {
            host: self.host.trim().to_owned(),
            username: present(self.username),
            password: self.password.filter(|p| !p.is_empty()),
            from_address: self.from_address.trim().to_owned(),
            from_name: present(self.from_name),
            reply_to: present(self.reply_to),
            ..self
        }
    }

    /// Where to send, reached under `policy`.
    pub fn transport(&self, policy: &crate::outbound::Policy) -> SmtpSettings {
        SmtpSettings {
            endpoint: Endpoint {
                host: self.host.clone(),
                port: self.port,
                tls: self.tls,
                tls_insecure: self.tls_insecure,
                policy: policy.clone(),
            },
            username: self.username.clone().filter(|u| !u.is_empty()),
            password: self.password.clone(),
        }
    }
}

fn yes() -> bool {
    true
}
fn inbox() -> String {
    "INBOX".into()
}
fn default_poll() -> u64 {
    DEFAULT_POLL_S
}

/// `Debug` shows no password (`secrets::redacted`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailSettings {
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Accept a self-signed or otherwise unverifiable certificate (never by default).
    #[serde(default)]
    pub tls_insecure: bool,
    pub username: String,
    pub password: String,
    #[serde(default = "inbox")]
    pub folder: String,
    #[serde(default = "default_poll")]
    pub poll_interval_s: u64,
    /// What happens on the server to an imported mail; default: IMAP marks it read, POP3 deletes it.
    #[serde(default)]
    pub after_import: Option<AfterImportSetting>,
    /// The address this mailbox receives at (plus-addressing EM-7, loop detection); defaults to the
    /// SMTP From address.
    #[serde(default)]
    pub address: Option<String>,
    /// EM-8: unknown senders get a customer record; off → their mail is rejected (and logged).
    #[serde(default = "yes")]
    pub accept_unknown_senders: bool,
    /// EM-10: TO and CC addresses of a new ticket's first mail become its subscribers.
    #[serde(default = "yes")]
    pub subscribe_recipients: bool,
    /// EM-11: a mail an agent forwards (`Fwd:`/`Fw:`) becomes a ticket of the original sender.
    #[serde(default = "yes")]
    pub extract_forwarded_sender: bool,
    pub smtp: SmtpConfig,
}

impl EmailSettings {
    /// A mailbox's settings text; `None` when unset or unreadable. `channels::settings::read`
    /// dispatches here by kind.
    pub fn of(raw: &str) -> Option<Self> {
        serde_json::from_str(raw).ok()
    }

    /// Nothing configured yet (an email channel made through the generic channel API): every
    /// required field empty, so validation names them all.
    pub fn unset() -> Self {
        Self {
            protocol: Protocol::Imap,
            host: String::new(),
            port: 993,
            tls: TlsMode::Implicit,
            tls_insecure: false,
            username: String::new(),
            password: String::new(),
            folder: inbox(),
            poll_interval_s: DEFAULT_POLL_S,
            after_import: None,
            address: None,
            accept_unknown_senders: true,
            subscribe_recipients: true,
            extract_forwarded_sender: true,
            smtp: SmtpConfig {
                host: String::new(),
                port: 587,
                tls: TlsMode::Starttls,
                tls_insecure: false,
                username: None,
                password: None,
                from_address: String::new(),
                from_name: None,
                reply_to: None,
                use_from_name_for_all: false,
            },
        }
    }

    /// Where to read mail, reached under `policy`.
    pub fn endpoint(&self, policy: &crate::outbound::Policy) -> Endpoint {
        Endpoint {
            host: self.host.clone(),
            port: self.port,
            tls: self.tls,
            tls_insecure: self.tls_insecure,
            policy: policy.clone(),
        }
    }

    pub fn credentials(&self) -> Credentials {
        Credentials { username: self.username.clone(), password: self.password.clone() }
    }

    pub fn after_import(&self) -> AfterImport {
        match (self.after_import, self.protocol) {
            (Some(a), _) => a.into(),
            (None, Protocol::Imap) => AfterImport::MarkRead,
            (None, Protocol::Pop3) => AfterImport::Delete,
        }
    }

    /// Every address that is "us": the mailbox's, the From address, the Reply-To.
    pub fn our_addresses(&self) -> Vec<String> {
        let mut out: Vec<String> = [Some(&self.smtp.from_address), self.address.as_ref(), self.smtp.reply_to.as_ref()]
            .into_iter()
            .flatten()
            .map(|a| a.trim().to_lowercase())
            .filter(|a| a.contains('@'))
            .collect();
        if self.username.contains('@') {
            out.push(self.username.trim().to_lowercase());
        }
        out.sort();
        out.dedup();
        out
    }

    /// The domain of our Message-IDs: the From address's.
    pub fn message_id_domain(&self) -> String {
        self.smtp
            .from_address
            .rsplit_once('@')
            .map(|(_, d)| d.trim().to_lowercase())
            .unwrap_or_else(|| "localhost".into())
    }

    pub fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.poll_interval_s.clamp(MIN_POLL_S, MAX_POLL_S))
    }

    /// Every problem, as `(field, message)`; empty when valid.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let host_ok = |h: &str| !h.trim().is_empty() && h.len() <= 253 && !h.contains(char::is_whitespace);
        if !host_ok(&self.host) {
            out.push(("host", "must be a host name or address".into()));
        }
        if self.port == 0 {
            out.push(("port", "must be 1–65535".into()));
        }
        if self.username.trim().is_empty() || self.username.len() > 320 {
            out.push(("username", "must be 1–320 characters".into()));
        }
        if self.password.is_empty() || self.password.len() > 1024 {
            out.push(("password", "must be 1–1024 characters".into()));
        }
        if self.folder.trim().is_empty() || self.folder.len() > 255 {
            out.push(("folder", "must be 1–255 characters".into()));
        }
        if !(MIN_POLL_S..=MAX_POLL_S).contains(&self.poll_interval_s) {
            out.push(("poll_interval_s", format!("must be {MIN_POLL_S}–{MAX_POLL_S} seconds")));
        }
        if self.protocol == Protocol::Pop3 && self.folder != "INBOX" {
            out.push(("folder", "POP3 has one mailbox only: use INBOX".into()));
        }
        if let Some(a) = &self.address
            && crate::domain::text::normalize_email(a).is_none()
        {
            out.push(("address", "is not a valid email address".into()));
        }
        if !host_ok(&self.smtp.host) {
            out.push(("smtp.host", "must be a host name or address".into()));
        }
        if self.smtp.port == 0 {
            out.push(("smtp.port", "must be 1–65535".into()));
        }
        if crate::domain::text::normalize_email(&self.smtp.from_address).is_none() {
            out.push(("smtp.from_address", "is not a valid email address".into()));
        }
        if let Some(r) = &self.smtp.reply_to
            && crate::domain::text::normalize_email(r).is_none()
        {
            out.push(("smtp.reply_to", "is not a valid email address".into()));
        }
        if self.smtp.from_name.as_deref().is_some_and(|n| n.chars().count() > 200 || n.contains(['\r', '\n'])) {
            out.push(("smtp.from_name", "must be at most 200 characters on one line".into()));
        }
        out
    }
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmtpConfig {}", crate::secrets::redacted(self))
    }
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EmailSettings {}", crate::secrets::redacted(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "protocol": "imap", "host": "127.0.0.1", "port": 10143, "tls": "none",
            "username": "support", "password": "pw", "folder": "INBOX", "poll_interval_s": 60,
            "smtp": {"host": "127.0.0.1", "port": 10025, "tls": "none", "from_address": "Support@Example.com",
                     "from_name": "Support", "reply_to": "support@example.com"}
        })
    }

    #[test]
    fn the_documented_body_reads_with_defaults() {
        let s: EmailSettings = serde_json::from_value(sample()).unwrap();
        assert!(s.problems().is_empty(), "{:?}", s.problems());
        assert!(s.accept_unknown_senders && s.subscribe_recipients && s.extract_forwarded_sender);
        assert_eq!(s.after_import(), AfterImport::MarkRead);
        assert_eq!(s.our_addresses(), vec!["support@example.com".to_owned()]);
        assert_eq!(s.message_id_domain(), "example.com");
    }

    #[test]
    fn debug_shows_no_password() {
        let mut v = sample();
        v["smtp"]["password"] = "smtp-pw".into();
        let s: EmailSettings = serde_json::from_value(v).unwrap();
        let shown = format!("{s:?} {:?}", s.smtp);
        assert!(!shown.contains("\"pw\"") && !shown.contains("smtp-pw") && shown.contains("127.0.0.1"), "{shown}");
    }

    #[test]
    fn pop3_deletes_by_default_and_has_only_an_inbox() {
        let mut v = sample();
        v["protocol"] = "pop3".into();
        let s: EmailSettings = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(s.after_import(), AfterImport::Delete);
        v["folder"] = "Archive".into();
        let s: EmailSettings = serde_json::from_value(v).unwrap();
        assert!(s.problems().iter().any(|(f, _)| *f == "folder"));
    }

    #[test]
    fn bad_values_are_named() {
        let mut v = sample();
        v["poll_interval_s"] = 1.into();
        v["host"] = "".into();
        v["smtp"]["from_address"] = "nope".into();
        let s: EmailSettings = serde_json::from_value(v).unwrap();
        let fields: Vec<_> = s.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, vec!["host", "poll_interval_s", "smtp.from_address"]);
    }
}
