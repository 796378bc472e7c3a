//! Issue #18 (CU-1, CU-2, EM-8, NT-10, HD-12): the customer portal end to end — an account through "forgot
//! password" (the link read from the mail's outbox row), sign-in, the customer's tickets with their public messages,
//! a ticket opened through the web (channel kind `web`, agents see it live), a reply with a file, close, rate; the
//! signed links of notification mail (auto-login: valid, expired, tampered, never an agent; a rating recorded once
//! and changeable for 7 days; unsubscribe); and bad input answered 4xx with nothing changed.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::domain::Rating;
use switchboard::domain::links::Link;
use switchboard::portal::links::Links;
use switchboard::store;

use crate::common::portal::{self, Portal, reset_link, token_of};
use crate::common::ws::WsClient;
use crate::common::{Api, TestServer, assert_error};

const PASSWORD: &str = "customer secret 1";

/// Run SQL on the test's database through a connection of its own (to age a row).
async fn sql(url: &str, statement: &str) {
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            use diesel::Connection;
            use diesel::connection::SimpleConnection;
            let mut conn = diesel::SqliteConnection::establish(path).expect("open the SQLite file");
            SimpleConnection::batch_execute(&mut conn, statement).expect("run the statement");
        }
        None => {
            let mut conn = AsyncPgConnection::establish(url).await.expect("connect to PostgreSQL");
            conn.batch_execute(statement).await.expect("run the statement");
        }
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The path and token of a signed link.
fn path_of(url: &str) -> String {
    let at = url.find("/portal/").unwrap_or_else(|| panic!("a portal link: {url}"));
    url[at..].to_owned()
}

async fn get_page(srv: &TestServer, url: &str) -> (u16, String, Option<String>) {
    let resp = no_redirects().get(format!("{}{}", srv.base, path_of(url))).send().await.unwrap();
    let status = resp.status().as_u16();
    let cookie = portal::session_cookie(&resp);
    let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = resp.text().await.unwrap_or_default();
    (status, format!("{}{body}", location.map(|l| format!("Location: {l}\n")).unwrap_or_default()), cookie)
}

async fn audit_count(admin: &Api, action: &str) -> usize {
    let log = admin.ok_get("/api/v1/audit?limit=200").await;
    let items = log.as_array().cloned().or_else(|| log["items"].as_array().cloned()).unwrap_or_default();
    items.iter().filter(|e| e["action"] == action).count()
}

