//! Mail that is not from a customer (EM-12): bounces, delivery and read reports, autoreplies, bulk and list mail,
//! loops and our own mail coming back. Such mail creates no ticket and no notification, so no two robots can answer
//! each other forever; the connector keeps it in a log for admins so nothing is silently lost.
//!
//! The rules are email.md's list, checked in its order, the first that matches being the reason:
//! 1. `Auto-Submitted` with any value but `no` (RFC 3834; parameters after `;` ignored);
//! 2. `Precedence: bulk`, `junk` or `list`;
//! 3. `X-Auto-Response-Suppress` present, whatever its value (Exchange marks its own automatic mail with it);
//! 4. an `X-Loop` naming one of our addresses;
//! 5. `Return-Path: <>` (the null sender), or no `Return-Path` at all (see [`JunkReason::MissingReturnPath`]);
//! 6. a top-level `Content-Type: multipart/report` (delivery-status, disposition-notification, any report);
//! 7. a sender whose local part is one of [`AUTOMATED_LOCAL_PARTS`] (any case, any `+tag`, any domain);
//! 8. a `Message-ID` we made ([`super::threading::is_own_message_id`]).

use super::parse::{ParsedMail, ReturnPath};
use super::threading::is_own_message_id;

/// Local parts of automated senders: email.md's `mailer-daemon@`, `postmaster@`, `noreply@`, `no-reply@`,
/// `donotreply@`, and their usual spellings with `_`, `-` or without separators. Nothing broader (`info@`,
/// `notifications@` are people's or companies' real addresses often enough).
pub const AUTOMATED_LOCAL_PARTS: &[&str] = &[
    "mailer-daemon",
    "mailer_daemon",
    "mailerdaemon",
    "postmaster",
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "donot-reply",
];

/// Who "us" is.
#[derive(Debug, Clone, Copy)]
pub struct Us<'a> {
    /// Our mailbox addresses (the ones we read and send from).
    pub addresses: &'a [String],
    /// The domain of our Message-IDs ([`super::threading::new_message_id`]).
    pub message_id_domain: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JunkReason {
    /// `Auto-Submitted` with this value.
    AutoSubmitted(String),
    /// `Precedence` with this value.
    Precedence(String),
    AutoResponseSuppress,
    /// `X-Loop` names this address of ours.
    Loop(String),
    EmptyReturnPath,
    /// No `Return-Path` header. Delivery agents add one to every mail they store (Dovecot, Postfix, Exim, Gmail,
    /// Exchange Online); a mail without one did not come through a normal delivery — email.md lists it as junk.
    MissingReturnPath,
    /// `multipart/report` with this `report-type` (empty when absent).
    Report(String),
    /// A sender like `mailer-daemon@` or `noreply@`: this address.
    AutomatedSender(String),
    /// Our own outgoing mail, by its Message-ID.
    OwnMessage,
}

impl JunkReason {
    /// Stable snake_case code for the admin log.
    pub fn code(&self) -> &'static str {
        match self {
            JunkReason::AutoSubmitted(_) => "auto_submitted",
            JunkReason::Precedence(_) => "precedence",
            JunkReason::AutoResponseSuppress => "auto_response_suppress",
            JunkReason::Loop(_) => "loop",
            JunkReason::EmptyReturnPath => "empty_return_path",
            JunkReason::MissingReturnPath => "missing_return_path",
            JunkReason::Report(_) => "report",
            JunkReason::AutomatedSender(_) => "automated_sender",
            JunkReason::OwnMessage => "own_message",
        }
    }
}

