//! Email notifications (issue #18, NT-1…NT-13) end to end: mail in through the real Dovecot, the change feed's mail
//! consumer, the outbox, and the mail read back from the real SMTP sink — who receives what, and who does not.
//!
//! "Nobody else got anything" is checked after the system settled: the mail consumer took every feed row and every
//! queued notification was delivered (`settle`), so an absent mail is not one still on its way.

use serde_json::{Value, json};
use switchboard::store::{self, feed::Consumer};

use super::common::mail::{Dovecot, ReceivedMail, SmtpSink, mail_servers};
use super::common::{Api, TestServer};
use super::{eventually, header, mail, patch_ok, plain_mailbox, wait_messages, wait_tickets};

/// A desk with notifications on (the defaults of a new install).
struct Notifying {
    dovecot: Dovecot,
    sink: SmtpSink,
    server: TestServer,
    admin: Api,
    mailbox: i64,
}

impl Notifying {
    async fn start() -> Self {
        let (dovecot, sink) = (Dovecot::start(), SmtpSink::start());
        let server = TestServer::start().await;
        let admin = server.agent("admin@desk.test", "super_admin").await;
        let mailbox = plain_mailbox(&admin, &dovecot, &sink, "imap").await["id"].as_i64().unwrap();
        Notifying { dovecot, sink, server, admin, mailbox }
    }

    /// An agent, given the mailbox when `access`.
    async fn agent(&self, email: &str, access: bool) -> Api {
        let a = self.server.agent(email, "agent").await;
        if access {
            self.admin
                .ok_put(&format!("/api/v1/agents/{}/channels", a.agent_id), json!({"channel_ids": [self.mailbox]}))
                .await;
        }
        a
    }

    async fn team(&self, name: &str, members: &[&Api]) -> i64 {
        let ids: Vec<i64> = members.iter().map(|a| a.agent_id).collect();
        self.admin.ok_post("/api/v1/teams", json!({"name": name, "member_ids": ids}), 201).await["id"].as_i64().unwrap()
    }

    async fn settings(&self, change: Value) {
        patch_ok(&self.admin, "/api/v1/settings/notifications", change).await;
    }

    /// Wait until the mail consumer took every feed row and no notification waits in the outbox.
    async fn settle(&self) {
        let store = self.server.store();
        eventually("every notification is queued and sent", || async {
            let feed = store::feed::pending(store, Consumer::MailNotifications).await.unwrap();
            let waiting = store::outbox::list_for_channel(store, self.mailbox, 1000)
                .await
                .unwrap()
                .into_iter()
                .filter(|d| d.state == "pending")
                .count();
            (feed == 0 && waiting == 0).then_some(())
        })
        .await;
    }

    /// The mails `to` received, in arrival order.
    fn to(&self, to: &str) -> Vec<ReceivedMail> {
        self.sink.received().into_iter().filter(|m| m.rcpt_to.iter().any(|r| r == to)).collect()
    }

    /// Wait until `to` received a mail whose subject contains `subject`; return it.
    async fn wait_mail(&self, to: &str, subject: &str) -> ReceivedMail {
        eventually(&format!("a mail to {to} about {subject:?}"), || async {
            self.to(to).into_iter().find(|m| header(&m.raw, "Subject").is_some_and(|s| s.contains(subject)))
        })
        .await
    }
}

fn subjects(mails: &[ReceivedMail]) -> Vec<String> {
    mails.iter().map(|m| header(&m.raw, "Subject").unwrap_or_default()).collect()
}

fn text(m: &ReceivedMail) -> String {
    String::from_utf8_lossy(&m.raw).into_owned()
}

/// A mail's text and HTML parts, decoded (quoted-printable or base64).
fn decoded(m: &ReceivedMail) -> String {
    let parsed = mail_parser::MessageParser::default().parse(&m.raw[..]).expect("a mail");
    let text = parsed.body_text(0).unwrap_or_default().into_owned();
    let html = parsed.body_html(0).unwrap_or_default().into_owned();
    format!("{text}\n{html}")
}

/// A mail with one attached file `name`.
fn mail_with_file(from: &str, subject: &str, message_id: &str, name: &str) -> Vec<u8> {
    format!(
        "Return-Path: <{from}>\r\nFrom: {from}\r\nTo: desk@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <{message_id}>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         See the file.\r\n--b1\r\nContent-Type: text/plain; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\r\nfile body\r\n--b1--\r\n"
    )
    .into_bytes()
}

