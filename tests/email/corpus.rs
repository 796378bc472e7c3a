//! The email corpus (issue #5): real-world-shaped messages under `tests/resources/email/<group>/<case>.eml`, each
//! paired with `<case>.expected.json`, run through the whole protocol part of the email channel — parse, junk rules
//! (EM-12), threading against the fixed ticket table below (EM-6), subject commands (EM-13), plus-addressing (EM-7),
//! agent forwards (EM-11) — by one `check` helper. Adding a case is adding two files.
//!
//! The expected file is the snapshot of [`outcome`], plus optional assertions kept across updates:
//! `text_contains`, `html_contains`, `html_absent` (lists of strings). Every case's sanitised HTML is also checked
//! for the invariants of email.md (no script, no event handler, no `javascript:`, nothing loaded remotely).
//!
//! `UPDATE_EXPECT=1 cargo test --test email corpus` rewrites the snapshots (review the diff before committing);
//! `SHOW_CASE=html/hostile_html cargo test --test email corpus -- --nocapture` prints a case's text and HTML.
//! `cargo test --test email corpus -- --ignored --nocapture` prints how long parsing the largest cases takes; it
//! asserts nothing about time (a shared machine makes timings noise).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use switchboard::channels::email::commands::{extract_commands, forwarded_original_sender, route_category};
use switchboard::channels::email::junk::classify;
use switchboard::channels::email::parse::{ForwardedMail, Mailbox, parse};
use switchboard::channels::email::threading::decide_mail;
use switchboard::channels::email::{Decision, TicketLookup, TicketRef, Us, Verdict};

/// Our mailboxes, the domain of our Message-IDs, our agents.
const MAILBOXES: &[&str] = &["support@acme.test", "help@acme.test"];
const MESSAGE_ID_DOMAIN: &str = "mail.acme.test";
const AGENTS: &[&str] = &["alice@acme.test", "tom@acme.test"];

/// The fixed help desk every case is threaded against.
///
/// | ticket | number | customer | notes |
/// | --- | --- | --- | --- |
/// | 1 | 1001 | jane@example.com | subscriber bob@example.com; "Printer on floor 3 is jammed" |
/// | 2 | 1002 | kowalski@example.pl | laptops for accounting |
/// | 3 | 1003 | jane@example.com | merged into 1 |
/// | 4 | 1004 | ayse@example.com.tr | |
/// | 5 | 1005 | mike@contoso.example | "Laptop won't boot after BIOS update" |
///
/// Every ticket's agents are [`AGENTS`].
struct Desk {
    tickets: HashMap<u64, TicketRef>,
    messages: HashMap<&'static str, i64>,
    merged_into: HashMap<i64, i64>,
}

fn desk() -> Desk {
    let ticket = |id: i64, customer: &str, subscribers: &[&str]| TicketRef {
        id,
        customer_email: customer.to_owned(),
        subscriber_emails: subscribers.iter().map(|s| s.to_string()).collect(),
        agent_emails: AGENTS.iter().map(|a| a.to_string()).collect(),
    };
    Desk {
        tickets: [
            (1001, ticket(1, "jane@example.com", &["bob@example.com"])),
            (1002, ticket(2, "kowalski@example.pl", &[])),
            (1003, ticket(3, "jane@example.com", &[])),
            (1004, ticket(4, "ayse@example.com.tr", &[])),
            (1005, ticket(5, "mike@contoso.example", &[])),
        ]
        .into(),
        messages: [
            ("CAJane0001+first@mail.gmail.com", 1),
            ("switchboard.1001.5f1c0e7a9b3d4e21@mail.acme.test", 1),
            ("switchboard.1002.pl0001@mail.acme.test", 2),
            ("switchboard.1003.77aa01@mail.acme.test", 3),
            ("switchboard.1004.tr0001@mail.acme.test", 4),
            ("DB9PR01MB1234ABCD@DB9PR01MB1234.eurprd01.prod.exchangelabs.com", 5),
            ("switchboard.1005.c0ffee01@mail.acme.test", 5),
        ]
        .into(),
        merged_into: [(3, 1)].into(),
    }
}

impl TicketLookup for Desk {
    fn ticket_by_number(&self, number: u64) -> Option<TicketRef> {
        self.tickets.get(&number).cloned()
    }
    fn ticket_by_message_id(&self, message_id: &str) -> Option<i64> {
        self.messages.get(message_id).copied()
    }
    fn survivor(&self, ticket: i64) -> i64 {
        self.merged_into.get(&ticket).copied().unwrap_or(ticket)
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resources/email")
}

/// Every case, as `group/name`, sorted.
fn cases() -> Vec<String> {
    let mut out = Vec::new();
    let groups = std::fs::read_dir(root()).expect("tests/resources/email exists");
    for group in groups.flatten().filter(|g| g.path().is_dir()) {
        for file in std::fs::read_dir(group.path()).expect("group folder").flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if let Some(case) = name.strip_suffix(".eml") {
                out.push(format!("{}/{case}", group.file_name().to_string_lossy()));
            }
        }
    }
    out.sort();
    out
}

