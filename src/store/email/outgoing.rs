//! What an outgoing mail needs (EO-1): its context, its Message-ID fixed before the first attempt,
//! and the ticket's subscribers (EM-10).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db;
use crate::domain::Direction;
use crate::store::models::{Attachment, ChannelInstance, Conversation, Message};
use crate::store::schema::{
    agents, attachments, channel_instances, conversation_subscribers, conversations, customer_identities, customers,
    messages,
};
use crate::store::{Store, StoreResult, Tx};

/// Everything an outgoing mail for `message_id` needs (EO-1).
#[derive(Debug, Clone)]
pub struct OutgoingContext {
    pub channel: ChannelInstance,
    pub conversation: Conversation,
    pub message: Message,
    pub attachments: Vec<Attachment>,
    pub customer_email: Option<String>,
    pub customer_name: String,
    pub subscribers: Vec<String>,
    pub author_name: Option<String>,
    /// Message-IDs of the thread so far, oldest first (this message excluded).
    pub thread: Vec<String>,
    /// The Message-ID of the newest message from the customer before this one, if any.
    pub last_inbound: Option<String>,
}

pub async fn outgoing_context(store: &Store, message_id: i64) -> StoreResult<OutgoingContext> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let message: Message =
                db!(tx, messages::table.find(message_id).select(Message::as_select()).first(tx).await)?;
            let conversation: Conversation = db!(
                tx,
                conversations::table.find(message.conversation_id).select(Conversation::as_select()).first(tx).await
            )?;
            let channel: ChannelInstance = db!(
                tx,
                channel_instances::table
                    .find(conversation.channel_instance_id)
                    .select(ChannelInstance::as_select())
                    .first(tx)
                    .await
            )?;
            let attachments: Vec<Attachment> = db!(
                tx,
                attachments::table
                    .filter(attachments::message_id.eq(message.id))
                    .select(Attachment::as_select())
                    .load(tx)
                    .await
            )?;
            let customer_email: Option<String> = db!(
                tx,
                customer_identities::table
                    .filter(customer_identities::customer_id.eq(conversation.customer_id))
                    .filter(customer_identities::kind.eq("email"))
                    .select(customer_identities::value)
                    .order(customer_identities::id)
                    .first(tx)
                    .await
                    .optional()
            )?;
            let customer_name: String =
                db!(tx, customers::table.find(conversation.customer_id).select(customers::name).first(tx).await)?;
            let subscribers = of_conversation(tx, conversation.id).await?;
            let author_name: Option<String> = match message.author_agent_id {
                Some(id) => db!(tx, agents::table.find(id).select(agents::name).first(tx).await.optional())?,
                None => None,
            };
            let earlier: Vec<(Option<String>, Direction)> = db!(
                tx,
                messages::table
                    .filter(messages::conversation_id.eq(conversation.id))
                    .filter(messages::seq.lt(message.seq))
                    .filter(messages::direction.ne(Direction::Note))
                    .filter(messages::provider_message_id.is_not_null())
                    .order(messages::seq.asc())
                    .select((messages::provider_message_id, messages::direction))
                    .load(tx)
                    .await
            )?;
            let last_inbound = earlier.iter().rev().find(|(_, d)| *d == Direction::In).and_then(|(id, _)| id.clone());
            let thread = earlier.into_iter().filter_map(|(id, _)| id).collect();
            Ok(OutgoingContext {
                channel,
                conversation,
                message,
                attachments,
                customer_email,
                customer_name,
                subscribers,
                author_name,
                thread,
                last_inbound,
            })
        })
        .await
}

/// Give an outgoing message its Message-ID before the first attempt, so every retry sends the
/// same one. Returns the id it has (the one set earlier, if any).
pub async fn assign_message_id(store: &Store, message_id: i64, candidate: String) -> StoreResult<String> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let current: Option<String> =
                    db!(tx, messages::table.find(message_id).select(messages::provider_message_id).first(tx).await)?;
                if let Some(id) = current {
                    return Ok(id);
                }
                db!(
                    tx,
                    diesel::update(messages::table.find(message_id))
                        .set(messages::provider_message_id.eq(Some(&candidate)))
                        .execute(tx)
                        .await
                )?;
                Ok(candidate)
            })
            .await
        })
        .await
}

/// A ticket's subscribers, by address (EM-10).
async fn of_conversation(tx: &mut Tx<'_>, conversation_id: i64) -> StoreResult<Vec<String>> {
    Ok(db!(
        tx,
        conversation_subscribers::table
            .filter(conversation_subscribers::conversation_id.eq(conversation_id))
            .select(conversation_subscribers::email)
            .order(conversation_subscribers::email)
            .load(tx)
            .await
    )?)
}

/// A ticket's subscribers (EM-10).
pub async fn subscribers(store: &Store, conversation_id: i64) -> StoreResult<Vec<String>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            of_conversation(&mut conn.tx(), conversation_id).await
        })
        .await
}
