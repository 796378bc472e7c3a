//! Open sockets follow who their agent is (issue #13): after a role change, a deactivation, a
//! sign-out, a revoked API token, a password change or new channel access, each socket of that
//! agent re-reads its credential from the database and keeps going, narrows or widens its scope,
//! or closes with a documented code (`docs/realtime.md`).
//!
//! How a socket learns it must re-check, on every node:
//!
//! - every such change bumps the agent's `identity_version` in its own transaction, and the
//!   handler announces it on the bus (`BusEvent::Access`), so sockets re-check at once;
//! - the bus may drop: each node's hub also reads the versions of the agents with sockets there
//!   every second ([`super::hub`]) and announces what changed to its own sockets;
//! - a socket re-checks once right after it subscribed, for a change committed between its
//!   upgrade's authentication and that moment (reading the version first and handing it to the
//!   hub as its baseline), and when its session's expiry time has passed.
//!
//! This module holds the decision ([`judge`], pure) and the read it decides on ([`standing`]).
//! It never writes.

use crate::auth::{Credential, Principal};
use crate::domain::{ChannelScope, Role};
use crate::store::{self, Store, StoreResult};

/// Close code: the socket's credential ended — signed out, session ended by a password change,
/// API token revoked, agent deactivated. Sign in again; reconnecting with it is refused.
pub const CREDENTIALS_ENDED: u16 = 4001;
/// Close code: the agent's role changed. Reconnect (and reload what depends on the role).
pub const ROLE_CHANGED: u16 = 4003;

/// What the socket's credential is worth now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// No such session or token any more, or its agent is inactive.
    Ended,
    Valid {
        name: String,
        role: Role,
        scope: ChannelScope,
        /// When a session ends by itself (API tokens do not expire).
        expires_at: Option<chrono::NaiveDateTime>,
    },
}

/// What a socket does after a re-check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing that matters changed (a new name is taken over silently).
    Keep,
    /// Same role, other channel access: filter by `scope` from now on (no close).
    Rescope(ChannelScope),
    /// Close with this code and reason.
    Close { code: u16, error: &'static str, message: &'static str },
}

/// Read what `credential` is worth now, from the database (never from a cache).
pub async fn standing(store: &Store, credential: &Credential) -> StoreResult<Standing> {
    let found = match credential {
        Credential::Session { token_hash, .. } => {
            store::auth::session(store, token_hash).await?.map(|(s, a)| (a, Some(s.expires_at)))
        }
        Credential::ApiToken { id } => store::auth::token_by_id(store, *id).await?.map(|(_, a)| (a, None)),
    };
    let Some((agent, expires_at)) = found else { return Ok(Standing::Ended) };
    let role = agent.role;
    let scope = if role.is_admin() {
        ChannelScope::All
    } else {
        ChannelScope::for_role(role, store::agents::channel_ids(store, agent.id).await?)
    };
    Ok(Standing::Valid { name: agent.name, role, scope, expires_at })
}

/// Decide what a socket acting as `p` does now that its credential stands as `now`.
pub fn judge(p: &Principal, now: &Standing) -> Verdict {
    match now {
        Standing::Ended => Verdict::Close {
            code: CREDENTIALS_ENDED,
            error: "credentials_ended",
            message: "this session or API token has ended; sign in again",
        },
        Standing::Valid { role, .. } if *role != p.role => {
            Verdict::Close { code: ROLE_CHANGED, error: "role_changed", message: "your role changed; reconnect" }
        }
        Standing::Valid { scope, .. } if *scope != p.scope => Verdict::Rescope(scope.clone()),
        Standing::Valid { .. } => Verdict::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, scope: ChannelScope) -> Principal {
        Principal {
            agent_id: 1,
            name: "Ann".into(),
            email: "ann@example.com".into(),
            role,
            scope,
            credential: Credential::ApiToken { id: 1 },
        }
    }

    fn only(ids: &[i64]) -> ChannelScope {
        ChannelScope::Only(ids.iter().copied().collect())
    }

    fn valid(role: Role, scope: ChannelScope) -> Standing {
        Standing::Valid { name: "Ann".into(), role, scope, expires_at: None }
    }

    #[test]
    fn an_ended_credential_closes_with_credentials_ended() {
        for role in [Role::SuperAdmin, Role::Admin, Role::Agent] {
            let v = judge(&principal(role, ChannelScope::All), &Standing::Ended);
            assert!(matches!(v, Verdict::Close { code: CREDENTIALS_ENDED, .. }), "{v:?}");
        }
    }

    #[test]
    fn a_role_change_closes_even_when_the_scope_looks_the_same() {
        let demoted = judge(&principal(Role::Admin, ChannelScope::All), &valid(Role::Agent, only(&[])));
        assert!(matches!(demoted, Verdict::Close { code: ROLE_CHANGED, .. }), "{demoted:?}");
        let super_to_admin =
            judge(&principal(Role::SuperAdmin, ChannelScope::All), &valid(Role::Admin, ChannelScope::All));
        assert!(matches!(super_to_admin, Verdict::Close { code: ROLE_CHANGED, .. }));
        let promoted = judge(&principal(Role::Agent, only(&[1])), &valid(Role::Admin, ChannelScope::All));
        assert!(matches!(promoted, Verdict::Close { code: ROLE_CHANGED, .. }));
    }

    #[test]
    fn new_channel_access_rescopes_without_closing() {
        assert_eq!(
            judge(&principal(Role::Agent, only(&[1, 2])), &valid(Role::Agent, only(&[2]))),
            Verdict::Rescope(only(&[2]))
        );
        assert_eq!(
            judge(&principal(Role::Agent, only(&[])), &valid(Role::Agent, only(&[3]))),
            Verdict::Rescope(only(&[3]))
        );
        assert_eq!(judge(&principal(Role::Agent, only(&[3])), &valid(Role::Agent, only(&[3]))), Verdict::Keep);
        assert_eq!(
            judge(&principal(Role::Admin, ChannelScope::All), &valid(Role::Admin, ChannelScope::All)),
            Verdict::Keep
        );
    }
}
