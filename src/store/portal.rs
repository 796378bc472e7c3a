//! Customers on the web (issue #18: CU-1…CU-3, EM-8, HD-12): customer accounts and their portal sessions, the
//! "forgot password" resets, the one "Web portal" channel, what a customer reads of their own tickets (public
//! messages only), the tickets they open, their files, ratings and unsubscribing.
//!
//! A customer is a different principal from an agent (CU-3): their sessions live in `customer_sessions`, never in
//! `sessions`. An account is keyed by the customer; a customer signs in with any email identity of theirs (a global
//! identity, so every mail sender EM-8 created can set a password through "forgot password"). A reset token is
//! stored as its SHA-256, single use (a conditional update), for [`RESET_TTL_SECS`]; a new one replaces the older
//! ones. The token itself is kept only *sealed* with the install's secret key, in the reset mail's outbox row
//! ([`PASSWORD_EMAIL`], opened by [`for_mail`] when the mail is sent), so the database alone cannot set a password. Every read here takes the signed-in customer's id: a conversation that is not theirs is
//! [`StoreError::NotFound`], exactly like a missing one.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::audit::{self, Actor};
use super::conversations::{ConversationRow, CreatedConversation, Inserted, NewConversationRow, decorate, insert};
use super::events::{self, EventRow, NewEvent};
use super::models::{Attachment, ChannelInstance, Conversation, Customer, Message, NewDelivery};
use super::schema::{
    attachments, channel_instances, companies, conversation_ratings, conversation_subscribers, conversations,
    customer_accounts, customer_identities, customer_password_resets, customer_sessions, customers, messages, outbox,
    statuses,
};
use super::{Store, StoreError, StoreResult, Tx, Violation, now};
use crate::db;
use crate::domain::{ChannelKind, Direction, Mode, Rating, Source, StatusBase};

/// The outbox kind of the "set your password" mail to a customer (sent by the dispatcher's Notify route).
pub const PASSWORD_EMAIL: &str = "email.customer_password";
/// How long a "forgot password" link works.
pub const RESET_TTL_SECS: i64 = 3600;
/// The name of the web channel created on first use.
pub const WEB_CHANNEL_NAME: &str = "Web portal";

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

/// A customer's rating of a ticket (HD-12).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = conversation_ratings)]
pub struct RatingRow {
    pub conversation_id: i64,
    pub customer_id: i64,
    pub rating: Rating,
    pub rated_at: NaiveDateTime,
    pub changed_at: NaiveDateTime,
}

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

/// One of a customer's tickets as the portal lists it.
pub struct Ticket {
    pub row: ConversationRow,
    /// The base of its status (the portal shows open / pending / closed).
    pub base: StatusBase,
}

async fn with_bases(tx: &mut Tx<'_>, rows: Vec<ConversationRow>) -> StoreResult<Vec<Ticket>> {
    let keys: Vec<String> = rows.iter().map(|r| r.conversation.status.clone()).collect();
    let bases: Vec<(String, StatusBase)> = db!(
        tx,
        statuses::table.filter(statuses::key.eq_any(&keys)).select((statuses::key, statuses::base)).load(tx).await
    )?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let base =
                bases.iter().find(|(k, _)| *k == row.conversation.status).map(|(_, b)| *b).unwrap_or(StatusBase::Open);
            Ticket { row, base }
        })
        .collect())
}

/// A customer's own conversation `id` (not merged away), or `NotFound`.
async fn own(tx: &mut Tx<'_>, customer_id: i64, id: i64) -> StoreResult<Conversation> {
    db!(
        tx,
        conversations::table
            .filter(conversations::id.eq(id))
            .filter(conversations::customer_id.eq(customer_id))
            .filter(conversations::merged_into_id.is_null())
            .select(Conversation::as_select())
            .first(tx)
            .await
            .optional()
    )?
    .ok_or(StoreError::NotFound)
}

/// A customer's tickets, newest first (at most `limit`).
pub async fn tickets(store: &Store, customer_id: i64, limit: i64) -> StoreResult<Vec<Ticket>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let rows: Vec<Conversation> = db!(
                tx,
                conversations::table
                    .filter(conversations::customer_id.eq(customer_id))
                    .filter(conversations::merged_into_id.is_null())
                    .order(conversations::id.desc())
                    .limit(limit)
                    .select(Conversation::as_select())
                    .load(tx)
                    .await
            )?;
            let rows = decorate(tx, rows).await?;
            with_bases(tx, rows).await
        })
        .await
}

