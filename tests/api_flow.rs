//! The foundation's walk-through (issue #2): sign in, set up a team, a channel, a token, and
//! work conversations end to end — on whichever backend the run selects.

mod common;

// More suites in this binary (few integration-test binaries keep the build short; #14 item 10).
#[path = "api_flow/activity.rs"]
mod activity;
#[path = "api_flow/bad_input.rs"]
mod bad_input;
#[path = "api_flow/categories.rs"]
mod categories;
#[path = "api_flow/cli.rs"]
mod cli;
#[path = "api_flow/delivery.rs"]
mod delivery;
#[path = "api_flow/inbox.rs"]
mod inbox;
#[path = "api_flow/onboarding.rs"]
mod onboarding;
#[path = "api_flow/ops.rs"]
mod ops;
#[path = "api_flow/portal.rs"]
mod portal;
#[path = "api_flow/queue.rs"]
mod queue;
#[path = "api_flow/reads.rs"]
mod reads;
#[path = "api_flow/templates.rs"]
mod templates;

use common::{Api, TestServer, assert_error};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn login_then_team_token_and_conversations_by_http() {
    let srv = TestServer::start().await;
    srv.agent("ann@example.com", "super_admin").await;
    let ann = srv.login("ann@example.com").await;

    let me = ann.ok_get("/api/v1/me").await;
    assert_eq!(me["agent"]["email"], "ann@example.com");
    assert_eq!(me["agent"]["role"], "super_admin");
    assert!(me["csrf_token"].as_str().is_some_and(|t| t.len() >= 32));

    let team = ann.ok_post("/api/v1/teams", json!({"name": "Billing", "description": "Invoices"}), 201).await;
    assert_eq!(team["name"], "Billing");
    let teams = ann.ok_get("/api/v1/teams").await;
    assert_eq!(teams.as_array().unwrap().len(), 1);

    let created = ann.ok_post("/api/v1/tokens", json!({"name": "shop"}), 201).await;
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("sbt_"));
    let listed = ann.ok_get("/api/v1/tokens").await;
    assert!(listed.as_array().unwrap().iter().all(|t| t.get("token").is_none()), "secrets are never listed again");

    let integ = Api::with_token(&srv.base, &token, 0);
    let convs = integ.ok_get("/api/v1/conversations").await;
    assert_eq!(convs["total"], 0);

    let shop = ann.channel("custom", "Shop", Some("async")).await;
    let id = integ.inbound(shop, "cust-1", "My order is late").await;
    let convs = integ.ok_get("/api/v1/conversations").await;
    assert_eq!(convs["total"], 1);
    assert_eq!(convs["items"][0]["id"], id);
    assert_eq!(convs["items"][0]["subject"], "My order is late");
    assert_eq!(convs["items"][0]["status"], "open");

    // Logging out ends the session.
    let (s, _) = ann.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_error(&ann.get("/api/v1/me").await, 401, "unauthorized");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_are_the_same_answer() {
    let srv = TestServer::start().await;
    srv.agent("ann@example.com", "admin").await;
    let anon = srv.anonymous();
    let wrong = anon.post("/api/v1/auth/login", json!({"email": "ann@example.com", "password": "nope-nope"})).await;
    let unknown = anon.post("/api/v1/auth/login", json!({"email": "bob@example.com", "password": "nope-nope"})).await;
    assert_error(&wrong, 401, "invalid_credentials");
    assert_eq!(wrong, unknown);
}

#[tokio::test]
async fn session_writes_need_the_csrf_token() {
    let srv = TestServer::start().await;
    srv.agent("ann@example.com", "admin").await;
    let mut ann = srv.login("ann@example.com").await;
    let csrf = ann.csrf.take();
    assert_error(&ann.post("/api/v1/teams", json!({"name": "X"})).await, 403, "csrf_failed");
    ann.csrf = Some("0".repeat(64));
    assert_error(&ann.post("/api/v1/teams", json!({"name": "X"})).await, 403, "csrf_failed");
    // Reads need no token; nothing was created.
    assert_eq!(ann.ok_get("/api/v1/teams").await, json!([]));
    ann.csrf = csrf;
    ann.ok_post("/api/v1/teams", json!({"name": "X"}), 201).await;
}

