//! Notification templates (TP-1…TP-3, issue #18 item 4): which notifications have a template
//! ([`TemplateKind`]), the already-resolved values a template may show ([`MaskContext`]), and the one
//! renderer ([`render`]) that replaces every TP-2 mask and sanitises the result.
//!
//! Pure: the store resolves a real ticket into a [`MaskContext`] (`store::templates::context`), links come
//! from a [`LinkMaker`] (plain here, signed by the portal), and nothing here reads or sends anything.
//!
//! Rules (documented for admins in `docs/templates.md`):
//! - A mask is `#Name#` (letters, digits, `_`), or `#RatingLinks(prompt)#`; names match case-insensitively.
//!   A `#…#` that is not mask-shaped (a colour `#fff`, `Order #12 `) is plain text; a mask-shaped name the
//!   kind does not know is left as written and listed by [`unknown_masks`].
//! - Values are HTML-escaped into the body; what a mask renders as HTML (lists, links) is built here.
//! - The subject is plain text: values unescaped, line breaks turned into spaces (no header injection).
//! - The body is then sanitised with the project's one HTML policy ([`crate::domain::html::sanitize`]:
//!   ammonia's safe tag set, no scripts, styles, handlers or images that load, absolute links only), so a
//!   template can never carry more than message bodies may. The text part is derived from that HTML, each
//!   link followed by its address.
//! - Welcome mail (TP-3) knows only `#username` and `#URL` (a trailing `#` is optional); every other mask in
//!   it is left as written.

mod defaults;
#[cfg(test)]
mod tests;

pub use defaults::defaults;

use super::html::{self, escape};
use super::kinds::text_enum;

text_enum!(
    /// A notification that has a template (TP-1). The stored name is the API's path segment.
    TemplateKind {
        TicketConfirmation => "ticket_confirmation",
        TicketClosed => "ticket_closed",
        TicketUpdated => "ticket_updated",
        NewTicketAdmin => "new_ticket_admin",
        NewTicketCategory => "new_ticket_category",
        CustomerUpdate => "customer_update",
        TicketTaken => "ticket_taken",
        KbArticleChanged => "kb_article_changed",
        Welcome => "welcome",
        PasswordReset => "password_reset",
    }
);

impl TemplateKind {
    /// A short English title for the editor.
    pub fn title(self) -> &'static str {
        match self {
            TemplateKind::TicketConfirmation => "Ticket confirmation (to the submitter of an email ticket)",
            TemplateKind::TicketClosed => "Ticket closed (to the submitter)",
            TemplateKind::TicketUpdated => "Ticket updated (to the submitter and subscribers)",
            TemplateKind::NewTicketAdmin => "New ticket (to all admins)",
            TemplateKind::NewTicketCategory => "New ticket in a category (to its agents)",
            TemplateKind::CustomerUpdate => "Customer updated a ticket (to the category's agents)",
            TemplateKind::TicketTaken => "Ticket taken by another agent (to the category's agents)",
            TemplateKind::KbArticleChanged => "Knowledge-base article changed (to the category's agents)",
            TemplateKind::Welcome => "Welcome (to a new customer account)",
            TemplateKind::PasswordReset => "Password reset (to a customer)",
        }
    }

    /// Whether `#Recent_Attachments#` renders in this kind (TP-2: new-ticket and ticket-updated notifications).
    pub fn has_recent_attachments(self) -> bool {
        matches!(
            self,
            TemplateKind::TicketConfirmation
                | TemplateKind::TicketUpdated
                | TemplateKind::NewTicketAdmin
                | TemplateKind::NewTicketCategory
                | TemplateKind::CustomerUpdate
        )
    }

    /// Whether this notification goes to customers (the submitter, subscribers) rather than agents.
    pub fn to_customers(self) -> bool {
        matches!(
            self,
            TemplateKind::TicketConfirmation
                | TemplateKind::TicketClosed
                | TemplateKind::TicketUpdated
                | TemplateKind::Welcome
                | TemplateKind::PasswordReset
        )
    }

    /// Whether `#RatingLinks#` renders in this kind (TP-2, HD-12: only "ticket closed").
    pub fn has_rating_links(self) -> bool {
        self == TemplateKind::TicketClosed
    }
}

text_enum!(
    /// Who may see a custom field (HD-2). Until field definitions exist every field is public.
    FieldVisibility {
        Public => "public",
        Technicians => "technicians",
        Admins => "admins",
    }
);

