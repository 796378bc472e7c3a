//! Issue #17 item 5: the delivery state of a reply and its Retry. A custom channel's webhook receiver that is down
//! makes the reply `failed` with the reason; Retry after it is up sends it once and it turns `sent`; Retry on a
//! message whose delivery has not failed is refused; an agent without the channel gets 404; the delivery log names
//! the conversation by its number. Live: the socket carries each change as `message.updated`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::common::ws::WsClient;
use crate::common::{Api, TestServer, assert_error};

/// A webhook receiver on a fixed loopback address that counts what it accepted.
struct Receiver {
    got: Arc<Mutex<Vec<Value>>>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    async fn start_on(addr: std::net::SocketAddr) -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let data = web::Data::new(got.clone());
        let server = HttpServer::new(move || {
            App::new().app_data(data.clone()).route(
                "/hook",
                web::post().to(|body: web::Bytes, got: web::Data<Arc<Mutex<Vec<Value>>>>| async move {
                    got.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    HttpResponse::Ok().finish()
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .bind(addr)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { got, handle }
    }

    fn accepted(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }
}

/// The message `id` of a conversation, as the dashboard reads it.
async fn message(api: &Api, conversation: i64, id: i64) -> Value {
    let list = api.ok_get(&format!("/api/v1/conversations/{conversation}/messages?limit=200")).await;
    list.as_array().unwrap().iter().find(|m| m["id"] == id).cloned().unwrap_or_else(|| panic!("message {id}: {list}"))
}

/// Poll the message until its delivery state is `state` (the dispatcher works on its own time).
async fn wait_state(api: &Api, conversation: i64, id: i64, state: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let m = message(api, conversation, id).await;
        if m["delivery"]["state"] == state {
            return m;
        }
        assert!(tokio::time::Instant::now() < deadline, "delivery never {state}: {m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_failed_reply_shows_why_and_retry_sends_it_once() {
    // The smallest scale the settings take: the schedule's three days shrink to ~26 s.
    let srv = TestServer::start_with(|raw| raw.outbox_backoff_scale = Some(0.0001)).await;
    let admin = srv.agent("admin@example.com", "super_admin").await;
    let ann = srv.agent("ann@example.com", "agent").await;
    let bob = srv.agent("bob@example.com", "agent").await;
    // A port with nobody listening, kept reserved (bound, not listening) until the receiver takes it.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = reserved.local_addr().unwrap();
    let ch = admin
        .ok_post(
            "/api/v1/custom-channels",
            json!({"name": "Shop", "webhook_url": format!("http://{addr}/hook"), "type": "async"}),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let other_ch = admin.channel("custom", "Elsewhere", Some("async")).await;
    admin.ok_put(&format!("/api/v1/agents/{}/channels", ann.agent_id), json!({"channel_ids": [ch, other_ch]})).await;
    admin.ok_put(&format!("/api/v1/agents/{}/channels", bob.agent_id), json!({"channel_ids": [other_ch]})).await;
    let conv = admin.inbound(ch, "cust", "Where is my parcel?").await;
    let other_conv = admin.inbound(other_ch, "cust2", "Hello").await;
    let mut socket = WsClient::connect(&srv.base, ann.token.as_deref().unwrap(), None).await;

    let reply =
        ann.ok_post(&format!("/api/v1/conversations/{conv}/messages"), json!({"content": "On its way"}), 201).await;
    let id = reply["message_id"].as_i64().unwrap();
    assert_eq!(message(&ann, conv, id).await["delivery"]["state"], "pending");
    let retry = format!("/api/v1/conversations/{conv}/messages/{id}/retry");
    assert_error(&ann.post(&retry, json!({})).await, 409, "conflict");

    let failed = wait_state(&ann, conv, id, "failed", Duration::from_secs(60)).await;
    // The server closes a socket it has not heard from for 40 s; a loaded machine can take that long to here.
    socket.ping().await;
    let reason = failed["delivery"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(!reason.is_empty(), "a failure says why: {failed}");

    // Who may not see the conversation gets what a missing one gets; the message must be this conversation's.
    assert_error(&bob.post(&retry, json!({})).await, 404, "not_found");
    assert_error(
        &ann.post(&format!("/api/v1/conversations/{other_conv}/messages/{id}/retry"), json!({})).await,
        404,
        "not_found",
    );
    assert_error(
        &ann.post(&format!("/api/v1/conversations/{conv}/messages/987654/retry"), json!({})).await,
        404,
        "not_found",
    );
    let customer_msg = ann.ok_get(&format!("/api/v1/conversations/{conv}/messages")).await[0]["id"].as_i64().unwrap();
    assert_error(
        &ann.post(&format!("/api/v1/conversations/{conv}/messages/{customer_msg}/retry"), json!({})).await,
        422,
        "not_retryable",
    );

    // The receiver comes up; Retry queues the same delivery once, even when pressed twice.
    drop(reserved);
    let rx = Receiver::start_on(addr).await;
    let retried = ann.ok_post(&retry, json!({}), 200).await;
    assert_eq!(retried["id"], id);
    assert_eq!(retried["delivery"]["state"], "pending");
    assert!(retried["delivery"]["error"].is_null(), "the old reason is gone: {retried}");
    let again = ann.post(&retry, json!({})).await;
    assert_eq!(again.0.as_u16(), 409, "a second retry while it is pending or sent: {}", again.1);
    wait_state(&ann, conv, id, "sent", Duration::from_secs(20)).await;
    let got = rx.accepted();
    assert_eq!(got.len(), 1, "exactly one delivery arrives: {got:#?}");
    assert_eq!(got[0]["message"]["message_id"], id);
    assert_error(&ann.post(&retry, json!({})).await, 409, "conflict");

    // Live: the socket saw failed → pending (the retry) → sent for this message.
    // (Frames the pings read on the way are in the socket's log: read from its start.)
    let mut states = Vec::new();
    let mut read = 0;
    while !states.ends_with(&["failed".to_owned(), "pending".to_owned(), "sent".to_owned()]) {
        if read == socket.log.len() {
            socket.next_within(Duration::from_secs(10)).await.expect("message.updated frames");
        }
        let frame = socket.log[read].clone();
        read += 1;
        if frame["type"] == "message.updated" && frame["message"]["id"] == id {
            let s = frame["message"]["delivery"]["state"].as_str().unwrap().to_owned();
            if states.last() != Some(&s) {
                states.push(s);
            }
        }
    }

    // The delivery log names the conversation by its number.
    let number = ann.ok_get(&format!("/api/v1/conversations/{conv}")).await["number"].clone();
    let log = admin.ok_get(&format!("/api/v1/custom-channels/{ch}/deliveries")).await;
    assert_eq!(log[0]["conversation_id"], conv);
    assert_eq!(log[0]["conversation_number"], number, "{log}");
    assert_eq!(log[0]["state"], "delivered");
    let log = admin.ok_get(&format!("/api/v1/channels/{ch}/deliveries")).await;
    assert_eq!(log[0]["conversation_number"], number);

    // A re-send from the delivery log is live too: the message's delivery turns pending, then sent again.
    let resend = format!("/api/v1/custom-channels/{ch}/deliveries/{}/resend", log[0]["id"]);
    admin.ok_post(&resend, json!({}), 200).await;
    let mut after = Vec::new();
    while !after.ends_with(&["pending".to_owned(), "sent".to_owned()]) {
        if read == socket.log.len() {
            socket.next_within(Duration::from_secs(10)).await.expect("message.updated frames after the re-send");
        }
        let frame = socket.log[read].clone();
        read += 1;
        if frame["type"] == "message.updated" && frame["message"]["id"] == id {
            after.push(frame["message"]["delivery"]["state"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(after[0], "pending", "the re-send itself is announced: {after:?}");
    assert_eq!(rx.accepted().len(), 2, "sent once more");
    rx.handle.stop(true).await;
}