#[tokio::test]
async fn replies_notes_properties_and_the_outbox() {
    let srv = TestServer::start().await;
    let admin = srv.agent("ann@example.com", "super_admin").await;
    let ch = admin.channel("custom", "Portal", Some("async")).await;
    let id = admin.inbound(ch, "u-9", "Where is my parcel?").await;

    let reply = admin
        .ok_post(
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"content": "On its way", "content_html": "<p>On its <b>way</b><script>x()</script></p>"}),
            201,
        )
        .await;
    assert_eq!(reply["seq"], 2);
    assert_eq!(reply["message"]["direction"], "out");
    assert_eq!(reply["message"]["source"], "api");
    assert_eq!(reply["message"]["content_html"], "<p>On its <b>way</b></p>");
    let note =
        admin.ok_post(&format!("/api/v1/conversations/{id}/notes"), json!({"content": "VIP, be quick"}), 201).await;
    assert_eq!(note["seq"], 3);
    assert_eq!(note["message"]["direction"], "note");

    // The reply is queued for delivery; the note never is (CORE-10).
    let reply_id = reply["message_id"].as_i64().unwrap();
    let note_id = note["message_id"].as_i64().unwrap();
    assert_eq!(switchboard::store::outbox::for_message(srv.store(), reply_id).await.unwrap().len(), 1);
    assert!(switchboard::store::outbox::for_message(srv.store(), note_id).await.unwrap().is_empty());
    let deliveries = admin.ok_get(&format!("/api/v1/channels/{ch}/deliveries")).await;
    assert_eq!(deliveries.as_array().unwrap().len(), 1);
    assert_eq!(deliveries[0]["state"], "pending");

    // Messages in one order, paged by seq.
    let all = admin.ok_get(&format!("/api/v1/conversations/{id}/messages")).await;
    let seqs: Vec<i64> = all.as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(all[0]["author"]["kind"], "customer");
    assert_eq!(all[1]["author"]["name"], "ann");
    let after = admin.ok_get(&format!("/api/v1/conversations/{id}/messages?after_seq=1&limit=1")).await;
    assert_eq!(after.as_array().unwrap().len(), 1);
    assert_eq!(after[0]["seq"], 2);
    let before = admin.ok_get(&format!("/api/v1/conversations/{id}/messages?before_seq=3&limit=1")).await;
    assert_eq!(before[0]["seq"], 2);

    // Properties, tags, custom fields.
    let team = admin.ok_post("/api/v1/teams", json!({"name": "Logistics"}), 201).await["id"].as_i64().unwrap();
    let (s, c) = admin
        .patch(
            &format!("/api/v1/conversations/{id}"),
            json!({
                "status": "pending", "assignee_id": admin.agent_id, "team_id": team, "priority": "high",
                "tags": ["Shipping", "vip"], "custom_fields": {"order_no": "A-17"}
            }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "pending");
    assert_eq!(c["assignee_id"], admin.agent_id);
    assert_eq!(c["priority"], "high");
    assert_eq!(c["tags"], json!(["shipping", "vip"]));
    assert_eq!(c["custom_fields"]["order_no"], "A-17");
    assert!(c["first_response_at"].is_string());

    let c = admin
        .patch(
            &format!("/api/v1/conversations/{id}"),
            json!({"assignee_id": null, "remove_tags": ["vip"], "custom_fields": {"order_no": null}}),
        )
        .await
        .1;
    assert!(c["assignee_id"].is_null());
    assert_eq!(c["tags"], json!(["shipping"]));
    assert_eq!(c["custom_fields"], json!({}));

    // Filters.
    let by_tag = admin.ok_get("/api/v1/conversations?tag=shipping").await;
    assert_eq!(by_tag["total"], 1);
    assert_eq!(admin.ok_get("/api/v1/conversations?tag=nothing").await["total"], 0);
    assert_eq!(admin.ok_get(&format!("/api/v1/conversations?team={team}&status=pending")).await["total"], 1);
    assert_eq!(admin.ok_get("/api/v1/conversations?status=open").await["total"], 0);
    assert_eq!(admin.ok_get("/api/v1/conversations?assignee=none").await["total"], 1);
    assert_eq!(admin.ok_get("/api/v1/conversations?q=PARCEL").await["total"], 1, "search is case-insensitive");
    assert_eq!(admin.ok_get("/api/v1/conversations?q=way").await["total"], 1, "search reads message text");
    assert_eq!(admin.ok_get("/api/v1/conversations?q=50%25").await["total"], 0, "LIKE wildcards are literal");

    // Reply and close in one action (HD-10).
    let done = admin
        .ok_post(
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"content": "Delivered!", "status": "closed"}),
            201,
        )
        .await;
    assert_eq!(done["conversation"]["status"], "closed");
    assert!(done["conversation"]["closed_at"].is_string());

    // Every change is in the audit log.
    let audit = admin.ok_get(&format!("/api/v1/audit?entity_type=conversation&entity_id={id}")).await;
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"conversation.update") && actions.contains(&"conversation.create"), "{actions:?}");
}

