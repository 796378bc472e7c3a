//! The `switchboard` binary as an operator uses it (issue #2, point 8): first start prints how
//! to create the admin, `admin create` and `token create` work against the same database as the
//! server, `migrate` is idempotent, SIGTERM stops the server gracefully, bad configuration is a
//! clear error.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Api, FreshDb};

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

#[tokio::test]
async fn first_start_admin_token_and_graceful_stop() {
    let db = FreshDb::new().await;
    let mut child = cli(&db).arg("serve").stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    // Read the start banner: the URL, then (no admin yet) the exact command to create one.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    let base = loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("server prints its banner");
        banner.push(line.clone());
        if let Some(rest) = line.strip_prefix("Switchboard is running at ") {
            break rest.trim().to_owned();
        }
    };
    loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("first-run hint");
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
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful stop exits 0, got {status}");
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
