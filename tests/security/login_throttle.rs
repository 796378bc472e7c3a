//! Issue #13 (see tests/security.rs): login throttling. Failed sign-ins are limited per account
//! and per client address (the TCP peer); a throttled attempt is 429 with `Retry-After` even with
//! the right password (no session, no password check), other accounts and addresses go on, and a
//! successful sign-in never counts as a failure.

use std::net::{IpAddr, Ipv4Addr};

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard::config::RawConfig;

use crate::common::{PASSWORD, TestServer, assert_error};

const WRONG: &str = "not the password";

/// A client that connects from `from` (any 127.0.0.0/8 address is this machine) and keeps cookies.
fn client_from(from: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::V4(from)).cookie_store(true).build().unwrap()
}

struct Answer {
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
    sets_cookie: bool,
}

async fn login(srv: &TestServer, client: &reqwest::Client, email: &str, password: &str) -> Answer {
    login_with(srv, client, email, password, &[]).await
}

async fn login_with(
    srv: &TestServer,
    client: &reqwest::Client,
    email: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req =
        client.post(format!("{}/api/v1/auth/login", srv.base)).json(&json!({"email": email, "password": password}));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let retry_after =
        resp.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().expect("Retry-After is whole seconds"));
    let sets_cookie = resp.headers().get("set-cookie").is_some();
    let body = resp.json().await.unwrap_or(Value::Null);
    Answer { status, body, retry_after, sets_cookie }
}

fn assert_throttled(a: &Answer, window_secs: u64, what: &str) {
    assert_error(&(a.status, a.body.clone()), 429, "too_many_requests");
    let wait = a.retry_after.unwrap_or_else(|| panic!("{what}: 429 without Retry-After"));
    assert!((1..=window_secs).contains(&wait), "{what}: Retry-After {wait} not within the window of {window_secs} s");
    assert!(!a.sets_cookie, "{what}: a throttled answer starts no session");
}

fn limits(per_account: u32, per_address: u32, window: u64) -> impl FnOnce(&mut RawConfig) {
    move |raw: &mut RawConfig| {
        raw.login_failures_per_account = Some(per_account);
        raw.login_failures_per_address = Some(per_address);
        raw.login_failure_window_secs = Some(window);
    }
}

#[tokio::test]
async fn an_account_is_throttled_after_its_failures_even_with_the_right_password() {
    let srv = TestServer::start_with(limits(3, 100, 600)).await;
    srv.agent("ann@example.com", "agent").await;
    srv.agent("bob@example.com", "agent").await;
    let home = client_from(Ipv4Addr::LOCALHOST);
    for i in 1..=3 {
        let a = login(&srv, &home, "ann@example.com", WRONG).await;
        assert_error(&(a.status, a.body), 401, "invalid_credentials");
        assert!(a.retry_after.is_none(), "failure {i} is not throttled yet");
    }
    let a = login(&srv, &home, "ann@example.com", WRONG).await;
    assert_throttled(&a, 600, "the 4th wrong password");
    // The right password does not help while throttled: no session, and the cookie jar has none.
    let a = login(&srv, &home, "ANN@example.com ", PASSWORD).await;
    assert_throttled(&a, 600, "the right password (any spelling of the email)");
    let me = home.get(format!("{}/api/v1/me", srv.base)).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED, "no session was started");
    // From another address the account is throttled as well (the rule is per account) …
    let away = client_from(Ipv4Addr::new(127, 0, 0, 2));
    assert_throttled(&login(&srv, &away, "ann@example.com", PASSWORD).await, 600, "ann from another address");
    // … while another account from the same address is not.
    let b = login(&srv, &home, "bob@example.com", PASSWORD).await;
    assert_eq!(b.status, StatusCode::OK, "bob signs in: {}", b.body);
    let b = login(&srv, &home, "bob@example.com", WRONG).await;
    assert_error(&(b.status, b.body), 401, "invalid_credentials");
    // An email nobody has is throttled the same way (nothing tells which accounts exist).
    for _ in 0..3 {
        assert_eq!(login(&srv, &away, "nobody@example.com", WRONG).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_throttled(&login(&srv, &away, "nobody@example.com", WRONG).await, 600, "an unknown email");
    // The events are counted.
    let metrics = srv.anonymous().request(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    for name in ["switchboard_login_failed_total", "switchboard_login_throttled_total{limit=\"account\"}"] {
        assert!(metrics.contains(name), "{name} in /metrics:\n{metrics}");
    }
}

#[tokio::test]
async fn an_address_is_throttled_across_accounts_and_other_addresses_are_not() {
    let srv = TestServer::start_with(limits(100, 3, 300)).await;
    srv.agent("ann@example.com", "agent").await;
    let home = client_from(Ipv4Addr::LOCALHOST);
    // Three failures from one address, each on a different (or no valid) account.
    for email in ["ann@example.com", "x@example.com", "not an email"] {
        assert_eq!(login(&srv, &home, email, WRONG).await.status, StatusCode::UNAUTHORIZED, "{email}");
    }
    assert_throttled(&login(&srv, &home, "ann@example.com", PASSWORD).await, 300, "the 4th attempt from the address");
    // X-Forwarded-For is not trusted: claiming another address changes nothing.
    let spoofed = login_with(&srv, &home, "ann@example.com", PASSWORD, &[("X-Forwarded-For", "203.0.113.9")]).await;
    assert_throttled(&spoofed, 300, "a spoofed X-Forwarded-For");
    // Another address is not affected, and ann's account was not charged by the refused attempts.
    let away = client_from(Ipv4Addr::new(127, 0, 0, 3));
    let a = login(&srv, &away, "ann@example.com", PASSWORD).await;
    assert_eq!(a.status, StatusCode::OK, "ann from another address: {}", a.body);
    let me = away.get(format!("{}/api/v1/me", srv.base)).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK, "the session works");
    let metrics = srv.anonymous().request(reqwest::Method::GET, "/metrics").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("switchboard_login_throttled_total{limit=\"address\"}"), "{metrics}");
}

#[tokio::test]
async fn successful_logins_do_not_count_as_failures() {
    let srv = TestServer::start_with(limits(2, 2, 600)).await;
    srv.agent("ann@example.com", "agent").await;
    let home = client_from(Ipv4Addr::LOCALHOST);
    assert_eq!(login(&srv, &home, "ann@example.com", WRONG).await.status, StatusCode::UNAUTHORIZED);
    for i in 0..5 {
        let a = login(&srv, &home, "ann@example.com", PASSWORD).await;
        assert_eq!(a.status, StatusCode::OK, "sign-in {i}: {}", a.body);
        assert!(a.sets_cookie);
    }
    // Five successes later, one failure is still allowed on the account and on the address …
    assert_eq!(login(&srv, &home, "ann@example.com", WRONG).await.status, StatusCode::UNAUTHORIZED);
    // … and the next is refused.
    assert_throttled(&login(&srv, &home, "ann@example.com", WRONG).await, 600, "the 3rd failure");
}

#[tokio::test]
async fn malformed_login_bodies_are_400_and_charge_nothing() {
    let srv = TestServer::start_with(limits(1, 1, 600)).await;
    srv.agent("ann@example.com", "agent").await;
    let home = client_from(Ipv4Addr::LOCALHOST);
    for body in [json!({"email": "ann@example.com"}), json!({"email": 5, "password": WRONG}), json!([1, 2])] {
        let resp = home.post(format!("{}/api/v1/auth/login", srv.base)).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    let a = login(&srv, &home, "ann@example.com", PASSWORD).await;
    assert_eq!(a.status, StatusCode::OK, "nothing was charged: {}", a.body);
}
