//! The Mattermost channel (issue #15, MM-1…MM-12): a bot account on one Mattermost server (7.1+) takes direct
//! messages and posts in the channels it was added to, and agent replies are posted back as the bot.
//!
//! One module per job: [`api`] is the REST client (`/api/v4`, Bearer token), [`socket`] the WebSocket session
//! (authentication challenge, `hello`, events, resume by `connection_id` + `sequence_number`), [`mapping`] the pure
//! rules (which posts are taken, which conversation a post belongs to, where a reply goes), [`connector`] the
//! supervisor and the per-bot loop (one node at a time, by lease; reconnect with backoff), [`inbound`] what happens
//! to the posts read (the pipeline to the change layer, the re-sync point, the re-sync over REST after a fresh
//! `hello`, files). Every connection goes through the one outgoing policy (`crate::outbound`). The Mattermost calls
//! and events it relies on, and the contract for admins, are in `docs/mattermost.md`.

pub mod api;
pub mod connector;
pub mod inbound;
pub mod mapping;
pub mod socket;

use serde::{Deserialize, Serialize};

use crate::store::channels::RoutingSettings;

/// Conversation logic of a bot (MM-7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationMode {
    /// MM-7a: one conversation per Mattermost channel (DM or channel); replies are posted top-level.
    #[default]
    Group,
    /// MM-7b: one conversation per customer root post; replies are posted in its thread.
    Thread,
}

pub use crate::domain::ConnectionState;

/// A bot's settings (the channel instance's `settings` JSON; the token is the instance's sealed `secret`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// `https://chat.example.com` (no trailing slash; MM-2, MM-3: the bot is bound to this server).
    pub server_url: String,
    /// MM-6: from channels, take only posts that mention the bot (DMs are always taken).
    #[serde(default = "yes")]
    pub mention_only: bool,
    #[serde(default)]
    pub mode: ConversationMode,
    /// What `GET /users/me` said when the token was checked.
    pub bot_user_id: String,
    pub bot_username: String,
    /// The Mattermost team whose channels the outbound autocomplete lists (MM-12). MM-4's default team of new
    /// conversations is the help desk's, the instance's `default_team_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mattermost_team_id: Option<String>,
    /// Default properties and auto-assignment of new conversations (CC-12).
    #[serde(default)]
    pub routing: RoutingSettings,
}

fn yes() -> bool {
    true
}

impl Settings {
    /// A bot's settings text; `None` when it cannot be read (a Mattermost channel made by the generic channel API
    /// has none: no connector runs for it).
    pub fn of(settings_json: &str) -> Option<Self> {
        serde_json::from_str::<Self>(settings_json)
            .ok()
            .filter(|s| !s.server_url.is_empty() && !s.bot_user_id.is_empty())
    }
}
