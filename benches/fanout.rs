//! Fan-out benchmark (issue #3): how fast one stored message reaches every subscribed agent socket,
//! beside two references doing the same broadcast on the same machine — a Socket.IO server
//! (`benches/reference/socketio/`, with `@socket.io/redis-adapter` for two nodes) and a minimal raw WebSocket
//! broadcaster in Rust (`benches/reference/raw_ws/server.rs`, the ceiling). Then the memory of idle sockets and
//! of idle conversation actors.
//!
//! ```sh
//! export CARGO_TARGET_DIR=/var/tmp/switchboard-target
//! cargo bench --bench fanout                                                    # everything, ~8 min
//! FANOUT_SOCKETS=1000 FANOUT_NODES=1 FANOUT_PHASES=fanout cargo bench --bench fanout   # smaller
//! ```
//!
//! Phases (`FANOUT_PHASES`, default `fanout,idle,actors`):
//!
//! - `fanout`: for each node count (`FANOUT_NODES`, default `1,2`) and system (`FANOUT_SYSTEMS`,
//!   default `switchboard,socketio,raw`), start the servers, subscribe sockets (`FANOUT_SOCKETS`,
//!   default `1000,10000`, spread evenly over the nodes), then send messages at a rising rate (a
//!   ladder from `FANOUT_START_DELIVERIES` (20,000) deliveries/s, ×`FANOUT_GROWTH` (1.6) per step,
//!   each step `FANOUT_STEP_SECS` (2) long, 8…`FANOUT_MESSAGES` (400) messages, at most
//!   `FANOUT_MAX_STEPS` (12) steps) from `FANOUT_SENDERS` (64) keep-alive connections, until the
//!   system saturates (reaches < 70 % of the offered rate), p99 exceeds `FANOUT_PEAK_P99_MS` (1000),
//!   or a frame is lost. Reported: the best step with p99 ≤ `FANOUT_P99_MS` (100) and the peak.
//!   Latency runs from the moment just before the HTTP request that creates the message is written
//!   to the moment its frame is read on a socket. Switchboard: `POST /api/v1/custom-channels/{id}/
//!   inbound` (persisted, then fanned out; one node on SQLite unless `FANOUT_DB=postgres`, two nodes
//!   on one fresh PostgreSQL database + Redis; all sockets use one admin's API token). References:
//!   `POST /trigger` with a payload of the size of Switchboard's frame (`FANOUT_PAYLOAD_BYTES`).
//! - `idle`: RSS per idle subscribed socket (VmRSS before and after connecting N sockets, / N) at
//!   `FANOUT_IDLE_SOCKETS` (default `10000,50000`; a size above what fits under the open-files
//!   limit of one process is measured at the largest size that fits, and said so), for
//!   `FANOUT_IDLE_SYSTEMS` (default all three).
//! - `actors`: memory per idle conversation actor: `FANOUT_ACTORS` (100,000) conversations
//!   bulk-inserted with SQL into a fresh PostgreSQL database, then one `PATCH` each through the API
//!   (which starts that conversation's actor), `FANOUT_ACTOR_CLIENTS` (32) at a time, within
//!   `FANOUT_ACTOR_SECS` (180); RSS delta / actors woken. A control run then sends
//!   `FANOUT_ACTOR_CONTROL` (20,000) more PATCHes to running actors (RSS growth per request).
//!
//! `FANOUT_MAX_MINUTES` (25) bounds the whole run. Needs: the release binary (`cargo bench` builds
//! it; `SWITCHBOARD_BIN` overrides), Node.js + `npm ci` in `benches/reference/socketio` (run automatically when
//! `node_modules` is missing), PostgreSQL at `BENCH_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust auth; a database is created per run and
//! dropped) and Redis at `BENCH_REDIS_URL` (default `redis://127.0.0.1:6379`). Everything listens
//! on 127.0.0.1 and is killed when the benchmark ends; server logs stay in a temporary folder.

mod common;
#[path = "reference/raw_ws/server.rs"]
mod raw_ws;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::http::{HttpConn, json_headers};
use common::proc::{self, Guard, Node, NodeConfig, PgDb};
use common::record::Recorder;
use common::ws::Proto;
use common::{env_f64, env_list, env_string, env_usize, env_words, kib, ms, thousands};
use serde_json::json;
use tokio::task::JoinHandle;

const MARKER: &[u8] = b"fanout-id-";
const ROLE_VAR: &str = "SWITCHBOARD_BENCH_ROLE";

fn main() -> anyhow::Result<()> {
    if std::env::var(ROLE_VAR).as_deref() == Ok("raw-ws") {
        return raw_ws::main();
    }
    let nofile = proc::raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(run(nofile))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    Switchboard,
    SocketIo,
    Raw,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Switchboard => "switchboard",
            System::SocketIo => "socket.io",
            System::Raw => "raw ws",
        }
    }

    fn proto(self) -> Proto {
        match self {
            System::Switchboard => Proto::Switchboard,
            System::SocketIo => Proto::SocketIo,
            System::Raw => Proto::Raw,
        }
    }

    fn parse(s: &str) -> System {
        match s {
            "switchboard" | "sb" => System::Switchboard,
            "socketio" | "socket.io" | "sio" => System::SocketIo,
            "raw" | "rawws" | "raw-ws" => System::Raw,
            other => panic!("unknown system {other:?} (switchboard, socketio, raw)"),
        }
    }
}