/// One of a customer's tickets, or `NotFound`.
pub async fn ticket(store: &Store, customer_id: i64, id: i64) -> StoreResult<Ticket> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let c = own(tx, customer_id, id).await?;
            let rows = decorate(tx, vec![c]).await?;
            Ok(with_bases(tx, rows).await?.remove(0))
        })
        .await
}

/// The public messages of a customer's ticket (never notes: technicians only, CORE-10, EM-13 `#tech#`), oldest
/// first, with their files and the names of the agents who wrote them.
pub async fn public_messages(
    store: &Store,
    customer_id: i64,
    id: i64,
) -> StoreResult<Vec<(Message, Vec<Attachment>, Option<String>)>> {
    let rows: Vec<Message> = store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let c = own(tx, customer_id, id).await?;
            Ok(db!(
                tx,
                messages::table
                    .filter(messages::conversation_id.eq(c.id))
                    .filter(messages::direction.eq_any([Direction::In.as_str(), Direction::Out.as_str()]))
                    .order(messages::seq)
                    .select(Message::as_select())
                    .load(tx)
                    .await
            )?)
        })
        .await?;
    let ids: Vec<i64> = rows.iter().map(|m| m.id).collect();
    let files = super::attachments::for_messages(store, &ids).await?;
    let mut agent_ids: Vec<i64> = rows.iter().filter_map(|m| m.author_agent_id).collect();
    agent_ids.sort_unstable();
    agent_ids.dedup();
    let names = super::messages::agent_names(store, &agent_ids).await?;
    Ok(rows
        .into_iter()
        .map(|m| {
            let mine = files.iter().filter(|a| a.message_id == Some(m.id)).cloned().collect();
            let name = m.author_agent_id.and_then(|a| names.iter().find(|(id, _)| *id == a).map(|(_, n)| n.clone()));
            (m, mine, name)
        })
        .collect())
}

/// A file a customer uploads before naming it in a message.
pub struct Upload {
    pub file_name: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub storage_key: String,
}

/// Record a customer's upload (bytes already in `crate::blobs`); only they can name it in a message.
pub async fn upload(store: &Store, customer_id: i64, u: Upload) -> StoreResult<Attachment> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                diesel::insert_into(attachments::table)
                    .values((
                        attachments::uploaded_by_customer.eq(Some(customer_id)),
                        attachments::file_name.eq(&u.file_name),
                        attachments::mime_type.eq(&u.mime_type),
                        attachments::size_bytes.eq(u.size_bytes),
                        attachments::sha256.eq(&u.sha256),
                        attachments::storage_key.eq(&u.storage_key),
                        attachments::created_at.eq(now()),
                    ))
                    .returning(Attachment::as_returning())
                    .get_result(tx)
                    .await
            )?)
        })
        .await
}

/// The customer's own uploads not yet in a message, by id, as new attachments for their message (a reply goes
/// through `messages::append_customer`, which writes its files itself). An id that is not such an upload is a bad
/// reference.
pub async fn pending_uploads(
    store: &Store,
    customer_id: i64,
    ids: Vec<i64>,
) -> StoreResult<Vec<super::attachments::NewAttachment>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let rows: Vec<Attachment> = db!(
                tx,
                attachments::table
                    .filter(attachments::id.eq_any(&ids))
                    .filter(attachments::uploaded_by_customer.eq(Some(customer_id)))
                    .filter(attachments::message_id.is_null())
                    .select(Attachment::as_select())
                    .load(tx)
                    .await
            )?;
            ids.iter()
                .map(|id| {
                    let a = rows
                        .iter()
                        .find(|a| a.id == *id)
                        .ok_or_else(|| StoreError::BadReference(format!("attachment {id} does not exist")))?;
                    Ok(super::attachments::NewAttachment {
                        uploaded_by: None,
                        file_name: a.file_name.clone(),
                        mime_type: a.mime_type.clone(),
                        size_bytes: a.size_bytes,
                        sha256: a.sha256.clone(),
                        storage_key: a.storage_key.clone(),
                    })
                })
                .collect()
        })
        .await
}

