//! The store: the one place that talks to the database.
//!
//! Owns the connection pools, the embedded migrations of both backends, the diesel schema and
//! the repositories (one file per aggregate). The backend is chosen at run time from
//! `DATABASE_URL`; every query is written once and compiled for both backends: store code is
//! ordinary `async fn`s over a borrowed [`Tx`] (`AsyncPgConnection` or
//! `SyncConnectionWrapper<SqliteConnection>`), with only the statement inside [`db!`](crate::db),
//! the leaf that picks the backend (see `tx`).
//!
//! SQLite allows one writer at a time. Rather than let concurrent write transactions fight over
//! the file lock (`SQLITE_BUSY`), [`Store::write`] hands out connections behind a process-wide
//! async mutex; readers use [`Store::read`] and never wait for it (WAL mode).
//!
//! Architecture invariant: nothing outside `store/` builds SQL or sees a diesel type; callers get
//! plain row structs from [`models`] and a [`StoreError`]. (The closed sets of `domain` carry
//! their own `Text` conversions, `domain::kinds`, so rows hold them typed.)

pub mod activity;
pub mod agents;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod channels;
pub mod conversations;
pub mod counters;
pub mod customers;
pub mod email;
pub mod events;
pub mod feed;
pub mod invitations;
pub mod leases;
pub mod locks;
pub mod mail_notifications;
pub mod mattermost;
pub mod messages;
pub mod models;
pub mod notifications;
pub mod outbox;
pub mod portal;
pub mod reads;
pub mod receipts;
pub mod routing;
pub mod schema;
pub mod sealing;
pub mod statuses;
pub mod teams;
pub mod templates;
mod tx;
pub mod zalo;

pub use tx::Tx;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt;
use tokio::sync::{Mutex, OwnedMutexGuard};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a request waits for a pooled connection before it is answered 503.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long a cached channel row may be used without a change announced (see [`cache`]).
const CHANNEL_TTL: Duration = Duration::from_secs(2);
/// SQLite waits this long for a lock held by another process (the CLI, a backup) before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

pub type SqliteConn = SyncConnectionWrapper<SqliteConnection, Inline>;

/// Runs each SQLite call right where it is awaited, on the store runtime's worker thread.
///
/// Why: diesel-async's default hands every statement to tokio's blocking pool and back, two
/// thread switches per statement; a write transaction of a dozen statements then holds the
/// writer lock for milliseconds of scheduling rather than microseconds of work, and that caps
/// every SQLite write path (measured: ~300 inbound messages/s with 32 clients, `benches/inbound.rs`).
/// SQLite calls are short and local; the store runtime ([`Store::run`]) exists to absorb them.
pub struct Inline;

impl diesel_async::sync_connection_wrapper::SpawnBlocking for Inline {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> futures_util::future::BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        Box::pin(std::future::ready(Ok(task())))
    }

    fn get_runtime() -> Self {
        Inline
    }
}

