//! The `switchboard` binary as an operator uses it (issue #2, point 8): first start prints how
//! to create the admin, `admin create` and `token create` work against the same database as the
//! server, `migrate` is idempotent, SIGTERM stops the server gracefully — under load, within the
//! grace period, keeping what it accepted (#14 item 8) — bad configuration is a clear error.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::ws::WsClient;
use common::{Api, FreshDb, SilentHook};
use serde_json::json;

fn cli(db: &FreshDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("SWITCHBOARD_DATA_DIR", db.dir.path().join("data"))
        .env("SWITCHBOARD_BIND", "127.0.0.1:0")
        .env("SWITCHBOARD_WORKERS", "1")
        .env("SWITCHBOARD_LOG", "warn");
    cmd
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Start `cmd` (a `serve`) and read its banner up to the URL it runs at: the child, the URL, the
/// banner lines read, and the rest of its standard error line by line.
fn serve(cmd: &mut Command) -> (Child, String, Vec<String>, mpsc::Receiver<String>) {
    let mut child = cmd.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    let base = loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("server prints its banner");
        banner.push(line.clone());
        if let Some(rest) = line.strip_prefix("Switchboard is running at ") {
            break rest.trim().to_owned();
        }
    };
    (child, base, banner, rx)
}

fn sigterm(child: &Child) {
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
}

#[tokio::test]
async fn first_start_admin_token_and_graceful_stop() {
    let db = FreshDb::new().await;
    // Read the start banner: the URL, then (no admin yet) the exact command to create one.
    let (mut child, base, mut banner, rx) = serve(cli(&db).arg("serve"));
    loop {
        let line = rx.recv_timeout(Duration::from_secs(10)).expect("first-run hint");
        if line.contains("then sign in at") {
            break;
        }
        banner.push(line);
    }
    let text = banner.join("\n");
    assert!(text.contains("No admin exists yet"), "{text}");
    assert!(text.contains("switchboard admin create --email"), "{text}");

    let (ok, out, err) = run(cli(&db).args([
        "admin",
        "create",
        "--email",
        "Root@Example.com",
        "--password",
        "s3cret-pass",
        "--name",
        "Root",
    ]));
    assert!(ok, "{out}{err}");
    assert!(out.contains("root@example.com"), "{out}");
    let (ok, out, err) = run(cli(&db).args(["token", "create", "--email", "root@example.com", "--name", "ci"]));
    assert!(ok, "{out}{err}");
    let token = out.split_whitespace().last().unwrap().to_owned();
    assert!(token.starts_with("sbt_"), "{out}");

    // The running server accepts the token made by the CLI.
    let api = Api::with_token(&base, &token, 0);
    let me = api.ok_get("/api/v1/me").await;
    assert_eq!(me["agent"]["email"], "root@example.com");
    assert_eq!(me["agent"]["role"], "super_admin");

    // Duplicate admin and unknown email are clear errors.
    let (ok, _, err) =
        run(cli(&db).args(["admin", "create", "--email", "root@example.com", "--password", "s3cret-pass"]));
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = run(cli(&db).args(["token", "create", "--email", "nobody@example.com", "--name", "x"]));
    assert!(!ok && err.contains("no agent"), "{err}");
    let (ok, _, err) = run(cli(&db).args(["admin", "create", "--email", "x@example.com", "--password", "short"]));
    assert!(!ok && err.contains("at least 8"), "{err}");

    // SIGTERM: graceful shutdown, exit code 0.
    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful stop exits 0, got {status}");
}