fn mailbox(m: &Mailbox) -> Value {
    Value::String(m.address.clone())
}

fn addresses(list: &[Mailbox]) -> Value {
    list.iter().map(mailbox).collect()
}

fn forwarded(list: &[ForwardedMail]) -> Value {
    list.iter()
        .map(|f| {
            json!({
                "from": f.from.as_ref().map(mailbox),
                "subject": f.subject,
                "message_id": f.message_id,
                "date": f.date.map(|d| d.to_rfc3339()),
                "forwarded": forwarded(&f.forwarded),
            })
        })
        .collect()
}

/// The first `n` characters of `text`, whitespace collapsed.
fn snippet(text: &str, n: usize) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(n).collect()
}

/// What the protocol part makes of a mail, as the snapshot stores it.
fn outcome(raw: &[u8]) -> (Value, Option<String>, String) {
    let mail = match parse(raw) {
        Ok(mail) => mail,
        Err(e) => return (json!({ "error": e.code() }), None, String::new()),
    };
    let ours: Vec<String> = MAILBOXES.iter().map(|m| m.to_string()).collect();
    let junk = match classify(&mail, &Us { addresses: &ours, message_id_domain: MESSAGE_ID_DOMAIN }) {
        Verdict::Customer => Value::Null,
        Verdict::NotACustomer(reason) => json!({ "code": reason.code(), "detail": reason.to_string() }),
    };
    let thread = match decide_mail(&mail, &desk()) {
        Decision::NewTicket(reason) => json!({ "new": reason.code() }),
        Decision::Reply { ticket, via, merged_from } => {
            json!({ "reply": ticket, "via": via.code(), "merged_from": merged_from })
        }
    };
    let commands = extract_commands(&mail.subject);
    let attachments: Value = mail
        .attachments
        .iter()
        .map(|a| {
            json!({
                "name": a.file_name,
                "mime": a.mime_type,
                "size": a.bytes.len(),
                "inline": a.inline,
                "content_id": a.content_id,
            })
        })
        .collect();
    let value = json!({
        "subject": mail.subject,
        "from": mail.from.as_ref().map(mailbox),
        "from_name": mail.from.as_ref().and_then(|f| f.name.clone()),
        "to": addresses(&mail.to),
        "cc": addresses(&mail.cc),
        "reply_to": addresses(&mail.reply_to),
        "message_id": mail.message_id,
        "in_reply_to": mail.in_reply_to,
        "references": mail.references,
        "date": mail.date.map(|d| d.to_rfc3339()),
        "text_start": snippet(&mail.text, 100),
        "html": mail.html.is_some(),
        "remote_images": mail.remote_images.len(),
        "attachments": attachments,
        "forwarded": forwarded(&mail.forwarded),
        "quoted_from": mail.quoted_from.as_ref().map(mailbox),
        "junk": junk,
        "thread": thread,
        "commands": commands.commands.iter().map(|c| c.code()).collect::<Vec<_>>(),
        "clean_subject": commands.subject,
        "category": route_category(&mail, &ours),
        "original_sender": forwarded_original_sender(&mail, |a| AGENTS.contains(&a)).as_ref().map(mailbox),
    });
    (value, mail.html, mail.text)
}

/// Keys of an expected file that are assertions rather than snapshot.
const CHECK_KEYS: &[&str] = &["text_contains", "html_contains", "html_absent"];

/// What must hold for every sanitised HTML body (email.md: no script, no event handlers, no remote loads).
fn html_invariants(html: &str) -> Vec<String> {
    let lower = html.to_lowercase();
    let mut problems = Vec::new();
    for bad in ["<script", "javascript:", "<iframe", "<object", "<embed", "<form", "<style", "<link", "<meta", "<base"]
    {
        if lower.contains(bad) {
            problems.push(format!("sanitised HTML contains {bad:?}"));
        }
    }
    for bad in ["src=\"http", "src=\"//", "background=", "srcset=", "poster=", "url("] {
        if lower.contains(bad) {
            problems.push(format!("sanitised HTML loads remotely: {bad:?}"));
        }
    }
    // Event handlers: an attribute name starting with "on" inside a tag.
    for tag in lower.split('<').skip(1).filter_map(|t| t.split('>').next()) {
        let handler = tag
            .split_whitespace()
            .skip(1)
            .filter_map(|attr| attr.split('=').next())
            .find(|name| name.starts_with("on") && name.len() > 2);
        if let Some(name) = handler {
            problems.push(format!("sanitised HTML keeps the event handler {name:?}"));
        }
    }
    problems
}

