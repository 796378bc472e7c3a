//! The conversation lifecycle (CORE-5, CORE-6, CORE-7, CORE-8, CC-9, EM-6, EM-13) as one pure
//! state machine: what an event does to a conversation, for every channel alike.
//!
//! A conversation's [`State`] is its status base (open / pending / closed, CORE-6), its [`Phase`]
//! (a ticket, a chat in progress, or a chat that has ended, CORE-5) and whether it was merged into
//! another (CORE-8). [`decide`] maps a state and an [`Event`] to an [`Outcome`]; the store reads the
//! state, calls it inside its transaction and writes what it says. No other code decides.
//!
//! The rule for a customer's message, one for every channel (issue #14):
//! - merged → decide again in the survivor (CC-9 c; EM-6 threading lands there too);
//! - closed → a new conversation (CORE-7, CC-9 a) — also for a mail threaded (EM-6) into a closed
//!   ticket: threading says which conversation the mail answers, CORE-7 what a message to a closed
//!   one does. Before, email reopened a closed ticket while the custom channel started a new one;
//! - pending (any status whose base is pending) → joins it and reopens it to `open`; open → joins it
//!   and keeps its status. Before, the custom channel reopened only the built-in `pending` key.
//!
//! A chat that joins a message from the customer is live again (its inactivity timer restarts);
//! an agent's reply keeps a live chat alive but never revives an ended one; notes touch nothing.
//! Closing a live chat ends it (CORE-5); merging closes (and ends) the merged one.
//!
//! Since when the customer waits for an answer ([`waiting_since`], the chat queue's order, issue #17 item 6) is
//! decided here too, for every channel.

use super::kinds::Direction;
use super::status::StatusBase;

/// Where a conversation is in its life, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct State {
    pub base: StatusBase,
    pub phase: Phase,
    /// Merged into another conversation (CORE-8).
    pub merged: bool,
}

/// Ticket or chat (CORE-2), and for a chat whether it is still in progress (CORE-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// An async conversation: it has no chat phase.
    Ticket,
    /// A sync conversation in progress (its inactivity timer runs).
    LiveChat,
    /// A sync conversation that has ended (by an agent, inactivity or a rule).
    EndedChat,
}

impl Phase {
    pub const ALL: &'static [Phase] = &[Phase::Ticket, Phase::LiveChat, Phase::EndedChat];

    /// The phase of a conversation of mode `sync` (or not) that has ended (or not).
    pub fn of(sync: bool, ended: bool) -> Self {
        match (sync, ended) {
            (false, _) => Phase::Ticket,
            (true, false) => Phase::LiveChat,
            (true, true) => Phase::EndedChat,
        }
    }
}

impl State {
    /// Every state, for exhaustive tests.
    pub fn all() -> impl Iterator<Item = State> {
        StatusBase::ALL.iter().flat_map(|&base| {
            Phase::ALL
                .iter()
                .flat_map(move |&phase| [false, true].into_iter().map(move |merged| State { base, phase, merged }))
        })
    }
}

/// Something that happens to a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The customer writes (any channel: CC-8, CC-9, EM-6, a chat message).
    CustomerMessage,
    /// An agent's reply, visible to the customer (by API, dashboard, rule or mail).
    AgentReply,
    /// An internal note (CORE-10).
    Note,
    /// Properties other than the status change (assignee, team, tags, priority, subject, fields).
    Edit,
    /// A status of this base is set (an agent, a rule, `#close#` by mail: EM-13).
    SetStatus(StatusBase),
    /// "End chat" by an agent, the inactivity timeout or a rule (CORE-5).
    EndChat,
    /// This conversation is merged into another (CORE-8).
    MergeInto,
    /// Another conversation is merged into this one, the survivor (CORE-8).
    MergedFrom,
}

impl Event {
    /// Every event, for exhaustive tests.
    pub fn all() -> impl Iterator<Item = Event> {
        [Event::CustomerMessage, Event::AgentReply, Event::Note, Event::Edit]
            .into_iter()
            .chain(StatusBase::ALL.iter().map(|&b| Event::SetStatus(b)))
            .chain([Event::EndChat, Event::MergeInto, Event::MergedFrom])
    }
}

/// What an event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The event applies to this conversation, with these changes.
    Apply(Effect),
    /// Nothing to do: the event is a no-op (ending a chat that has already ended).
    Unchanged,
    /// The conversation was merged: the message belongs to the survivor, decide again there (CC-9 c).
    FollowMerge,
    /// The message starts a new conversation (CORE-7, CC-9 a).
    StartNew,
    /// The event is refused; nothing changes.
    Refuse(Refusal),
}

/// What applying an event changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    pub status: StatusChange,
    pub chat: ChatChange,
}

