//! What a mail asks for beyond its text: email commands in a reply's subject (EM-13), a category chosen by
//! plus-addressing (EM-7), and the original sender of a mail an agent forwarded (EM-11).
//!
//! These only read; the connector decides whether they apply (commands only on replies to an existing ticket,
//! categories only on new tickets, forwarding only with the setting on).

use super::parse::{Mailbox, ParsedMail};

/// An email command (EM-13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `#tech#`: the reply is for technicians (agents) only.
    Tech,
    /// `#close#`: close the ticket.
    Close,
    /// `#unsubscribe#` or `#unsub#`: the sender stops following the ticket.
    Unsubscribe,
}

impl Command {
    pub fn code(self) -> &'static str {
        match self {
            Command::Tech => "tech",
            Command::Close => "close",
            Command::Unsubscribe => "unsubscribe",
        }
    }
}

/// Tokens, longest first so `#unsubscribe#` is not read as something shorter.
const TOKENS: &[(&str, Command)] = &[
    ("#unsubscribe#", Command::Unsubscribe),
    ("#unsub#", Command::Unsubscribe),
    ("#close#", Command::Close),
    ("#tech#", Command::Tech),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectCommands {
    /// Each command once, in the order of first appearance.
    pub commands: Vec<Command>,
    /// The subject without the tokens, whitespace collapsed.
    pub subject: String,
}

/// Finds `#tech#`, `#close#`, `#unsubscribe#`, `#unsub#` (any case) in a subject and removes them.
pub fn extract_commands(subject: &str) -> SubjectCommands {
    let mut commands = Vec::new();
    let mut clean = String::with_capacity(subject.len());
    let mut i = 0;
    let bytes = subject.as_bytes();
    'scan: while i < bytes.len() {
        if bytes[i] == b'#' {
            for (token, command) in TOKENS {
                // Tokens are ASCII, so a match starts and ends on character boundaries.
                if bytes.get(i..i + token.len()).is_some_and(|w| w.eq_ignore_ascii_case(token.as_bytes())) {
                    if !commands.contains(command) {
                        commands.push(*command);
                    }
                    clean.push(' ');
                    i += token.len();
                    continue 'scan;
                }
            }
        }
        let ch_len = subject[i..].chars().next().map_or(1, char::len_utf8);
        clean.push_str(&subject[i..i + ch_len]);
        i += ch_len;
    }
    SubjectCommands { commands, subject: clean.split_whitespace().collect::<Vec<_>>().join(" ") }
}

