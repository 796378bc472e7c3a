//! Issue #13 (see tests/security.rs): browser-facing hardening. The dashboard sends a
//! Content-Security-Policy of its own origin only (and no framing); the session cookie is
//! `Secure` when the public URL is https; a socket signed in with the cookie must come from the
//! dashboard's origin (a Bearer-token socket needs none); `/metrics` can ask for a token and be
//! moved to its own listener.

use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use crate::common::{PASSWORD, TestServer};

const CSP: &str = "content-security-policy";

/// Each directive of a CSP header, by name.
fn directives(csp: &str) -> Vec<(String, Vec<String>)> {
    csp.split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let mut words = d.split_whitespace().map(str::to_owned);
            (words.next().unwrap(), words.collect())
        })
        .collect()
}

fn assert_self_only(csp: &str, what: &str) {
    let dirs = directives(csp);
    let get = |name: &str| dirs.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(get("default-src"), Some(vec!["'self'".to_owned()]), "{what}: {csp}");
    assert_eq!(get("script-src"), Some(vec!["'self'".to_owned()]), "{what}: scripts from this origin only: {csp}");
    assert_eq!(get("frame-ancestors"), Some(vec!["'none'".to_owned()]), "{what}: no framing: {csp}");
    assert_eq!(get("object-src"), Some(vec!["'none'".to_owned()]), "{what}: {csp}");
    for (name, sources) in &dirs {
        for s in sources {
            let allowed = ["'self'", "'none'", "data:"].contains(&s.as_str()) && (s != "data:" || name == "img-src");
            assert!(allowed, "{what}: {name} allows {s}: {csp}");
        }
    }
}

#[tokio::test]
async fn the_dashboard_sends_a_self_only_content_security_policy() {
    let srv = TestServer::start().await;
    let http = reqwest::Client::new();
    let index = http.get(format!("{}/", srv.base)).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    let headers = index.headers().clone();
    let html = index.text().await.unwrap();
    let script = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("the bundle's script tag");
    assert!(script.starts_with("/assets/"), "{script}");
    assert!(!html.contains("<script>") && !html.contains("style=\""), "no inline script or style in index.html");
    for (path, headers) in [
        ("/".to_owned(), headers),
        (script.to_owned(), http.get(format!("{}{script}", srv.base)).send().await.unwrap().headers().clone()),
        ("/tickets/7".to_owned(), http.get(format!("{}/tickets/7", srv.base)).send().await.unwrap().headers().clone()),
    ] {
        let csp = headers.get(CSP).unwrap_or_else(|| panic!("{path}: no {CSP}")).to_str().unwrap();
        assert_self_only(csp, &path);
        assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff", "{path}");
        assert!(headers.get("referrer-policy").is_some(), "{path}");
    }
    // Swagger UI (`/api/docs/`, checked in tests/api_flow/ops.rs) is outside the dashboard's policy: its page
    // needs no change.
}