/// Forget uploads that were copied into a message (their bytes stay: blobs are content-addressed and shared).
pub async fn drop_uploads(store: &Store, customer_id: i64, ids: Vec<i64>) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            let tx = &mut conn.tx();
            db!(
                tx,
                diesel::delete(
                    attachments::table
                        .filter(attachments::id.eq_any(&ids))
                        .filter(attachments::uploaded_by_customer.eq(Some(customer_id)))
                        .filter(attachments::message_id.is_null())
                )
                .execute(tx)
                .await
            )?;
            Ok(())
        })
        .await
}

/// A file the customer may download: one of a public message of their own ticket, or their own pending upload.
pub async fn attachment(store: &Store, customer_id: i64, id: i64) -> StoreResult<Attachment> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let a: Attachment =
                db!(tx, attachments::table.find(id).select(Attachment::as_select()).first(tx).await.optional())?
                    .ok_or(StoreError::NotFound)?;
            let Some(message_id) = a.message_id else {
                return if a.uploaded_by_customer == Some(customer_id) { Ok(a) } else { Err(StoreError::NotFound) };
            };
            let visible: i64 = db!(
                tx,
                messages::table
                    .inner_join(conversations::table)
                    .filter(messages::id.eq(message_id))
                    .filter(messages::direction.eq_any([Direction::In.as_str(), Direction::Out.as_str()]))
                    .filter(conversations::customer_id.eq(customer_id))
                    .count()
                    .get_result(tx)
                    .await
            )?;
            if visible == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(a)
        })
        .await
}

/// A ticket a customer opens in the portal (CU-2): on the web channel, with their uploads.
pub struct NewTicket {
    pub customer_id: i64,
    pub subject: String,
    pub content: String,
    pub attachment_ids: Vec<i64>,
}

/// Open a ticket from the portal: the conversation on the web channel, routed and assigned like any new inbound
/// conversation, its first message with the customer's uploads, its event and audit entry, in one transaction.
/// `Changes::portal_ticket` publishes it.
pub async fn open_ticket(
    store: &Store,
    channel: ChannelInstance,
    input: NewTicket,
) -> StoreResult<CreatedConversation> {
    store
        .run(move |store| async move {
            let presence = |a: i64| store.presence(a);
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                super::channels::ensure_enabled(&channel)?;
                let files: Vec<Attachment> = db!(
                    tx,
                    attachments::table
                        .filter(attachments::id.eq_any(&input.attachment_ids))
                        .filter(attachments::uploaded_by_customer.eq(Some(input.customer_id)))
                        .filter(attachments::message_id.is_null())
                        .select(Attachment::as_select())
                        .load(tx)
                        .await
                )?;
                for id in &input.attachment_ids {
                    if !files.iter().any(|a| a.id == *id) {
                        return Err(StoreError::BadReference(format!("attachment {id} does not exist")));
                    }
                }
                let Inserted { conversation, message, event, tags } = insert(
                    tx,
                    &NewConversationRow {
                        channel: &channel,
                        customer_id: input.customer_id,
                        subject: &input.subject,
                        direction: Direction::In,
                        source: Source::Channel,
                        author_agent_id: None,
                        content: &input.content,
                        content_html: &None,
                        external_id: &None,
                        t,
                        actor: Actor::Customer(input.customer_id),
                        presence: &presence,
                    },
                )
                .await?;
                if !input.attachment_ids.is_empty() {
                    db!(
                        tx,
                        diesel::update(attachments::table.filter(attachments::id.eq_any(&input.attachment_ids)))
                            .set(attachments::message_id.eq(Some(message.id)))
                            .execute(tx)
                            .await
                    )?;
                }
                let customer_name: String =
                    db!(tx, customers::table.find(input.customer_id).select(customers::name).first(tx).await)?;
                let row = ConversationRow { conversation, tags, customer_name, channel_kind: channel.kind };
                Ok(CreatedConversation { conversation: row, message, created: true, events: vec![event] })
            })
            .await
        })
        .await
}

/// What rating a ticket changed.
pub struct Rated {
    pub conversation: ConversationRow,
    pub events: Vec<EventRow>,
    /// False when the same rating was given again (nothing written).
    pub changed: bool,
}

