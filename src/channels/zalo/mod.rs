//! The Zalo Official Account channel (issue #16, ZL-1…ZL-6): customers write to the OA in Zalo; Zalo posts each
//! event to our webhook, which is verified, stored and answered at once; one processor per OA turns the stored
//! events into chats through the change layer, in order per Zalo user; agent replies go out through the OA send
//! API from the outbox, with the OA's access token refreshed before it expires.
//!
//! One module per job: [`protocol`] the pure rules (signature, event shapes, what each event shows, the API
//! bodies), [`intake`] the webhook's store-then-answer path (signed-key cache, group commit), [`api`] the OA and
//! OAuth client, [`tokens`] the access and refresh tokens (one refresh at a time, cluster-wide; the new refresh
//! token is committed before it is used), [`processor`] the per-OA job (events → messages, receipts, follows;
//! the proactive token refresh), [`deliver`] the dispatcher's Zalo route. The contract for admins and
//! integrators is `docs/zalo.md`; the protocol facts are in `../shared/channels/zalo.md`.

pub mod api;
pub mod connector;
pub mod deliver;
pub mod intake;
pub mod processor;
pub mod protocol;
pub mod tokens;

use serde::{Deserialize, Serialize};

use crate::store::channels::RoutingSettings;

/// Zalo's OA API, where replies go.
pub const DEFAULT_API_BASE: &str = "https://openapi.zalo.me";
/// Zalo's OAuth server, where tokens are refreshed.
pub const DEFAULT_OAUTH_BASE: &str = "https://oauth.zaloapp.com";

/// The file Zalo's domain verification asks to find at the root of our public URL (ZL-2).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// `zalo_verifier{CODE}.html`.
    pub file_name: String,
    /// What the file must contain (what Zalo's console offers to download).
    pub content: String,
}

/// A Zalo channel's settings (the channel instance's `settings` JSON). `app_secret` and `oa_secret_key` are
/// sealed at rest (`secrets::SECRET_FIELDS`); the tokens live apart (`store::zalo`). `Debug` shows no secret.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The Zalo app's Application ID (ZL-1).
    pub app_id: String,
    /// The app's secret key: sent as `secret_key` when refreshing tokens.
    pub app_secret: String,
    /// The OA secret key: what webhooks are signed with.
    pub oa_secret_key: String,
    /// `https://openapi.zalo.me` unless changed (tests point it at a fake).
    pub api_base_url: String,
    /// `https://oauth.zaloapp.com` unless changed.
    pub oauth_base_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// Default properties and auto-assignment of new conversations (CC-12).
    #[serde(default)]
    pub routing: RoutingSettings,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("app_id", &self.app_id)
            .field("api_base_url", &self.api_base_url)
            .field("oauth_base_url", &self.oauth_base_url)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// A channel's settings text (opened); `None` when it has no OA connected (a Zalo channel made by the generic
    /// channel API has none: no processor runs and its webhook answers 401).
    pub fn of(settings_json: &str) -> Option<Self> {
        serde_json::from_str::<Self>(settings_json)
            .ok()
            .filter(|s| !s.app_id.is_empty() && !s.oa_secret_key.is_empty() && !s.api_base_url.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_and_never_print_secrets() {
        let s = Settings {
            app_id: "1".into(),
            app_secret: "app secret".into(),
            oa_secret_key: "oa key".into(),
            api_base_url: DEFAULT_API_BASE.into(),
            oauth_base_url: DEFAULT_OAUTH_BASE.into(),
            ..Default::default()
        };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(Settings::of(&text), Some(s.clone()));
        let shown = format!("{s:?}");
        assert!(!shown.contains("app secret") && !shown.contains("oa key"), "{shown}");
        assert_eq!(Settings::of("{}"), None);
        assert_eq!(Settings::of(r#"{"routing":{}}"#), None);
    }
}
