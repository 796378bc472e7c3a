//! The JSON of an agent's notification (issue #17 item 2), the same for the REST API
//! (`GET /api/v1/me/notifications`) and the socket's `notification` frame: one place that decides
//! what the bell shows.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ts, ts_opt};
use crate::store::notifications::Notice;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: i64,
    /// `assigned`, `mentioned`, `customer_replied` or `chat_waiting`.
    pub kind: String,
    pub conversation_id: i64,
    /// The conversation's number (shown as `#1234`).
    pub conversation_number: i64,
    pub subject: String,
    pub customer_name: String,
    /// The message it is about (the note that mentions, the customer's message), if any.
    pub message_id: Option<i64>,
    pub actor: NotificationActor,
    /// The start of the message (or the subject), whitespace collapsed, at most 140 characters.
    pub excerpt: String,
    pub created_at: DateTime<Utc>,
    /// `null` while unread.
    pub read_at: Option<DateTime<Utc>>,
}

/// Who caused a notification.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationActor {
    /// `agent`, `customer` or `system` (routing).
    pub kind: String,
    pub id: Option<i64>,
    pub name: String,
}

impl From<&Notice> for NotificationView {
    fn from(n: &Notice) -> Self {
        let r = &n.row;
        Self {
            id: r.id,
            kind: r.kind.as_str().to_owned(),
            conversation_id: r.conversation_id,
            conversation_number: n.number,
            subject: n.subject.clone(),
            customer_name: n.customer_name.clone(),
            message_id: r.message_id,
            actor: NotificationActor {
                kind: r.actor_kind.as_str().to_owned(),
                id: r.actor_id,
                name: r.actor_name.clone(),
            },
            excerpt: r.excerpt.clone(),
            created_at: ts(r.created_at),
            read_at: ts_opt(r.read_at),
        }
    }
}

/// A page of the caller's notifications, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<NotificationView>,
    /// The caller's unread notifications, all pages.
    pub unread_count: i64,
    /// More (older) notifications follow: ask again with `before` = the last item's id.
    pub has_more: bool,
}

/// The answer to marking notifications read.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationsRead {
    pub unread_count: i64,
}
