//! Configuration, in layers: built-in defaults, then an optional TOML file, then environment
//! variables (highest). [`RawConfig`] is what the layers hold; [`Settings::resolve`] validates it
//! once into typed [`Settings`] that the rest of the program trusts. Parsing never *does*
//! anything (no files opened, no sockets bound).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::outbound::AllowedInternal;
use crate::secrets::SecretKey;
use crate::store::DatabaseUrl;

/// Every setting, as it may appear in the TOML file (same names, lower case) or in the
/// environment (the `env` column of [`VARIABLES`]).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub bind: Option<String>,
    pub database_url: Option<String>,
    pub data_dir: Option<String>,
    pub db_pool_size: Option<usize>,
    pub workers: Option<usize>,
    pub shutdown_grace_secs: Option<u64>,
    pub log: Option<String>,
    pub log_format: Option<String>,
    pub session_ttl_hours: Option<u64>,
    pub secure_cookies: Option<bool>,
    pub max_body_bytes: Option<usize>,
    pub max_upload_bytes: Option<usize>,
    pub public_url: Option<String>,
    pub redis_url: Option<String>,
    pub outbox_backoff_scale: Option<f64>,
    pub allowed_internal_hosts: Option<String>,
    pub login_failures_per_account: Option<u32>,
    pub login_failures_per_address: Option<u32>,
    pub login_failure_window_secs: Option<u64>,
    pub metrics_token: Option<Secret>,
    pub metrics_bind: Option<String>,
    pub secret_key: Option<Secret>,
    pub secret_key_previous: Option<Secret>,
}

/// (file key, environment variable, default, meaning) — also the README's configuration table.
pub const VARIABLES: &[(&str, &str, &str, &str)] = &[
    ("bind", "SWITCHBOARD_BIND", "127.0.0.1:8080", "address and port the HTTP server listens on"),
    ("database_url", "DATABASE_URL", "sqlite://{data_dir}/switchboard.db", "`sqlite://PATH` or `postgres://…`"),
    ("data_dir", "SWITCHBOARD_DATA_DIR", "data", "attachments and the default SQLite file"),
    ("db_pool_size", "SWITCHBOARD_DB_POOL_SIZE", "16 (PostgreSQL), 8 (SQLite)", "database connections per process"),
    ("workers", "SWITCHBOARD_WORKERS", "number of CPUs", "HTTP worker threads"),
    (
        "shutdown_grace_secs",
        "SWITCHBOARD_SHUTDOWN_GRACE_SECS",
        "10",
        "on SIGTERM/SIGINT: how long in-flight requests and background tasks get to finish before the process exits",
    ),
    ("log", "SWITCHBOARD_LOG", "info", "log filter, `tracing` env-filter syntax (e.g. `info,switchboard=debug`)"),
    ("log_format", "SWITCHBOARD_LOG_FORMAT", "human", "`human` or `json`"),
    ("session_ttl_hours", "SWITCHBOARD_SESSION_TTL_HOURS", "336", "how long a dashboard login lasts"),
    (
        "secure_cookies",
        "SWITCHBOARD_SECURE_COOKIES",
        "false",
        "mark the session cookie `Secure`; always on when `public_url` is `https://…`",
    ),
    ("max_body_bytes", "SWITCHBOARD_MAX_BODY_BYTES", "1048576", "largest JSON request body"),
    ("max_upload_bytes", "SWITCHBOARD_MAX_UPLOAD_BYTES", "26214400", "largest attachment upload"),
    ("public_url", "SWITCHBOARD_PUBLIC_URL", "http://{bind}", "the URL people and providers reach this server at"),
    ("redis_url", "REDIS_URL", "(none)", "Redis for multi-node fan-out and presence"),
    (
        "outbox_backoff_scale",
        "SWITCHBOARD_OUTBOX_BACKOFF_SCALE",
        "1",
        "multiply outbound retry delays (10 s, 1 min, 5 min, 30 min, 2 h, then every 6 h for 3 days) by this",
    ),
    (
        "allowed_internal_hosts",
        "SWITCHBOARD_ALLOWED_INTERNAL_HOSTS",
        "(none)",
        "comma-separated host names, IP addresses and CIDRs (e.g. `mail.corp.example,10.0.0.0/8`) that webhooks, \
         mailboxes and SMTP may reach although they are internal; every other loopback, private, link-local, \
         unique-local or unspecified target is refused",
    ),
    (
        "login_failures_per_account",
        "SWITCHBOARD_LOGIN_FAILURES_PER_ACCOUNT",
        "5",
        "failed sign-ins allowed per email before 429 (`0`: no limit); per node, regained over the window",
    ),
    (
        "login_failures_per_address",
        "SWITCHBOARD_LOGIN_FAILURES_PER_ADDRESS",
        "20",
        "failed sign-ins allowed per client address (the TCP peer; IPv6 per /64) before 429 (`0`: no limit); per node",
    ),
    (
        "login_failure_window_secs",
        "SWITCHBOARD_LOGIN_FAILURE_WINDOW_SECS",
        "300",
        "the allowances above are regained evenly over this many seconds",
    ),
    (
        "metrics_token",
        "SWITCHBOARD_METRICS_TOKEN",
        "(none)",
        "if set (16+ characters), `/metrics` needs `Authorization: Bearer <token>`",
    ),
    (
        "metrics_bind",
        "SWITCHBOARD_METRICS_BIND",
        "(none)",
        "if set (HOST:PORT), `/metrics` is served on this address only, not on `bind`",
    ),
    (
        "secret_key",
        "SWITCHBOARD_SECRET_KEY",
        "`{data_dir}/secret.key`, created on first start",
        "base64 of 32 random bytes (`openssl rand -base64 32`) sealing channel secrets and mailbox passwords at rest; \
         every node needs the same one",
    ),
    (
        "secret_key_previous",
        "SWITCHBOARD_SECRET_KEY_PREVIOUS",
        "(none)",
        "old keys (comma-separated) during a rotation: what they sealed is sealed again under the current key on start",
    ),
];