/// A customer rates their ticket (HD-12): one rating per ticket — a second one replaces it, for
/// [`crate::domain::links::RATING_TTL_SECS`] after the first; the conversation's `csat`, the rating row, its audit
/// entry and a `conversation.updated` event (so agents see it live), in one transaction.
pub async fn rate(store: &Store, customer_id: i64, id: i64, rating: Rating) -> StoreResult<Rated> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let c = own(tx, customer_id, id).await?;
                let before: Option<RatingRow> = db!(
                    tx,
                    conversation_ratings::table.find(c.id).select(RatingRow::as_select()).first(tx).await.optional()
                )?;
                match &before {
                    Some(r) if r.rating == rating => {
                        let row = decorate(tx, vec![c]).await?.remove(0);
                        return Ok(Rated { conversation: row, events: vec![], changed: false });
                    }
                    Some(r) if r.rated_at + Duration::seconds(crate::domain::links::RATING_TTL_SECS) <= t => {
                        return Err(Violation::RatingLocked.into());
                    }
                    Some(_) => {
                        db!(
                            tx,
                            diesel::update(conversation_ratings::table.find(c.id))
                                .set((
                                    conversation_ratings::rating.eq(rating),
                                    conversation_ratings::customer_id.eq(customer_id),
                                    conversation_ratings::changed_at.eq(t),
                                ))
                                .execute(tx)
                                .await
                        )?;
                    }
                    None => {
                        db!(
                            tx,
                            diesel::insert_into(conversation_ratings::table)
                                .values((
                                    conversation_ratings::conversation_id.eq(c.id),
                                    conversation_ratings::customer_id.eq(customer_id),
                                    conversation_ratings::rating.eq(rating),
                                    conversation_ratings::rated_at.eq(t),
                                    conversation_ratings::changed_at.eq(t),
                                ))
                                .execute(tx)
                                .await
                        )?;
                    }
                }
                let updated: Conversation = db!(
                    tx,
                    diesel::update(conversations::table.find(c.id))
                        .set((conversations::csat.eq(Some(rating)), conversations::updated_at.eq(t)))
                        .returning(Conversation::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let event = events::record(
                    tx,
                    NewEvent {
                        conversation_id: c.id,
                        channel_instance_id: c.channel_instance_id,
                        kind: events::CONVERSATION_UPDATED,
                        seq: None,
                        message_id: None,
                        created_at: t,
                    },
                )
                .await?;
                let details = json!({"rating": rating, "before": before.as_ref().map(|r| r.rating)});
                audit::write(
                    tx,
                    audit::entry(
                        Actor::Customer(customer_id),
                        "conversation.rate",
                        "conversation",
                        Some(c.id),
                        details,
                    ),
                )
                .await?;
                let row = decorate(tx, vec![updated]).await?.remove(0);
                Ok(Rated { conversation: row, events: vec![event], changed: true })
            })
            .await
        })
        .await
}

/// The rating of a ticket, if any.
pub async fn rating_of(store: &Store, conversation_id: i64) -> StoreResult<Option<RatingRow>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                conversation_ratings::table
                    .find(conversation_id)
                    .select(RatingRow::as_select())
                    .first(tx)
                    .await
                    .optional()
            )?)
        })
        .await
}

/// Remove `email` from a ticket's subscribers (EM-10; the unsubscribe link). Returns whether it was one; nothing
/// is written when it was not. A missing conversation is `NotFound`.
pub async fn unsubscribe(store: &Store, conversation_id: i64, email: String) -> StoreResult<bool> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let number: Option<i64> = db!(
                    tx,
                    conversations::table.find(conversation_id).select(conversations::number).first(tx).await.optional()
                )?;
                number.ok_or(StoreError::NotFound)?;
                let n = db!(
                    tx,
                    diesel::delete(
                        conversation_subscribers::table
                            .filter(conversation_subscribers::conversation_id.eq(conversation_id))
                            .filter(conversation_subscribers::email.eq(&email)),
                    )
                    .execute(tx)
                    .await
                )?;
                if n > 0 {
                    audit::write(
                        tx,
                        audit::entry(
                            Actor::System,
                            "conversation.unsubscribe",
                            "conversation",
                            Some(conversation_id),
                            json!({"email": email, "via": "link"}),
                        ),
                    )
                    .await?;
                }
                Ok(n > 0)
            })
            .await
        })
        .await
}

/// The subscribers of a ticket (EM-10), sorted.
pub async fn subscribers(store: &Store, conversation_id: i64) -> StoreResult<Vec<String>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            Ok(db!(
                tx,
                conversation_subscribers::table
                    .filter(conversation_subscribers::conversation_id.eq(conversation_id))
                    .order(conversation_subscribers::email)
                    .select(conversation_subscribers::email)
                    .load(tx)
                    .await
            )?)
        })
        .await
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
