//! An agent's "Retry" on a reply that was not delivered (issue #17 item 5). The failed delivery is queued again in
//! the outbox (`store::outbox::retry_failed`) and the dispatcher sends it like any other: one path, never twice.
//! Access is the conversation's: out of scope, or a message of another conversation, is 404.

use actix_web::web;

use super::not_found_as;
use crate::auth::Principal;
use crate::http::State;
use crate::http::error::{ApiError, ApiResult};
use crate::http::views::MessageView;
use crate::store::{self, audit::Actor, outbox::Retry};

/// Send a failed reply again: its delivery is queued now with the same delivery id (`X-Switchboard-Delivery` for
/// custom channels), and the message's `delivery` turns `pending` (socket `message.updated`), then `sent` or
/// `failed` with the new reason. 409 when the delivery is not failed (pending, being sent, sent); 422 when the
/// message has no delivery (an incoming message, a note).
#[utoipa::path(post, operation_id = "conversations_retry_message", path = "/api/v1/conversations/{id}/messages/{message_id}/retry",
    tag = "conversations", params(("id" = i64, Path), ("message_id" = i64, Path)),
    responses((status = 200, body = MessageView), (status = 404, body = crate::http::error::ErrorBody),
        (status = 409, body = crate::http::error::ErrorBody), (status = 422, body = crate::http::error::ErrorBody)))]
pub async fn retry(state: State, p: Principal, path: web::Path<(i64, i64)>) -> ApiResult<web::Json<MessageView>> {
    let (id, message_id) = path.into_inner();
    let conversation =
        store::conversations::get(&state.store, id, &p.scope).await.map_err(|e| not_found_as(e, "conversation"))?;
    let message =
        store::messages::get(&state.store, message_id, &p.scope).await.map_err(|e| not_found_as(e, "message"))?;
    if message.conversation_id != id {
        return Err(ApiError::not_found("message"));
    }
    match store::outbox::retry_failed(&state.store, message_id, Actor::Agent(p.agent_id)).await? {
        Retry::Queued(events) => state.changes.message_updated(&events).await?,
        Retry::NotFailed => return Err(ApiError::Conflict("this message's delivery has not failed".into())),
        Retry::NoDelivery => {
            return Err(ApiError::Unprocessable {
                code: "not_retryable",
                message: "this message is not sent to the customer by Switchboard".into(),
            });
        }
    }
    tracing::info!(agent_id = p.agent_id, message_id, "failed delivery queued again by hand");
    let rows = store::messages::get_many(&state.store, vec![message_id]).await?;
    let view = crate::view::event::message_views(&state.store, &conversation.customer_name, rows).await?;
    view.into_iter().next().map(web::Json).ok_or_else(|| ApiError::not_found("message"))
}
