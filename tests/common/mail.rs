//! Real mail servers for the email tests (EM-1, EM-4, EO-1, EO-3), each private to one test:
//!
//! - [`Dovecot`]: Debian's Dovecot (`dovecot-imapd`, `dovecot-pop3d`) with its own configuration file
//!   (`dovecot -F -c FILE`): IMAP, IMAPS, POP3 and POP3S on free loopback ports, a self-signed certificate made at
//!   start (`openssl req`), one passwd-file user, the mailbox a maildir in a temporary folder. Mail is delivered by
//!   writing into the maildir (`tmp/` then rename into `new/`), and the maildir tells what is left and what is
//!   `\Seen`. `stop` / `start_again` (same ports) make "server down" tests.
//! - [`SmtpSink`]: `python -m aiosmtpd` with a small handler that writes each mail it receives (envelope + the
//!   exact bytes) into a folder, optionally with STARTTLS or implicit TLS; [`SmtpSink::wait_for`] reads them back.
//!
//! Both need tools from outside the crate: `/usr/sbin/dovecot`, `openssl`, and a Python with aiosmtpd
//! (`SWITCHBOARD_TEST_AIOSMTPD_PYTHON`, default `python3`); `scripts/test.sh` installs them (`ensure_mail_servers`).
//! A test calls [`dovecot`], [`smtp_sink`] or [`mail_servers`] (both) first: without the tools it says it is
//! skipped and returns, unless `SWITCHBOARD_REQUIRE_TOOLS=1` (then it fails).
//!
//! ```ignore
//! if !common::mail::dovecot("my_test") { return; }
//! let dovecot = common::mail::Dovecot::start();
//! dovecot.deliver(b"From: a@b.test\r\nSubject: hi\r\n\r\nbody\r\n");
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const DOVECOT: &str = "/usr/sbin/dovecot";
/// How long a server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The Python that runs aiosmtpd.
pub fn aiosmtpd_python() -> String {
    std::env::var("SWITCHBOARD_TEST_AIOSMTPD_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into())
}

/// What a fixture needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// Dovecot and openssl.
    Dovecot,
    /// aiosmtpd (and openssl for its TLS modes).
    SmtpSink,
}

/// The tools that are missing, each with the fixture that needs it.
fn missing_tools() -> &'static [(Tool, String)] {
    static MISSING: OnceLock<Vec<(Tool, String)>> = OnceLock::new();
    MISSING.get_or_init(|| {
        let mut missing = Vec::new();
        if !Path::new(DOVECOT).exists() {
            missing.push((Tool::Dovecot, format!("{DOVECOT} (Debian: dovecot-imapd dovecot-pop3d)")));
        }
        let runs = |cmd: &str, args: &[&str]| {
            Command::new(cmd).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
        };
        if !runs("openssl", &["version"]) {
            missing.push((Tool::Dovecot, "openssl".into()));
            missing.push((Tool::SmtpSink, "openssl".into()));
        }
        let python = aiosmtpd_python();
        if !runs(&python, &["-c", "import aiosmtpd"]) {
            missing
                .push((Tool::SmtpSink, format!("aiosmtpd for {python} (PyPI; set SWITCHBOARD_TEST_AIOSMTPD_PYTHON)")));
        }
        missing
    })
}

fn missing_for(tools: &[Tool]) -> Vec<&'static str> {
    let mut names: Vec<&str> =
        missing_tools().iter().filter(|(t, _)| tools.contains(t)).map(|(_, name)| name.as_str()).collect();
    names.dedup();
    names
}

/// Whether the fixtures in `tools` can run here. Without them: panics under `SWITCHBOARD_REQUIRE_TOOLS=1`, else
/// prints that `test` is skipped and returns `false`.
pub fn available(test: &str, tools: &[Tool]) -> bool {
    let missing = missing_for(tools);
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(", ");
    assert!(
        std::env::var("SWITCHBOARD_REQUIRE_TOOLS").is_err(),
        "{test} needs {missing} (SWITCHBOARD_REQUIRE_TOOLS is set, so it may not be skipped)"
    );
    eprintln!("{test}: skipped — missing {missing} (scripts/test.sh installs them)");
    false
}

/// [`available`] for [`Dovecot`].
pub fn dovecot(test: &str) -> bool {
    available(test, &[Tool::Dovecot])
}

/// [`available`] for [`SmtpSink`].
pub fn smtp_sink(test: &str) -> bool {
    available(test, &[Tool::SmtpSink])
}

/// [`available`] for both fixtures.
pub fn mail_servers(test: &str) -> bool {
    available(test, &[Tool::Dovecot, Tool::SmtpSink])
}

fn require(tool: Tool) {
    let missing = missing_for(&[tool]);
    assert!(missing.is_empty(), "the {tool:?} fixture needs {} (scripts/test.sh installs them)", missing.join(", "));
}

/// Free loopback ports (bound together, then released).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> =
        (0..N).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port")).collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// A port where nothing listens (for "wrong port" tests).
