//! Child processes of the benchmarks, each behind a guard that kills it when dropped: the release
//! `switchboard` server (own data dir, loopback port chosen by the OS, log in a file), its CLI
//! (admin and token), the reference servers; plus PostgreSQL databases created fresh per run and
//! dropped afterwards, RSS readings and the file-descriptor limit.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

/// Raise the soft open-files limit to the hard limit (children inherit it). Returns the new soft limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        lim.rlim_cur
    }
}

/// VmRSS of a process, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// CPU time (user + system) a process used so far.
pub fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return Duration::ZERO };
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// CPU time used so far by every process named `name` (e.g. all PostgreSQL backends of the
/// machine: other work on the same server is included).
pub fn cpu_time_of_all(name: &str) -> Duration {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Duration::ZERO };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name))
        .map(cpu_time)
        .sum()
}

/// A child process killed (SIGKILL) and reaped when dropped. Its stdout and stderr go to `log`.
pub struct Guard {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Guard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the log, for error messages.
    pub fn tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Wait until the log has a line containing `marker`; the rest of that line is returned.
    pub fn wait_for_line(&mut self, marker: &str, within: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(f) = std::fs::File::open(&self.log) {
                for line in BufReader::new(f).lines().map_while(Result::ok) {
                    if let Some(i) = line.find(marker) {
                        return Ok(line[i + marker.len()..].trim().to_owned());
                    }
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited ({status}) before it was ready:\n{}", self.name, self.tail(30));
            }
            if Instant::now() > deadline {
                bail!("{} not ready within {within:?}:\n{}", self.name, self.tail(30));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawn `cmd` with its output in `log` and its stdin a pipe (our reference servers exit when it
/// closes, i.e. when the benchmark process is gone, however it ended).
pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Guard> {
    let out = std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    let err = out.try_clone()?;
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .with_context(|| format!("start {name}"))?;
    Ok(Guard { name: name.to_owned(), child, log: log.to_owned() })
}

/// The `switchboard` binary: `SWITCHBOARD_BIN`, or the one Cargo built with this benchmark
/// (`$CARGO_TARGET_DIR/release/switchboard`).
pub fn switchboard_bin() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("SWITCHBOARD_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_switchboard")),
    };
    if !path.exists() {
        bail!(
            "{} does not exist: build it with `CARGO_TARGET_DIR=/var/tmp/switchboard-target cargo build --release` \
             (or point SWITCHBOARD_BIN at a release binary)",
            path.display()
        );
    }
    Ok(path)
}

/// How one Switchboard node is configured.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub database_url: String,
    pub data_dir: PathBuf,
    pub redis_url: Option<String>,
    /// Extra environment (e.g. `SWITCHBOARD_DB_POOL_SIZE`).
    pub env: Vec<(String, String)>,
}

impl NodeConfig {
    fn command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.database_url)
            .env("SWITCHBOARD_DATA_DIR", &self.data_dir)
            .env("SWITCHBOARD_BIND", "127.0.0.1:0")
            // The benchmarks' mail servers and webhook receivers listen on loopback.
            .env("SWITCHBOARD_ALLOWED_INTERNAL_HOSTS", "127.0.0.0/8,::1")
            .env("SWITCHBOARD_LOG", super::env_string("BENCH_SERVER_LOG", "warn"));
        if let Some(r) = &self.redis_url {
            cmd.env("REDIS_URL", r);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Run a CLI subcommand against this node's database; its standard output.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let bin = switchboard_bin()?;
        let out = self.command(&bin).args(args).stdin(Stdio::null()).output().context("run the switchboard CLI")?;
        if !out.status.success() {
            bail!("switchboard {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Create a super admin and an API token for them (the database is migrated on the way).
    pub fn admin_token(&self, email: &str) -> anyhow::Result<String> {
        self.cli(&["admin", "create", "--email", email, "--password", "benchmark password", "--name", "Bench Admin"])?;
        let out = self.cli(&["token", "create", "--email", email, "--name", "benchmark"])?;
        out.split_whitespace().last().map(str::to_owned).ok_or_else(|| anyhow!("no token in {out:?}"))
    }
}

/// A running `switchboard serve`.
pub struct Node {
    pub guard: Guard,
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Node {
    pub fn start(name: &str, cfg: &NodeConfig, log_dir: &Path) -> anyhow::Result<Node> {
        let bin = switchboard_bin()?;
        std::fs::create_dir_all(&cfg.data_dir)?;
        let mut guard = spawn(name, cfg.command(&bin), &log_dir.join(format!("{name}.log")))?;
        let url = guard.wait_for_line("Switchboard is running at ", Duration::from_secs(60))?;
        let base = url.split_whitespace().next().unwrap_or_default().trim_end_matches('/').to_owned();
        let addr = base.trim_start_matches("http://").to_owned();
        if !addr.starts_with("127.0.0.1:") {
            bail!("{name} is not on loopback: {base}");
        }
        Ok(Node { guard, addr, base })
    }

    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    pub fn rss(&self) -> u64 {
        rss_bytes(self.pid()).unwrap_or(0)
    }
}

/// The PostgreSQL admin URL (`BENCH_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).
pub fn pg_admin_url() -> String {
    super::env_string("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
}

/// The Redis URL (`BENCH_REDIS_URL`, default `redis://127.0.0.1:6379`).
pub fn redis_url() -> String {
    super::env_string("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
}

/// Whether something listens at the host:port of `url`.
pub fn reachable(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else { return false };
    let host = u.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = u.port().unwrap_or(if u.scheme().starts_with("redis") { 6379 } else { 5432 });
    let Ok(mut addrs) = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port)) else { return false };
    addrs.next().is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// Run SQL through `psql` (quiet, unaligned, tuples only, stop on the first error).
pub fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .context("run psql (Debian: apt-get install postgresql-client)")?;
    if !out.status.success() {
        bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A PostgreSQL database created for this run and dropped (with its connections) on drop.
pub struct PgDb {
    pub name: String,
    pub url: String,
    admin: String,
}

static PG_SEQ: AtomicUsize = AtomicUsize::new(0);

impl PgDb {
    pub fn create(tag: &str) -> anyhow::Result<PgDb> {
        let admin = pg_admin_url();
        let name = format!(
            "sb_bench_{tag}_{}_{}_{}",
            std::process::id(),
            chrono::Utc::now().timestamp(),
            PG_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        psql(&admin, &format!("CREATE DATABASE {name}"))
            .with_context(|| format!("create database {name} at {admin}"))?;
        let mut url = url::Url::parse(&admin)?;
        url.set_path(&format!("/{name}"));
        Ok(PgDb { name, url: url.to_string(), admin })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Err(e) = psql(&self.admin, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)) {
            eprintln!("could not drop database {}: {e}", self.name);
        }
    }
}
