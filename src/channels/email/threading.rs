//! Which ticket a mail belongs to (EM-6), and the headers that make our own mail thread (EO-1).
//!
//! Incoming, in email.md's order ("Threading, in order"):
//! 1. `{#1234}` anywhere in the subject (spaces inside the braces and any `Re:`/`AW:`/`Fwd:`/`SV:`/`Antw:` prefixes
//!    tolerated) names ticket 1234 — and the mail joins it only when its sender is that ticket's customer, one of
//!    its subscribers or one of its agents. Anyone else quoting the number gets a new ticket, and the headers are not
//!    consulted either: a stranger answering a forwarded thread must not slip into it (zammad/zammad#5064). A number
//!    no ticket has is treated as no number.
//! 2. Else `In-Reply-To`, then every id of `References` (newest first, since Outlook and others rewrite
//!    `In-Reply-To`: chatwoot/chatwoot#10028, zammad/zammad#5716), matched against the stored Message-IDs of our
//!    messages in and out. Last, the mail's own `Message-ID`: the same mail reaching a second connected mailbox
//!    joins the ticket its first copy made (reported as [`Via::SameMessageId`] so the connector can skip the copy).
//! 3. Else a new ticket.
//!
//! A ticket merged into another (zammad/zammad#377) answers for its survivor: every route ends in
//! [`TicketLookup::survivor`].
//!
//! Outgoing: a subject carrying exactly one `{#number}`, a unique `Message-ID` in our own domain (recognisable by
//! [`is_own_message_id`], which the junk rules use to drop our own mail coming back), and `In-Reply-To`/`References`
//! chaining the thread.

/// What the threading rules need to know about a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRef {
    pub id: i64,
    pub customer_email: String,
    pub subscriber_emails: Vec<String>,
    /// Agents who may answer this ticket by mail (the caller decides: assignee, team, channel access).
    pub agent_emails: Vec<String>,
}

impl TicketRef {
    /// Whether `email` is the customer, a subscriber or an agent of this ticket (case-insensitive).
    pub fn knows(&self, email: &str) -> bool {
        let email = email.trim();
        std::iter::once(&self.customer_email)
            .chain(&self.subscriber_emails)
            .chain(&self.agent_emails)
            .any(|known| known.trim().eq_ignore_ascii_case(email))
    }
}

/// The store, as threading sees it. Implemented by the connector over the repositories; by a table in tests.
pub trait TicketLookup {
    fn ticket_by_number(&self, number: u64) -> Option<TicketRef>;
    /// The ticket of a stored message (incoming or outgoing) with this Message-ID (no angle brackets).
    fn ticket_by_message_id(&self, message_id: &str) -> Option<i64>;
    /// The ticket that finally holds `ticket`'s messages: itself, or the end of its `merged_into` chain.
    fn survivor(&self, ticket: i64) -> i64;
}

/// Which header found the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    SubjectNumber,
    InReplyTo,
    References,
    /// The same mail was already stored (a copy from a second mailbox).
    SameMessageId,
}

impl Via {
    pub fn code(self) -> &'static str {
        match self {
            Via::SubjectNumber => "subject_number",
            Via::InReplyTo => "in_reply_to",
            Via::References => "references",
            Via::SameMessageId => "same_message_id",
        }
    }
}

/// Why a mail starts a new ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewReason {
    /// No known ticket number, no known Message-ID.
    NoMatch,
    /// The subject names `ticket`, but the sender is not its customer, a subscriber or an agent.
    SenderNotOnTicket { ticket: i64 },
}

