//! Inbound benchmark (issue #4): sustained customer messages per second through
//! `POST /api/v1/custom-channels/{id}/inbound` — each one persisted and fanned out to 100 subscribed
//! agent sockets — with the answer latency, on SQLite and on PostgreSQL, beside the ceiling of the
//! same database measured in the same run: plain single-row INSERTs with the same client count.
//!
//! ```sh
//! export CARGO_TARGET_DIR=/var/tmp/switchboard-target
//! cargo bench --bench inbound                                   # ~2.5 min
//! INBOUND_BACKENDS=sqlite INBOUND_SECS=5 cargo bench --bench inbound   # smaller
//! ```
//!
//! For each backend (`INBOUND_BACKENDS`, default `sqlite,postgres`):
//!
//! 1. a fresh database (SQLite file in a temporary folder, or a new PostgreSQL database at
//!    `BENCH_PG_URL`), an admin and an API token from the CLI, the release server as a child
//!    process, one async custom channel, `INBOUND_SOCKETS` (100) agent sockets subscribed;
//! 2. warm-up: the first message of each of `INBOUND_CUSTOMERS` (1,000) customers, which opens
//!    their conversations (not measured);
//! 3. measured: `INBOUND_CLIENTS` (32) closed-loop clients, each sending its next message as soon
//!    as the previous one was answered, for `INBOUND_SECS` (20) seconds (and at most
//!    `INBOUND_MAX_MESSAGES`), customers in turn, each message with its own `external_message_id`;
//!    then the frames the sockets received are counted (and timed: request written → frame read);
//! 4. Mattermost (issue #15; `INBOUND_MATTERMOST=0` skips it): on the same server and sockets, a bot on the
//!    test suite's fake Mattermost (`tests/common/fake_mattermost.rs`, in this process, real HTTP and WebSocket
//!    on loopback), `INBOUND_MM_USERS` (100) users each writing to the bot in their DM; after a warm-up post
//!    per user, posts go out with at most `INBOUND_CLIENTS` of them not yet seen on the sockets, for
//!    `INBOUND_SECS`; posts/s counts until the last frame arrived, latency is post written → frame read;
//! 5. Zalo (issue #16; `INBOUND_ZALO=0` skips it): on the same server and sockets, an Official Account on the test
//!    suite's fake Zalo (`tests/common/fake_zalo.rs`: OAuth and send API on loopback), `INBOUND_ZALO_USERS` (100)
//!    Zalo users; after a warm-up event per user, `INBOUND_CLIENTS` closed-loop clients POST signed `user_send_text`
//!    webhooks (`X-ZEvent-Signature`) for `INBOUND_SECS`, each sending its next event as soon as the previous one
//!    was answered 200: events/s and the answer (ack) p50/p99 — what Zalo waits for, 2 s at most — then events/s
//!    until the last frame reached the sockets and event written → frame read, as processing runs after the ack;
//! 6. the server is stopped and the ceiling measured on the same engine with the same client count
//!    and duration: PostgreSQL with `pgbench -n -c CLIENTS -j 2 -T SECS` and a custom script of one
//!    single-row INSERT; SQLite with CLIENTS threads, one connection each, WAL and
//!    `synchronous=NORMAL` like the server, serialised by one process-wide lock as the server's
//!    writer lock does, each doing single-row INSERTs (autocommit).

mod common;
#[path = "../tests/common/fake_mattermost.rs"]
mod fake_mattermost;
#[path = "../tests/common/fake_zalo.rs"]
mod fake_zalo;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use common::hist::Histogram;
use common::http::{HttpConn, json_headers};
use common::proc::{self, Node, NodeConfig, PgDb};
use common::record::Recorder;
use common::ws::Proto;
use common::{env_string, env_usize, env_words, ms, thousands};
use serde_json::json;

const MARKER: &[u8] = b"inbound-id-";

fn main() -> anyhow::Result<()> {
    let nofile = proc::raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(run(nofile))
}

struct Cfg {
    backends: Vec<String>,
    clients: usize,
    secs: f64,
    customers: usize,
    sockets: usize,
    max_messages: usize,
    ceiling: bool,
    mattermost: bool,
    mm_users: usize,
    zalo: bool,
    zalo_users: usize,
    log_dir: std::path::PathBuf,
}

/// Signed Zalo webhooks (step 5).
#[derive(Debug, Clone, Default)]
struct ZaloOutcome {
    /// Events answered 200.
    acked: usize,
    errors: usize,
    first_error: Option<String>,
    /// From the first event written to the last answer.
    ack_elapsed: Duration,
    ack_p50: u64,
    ack_p99: u64,
    ack_max: u64,
    /// From the first event written to the last frame read on a socket.
    processed_elapsed: Duration,
    frame_p50: u64,
    frame_p99: u64,
    frames: u64,
    expected_frames: u64,
}

