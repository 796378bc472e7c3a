//! Sending mail (EO-1, EO-3) with lettre: [`build`] turns an [`OutgoingMail`] into RFC 5322 bytes (From with display
//! name, To, Cc, Reply-To, Subject, our Message-ID, In-Reply-To and References for threading, a text body and an
//! optional HTML alternative, attachments and inline images); [`send_raw`] hands prepared bytes to a server over
//! implicit TLS, required STARTTLS or plain SMTP, with optional login; [`send`] does both.
//!
//! Errors say whether a retry can help ([`SendError::is_transient`]): no connection, TLS trouble, a 4xx answer or
//! a refused login are transient (the outbox tries again; a wrong password is fixed by the admin, not by the mail),
//! a 5xx rejection of the mail or a mail that cannot be built is permanent.
//! Ids are passed without angle brackets (as `threading` makes them); brackets are added here.

use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials as SmtpCredentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Endpoint, TlsMode};

/// Each SMTP command (connect included) may take this long.
pub const SMTP_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// A whole send may take this long.
pub const SMTP_SEND_TIMEOUT: Duration = Duration::from_secs(300);

/// A mailbox: address and optional display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub email: String,
    pub name: Option<String>,
}

impl Address {
    pub fn new(email: impl Into<String>) -> Self {
        Address { email: email.into(), name: None }
    }

    pub fn named(name: impl Into<String>, email: impl Into<String>) -> Self {
        Address { email: email.into(), name: Some(name.into()) }
    }
}

/// A file to attach. With `content_id` it is an inline part (`cid:` in the HTML), otherwise a download.
#[derive(Debug, Clone)]
pub struct OutgoingAttachment {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
    pub content_id: Option<String>,
}

/// One mail to send. Ids without angle brackets.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub from: Address,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub reply_to: Option<Address>,
    pub subject: String,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<OutgoingAttachment>,
}

/// Where to send. `Debug` does not show the password.
#[derive(Clone)]
pub struct SmtpSettings {
    pub endpoint: Endpoint,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("endpoint", &self.endpoint)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A built mail: the bytes and the SMTP envelope (sender, recipients = To + Cc).
#[derive(Debug, Clone)]
pub struct BuiltMail {
    pub raw: Vec<u8>,
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// No connection, a dropped one, a timeout, a TLS failure, or an answer we could not read. Transient.
    #[error("cannot reach the SMTP server: {0}")]
    Connection(String),
    /// The server refused our login (or wants one). Transient: fixed in the channel's settings, not in the mail.
    #[error("SMTP authentication failed: {0}")]
    Auth(String),
    /// A 4xx answer (greylisting, a full queue). Transient.
    #[error("the SMTP server deferred the mail ({code}): {message}")]
    Deferred { code: u16, message: String },
    /// A 5xx answer: the server will not take this mail. Permanent.
    #[error("the SMTP server rejected the mail ({code}): {message}")]
    Rejected { code: u16, message: String },
    /// The mail cannot be built or addressed (a malformed address, no recipient). Permanent.
    #[error("the mail cannot be sent: {0}")]
    Invalid(String),
}

impl SendError {
    /// Whether trying again later can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Connection(_) | SendError::Auth(_) | SendError::Deferred { .. })
    }
}

/// Strip whitespace and angle brackets from an id; `None` when nothing sensible is left.
fn bare_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty() && !id.contains(|c: char| c.is_whitespace() || c == '<' || c == '>')).then(|| id.to_owned())
}

/// `<a@x> <b@y>` from ids with or without brackets; malformed ones are left out.
pub fn format_id_list(ids: &[String]) -> String {
    ids.iter().filter_map(|id| bare_id(id)).map(|id| format!("<{id}>")).collect::<Vec<_>>().join(" ")
}

fn mailbox(a: &Address) -> Result<Mailbox, SendError> {
    let email = a.email.trim().parse().map_err(|e| SendError::Invalid(format!("address {:?}: {e}", a.email)))?;
    let name = a.name.as_ref().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    Ok(Mailbox::new(name, email))
}

fn content_type(value: &str) -> ContentType {
    ContentType::parse(value).unwrap_or(ContentType::parse("application/octet-stream").expect("a valid content type"))
}

