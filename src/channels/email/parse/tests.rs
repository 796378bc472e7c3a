//! Unit tests of the mail parser (the corpus in `tests/resources/email/` covers whole mails).

use super::*;

fn mail(raw: &str) -> ParsedMail {
    parse(raw.as_bytes()).expect("test mail parses")
}

#[test]
fn refuses_what_is_not_a_mail() {
    assert_eq!(parse(b""), Err(ParseError::Empty));
    assert_eq!(parse(b" \r\n\t"), Err(ParseError::Empty));
    assert_eq!(parse(b"").unwrap_err().code(), "empty");
    assert_eq!(ParseError::NotAMessage.code(), "not_a_message");
    let big = vec![b'a'; MAX_MESSAGE_BYTES + 1];
    assert_eq!(parse(&big), Err(ParseError::TooLarge { size: MAX_MESSAGE_BYTES + 1, limit: MAX_MESSAGE_BYTES }));
}

#[test]
fn hostile_bytes_never_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let alphabet: &[u8] =
        b"From:To:Content-Type: multipart/mixed; boundary=\"b\"\r\n--b--message/rfc822=?utf-8?B?<>@%{}#";
    for len in [1usize, 7, 64, 300, 2000] {
        for _ in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if seed.is_multiple_of(5) {
                        (seed >> 8) as u8
                    } else {
                        alphabet[(seed as usize >> 3) % alphabet.len()]
                    }
                })
                .collect();
            let _ = parse(&bytes);
        }
    }
}

