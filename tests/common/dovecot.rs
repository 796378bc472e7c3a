//! The one private Dovecot fixture, used by the email tests (through [`super::mail`]) and by the email
//! benchmark (`benches/email_import.rs` includes this file and `child.rs` with `#[path]`; #14 item 10).
//!
//! Debian's Dovecot (`dovecot-imapd`, `dovecot-pop3d`) with its own configuration file (`dovecot -F -c FILE`) on
//! free loopback ports, one passwd-file user, the mailbox a maildir in a temporary folder. [`Listeners::All`]
//! (tests): IMAP, IMAPS, POP3 and POP3S with a self-signed certificate made at start (`openssl req`).
//! [`Listeners::PlainImap`] (benchmark): plain IMAP only and `ssl = no`, so the server offers no STARTTLS and every
//! client reads it unencrypted, on equal terms. Mail is delivered by writing into the maildir (`tmp/` then rename
//! into `new/`) as a delivery agent does; the maildir's file names tell what is left, `\Seen` or `\Deleted`, and
//! `dovecot-uidlist` in which order the server hands the mails out. `stop` / `start_again` (same ports) make
//! "server down" tests. `mailbox_idle_check_interval = 1 secs` is only Dovecot's fallback: it learns of new mail
//! at once through inotify.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::child::{free_ports, is_root, read_log, self_signed_certificate, terminate, wait_ready};

pub const DOVECOT: &str = "/usr/sbin/dovecot";
/// The one mailbox user (also one of "our" addresses for the junk rules).
pub const USER: &str = "desk@example.test";
/// With a space and a quote: IMAP quoting and POP3's PASS both have to cope.
pub const PASSWORD: &str = "s3cret \"pass\" word";

/// Which servers the Dovecot offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listeners {
    /// IMAP, IMAPS, POP3 and POP3S, with TLS (the tests).
    All,
    /// Plain IMAP only, no TLS at all (the benchmark).
    PlainImap,
}

/// A mail in the maildir and its flags.
#[derive(Debug, Clone)]
pub struct StoredMail {
    pub raw: Vec<u8>,
    pub seen: bool,
    pub deleted: bool,
}

/// A mail left in the maildir, from its file name alone: the name (without flags), flags, and the UID when
/// Dovecot gave it one.
#[derive(Debug, Clone)]
pub struct Left {
    pub base: String,
    pub path: PathBuf,
    pub seen: bool,
    pub deleted: bool,
    pub uid: Option<u64>,
}

/// A private Dovecot. Stopped when dropped.
pub struct Dovecot {
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
    listeners: Listeners,
    /// IMAP, IMAPS, POP3, POP3S (only the first with [`Listeners::PlainImap`]).
    ports: [u16; 4],
    /// Owner of the maildir files when we run as root (Dovecot will not read mail as root).
    mail_owner: Option<(u32, u32)>,
}