impl ZaloOutcome {
    fn ack_rate(&self) -> f64 {
        self.acked as f64 / self.ack_elapsed.as_secs_f64().max(1e-3)
    }
    fn processed_rate(&self) -> f64 {
        (self.frames as f64 / (self.expected_frames.max(1) as f64) * self.acked as f64)
            / self.processed_elapsed.as_secs_f64().max(1e-3)
    }
}

/// Mattermost posts to agent sockets (step 4).
#[derive(Debug, Clone, Default)]
struct MmOutcome {
    posts: usize,
    elapsed: Duration,
    p50: u64,
    p99: u64,
    frames: u64,
    expected_frames: u64,
}

impl MmOutcome {
    fn rate(&self) -> f64 {
        self.posts as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }
}

#[derive(Default)]
struct Outcome {
    backend: String,
    messages: usize,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    p50: u64,
    p99: u64,
    max: u64,
    expected_frames: u64,
    frames: u64,
    fan_p50: u64,
    fan_p99: u64,
    server_cpu: f64,
    gen_cpu: f64,
    /// PostgreSQL backends (all of the machine's), cores.
    db_cpu: Option<f64>,
    closed_sockets: usize,
    /// Messages whose frame did not reach every socket, with examples.
    lost: Option<String>,
    ceiling: Option<Ceiling>,
    ceiling_error: Option<String>,
    mm: Option<MmOutcome>,
    mm_error: Option<String>,
    zalo: Option<ZaloOutcome>,
    zalo_error: Option<String>,
}

#[derive(Debug, Clone)]
struct Ceiling {
    how: String,
    inserts: u64,
    per_s: f64,
    p50: u64,
    p99: u64,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }
}

