//! The one typed reader of a channel instance's `settings` JSON (#14 item 9): [`read`] turns the stored text
//! into the settings of the channel's kind, each with its `routing` part (CC-12) — instead of every reader
//! parsing the JSON and picking parts by hand. Settings are validated on the way in (the channel endpoints);
//! what cannot be read here (nothing configured yet, a kind this build does not know) reads as the defaults.
//! The routing part's type lives in `store::channels`, whose creation transactions read it
//! ([`crate::store::channels::routing_of`], the same key with the same type).

use super::custom;
use super::email::settings::EmailSettings;
use crate::domain::ChannelKind;
use crate::store::channels::RoutingSettings;
use crate::store::models::ChannelInstance;

/// A channel's settings, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelSettings {
    /// A mailbox; `None` until its settings are given (an email channel made by the generic channel API).
    Email(Option<Box<EmailSettings>>),
    /// An integrator's channel: its webhook and routing.
    Custom(custom::Settings),
    /// A kind without a connector yet (Mattermost, Zalo) or unknown: only the routing part is read.
    Unconnected { routing: RoutingSettings },
}

/// The settings of `channel`, read by its kind.
pub fn read(channel: &ChannelInstance) -> ChannelSettings {
    read_text(Some(channel.kind), &channel.settings)
}

/// [`read`] from the kind and the settings text (`None`: a kind this build does not know).
pub fn read_text(kind: Option<ChannelKind>, settings: &str) -> ChannelSettings {
    match kind {
        Some(ChannelKind::Email) => ChannelSettings::Email(EmailSettings::of(settings).map(Box::new)),
        Some(ChannelKind::Custom) => ChannelSettings::Custom(custom::Settings::of(settings)),
        Some(ChannelKind::Mattermost | ChannelKind::Zalo | ChannelKind::Web) | None => {
            #[derive(serde::Deserialize, Default)]
            struct RoutingOnly {
                #[serde(default)]
                routing: RoutingSettings,
            }
            let only: RoutingOnly = serde_json::from_str(settings).unwrap_or_default();
            ChannelSettings::Unconnected { routing: only.routing }
        }
    }
}

impl ChannelSettings {
    /// Default properties and auto-assignment of the channel's new conversations (CC-12). Mailboxes have
    /// none yet: their new tickets get the defaults.
    pub fn routing(&self) -> RoutingSettings {
        match self {
            ChannelSettings::Email(_) => RoutingSettings::default(),
            ChannelSettings::Custom(s) => s.routing.clone(),
            ChannelSettings::Unconnected { routing } => routing.clone(),
        }
    }

    /// The mailbox's settings, if this is a configured mailbox.
    pub fn email(self) -> Option<EmailSettings> {
        match self {
            ChannelSettings::Email(s) => s.map(|s| *s),
            _ => None,
        }
    }

    /// The custom channel's settings, if this is a custom channel.
    pub fn custom(self) -> Option<custom::Settings> {
        match self {
            ChannelSettings::Custom(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::channels::Assign;

    #[test]
    fn each_kind_reads_its_own_settings_with_routing() {
        let custom = r#"{"webhook_url":"https://shop.test/hook","routing":{"team_id":3,"tags":["vip"],"assign":{"mode":"owner"}}}"#;
        let read = read_text(Some(ChannelKind::Custom), custom);
        assert_eq!(read.routing().team_id, Some(3));
        assert_eq!(read.routing().tags, vec!["vip".to_string()]);
        assert_eq!(read.routing().assign, Assign::Owner);
        assert_eq!(read.custom().map(|s| s.webhook_url), Some("https://shop.test/hook".into()));

        let chat = read_text(Some(ChannelKind::Mattermost), r#"{"routing":{"priority":"high"}}"#);
        assert_eq!(chat.routing().priority.as_deref(), Some("high"));
        assert_eq!(chat.clone().custom(), None);

        let unset = read_text(Some(ChannelKind::Email), "{}");
        assert_eq!(unset, ChannelSettings::Email(None), "an email channel without a mailbox yet");
        assert_eq!(unset.routing(), RoutingSettings::default());
    }

    #[test]
    fn what_cannot_be_read_reads_as_the_defaults() {
        for text in ["", "not json", "[]", r#"{"routing":{"team_id":"three"}}"#] {
            assert_eq!(read_text(Some(ChannelKind::Custom), text).routing(), RoutingSettings::default(), "{text}");
            assert_eq!(read_text(None, text).routing(), RoutingSettings::default(), "{text}");
            assert_eq!(read_text(Some(ChannelKind::Email), text).email(), None, "{text}");
        }
    }
}
