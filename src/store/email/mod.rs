//! What the email channel keeps (EM-1…EM-13, EO-1), one job per file: [`import`] stores batches of mail
//! (a new ticket or a message of an existing one), [`thread_index`] reads what threading needs,
//! [`mail_log`] keeps the log of mail that made no ticket and the raw sources, [`health`] each mailbox's
//! connection health (EM-5) and the remote keys it already imported, [`outgoing`] what an outgoing mail needs.
//! This file holds the types they share and re-exports their public items (`store::email::X`).

mod health;
mod import;
mod mail_log;
mod outgoing;
mod thread_index;

pub use self::health::{
    MAX_FAILURES, MailboxState, mailbox_state, mark_seen, record_failure, record_success, reset_failures, seen_keys,
};
pub use self::import::{
    BatchImport, BatchMail, BatchStep, Route, ThreadedMail, ToTicket, import_to_ticket, import_until_ticket,
};
pub use self::mail_log::{LoggedMail, MailLogRow, RawSource, logged_source, mail_log, record_source, source_of};
pub use self::outgoing::{OutgoingContext, assign_message_id, outgoing_context, subscribers};
pub use self::thread_index::{ThreadIndex, agent_addresses};

use crate::store::conversations::{ConversationRow, CreatedConversation};
use crate::store::events::EventRow;
use crate::store::models::{Attachment, Message};

/// A file already written to the blob store.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub file_name: String,
    pub mime_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub storage_key: String,
    pub content_id: Option<String>,
}

/// Who wrote the mail.
#[derive(Debug, Clone)]
pub enum Sender {
    /// A customer (or a subscriber) by address; created when unknown and `create` is set (EM-8).
    Customer { email: String, name: Option<String>, create: bool },
    /// A registered agent answering by mail: a reply to the customer, or a note with `#tech#`.
    Agent { id: i64 },
}

#[derive(Debug, Clone)]
pub enum MailTarget {
    /// A new ticket, in `team_id` when given (EM-7, EM-9), with these addresses subscribed (EM-10).
    New { team_id: Option<i64>, subscribers: Vec<String> },
    /// A message of this ticket (already the survivor of any merge).
    Reply { conversation_id: i64 },
}

#[derive(Debug, Clone)]
pub struct IncomingMail {
    /// The mailbox (channel instance) it arrived in.
    pub channel_id: i64,
    /// The mail's Message-ID without angle brackets (synthesised from the content when absent).
    pub message_id: String,
    pub sender: Sender,
    pub subject: String,
    pub text: String,
    /// Sanitised HTML; `cid:` links are still `channels::email::parse` placeholders.
    pub html: Option<String>,
    pub files: Vec<StoredFile>,
    /// The raw source.
    pub source: RawSource,
    pub from_address: String,
    pub recipients: Vec<String>,
    pub target: MailTarget,
    /// `#tech#`: technicians only (a note).
    pub note: bool,
    /// `#close#`.
    pub close: bool,
    /// `#unsubscribe#` / `#unsub#`: the sender leaves the ticket's subscribers.
    pub unsubscribe: bool,
}

pub enum Imported {
    Created(CreatedConversation),
    Appended {
        message: Message,
        attachments: Vec<Attachment>,
        conversation: ConversationRow,
        events: Vec<EventRow>,
    },
    /// Stored before (same Message-ID on this mailbox or in the target ticket): nothing written.
    Duplicate {
        conversation_id: i64,
    },
    /// Not a ticket: logged for admins as `junk`, `unparseable` or `rejected` (an unknown sender while "accept mail
    /// from unregistered users" is off, EM-8), with this reason.
    Logged {
        outcome: &'static str,
        reason: String,
    },
}