/// The README's configuration table, rendered from [`VARIABLES`] (a test keeps the README equal to it).
pub fn configuration_table() -> String {
    let mut out = String::from("| variable | file key | default | meaning |\n| --- | --- | --- | --- |\n");
    for (key, env, default, meaning) in VARIABLES {
        out.push_str(&format!("| `{env}` | `{key}` | {default} | {meaning} |\n"));
    }
    out
}

/// Environment variable naming a TOML configuration file.
pub const CONFIG_FILE_VAR: &str = "SWITCHBOARD_CONFIG";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database: DatabaseUrl,
    pub data_dir: PathBuf,
    pub db_pool_size: usize,
    pub workers: usize,
    /// How long a stop may take (`server::RunningServer::stop`).
    pub shutdown_grace: std::time::Duration,
    pub log: String,
    pub log_format: LogFormat,
    pub session_ttl_hours: u64,
    pub secure_cookies: bool,
    pub max_body_bytes: usize,
    pub max_upload_bytes: usize,
    pub public_url: String,
    pub redis_url: Option<String>,
    pub outbox_backoff_scale: f64,
    /// Internal targets outgoing connections may reach (`crate::outbound`).
    pub allowed_internal: AllowedInternal,
    /// Failed sign-ins allowed per account and per client address (`auth::throttle`).
    pub login_limits: crate::auth::throttle::Limits,
    /// The bearer token `/metrics` asks for, if any.
    pub metrics_token: Option<Secret>,
    /// Where `/metrics` is served instead of `bind`, if set.
    pub metrics_bind: Option<SocketAddr>,
    /// The key sealing secrets at rest; `None`: the key file in the data directory (`secrets::key`).
    pub secret_key: Option<SecretKey>,
    /// Keys of an unfinished rotation, still opened (and sealed again under the current key).
    pub secret_key_previous: Vec<SecretKey>,
}

/// A secret setting (the metrics token, secret keys): usable as text, never shown by `Debug`, so
/// printing a raw or resolved configuration never leaks it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("configuration file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
}

