//! The pure rules of the Mattermost channel (MM-5…MM-7, MM-8): which posts the bot takes, which conversation
//! (*place*) a post belongs to, and how an agent reply is written. No I/O; unit-tested here.
//!
//! - Posts by the bot itself and system posts (a non-empty `type`) are ignored.
//! - A direct message (`D`) is always for the bot: one conversation per DM channel (`dm:{channel}`), replies
//!   top-level.
//! - A channel post (`O`, `P`, `G`) is taken when it mentions the bot, or always when the bot's `mention_only`
//!   (MM-6) is off. Group-chat mode (MM-7a): one conversation per channel (`ch:{channel}`), replies top-level.
//!   Thread mode (MM-7b): one conversation per root post (`root:{post}`), replies under `root_id`; a reply in a
//!   thread that already is a conversation joins it even without a mention (the customer is answering the agent).

use serde::{Deserialize, Serialize};

use super::ConversationMode;

/// A post as the REST API and the `posted` event give it (the fields the connector uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    pub id: String,
    #[serde(default)]
    pub create_at: i64,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub channel_id: String,
    #[serde(default)]
    pub root_id: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub file_ids: Vec<String>,
    /// The post's properties; the bot's own posts carry [`CONVERSATION_PROP`] where they start a thread.
    #[serde(default)]
    pub props: serde_json::Map<String, serde_json::Value>,
}

/// The prop the first post of a thread-mode outbound conversation carries: the conversation's id (MM-7b).
pub const CONVERSATION_PROP: &str = "switchboard_conversation_id";

/// The props of an agent reply's post: the conversation's id when the post starts that conversation's thread.
pub fn reply_props(starts_thread_of: Option<i64>) -> serde_json::Value {
    match starts_thread_of {
        Some(id) => serde_json::json!({ CONVERSATION_PROP: id }),
        None => serde_json::json!({}),
    }
}

/// MM-7b: the conversation whose thread the bot's own `post` starts — a root post in a channel (not a DM), in thread
/// mode, carrying [`CONVERSATION_PROP`].
pub fn started_thread(post: &Post, mode: ConversationMode, channel_type: ChannelType) -> Option<i64> {
    if mode != ConversationMode::Thread || channel_type == ChannelType::Direct || !post.root_id.is_empty() {
        return None;
    }
    post.props.get(CONVERSATION_PROP)?.as_i64()
}

/// A Mattermost channel's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelType {
    Public,
    Private,
    Direct,
    Group,
}

impl ChannelType {
    /// `O`, `P`, `D`, `G`; anything else is treated as a public channel.
    pub fn parse(code: &str) -> Self {
        match code {
            "D" => ChannelType::Direct,
            "G" => ChannelType::Group,
            "P" => ChannelType::Private,
            _ => ChannelType::Public,
        }
    }
}

/// The bot, as the rules need it.
#[derive(Debug, Clone, Copy)]
pub struct Bot<'a> {
    pub user_id: &'a str,
    pub username: &'a str,
    pub mention_only: bool,
    pub mode: ConversationMode,
}

/// Why a post is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    OwnPost,
    SystemPost,
    NotMentioned,
}

/// Where a taken post goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The key of its conversation on this bot: `dm:{channel}`, `ch:{channel}` or `root:{post}`.
    pub key: String,
    /// Where replies are posted.
    pub mm_channel_id: String,
    /// The thread replies go under (empty: top-level).
    pub root_id: String,
    /// Whether the post may start a conversation; when false it only joins an existing one (a thread reply
    /// without a mention under `mention_only`).
    pub may_start: bool,
}

/// What to do with a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Take(Place),
    Skip(Skip),
}