struct Cfg {
    phases: Vec<String>,
    sockets: Vec<usize>,
    nodes: Vec<usize>,
    systems: Vec<System>,
    step_secs: f64,
    max_messages: usize,
    min_messages: usize,
    max_steps: usize,
    growth: f64,
    start_deliveries: f64,
    p99_us: u64,
    peak_p99_us: u64,
    senders: usize,
    customers: usize,
    db_one_node: String,
    idle_sockets: Vec<usize>,
    idle_systems: Vec<System>,
    actors: usize,
    actor_secs: f64,
    actor_clients: usize,
    actor_control: usize,
    deadline: Instant,
    nofile: u64,
    log_dir: PathBuf,
    payload_bytes: AtomicUsize,
}

impl Cfg {
    fn from_env(nofile: u64, log_dir: PathBuf) -> Cfg {
        Cfg {
            phases: env_words("FANOUT_PHASES", &["fanout", "idle", "actors"]),
            sockets: env_list("FANOUT_SOCKETS", &[1000, 10_000]),
            nodes: env_list("FANOUT_NODES", &[1, 2]),
            systems: env_words("FANOUT_SYSTEMS", &["switchboard", "socketio", "raw"])
                .iter()
                .map(|s| System::parse(s))
                .collect(),
            step_secs: env_f64("FANOUT_STEP_SECS", 2.0),
            max_messages: env_usize("FANOUT_MESSAGES", 400),
            min_messages: env_usize("FANOUT_MIN_MESSAGES", 8),
            max_steps: env_usize("FANOUT_MAX_STEPS", 12),
            growth: env_f64("FANOUT_GROWTH", 1.6),
            start_deliveries: env_f64("FANOUT_START_DELIVERIES", 20_000.0),
            p99_us: (env_f64("FANOUT_P99_MS", 100.0) * 1000.0) as u64,
            peak_p99_us: (env_f64("FANOUT_PEAK_P99_MS", 1000.0) * 1000.0) as u64,
            senders: env_usize("FANOUT_SENDERS", 64),
            customers: env_usize("FANOUT_CUSTOMERS", 50),
            db_one_node: env_string("FANOUT_DB", "sqlite"),
            idle_sockets: env_list("FANOUT_IDLE_SOCKETS", &[10_000, 50_000]),
            idle_systems: env_words("FANOUT_IDLE_SYSTEMS", &["switchboard", "socketio", "raw"])
                .iter()
                .map(|s| System::parse(s))
                .collect(),
            actors: env_usize("FANOUT_ACTORS", 100_000),
            actor_secs: env_f64("FANOUT_ACTOR_SECS", 180.0),
            actor_clients: env_usize("FANOUT_ACTOR_CLIENTS", 32),
            actor_control: env_usize("FANOUT_ACTOR_CONTROL", 20_000),
            deadline: Instant::now() + Duration::from_secs_f64(env_f64("FANOUT_MAX_MINUTES", 25.0) * 60.0),
            nofile,
            log_dir,
            payload_bytes: AtomicUsize::new(env_usize("FANOUT_PAYLOAD_BYTES", 0)),
        }
    }

    /// The most sockets this process (and each server) can hold under the open-files limit.
    fn max_sockets(&self) -> usize {
        (self.nofile as usize).saturating_sub(1000).max(100)
    }
}

// ---------------------------------------------------------------------------------------------
// The systems under test

/// One system's servers (one or two nodes) and how to make them broadcast.
struct Cluster {
    system: System,
    /// `127.0.0.1:PORT` of each node.
    addrs: Vec<String>,
    pids: Vec<u32>,
    token: Option<String>,
    /// Switchboard: the inbound path of the custom channel.
    path: String,
    customers: usize,
    // Drop order: the processes first, then their database and folders.
    _guards: Vec<Guard>,
    _pg: Option<PgDb>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(system: System, nodes: usize, cfg: &Cfg) -> anyhow::Result<Cluster> {
        match system {
            System::Switchboard => start_switchboard(nodes, cfg).await,
            System::SocketIo => start_socketio(nodes, cfg).await,
            System::Raw => start_raw(nodes, cfg).await,
        }
    }

    fn rss(&self) -> u64 {
        self.pids.iter().map(|p| proc::rss_bytes(*p).unwrap_or(0)).sum()
    }

    fn cpu(&self) -> Duration {
        self.pids.iter().map(|p| proc::cpu_time(*p)).sum()
    }

    /// The request that makes message `id` (path, header lines, body).
    fn request(&self, id: usize, payload_bytes: usize) -> (&str, String, Vec<u8>) {
        match self.system {
            System::Switchboard => {
                let body = json!({
                    "user_custom_id": format!("customer-{}", id % self.customers.max(1)),
                    "content": format!("fanout-id-{id} hello from the benchmark"),
                });
                (&self.path, json_headers(self.token.as_deref()), body.to_string().into_bytes())
            }
            System::SocketIo | System::Raw => {
                ("/trigger", json_headers(None), reference_payload(id, payload_bytes).into_bytes())
            }
        }
    }
}

/// A JSON event shaped like Switchboard's `message.created` frame, padded to `size` bytes.
fn reference_payload(id: usize, size: usize) -> String {
    let head = format!(
        r#"{{"type":"message.created","event_id":{id},"conversation_id":1,"seq":{id},"cursor":"c1.{id}","message":{{"content":"fanout-id-{id} hello from the benchmark","pad":""#
    );
    let tail = r#""}}"#;
    let pad = size.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(pad))
}