text_enum!(
    /// Whom a notification goes to: an agent, a customer (the submitter or a customer subscriber), or a bare
    /// subscriber address.
    RecipientKind {
        Agent => "agent",
        Customer => "customer",
        Address => "address",
    }
);

/// The person one notification is rendered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub kind: RecipientKind,
    /// The agent's or customer's id; `None` for a bare address.
    pub id: Option<i64>,
    pub name: String,
    pub email: String,
}

/// Good / Average / Bad links of a customer satisfaction rating (HD-12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingLinks {
    pub good: String,
    pub average: String,
    pub bad: String,
}

/// The links a notification carries. The plain implementation is [`PlainLinks`]; the portal's signs them.
pub trait LinkMaker: Sync {
    /// Where the recipient opens the ticket (`#URL#`).
    fn ticket_url(&self, conversation_id: i64, recipient: &Recipient) -> String;
    /// The rating links for the submitter, if any (`#RatingLinks#`).
    fn rating_urls(&self, conversation_id: i64, customer_id: i64) -> Option<RatingLinks>;
    /// The "unsubscribe from this ticket" link for a subscriber address (`#Unsubscribe#`).
    fn unsubscribe_url(&self, conversation_id: i64, email: &str) -> Option<String>;
    /// Where the recipient downloads a file of the ticket (`#Attachments#`); `None`: the name without a link.
    fn attachment_url(&self, _conversation_id: i64, _attachment_id: i64, _recipient: &Recipient) -> Option<String> {
        None
    }
}

/// Links without signing: agents get the dashboard's ticket page, everyone else the portal's ticket
/// page; no rating or unsubscribe links.
#[derive(Debug, Clone)]
pub struct PlainLinks {
    /// `SWITCHBOARD_PUBLIC_URL`, e.g. `https://help.example.com` (a trailing `/` is ignored).
    pub public_url: String,
}

impl LinkMaker for PlainLinks {
    fn ticket_url(&self, conversation_id: i64, recipient: &Recipient) -> String {
        let base = self.public_url.trim_end_matches('/');
        match recipient.kind {
            RecipientKind::Agent => format!("{base}/tickets/{conversation_id}"),
            RecipientKind::Customer | RecipientKind::Address => format!("{base}/portal/tickets/{conversation_id}"),
        }
    }

    fn rating_urls(&self, _conversation_id: i64, _customer_id: i64) -> Option<RatingLinks> {
        None
    }

    fn unsubscribe_url(&self, _conversation_id: i64, _email: &str) -> Option<String> {
        None
    }

    /// Agents download through the API; everyone else is sent to the ticket's page (the portal shows its files).
    fn attachment_url(&self, conversation_id: i64, attachment_id: i64, recipient: &Recipient) -> Option<String> {
        let base = self.public_url.trim_end_matches('/');
        Some(match recipient.kind {
            RecipientKind::Agent => format!("{base}/api/v1/attachments/{attachment_id}"),
            RecipientKind::Customer | RecipientKind::Address => self.ticket_url(conversation_id, recipient),
        })
    }
}

/// The person who submitted the ticket (`#From#`, `#FirstName#`, `#Company#`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submitter {
    /// The full name, empty when unknown.
    pub full_name: String,
    /// The user name: the customer's email address, else their identity on the channel.
    pub user_name: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub company: String,
    pub department: String,
    pub location: String,
}

/// An agent (`#Technician#`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub email: String,
}

/// One entry of the ticket's log (`#Recent_messages#`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageEntry {
    pub author: String,
    /// Already formatted, e.g. `2026-12-07 11:56 UTC`.
    pub date: String,
    pub text: String,
}

/// A custom field of the ticket (`#Custom_Fields#`, `#CF_{id}#`, `#CF_VALUE_{id}#`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomField {
    pub id: String,
    pub name: String,
    pub visibility: FieldVisibility,
    pub value: String,
}

/// A file with its download link (`#Attachments#`, `#Recent_Attachments#`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachmentLink {
    pub name: String,
    pub url: String,
}

/// A subscriber of the ticket (`#Subscribers#`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscriber {
    /// The user name (the address when nothing better is known).
    pub name: String,
    pub email: String,
    pub is_technician: bool,
}

/// A knowledge-base article (`#Suggested_KB_articles#`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KbArticle {
    pub title: String,
    pub url: String,
}

