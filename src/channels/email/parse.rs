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

/// Replaces every [`ATTACHMENT_PLACEHOLDER`] in an attribute of sanitised HTML with `url_for(content_id)`,
/// attribute-escaped; a content id without a stored attachment leaves an empty attribute value.
pub fn fill_attachment_links(html: &str, url_for: impl Fn(&str) -> Option<String>) -> String {
    let open = format!("=\"{ATTACHMENT_PLACEHOLDER}");
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(PLACEHOLDER_END) else { break };
        let cid = &after[..end];
        let Some(tail) = after[end + PLACEHOLDER_END.len()..].strip_prefix('"') else {
            // Not a whole attribute value: copy it as it is and go on after it.
            out.push_str(&rest[..start + open.len()]);
            rest = after;
            continue;
        };
        out.push_str(&rest[..start]);
        out.push_str("=\"");
        if let Some(url) = url_for(cid) {
            out.push_str(&escape_attribute(&url));
        }
        out.push('"');
        rest = tail;
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Headers

fn clean_subject(subject: Option<&str>) -> String {
    subject.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

fn to_mailbox(name: Option<&str>, address: Option<&str>) -> Option<Mailbox> {
    // `From: MAILER-DAEMON` (no domain) parses as a name alone: one word is taken as the address.
    let address = match (address, name) {
        (Some(address), _) => address,
        (None, Some(word)) if !word.trim().is_empty() && !word.trim().contains(char::is_whitespace) => {
            return to_mailbox(None, Some(word));
        }
        _ => return None,
    };
    let address = address.trim().trim_matches(|c| c == '<' || c == '>').trim().to_lowercase();
    if address.is_empty() || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let name = name
        .map(|n| n.split_whitespace().collect::<Vec<_>>().join(" "))
        .map(|n| n.trim_matches(|c| c == '"' || c == '\'').trim().to_owned())
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(&address) && !n.chars().any(char::is_control));
    Some(Mailbox { address, name })
}

fn first_mailbox(address: &Address<'_>) -> Option<Mailbox> {
    address.iter().find_map(|a| to_mailbox(a.name.as_deref(), a.address.as_deref()))
}

fn mailboxes<'a>(values: impl Iterator<Item = &'a HeaderValue<'a>>) -> Vec<Mailbox> {
    let mut out: Vec<Mailbox> = Vec::new();
    for value in values {
        let Some(address) = value.as_address() else { continue };
        for a in address.iter() {
            if let Some(m) = to_mailbox(a.name.as_deref(), a.address.as_deref())
                && !out.iter().any(|o| o.address == m.address)
            {
                out.push(m);
            }
        }
    }
    out
}

fn clean_id(raw: &str) -> Option<String> {
    let id = raw.trim().trim_start_matches('<').trim_end_matches('>').trim();
    let ok = !id.is_empty() && id.len() <= 998 && !id.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| id.to_owned())
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let raw: Vec<&str> = match value {
        HeaderValue::Text(id) => vec![id.as_ref()],
        HeaderValue::TextList(list) => list.iter().map(|id| id.as_ref()).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for id in raw.into_iter().filter_map(clean_id) {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

fn date(message: &Message<'_>) -> Option<DateTime<Utc>> {
    parsed_date(message.date())
}

fn parsed_date(d: Option<&mail_parser::DateTime>) -> Option<DateTime<Utc>> {
    let d = d?;
    let sane = (1..=12).contains(&d.month)
        && (1..=31).contains(&d.day)
        && d.hour < 24
        && d.minute < 60
        && d.second <= 60
        && d.tz_hour < 24
        && d.tz_minute < 60;
    if !sane {
        return None;
    }
    DateTime::from_timestamp(d.to_timestamp(), 0)
}

/// `(name, value)` of every top-level header, values unfolded and trimmed.
fn raw_headers<'a>(message: &'a Message<'a>) -> impl Iterator<Item = (&'a str, String)> + 'a {
    message.headers().iter().map(move |h| {
        let bytes = message.raw_message.get(h.offset_start as usize..h.offset_end as usize).unwrap_or_default();
        let value = String::from_utf8_lossy(bytes).split_whitespace().collect::<Vec<_>>().join(" ");
        (h.name.as_str(), value)
    })
}

