//! The Zalo Official Account protocol as data, with no I/O (issue #16, `docs/zalo.md`): the webhook signature,
//! what the acknowledgement needs from an event (its dedupe key and Zalo user), the events of ZL-4 parsed into one
//! type, how each becomes a message's text, and the shapes of the OA send, upload and OAuth calls.
//!
//! Facts it relies on (`../shared/channels/zalo.md`): ids are numeric *strings* and never parsed as numbers;
//! `timestamp` is a string of milliseconds; the signature is `mac=` + lowercase hex
//! `sha256(app_id + raw_body + timestamp + oa_secret_key)` with the **OA secret key**; a read receipt comes as
//! `user_seen_message` with `message.msg_ids` (an array) or as `user_read_message`.

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The header Zalo signs its webhooks in.
pub const SIGNATURE_HEADER: &str = "X-ZEvent-Signature";
/// The header Zalo numbers its retries in (0 or absent on the first delivery).
pub const RETRY_HEADER: &str = "num_retry";
/// Zalo's errors for an access token it does not take (invalid, expired): refresh and retry once. The list is
/// UNCONFIRMED beyond -216 and -220 (`docs/zalo.md`).
pub const TOKEN_ERRORS: &[i64] = &[-216, -220, -124];

/// The signature Zalo sends for `body`: lowercase hex of `sha256(app_id + body + timestamp + oa_secret_key)`.
pub fn signature(app_id: &str, body: &[u8], timestamp: &str, oa_secret_key: &str) -> String {
    let mut h = Sha256::new();
    h.update(app_id.as_bytes());
    h.update(body);
    h.update(timestamp.as_bytes());
    h.update(oa_secret_key.as_bytes());
    hex::encode(h.finalize())
}

/// Whether `header` (with or without `mac=`, hex in either case) is the signature of `body`; compared in
/// constant time.
pub fn signature_ok(app_id: &str, body: &[u8], timestamp: &str, oa_secret_key: &str, header: &str) -> bool {
    let given = header.trim();
    let given = given.strip_prefix("mac=").unwrap_or(given).to_ascii_lowercase();
    let expected = signature(app_id, body, timestamp, oa_secret_key);
    constant_time_eq(given.as_bytes(), expected.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A string field Zalo may also send as a number (ids and timestamps are documented as strings).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What the acknowledgement reads from an event before storing it: enough to check the signature, keep Zalo's
/// retries out and order the processing per Zalo user (empty for an event about no user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub event_name: String,
    /// The body's `timestamp`, as sent (part of the signature).
    pub timestamp: String,
    /// Unique per channel for one event: `{event_name}:{msg_id}` for events about one message, else
    /// `{event_name}:sha256:{hash of the body}` (a retry is sent with the same body).
    pub dedupe_key: String,
    /// The Zalo user the event is about (the processing order is kept per user).
    pub user_id: String,
}

/// Why an event is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the body is not a JSON object")]
    NotJson,
    #[error("the event has no {0}")]
    Missing(&'static str),
}

/// Read the envelope of a raw webhook body.
pub fn envelope(body: &[u8]) -> Result<Envelope, EnvelopeError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| EnvelopeError::NotJson)?;
    if !v.is_object() {
        return Err(EnvelopeError::NotJson);
    }
    let timestamp = text(&v["timestamp"]).ok_or(EnvelopeError::Missing("timestamp"))?;
    // A signed event of a kind this version does not know is still taken (and answered 200: Zalo unsubscribes
    // an app whose webhook keeps failing); the processor marks it processed.
    let event_name = text(&v["event_name"]).unwrap_or_default();
    let user_id = user_of(&event_name, &v).unwrap_or_default();
    let dedupe_key = match text(&v["message"]["msg_id"]) {
        Some(id) => format!("{event_name}:{id}"),
        None => format!("{event_name}:sha256:{}", hex::encode(Sha256::digest(body))),
    };
    Ok(Envelope { event_name, timestamp, dedupe_key, user_id })
}

/// The Zalo user an event is about: the sender of a user's message, the recipient of the OA's, the follower.
/// Anonymous users are keyed by their id and the conversation (see [`anonymous_key`]).
fn user_of(event_name: &str, v: &Value) -> Option<String> {
    if event_name.starts_with("anonymous_") {
        let sender = text(&v["sender"]["id"])?;
        return Some(anonymous_key(&sender, text(&v["message"]["conversation_id"]).as_deref()));
    }
    if event_name.starts_with("oa_send_") {
        return text(&v["recipient"]["id"]);
    }
    if event_name == "follow" || event_name == "unfollow" {
        return text(&v["follower"]["id"]);
    }
    text(&v["sender"]["id"])
}

