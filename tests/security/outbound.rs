//! Issue #13 (see tests/security.rs), item 5 and 7b: outgoing connections are safe by default.
//!
//! - Reply webhooks to loopback, link-local (cloud metadata), unspecified, IPv4-mapped, decimal-IP and
//!   loopback-by-name targets are refused without `SWITCHBOARD_ALLOWED_INTERNAL_HOSTS` (the receiver gets
//!   nothing, the delivery log says why) and delivered with it.
//! - A receiver answering a redirect does not get the reply delivered elsewhere: the 3xx is a failed attempt.
//! - A receiver answering 400 MB is not read: the delivery is recorded and the connection closed early.
//! - A mailbox pointed at something that is not a mail server shows an error without what that server sent.
//! - A webhook URL with credentials is refused (400); agents see webhook URLs without credentials or query.
//! - A Mattermost server on an internal address is refused when a bot is connected, and by the connector's
//!   WebSocket on a node that does not allow it.
//!
//! Servers here start with the setting unset unless a test is about something else; receivers run in this
//! process on loopback ports.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{Api, TestServer, assert_error};

const WAIT: Duration = Duration::from_secs(30);

/// How a [`Receiver`] answers.
#[derive(Clone)]
enum Answer {
    Ok,
    /// `302 Found` to this location.
    Redirect(String),
    /// `200` with a body of this many bytes, written lazily in small chunks until the peer goes away.
    Huge(u64),
}

/// A minimal HTTP receiver on a loopback address, counting the requests it answered.
struct Receiver {
    port: u16,
    requests: Arc<AtomicUsize>,
    /// For [`Answer::Huge`]: bytes of body written before the client closed the connection.
    written: tokio::sync::mpsc::Receiver<u64>,
}

impl Receiver {
    async fn start(addr: &str, answer: Answer) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind a receiver");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let (done, written) = tokio::sync::mpsc::channel(16);
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answer, counter, done) = (answer.clone(), counter.clone(), done.clone());
                tokio::spawn(async move {
                    let mut stream = stream;
                    let _ = read_request(&mut stream, &counter, answer, done).await;
                });
            }
        });
        Self { port, requests, written }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Read one request (head + `Content-Length` body) and answer it.
async fn read_request(
    stream: &mut TcpStream,
    counter: &AtomicUsize,
    answer: Answer,
    done: tokio::sync::mpsc::Sender<u64>,
) -> Option<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    counter.fetch_add(1, Ordering::SeqCst);
    match answer {
        Answer::Ok => {
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await.ok()?;
        }
        Answer::Redirect(location) => {
            let head =
                format!("HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await.ok()?;
        }
        Answer::Huge(total) => {
            let head =
                format!("HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {total}\r\n\r\n");
            stream.write_all(head.as_bytes()).await.ok()?;
            // Generated as it goes: one 64 KiB block written again and again, never 400 MB in memory.
            let block = vec![b'x'; 64 * 1024];
            let mut written = 0u64;
            while written < total {
                match stream.write_all(&block).await {
                    Ok(()) => written += block.len() as u64,
                    Err(_) => break,
                }
            }
            let _ = done.send(written).await;
        }
    }
    Some(())
}

/// A custom channel posting replies to `url`, with one conversation and one agent reply queued.
async fn channel_with_reply(admin: &Api, url: &str) -> i64 {
    let ch = admin
        .ok_post("/api/v1/custom-channels", json!({"name": "Hook", "webhook_url": url, "type": "async"}), 201)
        .await["id"]
        .as_i64()
        .unwrap();
    let conv = admin
        .ok_post(
            &format!("/api/v1/custom-channels/{ch}/inbound"),
            json!({"user_custom_id": "u1", "content": "hi"}),
            201,
        )
        .await["conversation_id"]
        .as_i64()
        .unwrap();
    admin.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "the reply"}), 201).await;
    ch
}