// covers NT-1…NT-13 (the settings): defaults of a new install, admins only, bad input changes nothing, audited
#[tokio::test]
async fn the_notification_settings_are_admins_only_and_audited() {
    let server = TestServer::start().await;
    let admin = server.agent("admin@desk.test", "super_admin").await;
    let agent = server.agent("agent@desk.test", "agent").await;
    let path = "/api/v1/settings/notifications";
    let defaults = admin.ok_get(path).await;
    assert_eq!(
        defaults,
        json!({"enabled": true, "ticket_closed": true, "ticket_confirmation": true, "new_ticket_admins": true,
               "new_ticket_category": true, "customer_update_category": true, "kb_article_category": true,
               "ticket_taken_category": true, "include_attachments": true, "auto_login_links": true,
               "cc_subscribers": false, "customer_updates_technicians_only": false, "welcome_email": true})
    );
    assert_eq!(agent.get(path).await.0.as_u16(), 403);
    assert_eq!(agent.patch(path, json!({"enabled": false})).await.0.as_u16(), 403);
    for bad in [json!({"enabled": false, "colour": "blue"}), json!({"enabled": "no"}), json!([true])] {
        let (status, answer) = admin.patch(path, bad.clone()).await;
        assert_eq!(status.as_u16(), 400, "{bad}: {answer}");
    }
    assert_eq!(admin.ok_get(path).await, defaults, "nothing changed on bad input");
    let changed = patch_ok(&admin, path, json!({"cc_subscribers": true, "welcome_email": false})).await;
    assert_eq!(changed["cc_subscribers"], true);
    assert_eq!(changed["welcome_email"], false);
    assert_eq!(changed["enabled"], true, "the rest is kept");
    assert_eq!(admin.ok_get(path).await, changed);
    let audit = admin.ok_get("/api/v1/audit?entity_type=notification_settings").await;
    let entry = &audit.as_array().unwrap()[0];
    assert_eq!(entry["action"], "notification_settings.update");
    assert_eq!(entry["actor_id"], admin.agent_id, "{entry}");
    assert_eq!(entry["details"]["changed"], json!({"cc_subscribers": true, "welcome_email": false}), "{entry}");
}

// covers NT-3, NT-4, NT-5, NT-6, EM-6 (a reply to a notification threads in), Auto-Submitted, threading headers,
// HD-13 (an agent of the category without channel access is not told)
#[tokio::test]
async fn a_ticket_by_mail_is_confirmed_and_told_to_admins_and_its_category() {
    if !mail_servers("a_ticket_by_mail_is_confirmed_and_told_to_admins_and_its_category") {
        return;
    }
    let d = Notifying::start().await;
    let alice = d.agent("alice@desk.test", true).await;
    let bob = d.agent("bob@desk.test", false).await;
    let printers = d.team("Printers", &[&alice, &bob]).await;
    patch_ok(&d.admin, &format!("/api/v1/email-channels/{}", d.mailbox), json!({"default_team_id": printers})).await;

    d.dovecot.deliver(&mail("Jane Doe <jane@customer.test>", "Printer on fire", "n1@customer.test", "", "Help."));
    let t = wait_tickets(&d.admin, d.mailbox, 1).await;
    let (ticket, number) = (t[0]["id"].as_i64().unwrap(), t[0]["number"].as_i64().unwrap());
    assert_eq!(t[0]["team_id"], printers);

    let confirmation = d.wait_mail("jane@customer.test", "We received your request").await;
    let to_admin = d.wait_mail("admin@desk.test", "New ticket").await;
    let to_alice = d.wait_mail("alice@desk.test", "New ticket in Printers").await;
    d.settle().await;
    assert!(d.to("bob@desk.test").is_empty(), "Bob may not see the mailbox: {:?}", subjects(&d.to("bob@desk.test")));
    assert_eq!(
        d.sink.received().len(),
        4,
        "confirmation, admin, Alice, and Jane's welcome: {:?}",
        subjects(&d.sink.received())
    );
    d.wait_mail("jane@customer.test", "Welcome").await;

    for m in [&confirmation, &to_admin, &to_alice] {
        assert_eq!(header(&m.raw, "Auto-Submitted").as_deref(), Some("auto-generated"));
        assert!(header(&m.raw, "Subject").unwrap().contains(&format!("{{#{number}}}")));
        assert_eq!(header(&m.raw, "In-Reply-To").as_deref(), Some("<n1@customer.test>"));
        assert!(header(&m.raw, "References").unwrap().contains("<n1@customer.test>"));
        assert!(header(&m.raw, "Message-ID").unwrap().contains("@example.test>"));
        assert_eq!(header(&m.raw, "Reply-To").as_deref(), Some("desk@example.test"));
    }
    assert_eq!(confirmation.rcpt_to, vec!["jane@customer.test".to_owned()]);
    assert!(text(&to_alice).contains(&format!("/tickets/{ticket}")), "a link to the ticket");

    // Jane answers the confirmation: it threads into her ticket (EM-6) …
    let conf_id = header(&confirmation.raw, "Message-ID").unwrap();
    let subject = header(&confirmation.raw, "Subject").unwrap();
    d.dovecot.deliver(&mail(
        "jane@customer.test",
        &format!("Re: {subject}"),
        "n2@customer.test",
        &format!("In-Reply-To: {conf_id}\r\nReferences: <n1@customer.test> {conf_id}\r\n"),
        "Any news?",
    ));
    let m = wait_messages(&d.admin, ticket, 2).await;
    assert_eq!(m[1]["content"], "Any news?");
    assert_eq!(wait_tickets(&d.admin, d.mailbox, 1).await.len(), 1, "no new ticket");
    // … and every agent of the category who may see it is told (NT-6); not the admin, not Jane herself.
    let update = d.wait_mail("alice@desk.test", "updated: Printer on fire").await;
    assert!(text(&update).contains("Any news?"));
    d.settle().await;
    assert_eq!(d.to("admin@desk.test").len(), 1);
    assert_eq!(
        d.to("jane@customer.test").len(),
        2,
        "confirmation and welcome only: {:?}",
        subjects(&d.to("jane@customer.test"))
    );
    assert!(d.to("bob@desk.test").is_empty());
}