/// The customer id of an anonymous Zalo user: `anon:{anonymous id}:{conversation id}` (UNCONFIRMED whether the
/// anonymous id alone is stable across conversations, so both are kept: a reply needs both).
pub fn anonymous_key(sender: &str, conversation_id: Option<&str>) -> String {
    format!("anon:{sender}:{}", conversation_id.unwrap_or_default())
}

/// The anonymous id and conversation id of an [`anonymous_key`].
pub fn parse_anonymous_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("anon:")?;
    rest.split_once(':')
}

/// What kind of message an event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Image,
    Gif,
    Sticker,
    Link,
    File,
    Audio,
    Video,
    Location,
    BusinessCard,
}

impl MessageKind {
    fn of(suffix: &str) -> Option<Self> {
        Some(match suffix {
            "text" => Self::Text,
            "image" => Self::Image,
            "gif" => Self::Gif,
            "sticker" => Self::Sticker,
            "link" => Self::Link,
            "file" => Self::File,
            "audio" => Self::Audio,
            "video" => Self::Video,
            "location" => Self::Location,
            "business_card" => Self::BusinessCard,
            _ => return None,
        })
    }

    /// What a message of this kind without text is called.
    fn label(self) -> &'static str {
        match self {
            Self::Text => "(no text)",
            Self::Image => "(image)",
            Self::Gif => "(GIF)",
            Self::Sticker => "(sticker)",
            Self::Link => "(link)",
            Self::File => "(file)",
            Self::Audio => "(audio)",
            Self::Video => "(video)",
            Self::Location => "(location)",
            Self::BusinessCard => "(contact card)",
        }
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    /// A Zalo user (their id for this OA, and their `user_id_by_app` when sent).
    User { id: String, by_app: Option<String> },
    /// An anonymous Zalo user (the id of [`anonymous_key`]).
    Anonymous { key: String },
    /// The OA itself (sent outside the product, or an echo of our own send), to this user.
    Oa { to: String },
}

/// One attachment of a message event, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Attachment {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub payload: Value,
}

/// A message event (`user_send_*`, `anonymous_send_*`, `oa_send_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageEvent {
    pub kind: MessageKind,
    pub author: Author,
    pub msg_id: String,
    pub text: String,
    pub quote_msg_id: Option<String>,
    pub attachments: Vec<Attachment>,
    /// `sender.admin_id` of an OA message sent from Zalo's own chat tool.
    pub admin_id: Option<String>,
}

/// An event of ZL-4, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Message(MessageEvent),
    /// `user_received_message`: our messages `msg_ids` reached the user's phone.
    Received {
        user: String,
        msg_ids: Vec<String>,
    },
    /// `user_seen_message` / `user_read_message`: the user read them.
    Seen {
        user: String,
        msg_ids: Vec<String>,
    },
    /// `follow` (true) / `unfollow` (false).
    Follow {
        user: String,
        by_app: Option<String>,
        following: bool,
        source: Option<String>,
    },
    /// An event this version does not handle (stored, then marked processed).
    Other(String),
}

