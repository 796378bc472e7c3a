//! TP-1…TP-3: every mask, each in a row of one table, and the rules around them.

use super::*;

fn ctx() -> MaskContext {
    MaskContext {
        what_happened: "Ticket updated – Ana wrote: the printer <still> jams".into(),
        conversation_id: 77,
        ticket_number: 1042,
        subject: "Printer & scanner".into(),
        category: "Hardware".into(),
        priority: "high".into(),
        status: "Open".into(),
        body: "It jams.\nEvery time.".into(),
        url: "https://help.example.com/portal/tickets/77".into(),
        date: "2026-12-07 09:30 UTC".into(),
        due_date: Some("2026-12-10".into()),
        time_spent: Some("1h 15m".into()),
        via: "email".into(),
        submitter: Submitter {
            full_name: "Ana Lima".into(),
            user_name: "ana@example.com".into(),
            first_name: "Ana".into(),
            last_name: "Lima".into(),
            email: "ana@example.com".into(),
            company: "Acme".into(),
            department: "Finance".into(),
            location: "Porto".into(),
        },
        originator: "Bob Agent".into(),
        technician: Some(Person { name: "Bob Agent".into(), email: "bob@desk.example".into() }),
        recipients: vec!["Ana Lima".into(), "Carl".into()],
        messages: (1..=12)
            .rev()
            .map(|i| MessageEntry { author: format!("A{i}"), date: format!("D{i}"), text: format!("m{i}") })
            .collect(),
        custom_fields: vec![
            CustomField {
                id: "1234".into(),
                name: "Order".into(),
                visibility: FieldVisibility::Admins,
                value: "X-9".into(),
            },
            CustomField {
                id: "serial".into(),
                name: "Serial".into(),
                visibility: FieldVisibility::Public,
                value: "S<1>".into(),
            },
        ],
        attachments: vec![
            AttachmentLink { name: "a.pdf".into(), url: "https://help.example.com/f/1".into() },
            AttachmentLink { name: "b.png".into(), url: "https://help.example.com/f/2".into() },
        ],
        recent_attachments: vec![AttachmentLink { name: "b.png".into(), url: "https://help.example.com/f/2".into() }],
        suggested_kb: vec![],
        subscribers: vec![
            Subscriber { name: "carl".into(), email: "carl@example.com".into(), is_technician: false },
            Subscriber { name: "Bob Agent".into(), email: "bob@desk.example".into(), is_technician: true },
        ],
        rating: Some(RatingLinks {
            good: "https://help.example.com/r/good".into(),
            average: "https://help.example.com/r/avg".into(),
            bad: "https://help.example.com/r/bad".into(),
        }),
        unsubscribe: Some("https://help.example.com/u/1".into()),
    }
}

fn body(kind: TemplateKind, template: &str, ctx: &MaskContext) -> String {
    render(kind, "s", template, ctx).html
}

fn recent(range: impl DoubleEndedIterator<Item = u32>) -> String {
    range.rev().map(|i| format!("<p><strong>A{i}</strong>, D{i}:<br>m{i}</p>")).collect()
}