#[tokio::test]
async fn core_6_conditional_custom_status() {
    let srv = TestServer::start().await;
    let admin = srv.agent("ann@example.com", "super_admin").await;
    let st = admin.ok_post("/api/v1/statuses", json!({"key": "waiting_vendor", "name": "Waiting on vendor", "base": "pending", "required_fields": ["team", "custom:vendor"]}), 201).await;
    assert_eq!(st["builtin"], false);
    let ch = admin.channel("email", "Support inbox", None).await;
    let id = admin.inbound(ch, "mail-1", "Broken screen").await;
    let refused = admin.patch(&format!("/api/v1/conversations/{id}"), json!({"status": "waiting_vendor"})).await;
    assert_error(&refused, 422, "rule_violation");
    assert!(refused.1["message"].as_str().unwrap().contains("team, custom:vendor"));
    assert_eq!(admin.ok_get(&format!("/api/v1/conversations/{id}")).await["status"], "open", "nothing changed");

    let team = admin.ok_post("/api/v1/teams", json!({"name": "Hardware"}), 201).await["id"].as_i64().unwrap();
    let ok = admin
        .patch(
            &format!("/api/v1/conversations/{id}"),
            json!({"status": "waiting_vendor", "team_id": team, "custom_fields": {"vendor": "Acme"}}),
        )
        .await;
    assert_eq!(ok.0, StatusCode::OK, "{}", ok.1);
    assert_eq!(ok.1["status"], "waiting_vendor");

    assert_error(&admin.delete("/api/v1/statuses/waiting_vendor").await, 409, "conflict");
    assert_error(&admin.delete("/api/v1/statuses/open").await, 422, "rule_violation");
    assert_error(
        &admin.patch(&format!("/api/v1/conversations/{id}"), json!({"status": "nonexistent"})).await,
        422,
        "unknown_reference",
    );
}

#[tokio::test]
async fn core_8_merge_conversations_and_customers() {
    let srv = TestServer::start().await;
    let admin = srv.agent("ann@example.com", "super_admin").await;
    let ch = admin.channel("custom", "App", Some("async")).await;
    let a = admin.inbound(ch, "u-1", "First").await;
    let b = admin.inbound(ch, "u-1", "Second").await;
    let survivor = admin.ok_post(&format!("/api/v1/conversations/{b}/merge"), json!({"into": a}), 200).await;
    assert_eq!(survivor["id"], a);
    let merged = admin.ok_get(&format!("/api/v1/conversations/{b}")).await;
    assert_eq!(merged["merged_into_id"], a);
    assert_eq!(merged["status"], "closed");
    assert_error(
        &admin.post(&format!("/api/v1/conversations/{b}/messages"), json!({"content": "x"})).await,
        422,
        "rule_violation",
    );
    assert_error(
        &admin.post(&format!("/api/v1/conversations/{a}/merge"), json!({"into": a})).await,
        422,
        "rule_violation",
    );
    let list = admin.ok_get("/api/v1/conversations").await;
    assert_eq!(list["total"], 1, "merged conversations are hidden by default");

    // Customers: link identities, merge two people into one (CC-6, HD-1).
    let c1 = admin.ok_get(&format!("/api/v1/conversations/{a}")).await["customer_id"].as_i64().unwrap();
    let other = admin.inbound(ch, "u-2", "Third").await;
    let c2 = admin.ok_get(&format!("/api/v1/conversations/{other}")).await["customer_id"].as_i64().unwrap();
    admin
        .ok_post(
            &format!("/api/v1/customers/{c1}/identities"),
            json!({"kind": "email", "value": "Pat@Example.com"}),
            201,
        )
        .await;
    assert_error(
        &admin
            .post(&format!("/api/v1/customers/{c2}/identities"), json!({"kind": "email", "value": "pat@example.com"}))
            .await,
        409,
        "conflict",
    );
    let found = admin.ok_get("/api/v1/customers?q=pat@").await;
    assert_eq!(found["total"], 1);
    let merged = admin.ok_post(&format!("/api/v1/customers/{c2}/merge"), json!({"into": c1}), 200).await;
    assert_eq!(merged["identities"].as_array().unwrap().len(), 3, "two external ids and an email");
    let history = admin.ok_get(&format!("/api/v1/customers/{c1}/conversations")).await;
    assert_eq!(history["total"], 2, "both people's open conversations now belong to one customer");
    let patched =
        admin.patch(&format!("/api/v1/customers/{c1}"), json!({"name": "Pat Doe", "company": "Acme"})).await.1;
    assert_eq!(patched["company"]["name"], "Acme");
    assert_eq!(admin.ok_get("/api/v1/companies?q=ac").await[0]["name"], "Acme");
}