// covers NT-2, NT-5 (moved into a category), NT-8, and "never to the one who made the change"
#[tokio::test]
async fn taking_moving_and_closing_tell_the_right_people_once() {
    if !mail_servers("taking_moving_and_closing_tell_the_right_people_once") {
        return;
    }
    let d = Notifying::start().await;
    d.settings(json!({"welcome_email": false})).await;
    let alice = d.agent("alice@desk.test", true).await;
    let carol = d.agent("carol@desk.test", true).await;
    let dave = d.agent("dave@desk.test", true).await;
    let first_line = d.team("First line", &[&alice, &carol]).await;
    let second_line = d.team("Second line", &[&carol, &dave]).await;
    patch_ok(&d.admin, &format!("/api/v1/email-channels/{}", d.mailbox), json!({"default_team_id": first_line})).await;
    d.dovecot.deliver(&mail("jane@customer.test", "Broken screen", "s1@customer.test", "", "It flickers."));
    let ticket = wait_tickets(&d.admin, d.mailbox, 1).await[0]["id"].as_i64().unwrap();
    let path = format!("/api/v1/conversations/{ticket}");
    d.wait_mail("carol@desk.test", "New ticket in First line").await;
    d.settle().await;
    let before = d.sink.received().len();
    assert_eq!(before, 4, "{:?}", subjects(&d.sink.received()));

    // Alice takes it: Carol is told, not Alice (NT-8).
    patch_ok(&alice, &path, json!({"assignee_id": alice.agent_id})).await;
    let taken = d.wait_mail("carol@desk.test", "took: Broken screen").await;
    assert!(text(&taken).contains("took the ticket"), "{}", text(&taken));
    // The admin moves it to the second line: Dave is told; Carol saw it in the first line (NT-5).
    patch_ok(&d.admin, &path, json!({"team_id": second_line})).await;
    let moved = d.wait_mail("dave@desk.test", "New ticket in Second line").await;
    assert!(text(&moved).contains("moved"), "{}", text(&moved));
    // The admin closes it: Jane is told (NT-2); the admin is not.
    patch_ok(&d.admin, &path, json!({"status": "closed"})).await;
    let closed = d.wait_mail("jane@customer.test", "Your ticket was closed").await;
    d.settle().await;

    // The submitter's "ticket closed" mail carries her signed links (NT-10 auto-login, HD-12 rating links, the
    // unsubscribe link), rendered from the ticket_closed template; an agent's mail never carries an auto-login.
    let body = decoded(&closed);
    for path in ["/portal/auto-login/", "/portal/rate/", "/portal/unsubscribe/"] {
        assert!(body.contains(path), "{path} in the closed mail: {body}");
    }
    assert!(!decoded(&taken).contains("/portal/"), "an agent's mail has the dashboard's link only");
    let rate = body
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        .find(|w| w.contains("/portal/rate/"))
        .unwrap();
    let rate = &rate[rate.find("/portal/rate/").unwrap()..];
    let page = reqwest::get(format!("{}{rate}", d.server.base)).await.unwrap();
    assert_eq!(page.status().as_u16(), 200, "the first rating link records a rating");
    let csat = d.admin.ok_get(&path).await["csat"].clone();
    assert!(["good", "average", "bad"].contains(&csat.as_str().unwrap_or_default()), "{csat}");

    let count = |to: &str| d.to(to).len();
    assert_eq!(count("alice@desk.test"), 1, "{:?}", subjects(&d.to("alice@desk.test")));
    assert_eq!(count("carol@desk.test"), 2, "{:?}", subjects(&d.to("carol@desk.test")));
    assert_eq!(count("dave@desk.test"), 1, "{:?}", subjects(&d.to("dave@desk.test")));
    assert_eq!(count("admin@desk.test"), 1, "{:?}", subjects(&d.to("admin@desk.test")));
    assert_eq!(count("jane@customer.test"), 2, "{:?}", subjects(&d.to("jane@customer.test")));
    assert_eq!(d.sink.received().len(), before + 3, "each change told once");
}

