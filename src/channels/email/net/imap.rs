//! The IMAP client (EM-1; IDLE for EM-4) on `async-imap`: log in (after `STARTTLS` when asked), select the folder
//! (never create it), list the unseen mails by UID, fetch one with `BODY.PEEK[]`, mark it `\Seen` or `\Deleted` +
//! expunge (`UID EXPUNGE` when the server offers UIDPLUS, so other clients' deleted mails are left alone; plain
//! `EXPUNGE` otherwise), IDLE until the server reports a change, log out.
//!
//! Keys are `"<uidvalidity>:<uid>"` ([`mail_key`]): when the server renumbers the folder (a new UIDVALIDITY) the old
//! keys no longer match anything, and a fetch of one is [`NetError::NotFound`].

use std::collections::HashSet;

use async_imap::error::Error as ImapError;
use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{Response, Status};
use async_imap::types::UnsolicitedResponse;
use futures_util::TryStreamExt;

use super::tls::{self, NetStream};
use super::{AfterImport, Credentials, Endpoint, MailKey, NetError, TlsMode, Waiting};

type Inner = async_imap::Session<NetStream>;

/// A logged-in IMAP connection with one folder selected.
#[derive(Debug)]
pub struct ImapSession {
    /// `None` only while IDLE holds it, or after IDLE failed half-way (then every call says so).
    session: Option<Inner>,
    folder: String,
    uid_validity: u32,
    capabilities: HashSet<String>,
}

/// The key of the mail with `uid` in a folder whose UIDVALIDITY is `uid_validity`.
pub fn mail_key(uid_validity: u32, uid: u32) -> MailKey {
    MailKey(format!("{uid_validity}:{uid}"))
}

/// The `(uidvalidity, uid)` of a key made by [`mail_key`].
pub fn parse_mail_key(key: &MailKey) -> Option<(u32, u32)> {
    let (validity, uid) = key.0.split_once(':')?;
    Some((validity.parse().ok()?, uid.parse().ok().filter(|uid| *uid > 0)?))
}

