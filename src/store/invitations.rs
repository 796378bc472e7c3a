//! Agent invitations and the first-run checklist (issue #17 item 9).
//!
//! An admin invites a teammate by email: the agent row is created without a password, with an invitation whose
//! token only its SHA-256 is stored (the link is shown once). The invited person sets their password through the
//! link: single use (a conditional update, so two requests at once cannot both use it), until it expires; a new
//! invitation of the same agent replaces the older ones. The checklist is read from what the install holds
//! (channels, teammates, an answered conversation) plus a dismissed flag kept in `counters`.
//!
//! The invitation mail: when a mailbox is enabled, the invitation's transaction also queues an outbox row
//! ([`INVITATION_EMAIL`]) that carries the link's token *sealed* with the install's secret key (never in the clear,
//! and the database alone still cannot produce a working link); the dispatcher opens it with [`for_mail`], which
//! sends nothing for an invitation that was replaced, used or has expired since.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;

use super::audit::{self, Actor};
use super::models::NewDelivery;
use super::models::{Agent, NewAgent};
use super::schema::{agent_invitations, agents, channel_instances, counters, messages, outbox};
use super::{Store, StoreError, StoreResult, Tx, now};
use crate::db;
use crate::domain::{ChannelKind, Direction, Role};

/// Outbox kind of the invitation mail (sent by the dispatcher's `Notify` route).
pub const INVITATION_EMAIL: &str = "email.invitation";

/// The counter row that records an admin dismissed the first-run checklist.
const DISMISSED: &str = "onboarding_dismissed";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = agent_invitations)]
pub struct Invitation {
    pub id: i64,
    pub agent_id: i64,
    pub invited_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
}

/// Who to invite.
pub struct Invite {
    pub email: String,
    pub name: String,
    pub role: Role,
    /// SHA-256 of the link's token.
    pub token_hash: String,
    /// The link's token itself: kept only sealed, in the invitation mail's outbox row.
    pub token: String,
    pub expires_at: NaiveDateTime,
}

/// An invitation made: the agent, the invitation, and whether its mail was queued (a mailbox is enabled).
pub struct Invited {
    pub agent: Agent,
    pub invitation: Invitation,
    pub mailed: bool,
}

/// The sealed part of an invitation mail's outbox row.
#[derive(serde::Serialize, serde::Deserialize)]
struct MailPayload {
    invitation_id: i64,
    token: String,
}

/// What the invitation mail says, read when it is sent.
pub struct InvitationMail {
    pub agent: Agent,
    /// The inviting admin's name, when they still exist.
    pub invited_by: Option<String>,
    pub token: String,
    pub expires_at: NaiveDateTime,
}

/// The link an invited person opens: the dashboard's `/invite/{token}` page.
pub fn link(public_url: &str, token: &str) -> String {
    format!("{}/invite/{token}", public_url.trim_end_matches('/'))
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No invitation has this token (never issued, altered, replaced by a newer one, or its agent removed).
    Unknown,
    Expired,
    Used,
    /// The agent was deactivated since.
    Inactive,
}

/// Whether an invitation can still be used at `t`.
pub fn judge(inv: &Invitation, agent_active: bool, t: NaiveDateTime) -> Result<(), Refusal> {
    if inv.used_at.is_some() {
        Err(Refusal::Used)
    } else if inv.expires_at <= t {
        Err(Refusal::Expired)
    } else if !agent_active {
        Err(Refusal::Inactive)
    } else {
        Ok(())
    }
}

