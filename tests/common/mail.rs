//! Real mail servers for the email tests (EM-1, EM-4, EO-1, EO-3), each private to one test:
//!
//! - [`Dovecot`]: the kit's one Dovecot fixture ([`super::dovecot`], shared with the email benchmark): IMAP,
//!   IMAPS, POP3 and POP3S on free loopback ports, the mailbox a maildir in a temporary folder.
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

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use super::child::{closed_port, self_signed_certificate};
use super::child::{read_log, terminate, wait_ready};
#[allow(unused_imports)]
pub use super::dovecot::{DOVECOT, Dovecot, StoredMail};

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
        if let Err(e) = wait_ready(&mut child, self.port, greeting, &log_path) {
            terminate(&mut child);
            panic!("aiosmtpd: {e}");
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