/// TP-2: each mask → what the body shows, for `ticket_updated` unless the row says otherwise.
#[test]
fn every_mask_renders_as_tp2_says() {
    use TemplateKind::*;
    let long = "é".repeat(99) + "ğx" + &"z".repeat(50);
    let table: Vec<(TemplateKind, &str, String)> = vec![
        (TicketUpdated, "#What_Happened#", "Ticket updated – Ana wrote: the printer &lt;still&gt; jams".into()),
        (TicketUpdated, "#What_Happened_Short#", "Ticket updated – Ana wrote: the printer &lt;still&gt; jams".into()),
        (TicketUpdated, "#Category#", "Hardware".into()),
        (TicketUpdated, "#Subject#", "Printer &amp; scanner".into()),
        (TicketUpdated, "#From#", "Ana Lima".into()),
        (TicketUpdated, "#FromEmail#", "ana@example.com".into()),
        (TicketUpdated, "#FirstName#", "Ana".into()),
        (TicketUpdated, "#LastName#", "Lima".into()),
        (TicketUpdated, "#UserName#", "ana@example.com".into()),
        (TicketUpdated, "#Originator#", "Bob Agent".into()),
        (TicketUpdated, "#Priority#", "high".into()),
        (TicketUpdated, "#Status#", "Open".into()),
        (TicketUpdated, "#Body#", "It jams.<br>Every time.".into()),
        (TicketUpdated, "#URL#", "https://help.example.com/portal/tickets/77".into()),
        (TicketUpdated, "#Recipients#", "Ana Lima, Carl".into()),
        (TicketUpdated, "#Recent_messages#", recent(8..=12)),
        (TicketUpdated, "#10Recent_messages#", recent(3..=12)),
        (TicketUpdated, "#2Recent_messages#", recent(11..=12)),
        (TicketUpdated, "#Most_recent_message#", recent(12..=12)),
        (TicketUpdated, "#Custom_Fields#", "<ul><li>Serial: S&lt;1&gt;</li></ul>".into()),
        (TicketUpdated, "#CF_1234#", "Order: X-9".into()),
        (TicketUpdated, "#CF_VALUE_1234#", "X-9".into()),
        (TicketUpdated, "#CF_serial#", "Serial: S&lt;1&gt;".into()),
        (TicketUpdated, "#CF_VALUE_999#", "".into()),
        (TicketUpdated, "#Company#", "Acme".into()),
        (TicketUpdated, "#Department#", "Finance".into()),
        (TicketUpdated, "#Location#", "Porto".into()),
        (
            TicketUpdated,
            "#Attachments#",
            "<ul><li><a href=\"https://help.example.com/f/1\" rel=\"noopener noreferrer nofollow\">a.pdf</a></li>\
             <li><a href=\"https://help.example.com/f/2\" rel=\"noopener noreferrer nofollow\">b.png</a></li></ul>"
                .into(),
        ),
        (TicketUpdated, "#TicketID#", "1042".into()),
        (TicketUpdated, "#Technician#", "Bob Agent".into()),
        (TicketUpdated, "#TechnicianEmail#", "bob@desk.example".into()),
        (TicketUpdated, "#Date#", "2026-12-07 09:30 UTC".into()),
        (TicketUpdated, "#DueDate#", "2026-12-10".into()),
        (TicketUpdated, "#TimeSpent#", "1h 15m".into()),
        (TicketUpdated, "#Via#", "email".into()),
        (
            TicketUpdated,
            "#Recent_Attachments#",
            "<ul><li><a href=\"https://help.example.com/f/2\" rel=\"noopener noreferrer nofollow\">b.png</a></li></ul>"
                .into(),
        ),
        (NewTicketAdmin, "#Recent_Attachments#", body(TicketUpdated, "#Recent_Attachments#", &ctx())),
        (TicketClosed, "#Recent_Attachments#", "".into()),
        (TicketTaken, "#Recent_Attachments#", "".into()),
        (TicketUpdated, "#Suggested_KB_articles#", "".into()),
        (TicketUpdated, "#Subscribers#", "carl, Bob Agent".into()),
        (TicketUpdated, "#SubscribersEmails#", "carl@example.com, bob@desk.example".into()),
        (TicketUpdated, "#NonTechSubscribers#", "carl".into()),
        (
            TicketClosed,
            "#RatingLinks#",
            "<p>Please rate your experience: \
             <a href=\"https://help.example.com/r/good\" rel=\"noopener noreferrer nofollow\">Good</a> | \
             <a href=\"https://help.example.com/r/avg\" rel=\"noopener noreferrer nofollow\">Average</a> | \
             <a href=\"https://help.example.com/r/bad\" rel=\"noopener noreferrer nofollow\">Bad</a></p>"
                .into(),
        ),
        (
            TicketClosed,
            "#RatingLinks(Please rate us)#",
            "<p>Please rate us \
             <a href=\"https://help.example.com/r/good\" rel=\"noopener noreferrer nofollow\">Good</a> | \
             <a href=\"https://help.example.com/r/avg\" rel=\"noopener noreferrer nofollow\">Average</a> | \
             <a href=\"https://help.example.com/r/bad\" rel=\"noopener noreferrer nofollow\">Bad</a></p>"
                .into(),
        ),
        (TicketUpdated, "#RatingLinks#", "".into()),
        (TicketUpdated, "#RatingLinks(Please rate us)#", "".into()),
        (
            TicketUpdated,
            "#Unsubscribe#",
            "<a href=\"https://help.example.com/u/1\" rel=\"noopener noreferrer nofollow\">Unsubscribe from this ticket</a>"
                .into(),
        ),
        // Names match case-insensitively.
        (TicketUpdated, "#subject#", "Printer &amp; scanner".into()),
        // Not mask-shaped: plain text; the closing `#` may open a mask.
        (TicketUpdated, "Order #12 is #Status#", "Order #12 is Open".into()),
        (TicketUpdated, "##TicketID#", "#1042".into()),
        // Unknown masks are left as written.
        (TicketUpdated, "#Nope# #username", "#Nope# #username".into()),
        // Welcome (TP-3): its two masks only; the others stay as written.
        (Welcome, "#username / #URL", "ana@example.com / https://help.example.com/portal/tickets/77".into()),
        (Welcome, "#username# #URL#", "ana@example.com https://help.example.com/portal/tickets/77".into()),
        (Welcome, "#Subject# #UserName# #From#", "#Subject# #UserName# #From#".into()),
    ];
    for (kind, template, expected) in &table {
        assert_eq!(&body(*kind, template, &ctx()), expected, "{kind} {template}");
    }
    // Every mask the editor offers has a row (patterns with their example).
    for mask in TICKET_MASKS.iter().chain(WELCOME_MASKS) {
        let example = mask.replace("{N}", "10").replace("{id}", "1234").replace("{prompt}", "Please rate us");
        assert!(table.iter().any(|(_, t, _)| t.contains(&example)), "no row for {mask}");
    }

    // `#What_Happened_Short#` keeps 100 characters, multibyte ones whole.
    let c = MaskContext { what_happened: long.clone(), ..ctx() };
    let short_text = body(TicketUpdated, "#What_Happened_Short#", &c);
    assert_eq!(short_text.chars().count(), 100);
    assert_eq!(short_text, long.chars().take(100).collect::<String>());
    assert!(short_text.ends_with('ğ'));
}