fn log_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("switchboard-bench-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn start_switchboard(nodes: usize, cfg: &Cfg) -> anyhow::Result<Cluster> {
    let dir = tempfile::Builder::new().prefix("switchboard-bench-").tempdir()?;
    let postgres = nodes > 1 || cfg.db_one_node.starts_with("postgres");
    let pg = if postgres { Some(PgDb::create("fanout")?) } else { None };
    let database_url = match &pg {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("switchboard.db").display()),
    };
    let redis = if nodes > 1 { Some(proc::redis_url()) } else { None };
    let configs: Vec<NodeConfig> = (0..nodes)
        .map(|i| NodeConfig {
            database_url: database_url.clone(),
            data_dir: dir.path().join(format!("node{i}")),
            redis_url: redis.clone(),
            // Every node of a deployment seals and opens secrets with the same key (README, "Secrets at
            // rest"); without it the second node refuses to start. A benchmark-only key.
            env: vec![("SWITCHBOARD_SECRET_KEY".to_owned(), "c3dpdGNoYm9hcmQtZmFub3V0LWJlbmNoLWtleSEhISE=".to_owned())],
        })
        .collect();
    let token = configs[0].admin_token("bench@example.com")?;
    let mut guards = Vec::new();
    let mut addrs = Vec::new();
    let mut pids = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let node = Node::start(&format!("switchboard-{nodes}n-{i}"), c, &cfg.log_dir)?;
        addrs.push(node.addr.clone());
        pids.push(node.pid());
        guards.push(node.guard);
    }
    let mut http = HttpConn::new(&addrs[0]);
    let body = json!({"name": "Benchmark", "webhook_url": "http://127.0.0.1:9/hook", "type": "async"});
    let r = http
        .request("POST", "/api/v1/custom-channels", &json_headers(Some(&token)), body.to_string().as_bytes())
        .await?;
    if r.status != 201 {
        bail!("creating the custom channel: {} {}", r.status, r.text());
    }
    let channel = r.json()["id"].as_i64().context("channel id")?;
    let path = format!("/api/v1/custom-channels/{channel}/inbound");
    // One conversation per customer before any socket listens, so the measured messages are appends.
    for c in 0..cfg.customers {
        let body = json!({"user_custom_id": format!("customer-{c}"), "content": "first message", "name": format!("Customer {c}")});
        let r = http.request("POST", &path, &json_headers(Some(&token)), body.to_string().as_bytes()).await?;
        if r.status != 201 {
            bail!("creating conversation {c}: {} {}", r.status, r.text());
        }
    }
    Ok(Cluster {
        system: System::Switchboard,
        addrs,
        pids,
        token: Some(token),
        path,
        customers: cfg.customers,
        _guards: guards,
        _pg: pg,
        _dir: dir,
    })
}

fn socketio_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/reference/socketio")
}

async fn start_socketio(nodes: usize, cfg: &Cfg) -> anyhow::Result<Cluster> {
    let dir = socketio_dir();
    if !dir.join("node_modules").join("socket.io").exists() {
        eprintln!("benches/reference/socketio: node_modules missing, running `npm ci` there");
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .context("run npm ci in benches/reference/socketio (needs Node.js and npm)")?;
        if !status.success() {
            bail!("npm ci in {} failed", dir.display());
        }
    }
    let key = format!("switchboard-bench-{}-{}", std::process::id(), chrono::Utc::now().timestamp_millis());
    reference_cluster(System::SocketIo, nodes, cfg, "socketio", || {
        let mut cmd = Command::new("node");
        cmd.arg("server.js").current_dir(&dir).env("PORT", "0");
        if nodes > 1 {
            cmd.env("REDIS_URL", proc::redis_url()).env("REDIS_KEY", &key);
        }
        cmd
    })
}

async fn start_raw(nodes: usize, cfg: &Cfg) -> anyhow::Result<Cluster> {
    let exe = std::env::current_exe()?;
    let channel = format!("switchboard-bench-raw-{}-{}", std::process::id(), chrono::Utc::now().timestamp_millis());
    reference_cluster(System::Raw, nodes, cfg, "raw", || {
        let mut cmd = Command::new(&exe);
        cmd.env(ROLE_VAR, "raw-ws");
        if nodes > 1 {
            cmd.env("RAW_REDIS_URL", proc::redis_url()).env("RAW_REDIS_CHANNEL", &channel);
        }
        cmd
    })
}

/// `nodes` processes of a reference server (each made by `command`), started and listening.
fn reference_cluster(
    system: System,
    nodes: usize,
    cfg: &Cfg,
    prefix: &str,
    command: impl Fn() -> Command,
) -> anyhow::Result<Cluster> {
    let mut guards = Vec::new();
    let mut addrs = Vec::new();
    let mut pids = Vec::new();
    for i in 0..nodes {
        let name = format!("{prefix}-{nodes}n-{i}");
        let mut g = proc::spawn(&name, command(), &cfg.log_dir.join(format!("{name}.log")))?;
        let addr = g.wait_for_line("listening on ", Duration::from_secs(30))?;
        addrs.push(addr);
        pids.push(g.pid());
        guards.push(g);
    }
    Ok(Cluster {
        system,
        addrs,
        pids,
        token: None,
        path: String::new(),
        customers: 0,
        _guards: guards,
        _pg: None,
        _dir: tempfile::tempdir()?,
    })
}

// ---------------------------------------------------------------------------------------------
// Sockets

/// The subscribed sockets of one cluster, each read by its own task.
struct Sockets {
    tasks: Vec<JoinHandle<()>>,
}

impl Sockets {
    fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Subscribe sockets until there are `total`, spread round-robin over the nodes.
    async fn grow_to(&mut self, cluster: &Cluster, total: usize, rec: &Arc<Recorder>) -> anyhow::Result<()> {
        let start = self.tasks.len();
        if total > start {
            let proto = cluster.system.proto();
            let more =
                common::ws::subscribe_many(&cluster.addrs, proto, cluster.token.as_deref(), start..total, rec.clone())
                    .await?;
            self.tasks.extend(more);
        }
        Ok(())
    }