// covers NT-1 (master switch), EM-12 (junk makes none), NT-13 (welcome once)
#[tokio::test]
async fn the_master_switch_junk_and_the_welcome_mail() {
    if !mail_servers("the_master_switch_junk_and_the_welcome_mail") {
        return;
    }
    let d = Notifying::start().await;
    d.settings(json!({"enabled": false})).await;
    d.dovecot.deliver(&mail("jane@customer.test", "Quiet", "q1@customer.test", "", "Hello?"));
    let ticket = wait_tickets(&d.admin, d.mailbox, 1).await[0]["id"].as_i64().unwrap();
    // Agent replies are not notifications: they still go.
    d.admin.ok_post(&format!("/api/v1/conversations/{ticket}/messages"), json!({"content": "Hello Jane."}), 201).await;
    let reply = d.wait_mail("jane@customer.test", "Quiet").await;
    assert!(text(&reply).contains("Hello Jane."));
    assert_eq!(header(&reply.raw, "Auto-Submitted"), None, "a person's reply is not auto-generated");
    d.settle().await;
    assert_eq!(d.sink.received().len(), 1, "nothing but the reply: {:?}", subjects(&d.sink.received()));

    d.settings(json!({"enabled": true})).await;
    // Junk never makes a ticket, so it notifies nobody.
    d.dovecot.deliver(&mail(
        "robot@elsewhere.test",
        "Out of office",
        "junk1@elsewhere.test",
        "Auto-Submitted: auto-replied\r\n",
        "I am away.",
    ));
    // A new sender gets a customer account and is welcomed, once (NT-13).
    d.dovecot.deliver(&mail("kim@customer.test", "First", "k1@customer.test", "", "One."));
    d.wait_mail("kim@customer.test", "Welcome").await;
    d.dovecot.deliver(&mail("kim@customer.test", "Second", "k2@customer.test", "", "Two."));
    wait_tickets(&d.admin, d.mailbox, 3).await;
    d.wait_mail("kim@customer.test", "We received your request: Second").await;
    d.settle().await;
    let kim = subjects(&d.to("kim@customer.test"));
    assert_eq!(kim.iter().filter(|s| s.contains("Welcome")).count(), 1, "{kim:?}");
    assert_eq!(kim.len(), 3, "welcome and two confirmations: {kim:?}");
    assert!(d.to("robot@elsewhere.test").is_empty());
    assert_eq!(
        d.to("admin@desk.test").len(),
        2,
        "one per ticket, none for the junk: {:?}",
        subjects(&d.to("admin@desk.test"))
    );
    assert_eq!(d.to("jane@customer.test").len(), 1, "no welcome for Jane: she came while notifications were off");
}