/// Every value a template may show, already resolved (the store builds it from a real ticket).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskContext {
    /// The main text of the notification ("Ticket closed", "Ticket updated – {reply}").
    pub what_happened: String,
    pub conversation_id: i64,
    /// The ticket's number as people see it (`#TicketID#`).
    pub ticket_number: i64,
    pub subject: String,
    /// The category (team) name, empty when none.
    pub category: String,
    pub priority: String,
    /// The status's display name.
    pub status: String,
    /// The ticket's first message (`#Body#`).
    pub body: String,
    /// Where the recipient opens the ticket (`#URL#`; for welcome mail the portal or set-password page).
    pub url: String,
    /// Creation date, formatted (`#Date#`).
    pub date: String,
    pub due_date: Option<String>,
    pub time_spent: Option<String>,
    /// Where the ticket came from: `email`, `web`, `chat`, `mattermost`, `zalo`, `api` (`#Via#`).
    pub via: String,
    pub submitter: Submitter,
    /// Who did what is notified (`#Originator#`).
    pub originator: String,
    pub technician: Option<Person>,
    /// The names of whom this notification goes to (`#Recipients#`).
    pub recipients: Vec<String>,
    /// The ticket's public log, newest first.
    pub messages: Vec<MessageEntry>,
    pub custom_fields: Vec<CustomField>,
    pub attachments: Vec<AttachmentLink>,
    /// The files of the newest message (`#Recent_Attachments#`).
    pub recent_attachments: Vec<AttachmentLink>,
    pub suggested_kb: Vec<KbArticle>,
    pub subscribers: Vec<Subscriber>,
    /// Only in "ticket closed" to the submitter, never in CC mode (NT-11).
    pub rating: Option<RatingLinks>,
    pub unsubscribe: Option<String>,
}

/// A rendered notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// One line of plain text.
    pub subject: String,
    /// Sanitised HTML.
    pub html: String,
    /// The text part, derived from `html`.
    pub text: String,
}

/// How many messages `#Recent_messages#` shows; `#{N}Recent_messages#` shows N (at most [`MAX_RECENT`]).
pub const RECENT_MESSAGES: usize = 5;
/// The most messages `#{N}Recent_messages#` shows.
pub const MAX_RECENT: usize = 100;
/// How many characters `#What_Happened_Short#` keeps.
pub const SHORT_CHARS: usize = 100;
/// The longest mask name looked at (longer `#…#` runs are text).
const MAX_MASK_LEN: usize = 200;

/// The masks of TP-2, as the editor lists them (patterns in braces).
pub const TICKET_MASKS: &[&str] = &[
    "#What_Happened#",
    "#What_Happened_Short#",
    "#Category#",
    "#Subject#",
    "#From#",
    "#FromEmail#",
    "#FirstName#",
    "#LastName#",
    "#UserName#",
    "#Originator#",
    "#Priority#",
    "#Status#",
    "#Body#",
    "#URL#",
    "#Recipients#",
    "#Recent_messages#",
    "#{N}Recent_messages#",
    "#Most_recent_message#",
    "#Custom_Fields#",
    "#CF_{id}#",
    "#CF_VALUE_{id}#",
    "#Company#",
    "#Department#",
    "#Location#",
    "#Attachments#",
    "#TicketID#",
    "#Technician#",
    "#TechnicianEmail#",
    "#Date#",
    "#DueDate#",
    "#TimeSpent#",
    "#Via#",
    "#Recent_Attachments#",
    "#Suggested_KB_articles#",
    "#Subscribers#",
    "#SubscribersEmails#",
    "#NonTechSubscribers#",
    "#RatingLinks#",
    "#RatingLinks({prompt})#",
    "#Unsubscribe#",
];

/// The masks of welcome mail (TP-3).
pub const WELCOME_MASKS: &[&str] = &["#username", "#URL"];

/// The masks the editor offers for `kind`.
pub fn allowed_masks(kind: TemplateKind) -> Vec<&'static str> {
    match kind {
        TemplateKind::Welcome => WELCOME_MASKS.to_vec(),
        _ => TICKET_MASKS
            .iter()
            .copied()
            .filter(|m| kind.has_recent_attachments() || *m != "#Recent_Attachments#")
            .filter(|m| kind.has_rating_links() || !m.starts_with("#RatingLinks"))
            .collect(),
    }
}