impl RawConfig {
    /// Read a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string() })
    }

    /// Overlay the values present in the environment (through `get`, so tests need no real env).
    pub fn overlay_env(mut self, get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        fn parse<T: std::str::FromStr>(name: &'static str, v: String) -> Result<T, ConfigError> {
            v.trim().parse().map_err(|_| ConfigError::Invalid { name, message: format!("cannot parse {v:?}") })
        }
        let get = |name: &str| get(name).filter(|v| !v.is_empty());
        if let Some(v) = get("SWITCHBOARD_BIND") {
            self.bind = Some(v);
        }
        if let Some(v) = get("DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = get("SWITCHBOARD_DATA_DIR") {
            self.data_dir = Some(v);
        }
        if let Some(v) = get("SWITCHBOARD_DB_POOL_SIZE") {
            self.db_pool_size = Some(parse("SWITCHBOARD_DB_POOL_SIZE", v)?);
        }
        if let Some(v) = get("SWITCHBOARD_WORKERS") {
            self.workers = Some(parse("SWITCHBOARD_WORKERS", v)?);
        }
        if let Some(v) = get("SWITCHBOARD_SHUTDOWN_GRACE_SECS") {
            self.shutdown_grace_secs = Some(parse("SWITCHBOARD_SHUTDOWN_GRACE_SECS", v)?);
        }
        if let Some(v) = get("SWITCHBOARD_LOG") {
            self.log = Some(v);
        }
        if let Some(v) = get("SWITCHBOARD_LOG_FORMAT") {
            self.log_format = Some(v);
        }
        if let Some(v) = get("SWITCHBOARD_SESSION_TTL_HOURS") {
            self.session_ttl_hours = Some(parse("SWITCHBOARD_SESSION_TTL_HOURS", v)?);
        }
        if let Some(v) = get("SWITCHBOARD_SECURE_COOKIES") {
            self.secure_cookies = Some(parse("SWITCHBOARD_SECURE_COOKIES", v)?);
        }
        if let Some(v) = get("SWITCHBOARD_MAX_BODY_BYTES") {
            self.max_body_bytes = Some(parse("SWITCHBOARD_MAX_BODY_BYTES", v)?);
        }
        if let Some(v) = get("SWITCHBOARD_MAX_UPLOAD_BYTES") {
            self.max_upload_bytes = Some(parse("SWITCHBOARD_MAX_UPLOAD_BYTES", v)?);
        }
        if let Some(v) = get("SWITCHBOARD_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("REDIS_URL") {
            self.redis_url = Some(v);
        }
        if let Some(v) = get("SWITCHBOARD_OUTBOX_BACKOFF_SCALE") {
            self.outbox_backoff_scale = Some(parse("SWITCHBOARD_OUTBOX_BACKOFF_SCALE", v)?);
        }
        if let Some(v) = get("SWITCHBOARD_ALLOWED_INTERNAL_HOSTS") {
            self.allowed_internal_hosts = Some(v);
        }
        if let Some(v) = get("SWITCHBOARD_LOGIN_FAILURES_PER_ACCOUNT") {
            self.login_failures_per_account = Some(parse("SWITCHBOARD_LOGIN_FAILURES_PER_ACCOUNT", v)?);
        }
        if let Some(v) = get("SWITCHBOARD_LOGIN_FAILURES_PER_ADDRESS") {
            self.login_failures_per_address = Some(parse("SWITCHBOARD_LOGIN_FAILURES_PER_ADDRESS", v)?);
        }
        if let Some(v) = get("SWITCHBOARD_LOGIN_FAILURE_WINDOW_SECS") {
            self.login_failure_window_secs = Some(parse("SWITCHBOARD_LOGIN_FAILURE_WINDOW_SECS", v)?);
        }
        if let Some(v) = get("SWITCHBOARD_METRICS_TOKEN") {
            self.metrics_token = Some(v.into());
        }
        if let Some(v) = get("SWITCHBOARD_METRICS_BIND") {
            self.metrics_bind = Some(v);
        }
        if let Some(v) = get("SWITCHBOARD_SECRET_KEY") {
            self.secret_key = Some(v.into());
        }
        if let Some(v) = get("SWITCHBOARD_SECRET_KEY_PREVIOUS") {
            self.secret_key_previous = Some(v.into());
        }
        Ok(self)
    }

    /// The file named by `explicit` or `SWITCHBOARD_CONFIG` (if any), then the environment.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let from_env = std::env::var_os(CONFIG_FILE_VAR).map(PathBuf::from);
        let base = match explicit.map(Path::to_path_buf).or(from_env) {
            Some(path) => Self::from_file(&path)?,
            None => Self::default(),
        };
        base.overlay_env(|name| std::env::var(name).ok())
    }
}

