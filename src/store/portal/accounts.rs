//! Customer accounts (CU-1, EM-8): signing in with any email identity, "forgot password" resets (the token stored
//! as its SHA-256, single use by a conditional update, for [`RESET_TTL_SECS`]; kept only *sealed* with the
//! install's secret key in the reset mail's outbox row, [`PASSWORD_EMAIL`], opened by [`for_mail`] when the mail is
//! sent, so the database alone cannot set a password), portal sessions (never agents' `sessions`, CU-3) and the
//! profile a customer sees of themselves.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::{PASSWORD_EMAIL, RESET_TTL_SECS, customer_by_email};
use crate::db;
use crate::store::audit::{self, Actor};
use crate::store::models::{Customer, NewDelivery};
use crate::store::schema::{
    companies, customer_accounts, customer_identities, customer_password_resets, customer_sessions, customers, outbox,
};
use crate::store::{Store, StoreResult, now};

/// A customer's portal session.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customer_sessions)]
pub struct CustomerSession {
    pub id: i64,
    pub token_hash: String,
    pub csrf_token: String,
    pub customer_id: i64,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// What signing in needs: the customer an email names and their password hash (none: no account yet).
pub async fn login_lookup(store: &Store, email: String) -> StoreResult<Option<(Customer, Option<String>)>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let Some(c) = customer_by_email(tx, &email).await? else { return Ok(None) };
            let hash: Option<String> = db!(
                tx,
                customer_accounts::table.find(c.id).select(customer_accounts::password_hash).first(tx).await.optional()
            )?;
            Ok(Some((c, hash)))
        })
        .await
}

/// The outbox payload of a "set your password" mail: who it goes to and the token, sealed.
#[derive(serde::Serialize, serde::Deserialize)]
struct ResetMailPayload {
    customer_id: i64,
    email: String,
    name: String,
    /// The reset's key (`customer_password_resets.token_hash`), to tell at sending time whether it still works.
    token_hash: String,
    /// The token, sealed with the install's secret key.
    token: String,
}

/// What a "set your password" mail says, opened when it is sent.
#[derive(Debug, Clone)]
pub struct ResetMail {
    pub email: String,
    pub name: String,
    /// The token in the clear, for the link ([`reset_link`]).
    pub token: String,
}

/// The link a reset mail carries: the portal's `/portal/reset/{token}` page.
pub fn reset_link(public_url: &str, token: &str) -> String {
    format!("{}/portal/reset/{token}", public_url.trim_end_matches('/'))
}

/// "Forgot password" for `email`: when a customer has this email identity, a reset (only `token_hash` kept) and its
/// mail in the outbox (carrying `token` sealed), in one transaction; older resets of the customer stop working.
/// Returns whether a customer was found (the caller answers the same either way).
pub async fn request_reset(
    store: &Store,
    email: String,
    token: String,
    token_hash: String,
    web_channel_id: i64,
) -> StoreResult<bool> {
    store
        .run(move |store| async move {
            let sealed = store.secrets()?.seal(&token).into_string();
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let Some(c) = customer_by_email(tx, &email).await? else { return Ok(false) };
                db!(
                    tx,
                    diesel::delete(
                        customer_password_resets::table.filter(customer_password_resets::customer_id.eq(c.id))
                    )
                    .execute(tx)
                    .await
                )?;
                db!(
                    tx,
                    diesel::insert_into(customer_password_resets::table)
                        .values((
                            customer_password_resets::customer_id.eq(c.id),
                            customer_password_resets::email.eq(&email),
                            customer_password_resets::token_hash.eq(&token_hash),
                            customer_password_resets::created_at.eq(t),
                            customer_password_resets::expires_at.eq(t + Duration::seconds(RESET_TTL_SECS)),
                        ))
                        .execute(tx)
                        .await
                )?;
                let payload = ResetMailPayload {
                    customer_id: c.id,
                    email: email.clone(),
                    name: c.name.clone(),
                    token_hash: token_hash.clone(),
                    token: sealed.clone(),
                };
                let payload = serde_json::to_string(&payload).expect("a reset payload serialises");
                let delivery = NewDelivery {
                    delivery_id: uuid::Uuid::new_v4().to_string(),
                    channel_instance_id: web_channel_id,
                    conversation_id: None,
                    message_id: None,
                    kind: PASSWORD_EMAIL,
                    payload,
                    state: "pending",
                    attempts: 0,
                    next_attempt_at: t,
                    created_at: t,
                };
                db!(tx, diesel::insert_into(outbox::table).values(&delivery).execute(tx).await)?;
                let details = json!({"email": email});
                audit::write(
                    tx,
                    audit::entry(Actor::Customer(c.id), "customer.password_reset", "customer", Some(c.id), details),
                )
                .await?;
                Ok(true)
            })
            .await
        })
        .await
}

