//! Roles and per-channel access (HD-3, DESIGN invariant 4).
//!
//! A super admin and an admin see every channel instance; an agent sees only the channel
//! instances they were given. Every read and write of a conversation is checked against a
//! [`ChannelScope`]; an out-of-scope conversation is reported as absent, never as forbidden,
//! so its existence does not leak.

use super::kinds::text_enum;
use std::collections::BTreeSet;

text_enum!(
    /// What an agent may administer.
    Role {
        SuperAdmin => "super_admin",
        Admin => "admin",
        Agent => "agent",
    }
);

impl Role {
    /// Admins manage agents, teams, channels, statuses and tokens.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::SuperAdmin | Role::Admin)
    }

    /// Whether an agent of this role may give `other` to someone (create or promote).
    /// Only a super admin makes super admins.
    pub fn may_grant(self, other: Role) -> bool {
        match self {
            Role::SuperAdmin => true,
            Role::Admin => other != Role::SuperAdmin,
            Role::Agent => false,
        }
    }
}

/// The channel instances whose conversations an agent may see and touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelScope {
    All,
    Only(BTreeSet<i64>),
}

impl ChannelScope {
    pub fn for_role(role: Role, granted: impl IntoIterator<Item = i64>) -> Self {
        if role.is_admin() { ChannelScope::All } else { ChannelScope::Only(granted.into_iter().collect()) }
    }

    pub fn allows(&self, channel_instance_id: i64) -> bool {
        match self {
            ChannelScope::All => true,
            ChannelScope::Only(set) => set.contains(&channel_instance_id),
        }
    }

    /// The explicit list, or `None` for "every channel".
    pub fn ids(&self) -> Option<Vec<i64>> {
        match self {
            ChannelScope::All => None,
            ChannelScope::Only(set) => Some(set.iter().copied().collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_see_everything_agents_only_their_channels() {
        assert_eq!(ChannelScope::for_role(Role::Admin, [1]), ChannelScope::All);
        assert_eq!(ChannelScope::for_role(Role::SuperAdmin, []), ChannelScope::All);
        let scope = ChannelScope::for_role(Role::Agent, [3, 5]);
        assert!(scope.allows(3) && scope.allows(5));
        assert!(!scope.allows(4));
        assert_eq!(scope.ids(), Some(vec![3, 5]));
        assert!(!ChannelScope::for_role(Role::Agent, []).allows(1));
    }

    #[test]
    fn only_super_admins_grant_super_admin() {
        assert!(Role::SuperAdmin.may_grant(Role::SuperAdmin));
        assert!(!Role::Admin.may_grant(Role::SuperAdmin));
        assert!(Role::Admin.may_grant(Role::Admin));
        assert!(!Role::Agent.may_grant(Role::Agent));
    }
}