/// The category of a plus-address of our mailbox: `support+12-billing@acme.test` (or `support+12@…`) → 12 when
/// `mailbox` is `support@acme.test`. Local part and domain compared without regard to case.
pub fn plus_category(recipient: &str, mailbox: &str) -> Option<i64> {
    let (local, domain) = recipient.trim().trim_start_matches('<').trim_end_matches('>').rsplit_once('@')?;
    let (our_local, our_domain) = mailbox.trim().rsplit_once('@')?;
    let (base, tag) = local.split_once('+')?;
    if !base.eq_ignore_ascii_case(our_local) || !domain.eq_ignore_ascii_case(our_domain) {
        return None;
    }
    let id = tag.split_once('-').map_or(tag, |(id, _)| id);
    if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

/// The category a new ticket from this mail goes to by plus-addressing: the first of `To`, `Cc`, then the
/// envelope recipients (`Delivered-To`, `X-Original-To`: the only trace of a `Bcc`) that is a plus-address of one of
/// our mailboxes.
pub fn route_category(mail: &ParsedMail, mailboxes: &[String]) -> Option<i64> {
    let recipients = mail
        .to
        .iter()
        .chain(&mail.cc)
        .map(|m| m.address.as_str())
        .chain(mail.headers.delivered_to.iter().map(String::as_str));
    recipients
        .flat_map(|r| mailboxes.iter().map(move |m| (r, m)))
        .find_map(|(recipient, mailbox)| plus_category(recipient, mailbox))
}

/// Forward prefixes EM-11 accepts: `Fwd:` and `Fw:` (EM-11), and the same word in German (`WG:`), French (`TR:`),
/// Spanish (`RV:`) and Dutch (`Doorst:`) Outlook.
const FORWARD_PREFIXES: &[&str] = &["fwd", "fw", "wg", "tr", "rv", "doorst"];

/// Whether a subject starts with a forward prefix (after any `[tag]` a gateway put first).
pub fn is_forward_subject(subject: &str) -> bool {
    let mut s = subject.trim_start();
    if s.starts_with('[')
        && let Some(end) = s.find(']')
    {
        s = s[end + 1..].trim_start();
    }
    s.split_once(':').is_some_and(|(word, _)| FORWARD_PREFIXES.iter().any(|p| p.eq_ignore_ascii_case(word.trim())))
}

/// EM-11: when a registered agent forwards a mail (`Fwd:`/`Fw:` subject), the ticket belongs to the original
/// sender — the `From` of the attached message, else of the quoted forward block. `None` when the mail is not an
/// agent's forward, no original sender is found, or the original sender is the agent (or another agent) again.
pub fn forwarded_original_sender(mail: &ParsedMail, is_agent: impl Fn(&str) -> bool) -> Option<Mailbox> {
    let sender = mail.from.as_ref()?;
    if !is_forward_subject(&mail.subject) || !is_agent(&sender.address) {
        return None;
    }
    let attached = mail.forwarded.iter().find_map(|f| f.from.clone());
    let original = attached.or_else(|| mail.quoted_from.clone())?;
    (!is_agent(&original.address) && original.address != sender.address).then_some(original)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::email::parse::parse;

    #[test]
    fn commands_in_subjects() {
        let c = extract_commands("Re: Printer {#12} #close#");
        assert_eq!(c.commands, [Command::Close]);
        assert_eq!(c.subject, "Re: Printer {#12}");
        let c = extract_commands("#TECH# Re: #Unsub# x #tech# #UNSUBSCRIBE#");
        assert_eq!(c.commands, [Command::Tech, Command::Unsubscribe]);
        assert_eq!(c.subject, "Re: x");
        let c = extract_commands("Zażółć#close#gęślą");
        assert_eq!(c.commands, [Command::Close]);
        assert_eq!(c.subject, "Zażółć gęślą");
        for none in ["#closed#", "# close #", "#clos", "issue #12", "##", ""] {
            let c = extract_commands(none);
            assert!(c.commands.is_empty(), "{none}");
        }
        assert_eq!(extract_commands("#tec#close#").commands, [Command::Close]);
        assert_eq!(Command::Unsubscribe.code(), "unsubscribe");
    }

    #[test]
    fn plus_addresses() {
        let ours = "support@acme.test";
        assert_eq!(plus_category("support+12-billing@acme.test", ours), Some(12));
        assert_eq!(plus_category("Support+7@ACME.test", ours), Some(7));
        assert_eq!(plus_category("<support+7-x-y@acme.test>", ours), Some(7));
        for no in [
            "support@acme.test",
            "support+billing@acme.test",
            "support+-1@acme.test",
            "support+12-billing@other.test",
            "sales+12@acme.test",
            "support+99999999999999999999@acme.test",
            "support+",
        ] {
            assert_eq!(plus_category(no, ours), None, "{no}");
        }
        assert_eq!(plus_category("support+1@acme.test", "not-an-address"), None);
    }

    #[test]
    fn category_routing_looks_at_to_cc_and_envelope() {
        let mailboxes = ["help@acme.test".to_owned(), "support@acme.test".to_owned()];
        let route = |headers: &str| {
            let raw = format!("From: jane@example.com\r\n{headers}Subject: x\r\n\r\nbody\r\n");
            route_category(&parse(raw.as_bytes()).expect("parses"), &mailboxes)
        };
        assert_eq!(route("To: Support <support+3-hardware@acme.test>\r\n"), Some(3));
        assert_eq!(route("To: bob@example.com\r\nCc: help+4@acme.test\r\n"), Some(4));
        assert_eq!(route("To: bob@example.com\r\nDelivered-To: support+5-x@acme.test\r\n"), Some(5));
        assert_eq!(route("To: support@acme.test\r\n"), None);
    }

    #[test]
    fn forward_subjects() {
        for yes in ["Fwd: x", "FW: x", "fw:x", "WG: Drucker", "TR: imprimante", "[EXT] Fwd: x", "  Fwd : x"] {
            assert!(is_forward_subject(yes), "{yes}");
        }
        for no in ["Re: Fwd: x", "Forward planning", "x Fwd: y", "", "[EXT] Re: x"] {
            assert!(!is_forward_subject(no), "{no}");
        }
    }

    #[test]
    fn original_sender_of_an_agents_forward() {
        let agents = ["alice@acme.test", "tom@acme.test"];
        let is_agent = |a: &str| agents.contains(&a);
        let quoted = |from: &str, subject: &str| {
            let raw = format!(
                "From: {from}\r\nSubject: {subject}\r\n\r\nPlease help her.\r\n\r\n---------- Forwarded message ---------\r\nFrom: Jane Doe <jane@example.com>\r\nDate: Mon, 3 Jun 2024\r\nSubject: Printer\r\nTo: <alice@acme.test>\r\n\r\nIt is broken.\r\n"
            );
            parse(raw.as_bytes()).expect("parses")
        };
        let got = forwarded_original_sender(&quoted("Alice <alice@acme.test>", "Fwd: Printer"), is_agent);
        assert_eq!(got, Some(Mailbox { address: "jane@example.com".into(), name: Some("Jane Doe".into()) }));
        assert_eq!(
            forwarded_original_sender(&quoted("bob@example.com", "Fwd: Printer"), is_agent),
            None,
            "not an agent"
        );
        assert_eq!(forwarded_original_sender(&quoted("alice@acme.test", "Printer"), is_agent), None, "not a forward");

        let attached = parse(
            concat!(
                "From: tom@acme.test\r\nSubject: FW: Invoice\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n",
                "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n",
                "--b\r\nContent-Type: message/rfc822\r\n\r\n",
                "From: Kim <kim@example.org>\r\nSubject: Invoice\r\n\r\nwrong amount\r\n",
                "--b--\r\n"
            )
            .as_bytes(),
        )
        .expect("parses");
        assert_eq!(
            forwarded_original_sender(&attached, is_agent).map(|m| m.address).as_deref(),
            Some("kim@example.org")
        );

        let self_forward = quoted("alice@acme.test", "Fwd: x").clone();
        assert_eq!(
            forwarded_original_sender(&self_forward, |a| a == "alice@acme.test" || a == "jane@example.com"),
            None
        );
    }
}