/// A ticket mask, parsed from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mask {
    Simple(Simple),
    Recent(usize),
    Field { id: String, value_only: bool },
    Rating(Option<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Simple {
    WhatHappened,
    WhatHappenedShort,
    Category,
    Subject,
    From,
    FromEmail,
    FirstName,
    LastName,
    UserName,
    Originator,
    Priority,
    Status,
    Body,
    Url,
    Recipients,
    MostRecent,
    CustomFields,
    Company,
    Department,
    Location,
    Attachments,
    TicketId,
    Technician,
    TechnicianEmail,
    Date,
    DueDate,
    TimeSpent,
    Via,
    RecentAttachments,
    SuggestedKb,
    Subscribers,
    SubscribersEmails,
    NonTechSubscribers,
    Unsubscribe,
}

const SIMPLE: &[(&str, Simple)] = &[
    ("What_Happened", Simple::WhatHappened),
    ("What_Happened_Short", Simple::WhatHappenedShort),
    ("Category", Simple::Category),
    ("Subject", Simple::Subject),
    ("From", Simple::From),
    ("FromEmail", Simple::FromEmail),
    ("FirstName", Simple::FirstName),
    ("LastName", Simple::LastName),
    ("UserName", Simple::UserName),
    ("Originator", Simple::Originator),
    ("Priority", Simple::Priority),
    ("Status", Simple::Status),
    ("Body", Simple::Body),
    ("URL", Simple::Url),
    ("Recipients", Simple::Recipients),
    ("Most_recent_message", Simple::MostRecent),
    ("Custom_Fields", Simple::CustomFields),
    ("Company", Simple::Company),
    ("Department", Simple::Department),
    ("Location", Simple::Location),
    ("Attachments", Simple::Attachments),
    ("TicketID", Simple::TicketId),
    ("Technician", Simple::Technician),
    ("TechnicianEmail", Simple::TechnicianEmail),
    ("Date", Simple::Date),
    ("DueDate", Simple::DueDate),
    ("TimeSpent", Simple::TimeSpent),
    ("Via", Simple::Via),
    ("Recent_Attachments", Simple::RecentAttachments),
    ("Suggested_KB_articles", Simple::SuggestedKb),
    ("Subscribers", Simple::Subscribers),
    ("SubscribersEmails", Simple::SubscribersEmails),
    ("NonTechSubscribers", Simple::NonTechSubscribers),
    ("Unsubscribe", Simple::Unsubscribe),
];

/// Whether `name` (between two `#`) has the shape of a mask: word characters, or `RatingLinks(…)`.
fn mask_shaped(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_MASK_LEN {
        return false;
    }
    if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return true;
    }
    rating_prompt(name).is_some()
}

/// The prompt of `RatingLinks(prompt)`.
fn rating_prompt(name: &str) -> Option<&str> {
    let head = name.get(..12)?;
    if !head.eq_ignore_ascii_case("RatingLinks(") || !name.ends_with(')') {
        return None;
    }
    let prompt = &name[12..name.len() - 1];
    (!prompt.contains(['(', ')', '\n', '\r'])).then_some(prompt)
}

/// The ticket mask `name` stands for, if any.
fn parse_mask(name: &str) -> Option<Mask> {
    if let Some((_, simple)) = SIMPLE.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return Some(Mask::Simple(*simple));
    }
    if name.eq_ignore_ascii_case("Recent_messages") {
        return Some(Mask::Recent(RECENT_MESSAGES));
    }
    if name.eq_ignore_ascii_case("RatingLinks") {
        return Some(Mask::Rating(None));
    }
    if let Some(prompt) = rating_prompt(name) {
        return Some(Mask::Rating(Some(prompt.to_owned())));
    }
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && name[digits..].eq_ignore_ascii_case("Recent_messages") {
        let n: usize = name[..digits].parse().ok()?;
        return (1..=MAX_RECENT).contains(&n).then_some(Mask::Recent(n));
    }
    let upper = name.to_ascii_uppercase();
    for (prefix, value_only) in [("CF_VALUE_", true), ("CF_", false)] {
        if upper.starts_with(prefix) && name.len() > prefix.len() {
            return Some(Mask::Field { id: name[prefix.len()..].to_owned(), value_only });
        }
    }
    None
}

/// A piece of a template: text, or a mask-shaped `#name#` (with the whole token as written).
enum Piece<'a> {
    Text(&'a str),
    Mask { name: &'a str, token: &'a str },
}