/// Which database a `DATABASE_URL` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A file path (created on first use).
    Sqlite(String),
    /// A libpq-style URL, passed through unchanged.
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// URL has no file path".into());
            }
            Ok(Self::Sqlite(path.to_owned()))
        } else if let Some(path) = raw.strip_prefix("sqlite:") {
            Ok(Self::Sqlite(path.to_owned()))
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Ok(Self::Postgres(raw.to_owned()))
        } else {
            Err(format!(
                "DATABASE_URL must start with sqlite:// or postgres:// (got {:?})",
                raw.split(':').next().unwrap_or_default()
            ))
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// Errors of the storage layer. Callers turn them into HTTP answers in one place (`http::error`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique key already holds this value (e.g. an agent's email).
    #[error("already exists: {0}")]
    Conflict(String),
    /// A referenced row (team, agent, channel, …) does not exist.
    #[error("unknown reference: {0}")]
    BadReference(String),
    /// The request is well-formed but breaks a rule that needs the database to check.
    #[error(transparent)]
    Rule(#[from] Violation),
    #[error("database is busy: no connection within {0:?}")]
    PoolTimeout(Duration),
    #[error("database error: {0}")]
    Db(DieselError),
    #[error("connection pool error: {0}")]
    Pool(String),
    /// A stored secret cannot be opened (another node's key, a damaged value).
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error("no secret key is loaded: channel secrets cannot be read or written")]
    NoSecretKey,
    /// A stored value outside its closed set (a damaged row, read as a `domain` enum or parsed
    /// with [`stored`]): never the client's fault.
    #[error("stored {what} {value:?} is not valid")]
    BadData { what: &'static str, value: String },
}

/// A rule the store enforces, one variant per rule; the text is for people, the variant for code.
/// Every one is answered `422 rule_violation` (`http::error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("channel {channel_id} is disabled")]
    ChannelDisabled { channel_id: i64 },
    #[error("agent {agent_id} has no access to this conversation's channel")]
    NoChannelAccess { agent_id: i64 },
    #[error("agent {agent_id} is deactivated")]
    AgentDeactivated { agent_id: i64 },
    #[error("the last active admin cannot be demoted or deactivated")]
    LastAdmin,
    #[error("status {status:?} requires these to be filled in first: {}", missing.join(", "))]
    StatusIncomplete { status: String, missing: Vec<String> },
    #[error("the built-in status {key:?} cannot be deleted")]
    BuiltinStatus { key: String },
    /// The conversation lifecycle refused the change ([`crate::domain::lifecycle`]).
    #[error("conversation {id} was merged into {into}; act on that one")]
    ConversationMerged { id: i64, into: i64 },
    #[error("conversation {id} is a ticket, not a chat")]
    NotAChat { id: i64 },
    #[error("a conversation cannot be merged into itself")]
    SelfMerge,
    #[error("merge chain too long")]
    MergeChainTooLong,
    #[error("attachment {id} is already part of a message")]
    AttachmentInUse { id: i64 },
    #[error("an agent's mail cannot start a ticket on their own behalf")]
    AgentMailStartsTicket,
    #[error("customer {id} was merged into another customer")]
    CustomerMerged { id: i64 },
    #[error("a customer cannot be merged into itself")]
    CustomerSelfMerge,
    #[error("one of these customers was already merged")]
    CustomerAlreadyMerged,
    /// A note mentions an agent who is unknown, deactivated or cannot see the conversation's channel (#17 item 3).
    #[error("agent {agent_id} cannot be mentioned here: they do not have access to this conversation's channel")]
    NotMentionable { agent_id: i64 },
    #[error("a note may mention at most {max} agents")]
    TooManyMentions { max: usize },
    /// A ticket's rating may be changed for 7 days after it was given (HD-12, issue #18).
    #[error("this ticket's rating can no longer be changed")]
    RatingLocked,
}

impl Violation {
    /// The violation for a lifecycle refusal of conversation `id` (`into`: its survivor, if merged).
    /// (`Merged` is decided only for a conversation that has a survivor.)
    pub fn refused(id: i64, into: Option<i64>, refusal: crate::domain::lifecycle::Refusal) -> Self {
        use crate::domain::lifecycle::Refusal;
        match refusal {
            Refusal::Merged => Self::ConversationMerged { id, into: into.unwrap_or(id) },
            Refusal::NotAChat => Self::NotAChat { id },
        }
    }
}

impl From<DieselError> for StoreError {
    /// The database's own text (constraint and column names, values) is logged, never passed on:
    /// callers and clients get a fixed message.
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => Self::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                tracing::debug!(detail = info.message(), "unique violation");
                Self::Conflict("a record with this value already exists".to_owned())
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
                tracing::debug!(detail = info.message(), "foreign key violation");
                Self::BadReference("a referenced record does not exist".to_owned())
            }
            // A row with a value outside its closed set (`domain::kinds::BadStoredValue`).
            DieselError::DeserializationError(source) => {
                match source.downcast::<crate::domain::kinds::BadStoredValue>() {
                    Ok(bad) => Self::BadData { what: bad.what, value: bad.value },
                    Err(source) => Self::Db(DieselError::DeserializationError(source)),
                }
            }
            other => Self::Db(other),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

enum Pools {
    Postgres(Pool<AsyncPgConnection>),
    Sqlite(Pool<SqliteConn>),
}

/// A pooled connection of either backend; store functions borrow it as a [`Tx`] ([`DbConn::tx`],
/// [`DbConn::transaction`]).
// It lives on the stack of one request and is moved rarely; boxing would allocate per checkout.
#[allow(clippy::large_enum_variant)]
pub enum DbConn {
    Postgres(Object<AsyncPgConnection>),
    /// The guard, when present, is the SQLite writer lock held for this connection's lifetime.
    Sqlite(Object<SqliteConn>, Option<OwnedMutexGuard<()>>),
}

