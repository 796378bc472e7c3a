//! The email channel's protocol part (EM-*, EO-1; facts in `shared/channels/email.md`): bytes and types, no storage,
//! no network, no async.
//!
//! What it owns:
//! - [`parse`]: raw RFC 5322 bytes → [`ParsedMail`] (addresses, ids, text, sanitised HTML, attachments, inline images
//!   by `Content-ID`, forwarded messages, the headers the junk rules read), built on `mail-parser`.
//! - [`threading`]: which ticket an incoming mail belongs to (EM-6, in email.md's order) through the
//!   [`TicketLookup`] trait the caller implements over the store; and the outgoing side (subject with `{#number}`,
//!   our own `Message-ID`s, `In-Reply-To`/`References` chaining) for EO-1.
//! - [`junk`]: bounces, autoreplies, lists, loops and our own mail are not customers (EM-12).
//! - [`commands`]: email commands in a reply's subject (EM-13), plus-addressing to a category (EM-7), the original
//!   sender of a mail an agent forwarded (EM-11).
//!
//! What it must never do: open a socket (IMAP/POP3/SMTP belong to the connector that wires this to the store and the
//! conversation actors), touch the store or the blob directory, spawn tasks, read the clock for decisions, or panic on
//! hostile input. It decides nothing about what a message does to a conversation: it reports facts ("a reply to
//! ticket 7 through `References`", "an autoreply"), and the connector and the actors act on them.

pub mod commands;
pub mod junk;
pub mod parse;
pub mod threading;

pub use commands::{Command, SubjectCommands};
pub use junk::{JunkReason, Us, Verdict};
pub use parse::{Attachment, ForwardedMail, Mailbox, ParseError, ParsedMail, ReturnPath};
pub use threading::{Decision, NewReason, TicketLookup, TicketRef, Via};
