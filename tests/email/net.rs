//! The email channel's network clients (`switchboard::channels::email::net`) against real servers: a private
//! Dovecot for IMAP/POP3 and an aiosmtpd sink for SMTP (tests/common/mail.rs).
//!
//! - EM-1: connect over IMAP or POP3, plain, STARTTLS/STLS or implicit TLS (a self-signed certificate only with
//!   `tls_insecure`), fetch the raw mail unchanged, then mark it read or delete it on the server; wrong password,
//!   wrong port, missing folder and a stopped server are distinct errors (EM-5 counts connection failures).
//! - EM-4: IMAP IDLE wakes up when mail arrives, well before its timeout.
//! - EO-1: a reply sent over SMTP arrives with its Message-ID, In-Reply-To, References, subject and bodies.
//! - EO-3: an unreachable SMTP server is a transient error (the outbox retries), and sending works once it is back.
//!
//! Without Dovecot, openssl or aiosmtpd each test says it is skipped, unless `SWITCHBOARD_REQUIRE_TOOLS=1`
//! (scripts/test.sh installs them and sets it).

use crate::common;

use std::time::{Duration, Instant};

use mail_parser::MimeHeaders;

use common::mail::{Dovecot, SinkTls, SmtpSink, closed_port};
use switchboard::channels::email::net::{
    self, Address, AfterImport, Credentials, Endpoint, MailKey, NetError, OutgoingAttachment, OutgoingMail, Protocol,
    SendError, Session, SmtpSettings, TlsMode,
};
use switchboard::outbound::{AllowedInternal, Policy};

const WAIT: Duration = Duration::from_secs(10);

fn endpoint(port: u16, tls: TlsMode, tls_insecure: bool) -> Endpoint {
    let policy = Policy::new(AllowedInternal::parse(common::LOOPBACK_ALLOWED).unwrap());
    Endpoint { host: "127.0.0.1".into(), port, tls, tls_insecure, policy }
}

fn creds(dovecot: &Dovecot) -> Credentials {
    Credentials { username: dovecot.user().into(), password: dovecot.password().into() }
}

/// A mail with CRLF line ends, a line that starts with a dot (POP3 stuffs it, IMAP does not) and a non-ASCII
/// header.
fn sample(n: usize) -> Vec<u8> {
    format!(
        "From: Jane Doe <jane@example.test>\r\n\
         To: desk@example.test\r\n\
         Subject: =?UTF-8?Q?Dr=C3=BCcker_kaputt?= {n}\r\n\
         Message-ID: <sample-{n}@example.test>\r\n\
         Date: Mon, 01 Dec 2025 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Mail number {n}.\r\n\
         .a line that starts with a dot\r\n\
         ..and one with two\r\n\
         \r\n\
         -- \r\n\
         Jane\r\n"
    )
    .into_bytes()
}

async fn connect(protocol: Protocol, ep: &Endpoint, dovecot: &Dovecot) -> Session {
    Session::connect(protocol, ep, &creds(dovecot), "INBOX")
        .await
        .unwrap_or_else(|e| panic!("connect {protocol:?} {ep:?}: {e}\nDovecot log:\n{}", dovecot.log()))
}

/// EM-1 over plain IMAP: pending → fetch (bytes unchanged, not marked seen) → ack(MarkRead) takes it out of
/// `pending` and leaves it on the server as \Seen.
#[tokio::test]
async fn imap_plain_fetch_and_mark_read() {
    if !common::mail::dovecot("imap_plain_fetch_and_mark_read") {
        return;
    }
    let dovecot = Dovecot::start();
    dovecot.deliver(&sample(1));
    dovecot.deliver(&sample(2));
    let mut s = connect(Protocol::Imap, &endpoint(dovecot.imap_port(), TlsMode::None, false), &dovecot).await;
    assert!(s.supports_idle(), "Dovecot offers IDLE");

    let keys = s.pending().await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let first = s.fetch(&keys[0]).await.unwrap();
    let second = s.fetch(&keys[1]).await.unwrap();
    assert_eq!(first, sample(1), "oldest first, bytes unchanged");
    assert_eq!(second, sample(2));
    assert_eq!(s.pending().await.unwrap(), keys, "BODY.PEEK[] does not mark a mail seen");

    s.ack(&keys[0], AfterImport::MarkRead).await.unwrap();
    assert_eq!(s.pending().await.unwrap(), vec![keys[1].clone()]);
    s.close().await.unwrap();

    let stored = dovecot.messages();
    assert_eq!(stored.len(), 2, "MarkRead leaves the mail on the server");
    assert_eq!(stored.iter().filter(|m| m.seen).count(), 1);
    assert!(stored.iter().any(|m| m.seen && m.raw == sample(1)));

    // A new session sees the same keys for what is left.
    let mut s = connect(Protocol::Imap, &endpoint(dovecot.imap_port(), TlsMode::None, false), &dovecot).await;
    assert_eq!(s.pending().await.unwrap(), vec![keys[1].clone()]);
    s.close().await.unwrap();
}