// covers NT-9, NT-11 (per-subscriber copies by default, one Cc mail when on), NT-12, EM-10
#[tokio::test]
async fn subscribers_get_copies_and_customer_updates_stay_with_technicians_when_asked() {
    if !mail_servers("subscribers_get_copies_and_customer_updates_stay_with_technicians_when_asked") {
        return;
    }
    let d = Notifying::start().await;
    d.settings(json!({"welcome_email": false, "new_ticket_admins": false})).await;
    let alice = d.agent("alice@desk.test", true).await;
    d.dovecot.deliver(&mail(
        "jane@customer.test",
        "Invoices",
        "i1@customer.test",
        "Cc: bob@customer.test\r\n",
        "Where?",
    ));
    let t = wait_tickets(&d.admin, d.mailbox, 1).await;
    let (ticket, number) = (t[0]["id"].as_i64().unwrap(), t[0]["number"].as_i64().unwrap());
    d.wait_mail("jane@customer.test", "We received your request").await;
    d.settle().await;
    let mut seen = d.sink.received().len();
    let news = |d: &Notifying, seen: &mut usize| {
        let all = d.sink.received();
        let new = all[*seen..].to_vec();
        *seen = all.len();
        new
    };

    // An agent's reply: to Jane alone; Bob gets a copy of his own (NT-11 off, the default).
    d.admin.ok_post(&format!("/api/v1/conversations/{ticket}/messages"), json!({"content": "Here."}), 201).await;
    let copy = d.wait_mail("bob@customer.test", "Ticket updated").await;
    assert!(text(&copy).contains("Here."));
    d.settle().await;
    let new = news(&d, &mut seen);
    assert_eq!(new.len(), 2, "{:?}", subjects(&new));
    let reply = new.iter().find(|m| m.rcpt_to.contains(&"jane@customer.test".to_owned())).unwrap();
    assert_eq!(reply.rcpt_to, vec!["jane@customer.test".to_owned()], "no Cc");

    // Jane writes again by mail: forwarded to Bob (NT-12 off).
    let again = |id: &str, body: &str| mail("jane@customer.test", &format!("Re: Invoices {{#{number}}}"), id, "", body);
    d.dovecot.deliver(&again("i2@customer.test", "Still missing."));
    eventually("the forward of Jane's mail", || async {
        d.to("bob@customer.test").iter().find(|m| text(m).contains("Still missing.")).cloned()
    })
    .await;
    d.settle().await;
    news(&d, &mut seen);

    // NT-12 on: customers' updates reach technicians only — the assignee, never Bob.
    patch_ok(&d.admin, &format!("/api/v1/conversations/{ticket}"), json!({"assignee_id": alice.agent_id})).await;
    d.settings(json!({"customer_updates_technicians_only": true})).await;
    d.dovecot.deliver(&again("i3@customer.test", "Private details."));
    let to_alice = d.wait_mail("alice@desk.test", "Ticket updated").await;
    assert!(text(&to_alice).contains("Private details."));
    d.settle().await;
    let new = news(&d, &mut seen);
    assert!(
        new.iter().all(|m| !text(m).contains("Private details.") || m.rcpt_to == vec!["alice@desk.test".to_owned()]),
        "{:?}",
        subjects(&new)
    );
    assert!(!d.to("bob@customer.test").iter().any(|m| text(m).contains("Private details.")));

    // NT-11 on: one reply with Bob in Cc, no separate copy.
    d.settings(json!({"cc_subscribers": true, "customer_updates_technicians_only": false})).await;
    d.admin.ok_post(&format!("/api/v1/conversations/{ticket}/messages"), json!({"content": "Found them."}), 201).await;
    d.wait_mail("jane@customer.test", "Invoices").await;
    eventually("the reply with Bob in Cc", || async {
        d.sink.received().into_iter().find(|m| text(m).contains("Found them."))
    })
    .await;
    d.settle().await;
    let new = news(&d, &mut seen);
    assert_eq!(new.len(), 1, "{:?}", subjects(&new));
    assert_eq!(new[0].rcpt_to, vec!["jane@customer.test".to_owned(), "bob@customer.test".to_owned()]);

    // NT-9: files ride along while attachments are on, and not when off.
    d.settings(json!({"cc_subscribers": false, "new_ticket_admins": true})).await;
    d.dovecot.deliver(&mail_with_file("jane@customer.test", "With a file", "f1@customer.test", "scan-one.txt"));
    let with = d.wait_mail("admin@desk.test", "With a file").await;
    assert!(text(&with).contains("scan-one.txt"), "{}", text(&with));
    d.settle().await;
    d.settings(json!({"include_attachments": false})).await;
    d.dovecot.deliver(&mail_with_file("jane@customer.test", "Another file", "f2@customer.test", "scan-two.txt"));
    let without = d.wait_mail("admin@desk.test", "Another file").await;
    assert!(!text(&without).contains("scan-two.txt"), "{}", text(&without));
}