/// A UID set for a command: `3,4,5,9` → `"3:5,9"` (ranges keep long lists short).
pub fn uid_set(uids: &[u32]) -> String {
    let sorted = sorted_uids(uids.iter().copied());
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// The unseen, undeleted UIDs, oldest (lowest UID) first.
pub fn sorted_uids(uids: impl IntoIterator<Item = u32>) -> Vec<u32> {
    let mut uids: Vec<u32> = uids.into_iter().collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}

fn net_error(e: ImapError) -> NetError {
    match e {
        ImapError::Io(e) => io_error(e),
        ImapError::ConnectionLost => NetError::Io(std::io::ErrorKind::UnexpectedEof.into()),
        ImapError::Parse(_) => not_imap(),
        other => NetError::Protocol(other.to_string()),
    }
}

/// async-imap reports an answer it cannot parse as an `io::Error` of kind `Other` quoting the bytes received. What a
/// server that does not speak IMAP sent (an HTTP server on the port, say) is never shown to anyone.
fn io_error(e: std::io::Error) -> NetError {
    if e.kind() == std::io::ErrorKind::Other { not_imap() } else { NetError::Io(e) }
}

fn not_imap() -> NetError {
    NetError::Protocol("the server's answer is not IMAP".into())
}

fn lost() -> NetError {
    NetError::Protocol("the IMAP session was lost during IDLE; connect again".into())
}

impl ImapSession {
    pub async fn connect(ep: &Endpoint, creds: &Credentials, folder: &str) -> Result<ImapSession, NetError> {
        let stream = tls::connect(ep).await?;
        let mut client = async_imap::Client::new(stream);
        read_greeting(&mut client).await?;
        if ep.tls == TlsMode::Starttls {
            client.run_command_and_check_ok("STARTTLS", None).await.map_err(|e| match e {
                ImapError::No(m) | ImapError::Bad(m) => {
                    NetError::Tls { host: ep.host.clone(), message: format!("the server refused STARTTLS: {m}") }
                }
                e => net_error(e),
            })?;
            let stream = tls::upgrade(client.into_inner(), ep).await?;
            client = async_imap::Client::new(stream);
        }
        let mut session = client.login(&creds.username, &creds.password).await.map_err(|(e, _)| match e {
            ImapError::No(m) | ImapError::Bad(m) => NetError::Auth(m),
            ImapError::Validate(e) => NetError::Auth(format!("the username or password cannot be sent: {e}")),
            e => net_error(e),
        })?;
        // Ask again after login: servers announce more (IDLE, UIDPLUS) once authenticated.
        let capabilities = session
            .capabilities()
            .await
            .map_err(net_error)?
            .iter()
            .map(|c| match c {
                async_imap::types::Capability::Imap4rev1 => "IMAP4REV1".to_owned(),
                async_imap::types::Capability::Auth(m) => format!("AUTH={}", m.to_ascii_uppercase()),
                async_imap::types::Capability::Atom(a) => a.to_ascii_uppercase(),
            })
            .collect();
        let folder = if folder.trim().is_empty() { "INBOX" } else { folder };
        let mailbox = session.select(folder).await.map_err(|e| match e {
            ImapError::No(message) | ImapError::Bad(message) => {
                NetError::MissingFolder { folder: folder.to_owned(), message }
            }
            ImapError::Validate(e) => NetError::MissingFolder { folder: folder.to_owned(), message: e.to_string() },
            e => net_error(e),
        })?;
        let uid_validity = mailbox
            .uid_validity
            .ok_or_else(|| NetError::Protocol(format!("the server gave no UIDVALIDITY for {folder:?}")))?;
        Ok(ImapSession { session: Some(session), folder: folder.to_owned(), uid_validity, capabilities })
    }

    fn inner(&mut self) -> Result<&mut Inner, NetError> {
        self.session.as_mut().ok_or_else(lost)
    }

    pub fn folder(&self) -> &str {
        &self.folder
    }

    pub fn uid_validity(&self) -> u32 {
        self.uid_validity
    }

    /// Whether the server announced this capability (after login), e.g. `"IDLE"`, `"UIDPLUS"`.
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.contains(&name.to_ascii_uppercase())
    }

    pub fn supports_idle(&self) -> bool {
        self.has_capability("IDLE")
    }

    /// The unseen, undeleted mails of the folder, oldest first.
    pub async fn pending(&mut self) -> Result<Vec<MailKey>, NetError> {
        let validity = self.uid_validity;
        Ok(self.pending_uids().await?.into_iter().map(|uid| mail_key(validity, uid)).collect())
    }

    async fn pending_uids(&mut self) -> Result<Vec<u32>, NetError> {
        Ok(sorted_uids(self.inner()?.uid_search("UNSEEN UNDELETED").await.map_err(net_error)?))
    }

    /// [`Self::pending`] with each mail's size (`RFC822.SIZE`), in one more round trip.
    pub async fn waiting(&mut self) -> Result<Vec<Waiting>, NetError> {
        let uids = self.pending_uids().await?;
        if uids.is_empty() {
            return Ok(vec![]);
        }
        let fetches: Vec<_> = self
            .inner()?
            .uid_fetch(uid_set(&uids), "(UID RFC822.SIZE)")
            .await
            .map_err(net_error)?
            .try_collect()
            .await
            .map_err(net_error)?;
        let sizes: std::collections::HashMap<u32, u64> =
            fetches.iter().filter_map(|f| Some((f.uid?, u64::from(f.size?)))).collect();
        let validity = self.uid_validity;
        Ok(uids
            .into_iter()
            .map(|uid| Waiting { key: mail_key(validity, uid), size: sizes.get(&uid).copied() })
            .collect())
    }

    fn uid_of(&self, key: &MailKey) -> Result<u32, NetError> {
        match parse_mail_key(key) {
            Some((validity, uid)) if validity == self.uid_validity => Ok(uid),
            _ => Err(NetError::NotFound(key.clone())),
        }
    }

    /// The raw mail, without setting `\Seen`.
    pub async fn fetch(&mut self, key: &MailKey) -> Result<Vec<u8>, NetError> {
        let mut found = self.fetch_many(std::slice::from_ref(key)).await?;
        found.pop().map(|(_, raw)| raw).ok_or_else(|| NetError::NotFound(key.clone()))
    }

    /// Several mails in one `UID FETCH`, in the order of `keys`, without setting `\Seen`. Mails no longer on the
    /// server (or of an older UIDVALIDITY) are left out.
    pub async fn fetch_many(&mut self, keys: &[MailKey]) -> Result<Vec<(MailKey, Vec<u8>)>, NetError> {
        let wanted: Vec<(u32, &MailKey)> = keys.iter().filter_map(|k| Some((self.uid_of(k).ok()?, k))).collect();
        if wanted.is_empty() {
            return Ok(vec![]);
        }
        let uids: Vec<u32> = wanted.iter().map(|(uid, _)| *uid).collect();
        let fetches: Vec<_> = self
            .inner()?
            .uid_fetch(uid_set(&uids), "(UID BODY.PEEK[])")
            .await
            .map_err(net_error)?
            .try_collect()
            .await
            .map_err(net_error)?;
        Ok(wanted
            .into_iter()
            .filter_map(|(uid, key)| {
                let body = fetches.iter().find(|f| f.uid == Some(uid)).and_then(|f| f.body())?;
                Some((key.clone(), body.to_vec()))
            })
            .collect())
    }

    /// `\Seen`, or `\Deleted` and expunged.
    pub async fn ack(&mut self, key: &MailKey, after: AfterImport) -> Result<(), NetError> {
        self.uid_of(key)?;
        self.ack_many(std::slice::from_ref(key), after).await
    }

    /// [`Self::ack`] for several mails: one `UID STORE` (and one `UID EXPUNGE`). Keys of an older UIDVALIDITY are
    /// skipped: those mails are not in this folder any more.
    pub async fn ack_many(&mut self, keys: &[MailKey], after: AfterImport) -> Result<(), NetError> {
        let uids: Vec<u32> = keys.iter().filter_map(|k| self.uid_of(k).ok()).collect();
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(&uids);
        let uidplus = self.has_capability("UIDPLUS");
        let session = self.inner()?;
        let flag = match after {
            AfterImport::MarkRead => "+FLAGS.SILENT (\\Seen)",
            AfterImport::Delete => "+FLAGS.SILENT (\\Deleted)",
        };
        let _: Vec<_> =
            session.uid_store(&set, flag).await.map_err(net_error)?.try_collect().await.map_err(net_error)?;
        if after == AfterImport::Delete {
            if uidplus {
                let _: Vec<_> =
                    session.uid_expunge(&set).await.map_err(net_error)?.try_collect().await.map_err(net_error)?;
            } else {
                // Without UIDPLUS this also removes mails other clients marked \Deleted in this folder.
                let _: Vec<_> = session.expunge().await.map_err(net_error)?.try_collect().await.map_err(net_error)?;
            }
        }
        Ok(())
    }

    /// Wait for the server to report a change (`true`) or for `max` to pass (`false`).
    pub async fn idle(&mut self, max: std::time::Duration) -> Result<bool, NetError> {
        if !self.supports_idle() {
            return Err(NetError::Unsupported("this IMAP server does not offer IDLE".into()));
        }
        // New mail announced while we were busy with other commands: no need to wait.
        let session = self.inner()?;
        let mut announced = false;
        while let Ok(response) = session.unsolicited_responses.try_recv() {
            announced |= matches!(response, UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_));
        }
        if announced {
            return Ok(true);
        }
        let session = self.session.take().ok_or_else(lost)?;
        let mut handle = session.idle();
        handle.init().await.map_err(net_error)?;
        let changed = {
            let (wait, stop) = handle.wait_with_timeout(max);
            // The library restarts its timer on every keep-alive line; bound the whole wait as well.
            let outcome = tokio::time::timeout(max, wait).await;
            drop(stop);
            match outcome {
                Ok(Ok(IdleResponse::NewData(_))) => true,
                Ok(Ok(IdleResponse::Timeout | IdleResponse::ManualInterrupt)) | Err(_) => false,
                Ok(Err(e)) => return Err(net_error(e)),
            }
        };
        let session = handle.done().await.map_err(net_error)?;
        self.session = Some(session);
        Ok(changed)
    }

    /// `LOGOUT`.
    pub async fn close(mut self) -> Result<(), NetError> {
        match self.session.take() {
            Some(mut session) => session.logout().await.map_err(net_error),
            None => Ok(()),
        }
    }
}