/// The batch forms the connector uses (EM-1): `waiting` gives every unseen mail with its size, `fetch_many` fetches
/// several in one go (oldest first, bytes unchanged, a key no longer on the server left out), `ack_many` marks or
/// removes several at once — and only those.
#[tokio::test]
async fn batch_fetch_and_acknowledge() {
    if !common::mail::dovecot("batch_fetch_and_acknowledge") {
        return;
    }
    let dovecot = Dovecot::start();
    for n in 1..=5 {
        dovecot.deliver(&sample(n));
    }
    for protocol in [Protocol::Imap, Protocol::Pop3] {
        let port = if protocol == Protocol::Imap { dovecot.imap_port() } else { dovecot.pop3_port() };
        let ep = endpoint(port, TlsMode::None, false);
        let mut s = connect(protocol, &ep, &dovecot).await;
        // What is on the server: all five for IMAP; what IMAP left (1, 2 and 4) for POP3.
        let numbers: Vec<usize> = if protocol == Protocol::Imap { vec![1, 2, 3, 4, 5] } else { vec![1, 2, 4] };
        let waiting = s.waiting().await.unwrap();
        let keys: Vec<MailKey> = waiting.iter().map(|w| w.key.clone()).collect();
        assert_eq!(keys, s.pending().await.unwrap(), "{protocol:?}: the same mails as pending");
        let sizes: Vec<Option<u64>> = waiting.iter().map(|w| w.size).collect();
        let expected: Vec<Option<u64>> = numbers.iter().map(|n| Some(sample(*n).len() as u64)).collect();
        assert_eq!(sizes, expected, "{protocol:?}: sizes as the server counts them");

        let last = keys.len() - 1;
        let mut asked = vec![keys[last].clone(), keys[0].clone(), keys[1].clone()];
        if protocol == Protocol::Imap {
            asked.push(MailKey("1:1".into())); // another UIDVALIDITY: not here
        } else {
            asked.push(MailKey("no-such-uidl".into()));
        }
        let got = s.fetch_many(&asked).await.unwrap();
        let got_keys: Vec<&MailKey> = got.iter().map(|(k, _)| k).collect();
        assert_eq!(
            got_keys,
            vec![&keys[last], &keys[0], &keys[1]],
            "{protocol:?}: in the order asked, unknown left out"
        );
        assert_eq!(got[0].1, sample(numbers[last]));
        assert_eq!(got[1].1, sample(numbers[0]));
        assert_eq!(got[2].1, sample(numbers[1]));
        assert!(s.fetch_many(&[]).await.unwrap().is_empty());

        match protocol {
            Protocol::Imap => {
                s.ack_many(&keys[..2], AfterImport::MarkRead).await.unwrap();
                assert_eq!(s.pending().await.unwrap(), keys[2..].to_vec(), "the two marked are no longer waiting");
                s.ack_many(&[keys[2].clone(), keys[4].clone()], AfterImport::Delete).await.unwrap();
                assert_eq!(s.pending().await.unwrap(), vec![keys[3].clone()]);
                s.close().await.unwrap();
                let left = dovecot.messages();
                assert_eq!(left.len(), 3, "two expunged, the rest kept");
                assert_eq!(left.iter().filter(|m| m.seen).count(), 2);
                assert!(left.iter().any(|m| !m.seen && m.raw == sample(4)));
            }
            Protocol::Pop3 => {
                // Remove the first two; QUIT commits it.
                s.ack_many(&keys[..2], AfterImport::Delete).await.unwrap();
                assert_eq!(s.pending().await.unwrap(), vec![keys[2].clone()]);
                s.close().await.unwrap();
                let left = dovecot.messages();
                assert_eq!(left.len(), 1);
                assert_eq!(left[0].raw, sample(4));
            }
        }
    }
}