#[tokio::test]
async fn cc_6_identity_linking_when_creating_conversations() {
    let srv = TestServer::start().await;
    let admin = srv.agent("ann@example.com", "super_admin").await;
    let shop = admin.channel("custom", "Shop", Some("async")).await;
    let forum = admin.channel("custom", "Forum", Some("async")).await;
    let first = admin.ok_post("/api/v1/conversations", json!({"channel": shop, "user_custom_id": "s-1", "content": "hi", "email": "kim@example.com", "name": "Kim"}), 201).await;
    // Same email from another channel: linked to the same customer.
    let second = admin
        .ok_post(
            "/api/v1/conversations",
            json!({"channel": forum, "user_custom_id": "f-77", "content": "hello", "email": "KIM@example.com"}),
            201,
        )
        .await;
    assert_eq!(first["user_id"], second["user_id"]);
    // Same email, another id on the same channel: a different person.
    let third = admin
        .ok_post(
            "/api/v1/conversations",
            json!({"channel": shop, "user_custom_id": "s-2", "content": "hey", "email": "kim@example.com"}),
            201,
        )
        .await;
    assert_ne!(third["user_id"], first["user_id"]);
    // The known id wins again.
    let again = admin
        .ok_post("/api/v1/conversations", json!({"channel": shop, "user_custom_id": "s-1", "content": "again"}), 201)
        .await;
    assert_eq!(again["user_id"], first["user_id"]);
}

#[tokio::test]
async fn external_message_id_is_idempotent() {
    let srv = TestServer::start().await;
    let admin = srv.agent("ann@example.com", "super_admin").await;
    let ch = admin.channel("custom", "Shop", Some("async")).await;
    let body = json!({"channel": ch, "user_custom_id": "x", "content": "once", "external_message_id": "m-1"});
    let first = admin.ok_post("/api/v1/conversations", body.clone(), 201).await;
    let (status, second) = admin.post("/api/v1/conversations", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["created"], false);
    assert_eq!(second["conversation_id"], first["conversation_id"]);
    assert_eq!(second["message_id"], first["message_id"]);
    assert_eq!(admin.ok_get("/api/v1/conversations").await["total"], 1);
}

