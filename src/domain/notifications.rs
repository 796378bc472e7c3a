//! An agent's notifications (issue #17 items 2 and 3), the pure part: what kinds there are, who
//! caused one, what a change notifies and to whom, the excerpt shown, and which agents an internal
//! note mentions.
//!
//! The store's change-feed consumer (`store::notifications`) reads what a change recorded and
//! asks [`decide`]; it checks each recipient's channel access itself (that needs the database).
//! Nothing here knows sockets, HTTP or SQL.

use super::kinds::text_enum;
use super::{Direction, Mode};

text_enum!(
    /// Why an agent is notified: someone else (or routing) assigned a conversation to them; an internal
    /// note mentions them; the customer wrote again on a conversation assigned to them; a new chat was
    /// routed to them and waits for an answer. (`sla_warning` comes with the SLA timers.)
    NotificationKind {
        Assigned => "assigned",
        Mentioned => "mentioned",
        CustomerReplied => "customer_replied",
        ChatWaiting => "chat_waiting",
    }
);

text_enum!(
    /// Who caused a notification: an agent, the customer, or the server itself (routing of a new conversation).
    ActorKind {
        Agent => "agent",
        Customer => "customer",
        System => "system",
    }
);

/// Longest excerpt kept with a notification (characters).
pub const EXCERPT_CHARS: usize = 140;
/// Most agents one note may mention.
pub const MAX_MENTIONS: usize = 20;

/// A change as the notification consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<'a> {
    /// A new conversation, with the assignee routing gave it (if any), and its mode.
    Created { assigned_to: Option<i64>, actor: Option<i64>, mode: Mode },
    /// A conversation's properties changed; `assigned_to` when this change assigned it to someone.
    Updated { assigned_to: Option<i64>, actor: Option<i64> },
    /// A message was added to a conversation assigned to `assignee` (now).
    Message { direction: Direction, author_agent: Option<i64>, assignee: Option<i64>, mentions: &'a [i64] },
}