/// The status after the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// The status stays as it is.
    Keep,
    /// A status of this base: the one the event names, or the built-in one of the base when the
    /// rules change it (a customer reopening a pending conversation, a merge closing one).
    Set(StatusBase),
}

/// What happens to a chat's phase and inactivity timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatChange {
    /// Nothing (a ticket, a note, a status change that does not close a live chat).
    None,
    /// A live chat stays live: its inactivity timer restarts.
    KeepAlive,
    /// An ended chat is live again and its inactivity timer starts.
    Revive,
    /// A live chat ends now; its timer stops.
    End,
}

/// Why an event is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The conversation was merged into another: act on the survivor.
    Merged,
    /// Only a chat can be ended.
    NotAChat,
}

/// What `event` does to a conversation in `state`. Total: every state and event has an answer.
pub fn decide(state: State, event: Event) -> Outcome {
    use ChatChange as C;
    use StatusChange as S;
    let apply = |status, chat| Outcome::Apply(Effect { status, chat });
    let live = state.phase == Phase::LiveChat;
    match event {
        // Messages to a merged conversation land in the survivor; anything else is refused there.
        Event::CustomerMessage if state.merged => Outcome::FollowMerge,
        Event::EndChat => match state.phase {
            Phase::Ticket => Outcome::Refuse(Refusal::NotAChat),
            Phase::LiveChat => apply(S::Keep, C::End),
            Phase::EndedChat => Outcome::Unchanged,
        },
        _ if state.merged => Outcome::Refuse(Refusal::Merged),
        Event::CustomerMessage => {
            let chat = match state.phase {
                Phase::Ticket => C::None,
                Phase::LiveChat => C::KeepAlive,
                Phase::EndedChat => C::Revive,
            };
            match state.base {
                StatusBase::Closed => Outcome::StartNew,
                StatusBase::Pending => apply(S::Set(StatusBase::Open), chat),
                StatusBase::Open => apply(S::Keep, chat),
            }
        }
        Event::AgentReply => apply(S::Keep, if live { C::KeepAlive } else { C::None }),
        Event::Note | Event::Edit => apply(S::Keep, C::None),
        Event::SetStatus(base) => {
            apply(S::Set(base), if base == StatusBase::Closed && live { C::End } else { C::None })
        }
        Event::MergeInto => apply(S::Set(StatusBase::Closed), if live { C::End } else { C::None }),
        Event::MergedFrom => apply(S::Keep, C::None),
    }
}