/// What a reset mail's outbox `payload` says, opened: `None` when the reset was replaced, used or has expired since
/// the mail was queued (the mail is then not sent).
pub async fn for_mail(store: &Store, payload: String) -> StoreResult<Option<ResetMail>> {
    store
        .run(move |store| async move {
            let (p, token) =
                store.open_payload(&payload, "password reset mail", |p: &ResetMailPayload| p.token.as_str())?;
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let found: Option<(NaiveDateTime, Option<NaiveDateTime>)> = db!(
                tx,
                customer_password_resets::table
                    .filter(customer_password_resets::token_hash.eq(&p.token_hash))
                    .filter(customer_password_resets::customer_id.eq(p.customer_id))
                    .select((customer_password_resets::expires_at, customer_password_resets::used_at))
                    .first(tx)
                    .await
                    .optional()
            )?;
            let usable = matches!(found, Some((expires_at, None)) if expires_at > now());
            Ok(usable.then_some(ResetMail { email: p.email, name: p.name, token }))
        })
        .await
}

/// Why a reset token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetRefusal {
    /// Never issued, altered, or replaced by a newer one.
    Unknown,
    Expired,
    Used,
}

/// Set a customer's password with a reset token: the reset used (conditionally, so only once), the account written,
/// the customer's other portal sessions ended, in one transaction. Returns the customer.
pub async fn reset_password(
    store: &Store,
    token_hash: String,
    password_hash: String,
) -> StoreResult<Result<Customer, ResetRefusal>> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let found: Option<(i64, i64, NaiveDateTime, Option<NaiveDateTime>)> = db!(
                    tx,
                    customer_password_resets::table
                        .filter(customer_password_resets::token_hash.eq(&token_hash))
                        .select((
                            customer_password_resets::id,
                            customer_password_resets::customer_id,
                            customer_password_resets::expires_at,
                            customer_password_resets::used_at,
                        ))
                        .first(tx)
                        .await
                        .optional()
                )?;
                let Some((id, customer_id, expires_at, used_at)) = found else {
                    return Ok(Err(ResetRefusal::Unknown));
                };
                if used_at.is_some() {
                    return Ok(Err(ResetRefusal::Used));
                }
                if expires_at <= t {
                    return Ok(Err(ResetRefusal::Expired));
                }
                let unused = customer_password_resets::table
                    .filter(customer_password_resets::id.eq(id))
                    .filter(customer_password_resets::used_at.is_null());
                let n = db!(
                    tx,
                    diesel::update(unused).set(customer_password_resets::used_at.eq(Some(t))).execute(tx).await
                )?;
                if n != 1 {
                    return Ok(Err(ResetRefusal::Used));
                }
                let exists: Option<i64> = db!(
                    tx,
                    customer_accounts::table
                        .find(customer_id)
                        .select(customer_accounts::customer_id)
                        .first(tx)
                        .await
                        .optional()
                )?;
                if exists.is_some() {
                    db!(
                        tx,
                        diesel::update(customer_accounts::table.find(customer_id))
                            .set((
                                customer_accounts::password_hash.eq(&password_hash),
                                customer_accounts::updated_at.eq(t),
                            ))
                            .execute(tx)
                            .await
                    )?;
                } else {
                    db!(
                        tx,
                        diesel::insert_into(customer_accounts::table)
                            .values((
                                customer_accounts::customer_id.eq(customer_id),
                                customer_accounts::password_hash.eq(&password_hash),
                                customer_accounts::created_at.eq(t),
                                customer_accounts::updated_at.eq(t),
                            ))
                            .execute(tx)
                            .await
                    )?;
                }
                db!(
                    tx,
                    diesel::delete(customer_sessions::table.filter(customer_sessions::customer_id.eq(customer_id)))
                        .execute(tx)
                        .await
                )?;
                let action = if exists.is_some() { "customer.password_change" } else { "customer.account_create" };
                audit::write(
                    tx,
                    audit::entry(Actor::Customer(customer_id), action, "customer", Some(customer_id), json!({})),
                )
                .await?;
                let c: Customer =
                    db!(tx, customers::table.find(customer_id).select(Customer::as_select()).first(tx).await)?;
                Ok(Ok(c))
            })
            .await
        })
        .await
}

