//! An OA's access and refresh tokens (ZL-6): which access token to use, and refreshing it — before it expires (the
//! processor's refresher, on the node that holds the OA's lease) or when Zalo refuses it (the dispatcher, on any
//! node).
//!
//! Zalo's refresh tokens are single use: each refresh returns a new one and spends the old. So:
//! - one refresh at a time, cluster-wide: a node first claims the refresh in the database
//!   (`store::zalo::claim_refresh`, over the tokens' generation); another node that needs one waits for the
//!   claimer's result instead of spending the same refresh token;
//! - the new tokens are committed before they are used, in one statement that replaces the old refresh token by
//!   its successor ([`store::zalo::refreshed`]); a crash after that commit loses nothing (the next start uses
//!   the stored tokens), and the stored refresh token is never dropped before its successor is stored. (A crash
//!   *between Zalo's answer and the commit* loses the new refresh token: Zalo gives no way to recover it; the OA
//!   then needs attention. The window is one database write.)
//! - Zalo refusing the refresh token marks the OA as needing attention, with the reason, until an admin gives new
//!   tokens; the network failing only lets the claim go, to be tried again.

use std::time::Duration;

use super::Settings;
use super::api::{self, ZaloError};
use super::protocol::Refreshed;
use crate::outbound::http_client::HttpClient;
use crate::store::zalo::Tokens;
use crate::store::{self, Store, StoreError};

/// Access tokens are refreshed when less than this is left (Zalo's live 25 hours).
pub const REFRESH_BEFORE: Duration = Duration::from_secs(3600);
/// How long a refresh claim lasts (longer than the OAuth call's time limit).
const CLAIM: Duration = Duration::from_secs(30);
/// How long a node waits for another node's refresh.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(35);
/// How often the store is asked again while waiting.
const POLL: Duration = Duration::from_millis(100);
/// Tries to commit new tokens (the old refresh token is spent: giving up early would lose them).
const COMMIT_TRIES: u32 = 6;

/// Why there is no token to use.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("this Zalo channel has no tokens: connect it with POST /api/v1/zalo-channels")]
    NoTokens,
    /// Zalo refused the refresh token: an admin must give new tokens (the OA needs attention).
    #[error("{0}")]
    Refused(String),
    /// Not now (the network, another node's refresh that did not finish): try again later.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The tokens stored now.
pub async fn current(store: &Store, channel_id: i64) -> Result<Tokens, TokenError> {
    store::zalo::tokens(store, channel_id).await?.ok_or(TokenError::NoTokens)
}

/// Whether the access token should be refreshed now (expiry unknown, or less than [`REFRESH_BEFORE`] left).
pub fn due(tokens: &Tokens, now: chrono::NaiveDateTime) -> bool {
    match tokens.expires_at {
        None => true,
        Some(at) => at - chrono::Duration::from_std(REFRESH_BEFORE).unwrap_or_default() <= now,
    }
}

/// Refresh the tokens `seen` (one node at a time, see the module docs) and return the tokens to use from now on:
/// the new ones, or those another node's refresh (or an admin) stored meanwhile.
pub async fn refresh(
    http: &HttpClient,
    store: &Store,
    channel_id: i64,
    settings: &Settings,
    seen: &Tokens,
) -> Result<Tokens, TokenError> {
    if seen.state == crate::domain::ConnectionState::NeedsAttention {
        // Zalo refused these tokens' refresh already: only an admin's new tokens help.
        return Err(TokenError::Refused(
            seen.reason.clone().unwrap_or_else(|| "Zalo refused the refresh token".into()),
        ));
    }
    let deadline = tokio::time::Instant::now() + WAIT_FOR_OTHER;
    loop {
        let until = store::now() + chrono::Duration::from_std(CLAIM).unwrap_or_default();
        if let Some(claimed) = store::zalo::claim_refresh(store, channel_id, seen.generation, until).await? {
            return spend(http, store, channel_id, settings, claimed).await;
        }
        // Another node is refreshing these tokens, or someone already did.
        let now = current(store, channel_id).await?;
        if now.generation != seen.generation {
            return Ok(now);
        }
        let claim_lapsed = now.refreshing_until.is_none_or(|t| t < store::now());
        if claim_lapsed && now.state == crate::domain::ConnectionState::NeedsAttention {
            return Err(TokenError::Refused(now.reason.unwrap_or_else(|| "Zalo refused the refresh token".into())));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TokenError::Unavailable("another node's token refresh did not finish".into()));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Spend the claimed refresh token and commit its successor before anything uses it.
async fn spend(
    http: &HttpClient,
    store: &Store,
    channel_id: i64,
    settings: &Settings,
    claimed: Tokens,
) -> Result<Tokens, TokenError> {
    let generation = claimed.generation;
    let answer =
        api::refresh(http, &settings.oauth_base_url, &settings.app_id, &settings.app_secret, &claimed.refresh_token)
            .await;
    match answer {
        Ok(Refreshed::Tokens { access_token, refresh_token, expires_in }) => {
            let expires_at = store::now() + chrono::Duration::seconds(expires_in);
            let mut wait = Duration::from_millis(100);
            for attempt in 1..=COMMIT_TRIES {
                match store::zalo::refreshed(store, channel_id, generation, &access_token, &refresh_token, expires_at)
                    .await
                {
                    Ok(true) => {
                        tracing::info!(channel_id, "Zalo access token refreshed");
                        return current(store, channel_id).await;
                    }
                    // An admin gave new tokens meanwhile: theirs win.
                    Ok(false) => return current(store, channel_id).await,
                    Err(e) if attempt < COMMIT_TRIES => {
                        tracing::warn!(channel_id, error = %e, attempt, "cannot store the refreshed Zalo tokens; trying again");
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                    Err(e) => {
                        tracing::error!(channel_id, error = %e, "the refreshed Zalo tokens could not be stored: the OA needs new tokens");
                        return Err(e.into());
                    }
                }
            }
            Err(TokenError::Unavailable("the refreshed tokens could not be stored".into()))
        }
        Ok(Refreshed::Refused { code, description }) => {
            let reason = format!(
                "Zalo refused the refresh token ({code}: {description}): get a new access token and refresh token \
                 in Zalo's API Explorer and give them to this channel"
            );
            tracing::warn!(channel_id, %code, "Zalo refused the refresh token; the channel needs attention");
            store::zalo::refresh_failed(store, channel_id, generation, Some(reason.clone())).await?;
            Err(TokenError::Refused(reason))
        }
        Err(e) => {
            let _ = store::zalo::refresh_failed(store, channel_id, generation, None).await;
            let reason = match &e {
                ZaloError::Refused(why) => format!("the OAuth URL cannot be used: {why}"),
                other => format!("cannot refresh the Zalo access token: {other}"),
            };
            Err(TokenError::Unavailable(reason))
        }
    }
}