    fn close(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The ladder

#[derive(Debug, Clone, Default)]
struct Step {
    /// Offered message rate.
    rate: f64,
    /// Messages per second that reached the sockets (deliveries/s ÷ sockets).
    achieved: f64,
    expected: u64,
    delivered: u64,
    errors: usize,
    first_error: Option<String>,
    deliveries_per_s: f64,
    p50: u64,
    p99: u64,
    max: u64,
    post_p50: u64,
    post_p99: u64,
    /// How far behind schedule the senders fell at worst.
    lag: Duration,
    frame_bytes: u64,
    server_cpu: f64,
    gen_cpu: f64,
    /// PostgreSQL + Redis processes of the machine (others' work included), cores.
    db_cpu: f64,
    closed: usize,
}

impl Step {
    fn passed(&self, p99_us: u64) -> bool {
        self.errors == 0 && self.delivered == self.expected && self.p99 <= p99_us
    }
}

/// CPU used so far by PostgreSQL and Redis (all their processes on the machine).
fn db_cpu() -> Duration {
    proc::cpu_time_of_all("postgres") + proc::cpu_time_of_all("redis-server")
}

async fn run_step(
    cluster: &Arc<Cluster>,
    rec: &Arc<Recorder>,
    sockets: usize,
    rate: f64,
    messages: usize,
    first_id: usize,
    cfg: &Cfg,
) -> Step {
    let end = first_id + messages;
    rec.begin(first_id, end);
    let closed_before = rec.closed.load(Relaxed);
    let payload_bytes = cfg.payload_bytes.load(Relaxed).max(200);
    let cpu0 = (cluster.cpu(), proc::cpu_time(std::process::id()), db_cpu());
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let lag = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for _ in 0..cfg.senders.min(messages).max(1) {
        let (cluster, rec, next, errors, first_error, lag) =
            (cluster.clone(), rec.clone(), next.clone(), errors.clone(), first_error.clone(), lag.clone());
        senders.push(tokio::spawn(async move {
            let mut conns: Vec<HttpConn> = cluster.addrs.iter().map(|a| HttpConn::new(a)).collect();
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= messages {
                    return;
                }
                let at = start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(at).await;
                lag.fetch_max(tokio::time::Instant::now().saturating_duration_since(at).as_micros() as u64, Relaxed);
                let id = first_id + i;
                let (path, headers, body) = cluster.request(id, payload_bytes);
                let path = path.to_owned();
                let conn = &mut conns[i % cluster.addrs.len()];
                let t0 = rec.sending(id);
                let result = conn.request("POST", &path, &headers, &body).await;
                rec.answered(id, t0);
                let problem = match result {
                    Ok(r) if (200..300).contains(&r.status) => None,
                    Ok(r) => Some(format!("{} {}", r.status, r.text())),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(p) = problem {
                    errors.fetch_add(1, Relaxed);
                    first_error.lock().unwrap().get_or_insert(p);
                }
            }
        }));
    }
    for s in senders {
        let _ = s.await;
    }
    let expected = (messages * sockets) as u64;
    // Wait for the last frames: until all arrived, or nothing arrived for 3 s (10 s at most).
    let drain_start = Instant::now();
    let mut last_count = rec.frames.load(Relaxed);
    let mut last_progress = Instant::now();
    while rec.frames.load(Relaxed) < expected && drain_start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = rec.frames.load(Relaxed);
        if now != last_count {
            last_count = now;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let wall = started.elapsed().as_secs_f64().max(1e-3);
    let cpu1 = (cluster.cpu(), proc::cpu_time(std::process::id()), db_cpu());
    let delivered = rec.frames.load(Relaxed);
    let first_sent = rec.sent[first_id].load(Relaxed);
    let duration = Duration::from_nanos(rec.last_ns.load(Relaxed).saturating_sub(first_sent).max(1));
    let e = first_error.lock().unwrap().clone();
    Step {
        rate,
        achieved: delivered as f64 / duration.as_secs_f64() / sockets.max(1) as f64,
        expected,
        delivered,
        errors: errors.load(Relaxed),
        first_error: e,
        deliveries_per_s: delivered as f64 / duration.as_secs_f64(),
        p50: rec.latency.quantile(0.50),
        p99: rec.latency.quantile(0.99),
        max: rec.latency.max(),
        post_p50: rec.post.quantile(0.50),
        post_p99: rec.post.quantile(0.99),
        lag: Duration::from_micros(lag.load(Relaxed)),
        frame_bytes: rec.bytes.load(Relaxed).checked_div(delivered).unwrap_or(0),
        server_cpu: (cpu1.0.saturating_sub(cpu0.0)).as_secs_f64() / wall,
        gen_cpu: (cpu1.1.saturating_sub(cpu0.1)).as_secs_f64() / wall,
        db_cpu: (cpu1.2.saturating_sub(cpu0.2)).as_secs_f64() / wall,
        closed: rec.closed.load(Relaxed) - closed_before,
    }
}

/// Rising message rates, each step ×`growth`, until the system saturates (it no longer reaches
/// 70 % of the offered rate), p99 exceeds the peak bound (`FANOUT_PEAK_P99_MS`, 1 s), a frame is
/// lost or a request fails; every step's result. The best step within the p99 target and the peak
/// are picked from these afterwards, so one noisy step does not end the ladder.
async fn ladder(
    cluster: &Arc<Cluster>,
    rec: &Arc<Recorder>,
    sockets: usize,
    next_id: &mut usize,
    cfg: &Cfg,
) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut rate = (cfg.start_deliveries / sockets as f64).max(0.5);
    for _ in 0..cfg.max_steps {
        if Instant::now() > cfg.deadline {
            eprintln!("    time bound reached (FANOUT_MAX_MINUTES); stopping this ladder");
            break;
        }
        let n = ((rate * cfg.step_secs).round() as usize).clamp(cfg.min_messages, cfg.max_messages);
        let step = run_step(cluster, rec, sockets, rate, n, *next_id, cfg).await;
        *next_id += n;
        eprintln!(
            "    {:>7.1} msg/s offered ({:>7.1} reached): {:>4} msgs × {} sockets, {:>9} deliveries/s, p50 {:>7} ms, p99 {:>7} ms, max {:>7} ms, POST p99 {:>6} ms, lag {:>5} ms, cores: srv {:.2} gen {:.2} pg+redis {:.2}{}{}",
            rate,
            step.achieved,
            n,
            sockets,
            thousands(step.deliveries_per_s),
            ms(step.p50),
            ms(step.p99),
            ms(step.max),
            ms(step.post_p99),
            step.lag.as_millis(),
            step.server_cpu,
            step.gen_cpu,
            step.db_cpu,
            if step.delivered < step.expected {
                let (n, sample) = rec.incomplete(*next_id - n..*next_id, sockets as u32, 3);
                let sample: Vec<String> =
                    sample.iter().map(|(id, got, us)| format!("#{id} {got}/{sockets} after {} ms", ms(*us))).collect();
                format!(
                    ", LOST {} of {} frames ({n} messages incomplete: {})",
                    step.expected - step.delivered,
                    step.expected,
                    sample.join(", ")
                )
            } else {
                String::new()
            },
            match &step.first_error {
                Some(e) => format!(", {} request errors (first: {e})", step.errors),
                None => String::new(),
            }
        );
        let saturated = step.achieved < 0.7 * rate;
        let stop = saturated || step.p99 > cfg.peak_p99_us || step.delivered < step.expected || step.errors > 0;
        steps.push(step);
        if stop {
            break;
        }
        rate *= cfg.growth;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    steps
}

struct FanoutResult {
    nodes: usize,
    sockets: usize,
    system: System,
    best: Option<Step>,
    peak: Option<Step>,
    /// The first (lightest) step.
    lightest: Option<Step>,
    /// The ladder never failed: the best figure is a lower bound.
    unbounded: bool,
    /// Sockets the server closed during the ladder (slow consumers).
    closed: usize,
    note: String,
}

async fn fanout_phase(cfg: &Cfg) -> Vec<FanoutResult> {
    let mut results = Vec::new();
    for &nodes in &cfg.nodes {
        for &system in &cfg.systems {
            eprintln!("\n== fan-out: {} on {nodes} node(s)", system.name());
            if Instant::now() > cfg.deadline {
                eprintln!("   skipped: time bound reached");
                continue;
            }
            let cluster = match Cluster::start(system, nodes, cfg).await {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    eprintln!("   could not start: {e:#}");
                    for &sockets in &cfg.sockets {
                        results.push(FanoutResult {
                            nodes,
                            sockets,
                            system,
                            best: None,
                            peak: None,
                            lightest: None,
                            unbounded: false,
                            closed: 0,
                            note: format!("not run: {e}").lines().next().unwrap_or("").to_owned(),
                        });
                    }
                    continue;
                }
            };
            let capacity = 1 + cfg.sockets.len() * cfg.max_steps * cfg.max_messages;
            let rec = Arc::new(Recorder::new(capacity, MARKER));
            let mut socks = Sockets { tasks: Vec::new() };
            let mut next_id = 1usize;
            let mut sizes = cfg.sockets.clone();
            sizes.sort_unstable();
            for &wanted in &sizes {
                let sockets = wanted.min(cfg.max_sockets());
                let mut note = String::new();
                if sockets < wanted {
                    note = format!("{wanted} requested; {sockets} fit under the open-files limit");
                }
                eprintln!("  -- {sockets} sockets");
                if let Err(e) = socks.grow_to(&cluster, sockets, &rec).await {
                    eprintln!("   could not subscribe {sockets} sockets: {e:#}");
                    results.push(FanoutResult {
                        nodes,
                        sockets,
                        system,
                        best: None,
                        peak: None,
                        lightest: None,
                        unbounded: false,
                        closed: 0,
                        note: format!("subscribing failed: {e}"),
                    });
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                let steps = ladder(&cluster, &rec, socks.len(), &mut next_id, cfg).await;
                if system == System::Switchboard
                    && cfg.payload_bytes.load(Relaxed) == 0
                    && let Some(s) = steps.first()
                {
                    cfg.payload_bytes.store(s.frame_bytes as usize, Relaxed);
                    eprintln!(
                        "    (references will broadcast {}-byte payloads, Switchboard's frame size)",
                        s.frame_bytes
                    );
                }
                let best = steps
                    .iter()
                    .filter(|s| s.passed(cfg.p99_us))
                    .max_by(|a, b| a.deliveries_per_s.total_cmp(&b.deliveries_per_s))
                    .cloned();
                let peak = steps
                    .iter()
                    .filter(|s| s.errors == 0 && s.delivered == s.expected && s.p99 <= cfg.peak_p99_us)
                    .max_by(|a, b| a.deliveries_per_s.total_cmp(&b.deliveries_per_s))
                    .cloned();
                let unbounded = steps.len() >= cfg.max_steps
                    && steps.last().is_some_and(|s| s.passed(cfg.p99_us) && s.achieved >= 0.7 * s.rate);
                let closed = steps.iter().map(|s| s.closed).sum();
                let lightest = steps.first().cloned();
                results.push(FanoutResult { nodes, sockets, system, best, peak, lightest, unbounded, closed, note });
            }
            socks.close();
            drop(cluster);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    results
}

// ---------------------------------------------------------------------------------------------
// Idle sockets

struct IdleResult {
    system: System,
    sockets: usize,
    rss_before: u64,
    rss_after: u64,
    note: String,
}

async fn idle_phase(cfg: &Cfg) -> Vec<IdleResult> {
    let mut results = Vec::new();
    let mut sizes = cfg.idle_sockets.clone();
    sizes.sort_unstable();
    for &system in &cfg.idle_systems {
        eprintln!("\n== idle sockets: {}", system.name());
        if Instant::now() > cfg.deadline {
            eprintln!("   skipped: time bound reached");
            continue;
        }
        let cluster = match Cluster::start(system, 1, cfg).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("   could not start: {e:#}");
                continue;
            }
        };
        let rec = Arc::new(Recorder::new(1, MARKER));
        let mut socks = Sockets { tasks: Vec::new() };
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = cluster.rss();
        let mut done = 0;
        for &wanted in &sizes {
            let sockets = wanted.min(cfg.max_sockets());
            if sockets <= done {
                continue;
            }
            let note = if sockets < wanted {
                format!(
                    "{wanted} requested: above the {}-open-files limit of one process; measured at {sockets}",
                    cfg.nofile
                )
            } else {
                String::new()
            };
            if let Err(e) = socks.grow_to(&cluster, sockets, &rec).await {
                eprintln!("   could not subscribe {sockets} sockets: {e:#}");
                break;
            }
            done = sockets;
            // Let the sockets settle (first marker refreshes, allocator).
            tokio::time::sleep(Duration::from_secs(4)).await;
            let after = cluster.rss();
            eprintln!(
                "    {sockets} idle sockets: RSS {} → {} MiB = {} per socket (server fds {})",
                before / 1_048_576,
                after / 1_048_576,
                kib(after.saturating_sub(before) as f64 / sockets as f64),
                proc::open_fds(cluster.pids[0])
            );
            results.push(IdleResult { system, sockets, rss_before: before, rss_after: after, note });
        }
        socks.close();
        drop(cluster);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    results
}

// ---------------------------------------------------------------------------------------------
// Idle conversation actors

struct ActorResult {
    requested: usize,
    conversations: usize,
    warm: usize,
    woken: usize,
    elapsed: Duration,
    rss_before: u64,
    rss_after: u64,
    errors: usize,
    /// (requests, RSS growth) of the control run.
    control: Option<(usize, u64)>,
    note: String,
}

async fn actors_phase(cfg: &Cfg) -> anyhow::Result<ActorResult> {
    eprintln!("\n== idle conversation actors ({} conversations, PostgreSQL)", cfg.actors);
    let dir = tempfile::Builder::new().prefix("switchboard-bench-").tempdir()?;
    let pg = PgDb::create("actors")?;
    let node_cfg =
        NodeConfig { database_url: pg.url.clone(), data_dir: dir.path().join("node"), redis_url: None, env: vec![] };
    let token = node_cfg.admin_token("bench@example.com")?;
    let node = Node::start("switchboard-actors", &node_cfg, &cfg.log_dir)?;
    let mut http = HttpConn::new(&node.addr);
    let body = json!({"name": "Benchmark", "webhook_url": "http://127.0.0.1:9/hook", "type": "async"});
    let r = http
        .request("POST", "/api/v1/custom-channels", &json_headers(Some(&token)), body.to_string().as_bytes())
        .await?;
    let channel = r.json()["id"].as_i64().with_context(|| format!("channel: {} {}", r.status, r.text()))?;
    let n = cfg.actors;
    let t = Instant::now();
    proc::psql(
        &pg.url,
        &format!(
            "BEGIN;
             INSERT INTO customers (name, created_at, updated_at)
               SELECT 'Bench customer ' || g, now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc' FROM generate_series(1, {n}) g;
             INSERT INTO conversations (number, channel_instance_id, customer_id, mode, status, priority, subject,
                                        custom_fields, last_seq, created_at, updated_at)
               SELECT (SELECT value FROM counters WHERE name = 'conversation_number') + row_number() OVER (ORDER BY c.id),
                      {channel}, c.id, 'async', 'open', 'normal', 'bench', '{{}}', 0,
                      now() AT TIME ZONE 'utc', now() AT TIME ZONE 'utc'
               FROM customers c WHERE c.name LIKE 'Bench customer %';
             UPDATE counters SET value = value + {n} WHERE name = 'conversation_number';
             COMMIT;"
        ),
    )?;
    let ids: Vec<i64> = proc::psql(&pg.url, "SELECT id FROM conversations WHERE subject = 'bench' ORDER BY id")?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    eprintln!("    {} conversations inserted with SQL in {:.1} s", ids.len(), t.elapsed().as_secs_f64());
    let warm = (ids.len() / 100).clamp(1, 1000).min(ids.len());
    let headers = json_headers(Some(&token));
    let patch = |range: std::ops::Range<usize>, until: Instant, body: &'static [u8]| {
        let ids = Arc::new(ids[range].to_vec());
        let next = Arc::new(AtomicUsize::new(0));
        let ok = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..cfg.actor_clients)
            .map(|_| {
                let (ids, next, ok, errors, headers) =
                    (ids.clone(), next.clone(), ok.clone(), errors.clone(), headers.clone());
                let mut conn = HttpConn::new(&node.addr);
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Relaxed);
                        if i >= ids.len() || Instant::now() > until {
                            return;
                        }
                        match conn.request("PATCH", &format!("/api/v1/conversations/{}", ids[i]), &headers, body).await
                        {
                            Ok(r) if r.status == 200 => ok.fetch_add(1, Relaxed),
                            _ => errors.fetch_add(1, Relaxed),
                        };
                    }
                })
            })
            .collect();
        async move {
            for t in tasks {
                let _ = t.await;
            }
            (ok.load(Relaxed), errors.load(Relaxed))
        }
    };
    const HIGH: &[u8] = br#"{"priority":"high"}"#;
    let (warm_ok, _) = patch(0..warm, Instant::now() + Duration::from_secs(60), HIGH).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = node.rss();
    let t = Instant::now();
    // Actors stop after 300 s idle: stay well inside that.
    let bound = Duration::from_secs_f64(cfg.actor_secs.min(240.0));
    let (woken, errors) = patch(warm..ids.len(), Instant::now() + bound, HIGH).await;
    let elapsed = t.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = node.rss();
    let note = if woken + warm_ok < n {
        format!("{n} requested; {} woken within the {:.0} s bound", woken + warm_ok, bound.as_secs_f64())
    } else {
        String::new()
    };
    eprintln!(
        "    {woken} actors woken in {:.1} s ({:.0}/s, {errors} errors): RSS {} → {} MiB = {} per actor",
        elapsed.as_secs_f64(),
        woken as f64 / elapsed.as_secs_f64(),
        before / 1_048_576,
        after / 1_048_576,
        kib(after.saturating_sub(before) as f64 / woken.max(1) as f64)
    );
    // Control: the same requests to conversations whose actors are already running, to see how
    // much RSS grows per request without a new actor.
    let control_n = cfg.actor_control.min(warm + woken);
    let control = if control_n > 0 {
        let (done, _) = patch(0..control_n, Instant::now() + Duration::from_secs(60), br#"{"priority":"low"}"#).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let grown = node.rss().saturating_sub(after);
        eprintln!(
            "    control: {done} more PATCHes to running actors: RSS +{} MiB = {} per request",
            grown / 1_048_576,
            kib(grown as f64 / done.max(1) as f64)
        );
        Some((done, grown))
    } else {
        None
    };
    drop(node);
    drop(pg);
    Ok(ActorResult {
        requested: n,
        conversations: ids.len(),
        warm: warm_ok,
        woken,
        elapsed,
        rss_before: before,
        rss_after: after,
        errors,
        control,
        note,
    })
}