/// The database handle shared by the whole process (cheap to clone).
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    url: DatabaseUrl,
    pools: Pools,
    sqlite_writer: Option<Arc<Mutex<()>>>,
    /// Bumped after every committed change that cached rows depend on (see [`cache`]).
    generation: AtomicU64,
    /// Channel rows by id, for the endpoints that read one on every request (see [`cache`]).
    channels: cache::Cache<i64, models::ChannelInstance>,
    /// The key that seals secrets at rest, installed once at start (see [`sealing`]).
    secrets: std::sync::OnceLock<Arc<crate::secrets::SecretBox>>,
    /// Who is online, installed once by the real-time core: creation transactions route new
    /// conversations by it (CC-12, [`routing`]). Without it, everyone is offline.
    presence: std::sync::OnceLock<Arc<dyn crate::domain::routing::PresenceSource>>,
    /// `SWITCHBOARD_PUBLIC_URL`, installed once at start: links in notification mail (issue #18).
    public_url: std::sync::OnceLock<String>,
}

impl Store {
    /// Open pools for `url` (creating the SQLite file and its folder when needed). Does not migrate.
    pub async fn connect(url: &DatabaseUrl, pool_size: usize) -> StoreResult<Self> {
        let (pools, sqlite_writer) = match url {
            DatabaseUrl::Postgres(raw) => {
                // Fast recycling: a broken connection is still dropped, but a healthy one is not
                // pinged with `SELECT 1` on every checkout (five round trips per inbound message).
                let mut config = ManagerConfig::<AsyncPgConnection>::default();
                config.recycling_method = RecyclingMethod::Fast;
                let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(raw.as_str(), config);
                let pool = Pool::builder(manager)
                    .max_size(pool_size.max(1))
                    .wait_timeout(Some(POOL_WAIT))
                    .create_timeout(Some(POOL_WAIT))
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map_err(|e| StoreError::Pool(e.to_string()))?;
                (Pools::Postgres(pool), None)
            }
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = std::path::Path::new(path).parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| StoreError::Pool(format!("cannot create {}: {e}", dir.display())))?;
                }
                let mut config = ManagerConfig::<SqliteConn>::default();
                config.custom_setup = Box::new(|path| open_sqlite(path.to_owned()).boxed());
                config.recycling_method = RecyclingMethod::Fast;
                let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path.as_str(), config);
                let pool = Pool::builder(manager)
                    .max_size(pool_size.max(2))
                    .wait_timeout(Some(POOL_WAIT))
                    .create_timeout(Some(POOL_WAIT))
                    .runtime(deadpool::Runtime::Tokio1)
                    .build()
                    .map_err(|e| StoreError::Pool(e.to_string()))?;
                (Pools::Sqlite(pool), Some(Arc::new(Mutex::new(()))))
            }
        };
        Ok(Self {
            inner: Arc::new(StoreInner {
                url: url.clone(),
                pools,
                sqlite_writer,
                generation: AtomicU64::new(0),
                channels: cache::Cache::new(CHANNEL_TTL),
                secrets: std::sync::OnceLock::new(),
                presence: std::sync::OnceLock::new(),
                public_url: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The cache generation: read it *before* loading what you cache (see [`cache`]).
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Invalidate every cached principal and channel row. Called after each committed change to
    /// agents, API tokens, channel access or channels, and when another node announces one.
    pub fn changed(&self) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Give the store its key for secrets at rest (once; `server::open_store` does it, then runs
    /// [`sealing::prepare`]). Returns false when one was installed already.
    pub fn install_secrets(&self, secrets: crate::secrets::SecretBox) -> bool {
        self.inner.secrets.set(Arc::new(secrets)).is_ok()
    }

    /// Hand the store the node's presence picture (once; `Realtime::start` does it).
    pub fn install_presence(&self, presence: Arc<dyn crate::domain::routing::PresenceSource>) -> bool {
        self.inner.presence.set(presence).is_ok()
    }

    /// Install the URL people reach this server at (`SWITCHBOARD_PUBLIC_URL`), once; false when one was installed.
    pub fn install_public_url(&self, url: &str) -> bool {
        self.inner.public_url.set(url.trim_end_matches('/').to_owned()).is_ok()
    }

    /// The public URL without a trailing `/` (empty until installed), for links in notification mail.
    pub fn public_url(&self) -> &str {
        self.inner.public_url.get().map_or("", String::as_str)
    }

    /// An agent's presence as this node sees it (offline until a presence picture is installed).
    pub(crate) fn presence(&self, agent_id: i64) -> crate::domain::routing::Presence {
        self.inner.presence.get().map_or(crate::domain::routing::Presence::Offline, |p| p.presence(agent_id))
    }

    pub(crate) fn secrets(&self) -> StoreResult<&crate::secrets::SecretBox> {
        self.inner.secrets.get().map(|b| b.as_ref()).ok_or(StoreError::NoSecretKey)
    }

    /// An outbox row's JSON `payload` that carries one value sealed (the invitation and password mails' tokens),
    /// parsed, with that value (`sealed_of` picks it) opened; [`StoreError::BadData`] naming `what` when it does not
    /// parse.
    pub(crate) fn open_payload<T: serde::de::DeserializeOwned>(
        &self,
        payload: &str,
        what: &'static str,
        sealed_of: impl Fn(&T) -> &str,
    ) -> StoreResult<(T, String)> {
        let bad = || StoreError::BadData { what, value: String::new() };
        let p: T = serde_json::from_str(payload).map_err(|_| bad())?;
        let sealed = crate::secrets::Sealed::parse(sealed_of(&p)).ok_or_else(bad)?;
        let opened = self.secrets()?.open(&sealed)?;
        Ok((p, opened))
    }

    pub(crate) fn channel_cache(&self) -> &cache::Cache<i64, models::ChannelInstance> {
        &self.inner.channels
    }

    pub fn backend_name(&self) -> &'static str {
        self.inner.url.backend_name()
    }

    /// Run a database operation to completion on the store's own multi-threaded runtime.
    ///
    /// Why: a request future can be dropped half-way (the client disconnects, a sibling
    /// extractor fails). Dropping an in-flight diesel-async SQLite query on actix-web's
    /// single-threaded workers panics, and dropping an open transaction future leaves it to the
    /// pool to clean up. A spawned task is never dropped half-way: the caller may stop waiting,
    /// the operation still finishes (and commits or rolls back) on its own.
    pub async fn run<T, F, Fut>(&self, op: F) -> StoreResult<T>
    where
        F: FnOnce(Store) -> Fut,
        Fut: std::future::Future<Output = StoreResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let task = store_runtime().spawn(op(self.clone()));
        task.await.map_err(|e| StoreError::Pool(format!("database task failed: {e}")))?
    }

    /// [`Store::run`] for a change that cached rows depend on (agents, API tokens, channel
    /// access, channels): when it has finished, in the same task, so even when the caller stopped
    /// waiting, every cached principal and channel row is invalidated (see [`cache`]).
    pub async fn run_change<T, F, Fut>(&self, op: F) -> StoreResult<T>
    where
        F: FnOnce(Store) -> Fut,
        Fut: std::future::Future<Output = StoreResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |store| {
            let work = op(store.clone());
            async move {
                let out = work.await;
                store.changed();
                out
            }
        })
        .await
    }

    /// A connection for reads (and for writes on PostgreSQL, where the database orders them).
    pub async fn read(&self) -> StoreResult<DbConn> {
        match &self.inner.pools {
            Pools::Postgres(pool) => Ok(DbConn::Postgres(pool.get().await.map_err(pool_error)?)),
            Pools::Sqlite(pool) => Ok(DbConn::Sqlite(pool.get().await.map_err(pool_error)?, None)),
        }
    }

    /// A connection for a write transaction. On SQLite it holds the writer lock until dropped.
    pub async fn write(&self) -> StoreResult<DbConn> {
        match (&self.inner.pools, &self.inner.sqlite_writer) {
            (Pools::Sqlite(pool), Some(lock)) => {
                let guard = tokio::time::timeout(POOL_WAIT, lock.clone().lock_owned())
                    .await
                    .map_err(|_| StoreError::PoolTimeout(POOL_WAIT))?;
                let conn = pool.get().await.map_err(pool_error)?;
                Ok(DbConn::Sqlite(conn, Some(guard)))
            }
            _ => self.read().await,
        }
    }

    /// Apply every pending embedded migration for this backend. Returns how many ran.
    pub async fn migrate(&self) -> StoreResult<usize> {
        self.run(|store| async move { store.migrate_now().await }).await
    }

    async fn migrate_now(&self) -> StoreResult<usize> {
        let conn = self.write().await?;
        let ran = tokio::task::spawn_blocking(move || -> Result<usize, String> {
            match conn {
                DbConn::Postgres(c) => {
                    let mut harness = diesel_async::AsyncMigrationHarness::new(c);
                    harness.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()).map_err(|e| e.to_string())
                }
                DbConn::Sqlite(c, _guard) => {
                    let mut harness = diesel_async::AsyncMigrationHarness::new(c);
                    harness.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()).map_err(|e| e.to_string())
                }
            }
        })
        .await
        .map_err(|e| StoreError::Pool(format!("migration task failed: {e}")))?
        .map_err(|e| StoreError::Pool(format!("migration failed: {e}")))?;
        Ok(ran)
    }

    /// True when the database answers and every embedded migration has been applied.
    pub async fn is_ready(&self) -> StoreResult<bool> {
        self.run(|store| async move { store.is_ready_now().await }).await
    }

    async fn is_ready_now(&self) -> StoreResult<bool> {
        use diesel::sql_types::Text;
        #[derive(diesel::QueryableByName)]
        struct Version {
            #[diesel(sql_type = Text)]
            version: String,
        }
        let expected = match self.inner.url {
            DatabaseUrl::Sqlite(_) => latest_version(&SQLITE_MIGRATIONS),
            DatabaseUrl::Postgres(_) => latest_version(&POSTGRES_MIGRATIONS),
        };
        let mut conn = self.read().await?;
        let tx = &mut conn.tx();
        let applied: Vec<Version> = crate::db!(
            tx,
            diesel_async::RunQueryDsl::load(diesel::sql_query("SELECT version FROM __diesel_schema_migrations"), tx)
                .await
        )?;
        Ok(applied.iter().any(|v| v.version == expected))
    }
}

