//! The test suite's fake Zalo (`tests/common/fake_zalo.rs`) as a process of its own, for the browser end-to-end test
//! (`tests/e2e/run.mjs`), which cannot link Rust: one fake, used by both.
//!
//! On start it prints one JSON line: `{"url", "app_id", "app_secret", "oa_secret_key", "oa_id", "access_token",
//! "refresh_token"}` — what an admin copies from Zalo's console (the URL is both base URLs: API and OAuth). Then it
//! reads commands on stdin, one JSON object per line, and answers each with one JSON line on stdout:
//!
//! - `{"cmd":"media","name":"photo.png","mime":"image/png","base64":"…"}` → `{"url"}` (served by the fake)
//! - `{"cmd":"from_user","kind":"image","user":"…","message":{…}}` → `{"body"}`: the event `user_send_{kind}` as Zalo
//!   builds it (envelope, `timestamp`); `{"cmd":"event","event_name":"…","fields":{…}}` → `{"body"}` for any other
//! - `{"cmd":"deliver","webhook":"…","body":"…","compress":600}` → `{"statuses":[…]}`: signed, and retried on
//!   Zalo's schedule divided by `compress` until answered 200
//! - `{"cmd":"sent"}` → `{"sent":[{"message_id","token","body"}]}` (what the OA sent, oldest first)
//! - `{"cmd":"refreshes"}` → `{"refreshed","refused"}` (token refreshes answered and refused)
//!
//! A line it cannot read is answered `{"error":"…"}`. It stops when stdin closes.

#[path = "../tests/common/fake_zalo.rs"]
mod fake_zalo;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let fake = fake_zalo::FakeZalo::start().await;
    let (access_token, refresh_token) = fake.issue_tokens();
    let mut out = tokio::io::stdout();
    let hello = json!({"url": fake.url, "app_id": fake.app_id, "app_secret": fake.app_secret,
        "oa_secret_key": fake.oa_secret_key, "oa_id": fake.oa_id, "access_token": access_token,
        "refresh_token": refresh_token});
    out.write_all(format!("{hello}\n").as_bytes()).await?;
    out.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Value>(&line) {
            Ok(cmd) => run(&fake, &cmd).await,
            Err(e) => json!({"error": format!("not JSON: {e}")}),
        };
        out.write_all(format!("{answer}\n").as_bytes()).await?;
        out.flush().await?;
    }
    fake.stop().await;
    Ok(())
}

async fn run(fake: &fake_zalo::FakeZalo, cmd: &Value) -> Value {
    let field = |k: &str| cmd[k].as_str().unwrap_or_default();
    match field("cmd") {
        "media" => match base64::engine::general_purpose::STANDARD.decode(field("base64")) {
            Ok(bytes) => json!({"url": fake.media(field("name"), field("mime"), &bytes)}),
            Err(e) => json!({"error": format!("base64: {e}")}),
        },
        "from_user" => {
            let user = field("user");
            let envelope = json!({"sender": {"id": user}, "recipient": {"id": fake.oa_id},
                "user_id_by_app": format!("app{user}"), "message": cmd["message"]});
            json!({"body": fake.event(&format!("user_send_{}", field("kind")), envelope)})
        }
        "event" => json!({"body": fake.event(field("event_name"), cmd["fields"].clone())}),
        "deliver" => {
            let compress = cmd["compress"].as_u64().unwrap_or(1).clamp(1, u32::MAX.into()) as u32;
            json!({"statuses": fake.deliver(field("webhook"), field("body"), compress).await})
        }
        "sent" => {
            let sent: Vec<Value> = fake
                .sent()
                .into_iter()
                .map(|s| json!({"message_id": s.message_id, "token": s.token, "body": s.body}))
                .collect();
            json!({ "sent": sent })
        }
        "refreshes" => {
            let (refreshed, refused) = fake.refreshes();
            json!({"refreshed": refreshed, "refused": refused})
        }
        other => json!({"error": format!("unknown command {other:?}")}),
    }
}
