//! Transaction-scoped locks that serialise a read-then-write decision no unique index can
//! express: "is this integrator's id a known customer, else create them" and the last-chat rule's
//! "add to the customer's latest conversation, else start one" (CC-9, CORE-7; issue #13).
//!
//! - PostgreSQL: `pg_advisory_xact_lock` on a 64-bit key derived from the [`Subject`], held until
//!   the transaction commits or rolls back, so it also serialises other nodes. A transaction
//!   that waited reads, after the lock, what the holder committed (READ COMMITTED: every
//!   statement sees the commits before it).
//! - SQLite: nothing to do. Every write transaction already runs under the store's writer lock
//!   ([`super::Store::write`]), taken before `BEGIN`, so the decision reads inside it see every
//!   earlier commit.
//!
//! Lock order, so no two transactions wait for each other: a [`Subject::ExternalId`] lock is
//! taken before a [`Subject::CustomerChannel`] lock, never after; both before any row lock the
//! decision then takes (the conversation row, the numbering counter).

use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use sha2::{Digest, Sha256};

use super::{StoreResult, Tx};

/// What a lock is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// An integrator's id for a customer on a channel (`user_custom_id`), before the customer
    /// may exist: finding or creating the customer it names.
    ExternalId { channel_id: i64, external_id: &'a str },
    /// A customer's conversations on a channel: the last-chat rule's decision.
    CustomerChannel { channel_id: i64, customer_id: i64 },
}

impl Subject<'_> {
    /// The advisory lock key: the first 8 bytes of a SHA-256 of the subject, the same on every node.
    pub fn key(&self) -> i64 {
        let text = match self {
            Subject::ExternalId { channel_id, external_id } => {
                format!("switchboard:external:{channel_id}:{external_id}")
            }
            Subject::CustomerChannel { channel_id, customer_id } => {
                format!("switchboard:conversation:{channel_id}:{customer_id}")
            }
        };
        let digest = Sha256::digest(text.as_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(bytes)
    }
}

/// Wait for and take the lock of `subject` until the transaction `tx` ends; call it inside a
/// transaction. On SQLite there is nothing to take: the store's writer lock already serialises
/// every write transaction.
pub(crate) async fn take(tx: &mut Tx<'_>, subject: Subject<'_>) -> StoreResult<()> {
    match tx.reborrow() {
        Tx::Postgres(tx) => {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)").bind::<BigInt, _>(subject.key()).execute(tx).await?;
        }
        Tx::Sqlite(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        let a = Subject::ExternalId { channel_id: 1, external_id: "42" };
        assert_eq!(a.key(), Subject::ExternalId { channel_id: 1, external_id: "42" }.key());
        let others = [
            Subject::ExternalId { channel_id: 2, external_id: "42" },
            Subject::ExternalId { channel_id: 1, external_id: "43" },
            Subject::CustomerChannel { channel_id: 1, customer_id: 42 },
        ];
        for o in others {
            assert_ne!(a.key(), o.key(), "{o:?}");
        }
    }
}