/// The server's first line: `* OK` (go on), `* PREAUTH` (refused: we log in ourselves), `* BYE` (refused).
async fn read_greeting(client: &mut async_imap::Client<NetStream>) -> Result<(), NetError> {
    let greeting = client
        .read_response()
        .await
        .map_err(io_error)?
        .ok_or_else(|| NetError::Protocol("the server closed the connection before its greeting".into()))?;
    match greeting.parsed() {
        Response::Data { status: Status::Ok, .. } => Ok(()),
        Response::Data { status, outcome } => Err(NetError::Protocol(format!(
            "unexpected IMAP greeting {status:?}: {}",
            outcome.information.as_deref().unwrap_or("")
        ))),
        _ => Err(NetError::Protocol("the server's greeting is not an IMAP greeting".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let key = mail_key(1_796_131_542, 17);
        assert_eq!(key.0, "1796131542:17");
        assert_eq!(parse_mail_key(&key), Some((1_796_131_542, 17)));
    }

    #[test]
    fn malformed_keys_are_not_parsed() {
        for bad in ["", "17", ":17", "1:", "a:1", "1:b", "1:0", "1:2:3", "-1:2", "1: 2"] {
            assert_eq!(parse_mail_key(&MailKey(bad.into())), None, "{bad:?}");
        }
    }

    #[test]
    fn uid_sets_use_ranges() {
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[9, 3, 4, 5, 12, 11, 4]), "3:5,9,11:12");
        assert_eq!(uid_set(&[1, 3, 5]), "1,3,5");
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[u32::MAX - 1, u32::MAX]), format!("{}:{}", u32::MAX - 1, u32::MAX));
    }

    #[test]
    fn uids_are_oldest_first_without_duplicates() {
        assert_eq!(sorted_uids([9, 3, 12, 3, 1]), vec![1, 3, 9, 12]);
    }
}