/// Splits a ticket template into text and mask-shaped tokens.
fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut text_from = 0;
    let mut at = 0;
    while let Some(offset) = template[at..].find('#') {
        let open = at + offset;
        let Some(len) = template[open + 1..].find('#') else { break };
        let close = open + 1 + len;
        let name = &template[open + 1..close];
        if mask_shaped(name) {
            if text_from < open {
                out.push(Piece::Text(&template[text_from..open]));
            }
            out.push(Piece::Mask { name, token: &template[open..=close] });
            text_from = close + 1;
            at = close + 1;
        } else {
            // The closing `#` may open a real mask.
            at = close;
        }
    }
    if text_from < template.len() {
        out.push(Piece::Text(&template[text_from..]));
    }
    out
}

/// Splits a welcome template into text and its two masks (`#username`, `#URL`, each with an optional closing `#`).
fn welcome_pieces(template: &str) -> Vec<(Option<WelcomeMask>, &str)> {
    let mut out = Vec::new();
    let mut text_from = 0;
    let mut at = 0;
    while let Some(offset) = template[at..].find('#') {
        let open = at + offset;
        let rest = &template[open + 1..];
        let found = [("username", WelcomeMask::UserName), ("URL", WelcomeMask::Url)]
            .into_iter()
            .find(|(name, _)| rest.starts_with(name));
        match found {
            Some((name, mask)) => {
                let mut end = open + 1 + name.len();
                if template[end..].starts_with('#') {
                    end += 1;
                }
                if text_from < open {
                    out.push((None, &template[text_from..open]));
                }
                out.push((Some(mask), &template[open..end]));
                text_from = end;
                at = end;
            }
            None => at = open + 1,
        }
    }
    if text_from < template.len() {
        out.push((None, &template[text_from..]));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WelcomeMask {
    UserName,
    Url,
}

/// The masks in `template` that `kind` does not know, each as written, in order, once.
pub fn unknown_masks(kind: TemplateKind, template: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let text = if kind == TemplateKind::Welcome {
        // Welcome mail knows its two masks only: any other mask-shaped token is unknown.
        welcome_pieces(template).into_iter().filter(|(m, _)| m.is_none()).map(|(_, t)| t).collect::<Vec<_>>()
    } else {
        vec![template]
    };
    for part in text {
        for piece in pieces(part) {
            if let Piece::Mask { name, token } = piece {
                let known = kind != TemplateKind::Welcome && parse_mask(name).is_some();
                if !known && !out.iter().any(|t| t == token) {
                    out.push(token.to_owned());
                }
            }
        }
    }
    out
}

/// Escaped text with its line breaks as `<br>`.
fn multiline(text: &str) -> String {
    escape(text.trim()).replace("\r\n", "\n").replace('\n', "<br>")
}

/// The first [`SHORT_CHARS`] characters of `text`, its white space collapsed (never cut inside a character).
pub fn short(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed.chars().take(SHORT_CHARS).collect()
}

fn link(url: &str, label: &str) -> String {
    format!("<a href=\"{}\">{}</a>", escape(url), escape(label))
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    if items.is_empty() {
        return String::new();
    }
    format!("<ul>{}</ul>", items.into_iter().map(|i| format!("<li>{i}</li>")).collect::<String>())
}

fn entry(m: &MessageEntry) -> String {
    format!("<p><strong>{}</strong>, {}:<br>{}</p>", escape(&m.author), escape(&m.date), multiline(&m.text))
}

fn attachment_list(files: &[AttachmentLink]) -> String {
    list(files.iter().map(|f| if f.url.is_empty() { escape(&f.name) } else { link(&f.url, &f.name) }))
}

/// The default prompt of `#RatingLinks#`.
pub const RATING_PROMPT: &str = "Please rate your experience:";

/// How a mask is written into each part: HTML for the body, plain text for the subject.
struct Value {
    html: String,
    text: String,
}

impl Value {
    fn plain(text: impl Into<String>) -> Self {
        let text = text.into();
        Value { html: escape(&text), text }
    }

    fn rich(html: String, text: impl Into<String>) -> Self {
        Value { html, text: text.into() }
    }
}

fn join(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", ")
}

/// The value of a ticket mask for `kind` in `ctx`.
fn value(kind: TemplateKind, mask: &Mask, ctx: &MaskContext) -> Value {
    let s = &ctx.submitter;
    let simple = match mask {
        Mask::Recent(n) => {
            let shown = &ctx.messages[..ctx.messages.len().min(*n)];
            let text = shown.iter().map(|m| format!("{}, {}: {}", m.author, m.date, m.text)).collect::<Vec<_>>();
            return Value::rich(shown.iter().map(entry).collect(), text.join(" | "));
        }
        Mask::Field { id, value_only } => {
            let Some(f) = ctx.custom_fields.iter().find(|f| f.id.eq_ignore_ascii_case(id)) else {
                return Value::plain("");
            };
            return Value::plain(if *value_only { f.value.clone() } else { format!("{}: {}", f.name, f.value) });
        }
        Mask::Rating(prompt) => {
            let (Some(links), true) = (&ctx.rating, kind.has_rating_links()) else { return Value::plain("") };
            let prompt = prompt.as_deref().unwrap_or(RATING_PROMPT);
            let html = format!(
                "<p>{} {} | {} | {}</p>",
                escape(prompt),
                link(&links.good, "Good"),
                link(&links.average, "Average"),
                link(&links.bad, "Bad")
            );
            return Value::rich(html, prompt);
        }
        Mask::Simple(simple) => *simple,
    };
    match simple {
        Simple::WhatHappened => Value::rich(multiline(&ctx.what_happened), ctx.what_happened.clone()),
        Simple::WhatHappenedShort => Value::plain(short(&ctx.what_happened)),
        Simple::Category => Value::plain(ctx.category.clone()),
        Simple::Subject => Value::plain(ctx.subject.clone()),
        Simple::From => {
            Value::plain(if s.full_name.trim().is_empty() { s.user_name.clone() } else { s.full_name.clone() })
        }
        Simple::FromEmail => Value::plain(s.email.clone()),
        Simple::FirstName => Value::plain(s.first_name.clone()),
        Simple::LastName => Value::plain(s.last_name.clone()),
        Simple::UserName => Value::plain(s.user_name.clone()),
        Simple::Originator => Value::plain(ctx.originator.clone()),
        Simple::Priority => Value::plain(ctx.priority.clone()),
        Simple::Status => Value::plain(ctx.status.clone()),
        Simple::Body => Value::rich(multiline(&ctx.body), ctx.body.clone()),
        Simple::Url => Value::plain(ctx.url.clone()),
        Simple::Recipients => Value::plain(join(ctx.recipients.iter().cloned())),
        Simple::MostRecent => match ctx.messages.first() {
            Some(m) => Value::rich(entry(m), m.text.clone()),
            None => Value::plain(""),
        },
        Simple::CustomFields => {
            let public: Vec<&CustomField> =
                ctx.custom_fields.iter().filter(|f| f.visibility == FieldVisibility::Public).collect();
            let html = list(public.iter().map(|f| format!("{}: {}", escape(&f.name), escape(&f.value))));
            Value::rich(html, join(public.iter().map(|f| format!("{}: {}", f.name, f.value))))
        }
        Simple::Company => Value::plain(s.company.clone()),
        Simple::Department => Value::plain(s.department.clone()),
        Simple::Location => Value::plain(s.location.clone()),
        Simple::Attachments => {
            Value::rich(attachment_list(&ctx.attachments), join(ctx.attachments.iter().map(|a| a.name.clone())))
        }
        Simple::TicketId => Value::plain(ctx.ticket_number.to_string()),
        Simple::Technician => Value::plain(ctx.technician.as_ref().map(|t| t.name.clone()).unwrap_or_default()),
        Simple::TechnicianEmail => Value::plain(ctx.technician.as_ref().map(|t| t.email.clone()).unwrap_or_default()),
        Simple::Date => Value::plain(ctx.date.clone()),
        Simple::DueDate => Value::plain(ctx.due_date.clone().unwrap_or_default()),
        Simple::TimeSpent => Value::plain(ctx.time_spent.clone().unwrap_or_default()),
        Simple::Via => Value::plain(ctx.via.clone()),
        Simple::RecentAttachments if kind.has_recent_attachments() => Value::rich(
            attachment_list(&ctx.recent_attachments),
            join(ctx.recent_attachments.iter().map(|a| a.name.clone())),
        ),
        Simple::RecentAttachments => Value::plain(""),
        Simple::SuggestedKb => Value::rich(
            list(ctx.suggested_kb.iter().map(|a| link(&a.url, &a.title))),
            join(ctx.suggested_kb.iter().map(|a| a.title.clone())),
        ),
        Simple::Subscribers => Value::plain(join(ctx.subscribers.iter().map(|s| s.name.clone()))),
        Simple::SubscribersEmails => Value::plain(join(ctx.subscribers.iter().map(|s| s.email.clone()))),
        Simple::NonTechSubscribers => {
            Value::plain(join(ctx.subscribers.iter().filter(|s| !s.is_technician).map(|s| s.name.clone())))
        }
        Simple::Unsubscribe => match &ctx.unsubscribe {
            Some(url) => Value::rich(link(url, "Unsubscribe from this ticket"), url.clone()),
            None => Value::plain(""),
        },
    }
}

/// `template` with its masks replaced; `html` says which form of each value.
fn substitute(kind: TemplateKind, template: &str, ctx: &MaskContext, html: bool) -> String {
    let pick = |v: Value| if html { v.html } else { v.text };
    let mut out = String::with_capacity(template.len() * 2);
    if kind == TemplateKind::Welcome {
        for (mask, text) in welcome_pieces(template) {
            match mask {
                Some(WelcomeMask::UserName) => out.push_str(&pick(Value::plain(ctx.submitter.user_name.clone()))),
                Some(WelcomeMask::Url) => out.push_str(&pick(Value::plain(ctx.url.clone()))),
                None => out.push_str(text),
            }
        }
        return out;
    }
    for piece in pieces(template) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Mask { name, token } => match parse_mask(name) {
                Some(mask) => out.push_str(&pick(value(kind, &mask, ctx))),
                None => out.push_str(token),
            },
        }
    }
    out
}