impl Dovecot {
    /// Every listener on free loopback ports; panics (with Dovecot's log) when it does not come up.
    pub fn start() -> Dovecot {
        Self::try_start(Listeners::All).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Start with `listeners` on free loopback ports; the error carries Dovecot's log.
    pub fn try_start(listeners: Listeners) -> Result<Dovecot, String> {
        if !Path::new(DOVECOT).exists() {
            return Err(format!(
                "{DOVECOT} not found (Debian: dovecot-imapd dovecot-pop3d; scripts/test.sh installs them)"
            ));
        }
        let io = |e: std::io::Error| e.to_string();
        let dir = tempfile::Builder::new().prefix("sb-dovecot-").tempdir().map_err(io)?;
        // The mail processes run as another user: they must be able to reach the maildir.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).map_err(io)?;
        let mail_owner = is_root().then_some((65534, 65534));
        let mut dovecot =
            Dovecot { config: dir.path().join("dovecot.conf"), dir, child: None, listeners, ports: [0; 4], mail_owner };
        dovecot.prepare().map_err(io)?;
        // A port taken by someone else between choosing and binding makes Dovecot exit: choose again.
        let mut last = String::new();
        for _ in 0..3 {
            dovecot.ports = free_ports::<4>();
            dovecot.write_config().map_err(io)?;
            match dovecot.spawn() {
                Ok(()) => return Ok(dovecot),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn imap_port(&self) -> u16 {
        self.ports[0]
    }

    pub fn imaps_port(&self) -> u16 {
        self.ports[1]
    }

    pub fn pop3_port(&self) -> u16 {
        self.ports[2]
    }

    pub fn pop3s_port(&self) -> u16 {
        self.ports[3]
    }

    pub fn user(&self) -> &str {
        USER
    }

    pub fn password(&self) -> &str {
        PASSWORD
    }

    pub fn log(&self) -> String {
        read_log(&self.dir.path().join("dovecot.log"))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail").join(USER)
    }

    fn chown(&self, path: &Path) -> std::io::Result<()> {
        if let Some((uid, gid)) = self.mail_owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    fn prepare(&self) -> std::io::Result<()> {
        let root = self.dir.path();
        for sub in ["run", "state"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        let maildir = self.maildir();
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub))?;
        }
        for path in [root.join("mail"), maildir.clone(), maildir.join("tmp"), maildir.join("new"), maildir.join("cur")]
        {
            self.chown(&path)?;
        }
        if self.listeners == Listeners::All {
            self_signed_certificate(root);
        }
        std::fs::write(root.join("users"), format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"))?;
        std::fs::set_permissions(root.join("users"), std::fs::Permissions::from_mode(0o644))
    }

    fn write_config(&self) -> std::io::Result<()> {
        let root = self.dir.path().display().to_string();
        let [imap, imaps, pop3, pop3s] = self.ports;
        let all = self.listeners == Listeners::All;
        // SAFETY: geteuid/getegid have no preconditions.
        let (uid, gid) = self.mail_owner.unwrap_or_else(|| unsafe { (libc::geteuid(), libc::getegid()) });
        // Not root: Dovecot's "rootless" setup — every process as us, no chroot.
        let rootless = if self.mail_owner.is_none() {
            let me = std::env::var("USER").unwrap_or_else(|_| {
                let out = Command::new("id").arg("-un").output().map(|o| o.stdout).unwrap_or_default();
                String::from_utf8_lossy(&out).trim().to_owned()
            });
            let pop3_login = if all { "service pop3-login {\n  chroot =\n}\n" } else { "" };
            format!(
                "default_internal_user = {me}\ndefault_login_user = {me}\n\
                 service anvil {{\n  chroot =\n}}\nservice imap-login {{\n  chroot =\n}}\n{pop3_login}"
            )
        } else {
            String::new()
        };
        let (protocols, ssl, listeners) = if all {
            (
                "imap pop3",
                format!("ssl = yes\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem"),
                format!(
                    "service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n  \
                     inet_listener imaps {{\n    port = {imaps}\n    ssl = yes\n  }}\n}}\n\
                     service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  \
                     inet_listener pop3s {{\n    port = {pop3s}\n    ssl = yes\n  }}\n}}\n"
                ),
            )
        } else {
            (
                "imap",
                "ssl = no".to_owned(),
                format!("service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n}}\n"),
            )
        };
        let config = format!(
            r#"# A private Dovecot for one test or benchmark run (tests/common/dovecot.rs).
protocols = {protocols}
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
{ssl}
auth_mechanisms = plain login
disable_plaintext_auth = no
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
first_valid_gid = 1
mailbox_idle_check_interval = 1 secs
{rootless}passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/users
}}
userdb {{
  driver = static
  args = home={root}/mail/%u
}}
# No growing delay after failed logins from 127.0.0.1 (tests log in wrongly on purpose): without this
# listener the auth process has no penalty table.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{listeners}"#
        );
        std::fs::write(&self.config, config)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = self.dir.path().join("dovecot.out");
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("start dovecot: {e}"))?;
        let mut ready = wait_ready(&mut child, self.imap_port(), "* OK", &log);
        if self.listeners == Listeners::All {
            ready = ready
                .and_then(|()| wait_ready(&mut child, self.pop3_port(), "+OK", &log))
                .and_then(|()| wait_ready(&mut child, self.imaps_port(), "", &log))
                .and_then(|()| wait_ready(&mut child, self.pop3s_port(), "", &log));
        }
        if let Err(e) = ready {
            terminate(&mut child);
            return Err(format!("dovecot: {e}\n{}", self.log()));
        }
        self.child = Some(child);
        Ok(())
    }

    /// Stop the server (its ports refuse connections until [`Dovecot::start_again`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Start again on the same ports, with the same mailbox.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "Dovecot is running");
        self.spawn().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Put a mail into the inbox as a delivery agent would: written into `tmp/`, synced, then renamed into `new/`.
    pub fn deliver(&self, raw: &[u8]) {
        self.deliver_timed(raw, true);
    }

    /// [`Dovecot::deliver`], `fsync`ing first only when `sync`. Returns the file name and the instant of the
    /// rename (the delivery).
    pub fn deliver_timed(&self, raw: &[u8], sync: bool) -> (String, Instant) {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let name = format!("{}.M{}P{}Q{n}.switchboard", now.as_secs(), now.subsec_micros(), std::process::id());
        let tmp = self.maildir().join("tmp").join(&name);
        let mut file = std::fs::File::create(&tmp).expect("create a maildir file");
        file.write_all(raw).expect("write a maildir file");
        if sync {
            file.sync_all().expect("sync a maildir file");
        }
        drop(file);
        self.chown(&tmp).expect("chown for the mail user");
        let at = Instant::now();
        std::fs::rename(&tmp, self.maildir().join("new").join(&name)).expect("move into new/");
        (name, at)
    }

    /// The mails in the inbox (not yet expunged), with their flags.
    pub fn messages(&self) -> Vec<StoredMail> {
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            let mut entries: Vec<_> = std::fs::read_dir(self.maildir().join(sub))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            for path in entries {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let flags = name.rsplit_once(":2,").map(|(_, f)| f.to_owned()).unwrap_or_default();
                let mut raw = Vec::new();
                // A file can be renamed by Dovecot (new/ → cur/, flag changes) between listing and reading.
                let Ok(mut file) = std::fs::File::open(&path) else { continue };
                file.read_to_end(&mut raw).unwrap();
                found.push(StoredMail { raw, seen: flags.contains('S'), deleted: flags.contains('T') });
            }
        }
        found
    }

