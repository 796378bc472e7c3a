//! The email channel end to end against a real Dovecot (IMAP, POP3, TLS with a self-signed
//! certificate) and a real SMTP server (aiosmtpd), both started by `tests/common/mail.rs`:
//! mail in → tickets and threading (EM-1, EM-6), junk kept out and logged (EM-12), subject
//! commands (EM-13), agent replies out over SMTP with threading headers (EO-1), SMTP down → sent
//! later exactly once (EO-3), Dovecot down five times → mailbox disabled and re-enabled (EM-5).
//!
//! Waiting for the connector is done by polling what a user would look at (the ticket list, the
//! mailbox's health, the SMTP server's spool) until it shows the expected state, with a deadline.

mod common;

// The email corpus and the network clients' suites, in this binary (few integration-test binaries keep the
// build short; #14 item 10).
#[path = "email/corpus.rs"]
mod corpus;
#[path = "email/net.rs"]
mod net;
#[path = "email/notifications.rs"]
mod notifications;

use std::time::Duration;

use common::mail::{Dovecot, SmtpSink, mail_servers};
use common::{Api, TestServer};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// Poll `f` until it returns `Some`, or fail with `what` after `WAIT`.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What every test here starts with: a private Dovecot and SMTP sink, a server and its admin.
struct Desk {
    dovecot: Dovecot,
    sink: SmtpSink,
    server: TestServer,
    admin: Api,
}

impl Desk {
    async fn start() -> Self {
        let (dovecot, sink) = (Dovecot::start(), SmtpSink::start());
        let server = TestServer::start().await;
        let admin = server.agent("admin@desk.test", "super_admin").await;
        quiet(&admin).await;
        Desk { dovecot, sink, server, admin }
    }
}

/// Switch email notifications off (NT-1): these tests count the mail that replies send; `notifications` tests
/// the notifications themselves.
async fn quiet(admin: &Api) {
    patch_ok(admin, "/api/v1/settings/notifications", json!({"enabled": false})).await;
}

/// Add a mailbox reading `dovecot` over plain `protocol` (`imap` or `pop3`); the created mailbox.
async fn plain_mailbox(admin: &Api, dovecot: &Dovecot, sink: &SmtpSink, protocol: &str) -> Value {
    let port = if protocol == "pop3" { dovecot.pop3_port() } else { dovecot.imap_port() };
    admin.ok_post("/api/v1/email-channels", mailbox_body(dovecot, sink, protocol, port, "none", false), 201).await
}

fn mailbox_body(d: &Dovecot, sink: &SmtpSink, protocol: &str, port: u16, tls: &str, insecure: bool) -> Value {
    json!({
        "name": format!("Support {protocol}"),
        "protocol": protocol, "host": "127.0.0.1", "port": port, "tls": tls, "tls_insecure": insecure,
        "username": d.user(), "password": d.password(), "folder": "INBOX", "poll_interval_s": 5,
        "smtp": {"host": "127.0.0.1", "port": sink.port(), "tls": "none",
                 "from_address": "desk@example.test", "from_name": "Example Support", "reply_to": "desk@example.test"}
    })
}

fn mail(from: &str, subject: &str, message_id: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "Return-Path: <{from}>\r\nFrom: {from}\r\nTo: desk@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <{message_id}>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n{extra_headers}\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn tickets(api: &Api, channel: i64) -> Vec<Value> {
    let page = api.ok_get(&format!("/api/v1/conversations?channel={channel}&per_page=100&sort=created_asc")).await;
    page["items"].as_array().cloned().unwrap_or_default()
}

async fn messages(api: &Api, conversation: i64) -> Vec<Value> {
    api.ok_get(&format!("/api/v1/conversations/{conversation}/messages")).await.as_array().cloned().unwrap_or_default()
}

/// Wait until the channel holds `n` tickets; return them oldest first.
async fn wait_tickets(api: &Api, channel: i64, n: usize) -> Vec<Value> {
    eventually(&format!("{n} ticket(s) on channel {channel}"), || async {
        let t = tickets(api, channel).await;
        (t.len() == n).then_some(t)
    })
    .await
}

async fn wait_messages(api: &Api, conversation: i64, n: usize) -> Vec<Value> {
    eventually(&format!("{n} message(s) in conversation {conversation}"), || async {
        let m = messages(api, conversation).await;
        (m.len() == n).then_some(m)
    })
    .await
}

async fn patch_ok(api: &Api, path: &str, body: Value) -> Value {
    let (status, answer) = api.patch(path, body).await;
    assert_eq!(status.as_u16(), 200, "PATCH {path}: {answer}");
    answer
}

fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default().replace("\r\n ", " ").replace("\r\n\t", " ");
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

// covers EM-4 (polling without IDLE): a POP3 mailbox has no IDLE and nothing else wakes its connector here, so a mail
// delivered after the first check becomes a ticket only through the poll timer.
#[tokio::test]
async fn pop3_mailbox_is_polled() {
    if !mail_servers("pop3_mailbox_is_polled") {
        return;
    }
    let Desk { dovecot, sink, server: _server, admin } = Desk::start().await;
    let created = plain_mailbox(&admin, &dovecot, &sink, "pop3").await;
    let channel = created["id"].as_i64().unwrap();
    assert_eq!(created["poll_interval_s"], 5);
    // The first check (at start) found an empty maildrop.
    let first_check = eventually("the first check", || async {
        let c = admin.ok_get(&format!("/api/v1/email-channels/{channel}")).await;
        c["health"]["last_success_at"].as_str().map(str::to_owned)
    })
    .await;
    dovecot.deliver(&mail("jane@customer.test", "Polled", "polled.1@customer.test", "", "found by the timer"));
    let t = wait_tickets(&admin, channel, 1).await;
    assert_eq!(t[0]["subject"], "Polled");
    let c = admin.ok_get(&format!("/api/v1/email-channels/{channel}")).await;
    assert_ne!(c["health"]["last_success_at"].as_str(), Some(first_check.as_str()), "a later check found it");
    eventually("the mail removed from the POP3 server (the default for POP3)", || async {
        dovecot.messages().is_empty().then_some(())
    })
    .await;
}

// covers EM-6 (merged tickets): a reply to a mail of a ticket that was merged into another lands in the survivor.
#[tokio::test]
async fn a_reply_to_a_merged_ticket_lands_in_the_survivor() {
    if !mail_servers("a_reply_to_a_merged_ticket_lands_in_the_survivor") {
        return;
    }
    let Desk { dovecot, sink, server: _server, admin } = Desk::start().await;
    let created = plain_mailbox(&admin, &dovecot, &sink, "imap").await;
    let channel = created["id"].as_i64().unwrap();
    dovecot.deliver(&mail("jane@customer.test", "Printer broken", "a.1@customer.test", "", "first"));
    dovecot.deliver(&mail("jane@customer.test", "Also the scanner", "b.1@customer.test", "", "second"));
    let t = wait_tickets(&admin, channel, 2).await;
    let (merged, survivor) = (t[0]["id"].as_i64().unwrap(), t[1]["id"].as_i64().unwrap());
    admin.ok_post(&format!("/api/v1/conversations/{merged}/merge"), json!({"into": survivor}), 200).await;

    let reply = "In-Reply-To: <a.1@customer.test>\r\nReferences: <a.1@customer.test>\r\n";
    dovecot.deliver(&mail("jane@customer.test", "Re: Printer broken", "a.2@customer.test", reply, "still broken"));
    let m = eventually("the reply in the survivor", || async {
        let m = messages(&admin, survivor).await;
        m.iter().any(|m| m["content"] == "still broken").then_some(m)
    })
    .await;
    assert!(m.iter().any(|m| m["external_message_id"] == "a.2@customer.test"), "{m:?}");
    assert!(!messages(&admin, merged).await.iter().any(|m| m["content"] == "still broken"), "not in the merged ticket");
    let listed: Vec<i64> = tickets(&admin, channel).await.iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert_eq!(listed, vec![survivor], "no new ticket (the merged one is not listed)");
}

