//! Custom channels (issue #4): the integrator contract of `custom.md`, the signed reply webhook
//! from the durable outbox (retries, order, restarts), the last-chat rule, routing. CC-1…CC-14.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use common::ws::WsClient;
use common::{Api, SilentHook, TestServer, assert_error};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

/// What a webhook receiver got.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    timestamp: String,
    signature: String,
    event: String,
    body: Vec<u8>,
    /// The status the receiver answered.
    answered: u16,
}

#[derive(Default)]
struct ReceiverState {
    /// Answer 503 to this many requests first.
    fail_first: usize,
    got: Vec<Received>,
}

/// A real HTTP receiver on a loopback port.
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
    handle: actix_web::dev::ServerHandle,
}

async fn hook(req: HttpRequest, body: web::Bytes, state: web::Data<Arc<Mutex<ReceiverState>>>) -> HttpResponse {
    let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mut s = state.lock().unwrap();
    let answered = if s.fail_first > 0 {
        s.fail_first -= 1;
        503
    } else {
        200
    };
    s.got.push(Received {
        delivery: h("x-switchboard-delivery"),
        timestamp: h("x-switchboard-timestamp"),
        signature: h("x-switchboard-signature"),
        event: h("x-switchboard-event"),
        body: body.to_vec(),
        answered,
    });
    HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap()).finish()
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        Self::start_on("127.0.0.1:0", fail_first).await
    }

    async fn start_on(addr: &str, fail_first: usize) -> Self {
        let state = Arc::new(Mutex::new(ReceiverState { fail_first, got: vec![] }));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).route("/hook", web::post().to(hook)))
            .workers(1)
            .disable_signals()
            .bind(addr)
            .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url: format!("http://127.0.0.1:{port}/hook"), state, handle }
    }

    fn got(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// Accepted (2xx) deliveries' bodies as JSON, in arrival order.
    fn accepted(&self) -> Vec<Value> {
        self.got().iter().filter(|r| r.answered == 200).map(|r| serde_json::from_slice(&r.body).unwrap()).collect()
    }

    /// Wait until `n` deliveries were accepted (polling the receiver's own record).
    async fn wait_accepted(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} deliveries accepted: {:#?}",
                got.len(),
                self.got()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        self.handle.stop(true).await;
    }
}

fn verify(secret: &str, r: &Received) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.", r.timestamp).as_bytes());
    mac.update(&r.body);
    r.signature == format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn fast_server() -> TestServer {
    TestServer::start_with(|raw| raw.outbox_backoff_scale = Some(0.005)).await
}

async fn channel(admin: &Api, url: &str, kind: &str) -> (i64, String) {
    let c = admin
        .ok_post("/api/v1/custom-channels", json!({"name": "Shop app", "webhook_url": url, "type": kind}), 201)
        .await;
    (c["id"].as_i64().unwrap(), c["secret"].as_str().unwrap().to_owned())
}

async fn inbound(api: &Api, ch: i64, body: Value) -> (StatusCode, Value) {
    api.post(&format!("/api/v1/custom-channels/{ch}/inbound"), body).await
}

