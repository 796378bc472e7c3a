//! Issue #18 (CU-2, CU-3): customers are a separate principal. Customer A's session gets 404 on every portal route
//! that names customer B's ticket or file (exactly like a missing one) and changes nothing; a customer's session is
//! refused (401) by the agent API and the agent socket, whichever cookie name carries it; an agent's session or API
//! token is refused (401) by every portal route; an internal note never appears in any portal answer.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::portal::{self, Portal};
use crate::common::{Api, TestServer, assert_error};

const PASSWORD: &str = "customer secret 1";
const MISSING: i64 = 987_654;

struct World {
    srv: TestServer,
    admin: Api,
    a: Portal,
    b: Portal,
    a_ticket: i64,
    b_ticket: i64,
    b_file: i64,
    b_upload: i64,
}

async fn world() -> World {
    let srv = TestServer::start().await;
    let admin = srv.agent("root@example.com", "super_admin").await;
    let shop = admin.channel("custom", "Shop", Some("async")).await;
    let (_, a_ticket) = portal::customer_with_ticket(&admin, shop, "a", "a@example.com", "A's question").await;
    portal::customer_with_ticket(&admin, shop, "b", "b@example.com", "B's question").await;
    let a = portal::account(&srv, "a@example.com", PASSWORD).await;
    let b = portal::account(&srv, "b@example.com", PASSWORD).await;
    let file = b.upload("b-secret.txt", "text/plain", b"B's file").await;
    let opened = b
        .ok_post(
            "/portal/api/tickets",
            json!({"subject": "B's web ticket", "content": "B's text", "attachment_ids": [file]}),
            201,
        )
        .await;
    let b_ticket = opened["ticket"]["id"].as_i64().unwrap();
    let b_file = opened["message"]["attachments"][0]["id"].as_i64().unwrap();
    let b_upload = b.upload("b-pending.txt", "text/plain", b"B's pending file").await;
    admin
        .ok_post(&format!("/api/v1/conversations/{a_ticket}/notes"), json!({"content": "zebra internal note"}), 201)
        .await;
    admin
        .ok_post(&format!("/api/v1/conversations/{a_ticket}/messages"), json!({"content": "public answer"}), 201)
        .await;
    World { srv, admin, a, b, a_ticket, b_ticket, b_file, b_upload }
}

/// Every portal route that names a ticket or a file, for `id` (ticket) and `file`.
fn named_routes(id: i64, file: i64) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/portal/api/tickets/{id}"), None),
        (Method::GET, format!("/portal/api/tickets/{id}/messages"), None),
        (Method::POST, format!("/portal/api/tickets/{id}/messages"), Some(json!({"content": "sneaky"}))),
        (Method::POST, format!("/portal/api/tickets/{id}/close"), None),
        (Method::POST, format!("/portal/api/tickets/{id}/rating"), Some(json!({"rating": "bad"}))),
        (Method::GET, format!("/portal/api/attachments/{file}"), None),
    ]
}

#[tokio::test]
async fn cu_2_a_customer_gets_404_for_another_customers_ticket_and_changes_nothing() {
    let w = world().await;
    let before = (
        w.b.ok_get(&format!("/portal/api/tickets/{}", w.b_ticket)).await,
        w.b.ok_get(&format!("/portal/api/tickets/{}/messages", w.b_ticket)).await,
    );
    for ((method, path, body), (_, missing_path, _)) in
        named_routes(w.b_ticket, w.b_file).into_iter().zip(named_routes(MISSING, MISSING))
    {
        let got = w.a.call(method.clone(), &path, body.clone()).await;
        assert_error(&got, 404, "not_found");
        // Exactly like a ticket that does not exist.
        let absent = w.a.call(method.clone(), &missing_path, body).await;
        assert_eq!(absent.0, got.0, "{method} {path}");
        assert_eq!(absent.1["error"], got.1["error"], "{method} {path}");
    }
    // B's pending upload is not A's to send.
    let reply =
        w.a.post(
            &format!("/portal/api/tickets/{}/messages", w.a_ticket),
            json!({"content": "x", "attachment_ids": [w.b_upload]}),
        )
        .await;
    assert_error(&reply, 422, "unknown_reference");
    assert_error(&w.a.get(&format!("/portal/api/attachments/{}", w.b_upload)).await, 404, "not_found");
    let after = (
        w.b.ok_get(&format!("/portal/api/tickets/{}", w.b_ticket)).await,
        w.b.ok_get(&format!("/portal/api/tickets/{}/messages", w.b_ticket)).await,
    );
    assert_eq!(before, after, "B's ticket is unchanged");
    assert_eq!(after.0["state"], "open");
    assert!(after.0["csat"].is_null());
    // A's list is A's alone.
    let mine: Vec<i64> =
        w.a.ok_get("/portal/api/tickets").await.as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert_eq!(mine, [w.a_ticket]);
}