async fn run(nofile: u64) -> anyhow::Result<()> {
    let log_dir = std::env::temp_dir().join(format!("switchboard-bench-inbound-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir)?;
    let cfg = Cfg {
        backends: env_words("INBOUND_BACKENDS", &["sqlite", "postgres"]),
        clients: env_usize("INBOUND_CLIENTS", 32).max(1),
        secs: common::env_f64("INBOUND_SECS", 20.0),
        customers: env_usize("INBOUND_CUSTOMERS", 1000).max(1),
        sockets: env_usize("INBOUND_SOCKETS", 100),
        max_messages: env_usize("INBOUND_MAX_MESSAGES", 2_000_000),
        ceiling: env_string("INBOUND_CEILING", "1") != "0",
        mattermost: env_string("INBOUND_MATTERMOST", "1") != "0",
        mm_users: env_usize("INBOUND_MM_USERS", 100).max(1),
        zalo: env_string("INBOUND_ZALO", "1") != "0",
        zalo_users: env_usize("INBOUND_ZALO_USERS", 100).max(1),
        log_dir,
    };
    println!("# Switchboard inbound benchmark — {}", common::today());
    println!("machine: {}; open-files limit {nofile} per process", common::machine());
    println!(
        "{} clients (closed loop), {} s per backend, {} customers, {} agent sockets; server logs: {}",
        cfg.clients,
        cfg.secs,
        cfg.customers,
        cfg.sockets,
        cfg.log_dir.display()
    );
    let mut outcomes = Vec::new();
    for backend in &cfg.backends {
        eprintln!("\n== {backend}");
        let outcome = match backend.as_str() {
            "sqlite" => run_backend(&cfg, false).await,
            "postgres" | "postgresql" | "pg" => {
                if !proc::reachable(&proc::pg_admin_url()) {
                    eprintln!("   skipped: PostgreSQL is not reachable at {} (BENCH_PG_URL)", proc::pg_admin_url());
                    continue;
                }
                run_backend(&cfg, true).await
            }
            other => bail!("unknown backend {other:?} (sqlite, postgres)"),
        };
        match outcome {
            Ok(o) => outcomes.push(o),
            Err(e) => eprintln!("   failed: {e:#}"),
        }
    }

    println!();
    println!("## Inbound messages through POST /api/v1/custom-channels/{{id}}/inbound (persisted + fanned out)");
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            vec![
                o.backend.clone(),
                thousands(o.rate()),
                format!("{} in {:.1} s", thousands(o.messages as f64), o.elapsed.as_secs_f64()),
                ms(o.p50),
                ms(o.p99),
                ms(o.max),
                match &o.first_error {
                    Some(e) => format!("{} (first: {})", o.errors, e.chars().take(80).collect::<String>()),
                    None => "0".into(),
                },
                format!(
                    "{}/{}{}",
                    thousands(o.frames as f64),
                    thousands(o.expected_frames as f64),
                    if o.closed_sockets > 0 {
                        format!(" ({} sockets closed)", o.closed_sockets)
                    } else {
                        String::new()
                    }
                ),
                format!("{}/{}", ms(o.fan_p50), ms(o.fan_p99)),
                format!(
                    "{:.2}/{:.2}/{}",
                    o.server_cpu,
                    o.gen_cpu,
                    o.db_cpu.map(|c| format!("{c:.2}")).unwrap_or_else(|| "–".into())
                ),
            ]
        })
        .collect();
    common::print_table(
        &[
            "database",
            "messages/s",
            "messages",
            "answer p50 ms",
            "answer p99 ms",
            "max ms",
            "errors",
            "frames received/expected",
            "fan-out p50/p99 ms",
            "CPU server/generator/postgres (cores)",
        ],
        &rows,
    );
    for o in &outcomes {
        if let Some(l) = &o.lost {
            println!("{}: {l}", o.backend);
        }
    }
    if cfg.mattermost {
        println!();
        println!(
            "## Mattermost posts → messages on the agent sockets ({} users in DMs with the bot, ≤ {} posts in flight), beside the custom channel",
            cfg.mm_users, cfg.clients
        );
        let rows: Vec<Vec<String>> = outcomes
            .iter()
            .map(|o| match &o.mm {
                Some(m) => vec![
                    o.backend.clone(),
                    thousands(m.rate()),
                    format!("{} in {:.1} s", thousands(m.posts as f64), m.elapsed.as_secs_f64()),
                    ms(m.p50),
                    ms(m.p99),
                    format!("{}/{}", thousands(m.frames as f64), thousands(m.expected_frames as f64)),
                    thousands(o.rate()),
                    format!("{}/{}", ms(o.fan_p50), ms(o.fan_p99)),
                ],
                None => vec![
                    o.backend.clone(),
                    o.mm_error.clone().unwrap_or_else(|| "not measured".into()),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                    thousands(o.rate()),
                    format!("{}/{}", ms(o.fan_p50), ms(o.fan_p99)),
                ],
            })
            .collect();
        common::print_table(
            &[
                "database",
                "posts/s",
                "posts",
                "post → socket p50 ms",
                "p99 ms",
                "frames received/expected",
                "custom channel msg/s",
                "custom request → socket p50/p99 ms",
            ],
            &rows,
        );
    }
    if cfg.zalo {
        println!();
        println!(
            "## Zalo: signed webhooks → stored, answered 200, then processed into messages on the agent sockets ({} users, {} clients in a closed loop), beside the custom channel",
            cfg.zalo_users, cfg.clients
        );
        let rows: Vec<Vec<String>> = outcomes
            .iter()
            .map(|o| match &o.zalo {
                Some(z) => vec![
                    o.backend.clone(),
                    thousands(z.ack_rate()),
                    format!("{} in {:.1} s", thousands(z.acked as f64), z.ack_elapsed.as_secs_f64()),
                    format!("{}/{}/{}", ms(z.ack_p50), ms(z.ack_p99), ms(z.ack_max)),
                    match &z.first_error {
                        Some(e) => format!("{} (first: {})", z.errors, e.chars().take(80).collect::<String>()),
                        None => "0".into(),
                    },
                    thousands(z.processed_rate()),
                    format!("{}/{}", ms(z.frame_p50), ms(z.frame_p99)),
                    format!("{}/{}", thousands(z.frames as f64), thousands(z.expected_frames as f64)),
                    format!("{} msg/s, p50/p99 {}/{} ms", thousands(o.rate()), ms(o.p50), ms(o.p99)),
                ],
                None => {
                    let mut row =
                        vec![o.backend.clone(), o.zalo_error.clone().unwrap_or_else(|| "not measured".into())];
                    row.extend(std::iter::repeat_n("–".to_owned(), 6));
                    row.push(format!("{} msg/s, p50/p99 {}/{} ms", thousands(o.rate()), ms(o.p50), ms(o.p99)));
                    row
                }
            })
            .collect();
        common::print_table(
            &[
                "database",
                "events/s (acked)",
                "events",
                "ack p50/p99/max ms",
                "errors",
                "events/s processed",
                "event → socket p50/p99 ms",
                "frames received/expected",
                "custom channel inbound (answer)",
            ],
            &rows,
        );
    }
    println!();
    println!("## The same database's ceiling: single-row INSERTs, {} clients, same duration", cfg.clients);
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| match &o.ceiling {
            Some(c) => vec![
                o.backend.clone(),
                c.how.clone(),
                format!("{} ({} in total)", thousands(c.per_s), thousands(c.inserts as f64)),
                ms(c.p50),
                ms(c.p99),
                percent(o.rate() / c.per_s.max(1e-9)),
            ],
            None => vec![
                o.backend.clone(),
                o.ceiling_error.clone().unwrap_or_else(|| "not measured".into()),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
            ],
        })
        .collect();
    common::print_table(&["database", "how", "inserts/s", "p50 ms", "p99 ms", "Switchboard / ceiling"], &rows);
    println!();
    println!("Targets:");
    for o in &outcomes {
        let verdict = |ok: bool| if ok { "met" } else { "not met" };
        let mut line = format!(
            "- {}: p99 answer {} ms at {} msg/s (target ≤ 100 ms: {})",
            o.backend,
            ms(o.p99),
            thousands(o.rate()),
            verdict(o.p99 <= 100_000)
        );
        if o.backend == "postgres" {
            line.push_str(&format!(
                "; {} msg/s (target ≥ 5,000: {})",
                thousands(o.rate()),
                verdict(o.rate() >= 5000.0)
            ));
        }
        if let Some(c) = &o.ceiling {
            let share = o.rate() / c.per_s.max(1e-9);
            line.push_str(&format!(
                "; {} of the insert ceiling (target ≥ 70 %: {})",
                percent(share),
                verdict(share >= 0.7)
            ));
        }
        println!("{line}");
    }
    Ok(())
}