#[tokio::test]
async fn cc_1_3_14_admin_crud_and_secrets() {
    let srv = TestServer::start().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let agent = srv.agent("agent@example.com", "agent").await;
    let created = admin
        .ok_post(
            "/api/v1/custom-channels",
            json!({"name": "Forum", "webhook_url": "http://127.0.0.1:9/hook", "type": "async"}),
            201,
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["enabled"], true);
    assert_eq!(created["type"], "async");
    assert!(created["secret"].as_str().unwrap().len() >= 32);
    let list = admin.ok_get("/api/v1/custom-channels").await;
    assert_eq!(list[0]["webhook_url"], "http://127.0.0.1:9/hook");
    assert!(list[0].get("secret").is_none(), "CC-3 lists parameters, never the secret");
    // CC-2: at once available to agent access.
    assert_eq!(agent.ok_get("/api/v1/custom-channels").await, json!([]));
    admin.ok_put(&format!("/api/v1/agents/{}/channels", agent.agent_id), json!({"channel_ids": [id]})).await;
    assert_eq!(agent.ok_get("/api/v1/custom-channels").await.as_array().unwrap().len(), 1);
    assert_error(
        &agent
            .post("/api/v1/custom-channels", json!({"name": "x", "webhook_url": "http://127.0.0.1:9/", "type": "sync"}))
            .await,
        403,
        "forbidden",
    );

    let patched = admin
        .patch(&format!("/api/v1/custom-channels/{id}"), json!({"name": "Forum 2", "type": "sync", "enabled": false}))
        .await
        .1;
    assert_eq!(
        (patched["name"].as_str(), patched["type"].as_str(), patched["enabled"].as_bool()),
        (Some("Forum 2"), Some("sync"), Some(false))
    );
    let rotated = admin.ok_post(&format!("/api/v1/custom-channels/{id}/secret"), json!({}), 200).await;
    assert_ne!(rotated["secret"], created["secret"]);

    for bad in [
        json!({"name": "x", "webhook_url": "ftp://x/", "type": "sync"}),
        json!({"name": "x", "webhook_url": "not a url", "type": "sync"}),
        json!({"name": "x", "webhook_url": "http://127.0.0.1/", "type": "sometimes"}),
        json!({"name": "", "webhook_url": "http://127.0.0.1/", "type": "sync"}),
        json!({"name": "x", "type": "sync"}),
        json!({"name": "x", "webhook_url": "http://127.0.0.1/", "type": "sync", "colour": "red"}),
    ] {
        assert_error(&admin.post("/api/v1/custom-channels", bad.clone()).await, 400, "validation_failed");
    }
    assert_error(
        &admin
            .post(
                "/api/v1/custom-channels",
                json!({"name": "x", "webhook_url": "http://127.0.0.1/", "type": "sync", "routing": {"team_id": 999}}),
            )
            .await,
        422,
        "unknown_reference",
    );
    assert_eq!(admin.ok_get("/api/v1/custom-channels").await.as_array().unwrap().len(), 1, "nothing was created");
    let (s, _) = admin.delete(&format!("/api/v1/custom-channels/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_error(&admin.get(&format!("/api/v1/custom-channels/{id}")).await, 404, "not_found");
}

#[tokio::test]
async fn cc_7_reply_webhook_is_signed_and_complete() {
    let srv = fast_server().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let rx = Receiver::start(0).await;
    let (ch, secret) = channel(&admin, &rx.url, "async").await;
    let (s, first) =
        inbound(&admin, ch, json!({"user_custom_id": "u-42", "content": "Where is my order?", "name": "Kim"})).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let conv = first["conversation_id"].as_i64().unwrap();

    // A note never leaves; an agent reply through the dashboard session does.
    admin.ok_post(&format!("/api/v1/conversations/{conv}/notes"), json!({"content": "internal only"}), 201).await;
    srv.agent("ann@example.com", "admin").await;
    let ann = srv.login("ann@example.com").await;
    let reply = ann
        .ok_post(
            &format!("/api/v1/conversations/{conv}/messages"),
            json!({"content": "Shipped today", "content_html": "<p>Shipped <b>today</b></p>"}),
            201,
        )
        .await;
    let got = rx.wait_accepted(1, Duration::from_secs(10)).await;
    let r = &rx.got()[0];
    assert_eq!(r.event, "message.created");
    assert!(verify(&secret, r), "signature verifies with the documented formula");
    assert!(!verify("wrong", r));
    uuid::Uuid::parse_str(&r.delivery).expect("delivery id is a uuid");
    let w = &got[0];
    assert_eq!(w["event"], "message.created");
    assert_eq!(w["channel"], ch);
    assert_eq!(w["conversation_id"], conv);
    assert_eq!(w["user_id"], first["user_id"]);
    assert_eq!(w["user_custom_id"], "u-42");
    assert!(w["number"].is_string());
    let m = &w["message"];
    assert_eq!(m["message_id"], reply["message_id"]);
    assert_eq!(m["content"], "Shipped today");
    assert_eq!(m["content_html"], "<p>Shipped <b>today</b></p>");
    assert_eq!(m["staff_id"], ann.agent_id);
    assert_eq!(m["staff_name"], "ann");
    assert_eq!(m["sent_via_rule"], 0);
    assert_eq!(m["b_from_api"], 0);
    assert!(m["quoted_message_id"].is_null());
    chrono::DateTime::parse_from_rfc3339(m["created_at"].as_str().unwrap()).unwrap();

    // A reply made with an API token is flagged, so the integrator can ignore its own (CC-7).
    admin.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "via API"}), 201).await;
    let got = rx.wait_accepted(2, Duration::from_secs(10)).await;
    assert_eq!(got[1]["message"]["b_from_api"], 1);
    assert_eq!(rx.got().len(), 2, "the note was never sent");
    let log = admin.ok_get(&format!("/api/v1/custom-channels/{ch}/deliveries")).await;
    assert!(log.as_array().unwrap().iter().all(|d| d["state"] == "delivered"), "{log}");
}

