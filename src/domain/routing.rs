//! Auto-assignment of new conversations (CC-12, seed 004): round-robin among the chosen agents
//! who are online, skipping the away and the offline.

/// What the presence picture says of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Online,
    Away,
    Offline,
}

/// Where presence is read from (the real-time hub's markers, handed to the store).
pub trait PresenceSource: Send + Sync {
    fn presence(&self, agent_id: i64) -> Presence;
}

/// The agent whose turn it is: the `turn`-th (wrapping) of the candidates that are online, in
/// id order. `None` when nobody is online.
pub fn round_robin(candidates: &[i64], presence: impl Fn(i64) -> Presence, turn: u64) -> Option<i64> {
    let mut online: Vec<i64> = candidates.iter().copied().filter(|a| presence(*a) == Presence::Online).collect();
    online.sort_unstable();
    online.dedup();
    if online.is_empty() {
        return None;
    }
    Some(online[(turn % online.len() as u64) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cc_12_takes_turns_among_the_online_only() {
        let presence = |a: i64| match a {
            1 | 3 | 4 => Presence::Online,
            2 => Presence::Away,
            _ => Presence::Offline,
        };
        let picks: Vec<_> = (0..6).map(|t| round_robin(&[4, 2, 1, 3, 5, 3], presence, t).unwrap()).collect();
        assert_eq!(picks, vec![1, 3, 4, 1, 3, 4], "each online agent once per round, in id order; duplicates ignored");
        assert_eq!(round_robin(&[2, 5], presence, 0), None, "away and offline agents get nothing");
        assert_eq!(round_robin(&[], presence, 7), None);
    }
}