/// A share as a percentage: one decimal below 10 %.
fn percent(share: f64) -> String {
    if share < 0.1 { format!("{:.1} %", share * 100.0) } else { format!("{:.0} %", share * 100.0) }
}

async fn run_backend(cfg: &Cfg, postgres: bool) -> anyhow::Result<Outcome> {
    let backend = if postgres { "postgres" } else { "sqlite" };
    let dir = tempfile::Builder::new().prefix("switchboard-bench-").tempdir()?;
    let pg = if postgres { Some(PgDb::create("inbound")?) } else { None };
    let database_url = match &pg {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("switchboard.db").display()),
    };
    // The fake Mattermost listens on loopback, which the outbound policy refuses unless allowed.
    let env = vec![("SWITCHBOARD_ALLOWED_INTERNAL_HOSTS".to_owned(), "127.0.0.0/8".to_owned())];
    let node_cfg = NodeConfig { database_url, data_dir: dir.path().join("node"), redis_url: None, env };
    let token = node_cfg.admin_token("bench@example.com")?;
    let node = Node::start(&format!("switchboard-inbound-{backend}"), &node_cfg, &cfg.log_dir)?;
    let headers = json_headers(Some(&token));
    let mut http = HttpConn::new(&node.addr);
    let body = json!({"name": "Benchmark", "webhook_url": "http://127.0.0.1:9/hook", "type": "async"});
    let r = http.request("POST", "/api/v1/custom-channels", &headers, body.to_string().as_bytes()).await?;
    if r.status != 201 {
        bail!("creating the custom channel: {} {}", r.status, r.text());
    }
    let channel = r.json()["id"].as_i64().context("channel id")?;
    let path = Arc::new(format!("/api/v1/custom-channels/{channel}/inbound"));

    let capacity = cfg.customers
        + cfg.max_messages
        + 1
        + if cfg.mattermost { cfg.mm_users + cfg.max_messages } else { 0 }
        + if cfg.zalo { cfg.zalo_users + cfg.max_messages } else { 0 };
    let rec = Arc::new(Recorder::new(capacity, MARKER));
    rec.begin(0, 0);
    let addrs = vec![node.addr.clone()];
    let sockets =
        common::ws::subscribe_many(&addrs, Proto::Switchboard, Some(&token), 0..cfg.sockets, rec.clone()).await?;

    // Warm-up: every customer's first message opens their conversation.
    let t = Instant::now();
    let warm = send_loop(&node.addr, &path, &headers, cfg, &rec, 0, cfg.customers, None).await;
    eprintln!(
        "    warm-up: {} conversations opened in {:.1} s ({} errors)",
        warm.sent,
        t.elapsed().as_secs_f64(),
        warm.errors
    );
    if warm.errors > 0 {
        bail!("warm-up failed: {}", warm.first_error.unwrap_or_default());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Measured window.
    let first = cfg.customers;
    rec.begin(first, capacity);
    let cpu0 = (proc::cpu_time(node.pid()), proc::cpu_time(std::process::id()), proc::cpu_time_of_all("postgres"));
    let t = Instant::now();
    let deadline = Instant::now() + Duration::from_secs_f64(cfg.secs);
    let load = send_loop(&node.addr, &path, &headers, cfg, &rec, first, cfg.max_messages, Some(deadline)).await;
    let elapsed = t.elapsed();
    let cpu1 = (proc::cpu_time(node.pid()), proc::cpu_time(std::process::id()), proc::cpu_time_of_all("postgres"));
    let expected = (load.ok as u64) * cfg.sockets as u64;
    let drain = Instant::now();
    while rec.frames.load(Relaxed) < expected && drain.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Messages answered 201 whose frame did not reach every socket (fan-out losses).
    let (missing, sample) = rec.incomplete(first..first + load.sent, cfg.sockets as u32, 5);
    let lost = if missing > 0 {
        let ids: Vec<String> = sample
            .iter()
            .map(|(id, got, us)| format!("#{id}: {got}/{} frames, answered in {} ms", cfg.sockets, ms(*us)))
            .collect();
        eprintln!("    {missing} messages did not reach every socket, e.g. {}", ids.join("; "));
        Some(format!("{missing} messages incomplete, e.g. {}", ids.join("; ")))
    } else {
        None
    };
    let o = Outcome {
        lost,
        backend: backend.into(),
        messages: load.ok,
        errors: load.errors,
        first_error: load.first_error.clone(),
        elapsed,
        p50: rec.post.quantile(0.5),
        p99: rec.post.quantile(0.99),
        max: rec.post.max(),
        expected_frames: expected,
        frames: rec.frames.load(Relaxed),
        fan_p50: rec.latency.quantile(0.5),
        fan_p99: rec.latency.quantile(0.99),
        server_cpu: cpu1.0.saturating_sub(cpu0.0).as_secs_f64() / elapsed.as_secs_f64(),
        gen_cpu: cpu1.1.saturating_sub(cpu0.1).as_secs_f64() / elapsed.as_secs_f64(),
        db_cpu: postgres.then(|| cpu1.2.saturating_sub(cpu0.2).as_secs_f64() / elapsed.as_secs_f64()),
        closed_sockets: rec.closed.load(Relaxed),
        ceiling: None,
        ceiling_error: None,
        mm: None,
        mm_error: None,
        zalo: None,
        zalo_error: None,
    };
    eprintln!(
        "    {} messages in {:.1} s = {} msg/s; answer p50 {} ms, p99 {} ms, max {} ms; {} errors; frames {}/{}; server {:.2} cores, generator {:.2}, postgres {:.2}",
        o.messages,
        elapsed.as_secs_f64(),
        thousands(o.rate()),
        ms(o.p50),
        ms(o.p99),
        ms(o.max),
        o.errors,
        o.frames,
        o.expected_frames,
        o.server_cpu,
        o.gen_cpu,
        o.db_cpu.unwrap_or(0.0)
    );
    let mut o = o;
    if cfg.mattermost {
        let first_mm = first + load.sent;
        match mattermost(cfg, &node.addr, &headers, &rec, first_mm).await {
            Ok(m) => {
                eprintln!(
                    "    mattermost: {} posts in {:.1} s = {} posts/s; post → socket p50 {} ms, p99 {} ms; frames {}/{}",
                    m.posts,
                    m.elapsed.as_secs_f64(),
                    thousands(m.rate()),
                    ms(m.p50),
                    ms(m.p99),
                    m.frames,
                    m.expected_frames
                );
                o.mm = Some(m);
            }
            Err(e) => {
                eprintln!("    mattermost failed: {e:#}");
                o.mm_error = Some(format!("failed: {e}").lines().next().unwrap_or("").to_owned());
            }
        }
    }
    if cfg.zalo {
        let first_zalo = first + load.sent + if cfg.mattermost { cfg.mm_users + cfg.max_messages } else { 0 };
        match zalo(cfg, &node.addr, &headers, &rec, first_zalo).await {
            Ok(z) => {
                eprintln!(
                    "    zalo: {} events acked in {:.1} s = {} events/s, ack p50 {} ms, p99 {} ms, max {} ms, {} errors; processed {} events/s, event → socket p50 {} ms, p99 {} ms; frames {}/{}",
                    z.acked,
                    z.ack_elapsed.as_secs_f64(),
                    thousands(z.ack_rate()),
                    ms(z.ack_p50),
                    ms(z.ack_p99),
                    ms(z.ack_max),
                    z.errors,
                    thousands(z.processed_rate()),
                    ms(z.frame_p50),
                    ms(z.frame_p99),
                    z.frames,
                    z.expected_frames
                );
                o.zalo = Some(z);
            }
            Err(e) => {
                eprintln!("    zalo failed: {e:#}");
                o.zalo_error = Some(format!("failed: {e}").lines().next().unwrap_or("").to_owned());
            }
        }
    }
    for s in sockets {
        s.abort();
    }
    drop(node);
    if cfg.ceiling {
        eprintln!("    measuring the {backend} insert ceiling ({} clients, {} s)", cfg.clients, cfg.secs);
        let c = match &pg {
            Some(db) => pg_ceiling(&db.url, cfg, dir.path()),
            None => {
                let file = dir.path().join("ceiling.db");
                let (clients, secs) = (cfg.clients, cfg.secs);
                tokio::task::spawn_blocking(move || sqlite_ceiling(&file, clients, secs)).await?
            }
        };
        match c {
            Ok(c) => {
                eprintln!("    ceiling: {} inserts/s, p50 {} ms, p99 {} ms", thousands(c.per_s), ms(c.p50), ms(c.p99));
                o.ceiling = Some(c);
            }
            Err(e) => {
                eprintln!("    ceiling failed: {e:#}");
                o.ceiling_error = Some(format!("failed: {e}").lines().next().unwrap_or("").to_owned());
            }
        }
    }
    drop(pg);
    Ok(o)
}