fn headers(message: &Message<'_>) -> Headers {
    let mut out = Headers::default();
    let mut return_path_seen = false;
    for (name, value) in raw_headers(message) {
        let first = |slot: &mut Option<String>, value: String| {
            if slot.is_none() {
                *slot = Some(value);
            }
        };
        if name.eq_ignore_ascii_case("auto-submitted") {
            first(&mut out.auto_submitted, value.to_lowercase());
        } else if name.eq_ignore_ascii_case("precedence") {
            first(&mut out.precedence, value.to_lowercase());
        } else if name.eq_ignore_ascii_case("x-auto-response-suppress") {
            first(&mut out.x_auto_response_suppress, value);
        } else if name.eq_ignore_ascii_case("x-loop") {
            out.x_loop.push(value);
        } else if name.eq_ignore_ascii_case("list-id") {
            first(&mut out.list_id, value);
        } else if name.eq_ignore_ascii_case("return-path") {
            // The topmost one is the final delivery agent's.
            if !return_path_seen {
                return_path_seen = true;
                let path = value.trim().trim_start_matches('<').trim_end_matches('>').trim().to_lowercase();
                out.return_path = if path.is_empty() { ReturnPath::Empty } else { ReturnPath::Address(path) };
            }
        } else if ["delivered-to", "x-original-to", "envelope-to"].iter().any(|h| name.eq_ignore_ascii_case(h)) {
            let address = value.trim().trim_start_matches('<').trim_end_matches('>').trim().to_lowercase();
            if !address.is_empty() && !out.delivered_to.contains(&address) {
                out.delivered_to.push(address);
            }
        }
    }
    match message.root_part().content_type() {
        Some(ct) => {
            let subtype = ct.subtype().unwrap_or_default();
            out.content_type = format!("{}/{}", ct.ctype(), subtype).to_lowercase();
            out.report_type = ct.attribute("report-type").map(str::to_lowercase);
        }
        None => out.content_type = "text/plain".to_owned(),
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Bodies

fn normalize_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n").trim_end().to_owned()
}

fn body_text(message: &Message<'_>) -> String {
    let mut out = String::new();
    for part in message.text_bodies() {
        let piece: Cow<'_, str> = match &part.body {
            PartType::Text(text) => Cow::Borrowed(text.as_ref()),
            PartType::Html(html) => Cow::Owned(html_text(html)),
            _ => continue,
        };
        if piece.trim().is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&piece);
    }
    normalize_newlines(&out)
}

/// The HTML body before sanitising, when the mail has a real `text/html` part. Text parts between HTML parts
/// (Apple Mail's mixed bodies) are converted, inline images in the body list become `cid:` images.
fn raw_html_body(message: &Message<'_>) -> Option<String> {
    if !message.html_bodies().any(|p| matches!(p.body, PartType::Html(_))) {
        return None;
    }
    let mut html = String::new();
    for part in message.html_bodies() {
        match &part.body {
            PartType::Html(h) => html.push_str(h),
            PartType::Text(t) => html.push_str(&text_to_html(t)),
            PartType::Binary(_) | PartType::InlineBinary(_) => {
                if let Some(cid) = part.content_id().and_then(normalize_content_id)
                    && mime_type(part).starts_with("image/")
                {
                    html.push_str(&format!("<img src=\"cid:{}\">", escape_attribute(&cid)));
                }
            }
            _ => {}
        }
    }
    Some(html)
}

struct Sanitized {
    html: String,
    cids: BTreeSet<String>,
    remote_images: Vec<String>,
}