/// Renders one notification: every mask replaced (unknown ones left as written), the body sanitised with the
/// project's HTML policy, the text part derived from it.
pub fn render(kind: TemplateKind, subject_template: &str, body_template: &str, ctx: &MaskContext) -> Rendered {
    let subject = substitute(kind, subject_template, ctx, false);
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let html = html::sanitize(&substitute(kind, body_template, ctx, true));
    let text = html::html_text(&links_spelled_out(&html));
    Rendered { subject, html, text: text.trim().to_owned() }
}

/// Sanitised HTML with each link's address written after it (` <https://…>`), so the text part keeps it.
fn links_spelled_out(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + 64);
    let mut rest = html;
    while let Some(start) = rest.find("<a ") {
        let Some(tag_end) = rest[start..].find('>').map(|e| start + e) else { break };
        let tag = &rest[start..tag_end];
        let href = tag.find("href=\"").and_then(|h| {
            let from = h + 6;
            tag[from..].find('"').map(|len| &tag[from..from + len])
        });
        let Some(close) = rest[tag_end..].find("</a>").map(|c| tag_end + c) else { break };
        let label = &rest[tag_end + 1..close];
        out.push_str(&rest[..close + 4]);
        if let Some(href) = href.filter(|h| *h != label) {
            out.push_str(" &lt;");
            out.push_str(href);
            out.push_str("&gt;");
        }
        rest = &rest[close + 4..];
    }
    out.push_str(rest);
    out
}

