//! The one borrowed connection type store code is written against, and the leaf that picks the
//! backend.
//!
//! Store functions are ordinary `async fn`s taking `tx: &mut Tx<'_>` — usually inside a
//! transaction opened by [`DbConn::transaction`], or a plain borrowed connection from
//! [`DbConn::tx`] for reads. rustfmt, rust-analyzer and compiler errors work on them like on any
//! other code. Only the statement itself is written inside [`db!`], which compiles it once per
//! backend with `tx` rebound to the concrete connection:
//!
//! ```ignore
//! pub(crate) async fn status_base(tx: &mut Tx<'_>, key: &str) -> StoreResult<StatusBase> {
//!     let base: Option<StatusBase> =
//!         db!(tx, statuses::table.filter(statuses::key.eq(key)).select(statuses::base).first(tx).await.optional())?;
//!     Ok(base.unwrap_or(StatusBase::Open))
//! }
//! ```
//!
//! Keep what is inside `db!` to the statement (or a few that share one boxed query): the logic
//! between statements is then compiled once, not once per backend.

use diesel::result::{Error as DieselError, QueryResult};
use diesel_async::{AsyncConnection, AsyncPgConnection, TransactionManager};

use super::{DbConn, SqliteConn, StoreResult};

/// A borrowed connection of either backend (see the module doc). Reborrow it for a nested call
/// with `&mut *tx` or [`Tx::reborrow`].
pub enum Tx<'c> {
    Postgres(&'c mut AsyncPgConnection),
    Sqlite(&'c mut SqliteConn),
}

impl<'c> From<&'c mut AsyncPgConnection> for Tx<'c> {
    fn from(conn: &'c mut AsyncPgConnection) -> Self {
        Tx::Postgres(conn)
    }
}

impl<'c> From<&'c mut SqliteConn> for Tx<'c> {
    fn from(conn: &'c mut SqliteConn) -> Self {
        Tx::Sqlite(conn)
    }
}

/// Run `$body` with `$tx` (a [`Tx`] or `&mut Tx`) rebound to the concrete connection of its
/// backend. The body is compiled once per backend, so it must only use query builders both support.
#[macro_export]
macro_rules! db {
    ($tx:ident, $body:expr) => {
        match $tx.reborrow() {
            $crate::store::Tx::Postgres($tx) => $body,
            $crate::store::Tx::Sqlite($tx) => $body,
        }
    };
}

impl Tx<'_> {
    /// The same connection for a shorter borrow (what [`db!`] matches on).
    pub fn reborrow(&mut self) -> Tx<'_> {
        match self {
            Tx::Postgres(c) => Tx::Postgres(c),
            Tx::Sqlite(c) => Tx::Sqlite(c),
        }
    }

    /// True on PostgreSQL (for the few statements only one backend has, e.g. `FOR UPDATE`).
    pub fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_))
    }

    async fn begin(&mut self) -> QueryResult<()> {
        match self {
            Tx::Postgres(c) => begin(&mut **c).await,
            Tx::Sqlite(c) => begin(&mut **c).await,
        }
    }

    async fn commit(&mut self) -> QueryResult<()> {
        match self {
            Tx::Postgres(c) => commit(&mut **c).await,
            Tx::Sqlite(c) => commit(&mut **c).await,
        }
    }

    async fn rollback(&mut self) -> QueryResult<()> {
        match self {
            Tx::Postgres(c) => rollback(&mut **c).await,
            Tx::Sqlite(c) => rollback(&mut **c).await,
        }
    }
}

async fn begin<C: AsyncConnection>(conn: &mut C) -> QueryResult<()> {
    C::TransactionManager::begin_transaction(conn).await
}

async fn commit<C: AsyncConnection>(conn: &mut C) -> QueryResult<()> {
    C::TransactionManager::commit_transaction(conn).await
}

async fn rollback<C: AsyncConnection>(conn: &mut C) -> QueryResult<()> {
    C::TransactionManager::rollback_transaction(conn).await
}

impl DbConn {
    /// This connection, borrowed for store functions, outside any transaction (reads).
    pub fn tx(&mut self) -> Tx<'_> {
        match self {
            DbConn::Postgres(c) => Tx::Postgres(c),
            DbConn::Sqlite(c, _) => Tx::Sqlite(c),
        }
    }

    /// Run `body` in one transaction: committed when it returns `Ok`, rolled back on `Err`.
    ///
    /// A future dropped half-way leaves the transaction open; the pool then discards the
    /// connection rather than reuse it (diesel-async counts an open transaction as broken), and
    /// [`super::Store::run`] never drops one anyway.
    pub async fn transaction<T, F>(&mut self, body: F) -> StoreResult<T>
    where
        F: AsyncFnOnce(&mut Tx<'_>) -> StoreResult<T>,
    {
        let mut tx = self.tx();
        tx.begin().await?;
        match body(&mut tx).await {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(err) => match tx.rollback().await {
                // The body's error is the one worth reporting; a failed rollback leaves the
                // connection marked broken, so the pool drops it.
                Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(err),
                Err(rollback) => {
                    tracing::warn!(error = %rollback, "rollback failed after {err}");
                    Err(err)
                }
            },
        }
    }
}