/// Parse a stored event body (already signature-checked). `Err` names what is missing.
pub fn parse(body: &str) -> Result<Event, EnvelopeError> {
    let v: Value = serde_json::from_str(body).map_err(|_| EnvelopeError::NotJson)?;
    let name = text(&v["event_name"]).ok_or(EnvelopeError::Missing("event_name"))?;
    let m = &v["message"];
    let msg_ids = || -> Vec<String> {
        let mut ids: Vec<String> = match &m["msg_ids"] {
            Value::Array(a) => a.iter().filter_map(text).collect(),
            _ => Vec::new(),
        };
        if let Some(id) = text(&m["msg_id"]) {
            ids.push(id);
        }
        ids
    };
    let sender = || text(&v["sender"]["id"]).ok_or(EnvelopeError::Missing("sender.id"));
    match name.as_str() {
        "user_received_message" => return Ok(Event::Received { user: sender()?, msg_ids: msg_ids() }),
        "user_seen_message" | "user_read_message" => return Ok(Event::Seen { user: sender()?, msg_ids: msg_ids() }),
        "follow" | "unfollow" => {
            return Ok(Event::Follow {
                user: text(&v["follower"]["id"]).ok_or(EnvelopeError::Missing("follower.id"))?,
                by_app: text(&v["user_id_by_app"]),
                following: name == "follow",
                source: text(&v["source"]),
            });
        }
        _ => {}
    }
    let (author, suffix) = if let Some(s) = name.strip_prefix("user_send_") {
        (Author::User { id: sender()?, by_app: text(&v["user_id_by_app"]) }, s)
    } else if let Some(s) = name.strip_prefix("anonymous_send_") {
        (Author::Anonymous { key: anonymous_key(&sender()?, text(&m["conversation_id"]).as_deref()) }, s)
    } else if let Some(s) = name.strip_prefix("oa_send_") {
        (Author::Oa { to: text(&v["recipient"]["id"]).ok_or(EnvelopeError::Missing("recipient.id"))? }, s)
    } else {
        return Ok(Event::Other(name));
    };
    let Some(kind) = MessageKind::of(suffix) else { return Ok(Event::Other(name)) };
    let attachments = match &m["attachments"] {
        Value::Array(a) => a.iter().filter_map(|x| serde_json::from_value::<Attachment>(x.clone()).ok()).collect(),
        _ => Vec::new(),
    };
    Ok(Event::Message(MessageEvent {
        kind,
        author,
        msg_id: text(&m["msg_id"]).ok_or(EnvelopeError::Missing("message.msg_id"))?,
        text: m["text"].as_str().unwrap_or_default().to_owned(),
        quote_msg_id: text(&m["quote_msg_id"]),
        attachments,
        admin_id: text(&v["sender"]["admin_id"]),
    }))
}

/// A file to fetch from Zalo's URL into the attachment store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub url: String,
    /// The file name to show (the payload's `name`, else one made from the kind).
    pub name: String,
    /// Shown inline (images, GIFs, stickers) or as a download.
    pub inline: bool,
}

/// What a message event becomes: its text, its HTML (a location's map link) and the files to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub text: String,
    pub html: Option<String>,
    pub media: Vec<Media>,
}

/// The Google Maps link of a location (`https://www.google.com/maps?q=LAT,LON`).
pub fn map_link(lat: &str, lon: &str) -> String {
    format!("https://www.google.com/maps?q={lat},{lon}")
}

/// A coordinate as sent (string or number), if it is a number.
fn coordinate(v: &Value) -> Option<String> {
    let t = text(v)?;
    t.trim().parse::<f64>().ok().filter(|f| f.is_finite()).map(|_| t.trim().to_owned())
}

/// An http(s) URL, else `None` (what a payload says is not trusted further).
fn web_url(v: &Value) -> Option<String> {
    let u = text(v)?;
    let parsed = url::Url::parse(u.trim()).ok()?;
    matches!(parsed.scheme(), "http" | "https").then(|| parsed.to_string())
}