/// Invite `input.email`: a new agent without a password, or an existing one who has none yet (invited before and
/// not signed up); an agent who has a password is a conflict. Older invitations of the agent stop working.
pub async fn invite(store: &Store, input: Invite, actor: Actor) -> StoreResult<Invited> {
    store
        .run(move |store| async move {
            let sealed = store.secrets()?.seal(&input.token);
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let existing: Option<Agent> = db!(
                    tx,
                    agents::table
                        .filter(agents::email.eq(&input.email))
                        .select(Agent::as_select())
                        .first(tx)
                        .await
                        .optional()
                )?;
                let agent = match existing {
                    Some(a) if a.password_hash.is_some() => {
                        return Err(StoreError::Conflict(format!(
                            "{} already has an account; they can sign in",
                            input.email
                        )));
                    }
                    Some(a) => a,
                    None => {
                        let new = NewAgent {
                            email: &input.email,
                            name: &input.name,
                            password_hash: None,
                            role: input.role,
                            active: true,
                            created_at: t,
                            updated_at: t,
                        };
                        let a: Agent = db!(
                            tx,
                            diesel::insert_into(agents::table)
                                .values(&new)
                                .returning(Agent::as_returning())
                                .get_result(tx)
                                .await
                        )?;
                        let details = json!({"email": a.email, "role": a.role});
                        audit::write(tx, audit::entry(actor, "agent.create", "agent", Some(a.id), details)).await?;
                        a
                    }
                };
                db!(
                    tx,
                    diesel::delete(agent_invitations::table.filter(agent_invitations::agent_id.eq(agent.id)))
                        .execute(tx)
                        .await
                )?;
                let invited_by = actor.agent_id();
                let invitation: Invitation = db!(
                    tx,
                    diesel::insert_into(agent_invitations::table)
                        .values((
                            agent_invitations::agent_id.eq(agent.id),
                            agent_invitations::token_hash.eq(&input.token_hash),
                            agent_invitations::invited_by.eq(invited_by),
                            agent_invitations::created_at.eq(t),
                            agent_invitations::expires_at.eq(input.expires_at),
                        ))
                        .returning(Invitation::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let mailbox: Option<i64> = db!(
                    tx,
                    channel_instances::table
                        .filter(channel_instances::kind.eq(ChannelKind::Email))
                        .filter(channel_instances::enabled.eq(true))
                        .order(channel_instances::id)
                        .select(channel_instances::id)
                        .first(tx)
                        .await
                        .optional()
                )?;
                if let Some(mailbox) = mailbox {
                    let payload = MailPayload { invitation_id: invitation.id, token: sealed.into_string() };
                    let delivery = NewDelivery {
                        delivery_id: uuid::Uuid::new_v4().to_string(),
                        channel_instance_id: mailbox,
                        conversation_id: None,
                        message_id: None,
                        kind: INVITATION_EMAIL,
                        payload: serde_json::json!(payload).to_string(),
                        state: "pending",
                        attempts: 0,
                        next_attempt_at: t,
                        created_at: t,
                    };
                    db!(tx, diesel::insert_into(outbox::table).values(&delivery).execute(tx).await)?;
                }
                let details =
                    json!({"email": agent.email, "expires_at": input.expires_at, "mailed": mailbox.is_some()});
                audit::write(tx, audit::entry(actor, "agent.invite", "agent", Some(agent.id), details)).await?;
                Ok(Invited { agent, invitation, mailed: mailbox.is_some() })
            })
            .await
        })
        .await
}

/// What an invitation mail's outbox `payload` says, opened: `None` when the invitation was replaced, used or
/// has expired since it was queued (the mail is then not sent), or its agent was deactivated.
pub async fn for_mail(store: &Store, payload: String) -> StoreResult<Option<InvitationMail>> {
    store
        .run(move |store| async move {
            let (p, token) = store.open_payload(&payload, "invitation mail", |p: &MailPayload| p.token.as_str())?;
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let inv: Option<Invitation> = db!(
                tx,
                agent_invitations::table
                    .find(p.invitation_id)
                    .select(Invitation::as_select())
                    .first(tx)
                    .await
                    .optional()
            )?;
            let Some(inv) = inv else { return Ok(None) };
            let agent: Agent = db!(tx, agents::table.find(inv.agent_id).select(Agent::as_select()).first(tx).await)?;
            if judge(&inv, agent.active, now()).is_err() {
                return Ok(None);
            }
            let invited_by: Option<String> = match inv.invited_by {
                Some(id) => db!(tx, agents::table.find(id).select(agents::name).first(tx).await.optional())?,
                None => None,
            };
            Ok(Some(InvitationMail { agent, invited_by, token, expires_at: inv.expires_at }))
        })
        .await
}

/// The invitation of a token (by its hash) with its agent.
async fn by_token(tx: &mut Tx<'_>, token_hash: &str) -> StoreResult<Option<(Invitation, Agent)>> {
    let inv: Option<Invitation> = db!(
        tx,
        agent_invitations::table
            .filter(agent_invitations::token_hash.eq(token_hash))
            .select(Invitation::as_select())
            .first(tx)
            .await
            .optional()
    )?;
    let Some(inv) = inv else { return Ok(None) };
    let agent: Agent = db!(tx, agents::table.find(inv.agent_id).select(Agent::as_select()).first(tx).await)?;
    Ok(Some((inv, agent)))
}