/// The mail's HTML under the one message-HTML policy ([`crate::domain::html`]), with the mail's own step on top:
/// a `cid:` link to an inline image becomes the placeholder `{{attachment:<content-id>}}` (and is collected).
fn sanitize_html(html: &str) -> Sanitized {
    let cids = Arc::new(Mutex::new(BTreeSet::new()));
    let sink = Arc::clone(&cids);
    let clean = crate::domain::html::sanitize_with(html, move |cid| {
        let cid = percent_decode(cid).and_then(|c| normalize_content_id(&c)).filter(|c| is_safe_cid(c))?;
        let placeholder = format!("{ATTACHMENT_PLACEHOLDER}{cid}{PLACEHOLDER_END}");
        // The sanitiser calls this from this thread only; a poisoned lock still holds usable data.
        sink.lock().unwrap_or_else(PoisonError::into_inner).insert(cid);
        Some(placeholder)
    });
    let cids = std::mem::take(&mut *cids.lock().unwrap_or_else(PoisonError::into_inner));
    Sanitized { html: clean.html, cids, remote_images: clean.remote_images }
}

fn escape_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// `%XX` decoding of a `cid:` URL (RFC 2392); `None` when the result is not UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A `Content-ID` as attachments and `cid:` links are matched: trimmed, without angle brackets.
pub fn normalize_content_id(raw: &str) -> Option<String> {
    let id = raw.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty() && id.len() <= MAX_CONTENT_ID_LEN && !id.chars().any(char::is_control)).then(|| id.to_owned())
}

/// Content ids that can sit in a placeholder without escaping (every real client's are).
fn is_safe_cid(cid: &str) -> bool {
    cid.chars().all(|c| c.is_ascii_alphanumeric() || "._-+@$=!~*/:".contains(c))
}

// ---------------------------------------------------------------------------------------------------------------
// Attachments and forwards

fn mime_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_lowercase(),
            None => ct.ctype().to_lowercase(),
        },
        None => match part.body {
            PartType::Message(_) => "message/rfc822".to_owned(),
            PartType::Text(_) => "text/plain".to_owned(),
            PartType::Html(_) => "text/html".to_owned(),
            _ => "application/octet-stream".to_owned(),
        },
    }
}

/// The sender's file name without path, control characters, or characters no file system takes (`:*?"<>|`
/// become `_`, as Windows clients do), at most [`MAX_FILE_NAME_CHARS`] characters.
fn clean_file_name(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let name: String = base
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if ":*?\"<>|".contains(c) { '_' } else { c })
        .take(MAX_FILE_NAME_CHARS)
        .collect();
    let name = name.trim();
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_owned())
}

fn extension_for(mime: &str) -> &'static str {
    match mime {
        "message/rfc822" => "eml",
        "text/html" => "html",
        "text/calendar" => "ics",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "application/pdf" => "pdf",
        "message/delivery-status" | "message/disposition-notification" | "message/feedback-report" => "txt",
        _ if mime.starts_with("text/") => "txt",
        _ => mime_guess::get_mime_extensions_str(mime).and_then(|e| e.first().copied()).unwrap_or("bin"),
    }
}

fn attachments(message: &Message<'_>, referenced: &BTreeSet<String>) -> Vec<Attachment> {
    let mut out = Vec::new();
    for part in message.attachments() {
        let bytes = match &part.body {
            PartType::Text(text) | PartType::Html(text) => text.as_bytes().to_vec(),
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => bytes.to_vec(),
            PartType::Message(m) => m.raw_message().to_vec(),
            PartType::Multipart(_) => continue,
        };
        let mut mime = mime_type(part);
        let named = part.attachment_name().and_then(clean_file_name);
        if mime == "application/octet-stream"
            && let Some(guess) = named.as_deref().and_then(|n| mime_guess::from_path(n).first())
        {
            mime = guess.essence_str().to_owned();
        }
        let file_name = named.unwrap_or_else(|| match &part.body {
            PartType::Message(m) => {
                let subject = clean_subject(m.subject());
                let stem = clean_file_name(&subject).unwrap_or_else(|| "forwarded message".to_owned());
                format!("{stem}.eml")
            }
            _ => format!("attachment-{}.{}", out.len() + 1, extension_for(&mime)),
        });
        let content_id = part.content_id().and_then(normalize_content_id);
        let inline = content_id.as_ref().is_some_and(|c| referenced.contains(c));
        out.push(Attachment { file_name, mime_type: mime, bytes, content_id, inline });
    }
    out
}