/// Since when the customer waits for an answer after a message in `direction` at `at` (issue #17 item 6: "the
/// customer's waiting time since their last unanswered message"): a customer's message starts the clock anew, a
/// reply stops it, an internal note answers nobody and leaves it. The chat queue sorts by it, longest first.
pub fn waiting_since<T>(before: Option<T>, direction: Direction, at: T) -> Option<T> {
    match direction {
        Direction::In => Some(at),
        Direction::Out => None,
        Direction::Note => before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole transition table, written out. Rows: status base, phase, merged. Columns: the
    /// events in [`Event::all`] order. Cells: `new` start a new conversation, `follow` decide in
    /// the survivor, `-` unchanged, `!merged` / `!chat` refused, else the new status (`keep` or a
    /// base) and, after `+`, the chat change (`alive`, `revive`, `end`).
    const TABLE: &str = "
        base    phase  merged | customer    reply       note        edit        set:open    set:pending set:closed  end         merge_into  merged_from
        open    ticket no     | keep        keep        keep        keep        open        pending     closed      !chat       closed      keep
        open    ticket yes    | follow      !merged     !merged     !merged     !merged     !merged     !merged     !chat       !merged     !merged
        open    live   no     | keep+alive  keep+alive  keep        keep        open        pending     closed+end  keep+end    closed+end  keep
        open    live   yes    | follow      !merged     !merged     !merged     !merged     !merged     !merged     keep+end    !merged     !merged
        open    ended  no     | keep+revive keep        keep        keep        open        pending     closed      -           closed      keep
        open    ended  yes    | follow      !merged     !merged     !merged     !merged     !merged     !merged     -           !merged     !merged
        pending ticket no     | open        keep        keep        keep        open        pending     closed      !chat       closed      keep
        pending ticket yes    | follow      !merged     !merged     !merged     !merged     !merged     !merged     !chat       !merged     !merged
        pending live   no     | open+alive  keep+alive  keep        keep        open        pending     closed+end  keep+end    closed+end  keep
        pending live   yes    | follow      !merged     !merged     !merged     !merged     !merged     !merged     keep+end    !merged     !merged
        pending ended  no     | open+revive keep        keep        keep        open        pending     closed      -           closed      keep
        pending ended  yes    | follow      !merged     !merged     !merged     !merged     !merged     !merged     -           !merged     !merged
        closed  ticket no     | new         keep        keep        keep        open        pending     closed      !chat       closed      keep
        closed  ticket yes    | follow      !merged     !merged     !merged     !merged     !merged     !merged     !chat       !merged     !merged
        closed  live   no     | new         keep+alive  keep        keep        open        pending     closed+end  keep+end    closed+end  keep
        closed  live   yes    | follow      !merged     !merged     !merged     !merged     !merged     !merged     keep+end    !merged     !merged
        closed  ended  no     | new         keep        keep        keep        open        pending     closed      -           closed      keep
        closed  ended  yes    | follow      !merged     !merged     !merged     !merged     !merged     !merged     -           !merged     !merged
    ";

    fn cell(outcome: Outcome) -> String {
        match outcome {
            Outcome::StartNew => "new".into(),
            Outcome::FollowMerge => "follow".into(),
            Outcome::Unchanged => "-".into(),
            Outcome::Refuse(Refusal::Merged) => "!merged".into(),
            Outcome::Refuse(Refusal::NotAChat) => "!chat".into(),
            Outcome::Apply(Effect { status, chat }) => {
                let status = match status {
                    StatusChange::Keep => "keep",
                    StatusChange::Set(base) => base.as_str(),
                };
                match chat {
                    ChatChange::None => status.to_owned(),
                    ChatChange::KeepAlive => format!("{status}+alive"),
                    ChatChange::Revive => format!("{status}+revive"),
                    ChatChange::End => format!("{status}+end"),
                }
            }
        }
    }

    fn row_key(s: State) -> [String; 3] {
        let phase = match s.phase {
            Phase::Ticket => "ticket",
            Phase::LiveChat => "live",
            Phase::EndedChat => "ended",
        };
        [s.base.as_str().into(), phase.into(), if s.merged { "yes" } else { "no" }.into()]
    }

    #[test]
    fn the_whole_transition_table() {
        let rows: Vec<(Vec<&str>, Vec<&str>)> = TABLE
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .skip(1)
            .map(|l| {
                let (key, cells) = l.split_once('|').expect("a row has a key and cells");
                (key.split_whitespace().collect(), cells.split_whitespace().collect())
            })
            .collect();
        let states: Vec<State> = State::all().collect();
        let events: Vec<Event> = Event::all().collect();
        assert_eq!(states.len(), 3 * 3 * 2);
        assert_eq!(events.len(), 10);
        assert_eq!(rows.len(), states.len(), "one row per state");
        for state in &states {
            let key = row_key(*state);
            let (_, cells) = rows
                .iter()
                .find(|(k, _)| k.iter().zip(&key).all(|(a, b)| a == b))
                .unwrap_or_else(|| panic!("no row for {state:?}"));
            assert_eq!(cells.len(), events.len(), "one cell per event in row {key:?}");
            for (event, expected) in events.iter().zip(cells) {
                assert_eq!(cell(decide(*state, *event)), *expected, "{state:?} × {event:?}");
            }
        }
    }

    #[test]
    fn core_7_one_rule_for_every_channel() {
        // Whatever the channel, a customer writing to a closed conversation starts a new one,
        // including a custom status whose base is pending (which reopens) or open (which stays).
        for phase in Phase::ALL {
            let closed = State { base: StatusBase::Closed, phase: *phase, merged: false };
            assert_eq!(decide(closed, Event::CustomerMessage), Outcome::StartNew);
            let pending = State { base: StatusBase::Pending, ..closed };
            assert!(matches!(
                decide(pending, Event::CustomerMessage),
                Outcome::Apply(Effect { status: StatusChange::Set(StatusBase::Open), .. })
            ));
        }
    }

    #[test]
    fn phase_of_mode_and_end() {
        assert_eq!(Phase::of(false, false), Phase::Ticket);
        assert_eq!(Phase::of(false, true), Phase::Ticket);
        assert_eq!(Phase::of(true, false), Phase::LiveChat);
        assert_eq!(Phase::of(true, true), Phase::EndedChat);
    }

    #[test]
    fn the_customer_waits_since_their_last_unanswered_message() {
        assert_eq!(waiting_since(None, Direction::In, 5), Some(5));
        assert_eq!(waiting_since(Some(1), Direction::In, 5), Some(5), "a second message restarts the clock");
        assert_eq!(waiting_since(Some(5), Direction::Note, 7), Some(5), "a note is not an answer");
        assert_eq!(waiting_since(Some(5), Direction::Out, 7), None, "a reply is");
        assert_eq!(waiting_since(None, Direction::Note, 7), None);
    }
}
