//! A customer of the portal (issue #18) as a browser would be: the `sb_customer` cookie (sent by hand, so tests
//! can also send it where it does not belong) and the session's CSRF token; and how a customer gets an account —
//! "forgot password", the mailed link read from the outbox row, the reset.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::store;

use super::TestServer;

/// A signed-in portal customer.
#[derive(Clone)]
pub struct Portal {
    pub base: String,
    /// The value of the `sb_customer` cookie.
    pub token: String,
    pub csrf: String,
    pub customer_id: i64,
    pub client: reqwest::Client,
}

/// The `sb_customer` value a response set.
pub fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let first = v.split(';').next()?;
        first.strip_prefix("sb_customer=").filter(|t| !t.is_empty()).map(str::to_owned)
    })
}

impl Portal {
    /// Sign in; the status and body when refused.
    pub async fn login(base: &str, email: &str, password: &str) -> Result<Portal, (StatusCode, Value)> {
        let client = reqwest::Client::new();
        let resp = client
            .post(format!("{base}/portal/api/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("request sent");
        Self::from_answer(base, client, resp).await
    }

    /// The customer a sign-in answer (login, reset) signed in.
    pub async fn from_answer(
        base: &str,
        client: reqwest::Client,
        resp: reqwest::Response,
    ) -> Result<Portal, (StatusCode, Value)> {
        let status = resp.status();
        let token = session_cookie(&resp);
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status != StatusCode::OK {
            return Err((status, body));
        }
        Ok(Portal {
            base: base.to_owned(),
            token: token.expect("a session cookie"),
            csrf: body["csrf_token"].as_str().expect("a CSRF token").to_owned(),
            customer_id: body["customer"]["id"].as_i64().expect("the customer"),
            client,
        })
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{}", self.base, path))
            .header("Cookie", format!("sb_customer={}", self.token))
            .header("X-CSRF-Token", &self.csrf)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn ok_get(&self, path: &str) -> Value {
        let (s, b) = self.get(path).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {b}");
        b
    }

    pub async fn ok_post(&self, path: &str, body: Value, expected: u16) -> Value {
        let (s, b) = self.post(path, body).await;
        assert_eq!(s.as_u16(), expected, "POST {path}: {b}");
        b
    }

    /// Upload a file; returns its id.
    pub async fn upload(&self, name: &str, mime: &str, bytes: &[u8]) -> i64 {
        let resp = self
            .request(Method::POST, &format!("/portal/api/attachments?file_name={name}"))
            .header("Content-Type", mime)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("upload sent");
        assert_eq!(resp.status(), StatusCode::CREATED, "upload");
        resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }
}

/// The "set your password" link mailed to `email` that still works (from its outbox row), if any.
pub async fn reset_link(srv: &TestServer, email: &str) -> Option<String> {
    let web = store::portal::web_channel(srv.store()).await.expect("the web channel");
    let rows = store::outbox::list_for_channel(srv.store(), web.id, 500).await.expect("outbox");
    for row in rows.into_iter().filter(|r| r.kind == store::portal::PASSWORD_EMAIL) {
        let p: Value = serde_json::from_str(&row.payload).expect("a JSON payload");
        if p["email"] != email {
            continue;
        }
        // The row holds the token only sealed; the dispatcher opens it with the install's key, as here.
        let mail = store::portal::for_mail(srv.store(), row.payload.clone()).await.expect("the sealed token opens");
        // A reset replaced by a newer one is not mailed.
        let Some(mail) = mail else { continue };
        let token = mail.token;
        assert!(!row.payload.contains(&token), "the token is in the outbox row in the clear: {}", row.payload);
        return Some(store::portal::reset_link(&srv.base, &token));
    }
    None
}

/// The token at the end of a reset link.
pub fn token_of(link: &str) -> String {
    link.rsplit_once("/portal/reset/").unwrap_or_else(|| panic!("a reset link: {link}")).1.to_owned()
}

/// Give the customer with email identity `email` a password through "forgot password" and sign them in.
pub async fn account(srv: &TestServer, email: &str, password: &str) -> Portal {
    let anon = reqwest::Client::new();
    let resp = anon
        .post(format!("{}/portal/api/password/forgot", srv.base))
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let link = reset_link(srv, email).await.expect("a reset mail in the outbox");
    let resp = anon
        .post(format!("{}/portal/api/password/reset", srv.base))
        .json(&json!({"token": token_of(&link), "password": password}))
        .send()
        .await
        .unwrap();
    Portal::from_answer(&srv.base, anon, resp).await.unwrap_or_else(|e| panic!("reset refused: {e:?}"))
}

/// A customer with an email identity, known from a conversation they started on `channel` (a custom channel)
/// through the agent API; returns (customer id, conversation id).
pub async fn customer_with_ticket(agent: &super::Api, channel: i64, user: &str, email: &str, text: &str) -> (i64, i64) {
    let b = agent
        .ok_post(
            "/api/v1/conversations",
            json!({"channel": channel, "user_custom_id": user, "email": email, "name": user, "content": text, "subject": text}),
            201,
        )
        .await;
    let id = b["conversation_id"].as_i64().unwrap();
    let c = agent.ok_get(&format!("/api/v1/conversations/{id}")).await;
    (c["customer_id"].as_i64().unwrap(), id)
}