fn texts(messages: &Value) -> Vec<String> {
    messages.as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn cu_1_cu_2_a_customer_sets_a_password_opens_replies_closes_and_rates() {
    let srv = TestServer::start().await;
    let admin = srv.agent("root@example.com", "super_admin").await;
    let shop = admin.channel("custom", "Shop", Some("async")).await;
    let (ann_id, shop_ticket) =
        portal::customer_with_ticket(&admin, shop, "ann-1", "ann@example.com", "My order is late").await;
    admin
        .ok_post(&format!("/api/v1/conversations/{shop_ticket}/messages"), json!({"content": "It ships today"}), 201)
        .await;
    admin
        .ok_post(&format!("/api/v1/conversations/{shop_ticket}/notes"), json!({"content": "internal: VIP"}), 201)
        .await;

    // "Forgot password" answers the same for an unknown address, and mails nothing there (CU-1: not enumerable).
    let anon = srv.anonymous();
    let (s1, known) = anon.post("/portal/api/password/forgot", json!({"email": "ANN@example.com"})).await;
    let (s2, unknown) = anon.post("/portal/api/password/forgot", json!({"email": "nobody@example.com"})).await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (202, 202));
    assert_eq!(known, unknown, "the same answer either way");
    assert!(reset_link(&srv, "nobody@example.com").await.is_none(), "no mail for an unknown address");
    let link = reset_link(&srv, "ann@example.com").await.expect("the reset mail is queued in the outbox");
    assert!(link.contains("/portal/reset/"), "{link}");
    let (status, before) = Portal::login(&srv.base, "ann@example.com", PASSWORD).await.err().unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no password yet: {before}");

    // The link sets the password once and signs in.
    let ann = portal::account(&srv, "ann@example.com", PASSWORD).await;
    assert_eq!(ann.customer_id, ann_id);
    let again =
        anon.post("/portal/api/password/reset", json!({"token": token_of(&link), "password": "another one 2"})).await;
    // `account` asked for a new link, which replaced the first one.
    assert_error(&again, 400, "invalid_token");
    let ann = Portal::login(&srv.base, "ann@example.com", PASSWORD).await.expect("signs in with the new password");
    assert!(Portal::login(&srv.base, "ann@example.com", "wrong password").await.is_err());
    let me = ann.ok_get("/portal/api/me").await;
    assert_eq!(me["customer"]["emails"], json!(["ann@example.com"]));

    // Their tickets, with public messages only.
    let list = ann.ok_get("/portal/api/tickets").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], shop_ticket);
    assert_eq!(list[0]["via"], "custom");
    let msgs = ann.ok_get(&format!("/portal/api/tickets/{shop_ticket}/messages")).await;
    assert_eq!(texts(&msgs), ["My order is late", "It ships today"], "never the internal note");
    assert_eq!(msgs[1]["from"], "agent");

    // A ticket opened through the web: channel kind web, agents see it live.
    let mut socket = WsClient::connect(&srv.base, admin.token.as_deref().unwrap(), None).await;
    let file = ann.upload("invoice.pdf", "application/pdf", b"%PDF-1.4 invoice").await;
    let opened = ann
        .ok_post(
            "/portal/api/tickets",
            json!({"subject": "Wrong size", "content": "I got an M, I ordered an L", "attachment_ids": [file]}),
            201,
        )
        .await;
    let web_ticket = opened["ticket"]["id"].as_i64().unwrap();
    assert_eq!(opened["ticket"]["via"], "web");
    assert_eq!(opened["message"]["attachments"][0]["file_name"], "invoice.pdf");
    let created = socket
        .wait_for("the new web ticket", Duration::from_secs(10), |f| {
            f["type"] == "conversation.created" && f["conversation"]["id"] == web_ticket
        })
        .await;
    assert_eq!(created["conversation"]["channel_kind"], "web");
    let seen = admin.ok_get(&format!("/api/v1/conversations/{web_ticket}")).await;
    assert_eq!((seen["channel_kind"].as_str(), seen["customer_id"].as_i64()), (Some("web"), Some(ann_id)));
    let channels = admin.ok_get("/api/v1/channels").await;
    let webs: Vec<&Value> = channels.as_array().unwrap().iter().filter(|c| c["kind"] == "web").collect();
    assert_eq!(webs.len(), 1, "one web channel, listed with the others: {channels}");

    // A reply with a file; the agent sees it with the file.
    let shot = ann.upload("photo.png", "image/png", b"\x89PNG fake").await;
    let posted = ann
        .ok_post(
            &format!("/portal/api/tickets/{web_ticket}/messages"),
            json!({"content": "Here is a photo", "attachment_ids": [shot]}),
            201,
        )
        .await;
    assert_eq!(posted["ticket"]["id"], web_ticket);
    let url = posted["message"]["attachments"][0]["url"].as_str().unwrap().to_owned();
    let download = ann.request(Method::GET, &url).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"\x89PNG fake");
    let agent_msgs = admin.ok_get(&format!("/api/v1/conversations/{web_ticket}/messages")).await;
    let last = agent_msgs.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["attachments"][0]["file_name"], "photo.png", "{last}");
    // The upload was used: naming it again is refused.
    let reused = ann
        .post(
            &format!("/portal/api/tickets/{web_ticket}/messages"),
            json!({"content": "again", "attachment_ids": [shot]}),
        )
        .await;
    assert_error(&reused, 422, "unknown_reference");

    // An agent's reply on a web ticket: no outbox row (the portal shows it), and the customer reads it there.
    let reply = admin
        .ok_post(&format!("/api/v1/conversations/{web_ticket}/messages"), json!({"content": "An L is on its way"}), 201)
        .await;
    let reply_id = reply["id"].as_i64().or_else(|| reply["message"]["id"].as_i64()).unwrap();
    assert!(store::outbox::for_message(srv.store(), reply_id).await.unwrap().is_empty(), "nothing queued for web");
    let msgs = ann.ok_get(&format!("/portal/api/tickets/{web_ticket}/messages")).await;
    assert_eq!(texts(&msgs).last().unwrap(), "An L is on its way");

    // Close, then rate (HD-12); agents see the rating, and filter by it.
    let closed = ann.ok_post(&format!("/portal/api/tickets/{web_ticket}/close"), json!({}), 200).await;
    assert_eq!(closed["state"], "closed");
    assert_eq!(admin.ok_get(&format!("/api/v1/conversations/{web_ticket}")).await["status"], "closed");
    let rated = ann.ok_post(&format!("/portal/api/tickets/{web_ticket}/rating"), json!({"rating": "good"}), 200).await;
    assert_eq!(rated["csat"], "good");
    socket
        .wait_for("the rating, live", Duration::from_secs(10), |f| {
            f["type"] == "conversation.updated"
                && f["conversation"]["id"] == web_ticket
                && f["conversation"]["csat"] == "good"
        })
        .await;
    let ids = |page: &Value| -> Vec<i64> {
        page["items"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect()
    };
    assert_eq!(ids(&admin.ok_get("/api/v1/conversations?csat=good").await), [web_ticket]);
    assert!(!ids(&admin.ok_get("/api/v1/conversations?csat=none").await).contains(&web_ticket));
    assert!(ids(&admin.ok_get("/api/v1/conversations?csat=none").await).contains(&shop_ticket));
    assert_error(&admin.get("/api/v1/conversations?csat=great").await, 400, "validation_failed");

    // Bad input: a clear 4xx, and nothing changes.
    let bad = ann.post(&format!("/portal/api/tickets/{web_ticket}/rating"), json!({"rating": "excellent"})).await;
    assert_error(&bad, 400, "validation_failed");
    assert_eq!(admin.ok_get(&format!("/api/v1/conversations/{web_ticket}")).await["csat"], "good");
    let empty = ann.post("/portal/api/tickets", json!({"subject": " ", "content": "x"})).await;
    assert_error(&empty, 400, "validation_failed");
    let unknown_field = ann.post("/portal/api/tickets", json!({"subject": "s", "content": "x", "channel": 1})).await;
    assert_eq!(unknown_field.0, StatusCode::BAD_REQUEST);
    let no_file =
        ann.post("/portal/api/tickets", json!({"subject": "s", "content": "x", "attachment_ids": [999999]})).await;
    assert_error(&no_file, 422, "unknown_reference");
    assert_eq!(ann.ok_get("/portal/api/tickets").await.as_array().unwrap().len(), 2, "no ticket was opened");
    let missing = ann.post("/portal/api/tickets/999999/messages", json!({"content": "hello"})).await;
    assert_error(&missing, 404, "not_found");
    let no_csrf = ann
        .client
        .post(format!("{}/portal/api/tickets/{web_ticket}/close", srv.base))
        .header("Cookie", format!("sb_customer={}", ann.token))
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN, "a state change needs the session's CSRF token");

    // The customer's profile fields (CU-1) are kept and shown to agents.
    let patched = admin
        .call(
            Method::PATCH,
            &format!("/api/v1/customers/{ann_id}"),
            Some(json!({"department": "Sales", "location": "Izmir"})),
        )
        .await;
    assert_eq!(patched.0, StatusCode::OK, "{}", patched.1);
    assert_eq!((patched.1["department"].as_str(), patched.1["location"].as_str()), (Some("Sales"), Some("Izmir")));
    let me = ann.ok_get("/portal/api/me").await;
    assert_eq!(
        (me["customer"]["department"].as_str(), me["customer"]["location"].as_str()),
        (Some("Sales"), Some("Izmir"))
    );

    // Signing out ends the session.
    assert_eq!(ann.call(Method::POST, "/portal/api/logout", None).await.0, StatusCode::NO_CONTENT);
    assert_error(&ann.get("/portal/api/tickets").await, 401, "unauthorized");
}