/// Step 4: a bot on a fake Mattermost, `mm_users` users writing to it; message ids from `first` on.
async fn mattermost(
    cfg: &Cfg,
    addr: &str,
    headers: &str,
    rec: &Arc<Recorder>,
    first: usize,
) -> anyhow::Result<MmOutcome> {
    if cfg.sockets == 0 {
        bail!("needs at least one agent socket (INBOUND_SOCKETS)");
    }
    let sockets = cfg.sockets as u64;
    let fake = fake_mattermost::FakeMattermost::start().await;
    let mut http = HttpConn::new(addr);
    let body = json!({"name": "Benchmark bot", "server_url": fake.url, "bot_token": fake.bot_token,
                      "mention_only": false, "mode": "group"});
    let r = http.request("POST", "/api/v1/mattermost-channels", headers, body.to_string().as_bytes()).await?;
    if r.status != 201 {
        bail!("connecting the bot: {} {}", r.status, r.text());
    }
    fake.wait_socket(1, Duration::from_secs(30)).await;
    let users: Vec<(String, String)> = (0..cfg.mm_users)
        .map(|i| {
            let user = fake.user(&format!("user{i}"), "Bench", &format!("User {i}"), &format!("user{i}@example.test"));
            let dm = fake.dm(&user);
            (user, dm)
        })
        .collect();
    // Wait (bounded) until `posts` posts from `rec`'s window have reached every socket.
    let drain = |posts: usize, within: Duration| {
        let rec = rec.clone();
        async move {
            let until = Instant::now() + within;
            while rec.frames.load(Relaxed) < posts as u64 * sockets && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    // Warm-up: each user's first post opens their conversation.
    rec.begin(first, first + users.len());
    for (i, (user, dm)) in users.iter().enumerate() {
        rec.sending(first + i);
        fake.post_as(user, dm, &format!("inbound-id-{} hello from Mattermost", first + i), "");
    }
    drain(users.len(), Duration::from_secs(30)).await;
    if rec.frames.load(Relaxed) < users.len() as u64 * sockets {
        bail!("warm-up: {} of {} frames arrived", rec.frames.load(Relaxed), users.len() as u64 * sockets);
    }
    // Measured: at most `clients` posts not yet on every socket.
    let start = first + users.len();
    rec.begin(start, start + cfg.max_messages);
    let t = Instant::now();
    let deadline = t + Duration::from_secs_f64(cfg.secs);
    let mut sent = 0usize;
    while Instant::now() < deadline && sent < cfg.max_messages {
        let delivered = (rec.frames.load(Relaxed) / sockets) as usize;
        if sent.saturating_sub(delivered) >= cfg.clients {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        let (user, dm) = &users[sent % users.len()];
        rec.sending(start + sent);
        fake.post_as(user, dm, &format!("inbound-id-{} my build is red, can you help?", start + sent), "");
        sent += 1;
    }
    drain(sent, Duration::from_secs(10)).await;
    let last = Duration::from_nanos(rec.last_ns.load(Relaxed));
    let elapsed = last.saturating_sub(t.duration_since(rec.origin)).max(Duration::from_millis(1));
    let outcome = MmOutcome {
        posts: sent,
        elapsed,
        p50: rec.latency.quantile(0.5),
        p99: rec.latency.quantile(0.99),
        frames: rec.frames.load(Relaxed),
        expected_frames: sent as u64 * sockets,
    };
    fake.stop().await;
    Ok(outcome)
}

/// Step 5: an Official Account on a fake Zalo, `zalo_users` users whose signed text events are POSTed to its
/// webhook by `clients` closed-loop clients; message ids from `first` on.
async fn zalo(cfg: &Cfg, addr: &str, headers: &str, rec: &Arc<Recorder>, first: usize) -> anyhow::Result<ZaloOutcome> {
    if cfg.sockets == 0 {
        bail!("needs at least one agent socket (INBOUND_SOCKETS)");
    }
    let sockets = cfg.sockets as u64;
    let fake = Arc::new(fake_zalo::FakeZalo::start().await);
    let (access_token, refresh_token) = fake.issue_tokens();
    let mut http = HttpConn::new(addr);
    let body = json!({"name": "Benchmark OA", "app_id": fake.app_id, "app_secret": fake.app_secret,
                      "oa_secret_key": fake.oa_secret_key, "access_token": access_token,
                      "refresh_token": refresh_token, "api_base_url": fake.url, "oauth_base_url": fake.url});
    let r = http.request("POST", "/api/v1/zalo-channels", headers, body.to_string().as_bytes()).await?;
    if r.status != 201 {
        bail!("connecting the Official Account: {} {}", r.status, r.text());
    }
    let channel = r.json()["id"].as_i64().context("zalo channel id")?;
    let path = Arc::new(format!("/api/v1/zalo-channels/{channel}/webhook"));
    let users = cfg.zalo_users;
    let event = {
        let fake = fake.clone();
        move |id: usize| {
            let user = format!("84{:010}", id % users);
            let body =
                fake.text(&user, &format!("zalo-bench-{id}"), &format!("inbound-id-{id} xin chào, đơn hàng của tôi"));
            let headers = format!("Content-Type: application/json\r\nX-ZEvent-Signature: {}\r\n", fake.sign(&body));
            (headers, body)
        }
    };
    // Warm-up: each user's first event opens their conversation (and its frame reaches every socket).
    rec.begin(first, first + users);
    let mut warm_errors = 0;
    for id in first..first + users {
        let (h, b) = event(id);
        rec.sending(id);
        match http.request("POST", &path, &h, b.as_bytes()).await {
            Ok(r) if r.status == 200 => {}
            Ok(r) => bail!("warm-up event: {} {}", r.status, r.text()),
            Err(_) => warm_errors += 1,
        }
    }
    let until = Instant::now() + Duration::from_secs(30);
    while rec.frames.load(Relaxed) < (users - warm_errors) as u64 * sockets && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if rec.frames.load(Relaxed) < users as u64 * sockets {
        bail!("warm-up: {} of {} frames arrived", rec.frames.load(Relaxed), users as u64 * sockets);
    }
    // Measured: closed-loop clients, each writing its next event as soon as the previous one was answered.
    let start = first + users;
    rec.begin(start, start + cfg.max_messages);
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let t = Instant::now();
    let deadline = t + Duration::from_secs_f64(cfg.secs);
    let max = cfg.max_messages;
    let tasks: Vec<_> = (0..cfg.clients)
        .map(|_| {
            let (next, acked, errors, first_error, rec, path) =
                (next.clone(), acked.clone(), errors.clone(), first_error.clone(), rec.clone(), path.clone());
            let event = event.clone();
            let mut conn = HttpConn::new(addr);
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Relaxed);
                    if i >= max {
                        return;
                    }
                    let (h, b) = event(start + i);
                    let t0 = rec.sending(start + i);
                    let r = conn.request("POST", &path, &h, b.as_bytes()).await;
                    rec.answered(start + i, t0);
                    match r {
                        Ok(r) if r.status == 200 => {
                            acked.fetch_add(1, Relaxed);
                        }
                        other => {
                            let p = match other {
                                Ok(r) => format!("{} {}", r.status, r.text()),
                                Err(e) => e.to_string(),
                            };
                            first_error.lock().unwrap().get_or_insert(p);
                            errors.fetch_add(1, Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let ack_elapsed = t.elapsed();
    let acked = acked.load(Relaxed);
    let expected = acked as u64 * sockets;
    let drain = Instant::now();
    while rec.frames.load(Relaxed) < expected && drain.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let last = Duration::from_nanos(rec.last_ns.load(Relaxed));
    let processed_elapsed = last.saturating_sub(t.duration_since(rec.origin)).max(Duration::from_millis(1));
    let outcome = ZaloOutcome {
        acked,
        errors: errors.load(Relaxed),
        first_error: first_error.lock().unwrap().clone(),
        ack_elapsed,
        ack_p50: rec.post.quantile(0.5),
        ack_p99: rec.post.quantile(0.99),
        ack_max: rec.post.max(),
        processed_elapsed,
        frame_p50: rec.latency.quantile(0.5),
        frame_p99: rec.latency.quantile(0.99),
        frames: rec.frames.load(Relaxed),
        expected_frames: expected,
    };
    if let Ok(fake) = Arc::try_unwrap(fake) {
        fake.stop().await;
    }
    Ok(outcome)
}

struct Sent {
    sent: usize,
    ok: usize,
    errors: usize,
    first_error: Option<String>,
}

/// `clients` closed-loop senders of messages `first..first + count` (customers in turn), until
/// done or `deadline`.
#[allow(clippy::too_many_arguments)]
async fn send_loop(
    addr: &str,
    path: &Arc<String>,
    headers: &str,
    cfg: &Cfg,
    rec: &Arc<Recorder>,
    first: usize,
    count: usize,
    deadline: Option<Instant>,
) -> Sent {
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let customers = cfg.customers;
    let tasks: Vec<_> = (0..cfg.clients)
        .map(|_| {
            let (next, ok, errors, first_error, rec, path) =
                (next.clone(), ok.clone(), errors.clone(), first_error.clone(), rec.clone(), path.clone());
            let headers = headers.to_owned();
            let mut conn = HttpConn::new(addr);
            tokio::spawn(async move {
                loop {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return;
                    }
                    let i = next.fetch_add(1, Relaxed);
                    if i >= count {
                        return;
                    }
                    let id = first + i;
                    let body = json!({
                        "user_custom_id": format!("customer-{}", id % customers),
                        "name": format!("Customer {}", id % customers),
                        "content": format!("inbound-id-{id} hello, I have a question about my order"),
                        "external_message_id": format!("bench-{id}"),
                    })
                    .to_string();
                    let t0 = rec.sending(id);
                    let r = conn.request("POST", &path, &headers, body.as_bytes()).await;
                    rec.answered(id, t0);
                    let problem = match r {
                        Ok(r) if r.status == 201 => None,
                        Ok(r) => Some(format!("{} {}", r.status, r.text())),
                        Err(e) => Some(e.to_string()),
                    };
                    match problem {
                        None => ok.fetch_add(1, Relaxed),
                        Some(p) => {
                            first_error.lock().unwrap().get_or_insert(p);
                            errors.fetch_add(1, Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let sent = next.load(Relaxed).min(count);
    let first_error = first_error.lock().unwrap().clone();
    Sent { sent, ok: ok.load(Relaxed), errors: errors.load(Relaxed), first_error }
}

/// `pgbench` with one single-row INSERT per transaction, in the benchmark's own database.
fn pg_ceiling(url: &str, cfg: &Cfg, dir: &Path) -> anyhow::Result<Ceiling> {
    proc::psql(
        url,
        "CREATE TABLE bench_insert (id BIGSERIAL PRIMARY KEY, conversation_id BIGINT NOT NULL, \
         body TEXT NOT NULL, created_at TIMESTAMP NOT NULL)",
    )?;
    let script = dir.join("insert.sql");
    std::fs::write(
        &script,
        "\\set cid random(1, 1000)\n\
         INSERT INTO bench_insert (conversation_id, body, created_at) \
         VALUES (:cid, 'inbound-id-1 hello, I have a question about my order', now());\n",
    )?;
    let logs = dir.join("pgbench-logs");
    std::fs::create_dir_all(&logs)?;
    let secs = cfg.secs.round().max(1.0) as u64;
    let out = Command::new("pgbench")
        .args(["-n", "-c", &cfg.clients.to_string(), "-j", "2", "-T", &secs.to_string(), "-f"])
        .arg(&script)
        .arg("-l")
        .arg(format!("--log-prefix={}", logs.join("pgbench").display()))
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .context("run pgbench (Debian: apt-get install postgresql-contrib or postgresql-client)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("pgbench failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    let tps: f64 = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next().and_then(|v| v.parse().ok()))
        .with_context(|| format!("no tps in pgbench output: {text}"))?;
    let inserts: u64 = text
        .lines()
        .find(|l| l.contains("number of transactions actually processed"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|v| v.split('/').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let hist = Histogram::new();
    for entry in std::fs::read_dir(&logs)? {
        let body = std::fs::read_to_string(entry?.path())?;
        for line in body.lines() {
            if let Some(us) = line.split_whitespace().nth(2).and_then(|v| v.parse::<u64>().ok()) {
                hist.record(us);
            }
        }
    }
    Ok(Ceiling {
        how: format!("pgbench -c {} -j 2 -T {secs}, 1 INSERT per transaction", cfg.clients),
        inserts,
        per_s: tps,
        p50: hist.quantile(0.5),
        p99: hist.quantile(0.99),
    })
}

diesel::table! {
    bench_insert (id) {
        id -> BigInt,
        conversation_id -> BigInt,
        body -> Text,
        created_at -> Timestamp,
    }
}

/// `clients` threads doing single-row INSERTs (autocommit) into one SQLite file in WAL mode, each
/// with its own connection, taking turns through one lock like the server's writer lock.
fn sqlite_ceiling(file: &Path, clients: usize, secs: f64) -> anyhow::Result<Ceiling> {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sqlite::SqliteConnection;

    let url = file.display().to_string();
    let open = || -> anyhow::Result<SqliteConnection> {
        let mut c = SqliteConnection::establish(&url)?;
        c.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")?;
        Ok(c)
    };
    open()?.batch_execute(
        "CREATE TABLE bench_insert (id INTEGER PRIMARY KEY, conversation_id BIGINT NOT NULL, \
         body TEXT NOT NULL, created_at TIMESTAMP NOT NULL)",
    )?;
    let lock = Arc::new(Mutex::new(()));
    let hist = Arc::new(Histogram::new());
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let mut threads = Vec::new();
    for t in 0..clients {
        let mut conn = open()?;
        let (lock, hist, stop, count) = (lock.clone(), hist.clone(), stop.clone(), count.clone());
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let mut i = t as i64;
            while !stop.load(Relaxed) && Instant::now() < deadline {
                let t0 = Instant::now();
                {
                    let _turn = lock.lock().unwrap();
                    diesel::insert_into(bench_insert::table)
                        .values((
                            bench_insert::conversation_id.eq(i % 1000 + 1),
                            bench_insert::body.eq("inbound-id-1 hello, I have a question about my order"),
                            bench_insert::created_at.eq(chrono::Utc::now().naive_utc()),
                        ))
                        .execute(&mut conn)?;
                }
                hist.record(t0.elapsed().as_micros() as u64);
                count.fetch_add(1, Relaxed);
                i += clients as i64;
            }
            Ok(())
        }));
    }
    let mut failure = None;
    for t in threads {
        if let Err(e) = t.join().map_err(|_| anyhow::anyhow!("insert thread panicked")).and_then(|r| r) {
            stop.store(true, Relaxed);
            failure.get_or_insert(e);
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = count.load(Relaxed) as u64;
    Ok(Ceiling {
        how: format!("{clients} threads × single-row INSERT, WAL, synchronous=NORMAL, one writer lock"),
        inserts: n,
        per_s: n as f64 / elapsed,
        p50: hist.quantile(0.5),
        p99: hist.quantile(0.99),
    })
}