/// EM-1 over IMAP with STARTTLS (self-signed certificate, trusted by `tls_insecure`): ack(Delete) expunges the mail.
#[tokio::test]
async fn imap_starttls_fetch_and_delete() {
    if !common::mail::dovecot("imap_starttls_fetch_and_delete") {
        return;
    }
    let dovecot = Dovecot::start();
    dovecot.deliver(&sample(1));
    dovecot.deliver(&sample(2));
    let mut s = connect(Protocol::Imap, &endpoint(dovecot.imap_port(), TlsMode::Starttls, true), &dovecot).await;
    let keys = s.pending().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(s.fetch(&keys[0]).await.unwrap(), sample(1));
    s.ack(&keys[0], AfterImport::Delete).await.unwrap();
    assert_eq!(s.pending().await.unwrap(), vec![keys[1].clone()]);
    assert!(matches!(s.fetch(&keys[0]).await, Err(NetError::NotFound(_))), "an expunged mail is gone");
    assert!(
        matches!(s.fetch(&MailKey("1:1".into())).await, Err(NetError::NotFound(_))),
        "a key of another UIDVALIDITY matches nothing"
    );
    s.close().await.unwrap();
    let stored = dovecot.messages();
    assert_eq!(stored.len(), 1, "deleted at once (UID EXPUNGE), not at logout");
    assert_eq!(stored[0].raw, sample(2));
}

/// EM-1 over IMAPS: the self-signed certificate works with `tls_insecure` and is refused without it, with a TLS
/// error that says why (also for STARTTLS).
#[tokio::test]
async fn imaps_self_signed_certificate() {
    if !common::mail::dovecot("imaps_self_signed_certificate") {
        return;
    }
    let dovecot = Dovecot::start();
    dovecot.deliver(&sample(1));
    let mut s = connect(Protocol::Imap, &endpoint(dovecot.imaps_port(), TlsMode::Implicit, true), &dovecot).await;
    let keys = s.pending().await.unwrap();
    assert_eq!(s.fetch(&keys[0]).await.unwrap(), sample(1));
    s.close().await.unwrap();

    for ep in [
        endpoint(dovecot.imaps_port(), TlsMode::Implicit, false),
        endpoint(dovecot.imap_port(), TlsMode::Starttls, false),
    ] {
        match Session::connect(Protocol::Imap, &ep, &creds(&dovecot), "INBOX").await {
            Err(e @ NetError::Tls { .. }) => {
                assert!(e.is_connection());
                let text = e.to_string();
                assert!(text.contains("certificate") && text.contains("UnknownIssuer"), "{text}");
            }
            Err(e) => panic!("{ep:?}: expected a TLS error, got {e:?}"),
            Ok(_) => panic!("{ep:?}: a self-signed certificate was accepted without tls_insecure"),
        }
    }
}

/// EM-1 over plain POP3: UIDL keys, RETR returns the stored bytes (dot-unstuffed), MarkRead leaves the mail,
/// Delete removes it when the session ends with QUIT.
#[tokio::test]
async fn pop3_plain_fetch_and_delete() {
    if !common::mail::dovecot("pop3_plain_fetch_and_delete") {
        return;
    }
    let dovecot = Dovecot::start();
    dovecot.deliver(&sample(1));
    dovecot.deliver(&sample(2));
    let ep = endpoint(dovecot.pop3_port(), TlsMode::None, false);
    let mut s = connect(Protocol::Pop3, &ep, &dovecot).await;
    assert!(!s.supports_idle());
    assert!(matches!(s.idle(Duration::from_secs(1)).await, Err(NetError::Unsupported(_))));
    let keys = s.pending().await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(s.fetch(&keys[0]).await.unwrap(), sample(1), "oldest first, dot-unstuffed");
    assert_eq!(s.fetch(&keys[1]).await.unwrap(), sample(2));

    s.ack(&keys[0], AfterImport::Delete).await.unwrap();
    s.ack(&keys[1], AfterImport::MarkRead).await.unwrap();
    assert_eq!(s.pending().await.unwrap(), vec![keys[1].clone()]);
    assert_eq!(dovecot.count(), 2, "DELE takes effect at QUIT");
    s.close().await.unwrap();
    let stored = dovecot.messages();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].raw, sample(2));

    // The kept mail has the same key in the next session: the caller skips what it imported.
    let mut s = connect(Protocol::Pop3, &ep, &dovecot).await;
    assert_eq!(s.pending().await.unwrap(), vec![keys[1].clone()]);
    s.close().await.unwrap();
}