/// #14 item 8: SIGTERM while customers write in, agents reply, a reply is in flight to a webhook
/// that never answers and a dashboard socket is open: the process exits 0 within the grace
/// period, and every message it answered as accepted is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_exits_0_within_the_grace_period_keeping_what_was_accepted() {
    const GRACE: Duration = Duration::from_secs(3);
    let db = FreshDb::new().await;
    let (ok, out, err) =
        run(cli(&db).args(["admin", "create", "--email", "root@example.com", "--password", "s3cret-pass"]));
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run(cli(&db).args(["token", "create", "--email", "root@example.com", "--name", "load"]));
    assert!(ok, "{out}{err}");
    let token = out.split_whitespace().last().unwrap().to_owned();
    let hook = SilentHook::start().await;
    let (mut child, base, _, _rx) = serve(
        cli(&db)
            .env("SWITCHBOARD_SHUTDOWN_GRACE_SECS", GRACE.as_secs().to_string())
            .env("SWITCHBOARD_ALLOWED_INTERNAL_HOSTS", "127.0.0.0/8")
            .env("SWITCHBOARD_OUTBOX_BACKOFF_SCALE", "0.005")
            .env("SWITCHBOARD_WORKERS", "2")
            .arg("serve"),
    );
    let api = Api::with_token(&base, &token, 0);
    let ch = api
        .ok_post("/api/v1/custom-channels", json!({"name": "Shop", "webhook_url": hook.url, "type": "async"}), 201)
        .await["id"]
        .as_i64()
        .unwrap();
    let mut ws = WsClient::connect(&base, &token, None).await;
    let socket = tokio::spawn(async move { ws.closed_within(Duration::from_secs(30)).await });

    // Load: customers writing in, each message answered by an agent (an outbox delivery each),
    // until the server stops answering. Only what came back 2xx counts as accepted.
    let accepted: Arc<Mutex<Vec<(i64, i64)>>> = Arc::default();
    let halt = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for w in 0..8 {
        let (api, accepted, halt) = (api.clone(), accepted.clone(), halt.clone());
        load.push(tokio::spawn(async move {
            for i in 0..500 {
                if halt.load(Ordering::SeqCst) {
                    return;
                }
                let body = json!({"user_custom_id": format!("customer-{w}"), "content": format!("message {i}")});
                let req = api.request(reqwest::Method::POST, &format!("/api/v1/custom-channels/{ch}/inbound"));
                let Ok(resp) = req.json(&body).send().await else { return };
                if !resp.status().is_success() {
                    continue;
                }
                let Ok(got) = resp.json::<serde_json::Value>().await else { return };
                let conv = got["conversation_id"].as_i64().unwrap();
                accepted.lock().unwrap().push((conv, got["message_id"].as_i64().unwrap()));
                let reply = api.request(reqwest::Method::POST, &format!("/api/v1/conversations/{conv}/messages"));
                let Ok(resp) = reply.json(&json!({"content": format!("reply {i}")})).send().await else { return };
                if resp.status().is_success()
                    && let Ok(got) = resp.json::<serde_json::Value>().await
                {
                    accepted.lock().unwrap().push((conv, got["message_id"].as_i64().unwrap()));
                }
            }
        }));
    }
    hook.wait_connected(Duration::from_secs(20)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while accepted.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    sigterm(&child);
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > GRACE + Duration::from_secs(1) {
            let _ = child.kill();
            panic!("still running {:?} after SIGTERM (grace {GRACE:?})", sent.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = sent.elapsed();
    halt.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    assert!(took <= GRACE, "exited {took:?} after SIGTERM, grace {GRACE:?}");
    assert_eq!(socket.await.unwrap(), Some(1012), "the dashboard socket was told the server is stopping");

    // Everything answered as accepted is stored.
    let accepted = accepted.lock().unwrap().clone();
    let (mut child, base, _, _rx) = serve(cli(&db).arg("serve"));
    let api = Api::with_token(&base, &token, 0);
    let mut by_conversation: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for (conv, message) in &accepted {
        by_conversation.entry(*conv).or_default().push(*message);
    }
    for (conv, messages) in by_conversation {
        let mut stored = Vec::new();
        let mut after = 0;
        loop {
            let page = api.ok_get(&format!("/api/v1/conversations/{conv}/messages?limit=200&after_seq={after}")).await;
            let page = page.as_array().unwrap().clone();
            let Some(last) = page.last() else { break };
            after = last["seq"].as_i64().unwrap();
            stored.extend(page.iter().map(|m| m["id"].as_i64().unwrap()));
        }
        for m in messages {
            assert!(stored.contains(&m), "accepted message {m} of conversation {conv} is stored");
        }
    }
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let db = FreshDb::new().await;
    let (ok, out, err) = run(cli(&db).arg("migrate"));
    assert!(ok, "{err}");
    let backend = if common::postgres_admin_url().is_some() { "postgres" } else { "sqlite" };
    let expected = std::fs::read_dir(format!("{}/migrations/{backend}", env!("CARGO_MANIFEST_DIR"))).unwrap().count();
    assert!(out.starts_with(&format!("{expected} migration(s) applied")), "{out}");
    let (ok, out, _) = run(cli(&db).arg("migrate"));
    assert!(ok);
    assert!(out.starts_with("0 migration(s) applied"), "{out}");
}

#[tokio::test]
async fn bad_configuration_is_named_and_exits_2() {
    let db = FreshDb::new().await;
    let (ok, _, err) = run(cli(&db).env("DATABASE_URL", "mysql://nope").arg("migrate"));
    assert!(!ok);
    assert!(err.contains("database_url") && err.contains("sqlite://"), "{err}");
    let status = cli(&db).env("SWITCHBOARD_LOG_FORMAT", "xml").arg("migrate").status().unwrap();
    assert_eq!(status.code(), Some(2));
    let cfg = db.dir.path().join("switchboard.toml");
    std::fs::write(&cfg, "colour = \"blue\"\n").unwrap();
    let (ok, _, err) = run(cli(&db).args(["--config", cfg.to_str().unwrap(), "migrate"]));
    assert!(!ok && err.contains("colour"), "unknown keys in the file are rejected: {err}");
}

#[tokio::test]
async fn configuration_file_is_read() {
    let db = FreshDb::new().await;
    let cfg = db.dir.path().join("switchboard.toml");
    std::fs::write(&cfg, format!("database_url = \"{}\"\nlog_format = \"json\"\n", db.url)).unwrap();
    let (ok, out, err) = run(cli(&db).env_remove("DATABASE_URL").env("SWITCHBOARD_CONFIG", &cfg).arg("migrate"));
    assert!(ok, "{err}");
    assert!(out.contains("migration(s) applied"), "{out}");
}
