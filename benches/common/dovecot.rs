//! A private Dovecot for the email benchmark (`benches/email_import.rs`, issue #5): the part of the test fixture
//! `tests/common/mail.rs` the benchmark needs, copied because that module also requires aiosmtpd (its SMTP sink),
//! which a benchmark has no use for.
//!
//! Debian's Dovecot (`dovecot-imapd`) with its own configuration file (`dovecot -F -c FILE`): plain IMAP only, on a
//! free loopback port, one passwd-file user, the mailbox a maildir in a temporary folder. `ssl = no`, so the server
//! offers no STARTTLS: every client (Switchboard with `"tls": "none"`, django-helpdesk, which tries STARTTLS first
//! and falls back) reads it unencrypted, on equal terms. Mail is delivered by writing into the maildir (`tmp/` then
//! rename into `new/`) as a delivery agent does; the maildir's file names tell what is left, `\Seen` or `\Deleted`,
//! and `dovecot-uidlist` in which order the server hands the mails out.
//! As in the fixture, `mailbox_idle_check_interval = 1 secs` (Dovecot learns of new mail at once through inotify;
//! this is only its fallback).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub const DOVECOT: &str = "/usr/sbin/dovecot";
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// The one mailbox user (its address is one of "ours" for the junk rules, as the login of the mailbox).
pub const USER: &str = "desk@example.test";
/// With a space and a quote, like the fixture's: IMAP quoting has to cope.
const PASSWORD: &str = "s3cret \"pass\" word";

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Send SIGTERM, wait up to 10 s, then SIGKILL.
fn terminate(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A mail left in the maildir: its file name (without flags), flags, and UID when Dovecot gave it one.
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
    port: u16,
    /// Owner of the maildir files when we run as root (Dovecot will not read mail as root).
    mail_owner: Option<(u32, u32)>,
}

impl Dovecot {
    /// Start on a free loopback port (three tries, in case the port is taken between choosing and binding).
    pub fn start() -> anyhow::Result<Dovecot> {
        if !Path::new(DOVECOT).exists() {
            bail!("{DOVECOT} not found (Debian: apt-get install dovecot-imapd)");
        }
        let dir = tempfile::Builder::new().prefix("sb-bench-dovecot-").tempdir()?;
        // The mail processes run as another user: they must be able to reach the maildir.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let mail_owner = is_root().then_some((65534, 65534));
        let mut d = Dovecot { config: dir.path().join("dovecot.conf"), dir, child: None, port: 0, mail_owner };
        d.prepare()?;
        let mut last = None;
        for _ in 0..3 {
            d.port = free_port();
            d.write_config()?;
            match d.spawn() {
                Ok(()) => return Ok(d),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("an error"))
    }

    pub fn imap_port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        USER
    }

    pub fn password(&self) -> &str {
        PASSWORD
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
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

    fn prepare(&self) -> anyhow::Result<()> {
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
        std::fs::write(root.join("users"), format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"))?;
        std::fs::set_permissions(root.join("users"), std::fs::Permissions::from_mode(0o644))?;
        Ok(())
    }

    fn write_config(&self) -> anyhow::Result<()> {
        let root = self.dir.path().display().to_string();
        let port = self.port;
        // SAFETY: geteuid/getegid have no preconditions.
        let (uid, gid) = self.mail_owner.unwrap_or_else(|| unsafe { (libc::geteuid(), libc::getegid()) });
        // Not root: Dovecot's "rootless" setup — every process as us, no chroot.
        let rootless = if self.mail_owner.is_none() {
            let me = std::env::var("USER").unwrap_or_else(|_| {
                let out = Command::new("id").arg("-un").output().map(|o| o.stdout).unwrap_or_default();
                String::from_utf8_lossy(&out).trim().to_owned()
            });
            format!(
                "default_internal_user = {me}\ndefault_login_user = {me}\n\
                 service anvil {{\n  chroot =\n}}\nservice imap-login {{\n  chroot =\n}}\n"
            )
        } else {
            String::new()
        };
        let config = format!(
            r#"# A private Dovecot for one benchmark run (benches/common/dovecot.rs).
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
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
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
}}
"#
        );
        std::fs::write(&self.config, config)?;
        Ok(())
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let out_path = self.dir.path().join("dovecot.out");
        let out = std::fs::File::create(&out_path)?;
        let mut child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("start dovecot")?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "dovecot exited ({status}) before answering on {}:\n{}",
                    self.port,
                    std::fs::read_to_string(&out_path).unwrap_or_default()
                );
            }
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                stream.set_read_timeout(Some(Duration::from_secs(5)))?;
                let mut line = String::new();
                if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("* OK") {
                    break;
                }
            }
            if Instant::now() > deadline {
                terminate(&mut child);
                bail!("dovecot did not answer on port {} in time:\n{}", self.port, self.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.child = Some(child);
        Ok(())
    }

    /// Put a mail into the inbox as a delivery agent would: written into `tmp/`, then renamed into `new/`
    /// (`fsync` first when `sync`). Returns the file name and the instant of the rename (the delivery).
    pub fn deliver(&self, raw: &[u8], sync: bool) -> anyhow::Result<(String, Instant)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        let name = format!("{}.M{}P{}Q{n}.switchboard-bench", now.as_secs(), now.subsec_micros(), std::process::id());
        let tmp = self.maildir().join("tmp").join(&name);
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(raw)?;
        if sync {
            file.sync_all()?;
        }
        drop(file);
        self.chown(&tmp)?;
        let at = Instant::now();
        std::fs::rename(&tmp, self.maildir().join("new").join(&name))?;
        Ok((name, at))
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
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}