#[tokio::test]
async fn webhook_retries_keep_order_and_deliver_exactly_once() {
    let srv = fast_server().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let rx = Receiver::start(3).await;
    let (ch, _) = channel(&admin, &rx.url, "async").await;
    let conv = inbound(&admin, ch, json!({"user_custom_id": "u", "content": "hi"})).await.1["conversation_id"]
        .as_i64()
        .unwrap();
    let one = admin.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "one"}), 201).await;
    let two = admin.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "two"}), 201).await;
    let got = rx.wait_accepted(2, Duration::from_secs(20)).await;
    let ids: Vec<&Value> = got.iter().map(|w| &w["message"]["message_id"]).collect();
    assert_eq!(ids, vec![&one["message_id"], &two["message_id"]], "in order, each once");
    let all = rx.got();
    assert_eq!(all.len(), 5, "three refusals, then two accepted: {all:#?}");
    assert!(
        all[..4].iter().all(|r| r.delivery == all[0].delivery),
        "retries keep the delivery id; 'two' waited behind 'one'"
    );
    assert_ne!(all[4].delivery, all[0].delivery);
    let log = admin.ok_get(&format!("/api/v1/custom-channels/{ch}/deliveries")).await;
    let first = log.as_array().unwrap().iter().find(|d| d["message_id"] == one["message_id"]).unwrap().clone();
    assert_eq!(first["attempts"], 4);
    assert_eq!(first["state"], "delivered");

    // Manual re-send from the delivery log: the same delivery id arrives again.
    let resent =
        admin.ok_post(&format!("/api/v1/custom-channels/{ch}/deliveries/{}/resend", first["id"]), json!({}), 200).await;
    assert_eq!(resent["state"], "pending");
    rx.wait_accepted(3, Duration::from_secs(10)).await;
    assert_eq!(rx.got().last().unwrap().delivery, first["delivery_id"].as_str().unwrap());
}

// A manual re-send while an attempt is in flight would release the claim and let the dispatcher send the reply a
// second time while the first attempt still runs: it is refused (409) and changes nothing.
#[tokio::test]
async fn a_resend_while_the_delivery_is_in_flight_is_refused() {
    use tokio::io::AsyncReadExt;
    let srv = fast_server().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    // A receiver that takes the request and never answers: the attempt stays in flight while the test runs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    let (ch, _) = channel(&admin, &url, "async").await;
    let conv = inbound(&admin, ch, json!({"user_custom_id": "u", "content": "hi"})).await.1["conversation_id"]
        .as_i64()
        .unwrap();
    admin.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "one"}), 201).await;
    let (mut held, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept()).await.unwrap().unwrap();
    let mut head = [0u8; 64];
    let n = held.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"POST /hook"), "the attempt's request arrived");

    let log = admin.ok_get(&format!("/api/v1/custom-channels/{ch}/deliveries")).await;
    let delivery = log[0].clone();
    let path = format!("/api/v1/custom-channels/{ch}/deliveries/{}/resend", delivery["id"]);
    let (status, body) = admin.post(&path, json!({})).await;
    assert_eq!(status.as_u16(), 409, "{body}");
    assert_eq!(body["error"], "conflict", "{body}");
    let after = admin.ok_get(&format!("/api/v1/custom-channels/{ch}/deliveries")).await;
    assert_eq!(after[0]["attempts"], delivery["attempts"], "nothing changed: {after}");
    assert_eq!(after[0]["state"], delivery["state"], "nothing changed: {after}");
    drop(held);
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart() {
    // A fast schedule on both sides of the restart, so that every retry step (up to the 6-hourly one: 10.8 s)
    // falls inside the wait below however many attempts failed before the receiver came up. (The restarted
    // server once ran with the full schedule: an attempt refused just before the receiver bound its port was
    // put off for minutes — a flake on a loaded machine.)
    let fast = |raw: &mut switchboard::config::RawConfig| raw.outbox_backoff_scale = Some(0.0005);
    let srv = TestServer::start_with(fast).await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    // A port with nobody listening: every attempt is refused until the receiver comes up. The port
    // stays reserved by a bound socket that never listens, so no other server (the restarted one,
    // another test's) can take it meanwhile; it is let go just before the receiver binds it.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = reserved.local_addr().unwrap();
    let url = format!("http://{addr}/hook");
    let (ch, _) = channel(&admin, &url, "async").await;
    let conv = inbound(&admin, ch, json!({"user_custom_id": "u", "content": "hi"})).await.1["conversation_id"]
        .as_i64()
        .unwrap();
    for i in 0..3 {
        admin
            .ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": format!("reply {i}")}), 201)
            .await;
    }
    let token = admin.token.clone().unwrap();
    let srv = srv.restart_with(fast).await;
    drop(reserved);
    let rx = Receiver::start_on(&addr.to_string(), 0).await;
    let got = rx.wait_accepted(3, Duration::from_secs(30)).await;
    let texts: Vec<&str> = got.iter().map(|w| w["message"]["content"].as_str().unwrap()).collect();
    assert_eq!(texts, vec!["reply 0", "reply 1", "reply 2"]);
    let admin = Api::with_token(&srv.base, &token, admin.agent_id);
    let log = admin.ok_get(&format!("/api/v1/custom-channels/{ch}/deliveries")).await;
    assert!(log.as_array().unwrap().iter().all(|d| d["state"] == "delivered"));
    rx.stop().await;
}