#[tokio::test]
async fn cu_1_a_reset_link_is_single_use_expires_and_needs_a_real_password() {
    let srv = TestServer::start().await;
    let admin = srv.agent("root@example.com", "super_admin").await;
    let shop = admin.channel("custom", "Shop", Some("async")).await;
    portal::customer_with_ticket(&admin, shop, "bo", "bo@example.com", "Hello").await;
    let anon = srv.anonymous();
    anon.ok_post("/portal/api/password/forgot", json!({"email": "bo@example.com"}), 202).await;
    let token = token_of(&reset_link(&srv, "bo@example.com").await.unwrap());

    let short = anon.post("/portal/api/password/reset", json!({"token": token, "password": "short"})).await;
    assert_error(&short, 400, "validation_failed");
    let altered =
        anon.post("/portal/api/password/reset", json!({"token": format!("{token}0"), "password": PASSWORD})).await;
    assert_error(&altered, 400, "invalid_token");
    assert_error(
        &anon.post("/portal/api/password/forgot", json!({"email": "not an address"})).await,
        400,
        "validation_failed",
    );

    sql(&srv.db.url, "UPDATE customer_password_resets SET expires_at = '2001-01-01 00:00:00'").await;
    let expired = anon.post("/portal/api/password/reset", json!({"token": token, "password": PASSWORD})).await;
    assert_error(&expired, 400, "token_expired");
    assert!(Portal::login(&srv.base, "bo@example.com", PASSWORD).await.is_err(), "no password was set");

    anon.ok_post("/portal/api/password/forgot", json!({"email": "bo@example.com"}), 202).await;
    let token = token_of(&reset_link(&srv, "bo@example.com").await.unwrap());
    anon.ok_post("/portal/api/password/reset", json!({"token": token, "password": PASSWORD}), 200).await;
    let used = anon.post("/portal/api/password/reset", json!({"token": token, "password": "another one 2"})).await;
    assert_error(&used, 400, "token_used");
    assert!(Portal::login(&srv.base, "bo@example.com", PASSWORD).await.is_ok(), "the first reset's password holds");
}