/// EM-1 over POP3S and POP3 + STLS with the self-signed certificate; refused without `tls_insecure`. A folder other
/// than the inbox does not exist in POP3.
#[tokio::test]
async fn pop3_tls_modes() {
    if !common::mail::dovecot("pop3_tls_modes") {
        return;
    }
    let dovecot = Dovecot::start();
    dovecot.deliver(&sample(7));
    for ep in [
        endpoint(dovecot.pop3s_port(), TlsMode::Implicit, true),
        endpoint(dovecot.pop3_port(), TlsMode::Starttls, true),
    ] {
        let mut s = connect(Protocol::Pop3, &ep, &dovecot).await;
        let keys = s.pending().await.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(s.fetch(&keys[0]).await.unwrap(), sample(7), "{ep:?}");
        s.close().await.unwrap();
    }
    for ep in [
        endpoint(dovecot.pop3s_port(), TlsMode::Implicit, false),
        endpoint(dovecot.pop3_port(), TlsMode::Starttls, false),
    ] {
        let e = Session::connect(Protocol::Pop3, &ep, &creds(&dovecot), "").await.err().expect("refused");
        assert!(matches!(e, NetError::Tls { .. }), "{ep:?}: {e:?}");
    }
    let ep = endpoint(dovecot.pop3_port(), TlsMode::None, false);
    let e = Session::connect(Protocol::Pop3, &ep, &creds(&dovecot), "Archive").await.err().expect("no folders");
    assert!(matches!(e, NetError::MissingFolder { .. }), "{e:?}");
}

/// EM-4: IDLE returns `true` soon after a mail arrives (delivered from another task), and `false` after its
/// timeout when nothing happens; the session stays usable after both.
#[tokio::test]
async fn imap_idle_wakes_up_on_new_mail() {
    if !common::mail::dovecot("imap_idle_wakes_up_on_new_mail") {
        return;
    }
    let dovecot = std::sync::Arc::new(Dovecot::start());
    let mut s = connect(Protocol::Imap, &endpoint(dovecot.imap_port(), TlsMode::Starttls, true), &dovecot).await;
    assert!(s.supports_idle());
    assert!(s.pending().await.unwrap().is_empty());

    let started = Instant::now();
    assert!(!s.idle(Duration::from_millis(800)).await.unwrap(), "nothing arrived");
    assert!(started.elapsed() < Duration::from_secs(5), "the timeout is kept: {:?}", started.elapsed());

    let deliverer = {
        let dovecot = dovecot.clone();
        tokio::spawn(async move {
            // Give the IDLE command time to start, so the mail really arrives during it (if it came earlier, IDLE
            // would report it at once, and the test would still pass for the wrong reason).
            tokio::time::sleep(Duration::from_millis(500)).await;
            dovecot.deliver(&sample(3));
        })
    };
    let started = Instant::now();
    let changed = s.idle(Duration::from_secs(60)).await.unwrap();
    let waited = started.elapsed();
    deliverer.await.unwrap();
    assert!(changed, "IDLE reports the new mail");
    assert!(waited < Duration::from_secs(10), "well before the 60 s timeout: {waited:?}");
    assert!(waited >= Duration::from_millis(400), "it waited for the mail: {waited:?}");

    let keys = s.pending().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(s.fetch(&keys[0]).await.unwrap(), sample(3));
    s.close().await.unwrap();
}

