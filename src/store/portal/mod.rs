//! Customers on the web (issue #18: CU-1…CU-3, EM-8, HD-12): the one "Web portal" channel, and, in its parts,
//! customer accounts and sessions ([`accounts`]), a customer's own tickets ([`tickets`]), their files ([`files`]),
//! ratings and unsubscribing ([`ratings`]).
//!
//! A customer is a different principal from an agent (CU-3): their sessions live in `customer_sessions`, never in
//! `sessions`. An account is keyed by the customer; a customer signs in with any email identity of theirs (a global
//! identity, so every mail sender EM-8 created can set a password through "forgot password"). Every read here takes
//! the signed-in customer's id: a conversation that is not theirs is [`StoreError::NotFound`], exactly like a
//! missing one.

mod accounts;
mod files;
mod ratings;
mod tickets;

pub use accounts::*;
pub use files::*;
pub use ratings::*;
pub use tickets::*;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::audit::Actor;
use super::models::{ChannelInstance, Customer};
use super::schema::{channel_instances, customer_identities, customers};
use super::{Store, StoreError, StoreResult, Tx};
use crate::db;
use crate::domain::{ChannelKind, Mode};

/// The outbox kind of the "set your password" mail to a customer (sent by the dispatcher's Notify route).
pub const PASSWORD_EMAIL: &str = "email.customer_password";
/// How long a "forgot password" link works.
pub const RESET_TTL_SECS: i64 = 3600;
/// The name of the web channel created on first use.
pub const WEB_CHANNEL_NAME: &str = "Web portal";

/// The web channel: the one of kind `web` (a partial unique index keeps it one), created enabled on first use.
pub async fn web_channel(store: &Store) -> StoreResult<ChannelInstance> {
    let found = store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                channel_instances::table
                    .filter(channel_instances::kind.eq(ChannelKind::Web))
                    .select(ChannelInstance::as_select())
                    .first(tx)
                    .await
                    .optional()
            )?)
        })
        .await?;
    if let Some(ch) = found {
        return Ok(ch);
    }
    let input = super::channels::CreateChannel {
        kind: ChannelKind::Web,
        name: WEB_CHANNEL_NAME.into(),
        mode: Mode::Async,
        settings: "{}".into(),
        secret: None,
        enabled: true,
        inactivity_timeout_s: 600,
        default_team_id: None,
    };
    match super::channels::create(store, input, Actor::System).await {
        Ok(ch) => Ok(ch),
        // Another request (or node) created it meanwhile.
        Err(StoreError::Conflict(_)) => Box::pin(web_channel(store)).await,
        Err(e) => Err(e),
    }
}

/// The customer an email identity names (following a merge to its survivor).
async fn customer_by_email(tx: &mut Tx<'_>, email: &str) -> StoreResult<Option<Customer>> {
    let owner: Option<i64> = db!(
        tx,
        customer_identities::table
            .filter(customer_identities::kind.eq("email"))
            .filter(customer_identities::value.eq(email))
            .select(customer_identities::customer_id)
            .first(tx)
            .await
            .optional()
    )?;
    let Some(mut id) = owner else { return Ok(None) };
    for _ in 0..32 {
        let c: Customer = db!(tx, customers::table.find(id).select(Customer::as_select()).first(tx).await)?;
        match c.merged_into_id {
            Some(next) => id = next,
            None => return Ok(Some(c)),
        }
    }
    Ok(None)
}

/// Whether `customer_id` is a customer who is not merged away (auto-login links name one).
pub async fn active_customer(store: &Store, customer_id: i64) -> StoreResult<bool> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let found: Option<Option<i64>> = db!(
                tx,
                customers::table.find(customer_id).select(customers::merged_into_id).first(tx).await.optional()
            )?;
            Ok(matches!(found, Some(None)))
        })
        .await
}