// covers EM-5 (a mailbox is started and stopped with its channel): mailbox settings are given and changed only through
// /api/v1/email-channels; the generic channel API refuses them and changes nothing, and enabling, disabling or
// deleting a mailbox there reaches its connector.
#[tokio::test]
async fn the_generic_channel_api_hands_mailboxes_to_their_connector() {
    if !mail_servers("the_generic_channel_api_hands_mailboxes_to_their_connector") {
        return;
    }
    let Desk { dovecot, sink, server: _server, admin } = Desk::start().await;

    let (status, answer) =
        admin.post("/api/v1/channels", json!({"kind": "email", "name": "Mail", "settings": {"host": "x"}})).await;
    assert_eq!(status.as_u16(), 400, "{answer}");
    assert_eq!(answer["error"], "validation_failed");
    assert!(answer["message"].as_str().unwrap().contains("/api/v1/email-channels"), "{answer}");
    assert_eq!(admin.ok_get("/api/v1/channels?kind=email").await, json!([]), "nothing created");

    let created = plain_mailbox(&admin, &dovecot, &sink, "imap").await;
    let id = created["id"].as_i64().unwrap();
    let running = |want: bool| {
        let admin = &admin;
        async move {
            eventually(&format!("connector running = {want}"), || async {
                let c = admin.ok_get(&format!("/api/v1/email-channels/{id}")).await;
                (c["health"]["running"] == want).then_some(c)
            })
            .await
        }
    };
    running(true).await;

    let (status, answer) =
        admin.patch(&format!("/api/v1/channels/{id}"), json!({"settings": {"host": "elsewhere"}})).await;
    assert_eq!(status.as_u16(), 400, "{answer}");
    let c = admin.ok_get(&format!("/api/v1/email-channels/{id}")).await;
    assert_eq!(c["host"], "127.0.0.1", "settings unchanged");

    patch_ok(&admin, &format!("/api/v1/channels/{id}"), json!({"enabled": false})).await;
    running(false).await;
    patch_ok(&admin, &format!("/api/v1/channels/{id}"), json!({"enabled": true})).await;
    running(true).await;
    dovecot.deliver(&mail("jane@customer.test", "Back on", "back.1@customer.test", "", "hello"));
    wait_tickets(&admin, id, 1).await;

    let (status, _) = admin.delete(&format!("/api/v1/channels/{id}")).await;
    assert_eq!(status.as_u16(), 204);
    let (status, _) = admin.get(&format!("/api/v1/email-channels/{id}")).await;
    assert_eq!(status.as_u16(), 404);
}

// covers EM-1, EM-2, EM-6, EM-12: a backlog larger than one fetch batch (the connector fetches, prepares and stores
// batches side by side): every mail is stored once and in order, a reply threads into a ticket whose mail came just
// before it (in the same batch or the one before), junk is logged, and every mail is acknowledged.
#[tokio::test]
async fn a_backlog_is_imported_in_order_and_acknowledged() {
    if !mail_servers("a_backlog_is_imported_in_order_and_acknowledged") {
        return;
    }
    let Desk { dovecot, sink, server: _server, admin } = Desk::start().await;
    const CUSTOMERS: usize = 30;
    for i in 0..CUSTOMERS {
        let from = format!("Customer {i} <c{i}@customer.test>");
        dovecot.deliver(&mail(
            &from,
            &format!("Question {i}"),
            &format!("q{i}@customer.test"),
            "",
            &format!("question {i}"),
        ));
        // The same mail twice (a copy in the folder): stored once.
        if i == 7 {
            dovecot.deliver(&mail(&from, "Question 7", "q7@customer.test", "", "question 7"));
        }
        let reply = format!("In-Reply-To: <q{i}@customer.test>\r\nReferences: <q{i}@customer.test>\r\n");
        dovecot.deliver(&mail(
            &from,
            &format!("Re: Question {i}"),
            &format!("r{i}@customer.test"),
            &reply,
            &format!("more {i}"),
        ));
        if i == 20 {
            let junk = "Auto-Submitted: auto-replied\r\n";
            dovecot.deliver(&mail("c20@customer.test", "Out of office", "ooo@customer.test", junk, "away"));
        }
    }
    let created = plain_mailbox(&admin, &dovecot, &sink, "imap").await;
    let channel = created["id"].as_i64().unwrap();

    eventually("all 62 mails acknowledged (\\Seen)", || async {
        let m = dovecot.messages();
        (m.len() == 2 * CUSTOMERS + 2 && m.iter().all(|m| m.seen)).then_some(())
    })
    .await;
    let t = tickets(&admin, channel).await;
    assert_eq!(t.len(), CUSTOMERS, "one ticket per question, none for the copy, the replies or the junk");
    for (i, ticket) in t.iter().enumerate() {
        assert_eq!(ticket["subject"], format!("Question {i}"), "tickets in mail order");
        let m = messages(&admin, ticket["id"].as_i64().unwrap()).await;
        let contents: Vec<&str> = m.iter().map(|m| m["content"].as_str().unwrap()).collect();
        assert_eq!(contents, vec![format!("question {i}"), format!("more {i}")], "ticket {i}");
    }
    let log = admin.ok_get(&format!("/api/v1/email-channels/{channel}/log")).await;
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["outcome"], "junk");
    let c = admin.ok_get(&format!("/api/v1/email-channels/{channel}")).await;
    assert_eq!(c["health"]["imported_total"], 2 * CUSTOMERS as i64, "stored: questions and replies, the copy once");
    assert_eq!(c["health"]["logged_total"], 1, "the junk mail, counted in the mailbox's health");
}

// covers EM-1, EM-3 and EM-12 (junk checks), EM-4 (IDLE), EM-6, EM-10, EM-13, EO-1
#[tokio::test]
async fn imap_mail_threads_both_ways_and_junk_is_logged() {
    if !mail_servers("imap_mail_threads_both_ways_and_junk_is_logged") {
        return;
    }
    let Desk { dovecot, sink, server: _server, admin } = Desk::start().await;
    let created = plain_mailbox(&admin, &dovecot, &sink, "imap").await;
    let channel = created["id"].as_i64().unwrap();
    assert_eq!(created["password_set"], true);
    assert!(created.get("password").is_none(), "the password is never answered");

    // A new mail becomes a ticket, with the CC'd colleague subscribed (EM-10).
    let first = mail(
        "Jane Doe <jane@customer.test>",
        "Printer on fire",
        "first.1@customer.test",
        "Cc: Bob <bob@customer.test>\r\n",
        "It is really on fire.",
    );
    dovecot.deliver(&first);
    let t = wait_tickets(&admin, channel, 1).await;
    let ticket = t[0]["id"].as_i64().unwrap();
    let number = t[0]["number"].as_i64().unwrap();
    assert_eq!(t[0]["subject"], "Printer on fire");
    assert_eq!(t[0]["channel_kind"], "email");
    assert_eq!(t[0]["customer_name"], "Jane Doe");
    let m = messages(&admin, ticket).await;
    assert_eq!(m[0]["content"], "It is really on fire.");
    assert_eq!(m[0]["external_message_id"], "first.1@customer.test");
    // Acknowledged on the server only after the ticket was committed: marked read (the IMAP default).
    eventually("the imported mail is marked \\Seen", || async {
        dovecot.messages().iter().all(|m| m.seen).then_some(())
    })
    .await;

    // The agent answers: the mail reaches the SMTP server threaded (EO-1).
    admin.ok_post(&format!("/api/v1/conversations/{ticket}/messages"), json!({"content": "Water helps."}), 201).await;
    let sent = sink.wait_for(1, WAIT).await;
    let raw = &sent[0].raw;
    assert_eq!(sent[0].rcpt_to, vec!["jane@customer.test".to_owned(), "bob@customer.test".to_owned()]);
    let subject = header(raw, "Subject").unwrap();
    assert!(subject.contains(&format!("{{#{number}}}")), "{subject}");
    assert_eq!(header(raw, "In-Reply-To").as_deref(), Some("<first.1@customer.test>"));
    assert!(header(raw, "References").unwrap().contains("<first.1@customer.test>"));
    assert!(header(raw, "From").unwrap().contains("desk@example.test"));
    assert_eq!(header(raw, "Reply-To").as_deref(), Some("desk@example.test"));
    let our_id = header(raw, "Message-ID").unwrap();
    assert!(our_id.contains("@example.test>"), "{our_id}");
    assert!(String::from_utf8_lossy(raw).contains("Water helps."));

    // Jane answers from a client that rewrote In-Reply-To: References finds the ticket (EM-6).
    dovecot.deliver(&mail(
        "jane@customer.test",
        "Re: Printer on fire",
        "reply.2@customer.test",
        &format!(
            "In-Reply-To: <rewritten.by.outlook@customer.test>\r\nReferences: <first.1@customer.test> {our_id}\r\n"
        ),
        "Still burning.",
    ));
    let m = wait_messages(&admin, ticket, 3).await;
    assert_eq!(m[2]["content"], "Still burning.");
    assert_eq!(m[2]["direction"], "in");

    // A stranger quoting the number gets a ticket of their own (zammad#5064) …
    dovecot.deliver(&mail(
        "mallory@elsewhere.test",
        &format!("Re: Printer on fire {{#{number}}}"),
        "hijack.3@elsewhere.test",
        "",
        "Let me in.",
    ));
    let t = wait_tickets(&admin, channel, 2).await;
    assert_ne!(t[1]["id"].as_i64(), Some(ticket));
    // … Bob, a subscriber, quoting it joins the ticket, with no threading headers at all.
    dovecot.deliver(&mail(
        "bob@customer.test",
        &format!("{{#{number}}} update"),
        "bob.4@customer.test",
        "",
        "From Bob.",
    ));
    wait_messages(&admin, ticket, 4).await;

    // Junk never becomes a ticket, and is kept in the mailbox's log (EM-12).
    dovecot.deliver(&mail(
        "jane@customer.test",
        "Out of office",
        "ooo.5@customer.test",
        "Auto-Submitted: auto-replied\r\n",
        "I am away.",
    ));
    dovecot.deliver(&mail("noreply@shop.test", "Your order", "order.6@shop.test", "", "Thanks for buying."));
    dovecot.deliver(
            "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.customer.test\r\nTo: desk@example.test\r\nSubject: Undelivered\r\n\
             Message-ID: <bounce.7@mx.customer.test>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n\
             --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.test\r\n\r\nFinal-Recipient: rfc822; x@y\r\nAction: failed\r\nStatus: 5.1.1\r\n\
             --b--\r\n"
        .as_bytes(),
    );
    let log = eventually("three logged junk mails", || async {
        let log = admin.ok_get(&format!("/api/v1/email-channels/{channel}/log")).await;
        (log.as_array().map(Vec::len) == Some(3)).then_some(log)
    })
    .await;
    let mut reasons: Vec<String> =
        log.as_array().unwrap().iter().map(|l| l["reason"].as_str().unwrap().to_owned()).collect();
    reasons.sort();
    assert!(reasons.iter().any(|r| r.contains("Auto-Submitted")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("noreply@shop.test")), "{reasons:?}");
    assert!(log.as_array().unwrap().iter().all(|l| l["outcome"] == "junk"));
    assert_eq!(tickets(&admin, channel).await.len(), 2, "junk made no ticket");

    // `#close#` in a reply's subject closes the ticket (EM-13).
    dovecot.deliver(&mail(
        "jane@customer.test",
        &format!("Re: Printer on fire {{#{number}}} #close#"),
        "close.8@customer.test",
        "",
        "Fire is out, thanks.",
    ));
    eventually("the ticket is closed", || async {
        let c = admin.ok_get(&format!("/api/v1/conversations/{ticket}")).await;
        (c["status"] == "closed").then_some(())
    })
    .await;
    assert_eq!(messages(&admin, ticket).await.len(), 5);
    // Only the agent's one reply ever went out: nothing was sent for junk or for customers' mail.
    assert_eq!(sink.received().len(), 1);
}

