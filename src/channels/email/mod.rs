//! The email channel (EM-*, EO-*; the contract for admins in `docs/email.md`).
//!
//! The protocol part — bytes and types, no storage, no network, no async, never a panic on hostile input; it
//! reports facts ("a reply to ticket 7 through `References`", "an autoreply") and decides nothing:
//! - [`parse`]: raw RFC 5322 bytes → [`ParsedMail`] (addresses, ids, text, sanitised HTML, attachments, inline images
//!   by `Content-ID`, forwarded messages, the headers the junk rules read), built on `mail-parser`.
//! - [`threading`]: which ticket an incoming mail belongs to (EM-6, in email.md's order) through the
//!   [`TicketLookup`] trait; and the outgoing side (subject with `{#number}`, our own `Message-ID`s,
//!   `In-Reply-To`/`References` chaining) for EO-1.
//! - [`junk`]: bounces, autoreplies, lists, loops and our own mail are not customers (EM-12).
//! - [`commands`]: email commands in a reply's subject (EM-13), plus-addressing to a category (EM-7), the original
//!   sender of a mail an agent forwarded (EM-11).
//! - [`settings`]: a mailbox's settings and their validation.
//!
//! The connector part, which does the I/O:
//! - [`net`]: IMAP (async-imap, IDLE), POP3 and SMTP (lettre) clients over TCP with the three TLS modes.
//! - [`importer`]: one raw mail → junk log, new ticket or message of a ticket, through `store::email`.
//! - [`mailbox`]: one task per enabled mailbox: connect, import, acknowledge after commit, IDLE or poll; EM-5.
//! - [`outgoing`]: agent replies from the outbox as threaded mail over SMTP (EO-1…EO-3).

pub mod commands;
pub mod importer;
pub mod junk;
pub mod mailbox;
pub mod net;
pub mod notification_mail;
pub mod outgoing;
pub mod parse;
pub mod settings;
pub mod threading;

pub use commands::{Command, SubjectCommands};
pub use junk::{JunkReason, Us, Verdict};
pub use parse::{Attachment, ForwardedMail, Mailbox, ParseError, ParsedMail, ReturnPath};
pub use threading::{Decision, NewReason, TicketLookup, TicketRef, Via};