/// The invitation of a token and its agent, judged now.
pub async fn find(store: &Store, token_hash: String) -> StoreResult<Result<(Invitation, Agent), Refusal>> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let found = by_token(tx, &token_hash).await?;
            Ok(match found {
                None => Err(Refusal::Unknown),
                Some((inv, agent)) => judge(&inv, agent.active, now()).map(|()| (inv, agent)),
            })
        })
        .await
}

/// Use the invitation of a token: the agent's password is set and the invitation used, in one transaction. The
/// agent's identity version rises (sockets re-check, as after any password change).
pub async fn accept(store: &Store, token_hash: String, password_hash: String) -> StoreResult<Result<Agent, Refusal>> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                let t = now();
                let found = by_token(tx, &token_hash).await?;
                let Some((inv, agent)) = found else { return Ok(Err(Refusal::Unknown)) };
                if let Err(why) = judge(&inv, agent.active, t) {
                    return Ok(Err(why));
                }
                let unused = agent_invitations::table
                    .filter(agent_invitations::id.eq(inv.id))
                    .filter(agent_invitations::used_at.is_null());
                let n = db!(tx, diesel::update(unused).set(agent_invitations::used_at.eq(Some(t))).execute(tx).await)?;
                if n != 1 {
                    return Ok(Err(Refusal::Used));
                }
                let agent: Agent = db!(
                    tx,
                    diesel::update(agents::table.find(inv.agent_id))
                        .set((
                            agents::password_hash.eq(Some(&password_hash)),
                            agents::updated_at.eq(t),
                            agents::identity_version.eq(agents::identity_version + 1),
                        ))
                        .returning(Agent::as_returning())
                        .get_result(tx)
                        .await
                )?;
                let details = json!({"invitation_id": inv.id});
                audit::write(
                    tx,
                    audit::entry(Actor::Agent(agent.id), "agent.accept_invitation", "agent", Some(agent.id), details),
                )
                .await?;
                Ok(Ok(agent))
            })
            .await
        })
        .await
}

/// What the first-run checklist is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// A channel exists.
    pub channel: bool,
    /// More than one agent exists (invited or created).
    pub teammate: bool,
    /// An agent answered a customer (an outgoing message exists).
    pub answered: bool,
    pub dismissed: bool,
}

pub async fn progress(store: &Store) -> StoreResult<Progress> {
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            // The portal's web channel is made by the portal itself (issue #18): it is not a channel an admin connected.
            let channels: i64 = db!(
                tx,
                channel_instances::table
                    .filter(channel_instances::kind.ne(crate::domain::ChannelKind::Web))
                    .count()
                    .get_result(tx)
                    .await
            )?;
            let agents: i64 = db!(tx, agents::table.count().get_result(tx).await)?;
            let answered: Option<i64> = db!(
                tx,
                messages::table
                    .filter(messages::direction.eq(Direction::Out))
                    .select(messages::id)
                    .first(tx)
                    .await
                    .optional()
            )?;
            let dismissed: Option<i64> =
                db!(tx, counters::table.find(DISMISSED).select(counters::value).first(tx).await.optional())?;
            Ok(Progress {
                channel: channels > 0,
                teammate: agents > 1,
                answered: answered.is_some(),
                dismissed: dismissed.is_some_and(|v| v > 0),
            })
        })
        .await
}

/// Hide the checklist for every admin of this install.
pub async fn dismiss(store: &Store, actor: Actor) -> StoreResult<()> {
    store
        .run(move |store| async move {
            let mut conn = store.write().await?;
            conn.transaction(async |tx| {
                db!(
                    tx,
                    diesel::insert_into(counters::table)
                        .values((counters::name.eq(DISMISSED), counters::value.eq(1i64)))
                        .on_conflict(counters::name)
                        .do_update()
                        .set(counters::value.eq(1i64))
                        .execute(tx)
                        .await
                )?;
                audit::write(tx, audit::entry(actor, "onboarding.dismiss", "install", None, json!({}))).await?;
                Ok(())
            })
            .await
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap().naive_utc()
    }

    #[test]
    fn an_invitation_is_good_once_before_it_expires_for_an_active_agent() {
        let inv =
            Invitation { id: 1, agent_id: 2, invited_by: None, created_at: at(0), expires_at: at(100), used_at: None };
        assert_eq!(judge(&inv, true, at(99)), Ok(()));
        assert_eq!(judge(&inv, true, at(100)), Err(Refusal::Expired));
        assert_eq!(judge(&inv, false, at(1)), Err(Refusal::Inactive));
        let used = Invitation { used_at: Some(at(5)), ..inv };
        assert_eq!(judge(&used, true, at(6)), Err(Refusal::Used), "used wins over expired and inactive");
    }
}