/// What a message event shows (ZL-4, CORE-9): images, GIFs and stickers inline; files, audio and video as
/// downloads; a link as its title and URL; a location as its coordinates with a map link; a business card as a
/// contact (its payload shape is UNCONFIRMED: the name, phone and link are read where Zalo's samples put them).
pub fn content(e: &MessageEvent) -> Content {
    let mut lines: Vec<String> = Vec::new();
    let said = e.text.trim();
    if !said.is_empty() {
        lines.push(said.to_owned());
    }
    let mut html = None;
    let mut media = Vec::new();
    for (i, a) in e.attachments.iter().enumerate() {
        let p = &a.payload;
        // A business card comes as a `link` attachment in Zalo's samples (UNCONFIRMED): the event names it.
        let kind = match e.kind {
            MessageKind::BusinessCard => MessageKind::BusinessCard,
            _ => MessageKind::of(a.kind.as_str()).unwrap_or(e.kind),
        };
        match kind {
            MessageKind::Image | MessageKind::Gif | MessageKind::Sticker => {
                if let Some(url) = web_url(&p["url"]).or_else(|| web_url(&p["thumbnail"])) {
                    let ext = if kind == MessageKind::Gif { "gif" } else { "jpg" };
                    let stem = match kind {
                        MessageKind::Sticker => "sticker",
                        MessageKind::Gif => "gif",
                        _ => "image",
                    };
                    let name = text(&p["name"]).unwrap_or_else(|| format!("{stem}-{}.{ext}", i + 1));
                    media.push(Media { url, name, inline: true });
                }
            }
            MessageKind::File | MessageKind::Audio | MessageKind::Video => {
                if let Some(url) = web_url(&p["url"]) {
                    let stem = match kind {
                        MessageKind::Audio => "audio",
                        MessageKind::Video => "video",
                        _ => "file",
                    };
                    let name = text(&p["name"]).unwrap_or_else(|| match text(&p["type"]) {
                        Some(ext) => format!("{stem}-{}.{ext}", i + 1),
                        None => format!("{stem}-{}", i + 1),
                    });
                    media.push(Media { url, name, inline: false });
                }
            }
            MessageKind::Link => {
                let title = text(&p["title"]).or_else(|| text(&p["description"]));
                let url = web_url(&p["url"]);
                if let Some(t) = title.filter(|t| !lines.iter().any(|l| l == t)) {
                    lines.push(t);
                }
                if let Some(u) = url.filter(|u| !said.contains(u.as_str())) {
                    lines.push(u);
                }
            }
            MessageKind::Location => {
                let c = &p["coordinates"];
                if let (Some(lat), Some(lon)) = (coordinate(&c["latitude"]), coordinate(&c["longitude"])) {
                    let link = map_link(&lat, &lon);
                    lines.push(format!("Location: {lat}, {lon}"));
                    lines.push(link.clone());
                    html = Some(format!(
                        "<p>Location: {lat}, {lon}<br><a href=\"{}\">Open in Google Maps</a></p>",
                        crate::domain::html::escape(&link)
                    ));
                }
            }
            MessageKind::BusinessCard => {
                let details: Value =
                    p["description"].as_str().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null);
                let name = text(&p["title"]).or_else(|| text(&p["name"]));
                let phone = text(&p["phone"]).or_else(|| text(&details["phone"]));
                let mut card = vec!["Contact card".to_owned()];
                if let Some(n) = name {
                    card.push(format!("Name: {n}"));
                }
                if let Some(ph) = phone {
                    card.push(format!("Phone: {ph}"));
                }
                if let Some(u) = web_url(&p["url"]) {
                    card.push(u);
                }
                lines.push(card.join("\n"));
            }
            MessageKind::Text => {}
        }
    }
    if lines.is_empty() {
        let label = match media.first() {
            Some(m) if !m.inline => format!("{} {}", e.kind.label(), m.name),
            _ => e.kind.label().to_owned(),
        };
        lines.push(label);
    }
    Content { text: lines.join("\n"), html, media }
}

/// The customer's name while Zalo's webhook does not tell it: "Zalo user …1234" (the id's last four characters).
pub fn placeholder_name(author: &Author) -> String {
    let tail = |id: &str| id.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect::<String>();
    match author {
        Author::User { id, .. } => format!("Zalo user …{}", tail(id)),
        Author::Anonymous { key } => {
            let id = parse_anonymous_key(key).map(|(a, _)| a).unwrap_or(key);
            format!("Anonymous Zalo user …{}", tail(id))
        }
        Author::Oa { to } => format!("Zalo user …{}", tail(to)),
    }
}

/// The `recipient` of an OA send for a customer's Zalo id: `{"user_id"}`, or for an anonymous user
/// `{"anonymous_id","conversation_id"}` (UNCONFIRMED for the v3 `cs` endpoint).
pub fn recipient(customer_key: &str) -> Value {
    match parse_anonymous_key(customer_key) {
        Some((anon, conv)) => json!({"anonymous_id": anon, "conversation_id": conv}),
        None => json!({"user_id": customer_key}),
    }
}

/// `POST /v3.0/oa/message/cs` body of a text message.
pub fn text_message(customer_key: &str, text: &str) -> Value {
    json!({"recipient": recipient(customer_key), "message": {"text": text}})
}

/// The body of an image message: a media template with the `attachment_id` of an uploaded image.
pub fn image_message(customer_key: &str, attachment_id: &str) -> Value {
    json!({"recipient": recipient(customer_key), "message": {"attachment": {"type": "template", "payload": {
        "template_type": "media", "elements": [{"media_type": "image", "attachment_id": attachment_id}]}}}})
}