/// EM-1/EM-5: a wrong password is an authentication error (not a connection failure), for IMAP and POP3; a missing
/// IMAP folder is reported as such and not created.
#[tokio::test]
async fn wrong_password_and_missing_folder() {
    if !common::mail::dovecot("wrong_password_and_missing_folder") {
        return;
    }
    let dovecot = Dovecot::start();
    let wrong = Credentials { username: dovecot.user().into(), password: "not the password".into() };
    for (protocol, port) in [(Protocol::Imap, dovecot.imap_port()), (Protocol::Pop3, dovecot.pop3_port())] {
        let e = Session::connect(protocol, &endpoint(port, TlsMode::None, false), &wrong, "INBOX")
            .await
            .err()
            .expect("a wrong password is refused");
        assert!(matches!(e, NetError::Auth(_)) && !e.is_connection(), "{protocol:?}: {e:?}");
    }
    let e = Session::connect(
        Protocol::Imap,
        &endpoint(dovecot.imap_port(), TlsMode::None, false),
        &creds(&dovecot),
        "Tickets",
    )
    .await
    .err()
    .expect("no such folder");
    match e {
        NetError::MissingFolder { folder, .. } => assert_eq!(folder, "Tickets"),
        e => panic!("expected MissingFolder, got {e:?}"),
    }
    // Not created by the failed attempt: still missing.
    let again = Session::connect(
        Protocol::Imap,
        &endpoint(dovecot.imap_port(), TlsMode::None, false),
        &creds(&dovecot),
        "Tickets",
    )
    .await;
    assert!(matches!(again, Err(NetError::MissingFolder { .. })));
}

/// EM-1/EM-5: a wrong port and a stopped server are connection errors; after the server is back, it works again.
#[tokio::test]
async fn connection_errors_and_server_restart() {
    if !common::mail::dovecot("connection_errors_and_server_restart") {
        return;
    }
    let mut dovecot = Dovecot::start();
    let e = Session::connect(Protocol::Imap, &endpoint(closed_port(), TlsMode::None, false), &creds(&dovecot), "INBOX")
        .await
        .err()
        .expect("nothing listens there");
    assert!(matches!(e, NetError::Connect { .. }) && e.is_connection(), "{e:?}");

    dovecot.deliver(&sample(1));
    dovecot.stop();
    for (protocol, port) in [(Protocol::Imap, dovecot.imap_port()), (Protocol::Pop3, dovecot.pop3_port())] {
        let e = Session::connect(protocol, &endpoint(port, TlsMode::None, false), &creds(&dovecot), "INBOX")
            .await
            .err()
            .expect("the server is down");
        assert!(e.is_connection(), "{protocol:?}: {e:?}");
    }
    dovecot.start_again();
    let mut s = connect(Protocol::Imap, &endpoint(dovecot.imap_port(), TlsMode::None, false), &dovecot).await;
    let keys = s.pending().await.unwrap();
    assert_eq!(s.fetch(&keys[0]).await.unwrap(), sample(1));
    s.close().await.unwrap();
}

fn reply() -> OutgoingMail {
    OutgoingMail {
        from: Address::named("Acme Support", "support@acme.test"),
        to: vec![Address::named("Jane Müller", "jane@example.test")],
        cc: vec![Address::new("boss@example.test")],
        reply_to: Some(Address::new("support@acme.test")),
        subject: "Re: Drücker kaputt {#1042}".into(),
        message_id: "switchboard.1042.0f3a@acme.test".into(),
        in_reply_to: Some("sample-1@example.test".into()),
        references: vec!["root-0@example.test".into(), "sample-1@example.test".into()],
        text: "Hello Jane,\n\nwe have ordered a new one.\n.\nA line with only a dot, above.\n".into(),
        html: Some("<p>Hello Jane,</p><p>we have ordered a <b>new</b> one.</p>".into()),
        attachments: vec![OutgoingAttachment {
            filename: "order.txt".into(),
            content_type: "text/plain".into(),
            data: b"order 77\n".to_vec(),
            content_id: None,
        }],
        auto_generated: false,
    }
}

fn smtp(port: u16, tls: TlsMode, tls_insecure: bool) -> SmtpSettings {
    SmtpSettings { endpoint: endpoint(port, tls, tls_insecure), username: None, password: None }
}