// covers EM-1 over TLS (POP3S with a self-signed certificate), EM-8 off, delete after import
#[tokio::test]
async fn pop3_over_tls_imports_deletes_and_rejects_strangers_when_asked() {
    if !mail_servers("pop3_over_tls_imports_deletes_and_rejects_strangers_when_asked") {
        return;
    }
    let Desk { dovecot, sink, server: _server, admin } = Desk::start().await;
    let mut body = mailbox_body(&dovecot, &sink, "pop3", dovecot.pop3s_port(), "implicit", true);
    body["accept_unknown_senders"] = json!(false);
    let channel = admin.ok_post("/api/v1/email-channels", body, 201).await["id"].as_i64().unwrap();

    dovecot.deliver(&mail("stranger@nowhere.test", "Hello", "s.1@nowhere.test", "", "Who are you?"));
    let log = eventually("the stranger's mail is logged as rejected", || async {
        let log = admin.ok_get(&format!("/api/v1/email-channels/{channel}/log")).await;
        (log.as_array().map(Vec::len) == Some(1)).then_some(log)
    })
    .await;
    assert_eq!(log[0]["outcome"], "rejected");
    assert!(tickets(&admin, channel).await.is_empty());
    // POP3 deletes after import by default, and only after the mail was committed or logged.
    eventually("the mail is deleted on the server", || async { (dovecot.count() == 0).then_some(()) }).await;

    // Accepting unregistered senders again: the next mail is a ticket.
    patch_ok(&admin, &format!("/api/v1/email-channels/{channel}"), json!({"accept_unknown_senders": true})).await;
    dovecot.deliver(&mail("stranger@nowhere.test", "Hello again", "s.2@nowhere.test", "", "Me again."));
    let t = wait_tickets(&admin, channel, 1).await;
    assert_eq!(t[0]["subject"], "Hello again");
    eventually("the mail is deleted on the server", || async { (dovecot.count() == 0).then_some(()) }).await;
}

// covers EM-1: a self-signed certificate is refused unless tls_insecure is set
#[tokio::test]
async fn self_signed_certificate_is_refused_without_tls_insecure() {
    if !mail_servers("self_signed_certificate_is_refused_without_tls_insecure") {
        return;
    }
    let Desk { dovecot, sink, server: _server, admin } = Desk::start().await;
    let body = mailbox_body(&dovecot, &sink, "imap", dovecot.imaps_port(), "implicit", false);
    let channel = admin.ok_post("/api/v1/email-channels", body, 201).await["id"].as_i64().unwrap();
    dovecot.deliver(&mail("jane@customer.test", "Hi", "tls.1@customer.test", "", "Hello."));
    let health = eventually("a failed check", || async {
        let c = admin.ok_get(&format!("/api/v1/email-channels/{channel}")).await;
        (c["health"]["consecutive_failures"].as_i64() >= Some(1)).then_some(c["health"].clone())
    })
    .await;
    let error = health["last_error"].as_str().unwrap().to_lowercase();
    assert!(error.contains("tls") || error.contains("certificate"), "{error}");
    assert!(tickets(&admin, channel).await.is_empty());
    assert_eq!(dovecot.count(), 1, "nothing was taken from the server");
    // With tls_insecure the same server is read.
    patch_ok(&admin, &format!("/api/v1/email-channels/{channel}"), json!({"tls_insecure": true})).await;
    wait_tickets(&admin, channel, 1).await;
}

// covers EO-3: SMTP down for a while → the reply is delivered later, exactly once
#[tokio::test]
async fn reply_waits_for_the_smtp_server_and_is_sent_once() {
    if !mail_servers("reply_waits_for_the_smtp_server_and_is_sent_once") {
        return;
    }
    let dovecot = Dovecot::start();
    let mut sink = SmtpSink::start();
    let server = TestServer::start().await;
    let admin = server.agent("admin@desk.test", "super_admin").await;
    quiet(&admin).await;
    let body = mailbox_body(&dovecot, &sink, "imap", dovecot.imap_port(), "none", false);
    let channel = admin.ok_post("/api/v1/email-channels", body, 201).await["id"].as_i64().unwrap();
    dovecot.deliver(&mail("jane@customer.test", "Question", "q.1@customer.test", "", "How?"));
    let ticket = wait_tickets(&admin, channel, 1).await[0]["id"].as_i64().unwrap();

    sink.stop();
    admin.ok_post(&format!("/api/v1/conversations/{ticket}/messages"), json!({"content": "Like this."}), 201).await;
    let failed = eventually("a failed delivery attempt", || async {
        let d = admin.ok_get(&format!("/api/v1/channels/{channel}/deliveries")).await;
        let d = d.as_array().cloned().unwrap_or_default();
        d.first().filter(|d| d["attempts"].as_i64() >= Some(1)).cloned()
    })
    .await;
    assert_eq!(failed["state"], "pending");
    assert!(failed["last_error"].as_str().unwrap().contains("SMTP"), "{failed}");

    sink.start_again();
    let got = sink.wait_for(1, WAIT).await;
    assert!(String::from_utf8_lossy(&got[0].raw).contains("Like this."));
    eventually("the delivery is recorded as delivered", || async {
        let d = admin.ok_get(&format!("/api/v1/channels/{channel}/deliveries")).await;
        (d[0]["state"] == "delivered").then_some(())
    })
    .await;
    // Delivered means no further attempt: after another reply goes through, still one copy of the first.
    admin.ok_post(&format!("/api/v1/conversations/{ticket}/messages"), json!({"content": "And more."}), 201).await;
    let all = sink.wait_for(2, WAIT).await;
    assert_eq!(all.iter().filter(|m| String::from_utf8_lossy(&m.raw).contains("Like this.")).count(), 1);
}