impl std::fmt::Display for JunkReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JunkReason::AutoSubmitted(v) => write!(f, "Auto-Submitted: {v}"),
            JunkReason::Precedence(v) => write!(f, "Precedence: {v}"),
            JunkReason::AutoResponseSuppress => write!(f, "X-Auto-Response-Suppress present"),
            JunkReason::Loop(address) => write!(f, "X-Loop names {address}"),
            JunkReason::EmptyReturnPath => write!(f, "Return-Path: <>"),
            JunkReason::MissingReturnPath => write!(f, "no Return-Path"),
            JunkReason::Report(kind) if kind.is_empty() => write!(f, "multipart/report"),
            JunkReason::Report(kind) => write!(f, "multipart/report ({kind})"),
            JunkReason::AutomatedSender(address) => write!(f, "automated sender {address}"),
            JunkReason::OwnMessage => write!(f, "our own outgoing message"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Customer,
    NotACustomer(JunkReason),
}

/// Whether an address's local part (before `@` and any `+tag`) is an automated sender's.
pub fn is_automated_sender(address: &str) -> bool {
    let local = address.trim().rsplit_once('@').map_or(address.trim(), |(local, _)| local);
    let local = local.split_once('+').map_or(local, |(base, _)| base);
    AUTOMATED_LOCAL_PARTS.iter().any(|a| a.eq_ignore_ascii_case(local))
}

pub fn classify(mail: &ParsedMail, us: &Us<'_>) -> Verdict {
    match reason(mail, us) {
        Some(reason) => Verdict::NotACustomer(reason),
        None => Verdict::Customer,
    }
}