fn forwarded(message: &Message<'_>, depth: usize) -> Vec<ForwardedMail> {
    if depth >= MAX_FORWARD_DEPTH {
        return Vec::new();
    }
    message
        .attachments()
        .filter_map(|part| match &part.body {
            PartType::Message(m) => Some(ForwardedMail {
                from: m.from().and_then(first_mailbox),
                subject: clean_subject(m.subject()),
                message_id: m.message_id().and_then(clean_id),
                date: date(m),
                forwarded: forwarded(m, depth + 1),
            }),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Quoted forwards

/// Labels of the sender line in forward/reply header blocks, lower-case, in the languages of common clients.
const FROM_LABELS: &[&str] =
    &["from", "von", "de", "od", "från", "fra", "van", "da", "от", "差出人", "发件人", "寄件者"];
/// Labels of the lines around it; one of them must be within three lines for a `From:` line to count.
const BLOCK_LABELS: &[&str] = &[
    "date",
    "sent",
    "subject",
    "to",
    "cc",
    "datum",
    "gesendet",
    "betreff",
    "an",
    "envoyé",
    "objet",
    "à",
    "enviado",
    "asunto",
    "para",
    "fecha",
    "wysłano",
    "temat",
    "do",
    "data",
    "inviato",
    "oggetto",
    "skickat",
    "ämne",
    "till",
    "verzonden",
    "onderwerp",
    "aan",
    "отправлено",
    "тема",
    "кому",
    "дата",
    "件名",
    "宛先",
    "日時",
    "送信日時",
    "主题",
    "收件人",
    "日期",
];

/// Splits `Label: value` (also `Label : value`, `*Label:* value`, quoted with `>`); the label lower-cased.
fn header_line(line: &str) -> Option<(String, &str)> {
    let line = line.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
    let line = line.strip_prefix('*').unwrap_or(line);
    let (label, value) = line.split_once([':', '：'])?;
    let label = label.trim().trim_end_matches('*').trim();
    if label.is_empty() || label.chars().count() > 20 {
        return None;
    }
    let value = value.trim_start_matches('*').trim();
    Some((label.to_lowercase(), value))
}

fn is_label(line: &str, labels: &[&str]) -> bool {
    header_line(line).is_some_and(|(label, _)| labels.contains(&label.as_str()))
}

/// The sender of the first forwarded or quoted header block in `text`: a `From:`-like line with an address, next to
/// another header line (`Date:`, `Sent:`, `Subject:`, `To:` …) so a sentence starting "From: …" does not count.
pub fn quoted_from(text: &str) -> Option<Mailbox> {
    let lines: Vec<&str> = text.lines().take(MAX_FORWARD_SCAN_LINES).collect();
    for (i, line) in lines.iter().enumerate() {
        let Some((label, value)) = header_line(line) else { continue };
        if !FROM_LABELS.contains(&label.as_str()) {
            continue;
        }
        let near = lines[i.saturating_sub(3)..(i + 4).min(lines.len())].iter().any(|l| is_label(l, BLOCK_LABELS));
        if !near {
            continue;
        }
        // The first block decides: a name without an address (Outlook's address-book names) says nothing about
        // the deeper blocks.
        return mailbox_from_text(value);
    }
    None
}

/// `Jane Doe <jane@x.com>`, `"Doe, Jane" <jane@x.com>`, `Jane Doe [mailto:jane@x.com]`, `jane@x.com`,
/// `Jane <jane@x.com<mailto:jane@x.com>>` (Outlook's HTML turned into text).
fn mailbox_from_text(value: &str) -> Option<Mailbox> {
    let delimiter = |c: char| c.is_whitespace() || "<>[]()\"',;".contains(c);
    let at = value.find('@')?;
    let start = value[..at].rfind(delimiter).map_or(0, |p| p + 1);
    let end = value[at..].find(delimiter).map_or(value.len(), |p| at + p);
    let token = &value[start..end];
    let token = token.strip_prefix("mailto:").or_else(|| token.strip_prefix("MAILTO:")).unwrap_or(token);
    let address = crate::domain::text::normalize_email(token)?;
    let name_end = value.find(['<', '[']).unwrap_or(if start == 0 { 0 } else { start });
    let name = value[..name_end].trim().trim_matches(|c| c == '"' || c == '\'').trim();
    to_mailbox((!name.is_empty()).then_some(name), Some(&address))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(raw: &str) -> ParsedMail {
        parse(raw.as_bytes()).expect("test mail parses")
    }

    #[test]
    fn refuses_what_is_not_a_mail() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b" \r\n\t"), Err(ParseError::Empty));
        assert_eq!(parse(b"").unwrap_err().code(), "empty");
        assert_eq!(ParseError::NotAMessage.code(), "not_a_message");
        let big = vec![b'a'; MAX_MESSAGE_BYTES + 1];
        assert_eq!(parse(&big), Err(ParseError::TooLarge { size: MAX_MESSAGE_BYTES + 1, limit: MAX_MESSAGE_BYTES }));
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let alphabet: &[u8] =
            b"From:To:Content-Type: multipart/mixed; boundary=\"b\"\r\n--b--message/rfc822=?utf-8?B?<>@%{}#";
        for len in [1usize, 7, 64, 300, 2000] {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        if seed.is_multiple_of(5) {
                            (seed >> 8) as u8
                        } else {
                            alphabet[(seed as usize >> 3) % alphabet.len()]
                        }
                    })
                    .collect();
                let _ = parse(&bytes);
            }
        }
    }

    #[test]
    fn deeply_nested_forwards_are_bounded() {
        let mut raw = String::new();
        // 50,000 levels (2.5 MB): deep enough to overflow a stack if anything recursed per level.
        for _ in 0..50_000 {
            raw.push_str("From: a@b.c\r\nContent-Type: message/rfc822\r\n\r\n");
        }
        raw.push_str("From: last@b.c\r\nSubject: x\r\n\r\nbody\r\n");
        let parsed = parse(raw.as_bytes()).expect("parses");
        let mut depth = 0;
        let mut level = &parsed.forwarded;
        while let Some(f) = level.first() {
            depth += 1;
            level = &f.forwarded;
        }
        assert!(depth <= MAX_FORWARD_DEPTH);
    }

    #[test]
    fn addresses_ids_and_subject() {
        let m = mail(concat!(
            "From: \"Doe, Jane\" <Jane.Doe@Example.COM>\r\n",
            "To: Support <support@acme.test>, bob@example.com\r\n",
            "Cc: undisclosed-recipients:;\r\n",
            "Reply-To: <replies@example.com>\r\n",
            "Subject: =?UTF-8?Q?Dru=C5=BCyna?= printer\r\n\tbroken\r\n",
            "Message-ID: <abc@example.com>\r\n",
            "In-Reply-To: <x1@acme.test>\r\n",
            "References: <root@acme.test>\r\n <x1@acme.test> <root@acme.test>\r\n",
            "Date: Mon, 3 Jun 2024 10:00:00 +0200\r\n",
            "\r\n",
            "Hello\r\n",
        ));
        let from = m.from.expect("from");
        assert_eq!(from.address, "jane.doe@example.com");
        assert_eq!(from.name.as_deref(), Some("Doe, Jane"));
        assert_eq!(
            m.to.iter().map(|t| t.address.as_str()).collect::<Vec<_>>(),
            ["support@acme.test", "bob@example.com"]
        );
        assert!(m.cc.is_empty());
        assert_eq!(m.reply_to[0].address, "replies@example.com");
        assert_eq!(m.subject, "Drużyna printer broken");
        assert_eq!(m.message_id.as_deref(), Some("abc@example.com"));
        assert_eq!(m.in_reply_to, ["x1@acme.test"]);
        assert_eq!(m.references, ["root@acme.test", "x1@acme.test"]);
        assert_eq!(m.date.map(|d| d.to_rfc3339()).as_deref(), Some("2024-06-03T08:00:00+00:00"));
        assert_eq!(m.text, "Hello");
        assert_eq!(m.html, None);
        assert_eq!(m.headers.return_path, ReturnPath::Missing);
        assert_eq!(m.headers.content_type, "text/plain");
    }

    #[test]
    fn junk_headers_are_collected() {
        let m = mail(concat!(
            "Return-Path: <>\r\n",
            "Return-Path: <later@example.com>\r\n",
            "From: MAILER-DAEMON\r\n",
            "Auto-Submitted: Auto-Replied\r\n",
            "Precedence: BULK\r\n",
            "X-Auto-Response-Suppress: All\r\n",
            "X-Loop: support@acme.test\r\n",
            "X-Loop: other\r\n",
            "List-Id: <news.example.com>\r\n",
            "Delivered-To: Support+7@acme.test\r\n",
            "X-Original-To: support+7@acme.test\r\n",
            "Content-Type: multipart/report; report-type=Delivery-Status; boundary=\"b\"\r\n",
            "\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b--\r\n",
        ));
        let h = &m.headers;
        assert_eq!(h.return_path, ReturnPath::Empty);
        assert_eq!(h.auto_submitted.as_deref(), Some("auto-replied"));
        assert_eq!(h.precedence.as_deref(), Some("bulk"));
        assert_eq!(h.x_auto_response_suppress.as_deref(), Some("All"));
        assert_eq!(h.x_loop, ["support@acme.test", "other"]);
        assert_eq!(h.list_id.as_deref(), Some("<news.example.com>"));
        assert_eq!(h.delivered_to, ["support+7@acme.test"]);
        assert_eq!(h.content_type, "multipart/report");
        assert_eq!(h.report_type.as_deref(), Some("delivery-status"));
        assert_eq!(m.from.map(|f| f.address).as_deref(), Some("mailer-daemon"));
        assert_eq!(m.text, "failed");
    }

    #[test]
    fn html_is_sanitised_and_text_derived() {
        let m = mail(concat!(
            "From: a@example.com\r\n",
            "Content-Type: text/html; charset=utf-8\r\n",
            "\r\n",
            "<html><head><style>p{background:url(http://t.example/x)}</style><script>alert(1)</script></head>",
            "<body onload=\"steal()\"><p onclick=\"x()\">Hi <b>there</b></p>",
            "<a href=\"javascript:alert(1)\">js</a> <a href=\"https://ok.example/\">ok</a>",
            "<img src=\"https://tracker.example/p.gif\" alt=\"px\"><img src=\"//cdn.example/a.png\">",
            "<img src=\"cid:logo%40acme\"><iframe src=\"https://x.example\"></iframe>",
            "<form action=\"https://x.example\"><input name=q></form></body></html>",
        ));
        let html = m.html.expect("html");
        for bad in ["<script", "alert", "onload", "onclick", "javascript:", "tracker.example", "cdn.example", "<iframe"]
        {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        assert!(!html.contains("<style") && !html.contains("<form") && !html.contains("<input"), "{html}");
        assert!(html.contains(r#"<a href="https://ok.example/" rel="noopener noreferrer nofollow">ok</a>"#), "{html}");
        assert!(html.contains(r#"<img src="{{attachment:logo@acme}}">"#), "{html}");
        assert_eq!(m.remote_images, ["https://tracker.example/p.gif", "//cdn.example/a.png"]);
        assert!(m.text.contains("Hi there"), "{:?}", m.text);
        assert!(!m.text.contains("alert"), "{:?}", m.text);
    }

    #[test]
    fn deep_html_becomes_text() {
        // 100,000 nested elements: the sanitiser would take minutes; the fallback is linear.
        let raw = format!(
            "From: a@example.com\r\nContent-Type: text/html\r\n\r\n{}Hello <script>x()</script><b>there</b>",
            "<div>".repeat(100_000)
        );
        let m = mail(&raw);
        assert_eq!(m.html.as_deref(), Some("Hello there"));
        assert_eq!(m.text, "Hello there");
    }

    #[test]
    fn placeholders_are_filled_escaped() {
        let html = r#"<p><img src="{{attachment:a@b}}"><img src="{{attachment:gone}}"></p>{{attachment:a@b}}"#;
        let filled = fill_attachment_links(html, |cid| (cid == "a@b").then(|| "/files/1?x=\"1\"&y".to_owned()));
        assert_eq!(filled, r#"<p><img src="/files/1?x=&quot;1&quot;&amp;y"><img src=""></p>{{attachment:a@b}}"#);
        assert_eq!(fill_attachment_links("plain", |_| None), "plain");
        assert_eq!(fill_attachment_links(r#"x="{{attachment:oops"#, |_| None), r#"x="{{attachment:oops"#);
    }

    #[test]
    fn content_ids_and_percent_decoding() {
        assert_eq!(normalize_content_id(" <part1.abc@mail> "), Some("part1.abc@mail".into()));
        assert_eq!(normalize_content_id("<>"), None);
        assert_eq!(percent_decode("a%40b%2"), Some("a@b%2".into()));
        assert_eq!(percent_decode("%ff"), None);
        assert!(is_safe_cid("ii_lx1/2+3=@x.y"));
        assert!(!is_safe_cid("a\"b") && !is_safe_cid("a}}b") && !is_safe_cid("a b"));
    }

    #[test]
    fn file_names_lose_paths_and_controls() {
        assert_eq!(clean_file_name("../../etc/passwd"), Some("passwd".into()));
        assert_eq!(clean_file_name("C:\\Users\\x\\report.pdf"), Some("report.pdf".into()));
        assert_eq!(clean_file_name("a\u{0}b\r\n.txt"), Some("ab.txt".into()));
        assert_eq!(clean_file_name("Re: \"Q1\" <draft>|final?.pdf"), Some("Re_ _Q1_ _draft__final_.pdf".into()));
        assert_eq!(clean_file_name(".."), None);
        assert_eq!(clean_file_name("  "), None);
        assert_eq!(clean_file_name(&"x".repeat(500)).map(|n| n.chars().count()), Some(MAX_FILE_NAME_CHARS));
    }

    #[test]
    fn quoted_from_blocks() {
        let gmail = "FYI\n\n---------- Forwarded message ---------\nFrom: Jane Doe <jane@example.com>\nDate: Mon, 3 Jun 2024\nSubject: Printer\nTo: <alice@acme.test>\n";
        assert_eq!(
            quoted_from(gmail).map(|m| (m.address, m.name)),
            Some(("jane@example.com".into(), Some("Jane Doe".into())))
        );
        let outlook = "________________________________\nFrom: Doe, Jane [mailto:Jane@Example.com]\nSent: Monday, June 3, 2024 10:00 AM\nTo: Support\n";
        assert_eq!(quoted_from(outlook).map(|m| m.address).as_deref(), Some("jane@example.com"));
        let html_text = "*From:* Jane <jane@example.com<mailto:jane@example.com>>\n*Sent:* Monday\n";
        assert_eq!(quoted_from(html_text).map(|m| m.address).as_deref(), Some("jane@example.com"));
        let thunderbird = "-------- Forwarded Message --------\nSubject: \tPrinter\nDate: \tMon, 3 Jun 2024\nFrom: \tjane@example.com\n";
        assert_eq!(quoted_from(thunderbird).map(|m| (m.address, m.name)), Some(("jane@example.com".into(), None)));
        let german = "Von: Jan Kowalski <jan@example.pl>\nGesendet: Montag\nAn: support@acme.test\nBetreff: Drucker\n";
        assert_eq!(quoted_from(german).map(|m| m.address).as_deref(), Some("jan@example.pl"));
        let french = "De : Zoé <zoe@example.fr>\nEnvoyé : lundi\n";
        assert_eq!(quoted_from(french).map(|m| m.address).as_deref(), Some("zoe@example.fr"));
        let quoted = "> From: q@example.com\n> Date: today\n";
        assert_eq!(quoted_from(quoted).map(|m| m.address).as_deref(), Some("q@example.com"));
        // A sentence is not a header block; a name without an address says nothing.
        assert_eq!(quoted_from("From: the manual, page 3 (see a@b.com)\nThanks"), None);
        assert_eq!(quoted_from("From: Jane Doe\nSent: Monday\n\nFrom: deeper@example.com\nDate: x"), None);
    }
}