pub fn closed_port() -> u16 {
    free_ports::<1>()[0]
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A self-signed server certificate for `localhost` and 127.0.0.1: (certificate, key) PEM files in `dir`.
pub fn self_signed_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "2"])
        // A server certificate, not the CA certificate `req -x509` makes by default: a verifying client then
        // refuses it for what it is (an unknown issuer).
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl req failed: {}", String::from_utf8_lossy(&out.stderr));
    // Dovecot reads the key as root before dropping privileges; aiosmtpd runs as us. Readable is enough.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    (cert, key)
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

/// Wait until `port` accepts a connection whose first line starts with `greeting` (or, when `greeting` is empty,
/// until it accepts at all); fails early when `child` exits. `log` is shown on failure.
fn wait_ready(child: &mut Child, port: u16, greeting: &str, log: &Path) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited ({status}) before answering on {port}:\n{}", read_log(log));
        }
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            if greeting.is_empty() {
                return;
            }
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut line = String::new();
            if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with(greeting) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the server did not answer on port {port} in time:\n{}", read_log(log));
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()))
}

/// A mail in the maildir and its flags.
#[derive(Debug, Clone)]
pub struct StoredMail {
    pub raw: Vec<u8>,
    pub seen: bool,
    pub deleted: bool,
}

/// A private Dovecot. Stopped when dropped.
pub struct Dovecot {
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
    ports: [u16; 4],
    /// Owner of the maildir files when we run as root (Dovecot will not read mail as root).
    mail_owner: Option<(u32, u32)>,
}

const USER: &str = "desk@example.test";
/// With a space and a quote: IMAP quoting and POP3's PASS both have to cope.
const PASSWORD: &str = "s3cret \"pass\" word";

impl Dovecot {
    /// Start on free loopback ports; panics (with Dovecot's log) when it does not come up.
    pub fn start() -> Dovecot {
        require(Tool::Dovecot);
        let dir = tempfile::Builder::new().prefix("sb-dovecot-").tempdir().expect("temp dir");
        // The mail processes run as another user: they must be able to reach the maildir.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mail_owner = is_root().then_some((65534, 65534));
        let mut dovecot =
            Dovecot { config: dir.path().join("dovecot.conf"), dir, child: None, ports: [0; 4], mail_owner };
        dovecot.prepare();
        // A port taken by someone else between choosing and binding makes Dovecot exit: choose again.
        for attempt in 1..=3 {
            dovecot.ports = free_ports::<4>();
            dovecot.write_config();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dovecot.spawn())) {
                Ok(()) => return dovecot,
                Err(e) if attempt == 3 => std::panic::resume_unwind(e),
                Err(_) => {}
            }
        }
        unreachable!()
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

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail").join(USER)
    }

    fn chown(&self, path: &Path) {
        if let Some((uid, gid)) = self.mail_owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown for the mail user");
        }
    }

    fn prepare(&self) {
        let root = self.dir.path();
        for sub in ["run", "state"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let maildir = self.maildir();
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        for path in [root.join("mail"), maildir.clone(), maildir.join("tmp"), maildir.join("new"), maildir.join("cur")]
        {
            self.chown(&path);
        }
        self_signed_certificate(root);
        std::fs::write(root.join("users"), format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n")).unwrap();
        std::fs::set_permissions(root.join("users"), std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    fn write_config(&self) {
        let root = self.dir.path().display().to_string();
        let [imap, imaps, pop3, pop3s] = self.ports;
        let (uid, gid) = self.mail_owner.unwrap_or_else(|| unsafe { (libc::geteuid(), libc::getegid()) });
        // Not root: Dovecot's "rootless" setup — every process as us, no chroot.
        let rootless = if self.mail_owner.is_none() {
            let me = std::env::var("USER").unwrap_or_else(|_| {
                let out = Command::new("id").arg("-un").output().expect("id -un");
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            });
            format!(
                "default_internal_user = {me}\ndefault_login_user = {me}\n\
                 service anvil {{\n  chroot =\n}}\nservice imap-login {{\n  chroot =\n}}\n\
                 service pop3-login {{\n  chroot =\n}}\n"
            )
        } else {
            String::new()
        };
        let config = format!(
            r#"# A private Dovecot for one test (tests/common/mail.rs).
protocols = imap pop3
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
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
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
"#
        );
        std::fs::write(&self.config, config).unwrap();
    }

    fn spawn(&mut self) {
        let out = std::fs::File::create(self.dir.path().join("dovecot.out")).unwrap();
        let mut child = Command::new(DOVECOT)
            .arg("-F")
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start dovecot");
        let log = self.dir.path().join("dovecot.out");
        let ready = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_ready(&mut child, self.imap_port(), "* OK", &log);
            wait_ready(&mut child, self.pop3_port(), "+OK", &log);
            wait_ready(&mut child, self.imaps_port(), "", &log);
            wait_ready(&mut child, self.pop3s_port(), "", &log);
        }));
        if let Err(e) = ready {
            terminate(&mut child);
            std::panic::resume_unwind(e);
        }
        self.child = Some(child);
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
        self.spawn();
    }

    /// Put a mail into the inbox as a delivery agent would: written into `tmp/`, then renamed into `new/`.
    pub fn deliver(&self, raw: &[u8]) {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let name = format!("{}.M{}P{}Q{n}.switchboard-test", now.as_secs(), now.subsec_micros(), std::process::id());
        let tmp = self.maildir().join("tmp").join(&name);
        let mut file = std::fs::File::create(&tmp).expect("create a maildir file");
        file.write_all(raw).unwrap();
        file.sync_all().unwrap();
        drop(file);
        self.chown(&tmp);
        std::fs::rename(&tmp, self.maildir().join("new").join(&name)).expect("move into new/");
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
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One mail the sink received.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The DATA exactly as received (dot-unstuffed).
    pub raw: Vec<u8>,
}

/// How the sink is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    None,
    /// STARTTLS offered and required before MAIL FROM.
    Starttls,
    /// SMTPS: TLS from the first byte.
    Implicit,
}