// covers EM-5: five connection failures in a row disable the mailbox; an admin re-enables it
#[tokio::test]
async fn five_connection_failures_disable_the_mailbox() {
    if !mail_servers("five_connection_failures_disable_the_mailbox") {
        return;
    }
    let mut dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let server = TestServer::start().await;
    let admin = server.agent("admin@desk.test", "super_admin").await;
    let body = mailbox_body(&dovecot, &sink, "pop3", dovecot.pop3_port(), "none", false);
    let channel = admin.ok_post("/api/v1/email-channels", body, 201).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/email-channels/{channel}");
    eventually("a first successful check", || async {
        let c = admin.ok_get(&path).await;
        c["health"]["last_success_at"].is_string().then_some(())
    })
    .await;

    dovecot.stop();
    for n in 1..=5 {
        admin.ok_post(&format!("{path}/check"), json!({}), 202).await;
        eventually(&format!("failure {n}"), || async {
            let c = admin.ok_get(&path).await;
            (c["health"]["consecutive_failures"].as_i64() == Some(n)).then_some(())
        })
        .await;
    }
    let c = admin.ok_get(&path).await;
    assert_eq!(c["enabled"], false);
    assert!(c["disabled_reason"].as_str().unwrap().contains("5 connection failures"), "{c}");
    let (status, _) = admin.post(&format!("{path}/check"), json!({})).await;
    assert_eq!(status.as_u16(), 409, "a disabled mailbox is not checked");

    dovecot.start_again();
    dovecot.deliver(&mail("jane@customer.test", "Back?", "back.1@customer.test", "", "Are you back?"));
    let c = patch_ok(&admin, &path, json!({"enabled": true})).await;
    assert_eq!(c["enabled"], true);
    assert_eq!(c["disabled_reason"], Value::Null);
    assert_eq!(c["health"]["consecutive_failures"], 0);
    wait_tickets(&admin, channel, 1).await;
}

// covers EM-1 bad input: clear errors, nothing stored
#[tokio::test]
async fn bad_mailbox_settings_are_refused() {
    let server = TestServer::start().await;
    let admin = server.agent("admin@desk.test", "super_admin").await;
    let agent = server.agent("agent@desk.test", "agent").await;
    let good = json!({
        "name": "Support", "protocol": "imap", "host": "127.0.0.1", "port": 10143, "tls": "none",
        "username": "u", "password": "p", "folder": "INBOX", "poll_interval_s": 60,
        "smtp": {"host": "127.0.0.1", "port": 10025, "tls": "none", "from_address": "desk@example.test",
                 "from_name": "Support", "reply_to": "desk@example.test"}
    });
    let cases: Vec<(&str, Value)> = vec![
        ("protocol", json!({"protocol": "smtp"})),
        ("tls", json!({"tls": "maybe"})),
        ("port", json!({"port": 0})),
        ("host", json!({"host": " "})),
        ("poll_interval_s", json!({"poll_interval_s": 1})),
        ("from_address", json!({"smtp": {"host": "h", "port": 25, "tls": "none", "from_address": "nope"}})),
        ("folder", json!({"protocol": "pop3", "folder": "Archive"})),
        ("unknown field", json!({"colour": "blue"})),
    ];
    for (what, change) in cases {
        let mut body = good.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = admin.post("/api/v1/email-channels", body).await;
        assert_eq!(status.as_u16(), 400, "{what}: {answer}");
        assert!(answer["message"].is_string(), "{what}: {answer}");
    }
    let (status, _) = agent.post("/api/v1/email-channels", good.clone()).await;
    assert_eq!(status.as_u16(), 403, "agents cannot add mailboxes");
    assert_eq!(admin.ok_get("/api/v1/email-channels").await.as_array().unwrap().len(), 0, "nothing was stored");
    let created = admin.ok_post("/api/v1/email-channels", good, 201).await;
    assert!(created["id"].as_i64().is_some());
    assert_eq!(created["protocol"], "imap");
    assert_eq!(created["smtp"]["password_set"], false);
    // A PATCH of the SMTP settings with an unknown key, or a bad value, is refused and changes nothing.
    let path = format!("/api/v1/email-channels/{}", created["id"]);
    for smtp in [json!({"colour": "blue"}), json!({"port": "25"}), json!({"from_address": "nope"})] {
        let (status, answer) = admin.patch(&path, json!({"smtp": smtp})).await;
        assert_eq!(status.as_u16(), 400, "{smtp}: {answer}");
    }
    let after = admin.ok_get(&path).await;
    assert_eq!(after["smtp"], created["smtp"]);
    // Values are stored trimmed, empty optional ones as absent.
    let changed = patch_ok(&admin, &path, json!({"smtp": {"host": " smtp.example.test ", "from_name": "  "}})).await;
    assert_eq!(changed["smtp"]["host"], "smtp.example.test");
    assert_eq!(changed["smtp"]["from_name"], Value::Null);
}

// covers CC-12 (seed 004): the offline owner of a customer is told by mail through a mailbox's SMTP
#[tokio::test]
async fn an_offline_owner_is_told_by_mail() {
    if !mail_servers("an_offline_owner_is_told_by_mail") {
        return;
    }
    let Desk { dovecot, sink, server, admin } = Desk::start().await;
    let owner = server.agent("owner@desk.test", "agent").await;
    plain_mailbox(&admin, &dovecot, &sink, "imap").await;
    let routing = json!({"assign": {"mode": "owner"}});
    let body = json!({"name": "VIP", "webhook_url": "http://127.0.0.1:9/", "type": "async", "routing": routing});
    let ch = admin.ok_post("/api/v1/custom-channels", body, 201).await["id"].as_i64().unwrap();
    admin.ok_put(&format!("/api/v1/agents/{}/channels", owner.agent_id), json!({"channel_ids": [ch]})).await;
    let inbound = |text: &'static str| {
        let admin = &admin;
        async move {
            let body = json!({"user_custom_id": "vip-1", "content": text, "name": "Vera Important"});
            admin.ok_post(&format!("/api/v1/custom-channels/{ch}/inbound"), body, 201).await
        }
    };
    let first = inbound("hello").await;
    let user = first["user_id"].as_i64().unwrap();
    patch_ok(&admin, &format!("/api/v1/customers/{user}"), json!({"owner_agent_id": owner.agent_id})).await;
    patch_ok(&admin, &format!("/api/v1/conversations/{}", first["conversation_id"]), json!({"status": "closed"})).await;
    let second = inbound("me again").await;
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got[0].rcpt_to, vec!["owner@desk.test".to_owned()]);
    let subject = header(&got[0].raw, "Subject").unwrap();
    assert!(subject.contains("Vera Important"), "{subject}");
    let text = String::from_utf8_lossy(&got[0].raw).into_owned();
    assert!(text.contains(&format!("/tickets/{}", second["conversation_id"])), "{text}");
}

// covers invariant 4 for mailboxes: an agent sees only mailboxes they were given, never a password
#[tokio::test]
async fn agents_see_only_their_mailboxes_and_never_passwords() {
    let server = TestServer::start().await;
    let admin = server.agent("admin@desk.test", "super_admin").await;
    let alice = server.agent("alice@desk.test", "agent").await;
    let bob = server.agent("bob@desk.test", "agent").await;
    let body = json!({
        "name": "Support", "protocol": "pop3", "host": "127.0.0.1", "port": 9, "tls": "none",
        "username": "u", "password": "hunter2-secret", "poll_interval_s": 300,
        "smtp": {"host": "127.0.0.1", "port": 9, "tls": "none", "from_address": "desk@example.test",
                 "username": "smtp-user", "password": "smtp-secret"}
    });
    let id = admin.ok_post("/api/v1/email-channels", body, 201).await["id"].as_i64().unwrap();
    admin.ok_put(&format!("/api/v1/agents/{}/channels", alice.agent_id), json!({"channel_ids": [id]})).await;

    let seen = alice.ok_get(&format!("/api/v1/email-channels/{id}")).await;
    assert_eq!(seen["name"], "Support");
    let text = seen.to_string();
    assert!(!text.contains("hunter2-secret") && !text.contains("smtp-secret"), "{text}");
    assert_eq!(seen["smtp"]["password_set"], true);
    assert_eq!(alice.ok_get("/api/v1/email-channels").await.as_array().unwrap().len(), 1);

    let (status, _) = bob.get(&format!("/api/v1/email-channels/{id}")).await;
    assert_eq!(status.as_u16(), 404, "another agent's mailbox does not exist for bob");
    assert_eq!(bob.ok_get("/api/v1/email-channels").await.as_array().unwrap().len(), 0);
    let (status, _) = bob.get(&format!("/api/v1/email-channels/{id}/log")).await;
    assert_eq!(status.as_u16(), 403);
}