#[tokio::test]
async fn cu_3_a_customer_session_is_refused_by_agent_routes_and_the_socket() {
    let w = world().await;
    let token = &w.a.token;
    let client = reqwest::Client::new();
    for path in ["/api/v1/conversations", "/api/v1/me", &format!("/api/v1/conversations/{}", w.a_ticket)] {
        for cookie in [format!("sb_customer={token}"), format!("sb_session={token}")] {
            let resp = client
                .get(format!("{}{path}", w.srv.base))
                .header("Cookie", &cookie)
                .header("X-CSRF-Token", &w.a.csrf)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path} with {cookie}");
        }
    }
    // Nor as a Bearer token.
    let bearer = client.get(format!("{}/api/v1/me", w.srv.base)).bearer_auth(token).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);
    // The agent socket: refused before the upgrade, whichever cookie carries the customer's session.
    for cookie in [format!("sb_customer={token}"), format!("sb_session={token}")] {
        let mut req = format!("{}/api/v1/ws", w.srv.base.replacen("http", "ws", 1)).into_client_request().unwrap();
        req.headers_mut().insert("Cookie", cookie.parse().unwrap());
        req.headers_mut().insert("Origin", w.srv.base.parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401, "{cookie}"),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("the agent socket accepted a customer's session ({cookie})"),
        }
    }
}

#[tokio::test]
async fn cu_3_agent_sessions_and_tokens_are_refused_by_every_portal_route() {
    let w = world().await;
    let agent = w.srv.agent("agent@example.com", "agent").await;
    let session = w.srv.login("agent@example.com").await;
    // The agent's session cookie value, to present under the portal's cookie name too.
    let raw = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", w.srv.base))
        .json(&json!({"email": "agent@example.com", "password": crate::common::PASSWORD}))
        .send()
        .await
        .unwrap();
    let agent_cookie = raw
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.split(';').next()?.strip_prefix("sb_session=").map(str::to_owned))
        .expect("an agent session");
    let csrf = raw.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_owned();
    let mut routes = vec![
        (Method::GET, "/portal/api/me".to_owned(), None),
        (Method::GET, "/portal/api/tickets".to_owned(), None),
        (Method::POST, "/portal/api/tickets".to_owned(), Some(json!({"subject": "s", "content": "c"}))),
        (Method::POST, "/portal/api/logout".to_owned(), None),
    ];
    routes.extend(named_routes(w.a_ticket, w.b_file));
    for (method, path, body) in routes {
        let with = |req: reqwest::RequestBuilder| match &body {
            Some(b) => req.json(b),
            None => req,
        };
        let token = with(agent.request(method.clone(), &path)).send().await.unwrap();
        assert_eq!(token.status(), StatusCode::UNAUTHORIZED, "API token on {method} {path}");
        let cookie = with(session.request(method.clone(), &path)).send().await.unwrap();
        assert_eq!(cookie.status(), StatusCode::UNAUTHORIZED, "agent session on {method} {path}");
        let renamed = with(
            reqwest::Client::new()
                .request(method.clone(), format!("{}{path}", w.srv.base))
                .header("Cookie", format!("sb_customer={agent_cookie}"))
                .header("X-CSRF-Token", &csrf),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(renamed.status(), StatusCode::UNAUTHORIZED, "agent session as sb_customer on {method} {path}");
    }
    // Nothing changed for A.
    let t = w.a.ok_get(&format!("/portal/api/tickets/{}", w.a_ticket)).await;
    assert_eq!(t["state"], "open");
    let _ = &w.admin;
}

#[tokio::test]
async fn cu_2_an_internal_note_never_appears_in_portal_answers() {
    let w = world().await;
    let mut answers = vec![
        w.a.ok_get("/portal/api/tickets").await,
        w.a.ok_get(&format!("/portal/api/tickets/{}", w.a_ticket)).await,
        w.a.ok_get(&format!("/portal/api/tickets/{}/messages", w.a_ticket)).await,
        w.a.ok_get("/portal/api/me").await,
    ];
    let posted =
        w.a.ok_post(&format!("/portal/api/tickets/{}/messages", w.a_ticket), json!({"content": "thanks"}), 201).await;
    answers.push(posted);
    answers.push(w.a.ok_get(&format!("/portal/api/tickets/{}/messages", w.a_ticket)).await);
    for a in &answers {
        assert!(!a.to_string().contains("zebra"), "an internal note leaked: {a}");
    }
    let texts: Vec<&str> = answers[5].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["A's question", "public answer", "thanks"]);
    // The agent still sees the note.
    let agent_view = w.admin.ok_get(&format!("/api/v1/conversations/{}/messages", w.a_ticket)).await;
    assert!(agent_view.to_string().contains("zebra internal note"));
}