/// #14 item 12: Mattermost and Zalo have no connector yet, so they cannot be created, and a reply on
/// a channel of such a kind (written by its coming connector) gets no outbox row that would stay
/// pending for ever; the same reply on a custom channel is queued.
#[tokio::test]
async fn every_kind_is_offered_and_queues_its_replies() {
    let srv = TestServer::start().await;
    let admin = srv.agent("ann@example.com", "super_admin").await;
    // Zalo has its connector since #16: every kind has a sender now.
    let got = admin.post("/api/v1/channels", json!({"kind": "fax", "name": "Chat"})).await;
    assert_error(&got, 400, "validation_failed");
    assert_eq!(got.1["message"], "kind: must be one of: email, mattermost, zalo, custom");
    assert_eq!(admin.ok_get("/api/v1/channels").await, json!([]), "nothing was stored");

    let reply = |c: i64| {
        let admin = &admin;
        async move { admin.ok_post(&format!("/api/v1/conversations/{c}/messages"), json!({"content": "hello"}), 201).await }
    };
    let deliveries = |ch: i64| {
        let admin = &admin;
        async move { admin.ok_get(&format!("/api/v1/channels/{ch}/deliveries")).await }
    };
    // A Zalo channel made here has no Official Account: its reply is queued and fails, saying why.
    let chat = admin.ok_post("/api/v1/channels", json!({"kind": "zalo", "name": "Team chat"}), 201).await["id"]
        .as_i64()
        .unwrap();
    let c = admin.inbound(chat, "zalo-user", "hi").await;
    let sent = reply(c).await;
    assert_eq!(sent["message"]["direction"], "out");
    assert_eq!(deliveries(chat).await.as_array().map(Vec::len), Some(1), "queued");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let m = admin.ok_get(&format!("/api/v1/conversations/{c}/messages")).await.as_array().unwrap()[1].clone();
        if m["delivery"]["state"] == "failed" {
            assert!(m["delivery"]["error"].as_str().unwrap().contains("no Official Account"), "{m}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{m}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let custom = admin.channel("custom", "Shop", Some("sync")).await;
    let c = admin.inbound(custom, "u", "hi").await;
    reply(c).await;
    assert_eq!(deliveries(custom).await.as_array().map(Vec::len), Some(1), "a kind with a sender queues the reply");
}

#[tokio::test]
async fn chats_stay_out_of_the_ticket_list_until_they_end() {
    let srv = TestServer::start().await;
    let admin = srv.agent("ann@example.com", "super_admin").await;
    let chat = admin.channel("custom", "Chat", Some("sync")).await;
    let tickets = admin.channel("email", "Inbox", None).await;
    let c = admin.inbound(chat, "mm-user", "hi there").await;
    admin.inbound(tickets, "mail", "a ticket").await;
    assert_eq!(admin.ok_get("/api/v1/conversations").await["total"], 1, "CORE-5: the active chat is not a ticket yet");
    assert_eq!(admin.ok_get("/api/v1/conversations?show_active_chats=true").await["total"], 2, "CC-10");
    let live = admin.ok_get("/api/v1/conversations?active=true").await;
    assert_eq!(live["total"], 1);
    assert_eq!(live["items"][0]["active_chat"], true);
    assert!(live["items"][0]["inactivity_deadline"].is_string());
    admin
        .ok_post(&format!("/api/v1/conversations/{c}/messages"), json!({"content": "bye", "status": "closed"}), 201)
        .await;
    assert_eq!(admin.ok_get("/api/v1/conversations").await["total"], 2, "ended chat is in the ticket list");
    assert_eq!(admin.ok_get("/api/v1/conversations?active=true").await["total"], 0);
}

#[tokio::test]
async fn attachments_upload_link_and_download() {
    let srv = TestServer::start().await;
    let admin = srv.agent("ann@example.com", "super_admin").await;
    let ch = admin.channel("custom", "Shop", Some("async")).await;
    let id = admin.inbound(ch, "u", "see file").await;
    let resp = admin
        .request(reqwest::Method::POST, "/api/v1/attachments?file_name=invoice.pdf")
        .header("Content-Type", "application/pdf")
        .body(b"%PDF-1.4 test".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let att: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(att["mime_type"], "application/pdf");
    assert_eq!(att["size"], 13);
    let att_id = att["id"].as_i64().unwrap();
    let m = admin
        .ok_post(
            &format!("/api/v1/conversations/{id}/messages"),
            json!({"content": "attached", "attachment_ids": [att_id]}),
            201,
        )
        .await;
    assert_eq!(m["message"]["attachments"][0]["file_name"], "invoice.pdf");
    assert_error(
        &admin
            .post(
                &format!("/api/v1/conversations/{id}/messages"),
                json!({"content": "again", "attachment_ids": [att_id]}),
            )
            .await,
        422,
        "rule_violation",
    );
    let bytes = admin.request(reqwest::Method::GET, &format!("/api/v1/attachments/{att_id}")).send().await.unwrap();
    assert_eq!(bytes.headers()["content-type"], "application/pdf");
    assert_eq!(bytes.bytes().await.unwrap().as_ref(), b"%PDF-1.4 test");
    assert!(srv.data_dir().join("attachments").exists(), "content is on disk under the data directory");
}