    /// How many mails the inbox holds.
    pub fn count(&self) -> usize {
        self.messages().len()
    }

    /// The UID Dovecot gave each file it has seen (`dovecot-uidlist`: `UID [extensions] :filename`).
    fn uids(&self) -> HashMap<String, u64> {
        let text = std::fs::read_to_string(self.maildir().join("dovecot-uidlist")).unwrap_or_default();
        let mut out = HashMap::new();
        for line in text.lines().skip(1) {
            let Some((head, file)) = line.split_once(':') else { continue };
            let Some(uid) = head.split_whitespace().next().and_then(|u| u.parse().ok()) else { continue };
            let base = file.split_once(":2,").map_or(file, |(b, _)| b);
            out.insert(base.to_owned(), uid);
        }
        out
    }

    /// The mails in the inbox (not expunged), from their file names alone, in UID order (mails without a UID last).
    pub fn left(&self) -> Vec<Left> {
        let uids = self.uids();
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(dir) = std::fs::read_dir(self.maildir().join(sub)) else { continue };
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let (base, flags) = name.split_once(":2,").unwrap_or((name.as_str(), ""));
                out.push(Left {
                    base: base.to_owned(),
                    path: entry.path(),
                    seen: flags.contains('S'),
                    deleted: flags.contains('T'),
                    uid: uids.get(base).copied(),
                });
            }
        }
        out.sort_by_key(|l| (l.uid.unwrap_or(u64::MAX), l.base.clone()));
        out
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}