/// Who is to be notified of `change`, and why: never the agent who made it. Channel access is
/// checked by the caller for each recipient.
pub fn decide(change: &Change<'_>) -> Vec<(i64, NotificationKind)> {
    let not_actor = |to: i64, actor: Option<i64>| actor != Some(to);
    match *change {
        Change::Created { assigned_to: Some(to), actor, mode } if not_actor(to, actor) => {
            let kind = if mode == Mode::Sync { NotificationKind::ChatWaiting } else { NotificationKind::Assigned };
            vec![(to, kind)]
        }
        Change::Updated { assigned_to: Some(to), actor } if not_actor(to, actor) => {
            vec![(to, NotificationKind::Assigned)]
        }
        Change::Message { direction: Direction::In, assignee: Some(to), .. } => {
            vec![(to, NotificationKind::CustomerReplied)]
        }
        Change::Message { direction: Direction::Note, author_agent, mentions, .. } => {
            let mut out: Vec<(i64, NotificationKind)> = Vec::new();
            for &to in mentions {
                if not_actor(to, author_agent) && !out.iter().any(|(a, _)| *a == to) {
                    out.push((to, NotificationKind::Mentioned));
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// The excerpt of a text kept with a notification: whitespace collapsed, at most
/// [`EXCERPT_CHARS`] characters (cut ones end with `…`).
pub fn excerpt(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= EXCERPT_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(EXCERPT_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// Why a note's mentions are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MentionError {
    /// More than [`MAX_MENTIONS`] agents.
    TooMany,
    /// This agent may not be mentioned here: unknown, deactivated, or without access to the
    /// conversation's channel.
    NotMentionable(i64),
}

/// The agents a note mentions. `requested` are the ids the editor sent (with the note's text);
/// `mentionable` the agents who may see the conversation's channel, with their names. A mention is
/// `@` followed by the agent's exact name, not followed by a letter or digit (so `@Ann` is not in
/// `@Anna`): an id whose mention is no longer in the text (the author deleted it) is dropped; an id
/// that may not be mentioned is refused. The result is sorted, without duplicates.
pub fn mentioned(text: &str, requested: &[i64], mentionable: &[(i64, String)]) -> Result<Vec<i64>, MentionError> {
    let mut ids = requested.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > MAX_MENTIONS {
        return Err(MentionError::TooMany);
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some((_, name)) = mentionable.iter().find(|(a, _)| *a == id) else {
            return Err(MentionError::NotMentionable(id));
        };
        if mentions_name(text, name) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Whether `text` holds `@name` as a whole mention.
fn mentions_name(text: &str, name: &str) -> bool {
    let name = name.trim();
    if name.is_empty() {
        return false;
    }
    let token = format!("@{name}");
    let mut from = 0;
    while let Some(at) = text[from..].find(&token) {
        let end = from + at + token.len();
        if !text[end..].chars().next().is_some_and(char::is_alphanumeric) {
            return true;
        }
        from += at + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents() -> Vec<(i64, String)> {
        vec![(1, "Ann".into()), (2, "Anna Berg".into()), (3, "Bob".into())]
    }

    #[test]
    fn kinds_round_trip() {
        for k in NotificationKind::ALL {
            assert_eq!(k.as_str().parse::<NotificationKind>(), Ok(*k));
        }
        for k in ActorKind::ALL {
            assert_eq!(k.as_str().parse::<ActorKind>(), Ok(*k));
        }
    }

    #[test]
    fn a_mention_is_at_and_the_exact_name() {
        let a = agents();
        assert_eq!(mentioned("@Ann please look", &[1], &a), Ok(vec![1]));
        // `@Ann` inside `@Anna Berg` is not Ann.
        assert_eq!(mentioned("@Anna Berg please look", &[1, 2], &a), Ok(vec![2]));
        assert_eq!(mentioned("cc @Ann, @Bob.", &[3, 1, 3], &a), Ok(vec![1, 3]));
        // Deleted from the text after it was picked: dropped.
        assert_eq!(mentioned("nobody here", &[3], &a), Ok(vec![]));
        // Without the @ it is just a word.
        assert_eq!(mentioned("Bob knows", &[3], &a), Ok(vec![]));
        assert_eq!(mentioned("@Bob", &[], &a), Ok(vec![]));
    }

    #[test]
    fn an_agent_who_may_not_see_the_channel_is_refused() {
        assert_eq!(mentioned("@Eve", &[9], &agents()), Err(MentionError::NotMentionable(9)));
        let many: Vec<i64> = (1..=21).collect();
        assert_eq!(mentioned("x", &many, &agents()), Err(MentionError::TooMany));
    }

    #[test]
    fn never_the_actor_and_each_kind_from_its_change() {
        let created = |to, actor, mode| decide(&Change::Created { assigned_to: to, actor, mode });
        assert_eq!(created(Some(4), None, Mode::Sync), vec![(4, NotificationKind::ChatWaiting)]);
        assert_eq!(created(Some(4), None, Mode::Async), vec![(4, NotificationKind::Assigned)]);
        assert_eq!(created(Some(4), Some(4), Mode::Async), vec![]);
        assert_eq!(created(None, None, Mode::Sync), vec![]);
        let updated = |to, actor| decide(&Change::Updated { assigned_to: to, actor });
        assert_eq!(updated(Some(4), Some(5)), vec![(4, NotificationKind::Assigned)]);
        assert_eq!(updated(Some(4), Some(4)), vec![], "taking it oneself notifies nobody");
        assert_eq!(updated(None, Some(5)), vec![]);
        let msg = |direction, author_agent, assignee, mentions: &[i64]| {
            decide(&Change::Message { direction, author_agent, assignee, mentions })
        };
        assert_eq!(msg(Direction::In, None, Some(4), &[]), vec![(4, NotificationKind::CustomerReplied)]);
        assert_eq!(msg(Direction::In, None, None, &[]), vec![]);
        assert_eq!(msg(Direction::Out, Some(5), Some(4), &[4]), vec![]);
        assert_eq!(
            msg(Direction::Note, Some(5), Some(4), &[4, 5, 6, 4]),
            vec![(4, NotificationKind::Mentioned), (6, NotificationKind::Mentioned)]
        );
    }

    #[test]
    fn excerpts_are_flat_and_short() {
        assert_eq!(excerpt("  hello\n\n  world "), "hello world");
        let long = "word ".repeat(100);
        let e = excerpt(&long);
        assert!(e.chars().count() <= EXCERPT_CHARS && e.ends_with('…'), "{e}");
    }
}