const SINK_HANDLER: &str = r#"# The SMTP sink's handler (tests/common/mail.rs): each mail into out_dir/new.
import json
import os
import time


class Sink:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("Sink takes one argument: the output folder")
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = "%020d-%06d" % (time.time_ns(), self.count)
        meta = {"mail_from": envelope.mail_from, "rcpt_to": list(envelope.rcpt_tos)}
        data = envelope.original_content
        if data is None:
            data = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        tmp = os.path.join(self.out_dir, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(json.dumps(meta).encode() + b"\n")
            f.write(data)
        os.rename(tmp, os.path.join(self.out_dir, "new", name))
        return "250 OK stored"
"#;

/// A private aiosmtpd that keeps what it receives. Stopped when dropped.
pub struct SmtpSink {
    dir: tempfile::TempDir,
    port: u16,
    tls: SinkTls,
    child: Option<Child>,
}

impl SmtpSink {
    /// A plain SMTP sink on a free loopback port.
    pub fn start() -> SmtpSink {
        Self::start_with(SinkTls::None)
    }

    /// A sink with STARTTLS or implicit TLS (self-signed certificate).
    pub fn start_with(tls: SinkTls) -> SmtpSink {
        require(Tool::SmtpSink);
        let dir = tempfile::Builder::new().prefix("sb-smtp-sink-").tempdir().expect("temp dir");
        for sub in ["tmp", "new"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("switchboard_sink.py"), SINK_HANDLER).unwrap();
        if tls != SinkTls::None {
            self_signed_certificate(dir.path());
        }
        let mut sink = SmtpSink { dir, port: 0, tls, child: None };
        for attempt in 1..=3 {
            sink.port = closed_port();
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.spawn())) {
                Ok(()) => return sink,
                Err(e) if attempt == 3 => std::panic::resume_unwind(e),
                Err(_) => {}
            }
        }
        unreachable!()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn spawn(&mut self) {
        let root = self.dir.path();
        let log_path = root.join("aiosmtpd.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = Command::new(aiosmtpd_python());
        command
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{}", self.port)])
            .args(["-c", "switchboard_sink.Sink"])
            .env("PYTHONPATH", root)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let (cert, key) = (root.join("cert.pem"), root.join("key.pem"));
        match self.tls {
            SinkTls::None => {}
            SinkTls::Starttls => {
                command.arg("--tlscert").arg(&cert).arg("--tlskey").arg(&key);
            }
            SinkTls::Implicit => {
                command.arg("--smtpscert").arg(&cert).arg("--smtpskey").arg(&key);
            }
        }
        // The handler's argument (CLASSARGS) comes last.
        command.arg("--").arg(root);
        let mut child = command.spawn().expect("start aiosmtpd");
        let greeting = if self.tls == SinkTls::Implicit { "" } else { "220" };
        let ready = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_ready(&mut child, self.port, greeting, &log_path)
        }));
        if let Err(e) = ready {
            terminate(&mut child);
            std::panic::resume_unwind(e);
        }
        self.child = Some(child);
    }

    /// Stop the sink (connections are refused until [`SmtpSink::start_again`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Start again on the same port; what was received so far stays.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the sink is running");
        self.spawn();
    }

    pub fn log(&self) -> String {
        read_log(&self.dir.path().join("aiosmtpd.log"))
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        let mut names: Vec<PathBuf> =
            std::fs::read_dir(self.dir.path().join("new")).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        names
            .into_iter()
            .map(|path| {
                let bytes = std::fs::read(&path).unwrap();
                let split = bytes.iter().position(|b| *b == b'\n').expect("a metadata line");
                let meta: serde_json::Value = serde_json::from_slice(&bytes[..split]).expect("metadata JSON");
                ReceivedMail {
                    mail_from: meta["mail_from"].as_str().unwrap_or_default().to_owned(),
                    rcpt_to: meta["rcpt_to"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default(),
                    raw: bytes[split + 1..].to_vec(),
                }
            })
            .collect()
    }

    /// Wait until at least `n` mails arrived (panics after `timeout`, with the sink's log); returns all received.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "the SMTP sink received {} of {n} mails in {timeout:?}; its log:\n{}",
                received.len(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}
