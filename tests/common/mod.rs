//! Shared harness for the integration tests: start a real server in-process on a loopback port
//! with a fresh database, and talk to it over HTTP like any client would.
//!
//! The backend comes from `SWITCHBOARD_TEST_DATABASE`: unset or `sqlite` → a SQLite file in a
//! temporary folder; `postgres://…/postgres` (an admin URL) → a new PostgreSQL database per test,
//! dropped afterwards. The test command in the README runs every suite both ways.

#![allow(dead_code)]

pub mod cases;
pub mod child;
pub mod dovecot;
pub mod fake_mattermost;
pub mod fake_zalo;
pub mod mail;
pub mod portal;
pub mod ws;

use std::path::PathBuf;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::config::{RawConfig, Settings};
use switchboard::server::{RunningServer, StartOptions};
use switchboard::store::{self, audit::Actor};

pub const PASSWORD: &str = "correct horse battery";

/// `SWITCHBOARD_ALLOWED_INTERNAL_HOSTS` of test servers: their webhook receivers, mail servers and SMTP sinks
/// listen on loopback. Tests of the outgoing-connection policy itself unset it (`raw.allowed_internal_hosts = None`).
pub const LOOPBACK_ALLOWED: &str = "127.0.0.0/8,::1";

pub struct TestServer {
    pub base: String,
    // Dropped before `db`, so the server lets go of the database before it is removed.
    running: Option<RunningServer>,
    pub db: FreshDb,
}

/// A new, empty database for one test (SQLite file or PostgreSQL database), removed on drop,
/// with a temporary folder that can serve as the data directory.
pub struct FreshDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl FreshDb {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match postgres_admin_url() {
            Some(admin) => {
                let name = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = AsyncPgConnection::establish(&admin).await.expect("connect to PostgreSQL");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                Self { url: replace_db(&admin, &name), dir, pg: Some((admin, name)) }
            }
            None => Self { url: format!("sqlite://{}", dir.path().join("test.db").display()), dir, pg: None },
        }
    }
}

/// The admin URL of the PostgreSQL server to test against, if the run asks for one.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("SWITCHBOARD_TEST_DATABASE").ok().filter(|v| v.starts_with("postgres"))
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Start with adjusted configuration (e.g. a small body limit).
    pub async fn start_with(adjust: impl FnOnce(&mut RawConfig)) -> Self {
        let db = FreshDb::new().await;
        let running = Self::run(&db, adjust).await;
        let base = format!("http://{}", running.addr);
        Self { base, running: Some(running), db }
    }

    /// Stop this server and start a new one on the same database and data directory (a restart).
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// [`Self::restart`] with adjusted configuration (e.g. another secret key).
    pub async fn restart_with(mut self, adjust: impl FnOnce(&mut RawConfig)) -> Self {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
        let running = Self::run(&self.db, adjust).await;
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
        self
    }

    /// A server on `db` with the test defaults (a free loopback port, small pools, loopback
    /// receivers allowed as outgoing targets), adjusted by `adjust`.
    async fn run(db: &FreshDb, adjust: impl FnOnce(&mut RawConfig)) -> RunningServer {
        let mut raw = RawConfig {
            bind: Some("127.0.0.1:0".into()),
            database_url: Some(db.url.clone()),
            data_dir: Some(db.dir.path().join("data").display().to_string()),
            db_pool_size: Some(4),
            workers: Some(1),
            log: Some("warn".into()),
            allowed_internal_hosts: Some(LOOPBACK_ALLOWED.into()),
            ..Default::default()
        };
        adjust(&mut raw);
        let settings = Settings::resolve(raw).expect("valid test settings");
        switchboard::server::start(settings, StartOptions { handle_signals: false }).await.expect("server starts")
    }

    pub fn store(&self) -> &store::Store {
        &self.running.as_ref().expect("running").store
    }

    /// The node's change layer (what connectors commit through).
    pub fn changes(&self) -> &switchboard::changes::Changes {
        &self.running.as_ref().expect("running").changes
    }

    /// A channel of a kind the API does not offer yet (Mattermost, Zalo: no connector, #14 item 12),
    /// written straight through the store as its coming connector will; returns its id.
    pub async fn future_channel(&self, kind: &str, name: &str) -> i64 {
        let input = store::channels::CreateChannel {
            kind: kind.parse().expect("a known channel kind"),
            name: name.into(),
            mode: switchboard::domain::Mode::Sync,
            settings: "{}".into(),
            secret: None,
            enabled: true,
            inactivity_timeout_s: 600,
            default_team_id: None,
        };
        store::channels::create(self.store(), input, Actor::System).await.expect("channel stored").id
    }

    pub fn data_dir(&self) -> PathBuf {
        self.db.dir.path().join("data")
    }

    /// Where `/metrics` is served when the server was started with `metrics_bind`.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.running.as_ref().expect("running").metrics_addr
    }

    /// Create an agent directly in the store (role `super_admin`, `admin` or `agent`) and return
    /// an API client acting as them through a fresh API token.
    pub async fn agent(&self, email: &str, role: &str) -> Api {
        let hash = switchboard::auth::hash_password(PASSWORD).unwrap();
        let agent = store::agents::create(
            self.store(),
            store::agents::CreateAgent {
                email: email.into(),
                name: email.split('@').next().unwrap().into(),
                password_hash: Some(hash),
                role: role.parse().expect("a known role"),
            },
            Actor::System,
        )
        .await
        .expect("create agent");
        let (token, prefix) = switchboard::auth::new_api_token();
        store::auth::create_token(
            self.store(),
            agent.id,
            "test",
            &switchboard::auth::secret_hash(&token),
            &prefix,
            Actor::System,
        )
        .await
        .expect("create token");
        Api::with_token(&self.base, &token, agent.id)
    }

    /// An API client with no credentials.
    pub fn anonymous(&self) -> Api {
        Api { base: self.base.clone(), token: None, csrf: None, agent_id: 0, client: client(false) }
    }

    /// Sign in with the password through the API; the client then uses the session cookie.
    pub async fn login(&self, email: &str) -> Api {
        let mut api = Api { base: self.base.clone(), token: None, csrf: None, agent_id: 0, client: client(true) };
        let (status, body) =
            api.call(Method::POST, "/api/v1/auth/login", Some(json!({"email": email, "password": PASSWORD}))).await;
        assert_eq!(status, StatusCode::OK, "login: {body}");
        api.csrf = body["csrf_token"].as_str().map(str::to_owned);
        api.agent_id = body["agent"]["id"].as_i64().unwrap();
        api
    }

    /// Stop the server the way SIGTERM does (`RunningServer::stop`): afterwards no background task
    /// of it runs and its actor threads have ended.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
    }

    /// What a stop must leave with nothing running: the server's background tasks and its actor threads.
    pub fn leftovers(&self) -> Leftovers {
        let running = self.running.as_ref().expect("running");
        Leftovers { shutdown: running.shutdown().clone(), changes: running.changes.clone() }
    }
}