/// Runs one case against its expected file; with `UPDATE_EXPECT` set, rewrites the snapshot part instead.
fn check(case: &str) -> Result<(), String> {
    let eml = root().join(format!("{case}.eml"));
    let expected_path = root().join(format!("{case}.expected.json"));
    let raw = std::fs::read(&eml).map_err(|e| format!("{case}: cannot read {}: {e}", eml.display()))?;
    let (actual, html, text) = outcome(&raw);
    if std::env::var("SHOW_CASE").is_ok_and(|show| show == case) {
        eprintln!("--- {case}: text\n{text}\n--- {case}: sanitised HTML\n{}", html.as_deref().unwrap_or("(none)"));
    }
    let existing: Option<Map<String, Value>> =
        std::fs::read_to_string(&expected_path).ok().and_then(|s| serde_json::from_str(&s).ok());

    if std::env::var_os("UPDATE_EXPECT").is_some() {
        let mut updated = actual.as_object().cloned().unwrap_or_default();
        for key in CHECK_KEYS {
            if let Some(v) = existing.as_ref().and_then(|e| e.get(*key)) {
                updated.insert(key.to_string(), v.clone());
            }
        }
        let pretty = serde_json::to_string_pretty(&Value::Object(updated)).expect("JSON serialises") + "\n";
        std::fs::write(&expected_path, pretty).map_err(|e| format!("{case}: cannot write: {e}"))?;
        return Ok(());
    }

    let expected = existing.ok_or_else(|| format!("{case}: missing or invalid {}", expected_path.display()))?;
    let mut problems = Vec::new();
    let snapshot: Map<String, Value> = expected
        .iter()
        .filter(|(k, _)| !CHECK_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let actual = actual.as_object().cloned().unwrap_or_default();
    for key in snapshot.keys().chain(actual.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (want, got) = (snapshot.get(key), actual.get(key));
        if want != got {
            problems.push(format!(
                "{key}: expected {} but got {}",
                want.map_or("nothing".into(), |v| v.to_string()),
                got.map_or("nothing".into(), |v| v.to_string())
            ));
        }
    }
    let strings = |key: &str| -> Vec<String> {
        expected
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    for needle in strings("text_contains") {
        if !text.contains(&needle) {
            problems.push(format!("text lacks {needle:?}"));
        }
    }
    let html = html.unwrap_or_default();
    for needle in strings("html_contains") {
        if !html.contains(&needle) {
            problems.push(format!("HTML lacks {needle:?}"));
        }
    }
    for needle in strings("html_absent") {
        if html.contains(&needle) {
            problems.push(format!("HTML contains {needle:?}"));
        }
    }
    problems.extend(html_invariants(&html));
    if problems.is_empty() { Ok(()) } else { Err(format!("{case}:\n  {}", problems.join("\n  "))) }
}

#[test]
fn corpus() {
    let failures: Vec<String> = cases().iter().filter_map(|case| check(case).err()).collect();
    assert!(failures.is_empty(), "{} case(s) differ from their snapshot:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn corpus_is_complete() {
    let cases = cases();
    assert!(cases.len() >= 40, "the corpus has {} cases; issue #5 asks for at least 40", cases.len());
    for group in std::fs::read_dir(root()).expect("corpus").flatten().filter(|g| g.path().is_dir()) {
        for file in std::fs::read_dir(group.path()).expect("group").flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if let Some(case) = name.strip_suffix(".expected.json") {
                let case = format!("{}/{case}", group.file_name().to_string_lossy());
                assert!(cases.contains(&case), "{case}.expected.json has no .eml");
            }
        }
    }
}

#[test]
fn invariants_catch_what_they_should() {
    assert!(
        html_invariants(r#"<p>ok</p><a href="https://x" rel="noopener">x</a><img src="{{attachment:a@b}}">"#)
            .is_empty()
    );
    assert_eq!(html_invariants(r#"<img src="https://t.example/p.gif">"#).len(), 1);
    assert_eq!(html_invariants(r#"<p onclick="x()">"#).len(), 1);
    assert_eq!(html_invariants("<script>alert(1)</script>").len(), 1);
}

/// Not a pass/fail test: prints how long the largest cases take to parse and sanitise (email.md asks for "well
/// under a second" for thousands of links; Zammad takes minutes: zammad/zammad#2374).
#[test]
#[ignore = "timing report, run with --ignored --nocapture"]
fn timing_report() {
    for case in ["html/two_thousand_links", "html/huge_html", "html/hostile_html"] {
        let raw = std::fs::read(root().join(format!("{case}.eml"))).expect("case exists");
        let start = std::time::Instant::now();
        let runs = 5;
        for _ in 0..runs {
            let mail = parse(&raw).expect("parses");
            std::hint::black_box(mail);
        }
        println!("{case}: {} bytes, {:?} per parse + sanitise", raw.len(), start.elapsed() / runs);
    }
}