/// The body of a file message: the `token` of an uploaded file.
pub fn file_message(customer_key: &str, token: &str) -> Value {
    json!({"recipient": recipient(customer_key), "message": {"attachment": {"type": "file", "payload": {"token": token}}}})
}

/// What an OA API call answered: `{"error":0,"message":…,"data":{…}}`, or a non-zero `error`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ApiAnswer {
    #[serde(default)]
    pub error: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub data: Value,
}

/// What the OAuth endpoint answered to a refresh: the new tokens (`expires_in` a string of seconds), or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    Tokens { access_token: String, refresh_token: String, expires_in: i64 },
    Refused { code: String, description: String },
}

/// Read a `POST /v4/oa/access_token` answer.
pub fn refreshed(body: &[u8]) -> Option<Refreshed> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let access = v["access_token"].as_str().filter(|s| !s.is_empty());
    let refresh = v["refresh_token"].as_str().filter(|s| !s.is_empty());
    if let (Some(access), Some(refresh)) = (access, refresh) {
        let expires_in = text(&v["expires_in"]).and_then(|s| s.parse::<i64>().ok()).unwrap_or(90_000);
        return Some(Refreshed::Tokens {
            access_token: access.to_owned(),
            refresh_token: refresh.to_owned(),
            expires_in: expires_in.clamp(60, 400 * 24 * 3600),
        });
    }
    let code = text(&v["error"]).or_else(|| text(&v["error_name"]))?;
    let description: String = v["error_description"]
        .as_str()
        .or(v["error_name"].as_str())
        .or(v["message"].as_str())
        .unwrap_or("the refresh was refused")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    Some(Refreshed::Refused { code, description })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"{"app_id":"360846524940903967","sender":{"id":"246845883529197922"},"user_id_by_app":"552177279717587730","recipient":{"id":"388613280878808645"},"event_name":"user_send_text","message":{"text":"message","msg_id":"96d3cdf3af150460909"},"timestamp":"154390853474"}"#;

    #[test]
    fn zl_3_signature_with_or_without_mac_and_in_constant_time() {
        let sig = signature("360846524940903967", TEXT.as_bytes(), "154390853474", "oa-key");
        assert_eq!(sig.len(), 64);
        assert!(sig.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let ok = |h: &str| signature_ok("360846524940903967", TEXT.as_bytes(), "154390853474", "oa-key", h);
        assert!(ok(&format!("mac={sig}")));
        assert!(ok(&sig));
        assert!(ok(&sig.to_ascii_uppercase()), "hex case does not matter");
        assert!(!ok(""));
        assert!(!ok("mac="));
        assert!(!ok(&format!("mac={}", &sig[..63])));
        // Signed with the app secret instead of the OA secret key, or over another body: refused.
        assert!(!signature_ok("360846524940903967", TEXT.as_bytes(), "154390853474", "app-secret", &sig));
        assert!(!signature_ok("360846524940903967", b"{}", "154390853474", "oa-key", &sig));
    }

    #[test]
    fn envelopes_key_retries_by_msg_id_and_other_events_by_body() {
        let e = envelope(TEXT.as_bytes()).unwrap();
        assert_eq!(e.event_name, "user_send_text");
        assert_eq!(e.timestamp, "154390853474");
        assert_eq!(e.dedupe_key, "user_send_text:96d3cdf3af150460909");
        assert_eq!(e.user_id, "246845883529197922");
        let oa = r#"{"event_name":"oa_send_text","sender":{"id":"oa"},"recipient":{"id":"u1"},"message":{"msg_id":"m1","text":"x"},"timestamp":"1"}"#;
        let e = envelope(oa.as_bytes()).unwrap();
        assert_eq!((e.user_id.as_str(), e.dedupe_key.as_str()), ("u1", "oa_send_text:m1"));
        let seen = r#"{"event_name":"user_seen_message","sender":{"id":"u1"},"recipient":{"id":"oa"},"message":{"msg_ids":["a","b"]},"timestamp":"1"}"#;
        let e = envelope(seen.as_bytes()).unwrap();
        assert!(e.dedupe_key.starts_with("user_seen_message:sha256:"), "{}", e.dedupe_key);
        assert_eq!(envelope(seen.as_bytes()).unwrap(), e, "the same body, the same key");
        let follow =
            r#"{"event_name":"follow","oa_id":"oa","follower":{"id":"u9"},"source":"oa_profile","timestamp":"2"}"#;
        assert_eq!(envelope(follow.as_bytes()).unwrap().user_id, "u9");
        let anon = r#"{"event_name":"anonymous_send_text","sender":{"id":"an1"},"recipient":{"id":"oa"},"message":{"msg_id":"m","text":"hi","conversation_id":"c7"},"timestamp":"3"}"#;
        assert_eq!(envelope(anon.as_bytes()).unwrap().user_id, "anon:an1:c7");
        assert_eq!(envelope(b"[]"), Err(EnvelopeError::NotJson));
        assert_eq!(envelope(b"nope"), Err(EnvelopeError::NotJson));
        assert_eq!(
            envelope(br#"{"event_name":"user_send_text","sender":{"id":"1"}}"#),
            Err(EnvelopeError::Missing("timestamp"))
        );
        let odd = envelope(br#"{"event_name":"change_oa_daily_quota","timestamp":"1"}"#).unwrap();
        assert_eq!(odd.user_id, "", "an event about no user is still taken");
    }

    #[test]
    fn zl_4_every_event_kind_parses() {
        let Event::Message(m) = parse(TEXT).unwrap() else { panic!() };
        assert_eq!(m.kind, MessageKind::Text);
        assert_eq!(
            m.author,
            Author::User { id: "246845883529197922".into(), by_app: Some("552177279717587730".into()) }
        );
        assert_eq!(content(&m).text, "message");
        let image = r#"{"event_name":"user_send_image","sender":{"id":"u"},"recipient":{"id":"oa"},"timestamp":"1","message":{"msg_id":"m2","text":"look","quote_msg_id":"m1","attachments":[{"type":"image","payload":{"thumbnail":"https://t.example/a.jpg","url":"https://i.example/a.jpg"}}]}}"#;
        let Event::Message(m) = parse(image).unwrap() else { panic!() };
        assert_eq!(m.quote_msg_id.as_deref(), Some("m1"));
        let c = content(&m);
        assert_eq!(c.text, "look");
        assert_eq!(
            c.media,
            vec![Media { url: "https://i.example/a.jpg".into(), name: "image-1.jpg".into(), inline: true }]
        );
        let sticker = r#"{"event_name":"user_send_sticker","sender":{"id":"u"},"timestamp":"1","message":{"msg_id":"m3","attachments":[{"type":"sticker","payload":{"id":"s1","url":"https://s.example/s.png"}}]}}"#;
        let Event::Message(m) = parse(sticker).unwrap() else { panic!() };
        let c = content(&m);
        assert_eq!(c.text, "(sticker)");
        assert!(c.media[0].inline, "a sticker is shown as an image");
        let file = r#"{"event_name":"user_send_file","sender":{"id":"u"},"timestamp":"1","message":{"msg_id":"m4","attachments":[{"type":"file","payload":{"url":"https://f.example/a.pdf","name":"a.pdf","size":"1024000","checksum":"x","type":"pdf"}}]}}"#;
        let Event::Message(m) = parse(file).unwrap() else { panic!() };
        let c = content(&m);
        assert_eq!(c.text, "(file) a.pdf");
        assert_eq!(c.media[0].name, "a.pdf");
        assert!(!c.media[0].inline);
        let location = r#"{"event_name":"user_send_location","sender":{"id":"u"},"timestamp":"1","message":{"msg_id":"m5","attachments":[{"type":"location","payload":{"coordinates":{"latitude":"10.76","longitude":"106.66"}}}]}}"#;
        let Event::Message(m) = parse(location).unwrap() else { panic!() };
        let c = content(&m);
        assert!(
            c.text.contains("10.76, 106.66") && c.text.contains("https://www.google.com/maps?q=10.76,106.66"),
            "{}",
            c.text
        );
        assert!(c.html.unwrap().contains("href=\"https://www.google.com/maps?q=10.76,106.66\""));
        let link = r#"{"event_name":"user_send_link","sender":{"id":"u"},"timestamp":"1","message":{"msg_id":"m6","text":"see","attachments":[{"type":"link","payload":{"url":"https://example.com/x","title":"Example","thumbnail":"https://example.com/t.jpg"}}]}}"#;
        let Event::Message(m) = parse(link).unwrap() else { panic!() };
        assert_eq!(content(&m).text, "see\nExample\nhttps://example.com/x");
        let card = r#"{"event_name":"user_send_business_card","sender":{"id":"u"},"timestamp":"1","message":{"msg_id":"m7","attachments":[{"type":"link","payload":{"title":"Nguyen Van A","description":"{\"phone\":\"0901234567\"}","url":"https://zalo.me/u"}}]}}"#;
        let Event::Message(m) = parse(card).unwrap() else { panic!() };
        let text = content(&m).text;
        assert!(
            text.contains("Contact card") && text.contains("Nguyen Van A") && text.contains("0901234567"),
            "{text}"
        );
        let oa = r#"{"event_name":"oa_send_text","sender":{"id":"oa","admin_id":"ad"},"recipient":{"id":"u1"},"timestamp":"1","message":{"msg_id":"m8","text":"from the phone"}}"#;
        let Event::Message(m) = parse(oa).unwrap() else { panic!() };
        assert_eq!(m.author, Author::Oa { to: "u1".into() });
        assert_eq!(m.admin_id.as_deref(), Some("ad"));
        let seen = r#"{"event_name":"user_seen_message","sender":{"id":"u1"},"timestamp":"1","message":{"msg_ids":["a","b"]}}"#;
        assert_eq!(parse(seen).unwrap(), Event::Seen { user: "u1".into(), msg_ids: vec!["a".into(), "b".into()] });
        let read =
            r#"{"event_name":"user_read_message","sender":{"id":"u1"},"timestamp":"1","message":{"msg_id":"a"}}"#;
        assert_eq!(parse(read).unwrap(), Event::Seen { user: "u1".into(), msg_ids: vec!["a".into()] });
        let got =
            r#"{"event_name":"user_received_message","sender":{"id":"u1"},"timestamp":"1","message":{"msg_id":"a"}}"#;
        assert_eq!(parse(got).unwrap(), Event::Received { user: "u1".into(), msg_ids: vec!["a".into()] });
        let unfollow = r#"{"event_name":"unfollow","oa_id":"oa","follower":{"id":"u1"},"user_id_by_app":"b","source":"oa_profile","timestamp":"1"}"#;
        assert_eq!(
            parse(unfollow).unwrap(),
            Event::Follow {
                user: "u1".into(),
                by_app: Some("b".into()),
                following: false,
                source: Some("oa_profile".into())
            }
        );
        assert_eq!(
            parse(r#"{"event_name":"user_submit_info","timestamp":"1"}"#).unwrap(),
            Event::Other("user_submit_info".into())
        );
    }

    #[test]
    fn only_web_urls_are_fetched() {
        let m = MessageEvent {
            kind: MessageKind::Image,
            author: Author::User { id: "1".into(), by_app: None },
            msg_id: "m".into(),
            text: String::new(),
            quote_msg_id: None,
            attachments: vec![Attachment { kind: "image".into(), payload: json!({"url": "file:///etc/passwd"}) }],
            admin_id: None,
        };
        assert!(content(&m).media.is_empty());
        assert_eq!(content(&m).text, "(image)");
    }

    #[test]
    fn names_recipients_and_token_answers() {
        assert_eq!(
            placeholder_name(&Author::User { id: "246845883529197922".into(), by_app: None }),
            "Zalo user …7922"
        );
        assert_eq!(
            placeholder_name(&Author::Anonymous { key: anonymous_key("abc9876", Some("c")) }),
            "Anonymous Zalo user …9876"
        );
        assert_eq!(recipient("123"), json!({"user_id": "123"}));
        assert_eq!(recipient("anon:a1:c2"), json!({"anonymous_id": "a1", "conversation_id": "c2"}));
        assert_eq!(text_message("1", "hi")["message"]["text"], "hi");
        assert_eq!(
            image_message("1", "att")["message"]["attachment"]["payload"]["elements"][0]["attachment_id"],
            "att"
        );
        assert_eq!(file_message("1", "tok")["message"]["attachment"]["payload"]["token"], "tok");
        assert_eq!(
            refreshed(br#"{"access_token":"a","refresh_token":"r","expires_in":"90000"}"#),
            Some(Refreshed::Tokens { access_token: "a".into(), refresh_token: "r".into(), expires_in: 90000 })
        );
        assert!(matches!(
            refreshed(br#"{"error":-14014,"error_name":"Invalid refresh token","error_description":"Refresh token is invalid"}"#),
            Some(Refreshed::Refused { .. })
        ));
        assert_eq!(refreshed(b"garbage"), None);
    }
}