impl Settings {
    pub fn resolve(raw: RawConfig) -> Result<Self, ConfigError> {
        let invalid = |name, message: String| ConfigError::Invalid { name, message };
        let bind: SocketAddr = raw
            .bind
            .as_deref()
            .unwrap_or("127.0.0.1:8080")
            .parse()
            .map_err(|e| invalid("bind", format!("{e} (expected HOST:PORT, e.g. 127.0.0.1:8080)")))?;
        let data_dir = PathBuf::from(raw.data_dir.as_deref().unwrap_or("data"));
        let database_url =
            raw.database_url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("switchboard.db").display()));
        let database = DatabaseUrl::parse(&database_url).map_err(|m| invalid("database_url", m))?;
        let default_pool = match database {
            DatabaseUrl::Postgres(_) => 16,
            DatabaseUrl::Sqlite(_) => 8,
        };
        let db_pool_size = raw.db_pool_size.unwrap_or(default_pool);
        if !(1..=1000).contains(&db_pool_size) {
            return Err(invalid("db_pool_size", "must be between 1 and 1000".into()));
        }
        let workers = raw.workers.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
        if !(1..=256).contains(&workers) {
            return Err(invalid("workers", "must be between 1 and 256".into()));
        }
        let shutdown_grace_secs = raw.shutdown_grace_secs.unwrap_or(10);
        if !(1..=3600).contains(&shutdown_grace_secs) {
            return Err(invalid("shutdown_grace_secs", "must be between 1 and 3600".into()));
        }
        let log_format = match raw.log_format.as_deref().unwrap_or("human") {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid("log_format", format!("must be human or json, not {other:?}")));
            }
        };
        let session_ttl_hours = raw.session_ttl_hours.unwrap_or(24 * 14);
        if session_ttl_hours == 0 || session_ttl_hours > 24 * 365 {
            return Err(invalid("session_ttl_hours", "must be between 1 and 8760".into()));
        }
        let max_body_bytes = raw.max_body_bytes.unwrap_or(1024 * 1024);
        let max_upload_bytes = raw.max_upload_bytes.unwrap_or(25 * 1024 * 1024);
        if max_body_bytes < 1024 || max_upload_bytes < 1024 {
            return Err(invalid("max_body_bytes", "body limits must be at least 1024 bytes".into()));
        }
        let login_limits = login_limits(
            raw.login_failures_per_account,
            raw.login_failures_per_address,
            raw.login_failure_window_secs,
        )?;
        let key = |name: &'static str, text: &str| {
            SecretKey::from_base64(text).ok_or_else(|| {
                invalid(name, "must be the base64 of 32 random bytes (make one with `openssl rand -base64 32`)".into())
            })
        };
        let secret_key = raw.secret_key.as_ref().map(|k| key("secret_key", k.expose())).transpose()?;
        let secret_key_previous = match &raw.secret_key_previous {
            Some(list) => list
                .expose()
                .split(',')
                .filter(|k| !k.trim().is_empty())
                .map(|k| key("secret_key_previous", k))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let public_url = raw.public_url.unwrap_or_else(|| format!("http://{bind}"));
        let https = url::Url::parse(&public_url).map_err(|e| invalid("public_url", e.to_string()))?.scheme() == "https";
        let metrics_token = match raw.metrics_token {
            Some(t) if t.expose().trim().len() < 16 || t.expose().trim() != t.expose() => {
                return Err(invalid("metrics_token", "must be at least 16 characters, without spaces around".into()));
            }
            t => t,
        };
        let metrics_bind = match raw.metrics_bind.as_deref() {
            None => None,
            Some(v) => {
                let addr: SocketAddr =
                    v.parse().map_err(|e| invalid("metrics_bind", format!("{e} (expected HOST:PORT)")))?;
                if addr == bind && addr.port() != 0 {
                    return Err(invalid("metrics_bind", "must differ from bind".into()));
                }
                Some(addr)
            }
        };
        Ok(Self {
            bind,
            database,
            data_dir,
            db_pool_size,
            workers,
            shutdown_grace: std::time::Duration::from_secs(shutdown_grace_secs),
            log: raw.log.unwrap_or_else(|| "info".into()),
            log_format,
            session_ttl_hours,
            // Over https the cookie must never travel in clear, whatever secure_cookies says.
            secure_cookies: raw.secure_cookies.unwrap_or(false) || https,
            max_body_bytes,
            max_upload_bytes,
            public_url: public_url.trim_end_matches('/').to_owned(),
            redis_url: raw.redis_url,
            outbox_backoff_scale: {
                let scale = raw.outbox_backoff_scale.unwrap_or(1.0);
                if !(0.0001..=100.0).contains(&scale) {
                    return Err(invalid("outbox_backoff_scale", "must be between 0.0001 and 100".into()));
                }
                scale
            },
            allowed_internal: AllowedInternal::parse(raw.allowed_internal_hosts.as_deref().unwrap_or(""))
                .map_err(|m| invalid("allowed_internal_hosts", m))?,
            login_limits,
            metrics_token,
            metrics_bind,
            secret_key,
            secret_key_previous,
        })
    }
}