fn reason(mail: &ParsedMail, us: &Us<'_>) -> Option<JunkReason> {
    let h = &mail.headers;
    if let Some(value) = &h.auto_submitted {
        let token = value.split(';').next().unwrap_or_default().trim();
        if !token.eq_ignore_ascii_case("no") {
            return Some(JunkReason::AutoSubmitted(value.clone()));
        }
    }
    if let Some(value) = &h.precedence
        && ["bulk", "junk", "list"].iter().any(|p| value.trim().eq_ignore_ascii_case(p))
    {
        return Some(JunkReason::Precedence(value.clone()));
    }
    if h.x_auto_response_suppress.is_some() {
        return Some(JunkReason::AutoResponseSuppress);
    }
    for value in &h.x_loop {
        let value = value.to_lowercase();
        if let Some(ours) =
            us.addresses.iter().find(|a| !a.trim().is_empty() && value.contains(&a.trim().to_lowercase()))
        {
            return Some(JunkReason::Loop(ours.clone()));
        }
    }
    match &h.return_path {
        ReturnPath::Empty => return Some(JunkReason::EmptyReturnPath),
        ReturnPath::Missing => return Some(JunkReason::MissingReturnPath),
        ReturnPath::Address(_) => {}
    }
    if h.content_type == "multipart/report" {
        return Some(JunkReason::Report(h.report_type.clone().unwrap_or_default()));
    }
    if let Some(from) = mail.from.as_ref().filter(|f| is_automated_sender(&f.address)) {
        return Some(JunkReason::AutomatedSender(from.address.clone()));
    }
    if mail.message_id.as_deref().is_some_and(|id| is_own_message_id(id, us.message_id_domain)) {
        return Some(JunkReason::OwnMessage);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::email::parse::parse;

    const OURS: &str = "support@acme.test";

    fn verdict(headers: &str) -> Verdict {
        let raw = format!("{headers}Subject: x\r\nTo: {OURS}\r\n\r\nbody\r\n");
        let mail = parse(raw.as_bytes()).expect("parses");
        let addresses = [OURS.to_owned(), "sales@acme.test".to_owned()];
        classify(&mail, &Us { addresses: &addresses, message_id_domain: "mail.acme.test" })
    }

    const OK: &str = "Return-Path: <jane@example.com>\r\nFrom: Jane <jane@example.com>\r\n";

    fn junk(extra: &str) -> Option<&'static str> {
        match verdict(&format!("{OK}{extra}")) {
            Verdict::Customer => None,
            Verdict::NotACustomer(reason) => Some(reason.code()),
        }
    }

    #[test]
    fn a_plain_mail_is_a_customer() {
        assert_eq!(verdict(OK), Verdict::Customer);
        assert_eq!(junk("Auto-Submitted: no\r\n"), None);
        assert_eq!(junk("Auto-Submitted: No ; comment\r\n"), None);
        assert_eq!(junk("Precedence: first-class\r\n"), None);
        assert_eq!(junk("X-Loop: someone-else@example.com\r\n"), None);
        assert_eq!(junk("Message-ID: <CAF123@mail.gmail.com>\r\n"), None);
        assert_eq!(junk("Message-ID: <other.1@mail.acme.test>\r\n"), None, "other software on our domain");
        assert_eq!(junk("Content-Type: multipart/mixed; boundary=b\r\n"), None);
    }

    #[test]
    fn each_rule() {
        assert_eq!(junk("Auto-Submitted: auto-replied\r\n"), Some("auto_submitted"));
        assert_eq!(junk("Auto-Submitted: auto-generated; type=vacation\r\n"), Some("auto_submitted"));
        assert_eq!(junk("Precedence: bulk\r\n"), Some("precedence"));
        assert_eq!(junk("Precedence: JUNK\r\n"), Some("precedence"));
        assert_eq!(junk("Precedence: list\r\n"), Some("precedence"));
        assert_eq!(junk("X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply\r\n"), Some("auto_response_suppress"));
        assert_eq!(junk("X-Loop: Support@Acme.test\r\n"), Some("loop"));
        assert_eq!(junk("X-Loop: helpdesk <sales@acme.test>\r\n"), Some("loop"));
        assert_eq!(
            junk("Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n"),
            Some("report")
        );
        assert_eq!(junk("Message-ID: <switchboard.12.abc@mail.acme.test>\r\n"), Some("own_message"));
        assert_eq!(
            verdict("Return-Path: <>\r\nFrom: jane@example.com\r\n"),
            Verdict::NotACustomer(JunkReason::EmptyReturnPath)
        );
        assert_eq!(verdict("From: jane@example.com\r\n"), Verdict::NotACustomer(JunkReason::MissingReturnPath));
    }

    #[test]
    fn first_rule_in_email_md_order_wins() {
        let v = verdict(
            "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.com\r\nAuto-Submitted: auto-replied\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
        );
        assert_eq!(v, Verdict::NotACustomer(JunkReason::AutoSubmitted("auto-replied".into())));
        let v = verdict(
            "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.com\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
        );
        assert_eq!(v, Verdict::NotACustomer(JunkReason::EmptyReturnPath));
        let v = verdict(
            "Return-Path: <bounce@mx.example.com>\r\nFrom: MAILER-DAEMON@mx.example.com\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
        );
        assert_eq!(v, Verdict::NotACustomer(JunkReason::Report("delivery-status".into())));
    }

    #[test]
    fn automated_senders() {
        for sender in [
            "MAILER-DAEMON@mx.example.com",
            "mailer-daemon",
            "postmaster@example.com",
            "noreply@github.com",
            "No-Reply@accounts.example",
            "no_reply@example.com",
            "donotreply@bank.example",
            "do-not-reply@shop.example",
            "do_not_reply@x.example",
            "noreply+bounces@x.example",
        ] {
            assert!(is_automated_sender(sender), "{sender}");
        }
        for person in [
            "jane@example.com",
            "noreplyjane@example.com",
            "reply@example.com",
            "info@example.com",
            "postmaster.jane@x",
        ] {
            assert!(!is_automated_sender(person), "{person}");
        }
        let v = verdict("Return-Path: <x@github.com>\r\nFrom: GitHub <noreply@github.com>\r\n");
        assert_eq!(v, Verdict::NotACustomer(JunkReason::AutomatedSender("noreply@github.com".into())));
    }

    #[test]
    fn reasons_display() {
        assert_eq!(JunkReason::Report(String::new()).to_string(), "multipart/report");
        assert_eq!(JunkReason::Report("delivery-status".into()).to_string(), "multipart/report (delivery-status)");
        assert_eq!(JunkReason::Loop(OURS.into()).to_string(), "X-Loop names support@acme.test");
    }
}