impl MaskContext {
    /// A made-up ticket, for previews on an install that has none yet.
    pub fn example(url: &str) -> Self {
        MaskContext {
            what_happened: "Ticket updated – Jane Doe wrote: The printer on floor 2 still jams.".into(),
            conversation_id: 0,
            ticket_number: 1,
            subject: "Printer jams".into(),
            category: "Hardware".into(),
            priority: "normal".into(),
            status: "Open".into(),
            body: "The printer on floor 2 jams on every page.".into(),
            url: url.into(),
            date: "2026-01-01 09:00 UTC".into(),
            via: "email".into(),
            submitter: Submitter {
                full_name: "Jane Doe".into(),
                user_name: "jane@example.com".into(),
                first_name: "Jane".into(),
                last_name: "Doe".into(),
                email: "jane@example.com".into(),
                company: "Example Ltd".into(),
                ..Submitter::default()
            },
            originator: "Jane Doe".into(),
            technician: Some(Person { name: "Sam Agent".into(), email: "sam@example.com".into() }),
            recipients: vec!["Jane Doe".into()],
            messages: vec![MessageEntry {
                author: "Jane Doe".into(),
                date: "2026-01-01 09:00 UTC".into(),
                text: "The printer on floor 2 jams on every page.".into(),
            }],
            ..MaskContext::default()
        }
    }
}