#[tokio::test]
async fn nt_10_auto_login_links_open_the_ticket_for_three_days_and_never_for_an_agent() {
    let srv = TestServer::start().await;
    let admin = srv.agent("root@example.com", "super_admin").await;
    let shop = admin.channel("custom", "Shop", Some("async")).await;
    let (cid, ticket) = portal::customer_with_ticket(&admin, shop, "cy", "cy@example.com", "Help").await;
    let links = Links::of_store(srv.store(), &srv.base).unwrap();

    // Valid: signed in as that customer, sent to the ticket.
    let url = links.auto_login_url(cid, ticket);
    let (status, body, cookie) = get_page(&srv, &url).await;
    assert_eq!(status, 303, "{body}");
    assert!(body.starts_with(&format!("Location: /portal/tickets/{ticket}")), "{body}");
    let token = cookie.expect("a customer session");
    let me = reqwest::Client::new()
        .get(format!("{}/portal/api/me", srv.base))
        .header("Cookie", format!("sb_customer={token}"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(me["customer"]["id"], cid);
    // That session is a customer's: no agent route takes it.
    let as_agent = reqwest::Client::new()
        .get(format!("{}/api/v1/me", srv.base))
        .header("Cookie", format!("sb_session={token}; sb_customer={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_agent.status(), StatusCode::UNAUTHORIZED);

    // Expired (signed with a past expiry) and tampered links are refused with a page, and sign nobody in.
    let now = chrono::Utc::now().timestamp();
    let expired = links.url_until(&Link::AutoLogin { customer_id: cid, conversation_id: ticket }, now - 1);
    let (status, body, cookie) = get_page(&srv, &expired).await;
    assert_eq!((status, cookie), (410, None));
    assert!(body.contains("expired"), "{body}");
    let mut tampered = url.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (status, body, cookie) = get_page(&srv, &tampered).await;
    assert_eq!((status, cookie), (400, None), "{body}");
    // A token of another purpose is not an auto-login.
    let rate = links.rating_url(ticket, cid, Rating::Good).replace("/portal/rate/", "/portal/auto-login/");
    assert_eq!(get_page(&srv, &rate).await.0, 400);
    // Another signer's key (another install) is refused.
    let other = Links::new(
        &switchboard::secrets::SecretBox::new(switchboard::secrets::SecretKey::generate(), vec![]),
        &srv.base,
    );
    assert_eq!(get_page(&srv, &other.auto_login_url(cid, ticket)).await.0, 400);

    // Never an agent: a link names a customer id, and an agent is none — an id that names no customer signs nobody in.
    let (status, _, cookie) = get_page(&srv, &links.auto_login_url(999_999, ticket)).await;
    assert_eq!((status, cookie), (400, None), "a link for no customer");
    // And an agent's own credentials never make a portal session.
    let agent_on_portal = reqwest::Client::new()
        .get(format!("{}/portal/api/me", srv.base))
        .bearer_auth(admin.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(agent_on_portal.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn hd_12_a_rating_link_records_one_rating_changeable_for_seven_days() {
    let srv = TestServer::start().await;
    let admin = srv.agent("root@example.com", "super_admin").await;
    let shop = admin.channel("custom", "Shop", Some("async")).await;
    let (cid, ticket) = portal::customer_with_ticket(&admin, shop, "di", "di@example.com", "Broken").await;
    admin.call(Method::PATCH, &format!("/api/v1/conversations/{ticket}"), Some(json!({"status": "closed"}))).await;
    let links = Links::of_store(srv.store(), &srv.base).unwrap();

    let (status, body, _) = get_page(&srv, &links.rating_url(ticket, cid, Rating::Good)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Thank you"), "{body}");
    assert_eq!(admin.ok_get(&format!("/api/v1/conversations/{ticket}")).await["csat"], "good");
    // The same click again: still one rating, nothing new written.
    assert_eq!(get_page(&srv, &links.rating_url(ticket, cid, Rating::Good)).await.0, 200);
    assert_eq!(audit_count(&admin, "conversation.rate").await, 1);
    // Changing it replaces it; it is never counted twice.
    assert_eq!(get_page(&srv, &links.rating_url(ticket, cid, Rating::Bad)).await.0, 200);
    assert_eq!(admin.ok_get(&format!("/api/v1/conversations/{ticket}")).await["csat"], "bad");
    let row = store::portal::rating_of(srv.store(), ticket).await.unwrap().expect("a rating");
    assert_eq!((row.rating, row.customer_id), (Rating::Bad, cid));
    assert_eq!(audit_count(&admin, "conversation.rate").await, 2);
    let bad: Vec<Value> = admin.ok_get("/api/v1/conversations?csat=bad").await["items"].as_array().unwrap().clone();
    assert_eq!(bad.len(), 1);

    // A link for another customer's ticket, or a tampered one, records nothing.
    let (other, _) = portal::customer_with_ticket(&admin, shop, "ed", "ed@example.com", "Other").await;
    assert_eq!(get_page(&srv, &links.rating_url(ticket, other, Rating::Good)).await.0, 400);
    let mut tampered = links.rating_url(ticket, cid, Rating::Good);
    tampered.insert(tampered.len() - 3, 'x');
    assert_eq!(get_page(&srv, &tampered).await.0, 400);
    assert_eq!(admin.ok_get(&format!("/api/v1/conversations/{ticket}")).await["csat"], "bad");

    // Seven days after the first rating it can no longer change.
    sql(&srv.db.url, "UPDATE conversation_ratings SET rated_at = '2001-01-01 00:00:00'").await;
    let (status, body, _) = get_page(&srv, &links.rating_url(ticket, cid, Rating::Average)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(admin.ok_get(&format!("/api/v1/conversations/{ticket}")).await["csat"], "bad");
}

#[tokio::test]
async fn an_unsubscribe_link_removes_that_address_from_the_ticket() {
    let srv = TestServer::start().await;
    let admin = srv.agent("root@example.com", "super_admin").await;
    let shop = admin.channel("custom", "Shop", Some("async")).await;
    let (_, ticket) = portal::customer_with_ticket(&admin, shop, "fa", "fa@example.com", "Hi").await;
    sql(
        &srv.db.url,
        &format!(
            "INSERT INTO conversation_subscribers (conversation_id, email, created_at) VALUES \
             ({ticket}, 'fa@example.com', '2026-01-01 00:00:00'), ({ticket}, 'boss@example.com', '2026-01-01 00:00:00')"
        ),
    )
    .await;
    let links = Links::of_store(srv.store(), &srv.base).unwrap();
    let url = links.unsubscribe_url(ticket, "Boss@Example.com");
    let mut tampered = url.clone();
    tampered.insert(tampered.len() - 2, 'q');
    assert_eq!(get_page(&srv, &tampered).await.0, 400);
    assert_eq!(store::portal::subscribers(srv.store(), ticket).await.unwrap(), ["boss@example.com", "fa@example.com"]);

    let (status, body, _) = get_page(&srv, &url).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("unsubscribed"), "{body}");
    assert_eq!(store::portal::subscribers(srv.store(), ticket).await.unwrap(), ["fa@example.com"]);
    // Again: still a confirmation, nothing else removed.
    assert_eq!(get_page(&srv, &url).await.0, 200);
    assert_eq!(store::portal::subscribers(srv.store(), ticket).await.unwrap(), ["fa@example.com"]);
}
