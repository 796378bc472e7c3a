//! Issue #18 item 4, TP-1…TP-3: notification templates through the API — list every kind with its default,
//! edit, preview against a real ticket, an empty body stored (that notification is not sent), reset, bad input
//! changes nothing, agents cannot read or edit (403). `compose` (what the notification sender calls) sees
//! what the API stored.

use serde_json::{Value, json};
use switchboard::domain::templates::{PlainLinks, Recipient, RecipientKind, TemplateKind};
use switchboard::store::templates::compose;

use crate::common::{Api, TestServer, assert_error};

const KINDS: [&str; 10] = [
    "ticket_confirmation",
    "ticket_closed",
    "ticket_updated",
    "new_ticket_admin",
    "new_ticket_category",
    "customer_update",
    "ticket_taken",
    "kb_article_changed",
    "welcome",
    "password_reset",
];

struct Desk {
    srv: TestServer,
    root: Api,
    agent: Api,
    conv: i64,
    customer: i64,
}

/// A ticket from Ana Lima <ana@example.com> in team Hardware, with a custom field and an agent's reply.
async fn desk() -> Desk {
    let srv = TestServer::start().await;
    let root = srv.agent("root@example.com", "super_admin").await;
    let agent = srv.agent("bob@example.com", "agent").await;
    let ch = root.channel("custom", "Desk", Some("async")).await;
    root.ok_put(&format!("/api/v1/agents/{}/channels", agent.agent_id), json!({"channel_ids": [ch]})).await;
    let conv = root.inbound(ch, "ana-1", "Printer <jams> & smokes").await;
    let customer = root.ok_get(&format!("/api/v1/conversations/{conv}")).await["customer_id"].as_i64().unwrap();
    let (s, b) = root.patch(&format!("/api/v1/customers/{customer}"), json!({"name": "Ana Lima"})).await;
    assert_eq!(s, 200, "{b}");
    root.ok_post(
        &format!("/api/v1/customers/{customer}/identities"),
        json!({"kind": "email", "value": "ana@example.com"}),
        201,
    )
    .await;
    let team = root.ok_post("/api/v1/teams", json!({"name": "Hardware"}), 201).await["id"].as_i64().unwrap();
    let (s, b) = root
        .patch(
            &format!("/api/v1/conversations/{conv}"),
            json!({"team_id": team, "priority": "high", "custom_fields": {"order": "X-9"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    root.ok_post(
        &format!("/api/v1/conversations/{conv}/messages"),
        json!({"content": "Have you tried turning it off?"}),
        201,
    )
    .await;
    Desk { srv, root, agent, conv, customer }
}

fn by_kind<'a>(list: &'a Value, kind: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|t| t["kind"] == kind).unwrap_or_else(|| panic!("no {kind} in {list}"))
}

/// TP-1: every kind is listed with an English default; editing, an empty body (not sent) and reset.
#[tokio::test]
async fn templates_are_listed_edited_emptied_and_reset() {
    let d = desk().await;
    let list = d.root.ok_get("/api/v1/notification-templates").await;
    let kinds: Vec<&str> = list.as_array().unwrap().iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, KINDS);
    for t in list.as_array().unwrap() {
        assert_eq!(t["is_default"], true, "{t}");
        assert_eq!(t["sent"], true, "{t}");
        assert!(!t["subject"].as_str().unwrap().is_empty() && !t["body"].as_str().unwrap().is_empty());
        assert_eq!(t["unknown_masks"], json!([]), "defaults use known masks only: {t}");
    }
    assert!(by_kind(&list, "ticket_closed")["allowed_masks"].as_array().unwrap().contains(&json!("#RatingLinks#")));
    assert_eq!(by_kind(&list, "welcome")["allowed_masks"], json!(["#username", "#URL"]));

    // Edit: stored as written, unknown masks flagged, audited.
    let saved = d
        .root
        .ok_put(
            "/api/v1/notification-templates/ticket_updated",
            json!({"subject": "Re: #Subject# [#TicketID#]", "body": "<p>#What_Happened#</p><p>#Nope#</p>"}),
        )
        .await;
    assert_eq!(saved["is_default"], false);
    assert_eq!(saved["unknown_masks"], json!(["#Nope#"]));
    let got = d.root.ok_get("/api/v1/notification-templates/ticket_updated").await;
    assert_eq!(got["body"], "<p>#What_Happened#</p><p>#Nope#</p>");
    assert_eq!(got["subject"], "Re: #Subject# [#TicketID#]");
    let audit = d.root.ok_get("/api/v1/audit?limit=200").await;
    assert!(audit.to_string().contains("notification_template.update"), "{audit}");

    // What the sender composes follows the stored template.
    let links = PlainLinks { public_url: "https://help.example.com".into() };
    let ana = Recipient {
        kind: RecipientKind::Customer,
        id: Some(d.customer),
        name: "Ana Lima".into(),
        email: "ana@example.com".into(),
    };
    let mail = compose(d.srv.store(), TemplateKind::TicketUpdated, d.conv, &ana, "Bob replied", &links)
        .await
        .unwrap()
        .expect("a body: sent");
    assert!(mail.subject.starts_with("Re: Printer <jams> & smokes ["), "{}", mail.subject);
    assert!(mail.html.contains("<p>Bob replied</p><p>#Nope#</p>"), "{}", mail.html);

    // An empty body is stored and means "not sent".
    let empty =
        d.root.ok_put("/api/v1/notification-templates/ticket_updated", json!({"subject": "", "body": "  "})).await;
    assert_eq!(empty["sent"], false);
    assert_eq!(empty["is_default"], false);
    let none = compose(d.srv.store(), TemplateKind::TicketUpdated, d.conv, &ana, "x", &links).await.unwrap();
    assert_eq!(none, None, "TP-1: an empty template is not sent");

    // Reset: the default again, and sent.
    let (s, reset) = d.root.delete("/api/v1/notification-templates/ticket_updated").await;
    assert_eq!(s, 200, "{reset}");
    assert_eq!(reset["is_default"], true);
    assert_eq!(reset["sent"], true);
    let list = d.root.ok_get("/api/v1/notification-templates").await;
    assert_eq!(by_kind(&list, "ticket_updated")["is_default"], true);
    assert!(compose(d.srv.store(), TemplateKind::TicketUpdated, d.conv, &ana, "x", &links).await.unwrap().is_some());
}

/// TP-2: the preview renders what was sent (nothing stored) against a real ticket; a missing ticket is 404.
#[tokio::test]
async fn preview_renders_against_a_real_ticket() {
    let d = desk().await;
    let body = "<p>#From# (#FromEmail#) via #Via#: #Subject#</p><p>#CF_order# / #CF_VALUE_order#</p>\
                <p>#Category# #Priority# #Technician#</p>#Recent_messages#<p>#Unknown_Mask#</p><script>x()</script>";
    let p = d
        .root
        .ok_post(
            "/api/v1/notification-templates/ticket_updated/preview",
            json!({"subject": "[#TicketID#] #Subject#", "body": body, "conversation_id": d.conv}),
            200,
        )
        .await;
    let html = p["html"].as_str().unwrap();
    assert!(html.contains("Ana Lima (ana@example.com) via api: Printer &lt;jams&gt; &amp; smokes"), "{html}");
    assert!(html.contains("order: X-9 / X-9"), "{html}");
    assert!(html.contains("Hardware high"), "{html}");
    assert!(html.contains("Have you tried turning it off?"), "{html}");
    assert!(html.contains("#Unknown_Mask#") && !html.contains("<script"), "{html}");
    assert_eq!(p["unknown_masks"], json!(["#Unknown_Mask#"]));
    assert_eq!(p["conversation_id"], d.conv);
    assert!(p["subject"].as_str().unwrap().ends_with("] Printer <jams> & smokes"), "{p}");
    assert!(p["text"].as_str().unwrap().contains("Have you tried turning it off?"), "{p}");
    // Nothing was stored.
    let t = d.root.ok_get("/api/v1/notification-templates/ticket_updated").await;
    assert_eq!(t["is_default"], true);

    // Without a conversation: the newest ticket.
    let p = d
        .root
        .ok_post(
            "/api/v1/notification-templates/welcome/preview",
            json!({"subject": "Hi", "body": "#username #Subject#"}),
            200,
        )
        .await;
    assert_eq!(p["conversation_id"], d.conv);
    assert!(p["html"].as_str().unwrap().contains("ana@example.com #Subject#"), "{p}");
    assert_eq!(p["unknown_masks"], json!(["#Subject#"]));

    // A ticket that does not exist (or that the caller cannot see): 404.
    let missing = d
        .root
        .post(
            "/api/v1/notification-templates/ticket_updated/preview",
            json!({"subject": "s", "body": "b", "conversation_id": d.conv + 1000}),
        )
        .await;
    assert_error(&missing, 404, "not_found");
}

/// Bad kinds are 404, bad input 400, and neither changes anything; agents get 403 (admin settings).
#[tokio::test]
async fn bad_input_changes_nothing_and_agents_cannot_edit() {
    let d = desk().await;
    let before = d.root.ok_get("/api/v1/notification-templates").await;
    assert_error(&d.root.get("/api/v1/notification-templates/nope").await, 404, "not_found");
    assert_error(
        &d.root.put("/api/v1/notification-templates/nope", json!({"subject": "s", "body": "b"})).await,
        404,
        "not_found",
    );
    assert_error(&d.root.delete("/api/v1/notification-templates/nope").await, 404, "not_found");
    let url = "/api/v1/notification-templates/ticket_closed";
    for bad in [
        json!({"subject": "s".repeat(256), "body": "b"}),
        json!({"subject": "s", "body": "b".repeat(100_001)}),
        json!({"subject": "two\nlines", "body": "b"}),
        json!({"subject": "", "body": "<p>a body needs a subject</p>"}),
        json!({"subject": "s"}),
        json!({"subject": 5, "body": "b"}),
        json!({"subject": "s", "body": "b", "extra": 1}),
    ] {
        let got = d.root.put(url, bad.clone()).await;
        assert_eq!(got.0, 400, "{bad}: {}", got.1);
    }
    assert_eq!(d.root.ok_get("/api/v1/notification-templates").await, before, "nothing changed");

    // Agents: 403 for every template route.
    assert_error(&d.agent.get("/api/v1/notification-templates").await, 403, "forbidden");
    assert_error(&d.agent.get(url).await, 403, "forbidden");
    assert_error(&d.agent.put(url, json!({"subject": "s", "body": "b"})).await, 403, "forbidden");
    assert_error(&d.agent.delete(url).await, 403, "forbidden");
    assert_error(
        &d.agent.post(&format!("{url}/preview"), json!({"subject": "s", "body": "b", "conversation_id": d.conv})).await,
        403,
        "forbidden",
    );
    assert_eq!(d.root.ok_get("/api/v1/notification-templates").await, before, "nothing changed");
}