/// Whether the bot is mentioned: its id in the event's `mentions`, or (when the event did not say, e.g. a post read
/// over REST) `@username` as a word in the text.
pub fn mentioned(bot: &Bot<'_>, mentions: Option<&[String]>, message: &str) -> bool {
    if let Some(ids) = mentions
        && ids.iter().any(|m| m == bot.user_id)
    {
        return true;
    }
    let needle = format!("@{}", bot.username.to_ascii_lowercase());
    let text = message.to_ascii_lowercase();
    text.match_indices(&needle).any(|(at, _)| {
        let before_ok = at == 0 || !text.as_bytes()[at - 1].is_ascii_alphanumeric();
        let after = text.as_bytes().get(at + needle.len()).copied();
        let after_ok = after.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b'-'));
        before_ok && after_ok
    })
}

/// The rules of the module docs.
pub fn decide(bot: &Bot<'_>, post: &Post, channel_type: ChannelType, mentions: Option<&[String]>) -> Decision {
    if post.user_id == bot.user_id {
        return Decision::Skip(Skip::OwnPost);
    }
    if !post.kind.is_empty() {
        return Decision::Skip(Skip::SystemPost);
    }
    if channel_type == ChannelType::Direct {
        return Decision::Take(Place {
            key: format!("dm:{}", post.channel_id),
            mm_channel_id: post.channel_id.clone(),
            root_id: String::new(),
            may_start: true,
        });
    }
    let addressed = !bot.mention_only || mentioned(bot, mentions, &post.message);
    match bot.mode {
        ConversationMode::Group if addressed => Decision::Take(Place {
            key: format!("ch:{}", post.channel_id),
            mm_channel_id: post.channel_id.clone(),
            root_id: String::new(),
            may_start: true,
        }),
        ConversationMode::Group => Decision::Skip(Skip::NotMentioned),
        ConversationMode::Thread => {
            let root = if post.root_id.is_empty() { post.id.clone() } else { post.root_id.clone() };
            if !addressed && post.root_id.is_empty() {
                return Decision::Skip(Skip::NotMentioned);
            }
            Decision::Take(Place {
                key: format!("root:{root}"),
                mm_channel_id: post.channel_id.clone(),
                root_id: root,
                may_start: addressed,
            })
        }
    }
}

/// The text of an agent reply: the quoted customer post first, as a Mattermost (Markdown) quote (MM-8).
pub fn reply_text(text: &str, quoted: Option<&str>) -> String {
    match quoted.map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => {
            let quote: Vec<String> = q.lines().map(|l| format!("> {l}")).collect();
            format!("{}\n\n{text}", quote.join("\n"))
        }
        None => text.to_owned(),
    }
}