// covers EM-2 (attachments, inline images with cid: rewritten, HTML sanitised), EM-7 (plus-address → team),
// EM-11 (an agent's forward is a ticket of the original sender), EM-13 #tech# (an agent's mail kept as a note)
#[tokio::test]
async fn attachments_plus_addressing_forwards_and_tech_notes() {
    if !mail_servers("attachments_plus_addressing_forwards_and_tech_notes") {
        return;
    }
    let Desk { dovecot, sink, server: _server, admin } = Desk::start().await;
    let team = admin.ok_post("/api/v1/teams", json!({"name": "Billing"}), 201).await["id"].as_i64().unwrap();
    let body = mailbox_body(&dovecot, &sink, "imap", dovecot.imap_port(), "none", false);
    let channel = admin.ok_post("/api/v1/email-channels", body, 201).await["id"].as_i64().unwrap();

    let with_files = format!(
        "Return-Path: <jane@customer.test>\r\nFrom: Jane <jane@customer.test>\r\nTo: desk+{team}-billing@example.test\r\n\
         Subject: Invoice question\r\nMessage-ID: <att.1@customer.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"mixed\"\r\n\r\n\
         --mixed\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
         --rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <p>Our logo <img src=\"cid:logo@x\" alt=\"logo\"> and <script>alert(1)</script>the invoice.</p>\r\n\
         --rel\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         iVBORw0KGgo=\r\n--rel--\r\n\
         --mixed\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         JVBERi0xLjQK\r\n--mixed--\r\n"
    );
    dovecot.deliver(with_files.as_bytes());
    let t = wait_tickets(&admin, channel, 1).await;
    let ticket = t[0]["id"].as_i64().unwrap();
    let number = t[0]["number"].as_i64().unwrap();
    assert_eq!(t[0]["team_id"].as_i64(), Some(team), "plus-address routes to the team (EM-7)");
    let m = messages(&admin, ticket).await;
    let files = m[0]["attachments"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    let pdf = files.iter().find(|f| f["file_name"] == "invoice.pdf").expect("the PDF is kept");
    let png = files.iter().find(|f| f["mime_type"] == "image/png").expect("the inline image is kept");
    let html = m[0]["content_html"].as_str().unwrap();
    assert!(html.contains(&format!("/api/v1/attachments/{}", png["id"])), "cid: rewritten: {html}");
    assert!(!html.contains("<script") && !html.contains("alert(1)"), "sanitised: {html}");
    let bytes =
        admin.request(reqwest::Method::GET, &format!("/api/v1/attachments/{}", pdf["id"])).send().await.unwrap();
    assert_eq!(bytes.bytes().await.unwrap().as_ref(), b"%PDF-1.4\n");

    // An agent forwards a customer's mail: the ticket is the original sender's (EM-11).
    dovecot.deliver(
        "Return-Path: <admin@desk.test>\r\nFrom: Admin <admin@desk.test>\r\nTo: desk@example.test\r\n\
          Subject: Fwd: Broken kettle\r\nMessage-ID: <fwd.2@desk.test>\r\nMIME-Version: 1.0\r\n\
          Content-Type: text/plain; charset=utf-8\r\n\r\nPlease help this customer.\r\n\r\n\
          ---------- Forwarded message ---------\r\nFrom: Carl Client <carl@customer.test>\r\n\
          Date: Mon, 30 Nov 2026 09:00:00 +0000\r\nSubject: Broken kettle\r\nTo: <admin@desk.test>\r\n\r\n\
          My kettle is broken.\r\n"
            .as_bytes(),
    );
    let t = wait_tickets(&admin, channel, 2).await;
    assert_eq!(t[1]["customer_name"], "Carl Client");

    // The same mail again (a crash between commit and acknowledgement re-fetches it): no second copy.
    dovecot.deliver(with_files.as_bytes());
    eventually("the re-delivered copy is acknowledged", || async {
        (dovecot.messages().iter().filter(|m| m.seen).count() == 3).then_some(())
    })
    .await;
    assert_eq!(tickets(&admin, channel).await.len(), 2, "no new ticket for a mail already imported");
    assert_eq!(messages(&admin, ticket).await.len(), 1, "no second copy in the ticket");

    // The agent's own mail with #tech# on the first ticket is a note, and nothing is sent (EM-13).
    dovecot.deliver(&mail(
        "admin@desk.test",
        &format!("Re: Invoice question {{#{number}}} #tech#"),
        "tech.3@desk.test",
        "",
        "Checked the ledger: it is paid.",
    ));
    let m = wait_messages(&admin, ticket, 2).await;
    assert_eq!(m[1]["direction"], "note");
    assert_eq!(m[1]["author"]["kind"], "agent");
    assert!(sink.received().is_empty(), "a note never leaves");
}

// covers EM-9 (default category), EM-10 off (no subscribers), EM-13 #unsubscribe#, EO-2 (From name: the agent's, or
// the mailbox's for all when asked)
#[tokio::test]
async fn default_team_unsubscribe_and_from_names() {
    if !mail_servers("default_team_unsubscribe_and_from_names") {
        return;
    }
    let Desk { dovecot, sink, server: _server, admin } = Desk::start().await;
    let team = admin.ok_post("/api/v1/teams", json!({"name": "First line"}), 201).await["id"].as_i64().unwrap();
    let mut body = mailbox_body(&dovecot, &sink, "imap", dovecot.imap_port(), "none", false);
    body["default_team_id"] = json!(team);
    let channel = admin.ok_post("/api/v1/email-channels", body, 201).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/email-channels/{channel}");

    // EM-10 on (the default): Bob in Cc is subscribed, and leaves with #unsubscribe#.
    dovecot.deliver(&mail("jane@customer.test", "Order 1", "o.1@customer.test", "Cc: bob@customer.test\r\n", "Hi."));
    let t = wait_tickets(&admin, channel, 1).await;
    let (ticket, number) = (t[0]["id"].as_i64().unwrap(), t[0]["number"].as_i64().unwrap());
    assert_eq!(t[0]["team_id"].as_i64(), Some(team), "new tickets go to the default team (EM-9)");
    dovecot.deliver(&mail(
        "bob@customer.test",
        &format!("Re: Order 1 {{#{number}}} #unsub#"),
        "u.2@customer.test",
        "",
        "Not my business.",
    ));
    wait_messages(&admin, ticket, 2).await;
    // The agent's reply now goes to Jane alone, signed with the agent's name (EO-2).
    admin.ok_post(&format!("/api/v1/conversations/{ticket}/messages"), json!({"content": "Shipped."}), 201).await;
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got[0].rcpt_to, vec!["jane@customer.test".to_owned()], "Bob unsubscribed (EM-13)");
    let from = header(&got[0].raw, "From").unwrap();
    assert!(
        from.contains("admin") && from.contains("desk@example.test") && !from.contains("Example Support"),
        "{from}"
    );

    // "Use the From name for all outgoing" (EO-2), and EM-10 off: Cc addresses are not subscribed.
    patch_ok(&admin, &path, json!({"subscribe_recipients": false, "smtp": {"use_from_name_for_all": true}})).await;
    dovecot.deliver(&mail(
        "carol@customer.test",
        "Order 2",
        "o.3@customer.test",
        "Cc: dave@customer.test\r\n",
        "Hello.",
    ));
    let t = wait_tickets(&admin, channel, 2).await;
    let second = t[1]["id"].as_i64().unwrap();
    admin.ok_post(&format!("/api/v1/conversations/{second}/messages"), json!({"content": "On its way."}), 201).await;
    let got = sink.wait_for(2, WAIT).await;
    assert_eq!(got[1].rcpt_to, vec!["carol@customer.test".to_owned()], "no subscribers with EM-10 off");
    let from = header(&got[1].raw, "From").unwrap();
    assert!(from.contains("Example Support"), "{from}");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut out = Vec::new();
    for p in entries.flatten().map(|e| e.path()) {
        if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
    }
    out
}