/// EO-1: the sink receives exactly the bytes we built, with the envelope, and the threading headers, subject and
/// both bodies read back as sent.
#[tokio::test]
async fn smtp_send_keeps_threading_headers() {
    if !common::mail::smtp_sink("smtp_send_keeps_threading_headers") {
        return;
    }
    let sink = SmtpSink::start();
    let mail = reply();
    let built = net::build(&mail).unwrap();
    net::send_raw(&smtp(sink.port(), TlsMode::None, false), &built.envelope_from, &built.envelope_to, &built.raw)
        .await
        .unwrap();
    net::send(&smtp(sink.port(), TlsMode::None, false), &mail).await.unwrap();
    let received = sink.wait_for(2, WAIT).await;
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].mail_from, "support@acme.test");
    assert_eq!(received[0].rcpt_to, vec!["jane@example.test", "boss@example.test"]);
    // lettre ends DATA with CRLF "." CRLF after the message's own last CRLF, so the server keeps one more empty
    // line (after the closing boundary, where it means nothing): compare without it.
    let got = received[0].raw.strip_suffix(b"\r\n").unwrap_or(&received[0].raw);
    assert!(
        got == built.raw.as_slice(),
        "the server got exactly what we built:\n{}\n----\n{}",
        String::from_utf8_lossy(&received[0].raw),
        String::from_utf8_lossy(&built.raw)
    );

    for got in &received {
        let m = mail_parser::MessageParser::default().parse(&got.raw).expect("parsable");
        assert_eq!(m.message_id(), Some("switchboard.1042.0f3a@acme.test"));
        assert_eq!(m.in_reply_to().as_text(), Some("sample-1@example.test"));
        assert_eq!(
            m.references().as_text_list().unwrap_or_default().iter().map(|r| r.as_ref()).collect::<Vec<&str>>(),
            vec!["root-0@example.test", "sample-1@example.test"]
        );
        assert_eq!(m.subject(), Some("Re: Drücker kaputt {#1042}"));
        assert_eq!(m.from().unwrap().first().unwrap().name(), Some("Acme Support"));
        assert_eq!(
            m.body_text(0).unwrap_or_default().replace("\r\n", "\n"),
            "Hello Jane,\n\nwe have ordered a new one.\n.\nA line with only a dot, above.\n",
            "line ends go out as CRLF"
        );
        assert_eq!(m.body_html(0).as_deref(), Some("<p>Hello Jane,</p><p>we have ordered a <b>new</b> one.</p>"));
        let attachment = m.attachments().next().expect("the attachment");
        assert_eq!(attachment.attachment_name(), Some("order.txt"));
        assert_eq!(attachment.contents(), b"order 77\n");
    }
}

/// EO-1 over STARTTLS and implicit TLS (self-signed, trusted by `tls_insecure`); without it the certificate is
/// refused, as a transient error (fixing the certificate or the setting makes the retry succeed).
#[tokio::test]
async fn smtp_tls_modes() {
    if !common::mail::smtp_sink("smtp_tls_modes") {
        return;
    }
    for (sink_tls, mode) in [(SinkTls::Starttls, TlsMode::Starttls), (SinkTls::Implicit, TlsMode::Implicit)] {
        let sink = SmtpSink::start_with(sink_tls);
        net::send(&smtp(sink.port(), mode, true), &reply())
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}\nsink log:\n{}", sink.log()));
        let received = sink.wait_for(1, WAIT).await;
        assert_eq!(received[0].rcpt_to.len(), 2);
        let e = net::send(&smtp(sink.port(), mode, false), &reply()).await.expect_err("self-signed is refused");
        assert!(matches!(e, SendError::Connection(_)) && e.is_transient(), "{mode:?}: {e:?}");
    }
    // STARTTLS required but not offered: refused, nothing goes out in plain text.
    let plain = SmtpSink::start();
    let e = net::send(&smtp(plain.port(), TlsMode::Starttls, true), &reply()).await.expect_err("no STARTTLS");
    assert!(e.is_transient(), "{e:?}");
    assert!(plain.received().is_empty());
}

/// EO-3: with the SMTP server down, sending fails with a transient error; once it is back the same mail goes out.
#[tokio::test]
async fn smtp_server_down_is_transient() {
    if !common::mail::smtp_sink("smtp_server_down_is_transient") {
        return;
    }
    let mut sink = SmtpSink::start();
    let settings = smtp(sink.port(), TlsMode::None, false);
    sink.stop();
    let e = net::send(&settings, &reply()).await.expect_err("nobody listens");
    assert!(matches!(e, SendError::Connection(_)) && e.is_transient(), "{e:?}");
    sink.start_again();
    net::send(&settings, &reply()).await.unwrap();
    let received = sink.wait_for(1, WAIT).await;
    assert_eq!(received.len(), 1);

    // A mail that cannot be addressed is permanent: retrying cannot help.
    let mut bad = reply();
    bad.to = vec![Address::new("no at sign")];
    let e = net::send(&settings, &bad).await.expect_err("bad address");
    assert!(!e.is_transient(), "{e:?}");
}