/// The channel's one delivery once `done` says it is settled (polling the delivery log, the admin's view).
async fn delivery_when(admin: &Api, ch: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = admin.ok_get(&format!("/api/v1/custom-channels/{ch}/deliveries")).await;
        if let Some(d) = log.as_array().and_then(|l| l.first())
            && done(d)
        {
            return d.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "channel {ch}: {what}: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn error_of(d: &Value) -> String {
    d["last_error"].as_str().unwrap_or_default().to_owned()
}

fn fast(raw: &mut switchboard::config::RawConfig) {
    raw.outbox_backoff_scale = Some(0.001);
}

/// Webhook URLs on internal addresses, each spelled the way an attacker might; `v4` and `v6` are the loopback
/// receivers' ports. The last element says whether a receiver on this machine can answer it.
fn internal_targets(v4: u16, v6: u16) -> Vec<(String, Option<u16>)> {
    vec![
        (format!("http://127.0.0.1:{v4}/hook"), Some(v4)),
        (format!("http://[::1]:{v6}/hook"), Some(v6)),
        (format!("http://0.0.0.0:{v4}/hook"), Some(v4)),
        (format!("http://[::ffff:127.0.0.1]:{v4}/hook"), Some(v4)),
        (format!("http://2130706433:{v4}/hook"), Some(v4)),
        ("http://169.254.169.254:9/latest/meta-data/".to_owned(), None),
        // A name is judged by the address it resolves to when connecting (no string test on the URL).
        (format!("http://localhost:{v4}/hook"), Some(v4)),
    ]
}

#[tokio::test]
async fn webhooks_to_internal_addresses_are_refused_unless_allowed() {
    // Without the setting: refused, nothing reaches the receivers, the delivery log says why.
    let v4 = Receiver::start("127.0.0.1:0", Answer::Ok).await;
    let v6 = Receiver::start("[::1]:0", Answer::Ok).await;
    let server = TestServer::start_with(|raw| {
        fast(raw);
        raw.allowed_internal_hosts = None;
    })
    .await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    for (url, _) in internal_targets(v4.port, v6.port) {
        let ch = channel_with_reply(&admin, &url).await;
        let d = delivery_when(&admin, ch, "a refused attempt recorded", |d| d["attempts"].as_i64() >= Some(1)).await;
        assert_ne!(d["state"], "delivered", "{url}: {d}");
        assert!(error_of(&d).contains("internal address"), "{url}: the reason is given: {d}");
        assert!(error_of(&d).contains("SWITCHBOARD_ALLOWED_INTERNAL_HOSTS"), "{url}: and the way out: {d}");
    }
    assert_eq!(v4.requests() + v6.requests(), 0, "no request reached a receiver");
    server.stop().await;

    // With them allowed: delivered.
    let server = TestServer::start_with(|raw| {
        fast(raw);
        raw.allowed_internal_hosts = Some("127.0.0.0/8,::1,0.0.0.0,169.254.169.254".into());
    })
    .await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    for (url, receiver) in internal_targets(v4.port, v6.port) {
        let ch = channel_with_reply(&admin, &url).await;
        match receiver {
            Some(_) => {
                delivery_when(&admin, ch, &format!("{url} delivered"), |d| d["state"] == "delivered").await;
            }
            None => {
                // Nothing answers for the metadata address here: the attempt is made and fails on the network,
                // not on the policy.
                let d = delivery_when(&admin, ch, "an attempt", |d| d["attempts"].as_i64() >= Some(1)).await;
                assert!(!error_of(&d).contains("internal address"), "{url} allowed: {d}");
            }
        }
    }
    // localhost may resolve to ::1 as well as 127.0.0.1; only the IPv4 receiver listens on its port (unless the
    // IPv6 one drew the same port number, when either may answer).
    let v4_only = usize::from(v4.port != v6.port);
    assert!(
        v4.requests() >= 4 + v4_only,
        "127.0.0.1, 0.0.0.0, ::ffff:127.0.0.1, 2130706433 and localhost reach the IPv4 receiver: {}",
        v4.requests()
    );
    assert_eq!(v4.requests() + v6.requests(), 6, "each allowed target got the reply once");
    server.stop().await;
}

#[tokio::test]
async fn a_redirecting_receiver_does_not_get_the_reply_delivered_elsewhere() {
    let target = Receiver::start("127.0.0.1:0", Answer::Ok).await;
    let redirecting =
        Receiver::start("127.0.0.1:0", Answer::Redirect(format!("http://127.0.0.1:{}/hook", target.port))).await;
    // Loopback allowed (the harness default): this test is about redirects only.
    let server = TestServer::start_with(fast).await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    let ch = channel_with_reply(&admin, &format!("http://127.0.0.1:{}/hook", redirecting.port)).await;
    let d = delivery_when(&admin, ch, "a failed attempt", |d| d["attempts"].as_i64() >= Some(1)).await;
    assert_ne!(d["state"], "delivered", "{d}");
    assert!(error_of(&d).contains("302"), "the redirect is the recorded failure: {d}");
    assert!(redirecting.requests() >= 1);
    assert_eq!(target.requests(), 0, "the redirect was not followed");
    server.stop().await;
}

#[tokio::test]
async fn a_400_mb_answer_is_not_read() {
    const HUGE: u64 = 400 * 1024 * 1024;
    let mut receiver = Receiver::start("127.0.0.1:0", Answer::Huge(HUGE)).await;
    let server = TestServer::start_with(fast).await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    let ch = channel_with_reply(&admin, &format!("http://127.0.0.1:{}/hook", receiver.port)).await;
    delivery_when(&admin, ch, "delivered", |d| d["state"] == "delivered").await;
    // The receiver learns how much it could write before the server closed the connection.
    let written =
        tokio::time::timeout(WAIT, receiver.written.recv()).await.expect("the server closed the connection").unwrap();
    assert!(written < HUGE / 10, "the server read only the start of the answer, not {written} bytes");
    assert_eq!(receiver.requests(), 1);
    server.stop().await;
}

/// A server that answers every connection at once like a web server and hangs up: `marker` is in its answer.
async fn not_a_mail_server(marker: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = format!(
                "HTTP/1.1 400 {marker}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{marker}\r\n",
                marker.len() + 2
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    port
}

#[tokio::test]
async fn mailbox_errors_do_not_echo_what_a_non_mail_server_sent() {
    const MARKER: &str = "internal-secret-7f3a";
    let port = not_a_mail_server(MARKER).await;
    let server = TestServer::start().await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    for protocol in ["imap", "pop3"] {
        let body = json!({
            "name": format!("Mailbox {protocol}"), "protocol": protocol, "host": "127.0.0.1", "port": port,
            "tls": "none", "username": "u", "password": "p", "poll_interval_s": 60,
            "smtp": {"host": "127.0.0.1", "port": port, "tls": "none", "from_address": "desk@example.test"}
        });
        let id = admin.ok_post("/api/v1/email-channels", body, 201).await["id"].as_i64().unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        let shown = loop {
            let c = admin.ok_get(&format!("/api/v1/email-channels/{id}")).await;
            if c["health"]["last_error"].is_string() {
                break c;
            }
            assert!(tokio::time::Instant::now() < deadline, "{protocol}: no error recorded: {c}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let error = shown["health"]["last_error"].as_str().unwrap();
        assert!(!shown.to_string().contains(MARKER), "{protocol}: what the server sent is not shown: {shown}");
        assert!(error.contains("not IMAP") || error.contains("not POP3"), "{protocol}: a clear reason: {error}");
    }
    server.stop().await;
}

#[tokio::test]
async fn mailbox_hosts_on_internal_addresses_are_refused_without_the_setting() {
    let port = not_a_mail_server("unused").await;
    let server = TestServer::start_with(|raw| raw.allowed_internal_hosts = None).await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    let body = json!({
        "name": "Mailbox", "protocol": "imap", "host": "127.0.0.1", "port": port,
        "tls": "none", "username": "u", "password": "p", "poll_interval_s": 60,
        "smtp": {"host": "127.0.0.1", "port": port, "tls": "none", "from_address": "desk@example.test"}
    });
    let id = admin.ok_post("/api/v1/email-channels", body, 201).await["id"].as_i64().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let c = admin.ok_get(&format!("/api/v1/email-channels/{id}")).await;
        if let Some(error) = c["health"]["last_error"].as_str() {
            assert!(error.contains("internal address"), "{error}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no error recorded: {c}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn webhook_urls_with_credentials_are_refused_and_agents_see_them_without_secrets() {
    let server = TestServer::start().await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    for url in ["https://user:pw@hooks.example.com/in", "https://token@hooks.example.com/in"] {
        let got =
            admin.post("/api/v1/custom-channels", json!({"name": "Hook", "webhook_url": url, "type": "async"})).await;
        assert_error(&got, 400, "validation_failed");
        assert!(got.1.to_string().contains("webhook_url"), "the field is named: {}", got.1);
    }
    assert_eq!(admin.ok_get("/api/v1/custom-channels").await, json!([]), "nothing created");

    let whole = "https://hooks.example.com/in?token=s3cr3t";
    let ch = admin
        .ok_post("/api/v1/custom-channels", json!({"name": "Hook", "webhook_url": whole, "type": "async"}), 201)
        .await["id"]
        .as_i64()
        .unwrap();
    let got =
        admin.patch(&format!("/api/v1/custom-channels/{ch}"), json!({"webhook_url": "https://a:b@x.example/"})).await;
    assert_error(&got, 400, "validation_failed");

    let agent = server.agent("agent@example.com", "agent").await;
    admin.ok_put(&format!("/api/v1/agents/{}/channels", agent.agent_id), json!({"channel_ids": [ch]})).await;
    let seen = agent.ok_get(&format!("/api/v1/custom-channels/{ch}")).await;
    assert_eq!(seen["webhook_url"], "https://hooks.example.com/in", "{seen}");
    let listed = agent.ok_get("/api/v1/custom-channels").await;
    assert_eq!(listed[0]["webhook_url"], "https://hooks.example.com/in", "{listed}");
    for (what, body) in [
        ("custom channel", seen),
        ("custom channel list", listed),
        ("channel", agent.ok_get(&format!("/api/v1/channels/{ch}")).await),
        ("channel list", agent.ok_get("/api/v1/channels").await),
    ] {
        assert!(!body.to_string().contains("s3cr3t"), "the agent's {what} view shows the query: {body}");
    }
    let for_admin = admin.ok_get(&format!("/api/v1/custom-channels/{ch}")).await;
    assert_eq!(for_admin["webhook_url"], whole, "admins see it whole");
    server.stop().await;
}

/// The first connector after #13 (Mattermost, #15) obeys the same policy: without the setting a super admin cannot
/// connect a bot to an internal server — by address, by name or the metadata address; nothing reaches it — and a
/// bot connected while its server was allowed makes no connection from a node that no longer allows it (the
/// WebSocket is judged when connecting too); its state says why.
#[tokio::test]
async fn a_mattermost_server_on_an_internal_address_is_refused_unless_allowed() {
    use crate::common::fake_mattermost::FakeMattermost;

    let receiver = Receiver::start("127.0.0.1:0", Answer::Ok).await;
    let server = TestServer::start_with(|raw| raw.allowed_internal_hosts = None).await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    for url in [
        format!("http://127.0.0.1:{}", receiver.port),
        format!("http://localhost:{}", receiver.port),
        format!("http://2130706433:{}", receiver.port),
        "http://169.254.169.254".to_owned(),
    ] {
        let got = admin
            .post("/api/v1/mattermost-channels", json!({"name": "Bot", "server_url": url, "bot_token": "t0k"}))
            .await;
        assert_error(&got, 422, "mattermost_unreachable");
        let message = got.1["message"].as_str().unwrap();
        assert!(
            message.contains("internal address") && message.contains("SWITCHBOARD_ALLOWED_INTERNAL_HOSTS"),
            "{url}: {message}"
        );
    }
    assert_eq!(receiver.requests(), 0, "nothing reached the internal server");
    assert_eq!(admin.ok_get("/api/v1/mattermost-channels").await, json!([]), "nothing stored");
    server.stop().await;

    let mm = FakeMattermost::start().await;
    let server = TestServer::start().await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    let bot = admin
        .ok_post(
            "/api/v1/mattermost-channels",
            json!({"name": "Bot", "server_url": mm.url, "bot_token": mm.bot_token}),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    mm.wait_socket(1, WAIT).await;
    let server = server.restart_with(|raw| raw.allowed_internal_hosts = None).await;
    let hellos = mm.hellos();
    let admin = Api::with_token(&server.base, admin.token.as_deref().unwrap(), admin.agent_id);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let view = admin.ok_get(&format!("/api/v1/mattermost-channels/{bot}")).await;
        if view["state_reason"].as_str().is_some_and(|r| r.contains("internal address")) {
            assert_ne!(view["state"], "connected", "{view}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the refusal is not shown: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mm.hellos(), hellos, "no socket to the no longer allowed server");
    server.stop().await;
    mm.stop().await;
}