/// How a customer's post reads in a conversation another person started (group-chat channels are shared):
/// prefixed with the poster's `@username`.
pub fn shared_text(username: &str, message: &str) -> String {
    format!("@{username}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: &str = "botid";

    fn bot(mention_only: bool, mode: ConversationMode) -> Bot<'static> {
        Bot { user_id: BOT, username: "helpbot", mention_only, mode }
    }

    fn post(id: &str, root: &str, text: &str) -> Post {
        Post {
            id: id.into(),
            user_id: "alice".into(),
            channel_id: "chan".into(),
            root_id: root.into(),
            message: text.into(),
            ..Default::default()
        }
    }

    #[test]
    fn mm_7b_the_bots_own_root_post_names_the_thread_it_starts() {
        let mut own = post("p1", "", "Hello");
        own.props = reply_props(Some(42)).as_object().unwrap().clone();
        assert_eq!(started_thread(&own, ConversationMode::Thread, ChannelType::Public), Some(42));
        assert_eq!(
            started_thread(&own, ConversationMode::Group, ChannelType::Public),
            None,
            "group mode has no threads"
        );
        assert_eq!(started_thread(&own, ConversationMode::Thread, ChannelType::Direct), None, "a DM is one place");
        let mut reply = own.clone();
        reply.root_id = "p0".into();
        assert_eq!(started_thread(&reply, ConversationMode::Thread, ChannelType::Public), None, "not a root post");
        let plain = post("p2", "", "Hello");
        assert_eq!(started_thread(&plain, ConversationMode::Thread, ChannelType::Public), None, "no prop: no thread");
        assert_eq!(reply_props(None), serde_json::json!({}));
    }

    fn key(d: Decision) -> String {
        match d {
            Decision::Take(p) => p.key,
            Decision::Skip(s) => format!("{s:?}"),
        }
    }

    #[test]
    fn own_and_system_posts_are_ignored() {
        let b = bot(false, ConversationMode::Group);
        let mut own = post("p", "", "hi");
        own.user_id = BOT.into();
        assert_eq!(decide(&b, &own, ChannelType::Direct, None), Decision::Skip(Skip::OwnPost));
        let mut system = post("p", "", "alice joined");
        system.kind = "system_join_channel".into();
        assert_eq!(decide(&b, &system, ChannelType::Public, None), Decision::Skip(Skip::SystemPost));
    }

    #[test]
    fn mm_5_a_dm_is_one_conversation_per_dm_channel_in_both_modes() {
        for mode in [ConversationMode::Group, ConversationMode::Thread] {
            let d = decide(&bot(true, mode), &post("p", "", "no mention"), ChannelType::Direct, None);
            let Decision::Take(place) = d else { panic!("{d:?}") };
            assert_eq!((place.key.as_str(), place.root_id.as_str(), place.may_start), ("dm:chan", "", true));
        }
    }

    #[test]
    fn mm_6_mention_only_decides_channel_posts() {
        let plain = post("p", "", "printer broken");
        let at = post("p", "", "@helpbot printer broken");
        let g = ConversationMode::Group;
        assert_eq!(key(decide(&bot(true, g), &plain, ChannelType::Public, None)), "NotMentioned");
        assert_eq!(key(decide(&bot(true, g), &at, ChannelType::Public, None)), "ch:chan");
        assert_eq!(key(decide(&bot(true, g), &plain, ChannelType::Private, Some(&[BOT.into()]))), "ch:chan");
        assert_eq!(key(decide(&bot(false, g), &plain, ChannelType::Group, None)), "ch:chan");
    }

    #[test]
    fn mentions_are_ids_or_whole_usernames() {
        let b = bot(true, ConversationMode::Group);
        assert!(mentioned(&b, Some(&["x".into(), BOT.into()]), ""));
        assert!(mentioned(&b, None, "hey @HelpBot, help"));
        assert!(!mentioned(&b, None, "hey @helpbot2"));
        assert!(!mentioned(&b, None, "mail me at a@helpbot.com"));
        assert!(!mentioned(&b, Some(&["x".into()]), "nothing"));
    }

    #[test]
    fn mm_7b_thread_mode_one_conversation_per_root_replies_join() {
        let t = bot(true, ConversationMode::Thread);
        let root = decide(&t, &post("root1", "", "@helpbot help"), ChannelType::Public, None);
        assert_eq!(
            root,
            Decision::Take(Place {
                key: "root:root1".into(),
                mm_channel_id: "chan".into(),
                root_id: "root1".into(),
                may_start: true
            })
        );
        // A reply without a mention joins an existing thread conversation but starts none.
        let reply = decide(&t, &post("r", "root1", "thanks"), ChannelType::Public, None);
        assert_eq!(
            reply,
            Decision::Take(Place {
                key: "root:root1".into(),
                mm_channel_id: "chan".into(),
                root_id: "root1".into(),
                may_start: false
            })
        );
        assert_eq!(key(decide(&t, &post("root2", "", "chatter"), ChannelType::Public, None)), "NotMentioned");
        assert_eq!(
            key(decide(&bot(false, ConversationMode::Thread), &post("root2", "", "x"), ChannelType::Public, None)),
            "root:root2"
        );
    }

    #[test]
    fn mm_8_a_quote_comes_first() {
        assert_eq!(reply_text("yes", Some("a\nb")), "> a\n> b\n\nyes");
        assert_eq!(reply_text("yes", Some("  ")), "yes");
        assert_eq!(reply_text("yes", None), "yes");
        assert_eq!(shared_text("bob", "me too"), "@bob: me too");
    }
}