impl NewReason {
    pub fn code(self) -> &'static str {
        match self {
            NewReason::NoMatch => "no_match",
            NewReason::SenderNotOnTicket { .. } => "sender_not_on_ticket",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    NewTicket(NewReason),
    /// Append to `ticket` (already the survivor); `merged_from` is the ticket the headers named when it was merged.
    Reply {
        ticket: i64,
        via: Via,
        merged_from: Option<i64>,
    },
}

/// Decides where a mail goes. `sender` is the From address (the connector may pass `Reply-To` or `Sender` rules of
/// its own, but email.md speaks of the sender); `None` never matches a ticket's people.
pub fn decide(
    subject: &str,
    sender: Option<&str>,
    in_reply_to: &[String],
    references: &[String],
    message_id: Option<&str>,
    lookup: &impl TicketLookup,
) -> Decision {
    let reply = |ticket: i64, via: Via| {
        let survivor = lookup.survivor(ticket);
        Decision::Reply { ticket: survivor, via, merged_from: (survivor != ticket).then_some(ticket) }
    };
    if let Some(ticket) = subject_ticket_number(subject).and_then(|n| lookup.ticket_by_number(n)) {
        return if sender.is_some_and(|s| ticket.knows(s)) {
            reply(ticket.id, Via::SubjectNumber)
        } else {
            Decision::NewTicket(NewReason::SenderNotOnTicket { ticket: ticket.id })
        };
    }
    for id in in_reply_to {
        if let Some(ticket) = lookup.ticket_by_message_id(id) {
            return reply(ticket, Via::InReplyTo);
        }
    }
    // The newest reference is the likeliest to be ours; all of them are tried.
    for id in references.iter().rev() {
        if let Some(ticket) = lookup.ticket_by_message_id(id) {
            return reply(ticket, Via::References);
        }
    }
    if let Some(ticket) = message_id.and_then(|id| lookup.ticket_by_message_id(id)) {
        return reply(ticket, Via::SameMessageId);
    }
    Decision::NewTicket(NewReason::NoMatch)
}

/// [`decide`] for a parsed mail.
pub fn decide_mail(mail: &super::ParsedMail, lookup: &impl TicketLookup) -> Decision {
    decide(
        &mail.subject,
        mail.from.as_ref().map(|f| f.address.as_str()),
        &mail.in_reply_to,
        &mail.references,
        mail.message_id.as_deref(),
        lookup,
    )
}

/// Every `{#n}` in a subject: `(byte range, n)`, tolerating spaces around `#` and the digits.
fn ticket_tags(subject: &str) -> Vec<(std::ops::Range<usize>, u64)> {
    let bytes = subject.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i + 1;
        let skip_spaces = |j: &mut usize| {
            while *j < bytes.len() && (bytes[*j] == b' ' || bytes[*j] == b'\t') {
                *j += 1;
            }
        };
        skip_spaces(&mut j);
        if bytes.get(j) != Some(&b'#') {
            i += 1;
            continue;
        }
        j += 1;
        skip_spaces(&mut j);
        let digits_start = j;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        let number = subject[digits_start..j].parse::<u64>().ok().filter(|_| j - digits_start <= 18);
        skip_spaces(&mut j);
        match (number, bytes.get(j)) {
            (Some(n), Some(b'}')) => {
                out.push((start..j + 1, n));
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// The first `{#n}` of a subject.
pub fn subject_ticket_number(subject: &str) -> Option<u64> {
    ticket_tags(subject).first().map(|(_, n)| *n)
}

/// `subject` with every `{#n}` removed and exactly one `{#number}` at the end.
pub fn outgoing_subject(subject: &str, number: u64) -> String {
    let mut clean = String::with_capacity(subject.len() + 12);
    let mut last = 0;
    for (range, _) in ticket_tags(subject) {
        clean.push_str(&subject[last..range.start]);
        last = range.end;
    }
    clean.push_str(&subject[last..]);
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.is_empty() { format!("{{#{number}}}") } else { format!("{clean} {{#{number}}}") }
}

/// Reply prefixes of common clients (English, German, Scandinavian, Dutch, French, Spanish/Italian, Polish, …).
const REPLY_PREFIXES: &[&str] = &["re", "aw", "sv", "vs", "antw", "antwort", "réf", "ref", "rif", "odp", "ynt", "atb"];

/// `subject` without leading reply prefixes (`Re:`, `RE[2]:`, `AW:`, `SV:`, `Antw:` …).
pub fn strip_reply_prefixes(subject: &str) -> &str {
    let mut rest = subject.trim_start();
    loop {
        let Some((head, tail)) = rest.split_once(':') else { return rest };
        // `RE[2]` and `Re(3)` count the replies.
        let word = head.trim().split(['[', '(']).next().unwrap_or_default().trim();
        if head.len() > 12 || !REPLY_PREFIXES.iter().any(|p| p.eq_ignore_ascii_case(word)) {
            return rest;
        }
        rest = tail.trim_start();
    }
}

/// The subject of our reply: one `Re: ` and the ticket number.
pub fn reply_subject(subject: &str, number: u64) -> String {
    outgoing_subject(&format!("Re: {}", strip_reply_prefixes(subject)), number)
}

/// Our Message-IDs start with this, so mail from other software on the same domain is not taken for ours.
pub const MESSAGE_ID_PREFIX: &str = "switchboard.";

/// A new, unique Message-ID (without angle brackets) for an outgoing message of ticket `number`:
/// `switchboard.<number>.<random>@<domain>`.
pub fn new_message_id(domain: &str, number: u64) -> String {
    format!("{MESSAGE_ID_PREFIX}{number}.{}@{}", uuid::Uuid::new_v4().simple(), domain.trim().to_lowercase())
}

/// Whether a Message-ID (with or without angle brackets) is one [`new_message_id`] made for `domain`.
pub fn is_own_message_id(id: &str, domain: &str) -> bool {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let Some((local, host)) = id.rsplit_once('@') else { return false };
    let domain = domain.trim();
    !domain.is_empty() && host.eq_ignore_ascii_case(domain) && local.starts_with(MESSAGE_ID_PREFIX)
}

/// Keep at most this many ids in `References`: the thread's root and the newest ones (RFC 5322 §3.6.4 allows
/// trimming; long lists break some servers' line limits).
pub const MAX_REFERENCES: usize = 20;

/// `In-Reply-To` and `References` of a message answering `parent` (its Message-ID and its own `References`; the
/// thread so far when the parent had none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
}

pub fn chain(parent_message_id: Option<&str>, parent_references: &[String]) -> Chain {
    let clean = |id: &str| {
        let id = id.trim().trim_start_matches('<').trim_end_matches('>').trim().to_owned();
        (!id.is_empty() && !id.contains(char::is_whitespace)).then_some(id)
    };
    let parent = parent_message_id.and_then(clean);
    let mut references: Vec<String> = Vec::new();
    for id in parent_references.iter().filter_map(|r| clean(r)).chain(parent.clone()) {
        if let Some(pos) = references.iter().position(|r| *r == id) {
            references.remove(pos);
        }
        references.push(id);
    }
    if references.len() > MAX_REFERENCES {
        let keep_from = references.len() - (MAX_REFERENCES - 1);
        references.drain(1..keep_from);
    }
    Chain { in_reply_to: parent, references }
}

/// A list of Message-IDs as a header value: `<a@x> <b@y>`.
pub fn format_ids(ids: &[String]) -> String {
    ids.iter().map(|id| format!("<{id}>")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Tickets 1 (#1001, jane), 2 (#1002, merged into 1), 3 (#1003, merged into 2).
    struct Table {
        tickets: HashMap<u64, TicketRef>,
        messages: HashMap<&'static str, i64>,
        merged: HashMap<i64, i64>,
    }

    fn table() -> Table {
        let ticket = |id: i64, customer: &str| TicketRef {
            id,
            customer_email: customer.into(),
            subscriber_emails: vec!["Bob@Example.com".into()],
            agent_emails: vec!["alice@acme.test".into()],
        };
        Table {
            tickets: [
                (1001, ticket(1, "jane@example.com")),
                (1002, ticket(2, "kim@example.com")),
                (1003, ticket(3, "lee@example.com")),
            ]
            .into(),
            messages: [("out-1@acme.test", 1), ("in-2@example.com", 2), ("out-3@acme.test", 3)].into(),
            merged: [(2, 1), (3, 1)].into(),
        }
    }

    impl TicketLookup for Table {
        fn ticket_by_number(&self, number: u64) -> Option<TicketRef> {
            self.tickets.get(&number).cloned()
        }
        fn ticket_by_message_id(&self, message_id: &str) -> Option<i64> {
            self.messages.get(message_id).copied()
        }
        fn survivor(&self, ticket: i64) -> i64 {
            self.merged.get(&ticket).copied().unwrap_or(ticket)
        }
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn d(subject: &str, sender: &str, irt: &[&str], refs: &[&str]) -> Decision {
        decide(subject, Some(sender), &ids(irt), &ids(refs), None, &table())
    }

    #[test]
    fn subject_numbers() {
        assert_eq!(subject_ticket_number("Printer {#1234}"), Some(1234));
        assert_eq!(subject_ticket_number("AW: SV: Antw: Re: Fwd: { # 77 } x"), Some(77));
        assert_eq!(subject_ticket_number("{#1}{#2}"), Some(1));
        assert_eq!(subject_ticket_number("{#} {#x1} {1} #1 {#12"), None);
        assert_eq!(subject_ticket_number("{{#5}}"), Some(5));
        assert_eq!(subject_ticket_number("{#99999999999999999999}"), None, "overflow is no number");
        assert_eq!(subject_ticket_number("Zażółć {#8} ✓"), Some(8));
        assert_eq!(subject_ticket_number(""), None);
    }

    #[test]
    fn subject_number_needs_a_known_sender() {
        let reply = |ticket, via, merged_from| Decision::Reply { ticket, via, merged_from };
        assert_eq!(d("Re: {#1001}", "JANE@example.com", &[], &[]), reply(1, Via::SubjectNumber, None));
        assert_eq!(d("Re: {#1001}", "bob@example.com", &[], &[]), reply(1, Via::SubjectNumber, None));
        assert_eq!(d("Re: {#1001}", "alice@acme.test", &[], &[]), reply(1, Via::SubjectNumber, None));
        // A stranger quoting the number gets a new ticket, even with headers pointing at the thread.
        assert_eq!(
            d("Re: {#1001}", "mallory@evil.example", &["out-1@acme.test"], &[]),
            Decision::NewTicket(NewReason::SenderNotOnTicket { ticket: 1 })
        );
        assert_eq!(
            decide("{#1001}", None, &[], &[], None, &table()),
            Decision::NewTicket(NewReason::SenderNotOnTicket { ticket: 1 })
        );
        // Unknown number: as if there were none.
        assert_eq!(d("Re: {#5555}", "x@example.com", &["out-1@acme.test"], &[]), reply(1, Via::InReplyTo, None));
        // Merged: the survivor, permission checked on the named ticket.
        assert_eq!(d("Re: {#1003}", "lee@example.com", &[], &[]), reply(1, Via::SubjectNumber, Some(3)));
    }

    #[test]
    fn headers_in_order() {
        let reply = |ticket, via, merged_from| Decision::Reply { ticket, via, merged_from };
        assert_eq!(
            d("Re: x", "x@example.com", &["out-1@acme.test"], &["out-3@acme.test"]),
            reply(1, Via::InReplyTo, None)
        );
        // Outlook rewrote In-Reply-To: keep going through References, newest first.
        assert_eq!(
            d("RE: x", "x@example.com", &["<garbage@outlook>"], &["unknown@a", "in-2@example.com", "nope@b"]),
            reply(1, Via::References, Some(2))
        );
        assert_eq!(
            d("x", "x@example.com", &[], &["out-3@acme.test", "in-2@example.com"]),
            reply(1, Via::References, Some(2))
        );
        assert_eq!(d("x", "x@example.com", &["nope"], &["nope2"]), Decision::NewTicket(NewReason::NoMatch));
        assert_eq!(
            decide("x", Some("x@example.com"), &[], &[], Some("in-2@example.com"), &table()),
            reply(1, Via::SameMessageId, Some(2))
        );
        assert_eq!(decide("x", None, &[], &[], None, &table()), Decision::NewTicket(NewReason::NoMatch));
    }

    #[test]
    fn codes() {
        assert_eq!(Via::References.code(), "references");
        assert_eq!(NewReason::SenderNotOnTicket { ticket: 1 }.code(), "sender_not_on_ticket");
    }

    #[test]
    fn outgoing_subjects() {
        assert_eq!(outgoing_subject("Printer broken", 1234), "Printer broken {#1234}");
        assert_eq!(outgoing_subject("Printer broken {#1234}", 1234), "Printer broken {#1234}");
        assert_eq!(outgoing_subject("Printer { # 1234 } broken", 1234), "Printer broken {#1234}");
        assert_eq!(outgoing_subject("Old {#9} thread", 1234), "Old thread {#1234}");
        assert_eq!(outgoing_subject("", 7), "{#7}");
        assert_eq!(reply_subject("AW: RE[2]: Sv: Printer {#12}", 12), "Re: Printer {#12}");
        assert_eq!(reply_subject("Fwd: Printer", 12), "Re: Fwd: Printer {#12}");
        assert_eq!(reply_subject("Reminder: pay", 3), "Re: Reminder: pay {#3}");
        assert_eq!(strip_reply_prefixes("Re:Re: x"), "x");
        assert_eq!(strip_reply_prefixes("Re:"), "");
    }

    #[test]
    fn message_ids() {
        let a = new_message_id("Mail.Acme.test", 1234);
        let b = new_message_id("mail.acme.test", 1234);
        assert_ne!(a, b);
        assert!(a.starts_with("switchboard.1234.") && a.ends_with("@mail.acme.test"), "{a}");
        assert!(!a.contains(char::is_whitespace) && !a.contains('<'));
        assert!(is_own_message_id(&a, "mail.acme.test"));
        assert!(is_own_message_id(&format!("<{a}>"), "MAIL.acme.test"));
        assert!(!is_own_message_id(&a, "acme.test"));
        assert!(!is_own_message_id("CAF=abc@mail.acme.test", "mail.acme.test"), "other software on our domain");
        assert!(!is_own_message_id("switchboard.1@mail.acme.test.evil", "mail.acme.test"));
        assert!(!is_own_message_id("switchboard.1", "mail.acme.test"));
        assert!(!is_own_message_id(&a, ""));
    }

    #[test]
    fn chains() {
        assert_eq!(chain(None, &[]), Chain { in_reply_to: None, references: vec![] });
        assert_eq!(
            chain(Some("<p@x>"), &ids(&["r@x", "<q@x>", "p@x"])),
            Chain { in_reply_to: Some("p@x".into()), references: ids(&["r@x", "q@x", "p@x"]) }
        );
        let long: Vec<String> = (0..30).map(|i| format!("m{i}@x")).collect();
        let c = chain(Some("new@x"), &long);
        assert_eq!(c.references.len(), MAX_REFERENCES);
        assert_eq!(c.references.first().map(String::as_str), Some("m0@x"), "the root stays");
        assert_eq!(c.references.last().map(String::as_str), Some("new@x"));
        assert_eq!(c.references[MAX_REFERENCES - 2], "m29@x");
        assert_eq!(format_ids(&ids(&["a@x", "b@y"])), "<a@x> <b@y>");
    }
}
