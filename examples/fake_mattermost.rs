//! The test suite's fake Mattermost (`tests/common/fake_mattermost.rs`) as a process of its own, for the browser
//! end-to-end test (`tests/e2e/run.mjs`), which cannot link Rust: one fake, used by both.
//!
//! On start it prints one JSON line: `{"url", "bot_id", "bot_token"}`. Then it reads commands on stdin, one JSON
//! object per line, and answers each with one JSON line on stdout:
//!
//! - `{"cmd":"user","username":"alice","first":"Alice","last":"Archer","email":"alice@example.test"}` → `{"id"}`
//! - `{"cmd":"dm","user_id":"…"}` → `{"channel_id"}` (the bot's direct channel with that user)
//! - `{"cmd":"post","user_id":"…","channel_id":"…","message":"…","root_id":""}` → `{"post_id"}`
//! - `{"cmd":"bot_posts"}` → `{"posts":[Post]}` (what the bot posted, oldest first)
//!
//! A line it cannot read is answered `{"error":"…"}`. It stops when stdin closes.

#[path = "../tests/common/fake_mattermost.rs"]
mod fake_mattermost;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let fake = fake_mattermost::FakeMattermost::start().await;
    let mut out = tokio::io::stdout();
    let hello = json!({"url": fake.url, "bot_id": fake.bot_id, "bot_token": fake.bot_token});
    out.write_all(format!("{hello}\n").as_bytes()).await?;
    out.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Value>(&line) {
            Ok(cmd) => run(&fake, &cmd),
            Err(e) => json!({"error": format!("not JSON: {e}")}),
        };
        out.write_all(format!("{answer}\n").as_bytes()).await?;
        out.flush().await?;
    }
    fake.stop().await;
    Ok(())
}

fn run(fake: &fake_mattermost::FakeMattermost, cmd: &Value) -> Value {
    let field = |k: &str| cmd[k].as_str().unwrap_or_default();
    match field("cmd") {
        "user" => json!({"id": fake.user(field("username"), field("first"), field("last"), field("email"))}),
        "dm" => json!({"channel_id": fake.dm(field("user_id"))}),
        "post" => {
            json!({"post_id": fake.post_as(field("user_id"), field("channel_id"), field("message"), field("root_id"))})
        }
        "bot_posts" => json!({"posts": fake.bot_posts()}),
        other => json!({"error": format!("unknown command {other:?}")}),
    }
}