/// #14 item 8: a stopped server leaves nothing running — not the dispatcher with a delivery in
/// flight to a receiver that never answers, not the hub, sweeper or actor threads — and it closes
/// its agent sockets (1012) instead of letting them hold the stop.
#[tokio::test]
async fn a_stopped_server_leaves_no_task_or_thread_running() {
    let srv = fast_server().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let hook = SilentHook::start().await;
    let (ch, _) = channel(&admin, &hook.url, "async").await;
    let conv = inbound(&admin, ch, json!({"user_custom_id": "u", "content": "hi"})).await.1["conversation_id"]
        .as_i64()
        .unwrap();
    admin.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "queued"}), 201).await;
    hook.wait_connected(Duration::from_secs(10)).await;
    let mut ws = WsClient::connect(&srv.base, admin.token.as_deref().unwrap(), None).await;
    let socket = tokio::spawn(async move { ws.closed_within(Duration::from_secs(30)).await });

    let left = srv.leftovers();
    assert!(left.tasks() >= 3, "dispatcher, attempt, hub, sweeper are tracked: {}", left.tasks());
    assert!(left.actor_threads() > 0);
    let started = std::time::Instant::now();
    srv.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped well within the grace period: {:?}",
        started.elapsed()
    );
    assert_eq!(left.tasks(), 0, "no background task outlives the stop");
    assert_eq!(left.actor_threads(), 0, "the actor threads were joined");
    assert_eq!(socket.await.unwrap(), Some(1012), "the agent socket was told the server is stopping");
}