#[test]
fn optional_values_render_empty() {
    let c = MaskContext {
        technician: None,
        due_date: None,
        time_spent: None,
        rating: None,
        unsubscribe: None,
        messages: vec![],
        ..ctx()
    };
    let template = "[#Technician#|#TechnicianEmail#|#DueDate#|#TimeSpent#|#RatingLinks#|#Unsubscribe#|#Most_recent_message#|#Recent_messages#]";
    assert_eq!(body(TemplateKind::TicketClosed, template, &c), "[|||||||]");
    // A full name missing: #From# is the user name.
    let c = MaskContext { submitter: Submitter { full_name: String::new(), ..ctx().submitter }, ..ctx() };
    assert_eq!(body(TemplateKind::TicketUpdated, "#From#", &c), "ana@example.com");
}

#[test]
fn subject_is_one_plain_line() {
    let c = MaskContext { subject: "A & <b>\r\nBcc: x@y".into(), ..ctx() };
    let r = render(TemplateKind::TicketUpdated, "[#TicketID#] #Subject#", "", &c);
    assert_eq!(r.subject, "[1042] A & <b> Bcc: x@y");
}

#[test]
fn values_cannot_inject_html_and_templates_are_sanitised() {
    let c = MaskContext { subject: "<script>alert(1)</script>\" onmouseover=\"x".into(), ..ctx() };
    let kind = TemplateKind::TicketUpdated;
    // In text: escaped.
    let html = body(kind, "<p>#Subject#</p>", &c);
    assert_eq!(html, "<p>&lt;script&gt;alert(1)&lt;/script&gt;\" onmouseover=\"x</p>");
    // In an attribute: cannot close it.
    let html = body(kind, "<p title=\"#Subject#\">t</p>", &c);
    assert!(!html.contains("onmouseover=\"x\""), "{html}");
    assert!(html.contains("&quot; onmouseover=&quot;x"), "{html}");
    // The template itself is sanitised: no scripts, no handlers; mask links become absolute and stay.
    let html = body(kind, "<p onclick=\"evil()\">a</p><script>bad()</script><a href=\"#URL#\">open</a>", &c);
    assert!(!html.contains("<script") && !html.contains("onclick"), "{html}");
    assert!(html.contains("href=\"https://help.example.com/portal/tickets/77\""), "{html}");
}

