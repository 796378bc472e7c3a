//! Raw RFC 5322 bytes → [`ParsedMail`]: addresses, ids, the text and the sanitised HTML body, attachments, inline
//! images by `Content-ID`, forwarded messages, and the headers the junk rules read (email.md "Parsing").
//!
//! `mail-parser` does the MIME tree, charsets (including the multi-byte ones through its `full_encoding` feature),
//! encoded words and transfer encodings; this module decides what Switchboard keeps. It never panics on hostile
//! input: `mail-parser` is best-effort by design, and everything here indexes with `get` and bounds its recursion.
//!
//! HTML is sanitised before anyone stores or shows it, by the one message-HTML policy that API HTML follows too
//! ([`crate::domain::html`]: no scripts, styles, forms, frames or event handlers; links only `http`, `https`,
//! `mailto`, `tel`, never relative; images never load anything, remote ones listed in [`ParsedMail::remote_images`]
//! so a UI can offer "load remote images" with consent). The mail's own step on top: `cid:` links become the
//! placeholder `{{attachment:<content-id>}}`, which the connector fills with the stored attachment's URL through
//! [`fill_attachment_links`].
//!
//! One job a module: `headers` (addresses, ids, date, raw headers), `body` (the text and the raw HTML body), `cid`
//! (the `cid:` step over the product's HTML policy and the attachment placeholders), `attachments` (files and
//! their names), `forwards` (attached and quoted forwards); this file holds the types and [`parse`] itself.

mod attachments;
mod body;
mod cid;
mod forwards;
mod headers;
#[cfg(test)]
mod tests;

use attachments::*;
use body::*;
use cid::*;
pub use cid::{fill_attachment_links, normalize_content_id};
pub use forwards::quoted_from;
use forwards::*;
use headers::*;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::domain::html::html_text;
use chrono::{DateTime, Utc};
use mail_parser::decoders::html::text_to_html;
use mail_parser::{Address, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// Larger messages are refused rather than parsed (most providers stop at 25–50 MB anyway).
pub const MAX_MESSAGE_BYTES: usize = 50 * 1024 * 1024;
/// How deep forwarded messages (`message/rfc822` inside `message/rfc822`) are followed.
pub const MAX_FORWARD_DEPTH: usize = 8;
/// Start of the placeholder an inline image's `cid:` link becomes; see [`fill_attachment_links`].
pub const ATTACHMENT_PLACEHOLDER: &str = "{{attachment:";
const PLACEHOLDER_END: &str = "}}";
const MAX_FILE_NAME_CHARS: usize = 200;
const MAX_CONTENT_ID_LEN: usize = 250;
/// A quoted forward's header block is looked for in this many lines of the text body.
const MAX_FORWARD_SCAN_LINES: usize = 2_000;

/// Why bytes are not a mail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the message is empty")]
    Empty,
    #[error("the message has {size} bytes; at most {limit} are accepted")]
    TooLarge { size: usize, limit: usize },
    #[error("no RFC 5322 header section found")]
    NotAMessage,
    /// The parser itself failed (a bug): the mail is logged with its source rather than retried for ever.
    #[error("the mail parser failed on this message")]
    ParserFailed,
}

impl ParseError {
    /// Stable snake_case code for logs and the admin's junk/error list.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Empty => "empty",
            ParseError::TooLarge { .. } => "too_large",
            ParseError::NotAMessage => "not_a_message",
            ParseError::ParserFailed => "parser_failed",
        }
    }
}

/// One address with its display name. `address` is trimmed and lower-cased (as `domain::text::normalize_email`
/// stores emails) but not otherwise validated: `MAILER-DAEMON` without a domain is kept as `mailer-daemon`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub address: String,
    pub name: Option<String>,
}

/// The `Return-Path` the final delivery agent recorded (the envelope sender).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReturnPath {
    /// No `Return-Path` header at all.
    #[default]
    Missing,
    /// `Return-Path: <>`: the null sender of bounces and autoreplies (RFC 5321 §4.5.5).
    Empty,
    Address(String),
}

/// The top-level headers the junk rules and routing read, as found (values unfolded, trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers {
    /// `Auto-Submitted`, lower-cased (`auto-replied`, `auto-generated`, `no`, …).
    pub auto_submitted: Option<String>,
    /// `Precedence`, lower-cased.
    pub precedence: Option<String>,
    pub x_auto_response_suppress: Option<String>,
    /// Every `X-Loop` value.
    pub x_loop: Vec<String>,
    pub return_path: ReturnPath,
    /// The top-level `Content-Type` as lower-case `type/subtype` (`text/plain` when absent, RFC 2045 §5.2).
    pub content_type: String,
    /// The `report-type` parameter of a `multipart/report` (`delivery-status`, `disposition-notification`).
    pub report_type: Option<String>,
    pub list_id: Option<String>,
    /// Envelope recipients some servers record (`Delivered-To`, `X-Original-To`, `Envelope-To`), lower-cased: the
    /// only trace of a plus-address the sender put in `Bcc`.
    pub delivered_to: Vec<String>,
}