#[tokio::test]
async fn cc_9_last_chat_rule_and_cc_10_listing() {
    let srv = TestServer::start().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let (ch, _) = channel(&admin, "http://127.0.0.1:9/hook", "sync").await;
    let (s, a) = inbound(&admin, ch, json!({"user_custom_id": "u", "content": "one"})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(a["created"], true);
    let user = a["user_id"].as_i64().unwrap();
    let conv = a["conversation_id"].as_i64().unwrap();
    // (b) open → the same conversation.
    let b = inbound(&admin, ch, json!({"user_custom_id": "u", "content": "two"})).await.1;
    assert_eq!((b["conversation_id"].as_i64(), b["created"].as_bool()), (Some(conv), Some(false)));
    // CC-10: an active chat is listed only with show_active_chats.
    assert_eq!(admin.ok_get(&format!("/api/v1/conversations?user_id={user}")).await["total"], 0);
    assert_eq!(admin.ok_get(&format!("/api/v1/conversations?user_id={user}&show_active_chats=true")).await["total"], 1);
    // (a) closed → a new conversation.
    admin.patch(&format!("/api/v1/conversations/{conv}"), json!({"status": "closed"})).await;
    let c = inbound(&admin, ch, json!({"user_custom_id": "u", "content": "three"})).await.1;
    assert_eq!(c["created"], true);
    let newer = c["conversation_id"].as_i64().unwrap();
    assert_ne!(newer, conv);
    assert_eq!(
        admin.ok_get(&format!("/api/v1/conversations?user_id={user}")).await["total"],
        1,
        "the closed one (ended chat)"
    );
    assert_eq!(admin.ok_get(&format!("/api/v1/conversations?user_id={user}&show_active_chats=true")).await["total"], 2);
    // (c) the id the integrator kept was merged away: the message lands in the survivor.
    // POST /conversations always starts a new conversation (CC-4).
    let separate = admin
        .ok_post("/api/v1/conversations", json!({"channel": ch, "user_custom_id": "u", "content": "side thread"}), 201)
        .await["conversation_id"]
        .as_i64()
        .unwrap();
    assert_ne!(separate, newer);
    admin.ok_post(&format!("/api/v1/conversations/{separate}/merge"), json!({"into": newer}), 200).await;
    let (s, m) = admin
        .post(
            &format!("/api/v1/conversations/{separate}/messages"),
            json!({"user_id": user, "content": "to the merged one"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(m["conversation_id"], newer, "the answer names the survivor");
    let via_inbound = inbound(&admin, ch, json!({"user_custom_id": "u", "content": "and again"})).await.1;
    assert_eq!(via_inbound["conversation_id"], newer, "the latest conversation was merged: its survivor gets it");
    // CC-8 with a foreign user_id: refused, nothing stored.
    let stranger = inbound(&admin, ch, json!({"user_custom_id": "someone-else", "content": "hi"})).await.1["user_id"]
        .as_i64()
        .unwrap();
    let before = admin.ok_get(&format!("/api/v1/conversations/{newer}")).await["last_seq"].clone();
    assert_error(
        &admin
            .post(&format!("/api/v1/conversations/{newer}/messages"), json!({"user_id": stranger, "content": "hijack"}))
            .await,
        422,
        "unknown_reference",
    );
    assert_eq!(admin.ok_get(&format!("/api/v1/conversations/{newer}")).await["last_seq"], before);
}

// covers CORE-7 / CC-9 b with the one lifecycle rule of every channel (#14): a customer's message reopens any status
// whose base is pending — not only the built-in `pending` — and keeps an open-based custom status as it is.
#[tokio::test]
async fn core_7_a_customer_message_reopens_every_pending_status() {
    let srv = TestServer::start().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let (ch, _) = channel(&admin, "http://127.0.0.1:9/hook", "async").await;
    admin
        .ok_post("/api/v1/statuses", json!({"key": "waiting_customer", "name": "Waiting", "base": "pending"}), 201)
        .await;
    admin.ok_post("/api/v1/statuses", json!({"key": "in_progress", "name": "In progress", "base": "open"}), 201).await;
    let conv = inbound(&admin, ch, json!({"user_custom_id": "u", "content": "one"})).await.1["conversation_id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/conversations/{conv}");
    for (set, after) in [("waiting_customer", "open"), ("pending", "open"), ("in_progress", "in_progress")] {
        let (s, b) = admin.patch(&path, json!({"status": set})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let a = inbound(&admin, ch, json!({"user_custom_id": "u", "content": format!("after {set}")})).await.1;
        assert_eq!((a["conversation_id"].as_i64(), a["created"].as_bool()), (Some(conv), Some(false)), "{set}");
        assert_eq!(admin.ok_get(&path).await["status"], after, "a customer's message to a {set:?} conversation");
    }
}

// covers CC-5: the customer data sent with a first message (name, email, phone, company) is stored on the customer.
#[tokio::test]
async fn cc_5_customer_data_sent_with_the_first_message_is_stored() {
    let srv = TestServer::start().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let (ch, _) = channel(&admin, "http://127.0.0.1:9/hook", "async").await;
    let (status, a) = inbound(
        &admin,
        ch,
        json!({"user_custom_id": "shop-42", "content": "hello", "name": "Kim Lee", "email": "Kim@Example.com",
               "phone": "+48 600 700 800", "company": "Lee & Co"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let customer = admin.ok_get(&format!("/api/v1/customers/{}", a["user_id"])).await;
    assert_eq!(customer["name"], "Kim Lee");
    assert_eq!(customer["company"]["name"], "Lee & Co");
    let identity = |kind: &str| {
        customer["identities"].as_array().unwrap().iter().find(|i| i["kind"] == kind).map(|i| i["value"].clone())
    };
    assert_eq!(identity("external"), Some(json!("shop-42")));
    assert_eq!(identity("email"), Some(json!("kim@example.com")), "stored normalised");
    assert!(identity("phone").is_some_and(|p| p.as_str().unwrap().ends_with("600700800")), "{customer}");
}

#[tokio::test]
async fn inbound_idempotency_and_bad_input_change_nothing() {
    let srv = TestServer::start().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let (ch, _) = channel(&admin, "http://127.0.0.1:9/hook", "async").await;
    let body = json!({"user_custom_id": "u", "content": "once", "external_message_id": "m-1"});
    let (s1, a) = inbound(&admin, ch, body.clone()).await;
    let (s2, b) = inbound(&admin, ch, body.clone()).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a["message_id"], b["message_id"]);
    let again = json!({"user_custom_id": "u", "content": "second", "external_message_id": "m-2"});
    let (s3, c) = inbound(&admin, ch, again.clone()).await;
    let (s4, d) = inbound(&admin, ch, again).await;
    assert_eq!((s3, s4), (StatusCode::CREATED, StatusCode::OK), "idempotent on an existing conversation too");
    assert_eq!(c["message_id"], d["message_id"]);
    let conv = a["conversation_id"].as_i64().unwrap();
    let count = || async { admin.ok_get(&format!("/api/v1/conversations/{conv}")).await["last_seq"].as_i64().unwrap() };
    assert_eq!(count().await, 2);

    assert_error(&inbound(&admin, 999_999, json!({"user_custom_id": "u", "content": "x"})).await, 404, "not_found");
    assert_error(&inbound(&admin, ch, json!({"content": "x"})).await, 400, "validation_failed");
    assert_error(&inbound(&admin, ch, json!({"user_custom_id": 5, "content": "x"})).await, 400, "validation_failed");
    assert_error(&inbound(&admin, ch, json!({"user_custom_id": "u", "content": ""})).await, 400, "validation_failed");
    assert_error(
        &inbound(&admin, ch, json!({"user_custom_id": "u", "content": "x", "email": "nope"})).await,
        400,
        "validation_failed",
    );
    // Any kind but custom.
    let other = admin.channel("email", "Inbox", None).await;
    assert_error(&inbound(&admin, other, json!({"user_custom_id": "u", "content": "x"})).await, 404, "not_found");
    admin.patch(&format!("/api/v1/custom-channels/{ch}"), json!({"enabled": false})).await;
    assert_error(&inbound(&admin, ch, json!({"user_custom_id": "u", "content": "x"})).await, 422, "channel_disabled");
    assert_error(
        &admin.post("/api/v1/conversations", json!({"channel": ch, "user_custom_id": "v", "content": "x"})).await,
        422,
        "rule_violation",
    );
    assert_eq!(count().await, 2, "nothing was stored");
    assert_eq!(admin.ok_get("/api/v1/conversations?show_active_chats=true").await["total"], 1);
}

#[tokio::test]
async fn cc_12_defaults_and_round_robin_among_online_agents() {
    let srv = TestServer::start().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let team = admin.ok_post("/api/v1/teams", json!({"name": "Sales"}), 201).await["id"].as_i64().unwrap();
    let ann = srv.agent("ann@example.com", "agent").await;
    let bob = srv.agent("bob@example.com", "agent").await;
    let cid = srv.agent("cid@example.com", "agent").await;
    let routing = json!({"team_id": team, "priority": "high", "tags": ["App", "lead"],
        "assign": {"mode": "round_robin", "agent_ids": [ann.agent_id, bob.agent_id, cid.agent_id]}});
    let ch = admin
        .ok_post(
            "/api/v1/custom-channels",
            json!({"name": "Leads", "webhook_url": "http://127.0.0.1:9/", "type": "async", "routing": routing}),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    for a in [&ann, &bob, &cid] {
        admin.ok_put(&format!("/api/v1/agents/{}/channels", a.agent_id), json!({"channel_ids": [ch]})).await;
    }
    // Ann and Bob are online, Cid is connected but away.
    let mut watcher = WsClient::connect(&srv.base, admin.token.as_deref().unwrap(), None).await;
    let _a = WsClient::connect(&srv.base, ann.token.as_deref().unwrap(), None).await;
    let _b = WsClient::connect(&srv.base, bob.token.as_deref().unwrap(), None).await;
    let mut c = WsClient::connect(&srv.base, cid.token.as_deref().unwrap(), None).await;
    c.send(json!({"type": "presence", "status": "away"})).await;
    watcher
        .wait_for("cid away", Duration::from_secs(10), |f| {
            f["type"] == "presence" && f["agent_id"] == cid.agent_id && f["status"] == "away"
        })
        .await;
    for who in [ann.agent_id, bob.agent_id] {
        if !watcher.log.iter().any(|f| f["type"] == "presence" && f["agent_id"] == who && f["status"] == "online") {
            watcher
                .wait_for("online", Duration::from_secs(10), |f| f["type"] == "presence" && f["agent_id"] == who)
                .await;
        }
    }
    let mut assignees = Vec::new();
    let mut conversations = Vec::new();
    for i in 0..4 {
        let a = inbound(&admin, ch, json!({"user_custom_id": format!("lead-{i}"), "content": "interested"})).await.1;
        conversations.push(a["conversation_id"].as_i64().unwrap());
        let conv = admin.ok_get(&format!("/api/v1/conversations/{}", a["conversation_id"])).await;
        assert_eq!(conv["team_id"], team);
        assert_eq!(conv["priority"], "high");
        assert_eq!(conv["tags"], json!(["app", "lead"]));
        if i == 0 {
            let frame = watcher
                .wait_for("conversation.created", Duration::from_secs(10), |f| {
                    f["type"] == "conversation.created" && f["conversation_id"] == a["conversation_id"]
                })
                .await;
            assert_eq!(
                frame["conversation"]["tags"],
                json!(["app", "lead"]),
                "the live frame has the default tags too"
            );
        }
        assignees.push(conv["assignee_id"].as_i64().expect("assigned"));
    }
    assert!(!assignees.contains(&cid.agent_id), "the away agent is skipped: {assignees:?}");
    assert_eq!(assignees[0], assignees[2]);
    assert_eq!(assignees[1], assignees[3]);
    assert_ne!(assignees[0], assignees[1], "they take turns");

    // #14: a new conversation is born assigned — one commit, one event (no "created" then
    // "updated"). A last change to the first one marks the end of what the socket may still get.
    let first = conversations[0];
    admin.patch(&format!("/api/v1/conversations/{first}"), json!({"priority": "low"})).await;
    watcher
        .wait_for("the marker change", Duration::from_secs(10), |f| {
            f["type"] == "conversation.updated"
                && f["conversation_id"] == first
                && f["conversation"]["priority"] == "low"
        })
        .await;
    for (i, id) in conversations.iter().enumerate() {
        let frames: Vec<&serde_json::Value> = watcher
            .log
            .iter()
            .filter(|f| {
                f["conversation_id"] == *id && f["type"].as_str().is_some_and(|t| t.starts_with("conversation."))
            })
            .collect();
        let expected = if i == 0 { 2 } else { 1 };
        assert_eq!(frames.len(), expected, "conversation {id}: {frames:?}");
        assert_eq!(frames[0]["type"], "conversation.created");
        assert_eq!(frames[0]["conversation"]["assignee_id"], assignees[i], "born assigned");
    }
}

#[tokio::test]
async fn cc_12_owner_assignment_emails_an_offline_owner() {
    let srv = TestServer::start().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let owner = srv.agent("owner@example.com", "agent").await;
    let ch = admin
        .ok_post("/api/v1/custom-channels", json!({"name": "VIP", "webhook_url": "http://127.0.0.1:9/", "type": "async", "routing": {"assign": {"mode": "owner"}}}), 201)
        .await["id"]
        .as_i64()
        .unwrap();
    admin.ok_put(&format!("/api/v1/agents/{}/channels", owner.agent_id), json!({"channel_ids": [ch]})).await;
    let first = inbound(&admin, ch, json!({"user_custom_id": "vip-1", "content": "hello"})).await.1;
    let user = first["user_id"].as_i64().unwrap();
    admin.patch(&format!("/api/v1/customers/{user}"), json!({"owner_agent_id": owner.agent_id})).await;
    admin.patch(&format!("/api/v1/conversations/{}", first["conversation_id"]), json!({"status": "closed"})).await;
    let second = inbound(&admin, ch, json!({"user_custom_id": "vip-1", "content": "me again"})).await.1;
    let conv = admin.ok_get(&format!("/api/v1/conversations/{}", second["conversation_id"])).await;
    assert_eq!(conv["assignee_id"], owner.agent_id);
    // The mail is queued by the change feed's consumer (#14), a moment after the commit.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let emails = loop {
        let log = admin.ok_get(&format!("/api/v1/custom-channels/{ch}/deliveries")).await;
        let emails: Vec<serde_json::Value> =
            log.as_array().unwrap().iter().filter(|d| d["kind"] == "email.owner_offline").cloned().collect();
        if !emails.is_empty() || std::time::Instant::now() > deadline {
            break emails;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(emails.len(), 1, "one email for the offline owner is queued: {emails:?}");
    assert_eq!(emails[0]["conversation_id"], second["conversation_id"]);
    assert_eq!(emails[0]["state"], "pending");
}

#[tokio::test]
async fn invariant_4_custom_channel_endpoints_respect_channel_access() {
    let srv = TestServer::start().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let outsider = srv.agent("out@example.com", "agent").await;
    let (ch, _) = channel(&admin, "http://127.0.0.1:9/hook", "async").await;
    let first = inbound(&admin, ch, json!({"user_custom_id": "u", "content": "hi"})).await.1;
    let conv = first["conversation_id"].as_i64().unwrap();
    let user = first["user_id"].as_i64().unwrap();
    assert_error(&outsider.get(&format!("/api/v1/custom-channels/{ch}")).await, 404, "not_found");
    assert_eq!(outsider.ok_get("/api/v1/custom-channels").await, json!([]));
    assert_error(&inbound(&outsider, ch, json!({"user_custom_id": "u", "content": "x"})).await, 404, "not_found");
    assert_error(
        &outsider
            .post(&format!("/api/v1/conversations/{conv}/messages"), json!({"user_id": user, "content": "x"}))
            .await,
        404,
        "not_found",
    );
    assert_error(&outsider.post(&format!("/api/v1/custom-channels/{ch}/secret"), json!({})).await, 403, "forbidden");
    assert_error(&outsider.get(&format!("/api/v1/custom-channels/{ch}/deliveries")).await, 403, "forbidden");
    assert_eq!(admin.ok_get(&format!("/api/v1/conversations/{conv}")).await["last_seq"], 1, "nothing was added");
}

/// Issue #4: inbound caches the token's principal, the channel row and each customer's latest
/// conversation. Every change through the API must be seen by the very next inbound call.
#[tokio::test]
async fn inbound_caches_see_every_change_at_once() {
    let srv = TestServer::start().await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let (ch, _) = channel(&admin, "http://127.0.0.1:9/hook", "async").await;
    let shop = srv.agent("shop@example.com", "agent").await;
    admin.ok_put(&format!("/api/v1/agents/{}/channels", shop.agent_id), json!({"channel_ids": [ch]})).await;
    let say = |text: &str| json!({"user_custom_id": "u", "content": text});
    // Warm every cache: the token, the channel, the customer's conversation.
    let first = inbound(&shop, ch, say("one")).await;
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    let conv = first.1["conversation_id"].as_i64().unwrap();
    let user = first.1["user_id"].as_i64().unwrap();
    let again = inbound(&shop, ch, say("two")).await.1;
    assert_eq!((again["conversation_id"].as_i64(), again["created"].as_bool()), (Some(conv), Some(false)));

    // Channel access taken away, then given back.
    admin.ok_put(&format!("/api/v1/agents/{}/channels", shop.agent_id), json!({"channel_ids": []})).await;
    assert_error(&inbound(&shop, ch, say("no access")).await, 404, "not_found");
    admin.ok_put(&format!("/api/v1/agents/{}/channels", shop.agent_id), json!({"channel_ids": [ch]})).await;
    assert_eq!(inbound(&shop, ch, say("access again")).await.0, StatusCode::CREATED);

    // The channel disabled, then enabled again.
    admin.patch(&format!("/api/v1/custom-channels/{ch}"), json!({"enabled": false})).await;
    assert_error(&inbound(&shop, ch, say("disabled")).await, 422, "channel_disabled");
    admin.patch(&format!("/api/v1/custom-channels/{ch}"), json!({"enabled": true})).await;
    assert_eq!(inbound(&shop, ch, say("enabled")).await.0, StatusCode::CREATED);

    // A new conversation for the customer made elsewhere is their latest (CC-9 b).
    let side = admin
        .ok_post("/api/v1/conversations", json!({"channel": ch, "user_custom_id": "u", "content": "side thread"}), 201)
        .await["conversation_id"]
        .as_i64()
        .unwrap();
    assert_ne!(side, conv);
    assert_eq!(inbound(&shop, ch, say("to the newest")).await.1["conversation_id"], side);

    // The integrator's id unlinked from the customer: the next message is a new customer's.
    let customer = admin.ok_get(&format!("/api/v1/customers/{user}")).await;
    let identity = customer["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "external" && i["value"] == "u")
        .expect("the external id")["id"]
        .as_i64()
        .unwrap();
    let (s, _) = admin.delete(&format!("/api/v1/customers/{user}/identities/{identity}")).await;
    assert!(s.is_success(), "{s}");
    let stranger = inbound(&shop, ch, say("who am I")).await;
    assert_eq!(stranger.0, StatusCode::CREATED);
    assert_eq!(stranger.1["created"], true);
    assert_ne!(stranger.1["user_id"].as_i64(), Some(user));

    // The agent deactivated, then active again.
    admin.patch(&format!("/api/v1/agents/{}", shop.agent_id), json!({"active": false})).await;
    assert_error(&inbound(&shop, ch, say("inactive")).await, 401, "unauthorized");
    admin.patch(&format!("/api/v1/agents/{}", shop.agent_id), json!({"active": true})).await;
    assert_eq!(inbound(&shop, ch, say("active")).await.0, StatusCode::CREATED);

    // The token revoked.
    let tokens = admin.ok_get(&format!("/api/v1/tokens?agent_id={}", shop.agent_id)).await;
    let token = tokens.as_array().unwrap()[0]["id"].as_i64().unwrap();
    let (s, _) = admin.delete(&format!("/api/v1/tokens/{token}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_error(&inbound(&shop, ch, say("revoked")).await, 401, "unauthorized");

    // The channel deleted.
    assert_eq!(inbound(&admin, ch, say("admin warms the cache")).await.0, StatusCode::CREATED);
    let (s, _) = admin.delete(&format!("/api/v1/custom-channels/{ch}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_error(&inbound(&admin, ch, say("deleted")).await, 404, "not_found");
}