#[test]
fn text_part_is_derived_from_the_html_and_keeps_link_addresses() {
    let r = render(TemplateKind::TicketClosed, "s", "<p>Hi #From#,</p><p>#What_Happened#</p>#RatingLinks#", &ctx());
    assert!(r.text.starts_with("Hi Ana Lima,"), "{}", r.text);
    assert!(r.text.contains("the printer <still> jams"), "{}", r.text);
    assert!(r.text.contains("Good <https://help.example.com/r/good>"), "{}", r.text);
    assert!(!r.text.contains("<p>"), "{}", r.text);
}

#[test]
fn unknown_masks_are_flagged_once_each_in_order() {
    use TemplateKind::*;
    let t = "#Subject# #Foo# #CF_9# #Bar# #Foo# #99999Recent_messages# color:#fff; #RatingLinks(x)#";
    assert_eq!(unknown_masks(TicketUpdated, t), vec!["#Foo#", "#Bar#", "#99999Recent_messages#"]);
    assert_eq!(unknown_masks(TicketUpdated, "#10Recent_messages# #Via#"), Vec::<String>::new());
    // Welcome knows #username and #URL only.
    assert_eq!(unknown_masks(Welcome, "#username #URL# #Subject# #From#"), vec!["#Subject#", "#From#"]);
}

#[test]
fn every_kind_has_defaults_with_known_masks() {
    for kind in TemplateKind::ALL {
        let (subject, body) = defaults(*kind);
        assert!(!subject.is_empty() && !body.is_empty(), "{kind}");
        assert_eq!(unknown_masks(*kind, subject), Vec::<String>::new(), "{kind} subject");
        assert_eq!(unknown_masks(*kind, body), Vec::<String>::new(), "{kind} body");
        let r = render(*kind, subject, body, &ctx());
        assert!(!r.html.contains("#URL"), "{kind}: {}", r.html);
        assert!(!r.text.is_empty());
    }
    assert_eq!(TemplateKind::ALL.len(), 10);
    assert_eq!("ticket_closed".parse::<TemplateKind>(), Ok(TemplateKind::TicketClosed));
}

#[test]
fn allowed_masks_follow_the_kind() {
    let closed = allowed_masks(TemplateKind::TicketClosed);
    assert!(closed.contains(&"#RatingLinks#") && !closed.contains(&"#Recent_Attachments#"));
    let updated = allowed_masks(TemplateKind::TicketUpdated);
    assert!(!updated.contains(&"#RatingLinks#") && updated.contains(&"#Recent_Attachments#"));
    assert_eq!(allowed_masks(TemplateKind::Welcome), vec!["#username", "#URL"]);
}

#[test]
fn plain_links_point_agents_to_the_dashboard_and_others_to_the_portal() {
    let links = PlainLinks { public_url: "https://help.example.com/".into() };
    let agent = Recipient { kind: RecipientKind::Agent, id: Some(1), name: "B".into(), email: "b@x".into() };
    let customer = Recipient { kind: RecipientKind::Customer, ..agent.clone() };
    assert_eq!(links.ticket_url(5, &agent), "https://help.example.com/tickets/5");
    assert_eq!(links.ticket_url(5, &customer), "https://help.example.com/portal/tickets/5");
    assert_eq!(links.rating_urls(5, 1), None);
    assert_eq!(links.unsubscribe_url(5, "a@b"), None);
}
