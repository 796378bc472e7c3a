//! A customer's own tickets (CU-2): listing them, reading one with its public messages (never notes), and opening
//! one from the portal on the web channel. A conversation that is not theirs is [`StoreError::NotFound`].

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db;
use crate::domain::{Direction, Source, StatusBase};
use crate::store::audit::Actor;
use crate::store::conversations::{
    ConversationRow, CreatedConversation, Inserted, NewConversationRow, decorate, insert,
};
use crate::store::models::{Attachment, ChannelInstance, Conversation, Message};
use crate::store::schema::{attachments, conversations, customers, messages, statuses};
use crate::store::{Store, StoreError, StoreResult, Tx, now};

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
pub(super) async fn own(tx: &mut Tx<'_>, customer_id: i64, id: i64) -> StoreResult<Conversation> {
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
    let files = crate::store::attachments::for_messages(store, &ids).await?;
    let mut agent_ids: Vec<i64> = rows.iter().filter_map(|m| m.author_agent_id).collect();
    agent_ids.sort_unstable();
    agent_ids.dedup();
    let names = crate::store::messages::agent_names(store, &agent_ids).await?;
    Ok(rows
        .into_iter()
        .map(|m| {
            let mine = files.iter().filter(|a| a.message_id == Some(m.id)).cloned().collect();
            let name = m.author_agent_id.and_then(|a| names.iter().find(|(id, _)| *id == a).map(|(_, n)| n.clone()));
            (m, mine, name)
        })
        .collect())
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
                crate::store::channels::ensure_enabled(&channel)?;
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