enum Readable {
    Single(SinglePart),
    Multi(MultiPart),
}

/// The RFC 5322 message and its envelope. Line ends in the bodies go out as CRLF; lettre picks each part's transfer
/// encoding (7bit, quoted-printable or base64) and encodes non-ASCII headers (RFC 2047).
pub fn build(mail: &OutgoingMail) -> Result<BuiltMail, SendError> {
    let message_id =
        bare_id(&mail.message_id).ok_or_else(|| SendError::Invalid(format!("Message-ID {:?}", mail.message_id)))?;
    let mut builder = lettre::Message::builder()
        .from(mailbox(&mail.from)?)
        .subject(mail.subject.clone())
        .message_id(Some(format!("<{message_id}>")));
    for to in &mail.to {
        builder = builder.to(mailbox(to)?);
    }
    for cc in &mail.cc {
        builder = builder.cc(mailbox(cc)?);
    }
    if let Some(reply_to) = &mail.reply_to {
        builder = builder.reply_to(mailbox(reply_to)?);
    }
    if let Some(parent) = mail.in_reply_to.as_deref().and_then(bare_id) {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    let references = format_id_list(&mail.references);
    if !references.is_empty() {
        builder = builder.references(references);
    }

    let text = SinglePart::plain(mail.text.clone());
    let (inline, files): (Vec<_>, Vec<_>) = mail.attachments.iter().partition(|a| a.content_id.is_some());
    // The readable part: plain text, or text and HTML as alternatives, with the HTML's inline images beside it in
    // multipart/related.
    let (readable, downloads): (Readable, Vec<&OutgoingAttachment>) = match &mail.html {
        // Inline images without an HTML body to show them are ordinary attachments.
        None => (Readable::Single(text), mail.attachments.iter().collect()),
        Some(html) => {
            let alternative = MultiPart::alternative().singlepart(text).singlepart(SinglePart::html(html.clone()));
            let readable = if inline.is_empty() {
                alternative
            } else {
                inline.iter().fold(MultiPart::related().multipart(alternative), |related, a| {
                    let cid = a.content_id.as_deref().and_then(bare_id).unwrap_or_default();
                    related.singlepart(
                        Attachment::new_inline_with_name(cid, a.filename.clone())
                            .body(a.data.clone(), content_type(&a.content_type)),
                    )
                })
            };
            (Readable::Multi(readable), files)
        }
    };
    let message = if downloads.is_empty() {
        match readable {
            Readable::Single(single) => builder.singlepart(single),
            Readable::Multi(multi) => builder.multipart(multi),
        }
    } else {
        let mixed = match readable {
            Readable::Single(single) => MultiPart::mixed().singlepart(single),
            Readable::Multi(multi) => MultiPart::mixed().multipart(multi),
        };
        let mixed = downloads.iter().fold(mixed, |mixed, a| {
            mixed.singlepart(Attachment::new(a.filename.clone()).body(a.data.clone(), content_type(&a.content_type)))
        });
        builder.multipart(mixed)
    }
    .map_err(|e| SendError::Invalid(e.to_string()))?;

    let envelope = message.envelope();
    Ok(BuiltMail {
        envelope_from: envelope.from().map(|a| a.to_string()).unwrap_or_default(),
        envelope_to: envelope.to().iter().map(|a| a.to_string()).collect(),
        raw: message.formatted(),
    })
}

/// The transport to one allowed address of the server: the host is resolved and judged by the outgoing-connection
/// policy here, lettre connects to the address it got, and TLS still verifies (and names, SNI) `ep.host`.
async fn transport(settings: &SmtpSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let ep = &settings.endpoint;
    let addr = ep
        .policy
        .resolve(&ep.host, ep.port)
        .await
        .map_err(|e| SendError::Connection(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| SendError::Connection(format!("{} has no address", ep.host)))?;
    let tls_parameters = || {
        TlsParameters::builder(ep.host.clone())
            .dangerous_accept_invalid_certs(ep.tls_insecure)
            .build_rustls()
            .map_err(|e| SendError::Connection(format!("TLS setup for {}: {e}", ep.host)))
    };
    let tls = match ep.tls {
        TlsMode::Implicit => Tls::Wrapper(tls_parameters()?),
        TlsMode::Starttls => Tls::Required(tls_parameters()?),
        TlsMode::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
        .port(addr.port())
        .tls(tls)
        .timeout(Some(SMTP_COMMAND_TIMEOUT));
    if let Some(username) = settings.username.as_ref().filter(|u| !u.is_empty()) {
        builder =
            builder.credentials(SmtpCredentials::new(username.clone(), settings.password.clone().unwrap_or_default()));
    }
    Ok(builder.build())
}

/// The reply codes that mean "log in (differently)" (RFC 4954 §6).
const AUTH_CODES: [u16; 4] = [530, 534, 535, 538];

fn classify(e: lettre::transport::smtp::Error) -> SendError {
    let message = e.to_string();
    if let Some(code) = e.status() {
        let code = u16::from(code);
        return if AUTH_CODES.contains(&code) || code == 454 && message.contains("uthenticat") {
            SendError::Auth(message)
        } else if e.is_transient() {
            SendError::Deferred { code, message }
        } else {
            SendError::Rejected { code, message }
        };
    }
    if message.contains("authentication") || message.contains("No compatible authentication mechanism") {
        return SendError::Auth(message);
    }
    if e.is_response() {
        // lettre's parse error quotes what the server sent; a server that does not speak SMTP may be anything.
        return SendError::Connection("the server did not answer like an SMTP server".into());
    }
    SendError::Connection(message)
}

/// Send prepared bytes to the envelope's recipients.
pub async fn send_raw(
    settings: &SmtpSettings,
    envelope_from: &str,
    envelope_to: &[String],
    raw: &[u8],
) -> Result<(), SendError> {
    let from = envelope_from
        .trim()
        .parse()
        .map_err(|e| SendError::Invalid(format!("envelope sender {envelope_from:?}: {e}")))?;
    let to = envelope_to
        .iter()
        .map(|t| t.trim().parse().map_err(|e| SendError::Invalid(format!("recipient {t:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let envelope =
        lettre::address::Envelope::new(Some(from), to).map_err(|e| SendError::Invalid(format!("envelope: {e}")))?;
    let transport = transport(settings).await?;
    match tokio::time::timeout(SMTP_SEND_TIMEOUT, transport.send_raw(&envelope, raw)).await {
        Ok(Ok(_response)) => Ok(()),
        Ok(Err(e)) => Err(classify(e)),
        Err(_) => Err(SendError::Connection(format!("sending took longer than {} s", SMTP_SEND_TIMEOUT.as_secs()))),
    }
}

/// Build and send one mail.
pub async fn send(settings: &SmtpSettings, mail: &OutgoingMail) -> Result<(), SendError> {
    let built = build(mail)?;
    send_raw(settings, &built.envelope_from, &built.envelope_to, &built.raw).await
}

#[cfg(test)]
mod tests {
    use mail_parser::MimeHeaders;

    use super::*;

    fn mail() -> OutgoingMail {
        OutgoingMail {
            from: Address::named("Acme Support", "support@acme.test"),
            to: vec![Address::named("Jane Müller", "jane@example.test")],
            cc: vec![Address::new("boss@example.test")],
            reply_to: Some(Address::new("support+7@acme.test")),
            subject: "Re: Broken printer [#7]".into(),
            message_id: "switchboard.7.abc@acme.test".into(),
            in_reply_to: Some("<orig-1@example.test>".into()),
            references: vec!["root@example.test".into(), "<orig-1@example.test>".into()],
            text: "Hello Jane,\n\nwe are on it.\n".into(),
            html: None,
            attachments: vec![],
        }
    }

    fn parsed(built: &BuiltMail) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(&built.raw).expect("parsable")
    }

    /// The text body as sent, with the CRLF line ends of the wire read back as `\n` and trailing ones ignored.
    fn text(m: &mail_parser::Message<'_>) -> String {
        m.body_text(0).unwrap_or_default().replace("\r\n", "\n").trim_end().to_owned()
    }

    #[test]
    fn threading_headers_and_envelope() {
        let built = build(&mail()).unwrap();
        let m = parsed(&built);
        assert_eq!(m.message_id(), Some("switchboard.7.abc@acme.test"));
        assert_eq!(m.in_reply_to().as_text(), Some("orig-1@example.test"));
        let refs: Vec<&str> = m.references().as_text_list().unwrap_or_default().iter().map(|r| r.as_ref()).collect();
        assert_eq!(refs, vec!["root@example.test", "orig-1@example.test"]);
        assert_eq!(m.subject(), Some("Re: Broken printer [#7]"));
        assert_eq!(m.from().unwrap().first().unwrap().name(), Some("Acme Support"));
        assert_eq!(m.to().unwrap().first().unwrap().name(), Some("Jane Müller"));
        assert_eq!(text(&m), "Hello Jane,\n\nwe are on it.");
        assert!(m.html_bodies().all(|p| p.is_text()), "plain text only");
        assert_eq!(built.envelope_from, "support@acme.test");
        assert_eq!(built.envelope_to, vec!["jane@example.test", "boss@example.test"]);
        let raw = String::from_utf8_lossy(&built.raw);
        assert!(raw.contains("Reply-To: support+7@acme.test"), "{raw}");
    }

    #[test]
    fn html_alternative_with_inline_image_and_attachment() {
        let mut m = mail();
        m.html = Some("<p>Hello <img src=\"cid:logo@acme.test\"></p>".into());
        m.attachments = vec![
            OutgoingAttachment {
                filename: "logo.png".into(),
                content_type: "image/png".into(),
                data: vec![0x89, b'P', b'N', b'G'],
                content_id: Some("<logo@acme.test>".into()),
            },
            OutgoingAttachment {
                filename: "invoice.pdf".into(),
                content_type: "application/pdf".into(),
                data: b"%PDF-1.4".to_vec(),
                content_id: None,
            },
        ];
        let built = build(&m).unwrap();
        let p = parsed(&built);
        assert_eq!(p.body_html(0).as_deref(), Some("<p>Hello <img src=\"cid:logo@acme.test\"></p>"));
        assert_eq!(text(&p), "Hello Jane,\n\nwe are on it.");
        let names: Vec<_> = p.attachments().filter_map(|a| a.attachment_name()).collect();
        assert!(names.contains(&"invoice.pdf"), "{names:?}");
        let logo = p.parts.iter().find(|part| part.content_id() == Some("logo@acme.test")).expect("inline part");
        assert_eq!(logo.contents(), &[0x89, b'P', b'N', b'G']);
        let raw = String::from_utf8_lossy(&built.raw);
        assert!(raw.contains("multipart/related") && raw.contains("multipart/alternative"), "{raw}");
    }

    #[test]
    fn bad_addresses_are_permanent() {
        let mut m = mail();
        m.to = vec![Address::new("not an address")];
        let e = build(&m).unwrap_err();
        assert!(matches!(e, SendError::Invalid(_)) && !e.is_transient(), "{e:?}");
        let mut m = mail();
        m.message_id = "<>".into();
        assert!(matches!(build(&m), Err(SendError::Invalid(_))));
    }

    #[test]
    fn id_lists() {
        let ids = vec!["a@x".to_owned(), " <b@y> ".to_owned(), "".to_owned(), "c d@z".to_owned()];
        assert_eq!(format_id_list(&ids), "<a@x> <b@y>");
    }

    #[test]
    fn transient_or_permanent() {
        assert!(SendError::Connection("refused".into()).is_transient());
        assert!(SendError::Deferred { code: 451, message: String::new() }.is_transient());
        assert!(SendError::Auth("535".into()).is_transient());
        assert!(!SendError::Rejected { code: 550, message: String::new() }.is_transient());
        assert!(!SendError::Invalid(String::new()).is_transient());
    }

    #[test]
    fn settings_debug_hides_the_password() {
        let s = SmtpSettings {
            endpoint: Endpoint {
                host: "smtp.test".into(),
                port: 587,
                tls: TlsMode::Starttls,
                tls_insecure: false,
                policy: Default::default(),
            },
            username: Some("desk".into()),
            password: Some("hunter2".into()),
        };
        let shown = format!("{s:?}");
        assert!(shown.contains("desk") && !shown.contains("hunter2"), "{shown}");
    }
}