// ---------------------------------------------------------------------------------------------

async fn run(nofile: u64) -> anyhow::Result<()> {
    let cfg = Cfg::from_env(nofile, log_dir()?);
    let began = Instant::now();
    println!("# Switchboard fan-out benchmark — {}", common::today());
    println!("machine: {}; open-files limit {nofile} per process", common::machine());
    println!("server logs: {}", cfg.log_dir.display());
    let need_pg = cfg.phases.iter().any(|p| p == "actors")
        || (cfg.phases.iter().any(|p| p == "fanout")
            && cfg.systems.contains(&System::Switchboard)
            && (cfg.nodes.iter().any(|n| *n > 1) || cfg.db_one_node.starts_with("postgres")));
    if need_pg && !proc::reachable(&proc::pg_admin_url()) {
        bail!("PostgreSQL is not reachable at {} (set BENCH_PG_URL)", proc::pg_admin_url());
    }
    if cfg.phases.iter().any(|p| p == "fanout")
        && cfg.nodes.iter().any(|n| *n > 1)
        && !proc::reachable(&proc::redis_url())
    {
        bail!("Redis is not reachable at {} (set BENCH_REDIS_URL)", proc::redis_url());
    }

    let fanout = if cfg.phases.iter().any(|p| p == "fanout") { fanout_phase(&cfg).await } else { vec![] };
    let idle = if cfg.phases.iter().any(|p| p == "idle") { idle_phase(&cfg).await } else { vec![] };
    let actors = if cfg.phases.iter().any(|p| p == "actors") && cfg.actors > 0 {
        match actors_phase(&cfg).await {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("actors phase failed: {e:#}");
                None
            }
        }
    } else {
        None
    };

    println!();
    if !fanout.is_empty() {
        println!(
            "## Fan-out (latency = from just before the HTTP request creating the message is written, to the frame read on a socket)"
        );
        println!(
            "best = highest deliveries/s of a ladder step with p99 ≤ {} ms and nothing lost (msg/s = messages reaching the sockets per second); peak = highest deliveries/s of a step with p99 ≤ {} ms and nothing lost; ≥ = the ladder ended before the bound was reached",
            cfg.p99_us / 1000,
            cfg.peak_p99_us / 1000
        );
        let mut rows = Vec::new();
        for r in &fanout {
            let cell = |s: &Option<Step>, f: &dyn Fn(&Step) -> String| s.as_ref().map(f).unwrap_or_else(|| "–".into());
            rows.push(vec![
                r.nodes.to_string(),
                thousands(r.sockets as f64),
                r.system.name().to_owned(),
                cell(&r.best, &|s| format!("{:.1}", s.achieved)),
                cell(&r.best, &|s| format!("{}{}", if r.unbounded { "≥ " } else { "" }, thousands(s.deliveries_per_s))),
                cell(&r.best, &|s| ms(s.p50)),
                cell(&r.best, &|s| ms(s.p99)),
                cell(&r.best, &|s| format!("{}/{}", ms(s.post_p50), ms(s.post_p99))),
                cell(&r.best, &|s| format!("{:.2}/{:.2}/{:.2}", s.server_cpu, s.gen_cpu, s.db_cpu)),
                cell(&r.peak, &|s| thousands(s.deliveries_per_s)),
                cell(&r.peak, &|s| ms(s.p99)),
                cell(&r.lightest, &|s| format!("{:.1}: {}/{}", s.achieved, ms(s.p50), ms(s.p99))),
                cell(&r.peak, &|s| s.frame_bytes.to_string()),
                {
                    match (r.closed, r.note.is_empty()) {
                        (0, _) => r.note.clone(),
                        (n, true) => format!("{n} sockets closed by the server"),
                        (n, false) => format!("{}; {n} sockets closed by the server", r.note),
                    }
                },
            ]);
        }
        common::print_table(
            &[
                "nodes",
                "sockets",
                "system",
                "best msg/s",
                "best deliveries/s",
                "p50 ms",
                "p99 ms",
                "POST p50/p99 ms",
                "CPU srv/gen/pg+redis (cores)",
                "peak deliveries/s",
                "peak p99 ms",
                "lightest step msg/s: p50/p99 ms",
                "frame B",
                "note",
            ],
            &rows,
        );
        println!();
        println!(
            "Targets (Switchboard vs references: best deliveries/s at p99 ≤ {} ms; where a system has no such step, \
             the peak deliveries/s at p99 ≤ {} ms is compared instead and the target counts as not met):",
            cfg.p99_us / 1000,
            cfg.peak_p99_us / 1000
        );
        let find = |nodes: usize, sockets: usize, system: System| {
            fanout.iter().find(|r| r.nodes == nodes && r.sockets == sockets && r.system == system)
        };
        for &nodes in &cfg.nodes {
            let mut sizes: Vec<usize> = fanout.iter().filter(|r| r.nodes == nodes).map(|r| r.sockets).collect();
            sizes.sort_unstable();
            sizes.dedup();
            for sockets in sizes {
                let sb = find(nodes, sockets, System::Switchboard);
                let verdict = |other: System, factor: f64, what: &str| {
                    let other = find(nodes, sockets, other);
                    let pick = |r: Option<&FanoutResult>, best: bool| {
                        r.and_then(|r| if best { r.best.as_ref() } else { r.peak.as_ref() }).map(|s| s.deliveries_per_s)
                    };
                    match (pick(sb, true), pick(other, true)) {
                        (Some(a), Some(b)) if b > 0.0 => format!(
                            "{:.2}× {what} at p99 ≤ {} ms (target {factor}×: {})",
                            a / b,
                            cfg.p99_us / 1000,
                            if a / b >= factor { "met" } else { "not met" }
                        ),
                        (a, b) => {
                            let missing = match (a, b) {
                                (None, None) => "neither system had a step",
                                (None, _) => "Switchboard had no step",
                                _ => "the reference had no step",
                            };
                            match (pick(sb, false), pick(other, false)) {
                                (Some(a), Some(b)) if b > 0.0 => format!(
                                    "{:.2}× {what} at peak ({missing} within p99 ≤ {} ms; target {factor}×: not met)",
                                    a / b,
                                    cfg.p99_us / 1000
                                ),
                                _ => format!("– vs {what} (not measured)"),
                            }
                        }
                    }
                };
                println!(
                    "- {nodes} node(s), {} sockets: {}; {}",
                    thousands(sockets as f64),
                    verdict(System::SocketIo, 3.0, "Socket.IO"),
                    verdict(System::Raw, 0.5, "the raw ceiling"),
                );
            }
        }
    }
    if !idle.is_empty() {
        println!();
        println!("## RSS per idle subscribed socket (server VmRSS after − before connecting N sockets, / N; one node)");
        let rows: Vec<Vec<String>> = idle
            .iter()
            .map(|r| {
                let per = r.rss_after.saturating_sub(r.rss_before) as f64 / r.sockets as f64;
                vec![
                    r.system.name().to_owned(),
                    thousands(r.sockets as f64),
                    format!("{:.1}", r.rss_before as f64 / 1_048_576.0),
                    format!("{:.1}", r.rss_after as f64 / 1_048_576.0),
                    kib(per),
                    if r.system == System::Switchboard {
                        if per <= 10.0 * 1024.0 { "met (≤ 10 KiB)".into() } else { "not met (> 10 KiB)".into() }
                    } else {
                        "reference".into()
                    },
                    r.note.clone(),
                ]
            })
            .collect();
        common::print_table(
            &["system", "sockets", "RSS before MiB", "RSS after MiB", "per socket", "target", "note"],
            &rows,
        );
    }
    if let Some(a) = &actors {
        println!();
        println!("## Memory per idle conversation actor (PostgreSQL; one PATCH per conversation starts its actor)");
        let per = a.rss_after.saturating_sub(a.rss_before) as f64 / a.woken.max(1) as f64;
        common::print_table(
            &[
                "conversations",
                "actors measured",
                "wake time",
                "RSS before MiB",
                "RSS after MiB",
                "per actor",
                "target",
                "control: per PATCH to a running actor",
                "note",
            ],
            &[vec![
                thousands(a.conversations as f64),
                format!("{} (+{} warm-up)", thousands(a.woken as f64), a.warm),
                format!(
                    "{:.1} s ({:.0}/s, {} errors)",
                    a.elapsed.as_secs_f64(),
                    a.woken as f64 / a.elapsed.as_secs_f64(),
                    a.errors
                ),
                format!("{:.1}", a.rss_before as f64 / 1_048_576.0),
                format!("{:.1}", a.rss_after as f64 / 1_048_576.0),
                kib(per),
                if per <= 2048.0 { "met (≤ 2 KiB)".into() } else { "not met (> 2 KiB)".into() },
                match a.control {
                    Some((n, grown)) => {
                        format!("{} ({} requests)", kib(grown as f64 / n.max(1) as f64), thousands(n as f64))
                    }
                    None => "–".into(),
                },
                if a.requested != a.conversations {
                    format!("{} requested; {}", a.requested, a.note)
                } else {
                    a.note.clone()
                },
            ]],
        );
    }
    println!();
    println!("total time {:.0} s", began.elapsed().as_secs_f64());
    Ok(())
}