fn login_limits(
    per_account: Option<u32>,
    per_address: Option<u32>,
    window_secs: Option<u64>,
) -> Result<crate::auth::throttle::Limits, ConfigError> {
    let count = |name: &'static str, value: Option<u32>, default: u32| {
        let n = value.unwrap_or(default);
        if n > 1_000_000 {
            return Err(ConfigError::Invalid { name, message: "must be between 0 (no limit) and 1000000".into() });
        }
        Ok(std::num::NonZeroU32::new(n))
    };
    let window = window_secs.unwrap_or(300);
    if !(1..=86_400).contains(&window) {
        return Err(ConfigError::Invalid {
            name: "login_failure_window_secs",
            message: "must be between 1 and 86400".into(),
        });
    }
    Ok(crate::auth::throttle::Limits {
        per_account: count("login_failures_per_account", per_account, 5)?,
        per_address: count("login_failures_per_address", per_address, 20)?,
        window: std::time::Duration::from_secs(window),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn no_configuration_at_all_gives_the_documented_defaults() {
        let s = Settings::resolve(RawConfig::default()).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database, DatabaseUrl::Sqlite("data/switchboard.db".into()));
        assert_eq!(s.data_dir, PathBuf::from("data"));
        assert_eq!(s.db_pool_size, 8);
        assert_eq!(s.log_format, LogFormat::Human);
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert!(s.redis_url.is_none());
        assert!(s.allowed_internal.is_empty(), "no internal target is allowed by default");
        assert!(!s.secure_cookies);
        assert_eq!(s.login_limits.per_account.map(|n| n.get()), Some(5));
        assert_eq!(s.login_limits.per_address.map(|n| n.get()), Some(20));
        assert!(s.metrics_token.is_none() && s.metrics_bind.is_none());
    }

    #[test]
    fn allowed_internal_hosts_are_parsed_once() {
        let raw = RawConfig::default()
            .overlay_env(env(&[("SWITCHBOARD_ALLOWED_INTERNAL_HOSTS", "mail.corp.example, 10.0.0.0/8")]))
            .unwrap();
        let s = Settings::resolve(raw).unwrap();
        assert_eq!(s.allowed_internal.hosts, vec!["mail.corp.example"]);
        assert_eq!(s.allowed_internal.cidrs.len(), 1);
        let raw =
            RawConfig::default().overlay_env(env(&[("SWITCHBOARD_ALLOWED_INTERNAL_HOSTS", "10.0.0.0/99")])).unwrap();
        assert!(Settings::resolve(raw).unwrap_err().to_string().starts_with("allowed_internal_hosts"));
    }

    #[test]
    fn https_public_url_makes_cookies_secure_and_secrets_stay_hidden() {
        let raw = RawConfig::default()
            .overlay_env(env(&[
                ("SWITCHBOARD_PUBLIC_URL", "https://desk.example.com"),
                ("SWITCHBOARD_SECURE_COOKIES", "false"),
                ("SWITCHBOARD_METRICS_TOKEN", "scrape-me-please-0123"),
                ("SWITCHBOARD_LOGIN_FAILURES_PER_ACCOUNT", "0"),
            ]))
            .unwrap();
        let s = Settings::resolve(raw).unwrap();
        assert!(s.secure_cookies);
        assert!(s.login_limits.per_account.is_none(), "0 turns the limit off");
        assert!(!format!("{s:?}").contains("scrape-me"), "the token is not in Debug output");
        let raw = RawConfig::default()
            .overlay_env(env(&[
                ("SWITCHBOARD_METRICS_TOKEN", "scrape-me-please-0123"),
                ("SWITCHBOARD_SECRET_KEY", "c3dpdGNoYm9hcmQtbXVsdGlub2RlLXRlc3Qta2V5ISE="),
                ("SWITCHBOARD_SECRET_KEY_PREVIOUS", "b2xkLWtleQ=="),
            ]))
            .unwrap();
        let shown = format!("{raw:?}");
        assert!(
            !shown.contains("scrape-me") && !shown.contains("c3dpdGNo") && !shown.contains("b2xkLWtleQ"),
            "{shown}"
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let file: RawConfig =
            toml::from_str("bind = \"127.0.0.1:9000\"\ndata_dir = \"/srv/sb\"\nlog_format = \"json\"").unwrap();
        let raw = file
            .overlay_env(env(&[("SWITCHBOARD_BIND", "127.0.0.1:9100"), ("DATABASE_URL", "postgres://u@h/db")]))
            .unwrap();
        let s = Settings::resolve(raw).unwrap();
        assert_eq!(s.bind.port(), 9100);
        assert_eq!(s.database, DatabaseUrl::Postgres("postgres://u@h/db".into()));
        assert_eq!(s.db_pool_size, 16);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.data_dir, PathBuf::from("/srv/sb"));
    }

    #[test]
    fn sqlite_file_follows_the_data_dir() {
        let raw = RawConfig::default().overlay_env(env(&[("SWITCHBOARD_DATA_DIR", "/tmp/x")])).unwrap();
        assert_eq!(Settings::resolve(raw).unwrap().database, DatabaseUrl::Sqlite("/tmp/x/switchboard.db".into()));
    }

    #[test]
    fn bad_values_are_named() {
        let cases: &[(&str, &str, &str)] = &[
            ("SWITCHBOARD_BIND", "localhost", "bind"),
            ("DATABASE_URL", "mysql://x", "database_url"),
            ("SWITCHBOARD_LOG_FORMAT", "xml", "log_format"),
            ("SWITCHBOARD_DB_POOL_SIZE", "0", "db_pool_size"),
            ("SWITCHBOARD_SHUTDOWN_GRACE_SECS", "0", "shutdown_grace_secs"),
            ("SWITCHBOARD_LOGIN_FAILURE_WINDOW_SECS", "0", "login_failure_window_secs"),
            ("SWITCHBOARD_LOGIN_FAILURES_PER_ADDRESS", "2000000", "login_failures_per_address"),
            ("SWITCHBOARD_METRICS_TOKEN", "short", "metrics_token"),
            ("SWITCHBOARD_METRICS_BIND", "metrics", "metrics_bind"),
            ("SWITCHBOARD_METRICS_BIND", "127.0.0.1:8080", "metrics_bind"),
            ("SWITCHBOARD_SECRET_KEY", "c2hvcnQ=", "secret_key"),
            ("SWITCHBOARD_SECRET_KEY_PREVIOUS", "not a key", "secret_key_previous"),
        ];
        for (var, value, name) in cases {
            let raw = RawConfig::default().overlay_env(env(&[(var, value)])).unwrap();
            let err = Settings::resolve(raw).unwrap_err().to_string();
            assert!(err.starts_with(name), "{var}={value}: {err}");
        }
        let err = RawConfig::default().overlay_env(env(&[("SWITCHBOARD_WORKERS", "many")])).unwrap_err();
        assert!(err.to_string().contains("SWITCHBOARD_WORKERS"));
        assert!(toml::from_str::<RawConfig>("colour = 1").is_err(), "unknown keys are rejected");
    }

    /// README "Configuration" is generated from `VARIABLES`; this fails when the two drift.
    /// `SWITCHBOARD_BLESS_README=1 cargo test --lib readme_configuration` rewrites the README's table.
    #[test]
    fn readme_configuration_table_is_generated_from_variables() {
        const START: &str = "<!-- configuration table: generated from config::VARIABLES -->\n";
        const END: &str = "<!-- end of configuration table -->";
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let start = readme.find(START).expect("README has the table's start marker") + START.len();
        let end = start + readme[start..].find(END).expect("README has the table's end marker");
        let table = configuration_table();
        if readme[start..end] != table && std::env::var_os("SWITCHBOARD_BLESS_README").is_some() {
            std::fs::write(&path, format!("{}{table}{}", &readme[..start], &readme[end..])).unwrap();
            return;
        }
        assert_eq!(
            readme[start..end],
            table,
            "README configuration table is stale: run with SWITCHBOARD_BLESS_README=1"
        );
    }

    #[test]
    fn every_variable_has_a_file_key_the_file_accepts() {
        for (key, ..) in VARIABLES {
            let err = toml::from_str::<RawConfig>(&format!("{key} = []")).unwrap_err().to_string();
            assert!(!err.contains("unknown field"), "{key}: {err}");
        }
    }
}