/// The `Set-Cookie` header of a successful sign-in.
async fn login_cookie(srv: &TestServer) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", srv.base))
        .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.headers().get("set-cookie").expect("a session cookie").to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_the_public_url_is_https() {
    let https = TestServer::start_with(|raw| raw.public_url = Some("https://desk.example.com".into())).await;
    https.agent("ann@example.com", "agent").await;
    let cookie = login_cookie(&https).await;
    assert!(cookie.split(';').any(|a| a.trim().eq_ignore_ascii_case("secure")), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");

    let http = TestServer::start().await;
    http.agent("ann@example.com", "agent").await;
    let cookie = login_cookie(&http).await;
    assert!(!cookie.to_ascii_lowercase().contains("secure"), "plain http keeps the cookie usable: {cookie}");
}

/// Open the agent socket with these headers: `Ok(())` when upgraded (after the hello frame), or
/// the HTTP status of the refusal.
async fn socket(srv: &TestServer, headers: &[(&'static str, String)]) -> Result<(), u16> {
    let url = format!("{}/api/v1/ws", srv.base.replacen("http", "ws", 1));
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((mut stream, _)) => {
            use futures_util::StreamExt;
            let hello = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next()).await;
            assert!(matches!(hello, Ok(Some(Ok(tungstenite::Message::Text(t)))) if t.contains("hello")));
            Ok(())
        }
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected socket error {e}"),
    }
}

#[tokio::test]
async fn a_cookie_socket_must_come_from_the_dashboards_origin() {
    let srv = TestServer::start_with(|raw| raw.public_url = Some("https://desk.example.com".into())).await;
    let token = srv.agent("ann@example.com", "agent").await.token.unwrap();
    let set_cookie = login_cookie(&srv).await;
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let own = srv.base.clone();
    let with = |origin: Option<&str>| {
        let mut h = vec![("Cookie", cookie.clone())];
        if let Some(o) = origin {
            h.push(("Origin", o.to_owned()));
        }
        h
    };
    // A foreign page, an opaque origin, no Origin, and a look-alike host: refused before the upgrade.
    for origin in [Some("https://evil.example"), Some("null"), None, Some("https://desk.example.com.evil.example")] {
        assert_eq!(socket(&srv, &with(origin)).await, Err(403), "cookie socket with Origin {origin:?}");
    }
    let http_public = own.replacen("http://127.0.0.1", "http://localhost", 1);
    assert_eq!(socket(&srv, &with(Some(&http_public))).await, Err(403), "another host name of this machine");
    // The public URL's origin and the request's own origin (its Host) are accepted.
    assert_eq!(socket(&srv, &with(Some("https://desk.example.com"))).await, Ok(()), "public_url origin");
    assert_eq!(socket(&srv, &with(Some(&own))).await, Ok(()), "same origin as the request");
    // A Bearer-token socket needs no Origin check: a foreign page cannot attach the header.
    let bearer = ("Authorization", format!("Bearer {token}"));
    assert_eq!(socket(&srv, &[bearer.clone(), ("Origin", "https://evil.example".into())]).await, Ok(()));
    assert_eq!(socket(&srv, &[bearer]).await, Ok(()));
}

#[tokio::test]
async fn metrics_can_need_a_token() {
    const TOKEN: &str = "metrics-scraper-secret-42";
    let srv = TestServer::start_with(|raw| raw.metrics_token = Some(TOKEN.into())).await;
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", srv.base);
    let none = http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = none.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    for wrong in ["metrics-scraper-secret-43", "", "metrics-scraper-secret-42x"] {
        let got = http.get(&url).bearer_auth(wrong).send().await.unwrap();
        assert_eq!(got.status(), StatusCode::UNAUTHORIZED, "token {wrong:?}");
    }
    // An agent's API token is not the metrics token.
    let agent = srv.agent("ann@example.com", "admin").await;
    let got = http.get(&url).bearer_auth(agent.token.as_deref().unwrap()).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::UNAUTHORIZED);
    let ok = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.text().await.unwrap().contains("switchboard_http_requests_total"));
}

#[tokio::test]
async fn metrics_can_move_to_their_own_listener() {
    const TOKEN: &str = "metrics-scraper-secret-42";
    let srv = TestServer::start_with(|raw| {
        raw.metrics_bind = Some("127.0.0.1:0".into());
        raw.metrics_token = Some(TOKEN.into());
    })
    .await;
    let http = reqwest::Client::new();
    let main = http.get(format!("{}/metrics", srv.base)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(main.status(), StatusCode::NOT_FOUND, "no longer on the main listener");
    let addr = srv.metrics_addr().expect("a metrics listener");
    assert_ne!(addr.port(), 0);
    let url = format!("http://{addr}/metrics");
    assert_eq!(http.get(&url).send().await.unwrap().status(), StatusCode::UNAUTHORIZED, "the token still applies");
    let ok = http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(ok.text().await.unwrap().contains("switchboard_"));
    // Only /metrics lives there.
    let other = http.get(format!("http://{addr}/api/v1/me")).send().await.unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    assert_eq!(http.get(format!("{}/healthz", srv.base)).send().await.unwrap().status(), StatusCode::OK);
}
