//! Child processes of the mail fixtures (the test kit's [`super::dovecot`] and [`super::mail`], and the email
//! benchmark, which includes this file and `dovecot.rs` with `#[path]`): free loopback ports, waiting until a
//! server answers, stopping it, a self-signed certificate. Errors are `String`s, so that both a test (which
//! panics) and a benchmark (which returns `anyhow` errors) can use them.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How long a server may take to start answering.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Free loopback ports (bound together, then released).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> =
        (0..N).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port")).collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// A port where nothing listens (for "wrong port" tests).
pub fn closed_port() -> u16 {
    free_ports::<1>()[0]
}

pub fn is_root() -> bool {
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
pub fn terminate(child: &mut Child) {
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
pub fn wait_ready(child: &mut Child, port: u16, greeting: &str, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("the server exited ({status}) before answering on {port}:\n{}", read_log(log)));
        }
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            if greeting.is_empty() {
                return Ok(());
            }
            stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
            let mut line = String::new();
            if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with(greeting) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("the server did not answer on port {port} in time:\n{}", read_log(log)));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()))
}