/// Record a new portal session. Expired customer sessions are swept on the way.
pub async fn create_session(
    store: &Store,
    customer_id: i64,
    token_hash: String,
    csrf_token: String,
    expires_at: NaiveDateTime,
) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                db!(
                    tx,
                    diesel::delete(customer_sessions::table.filter(customer_sessions::expires_at.lt(t)))
                        .execute(tx)
                        .await
                )?;
                db!(
                    tx,
                    diesel::insert_into(customer_sessions::table)
                        .values((
                            customer_sessions::token_hash.eq(&token_hash),
                            customer_sessions::csrf_token.eq(&csrf_token),
                            customer_sessions::customer_id.eq(customer_id),
                            customer_sessions::created_at.eq(t),
                            customer_sessions::expires_at.eq(expires_at),
                        ))
                        .execute(tx)
                        .await
                )?;
                Ok(())
            })
            .await
        })
        .await
}

/// The unexpired portal session with this token hash and its customer (not merged away).
pub async fn session(store: &Store, token_hash: String) -> StoreResult<Option<(CustomerSession, Customer)>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                customer_sessions::table
                    .inner_join(customers::table)
                    .filter(customer_sessions::token_hash.eq(&token_hash))
                    .filter(customer_sessions::expires_at.gt(now()))
                    .filter(customers::merged_into_id.is_null())
                    .select((CustomerSession::as_select(), Customer::as_select()))
                    .first(tx)
                    .await
                    .optional()
            )?)
        })
        .await
}

/// End a portal session (sign-out).
pub async fn delete_session(store: &Store, token_hash: String) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            db!(
                tx,
                diesel::delete(customer_sessions::table.filter(customer_sessions::token_hash.eq(&token_hash)))
                    .execute(tx)
                    .await
            )?;
            Ok(())
        })
        .await
}

/// A customer as the portal shows them to themselves.
pub struct Profile {
    pub customer: Customer,
    pub company: Option<String>,
    pub emails: Vec<String>,
    pub has_password: bool,
}

pub async fn profile(store: &Store, customer_id: i64) -> StoreResult<Profile> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let customer: Customer =
                db!(tx, customers::table.find(customer_id).select(Customer::as_select()).first(tx).await)?;
            let company: Option<String> = match customer.company_id {
                Some(id) => db!(tx, companies::table.find(id).select(companies::name).first(tx).await.optional())?,
                None => None,
            };
            let emails: Vec<String> = db!(
                tx,
                customer_identities::table
                    .filter(customer_identities::customer_id.eq(customer_id))
                    .filter(customer_identities::kind.eq("email"))
                    .order(customer_identities::id)
                    .select(customer_identities::value)
                    .load(tx)
                    .await
            )?;
            let has: Option<i64> = db!(
                tx,
                customer_accounts::table
                    .find(customer_id)
                    .select(customer_accounts::customer_id)
                    .first(tx)
                    .await
                    .optional()
            )?;
            Ok(Profile { customer, company, emails, has_password: has.is_some() })
        })
        .await
}