/// A webhook receiver on a loopback port that accepts connections and never answers (a hung
/// integrator): a delivery to it stays in flight until the sender gives up or stops.
pub struct SilentHook {
    pub url: String,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentHook {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(socket);
            }
        });
        Self { url, connections, task }
    }

    /// Wait until a delivery attempt has connected (panics after `within`).
    pub async fn wait_connected(&self, within: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while std::sync::atomic::AtomicUsize::load(&self.connections, std::sync::atomic::Ordering::SeqCst) == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no delivery attempt reached the webhook within {within:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SilentHook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Handles kept across [`TestServer::stop`] to check that it left nothing running.
pub struct Leftovers {
    shutdown: switchboard::shutdown::Shutdown,
    changes: switchboard::changes::Changes,
}

impl Leftovers {
    /// Background tasks still running.
    pub fn tasks(&self) -> usize {
        self.shutdown.running()
    }

    /// Actor arbiter threads still running.
    pub fn actor_threads(&self) -> usize {
        self.changes.actor_threads_running()
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop the database from a separate thread with its own runtime: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = AsyncPgConnection::establish(&admin).await {
                        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

fn replace_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let cut = base.rfind('/').filter(|i| *i > "postgres://".len()).unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..cut]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn client(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder().cookie_store(cookies).build().unwrap()
}

/// A small JSON client. `call` returns the status and the body parsed as JSON (or `Null`).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    pub csrf: Option<String>,
    pub agent_id: i64,
    pub client: reqwest::Client,
}

impl Api {
    pub fn with_token(base: &str, token: &str, agent_id: i64) -> Self {
        Self { base: base.into(), token: Some(token.into()), csrf: None, agent_id, client: client(false) }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(c) = &self.csrf {
            req = req.header("X-CSRF-Token", c);
        }
        req
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// POST that must succeed with `expected`; returns the body.
    pub async fn ok_post(&self, path: &str, body: Value, expected: u16) -> Value {
        let (s, b) = self.post(path, body).await;
        assert_eq!(s.as_u16(), expected, "POST {path}: {b}");
        b
    }

    pub async fn ok_put(&self, path: &str, body: Value) -> Value {
        let (s, b) = self.put(path, body).await;
        assert_eq!(s, StatusCode::OK, "PUT {path}: {b}");
        b
    }

    pub async fn ok_get(&self, path: &str) -> Value {
        let (s, b) = self.get(path).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {b}");
        b
    }

    /// A channel instance (admin).
    pub async fn channel(&self, kind: &str, name: &str, mode: Option<&str>) -> i64 {
        let mut body = json!({"kind": kind, "name": name});
        if let Some(m) = mode {
            body["mode"] = json!(m);
        }
        self.ok_post("/api/v1/channels", body, 201).await["id"].as_i64().unwrap()
    }

    /// A conversation started by a customer on `channel`; returns its id.
    pub async fn inbound(&self, channel: i64, user: &str, text: &str) -> i64 {
        let b = self
            .ok_post(
                "/api/v1/conversations",
                json!({"channel": channel, "user_custom_id": user, "content": text, "subject": text}),
                201,
            )
            .await;
        b["conversation_id"].as_i64().unwrap()
    }
}

/// Assert an error answer: status and `error` code, with a human message.
pub fn assert_error(got: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(got.0.as_u16(), status, "expected {status} {code}, got {} {}", got.0, got.1);
    assert_eq!(got.1["error"], code, "body: {}", got.1);
    assert!(got.1["message"].as_str().is_some_and(|m| !m.is_empty()), "a message for people: {}", got.1);
}