/// A file carried by the mail, including inline images and forwarded messages (`message/rfc822`, as `.eml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The sender's name without any path, control characters removed; a generated `attachment-N.ext` when absent.
    pub file_name: String,
    /// Lower-case `type/subtype`; `application/octet-stream` is refined from the file name where possible.
    pub mime_type: String,
    /// Decoded bytes (text parts: their UTF-8 text after charset decoding).
    pub bytes: Vec<u8>,
    /// `Content-ID` without angle brackets.
    pub content_id: Option<String>,
    /// Shown within the body, so a UI may leave it out of the attachment list: its `Content-ID` is referenced by a
    /// `cid:` link of the HTML body. (`Content-Disposition: inline` alone says little: Apple Mail marks PDFs so,
    /// and an image in a text-only mail has nowhere to be shown.)
    pub inline: bool,
}

/// A mail attached to this one (`message/rfc822`), with those attached to it in turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedMail {
    pub from: Option<Mailbox>,
    pub subject: String,
    pub message_id: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub forwarded: Vec<ForwardedMail>,
}

/// A mail normalised for the help desk. Not `Serialize` on purpose (domain types are not a contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMail {
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    /// Decoded, trimmed; empty when absent.
    pub subject: String,
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    /// Every id of `References`, in order, duplicates removed.
    pub references: Vec<String>,
    pub date: Option<DateTime<Utc>>,
    /// The text body (`text/plain` preferred, else derived from the HTML), line ends normalised to `\n`.
    pub text: String,
    /// The sanitised HTML body, when the mail has one; `cid:` links are [`ATTACHMENT_PLACEHOLDER`]s.
    pub html: Option<String>,
    /// `src` of images the sanitiser removed because they load from the network.
    pub remote_images: Vec<String>,
    pub attachments: Vec<Attachment>,
    /// Attached mails (forwarded "as attachment"), in order.
    pub forwarded: Vec<ForwardedMail>,
    /// The `From` of the first header block quoted in the text: a forward's ("---------- Forwarded message
    /// ---------", "Begin forwarded message:", Thunderbird's table) or an Outlook-style reply's (`From:`/`Sent:`).
    /// EM-11 reads it for forwards only.
    pub quoted_from: Option<Mailbox>,
    pub headers: Headers,
}

/// [`parse`], with a panic inside the parser (a bug: `parse` is not meant to panic, and the corpus and its tests say
/// it does not) turned into [`ParseError::ParserFailed`], so one odd mail cannot stop a mailbox's import.
pub fn parse_guarded(raw: &[u8]) -> Result<ParsedMail, ParseError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(raw))).unwrap_or(Err(ParseError::ParserFailed))
}

/// Parses a raw message. Never panics; the only errors are input that is not a mail at all.
pub fn parse(raw: &[u8]) -> Result<ParsedMail, ParseError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(ParseError::TooLarge { size: raw.len(), limit: MAX_MESSAGE_BYTES });
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let message = Tree(MessageParser::default().parse(raw).ok_or(ParseError::NotAMessage)?);
    let message = &message.0;
    if message.headers().is_empty() {
        return Err(ParseError::NotAMessage);
    }

    let raw_html = raw_html_body(message);
    let sanitized = raw_html.as_deref().map(sanitize_html);
    let mut text = body_text(message);
    if text.trim().is_empty()
        && let Some(html) = &raw_html
    {
        // An empty text alternative next to a real HTML body ("view this mail in HTML"): use the HTML's text.
        text = html_text(html);
    }
    let referenced: BTreeSet<String> = sanitized.as_ref().map(|s| s.cids.clone()).unwrap_or_default();
    let (html, remote_images) = match sanitized {
        Some(s) => (Some(s.html), s.remote_images),
        None => (None, Vec::new()),
    };
    let quoted_from = quoted_from(&text);

    Ok(ParsedMail {
        from: message.from().and_then(first_mailbox),
        to: mailboxes(message.header_values(HeaderName::To)),
        cc: mailboxes(message.header_values(HeaderName::Cc)),
        reply_to: mailboxes(message.header_values(HeaderName::ReplyTo)),
        subject: clean_subject(message.subject()),
        message_id: message.message_id().and_then(clean_id),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        date: date(message),
        text,
        html,
        remote_images,
        attachments: attachments(message, &referenced),
        forwarded: forwarded(message, 0),
        quoted_from,
        headers: headers(message),
    })
}

/// A parsed message that is dropped level by level: `mail-parser` nests attached messages by value, and the
/// default drop of 50,000 nested `message/rfc822` parts (2.5 MB of input) recurses until the stack overflows.
struct Tree<'x>(Message<'x>);

impl Drop for Tree<'_> {
    fn drop(&mut self) {
        let mut pending = vec![std::mem::take(&mut self.0)];
        while let Some(mut message) = pending.pop() {
            for part in &mut message.parts {
                if matches!(part.body, PartType::Message(_))
                    && let PartType::Message(inner) = std::mem::take(&mut part.body)
                {
                    pending.push(inner);
                }
            }
        }
    }
}