#[test]
fn deeply_nested_forwards_are_bounded() {
    let mut raw = String::new();
    // 50,000 levels (2.5 MB): deep enough to overflow a stack if anything recursed per level.
    for _ in 0..50_000 {
        raw.push_str("From: a@b.c\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    raw.push_str("From: last@b.c\r\nSubject: x\r\n\r\nbody\r\n");
    let parsed = parse(raw.as_bytes()).expect("parses");
    let mut depth = 0;
    let mut level = &parsed.forwarded;
    while let Some(f) = level.first() {
        depth += 1;
        level = &f.forwarded;
    }
    assert!(depth <= MAX_FORWARD_DEPTH);
}

#[test]
fn addresses_ids_and_subject() {
    let m = mail(concat!(
        "From: \"Doe, Jane\" <Jane.Doe@Example.COM>\r\n",
        "To: Support <support@acme.test>, bob@example.com\r\n",
        "Cc: undisclosed-recipients:;\r\n",
        "Reply-To: <replies@example.com>\r\n",
        "Subject: =?UTF-8?Q?Dru=C5=BCyna?= printer\r\n\tbroken\r\n",
        "Message-ID: <abc@example.com>\r\n",
        "In-Reply-To: <x1@acme.test>\r\n",
        "References: <root@acme.test>\r\n <x1@acme.test> <root@acme.test>\r\n",
        "Date: Mon, 3 Jun 2024 10:00:00 +0200\r\n",
        "\r\n",
        "Hello\r\n",
    ));
    let from = m.from.expect("from");
    assert_eq!(from.address, "jane.doe@example.com");
    assert_eq!(from.name.as_deref(), Some("Doe, Jane"));
    assert_eq!(m.to.iter().map(|t| t.address.as_str()).collect::<Vec<_>>(), ["support@acme.test", "bob@example.com"]);
    assert!(m.cc.is_empty());
    assert_eq!(m.reply_to[0].address, "replies@example.com");
    assert_eq!(m.subject, "Drużyna printer broken");
    assert_eq!(m.message_id.as_deref(), Some("abc@example.com"));
    assert_eq!(m.in_reply_to, ["x1@acme.test"]);
    assert_eq!(m.references, ["root@acme.test", "x1@acme.test"]);
    assert_eq!(m.date.map(|d| d.to_rfc3339()).as_deref(), Some("2024-06-03T08:00:00+00:00"));
    assert_eq!(m.text, "Hello");
    assert_eq!(m.html, None);
    assert_eq!(m.headers.return_path, ReturnPath::Missing);
    assert_eq!(m.headers.content_type, "text/plain");
}

#[test]
fn junk_headers_are_collected() {
    let m = mail(concat!(
        "Return-Path: <>\r\n",
        "Return-Path: <later@example.com>\r\n",
        "From: MAILER-DAEMON\r\n",
        "Auto-Submitted: Auto-Replied\r\n",
        "Precedence: BULK\r\n",
        "X-Auto-Response-Suppress: All\r\n",
        "X-Loop: support@acme.test\r\n",
        "X-Loop: other\r\n",
        "List-Id: <news.example.com>\r\n",
        "Delivered-To: Support+7@acme.test\r\n",
        "X-Original-To: support+7@acme.test\r\n",
        "Content-Type: multipart/report; report-type=Delivery-Status; boundary=\"b\"\r\n",
        "\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b--\r\n",
    ));
    let h = &m.headers;
    assert_eq!(h.return_path, ReturnPath::Empty);
    assert_eq!(h.auto_submitted.as_deref(), Some("auto-replied"));
    assert_eq!(h.precedence.as_deref(), Some("bulk"));
    assert_eq!(h.x_auto_response_suppress.as_deref(), Some("All"));
    assert_eq!(h.x_loop, ["support@acme.test", "other"]);
    assert_eq!(h.list_id.as_deref(), Some("<news.example.com>"));
    assert_eq!(h.delivered_to, ["support+7@acme.test"]);
    assert_eq!(h.content_type, "multipart/report");
    assert_eq!(h.report_type.as_deref(), Some("delivery-status"));
    assert_eq!(m.from.map(|f| f.address).as_deref(), Some("mailer-daemon"));
    assert_eq!(m.text, "failed");
}

#[test]
fn html_is_sanitised_and_text_derived() {
    let m = mail(concat!(
        "From: a@example.com\r\n",
        "Content-Type: text/html; charset=utf-8\r\n",
        "\r\n",
        "<html><head><style>p{background:url(http://t.example/x)}</style><script>alert(1)</script></head>",
        "<body onload=\"steal()\"><p onclick=\"x()\">Hi <b>there</b></p>",
        "<a href=\"javascript:alert(1)\">js</a> <a href=\"https://ok.example/\">ok</a>",
        "<img src=\"https://tracker.example/p.gif\" alt=\"px\"><img src=\"//cdn.example/a.png\">",
        "<img src=\"cid:logo%40acme\"><iframe src=\"https://x.example\"></iframe>",
        "<form action=\"https://x.example\"><input name=q></form></body></html>",
    ));
    let html = m.html.expect("html");
    for bad in ["<script", "alert", "onload", "onclick", "javascript:", "tracker.example", "cdn.example", "<iframe"] {
        assert!(!html.contains(bad), "{bad} in {html}");
    }
    assert!(!html.contains("<style") && !html.contains("<form") && !html.contains("<input"), "{html}");
    assert!(html.contains(r#"<a href="https://ok.example/" rel="noopener noreferrer nofollow">ok</a>"#), "{html}");
    assert!(html.contains(r#"<img src="{{attachment:logo@acme}}">"#), "{html}");
    assert_eq!(m.remote_images, ["https://tracker.example/p.gif", "//cdn.example/a.png"]);
    assert!(m.text.contains("Hi there"), "{:?}", m.text);
    assert!(!m.text.contains("alert"), "{:?}", m.text);
}

#[test]
fn deep_html_becomes_text() {
    // 100,000 nested elements: the sanitiser would take minutes; the fallback is linear.
    let raw = format!(
        "From: a@example.com\r\nContent-Type: text/html\r\n\r\n{}Hello <script>x()</script><b>there</b>",
        "<div>".repeat(100_000)
    );
    let m = mail(&raw);
    assert_eq!(m.html.as_deref(), Some("Hello there"));
    assert_eq!(m.text, "Hello there");
}

#[test]
fn placeholders_are_filled_escaped() {
    let html = r#"<p><img src="{{attachment:a@b}}"><img src="{{attachment:gone}}"></p>{{attachment:a@b}}"#;
    let filled = fill_attachment_links(html, |cid| (cid == "a@b").then(|| "/files/1?x=\"1\"&y".to_owned()));
    assert_eq!(filled, r#"<p><img src="/files/1?x=&quot;1&quot;&amp;y"><img src=""></p>{{attachment:a@b}}"#);
    assert_eq!(fill_attachment_links("plain", |_| None), "plain");
    assert_eq!(fill_attachment_links(r#"x="{{attachment:oops"#, |_| None), r#"x="{{attachment:oops"#);
}

#[test]
fn content_ids_and_percent_decoding() {
    assert_eq!(normalize_content_id(" <part1.abc@mail> "), Some("part1.abc@mail".into()));
    assert_eq!(normalize_content_id("<>"), None);
    assert_eq!(percent_decode("a%40b%2"), Some("a@b%2".into()));
    assert_eq!(percent_decode("%ff"), None);
    assert!(is_safe_cid("ii_lx1/2+3=@x.y"));
    assert!(!is_safe_cid("a\"b") && !is_safe_cid("a}}b") && !is_safe_cid("a b"));
}

#[test]
fn file_names_lose_paths_and_controls() {
    assert_eq!(clean_file_name("../../etc/passwd"), Some("passwd".into()));
    assert_eq!(clean_file_name("C:\\Users\\x\\report.pdf"), Some("report.pdf".into()));
    assert_eq!(clean_file_name("a\u{0}b\r\n.txt"), Some("ab.txt".into()));
    assert_eq!(clean_file_name("Re: \"Q1\" <draft>|final?.pdf"), Some("Re_ _Q1_ _draft__final_.pdf".into()));
    assert_eq!(clean_file_name(".."), None);
    assert_eq!(clean_file_name("  "), None);
    assert_eq!(clean_file_name(&"x".repeat(500)).map(|n| n.chars().count()), Some(MAX_FILE_NAME_CHARS));
}

#[test]
fn quoted_from_blocks() {
    let gmail = "FYI\n\n---------- Forwarded message ---------\nFrom: Jane Doe <jane@example.com>\nDate: Mon, 3 Jun 2024\nSubject: Printer\nTo: <alice@acme.test>\n";
    assert_eq!(
        quoted_from(gmail).map(|m| (m.address, m.name)),
        Some(("jane@example.com".into(), Some("Jane Doe".into())))
    );
    let outlook = "________________________________\nFrom: Doe, Jane [mailto:Jane@Example.com]\nSent: Monday, June 3, 2024 10:00 AM\nTo: Support\n";
    assert_eq!(quoted_from(outlook).map(|m| m.address).as_deref(), Some("jane@example.com"));
    let html_text = "*From:* Jane <jane@example.com<mailto:jane@example.com>>\n*Sent:* Monday\n";
    assert_eq!(quoted_from(html_text).map(|m| m.address).as_deref(), Some("jane@example.com"));
    let thunderbird =
        "-------- Forwarded Message --------\nSubject: \tPrinter\nDate: \tMon, 3 Jun 2024\nFrom: \tjane@example.com\n";
    assert_eq!(quoted_from(thunderbird).map(|m| (m.address, m.name)), Some(("jane@example.com".into(), None)));
    let german = "Von: Jan Kowalski <jan@example.pl>\nGesendet: Montag\nAn: support@acme.test\nBetreff: Drucker\n";
    assert_eq!(quoted_from(german).map(|m| m.address).as_deref(), Some("jan@example.pl"));
    let french = "De : Zoé <zoe@example.fr>\nEnvoyé : lundi\n";
    assert_eq!(quoted_from(french).map(|m| m.address).as_deref(), Some("zoe@example.fr"));
    let quoted = "> From: q@example.com\n> Date: today\n";
    assert_eq!(quoted_from(quoted).map(|m| m.address).as_deref(), Some("q@example.com"));
    // A sentence is not a header block; a name without an address says nothing.
    assert_eq!(quoted_from("From: the manual, page 3 (see a@b.com)\nThanks"), None);
    assert_eq!(quoted_from("From: Jane Doe\nSent: Monday\n\nFrom: deeper@example.com\nDate: x"), None);
}
