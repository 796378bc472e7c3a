//! Issue #13 item 7c (see tests/security.rs): HTML submitted through the API follows the same
//! sanitising policy as the same HTML arriving by mail — no remote images, no relative URLs that
//! hit the API, no `javascript:` links, event handlers, styles or scripts — on every way in:
//! agent replies and notes, new conversations, custom-channel inbound and customer messages.

use serde_json::{Value, json};

use crate::common::{Api, TestServer};

const HOSTILE: &str = concat!(
    r#"<style>p { background: url(https://evil.example/bg) }</style><script>fetch('/api/v1/agents')</script>"#,
    r#"<p onclick="steal()" onmouseover="steal()">Hello <b>there</b></p>"#,
    r#"<img src="https://evil.example/x" alt="tracker"><img src="/api/v1/agents/1" alt="self">"#,
    r#"<a href="/api/v1/agents">agents</a> <a href="javascript:alert(1)">js</a> "#,
    r#"<a href="https://ok.example/doc">doc</a> <svg onload="steal()"></svg><iframe src="/api/v1/me"></iframe>"#,
);

/// What the mail channel stores for a mail whose HTML body is `html`.
fn as_mail(html: &str) -> String {
    let raw = format!(
        "From: Customer <customer@example.com>\r\nTo: support@example.com\r\nSubject: hi\r\n\
         Message-ID: <m1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}"
    );
    switchboard::channels::email::parse::parse(raw.as_bytes()).expect("a mail").html.expect("an HTML body")
}

fn assert_clean(way: &str, served: &Value, mail: &str) {
    let html = served["content_html"].as_str().unwrap_or_else(|| panic!("{way}: no content_html in {served}"));
    for bad in [
        "evil.example",
        "/api/v1",
        "javascript:",
        "onclick",
        "onmouseover",
        "onload",
        "<script",
        "<style",
        "fetch(",
        "<iframe",
        "steal",
    ] {
        assert!(!html.contains(bad), "{way}: {bad:?} survived in {html}");
    }
    assert!(html.contains("<b>there</b>"), "{way}: harmless markup kept: {html}");
    assert!(html.contains(r#"href="https://ok.example/doc""#), "{way}: an absolute link kept: {html}");
    assert_eq!(html, mail, "{way}: stored as the same HTML by mail would be");
}

/// The newest message of a conversation as the API serves it.
async fn last_message(api: &Api, conversation: i64) -> Value {
    let list = api.ok_get(&format!("/api/v1/conversations/{conversation}/messages?limit=200")).await;
    list.as_array().and_then(|l| l.last()).cloned().expect("a message")
}

#[tokio::test]
async fn api_html_is_sanitised_like_mail_html_on_every_way_in() {
    let server = TestServer::start().await;
    let admin = server.agent("admin@example.com", "super_admin").await;
    let mail = as_mail(HOSTILE);
    assert!(!mail.contains("evil.example") && !mail.contains("/api/v1"), "the mail policy itself: {mail}");
    let channel = admin
        .ok_post(
            "/api/v1/custom-channels",
            json!({"name": "app", "webhook_url": "http://127.0.0.1:9/hook", "type": "async"}),
            201,
        )
        .await["id"]
        .as_i64()
        .unwrap();

    // A customer's first message through the integrator's one-call endpoint.
    let inbound = admin
        .ok_post(
            &format!("/api/v1/custom-channels/{channel}/inbound"),
            json!({"user_custom_id": "u1", "content": "hello", "content_html": HOSTILE}),
            201,
        )
        .await;
    let conversation = inbound["conversation_id"].as_i64().unwrap();
    let user = inbound["user_id"].as_i64().unwrap();
    assert_clean("inbound", &last_message(&admin, conversation).await, &mail);

    // A customer message to a named conversation (CC-8).
    admin
        .ok_post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"user_id": user, "content": "again", "content_html": HOSTILE}),
            201,
        )
        .await;
    assert_clean("customer message", &last_message(&admin, conversation).await, &mail);

    // An agent reply and an internal note.
    admin
        .ok_post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({"content": "reply", "content_html": HOSTILE}),
            201,
        )
        .await;
    assert_clean("agent reply", &last_message(&admin, conversation).await, &mail);
    admin
        .ok_post(
            &format!("/api/v1/conversations/{conversation}/notes"),
            json!({"content": "note", "content_html": HOSTILE}),
            201,
        )
        .await;
    assert_clean("note", &last_message(&admin, conversation).await, &mail);

    // A conversation created through the API (CC-4).
    let created = admin
        .ok_post(
            "/api/v1/conversations",
            json!({"channel": channel, "user_custom_id": "u2", "content": "new", "content_html": HOSTILE}),
            201,
        )
        .await;
    assert_clean("new conversation", &last_message(&admin, created["conversation_id"].as_i64().unwrap()).await, &mail);
}