/// The same mail whatever line endings the IMAP server gave it.
fn lf(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).replace("\r\n", "\n")
}

// covers EM-2 (the raw source kept for audit) and EM-12 (filtered mail kept, readable by admins): a small source is
// kept in its row, a large one as a file; both, and a junk mail's, download byte for byte as `message/rfc822`.
#[tokio::test]
async fn raw_sources_are_kept_and_downloadable() {
    if !mail_servers("raw_sources_are_kept_and_downloadable") {
        return;
    }
    let Desk { dovecot, sink, server, admin } = Desk::start().await;
    let small = mail("Ann <ann@customer.test>", "Small one", "small@customer.test", "", "a short question");
    let long_body = "a long line of a long mail that takes up space\r\n".repeat(2_000);
    let large = mail("Ben <ben@customer.test>", "Large one", "large@customer.test", "", &long_body);
    assert!(large.len() > 64 * 1024, "larger than what is kept in the row");
    let junk = mail("Ann <ann@customer.test>", "Away", "away@customer.test", "Auto-Submitted: auto-replied\r\n", "out");
    for raw in [&small, &large, &junk] {
        dovecot.deliver(raw);
    }
    let channel = plain_mailbox(&admin, &dovecot, &sink, "imap").await["id"].as_i64().unwrap();
    let t = wait_tickets(&admin, channel, 2).await;
    let log = eventually("the junk mail logged", || async {
        let log = admin.ok_get(&format!("/api/v1/email-channels/{channel}/log")).await;
        log.as_array().filter(|l| l.len() == 1).cloned()
    })
    .await;

    let download = |path: String| {
        let req = admin.request(reqwest::Method::GET, &path);
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let kind = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            (status, kind, resp.bytes().await.unwrap().to_vec())
        }
    };
    for (ticket, sent) in t.iter().zip([&small, &large]) {
        let id = ticket["id"].as_i64().unwrap();
        let message = messages(&admin, id).await[0]["id"].as_i64().unwrap();
        let (status, kind, body) = download(format!("/api/v1/conversations/{id}/messages/{message}/source")).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(kind.as_deref(), Some("message/rfc822"));
        assert_eq!(lf(&body), lf(sent), "the source of {:?} as it was received", ticket["subject"]);
    }
    // Only the large source is a file (these mails have no attachments).
    let files = files_under(&server.data_dir().join("attachments"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(lf(&std::fs::read(&files[0]).unwrap()), lf(&large));

    let log_id = log[0]["id"].as_i64().unwrap();
    let (status, kind, body) = download(format!("/api/v1/email-channels/{channel}/log/{log_id}/source")).await;
    assert_eq!((status, kind.as_deref()), (200, Some("message/rfc822")));
    assert_eq!(lf(&body), lf(&junk));

    // Asked for wrongly: not found, or not allowed.
    let (first, second) = (t[0]["id"].as_i64().unwrap(), t[1]["id"].as_i64().unwrap());
    let message = messages(&admin, first).await[0]["id"].as_i64().unwrap();
    let bob = server.agent("bob@desk.test", "agent").await;
    for (who, path, expected) in [
        (&admin, format!("/api/v1/conversations/{second}/messages/{message}/source"), 404),
        (&admin, format!("/api/v1/conversations/{first}/messages/{}/source", message + 1000), 404),
        (&admin, format!("/api/v1/email-channels/{channel}/log/{}/source", log_id + 1000), 404),
        (&admin, format!("/api/v1/email-channels/{}/log/{log_id}/source", channel + 1000), 404),
        (&bob, format!("/api/v1/conversations/{first}/messages/{message}/source"), 404),
        (&bob, format!("/api/v1/email-channels/{channel}/log/{log_id}/source"), 403),
    ] {
        let (status, body) = who.get(&path).await;
        assert_eq!(status.as_u16(), expected, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: a JSON error, not a mail: {body}");
    }
}

/// A batch of mail as the connector hands it to the store (EM-6, EM-5): stored in order in one go, so a mail
/// threads into one stored just before it in the same batch; a mail that fails is rolled back alone — the ones
/// before it stay stored, the ones after it are not stored (they are fetched again next round); and the same
/// batch again stores nothing twice. Needs no mail server: the store is called as the connector calls it.
#[tokio::test]
async fn a_batch_threads_within_itself_and_stops_at_a_failing_mail() {
    use switchboard::channels::email::TicketLookup;
    use switchboard::store::StoreError;
    use switchboard::store::email::{
        BatchImport, BatchMail, Imported, IncomingMail, LoggedMail, MailTarget, RawSource, Route, Sender, ThreadedMail,
        mail_log,
    };

    let server = TestServer::start().await;
    let admin = server.agent("admin@desk.test", "super_admin").await;
    let team = admin.ok_post("/api/v1/teams", json!({"name": "Mail"}), 201).await["id"].as_i64().unwrap();
    let channel = admin.channel("email", "Batch inbox", None).await;
    let incoming = move |message_id: &str, target: MailTarget, text: &str| IncomingMail {
        channel_id: channel,
        message_id: message_id.to_owned(),
        sender: Sender::Customer { email: "ann@customer.test".into(), name: Some("Ann".into()), create: true },
        subject: "Printer".into(),
        text: text.into(),
        html: None,
        files: vec![],
        source: RawSource::Inline(format!("Message-ID: <{message_id}>\r\n\r\n{text}\r\n").into_bytes()),
        from_address: "ann@customer.test".into(),
        recipients: vec![],
        target,
        note: false,
        close: false,
        unsubscribe: false,
    };
    let batch = |incoming: &(dyn Fn(&str, MailTarget, &str) -> IncomingMail + Send + Sync)| {
        // Plus-addressed to the team (EM-7).
        let first =
            incoming("first@customer.test", MailTarget::New { team_id: Some(team), subscribers: vec![] }, "broken");
        let second = incoming("second@customer.test", MailTarget::Reply { conversation_id: 0 }, "still broken");
        let failing = incoming("third@customer.test", MailTarget::Reply { conversation_id: 987_654 }, "lost?");
        let junk = LoggedMail {
            channel_id: channel,
            message_id: "away@customer.test".into(),
            from_address: "ann@customer.test".into(),
            subject: "Away".into(),
            outcome: "junk",
            reason: "auto-submitted".into(),
            source: RawSource::Inline(b"Message-ID: <away@customer.test>\r\n\r\nout\r\n".to_vec()),
        };
        vec![
            BatchMail::Thread(ThreadedMail {
                number: None,
                ids: vec!["first@customer.test".into()],
                route: Box::new(move |index| match index.ticket_by_message_id("first@customer.test") {
                    Some(conversation_id) => Route::Duplicate { conversation_id },
                    None => Route::Store { mail: Box::new(first), subject: "Printer".into() },
                }),
            }),
            BatchMail::Thread(ThreadedMail {
                number: None,
                ids: vec!["first@customer.test".into(), "second@customer.test".into()],
                route: Box::new(move |index| {
                    if let Some(conversation_id) = index.ticket_by_message_id("second@customer.test") {
                        return Route::Duplicate { conversation_id };
                    }
                    // The mail before it in this batch is already there to thread into.
                    let ticket = index.ticket_by_message_id("first@customer.test").expect("the first mail is visible");
                    Route::Store {
                        mail: Box::new(IncomingMail {
                            target: MailTarget::Reply { conversation_id: ticket },
                            ..second
                        }),
                        subject: "Re: Printer".into(),
                    }
                }),
            }),
            BatchMail::Thread(ThreadedMail {
                number: None,
                ids: vec![],
                route: Box::new(move |_| Route::Store { mail: Box::new(failing), subject: "Re: Printer".into() }),
            }),
            BatchMail::Log(junk),
        ]
    };

    let BatchImport { stored, failed } = server.changes().import_mail(batch(&incoming)).await;
    let ticket = match stored.as_slice() {
        [Imported::Created(c), Imported::Appended { conversation, .. }] => {
            assert_eq!(
                conversation.conversation.id, c.conversation.conversation.id,
                "the reply threads into the first"
            );
            // The new ticket as announced live is the ticket as stored (read back with the reply): same team, tags,
            // customer and channel.
            let (new, read) = (&c.conversation, conversation);
            assert_eq!(new.tags, read.tags);
            assert_eq!((new.customer_name.as_str(), new.channel_kind.as_str()), ("Ann", "email"));
            assert_eq!((&new.customer_name, &new.channel_kind), (&read.customer_name, &read.channel_kind));
            assert_eq!(new.conversation.team_id, Some(team));
            assert_eq!(new.conversation.team_id, read.conversation.team_id);
            assert_eq!(new.conversation.customer_id, read.conversation.customer_id);
            c.conversation.conversation.id
        }
        other => panic!("expected a new ticket and a reply, got {} results", other.len()),
    };
    assert!(matches!(failed, Some(StoreError::BadReference(_))), "the third mail names no ticket");
    // What was stored before the failure is committed; nothing of the failing mail or the one after it is.
    let texts: Vec<String> =
        messages(&admin, ticket).await.iter().map(|m| m["content"].as_str().unwrap().to_owned()).collect();
    assert_eq!(texts, ["broken", "still broken"]);
    assert!(mail_log(server.store(), channel, 10).await.unwrap().is_empty(), "the mail after the failure waits");
    assert_eq!(tickets(&admin, channel).await.len(), 1, "one ticket");

    // The same batch again (the connector fetches what it could not acknowledge): nothing is stored twice.
    let BatchImport { stored, failed } = server.changes().import_mail(batch(&incoming)).await;
    assert!(
        matches!(stored.as_slice(), [Imported::Duplicate { conversation_id: a }, Imported::Duplicate { conversation_id: b }] if *a == ticket && *b == ticket),
        "both stored mails are recognised"
    );
    assert!(matches!(failed, Some(StoreError::BadReference(_))));
    assert_eq!(messages(&admin, ticket).await.len(), 2);
    assert_eq!(tickets(&admin, channel).await.len(), 1);
}

/// covers CORE-7 with EM-6 and EM-13 (#14: one lifecycle rule for every channel): a customer's mail threaded into a
/// pending ticket reopens it; into a closed ticket it starts a new ticket (before, mail reopened a closed ticket while
/// the custom channel started a new conversation); an agent's mail to the closed ticket joins it and leaves it closed;
/// `#close#` closes. Needs no mail server: the store is called as the connector calls it.
#[tokio::test]
async fn a_customer_mail_to_a_closed_ticket_starts_a_new_one() {
    use switchboard::store::email::{
        BatchImport, BatchMail, Imported, IncomingMail, MailTarget, RawSource, Route, Sender, ThreadedMail,
    };

    let server = TestServer::start().await;
    let admin = server.agent("admin@desk.test", "super_admin").await;
    let channel = admin.channel("email", "Lifecycle inbox", None).await;
    let mail = |message_id: &str, sender: Sender, target: MailTarget, close: bool| IncomingMail {
        channel_id: channel,
        message_id: message_id.to_owned(),
        sender,
        subject: "Printer".into(),
        text: message_id.into(),
        html: None,
        files: vec![],
        source: RawSource::Inline(format!("Message-ID: <{message_id}>\r\n\r\n.\r\n").into_bytes()),
        from_address: "ann@customer.test".into(),
        recipients: vec![],
        target,
        note: false,
        close,
        unsubscribe: false,
    };
    let ann = || Sender::Customer { email: "ann@customer.test".into(), name: Some("Ann".into()), create: true };
    let import = |m: IncomingMail| async {
        let BatchImport { mut stored, failed } = server
            .changes()
            .import_mail(vec![BatchMail::Thread(ThreadedMail {
                number: None,
                ids: vec![],
                route: Box::new(move |_| Route::Store { mail: Box::new(m), subject: "Printer".into() }),
            })])
            .await;
        assert!(failed.is_none(), "{failed:?}");
        assert_eq!(stored.len(), 1);
        stored.remove(0)
    };
    let status = |id: i64| {
        let admin = &admin;
        async move { admin.ok_get(&format!("/api/v1/conversations/{id}")).await["status"].as_str().unwrap().to_owned() }
    };

    let ticket =
        match import(mail("a@customer.test", ann(), MailTarget::New { team_id: None, subscribers: vec![] }, false))
            .await
        {
            Imported::Created(c) => c.conversation.conversation.id,
            _ => panic!("a new ticket"),
        };
    let reply = MailTarget::Reply { conversation_id: ticket };
    // Pending → a customer's mail joins and reopens it.
    patch_ok(&admin, &format!("/api/v1/conversations/{ticket}"), json!({"status": "pending"})).await;
    assert!(matches!(import(mail("b@customer.test", ann(), reply.clone(), false)).await, Imported::Appended { .. }));
    assert_eq!(status(ticket).await, "open");
    // `#close#` closes it (EM-13).
    assert!(matches!(import(mail("c@customer.test", ann(), reply.clone(), true)).await, Imported::Appended { .. }));
    assert_eq!(status(ticket).await, "closed");
    // An agent's mail to the closed ticket joins it; it stays closed.
    let agent = Sender::Agent { id: admin.agent_id };
    assert!(matches!(import(mail("d@desk.test", agent, reply.clone(), false)).await, Imported::Appended { .. }));
    assert_eq!(status(ticket).await, "closed");
    // Closed → the customer's mail starts a new ticket (CORE-7); the closed one is left as it was.
    let follow_up = match import(mail("e@customer.test", ann(), reply.clone(), false)).await {
        Imported::Created(c) => c.conversation.conversation.id,
        _ => panic!("a customer's mail to a closed ticket starts a new one"),
    };
    assert_ne!(follow_up, ticket);
    assert_eq!(status(ticket).await, "closed");
    assert_eq!(status(follow_up).await, "open");
    assert_eq!(messages(&admin, ticket).await.len(), 4);
    let texts: Vec<Value> = messages(&admin, follow_up).await.iter().map(|m| m["content"].clone()).collect();
    assert_eq!(texts, [json!("e@customer.test")]);
}

// covers issue #14 (each mailbox polled by one node): the lease a node needs to poll a mailbox, on this run's database
// (SQLite, or PostgreSQL with SWITCHBOARD_TEST_DATABASE) — held by one node at a time, renewed, released, taken over
// only once expired, and taken at once by a node that is alone.
#[tokio::test]
async fn a_mailbox_lease_is_held_by_one_node_at_a_time() {
    use std::collections::HashSet;
    use std::time::Instant;
    use switchboard::cluster::lease::{Job, Leases, Timing};

    let server = TestServer::start().await;
    let store = server.store().clone();
    // Generous margins: a call may wait for the SQLite writer while other tests import mail.
    let timing = Timing { ttl: Duration::from_secs(3), renew_every: Duration::from_millis(500) };
    let a = Leases::new(store.clone(), "node-a".into(), timing);
    let b = Leases::new(store.clone(), "node-b".into(), timing);
    let job = Job::Mailbox(1_000_001);
    let only = HashSet::from([job]);

    assert_eq!(a.hold(&[job]).await, only, "a free lease is taken");
    assert!(b.hold(&[job]).await.is_empty(), "held by a: b waits");
    assert_eq!(a.hold(&[job]).await, only, "a keeps it");
    assert_eq!(polled_by(&store, job).await.as_deref(), Some("node-a"));

    // Released when no longer wanted: b takes it at its next call.
    assert!(a.hold(&[]).await.is_empty());
    assert_eq!(polled_by(&store, job).await, None);
    assert_eq!(b.hold(&[job]).await, only);
    assert!(a.hold(&[job]).await.is_empty(), "now held by b: a waits");

    // Renewed while b keeps calling, past its time-to-live: a never gets it.
    let until = Instant::now() + timing.ttl + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(b.hold(&[job]).await, only, "b renews its lease");
        assert!(a.hold(&[job]).await.is_empty(), "a never gets a lease b renews");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // b stops calling (it died): a takes over once the lease expired, not before.
    let died = Instant::now();
    let taken = loop {
        if a.hold(&[job]).await == only {
            break died.elapsed();
        }
        assert!(died.elapsed() < timing.ttl * 3, "a did not take over the expired lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // b's last renewal was up to one renewal period (plus the loop's pause) before it stopped.
    let earliest = timing.ttl - timing.renew_every - Duration::from_millis(300);
    assert!(taken >= earliest, "taken over after {taken:?}, before b's lease could expire");
    assert_eq!(polled_by(&store, job).await.as_deref(), Some("node-a"));

    // A node that is alone takes any lease at once; a clean stop hands everything back.
    let solo = Leases::solo(store.clone(), "node-solo".into(), timing);
    assert_eq!(solo.hold(&[job]).await, only);
    solo.release_all().await;
    assert_eq!(polled_by(&store, job).await, None);
}

/// Who holds `job`'s lease, if anyone.
async fn polled_by(store: &switchboard::store::Store, job: switchboard::cluster::lease::Job) -> Option<String> {
    let leases = switchboard::store::leases::of(store, &[job.lease_name()]).await.unwrap();
    leases.into_iter().next().map(|l| l.holder)
}

/// #14 item 1: a mail that threads into an existing ticket is committed by that ticket's conversation actor, like
/// every other change to an existing conversation — not inside the importer's batch transaction. With the node's
/// actors stopped, a new ticket from mail is still stored (creations need no actor) but a reply to it is not:
/// the importer reports it unstored (so the connector leaves it on the server and fetches it again) and the ticket
/// is unchanged. Before, the reply was committed by the batch whatever its actor was doing. Before stopping the
/// actors, a mail and agent replies sent at once to the same ticket are committed one after another, each its own
/// `seq` with no gap. Needs no mail server: the change layer is called as the connector calls it.
#[tokio::test]
async fn a_mail_to_an_existing_ticket_is_committed_by_its_actor() {
    use switchboard::store::email::{
        BatchImport, BatchMail, Imported, IncomingMail, MailTarget, RawSource, Route, Sender, ThreadedMail,
    };

    let server = TestServer::start().await;
    let admin = server.agent("admin@desk.test", "super_admin").await;
    let channel = admin.channel("email", "Actor inbox", None).await;
    let mail = |message_id: &str, target: MailTarget| IncomingMail {
        channel_id: channel,
        message_id: message_id.to_owned(),
        sender: Sender::Customer { email: "ann@customer.test".into(), name: Some("Ann".into()), create: true },
        subject: "Printer".into(),
        text: message_id.into(),
        html: None,
        files: vec![],
        source: RawSource::Inline(format!("Message-ID: <{message_id}>\r\n\r\n.\r\n").into_bytes()),
        from_address: "ann@customer.test".into(),
        recipients: vec![],
        target,
        note: false,
        close: false,
        unsubscribe: false,
    };
    let one = |m: IncomingMail| {
        vec![BatchMail::Thread(ThreadedMail {
            number: None,
            ids: vec![],
            route: Box::new(move |_| Route::Store { mail: Box::new(m), subject: "Printer".into() }),
        })]
    };
    let new = || MailTarget::New { team_id: None, subscribers: vec![] };

    let BatchImport { stored, failed } = server.changes().import_mail(one(mail("a@customer.test", new()))).await;
    assert!(failed.is_none(), "{failed:?}");
    let ticket = match stored.as_slice() {
        [Imported::Created(c)] => c.conversation.conversation.id,
        _ => panic!("a new ticket"),
    };
    let reply = MailTarget::Reply { conversation_id: ticket };

    // A mail and two agent replies at once: the actor commits them one at a time.
    let changes = server.changes().clone();
    let by_mail = changes.import_mail(one(mail("b@customer.test", reply.clone())));
    let path = format!("/api/v1/conversations/{ticket}/messages");
    let first = admin.ok_post(&path, json!({"content": "one"}), 201);
    let second = admin.ok_post(&path, json!({"content": "two"}), 201);
    let (BatchImport { stored, failed }, _, _) = tokio::join!(by_mail, first, second);
    assert!(failed.is_none(), "{failed:?}");
    assert!(matches!(stored.as_slice(), [Imported::Appended { .. }]));
    let seqs: Vec<i64> = messages(&admin, ticket).await.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "each change its own seq, no gap");

    // Without actors, the reply waits (not stored); a new ticket does not need one.
    server.changes().stop(tokio::time::Instant::now() + Duration::from_secs(10)).await.expect("actors stop");
    let attempt = server.changes().import_mail(one(mail("c@customer.test", reply.clone())));
    let BatchImport { stored, failed } =
        tokio::time::timeout(Duration::from_secs(10), attempt).await.expect("the import returns");
    assert!(stored.is_empty(), "nothing stored without the ticket's actor");
    assert!(failed.is_some(), "the mail is reported unstored, to be fetched again");
    assert_eq!(messages(&admin, ticket).await.len(), 4, "the ticket is unchanged");
    let BatchImport { stored, failed } = server.changes().import_mail(one(mail("d@customer.test", new()))).await;
    assert!(failed.is_none(), "{failed:?}");
    assert!(matches!(stored.as_slice(), [Imported::Created(_)]));
}

// covers #17 item 9 (invitations by mail): with a mailbox enabled, an invitation is also mailed through its SMTP
// settings; the link in the mail is the one the admin was shown, and it sets the password once.
/// CU-1 (#18): "forgot password" mails the customer a link through the real SMTP server; the outbox row never held
/// the token in the clear, and the mailed link sets the password once.
#[tokio::test]
async fn cu_1_a_forgotten_password_is_mailed_with_a_link_that_works_once() {
    if !mail_servers("cu_1_a_forgotten_password_is_mailed_with_a_link_that_works_once") {
        return;
    }
    let Desk { dovecot, sink, server, admin } = Desk::start().await;
    plain_mailbox(&admin, &dovecot, &sink, "imap").await;
    let shop = admin.channel("custom", "Shop", Some("async")).await;
    common::portal::customer_with_ticket(&admin, shop, "rio", "rio@shop.test", "Where is my order?").await;
    let anonymous = server.anonymous();
    anonymous.ok_post("/portal/api/password/forgot", json!({"email": "rio@shop.test"}), 202).await;

    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got[0].rcpt_to, vec!["rio@shop.test".to_owned()]);
    let text = String::from_utf8_lossy(&got[0].raw).replace("=\r\n", "").replace("=3D", "=");
    let start = text.find("/portal/reset/").unwrap_or_else(|| panic!("a reset link in the mail: {text}"));
    let token: String = text[start + "/portal/reset/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert!(token.len() >= 20, "a whole token: {token:?}");
    let web = switchboard::store::portal::web_channel(server.store()).await.unwrap();
    let rows = switchboard::store::outbox::list_for_channel(server.store(), web.id, 10).await.unwrap();
    let row = rows.iter().find(|r| r.kind == switchboard::store::portal::PASSWORD_EMAIL).expect("the outbox row");
    assert!(!row.payload.contains(&token), "the outbox row holds the token in the clear: {}", row.payload);

    let set = |password: &'static str| {
        let anonymous = &anonymous;
        let token = token.clone();
        async move {
            anonymous.post("/portal/api/password/reset", json!({"token": token, "password": password})).await.0.as_u16()
        }
    };
    assert_eq!(set("a good long password").await, 200);
    assert_eq!(set("another long password").await, 400, "the mailed link works once");
}

#[tokio::test]
async fn an_invitation_is_mailed_and_its_link_works_once() {
    if !mail_servers("an_invitation_is_mailed_and_its_link_works_once") {
        return;
    }
    let Desk { dovecot, sink, server, admin } = Desk::start().await;
    plain_mailbox(&admin, &dovecot, &sink, "imap").await;
    let body = json!({"email": "nia@desk.test", "name": "Nia"});
    let created = admin.ok_post("/api/v1/agents/invitations", body, 201).await;
    assert_eq!(created["mailed"], true, "{created}");
    let url = created["url"].as_str().unwrap().to_owned();

    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got[0].rcpt_to, vec!["nia@desk.test".to_owned()]);
    let subject = header(&got[0].raw, "Subject").unwrap();
    assert!(subject.contains("invited you"), "{subject}");
    let text = String::from_utf8_lossy(&got[0].raw).replace("=\r\n", "");
    assert!(text.contains(&url), "the mail carries the link the admin was shown: {text}");

    let token = url.rsplit('/').next().unwrap();
    let anonymous = server.anonymous();
    let accept = |password: &'static str| {
        let anonymous = &anonymous;
        let path = format!("/api/v1/invitations/{token}");
        async move { anonymous.post(&path, json!({"password": password})).await.0.as_u16() }
    };
    assert_eq!(accept("a good long password").await, 200);
    assert_eq!(accept("another long password").await, 422, "the mailed link works once");
}