/// The runtime every database operation runs on (see [`Store::run`]). Process-wide and never
/// dropped, so pooled connections, which remember the runtime they were opened on, stay valid
/// for every caller (the server, the CLI, tests on their own runtimes).
fn store_runtime() -> &'static tokio::runtime::Handle {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("switchboard-store")
                .enable_all()
                .build()
                // Without a runtime the process cannot do anything; failing here is failing at start.
                .expect("cannot start the database runtime")
        })
        .handle()
}

fn latest_version(migrations: &EmbeddedMigrations) -> String {
    use diesel::migration::MigrationSource;
    let list = MigrationSource::<diesel::sqlite::Sqlite>::migrations(migrations).unwrap_or_default();
    list.iter().map(|m| m.name().version().to_string()).max().unwrap_or_default()
}

fn pool_error<E: std::fmt::Display>(err: deadpool::managed::PoolError<E>) -> StoreError {
    match err {
        deadpool::managed::PoolError::Timeout(_) => StoreError::PoolTimeout(POOL_WAIT),
        other => StoreError::Pool(other.to_string()),
    }
}

/// Open one SQLite connection with the settings every connection needs: WAL so readers never
/// wait for the writer, a busy timeout for other processes, and enforced foreign keys. The busy
/// timeout comes first: setting the journal mode takes a lock, and without the timeout a writer
/// elsewhere (another process, or a server stopping in the same process) fails it at once with
/// "database is locked".
async fn open_sqlite(path: String) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(&path).await?;
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
    ))
    .await
    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// The current time as stored: UTC, millisecond precision (both backends keep at least that).
pub fn now() -> chrono::NaiveDateTime {
    use chrono::{SubsecRound, Utc};
    Utc::now().naive_utc().trunc_subsecs(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_enumerated_value_reads_as_bad_data() {
        let bad = crate::domain::kinds::BadStoredValue { what: "Role", value: "overlord".into() };
        match StoreError::from(DieselError::DeserializationError(Box::new(bad))) {
            StoreError::BadData { what, value } => assert_eq!((what, value.as_str()), ("Role", "overlord")),
            other => panic!("expected BadData, got {other:?}"),
        }
        let other = StoreError::from(DieselError::DeserializationError("truncated row".into()));
        assert!(matches!(other, StoreError::Db(_)), "{other:?}");
    }
}
