//! Email notifications (issue #18, NT-1…NT-13), the pure part: the instance-wide settings as one
//! struct, the notification templates' kinds, who receives which mail for a change ([`decide`]),
//! and the NT-9 rule for files served to customers.
//!
//! The store's change-feed consumer (`store::mail_notifications`) reads what a change recorded and
//! the facts it needs (the category's agents who may see the channel, the admins, the submitter,
//! the subscribers), asks [`decide`], and writes one outbox row per mail. Nothing here knows SQL,
//! SMTP or HTTP.

/// A notification mail, by the template it is written with (TP-1): the one set, owned by `domain::templates`.
pub use super::templates::TemplateKind;

/// The instance-wide notification settings (one stored row), each named after its requirement. Their serde names
/// are the API's and the audit log's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// NT-1: the master switch. Off: no notification mail at all (agent replies still go).
    pub enabled: bool,
    /// NT-2: "ticket closed" to the submitter.
    pub ticket_closed: bool,
    /// NT-3: confirmation to the submitter of a ticket that came by email.
    pub ticket_confirmation: bool,
    /// NT-4: every new ticket to all admins.
    pub new_ticket_admins: bool,
    /// NT-5: new tickets (and tickets moved in) to the category's agents.
    pub new_ticket_category: bool,
    /// NT-6: a customer's message to all agents of the category, assigned or not.
    pub customer_update_category: bool,
    /// NT-7: a KB article changed, to the category's agents (no KB yet: nothing sends it).
    pub kb_article_category: bool,
    /// NT-8: another agent took the ticket, to the category's other agents.
    pub ticket_taken_category: bool,
    /// NT-9: attachments in notifications; off also stops serving mail's inline images to customers.
    pub include_attachments: bool,
    /// NT-10: auto-login links in mail to customers (never to agents).
    pub auto_login_links: bool,
    /// NT-11: one mail to all subscribers in Cc instead of one each (drops auto-login and rating links).
    pub cc_subscribers: bool,
    /// NT-12: a customer's email reply is forwarded to technicians only, never to the other subscribers.
    pub customer_updates_technicians_only: bool,
    /// NT-13: a welcome mail for a new customer account.
    pub welcome_email: bool,
}

impl Default for NotificationSettings {
    /// A new install, as the seed's product ships: NT-1…NT-10 and NT-13 on, NT-11 and NT-12 off.
    fn default() -> Self {
        NotificationSettings {
            enabled: true,
            ticket_closed: true,
            ticket_confirmation: true,
            new_ticket_admins: true,
            new_ticket_category: true,
            customer_update_category: true,
            kb_article_category: true,
            ticket_taken_category: true,
            include_attachments: true,
            auto_login_links: true,
            cc_subscribers: false,
            customer_updates_technicians_only: false,
            welcome_email: true,
        }
    }
}

impl NotificationSettings {
    /// These settings with `changes` (a setting's name → its new value) applied. A name that is no setting or a
    /// value that is not a boolean is refused, saying which.
    pub fn with_changes(self, changes: &serde_json::Map<String, serde_json::Value>) -> Result<Self, serde_json::Error> {
        let mut all = self.by_name();
        all.extend(changes.iter().map(|(k, v)| (k.clone(), v.clone())));
        serde_json::from_value(serde_json::Value::Object(all))
    }

    /// The settings whose value differs from `before`'s: name → (before, now), in name order.
    pub fn changed_since(&self, before: &Self) -> Vec<(String, bool, bool)> {
        let (was, now) = (before.by_name(), self.by_name());
        let mut changed: Vec<(String, bool, bool)> = now
            .into_iter()
            .filter_map(|(k, v)| {
                let (old, new) = (was.get(&k)?.as_bool()?, v.as_bool()?);
                (old != new).then_some((k, old, new))
            })
            .collect();
        changed.sort();
        changed
    }

    fn by_name(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => unreachable!("a struct of booleans serialises to an object"),
        }
    }

    /// Whether a file that came inline in a mail (a `cid:` image) may be served to a customer (NT-9: not when
    /// attachments are left out of notifications). Other files of the customer's own ticket are not affected.
    pub fn serves_inline_mail_images_to_customers(&self) -> bool {
        self.include_attachments
    }

    /// Whether a notification to `recipient` may carry an auto-login link (NT-10: customers only; NT-11's CC mode
    /// drops them, everyone gets the same ordinary link).
    pub fn auto_login_for(&self, recipient: &Recipient) -> bool {
        self.auto_login_links && !self.cc_subscribers && matches!(recipient, Recipient::Customer(_))
    }

    /// Whether an agent's reply by mail carries the ticket's subscribers in Cc (NT-11). With notifications on and
    /// NT-11 off (the default) the reply goes to the customer alone and each subscriber gets a copy of their own
    /// (`ticket_updated`); with NT-11 on, or notifications off altogether, the reply is one mail with the
    /// subscribers in Cc (as before #18).
    pub fn reply_carries_subscribers_in_cc(&self) -> bool {
        !self.enabled || self.cc_subscribers
    }
}

/// Who a notification mail goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// An agent (by id; their address is read when the mail is written).
    Agent(i64),
    /// A customer, the ticket's submitter (by id; their email identity).
    Customer(i64),
    /// A subscriber of the ticket by address (EM-10), one mail each.
    Address(String),
    /// All these subscribers in one mail, in Cc (NT-11's CC mode).
    Addresses(Vec<String>),
}

/// Who made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Agent(i64),
    Customer(i64),
    /// Routing, a timer, the server itself.
    System,
}

/// A change as the mail consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailChange {
    /// A new ticket (live chats are not tickets and notify nobody by mail); `by_email`: it came as a mail.
    Created { by_email: bool },
    /// A ticket's properties changed: moved into another category, assigned to `taken_by`, closed.
    Updated { moved: bool, taken_by: Option<i64>, closed: bool },
    /// A customer's message on a ticket; `by_email`: it came as a mail (from `from_address`).
    CustomerMessage { by_email: bool },
    /// An agent's reply to the customer (sent by the reply path itself; NT-11 copies to subscribers).
    AgentReply,
}

/// What the consumer read for one change (the caller filters agents by channel access: an agent who may not
/// see the ticket's channel is never in these lists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The submitter, when they have an email address.
    pub submitter: Option<i64>,
    /// The submitter's address (so a subscriber list naming it does not mail them twice).
    pub submitter_address: Option<String>,
    /// Active admins.
    pub admins: Vec<i64>,
    /// Active agents of the ticket's category (team members) now.
    pub category_agents: Vec<i64>,
    /// Of a move: the agents of the category it left.
    pub old_category_agents: Vec<i64>,
    /// The assignee now.
    pub assignee: Option<i64>,
    /// The ticket's subscribers' addresses (EM-10), lower-case.
    pub subscribers: Vec<String>,
    /// The address of whoever made the change (an agent's or the writing customer's), lower-case.
    pub actor_address: Option<String>,
}

/// Who is mailed about `change`, with which template: never the one who made it, nothing with NT-1 off, each
/// recipient at most once per change (the first reason wins: admin before category).
pub fn decide(
    change: &MailChange,
    actor: Actor,
    settings: &NotificationSettings,
    facts: &Facts,
) -> Vec<(Recipient, TemplateKind)> {
    let mut out: Vec<(Recipient, TemplateKind)> = Vec::new();
    if !settings.enabled {
        return out;
    }
    let not_actor_agent = |a: &i64| actor != Actor::Agent(*a);
    let push = |out: &mut Vec<(Recipient, TemplateKind)>, r: Recipient, k: TemplateKind| {
        if !out.iter().any(|(have, _)| *have == r) {
            out.push((r, k));
        }
    };
    let agents = |out: &mut Vec<(Recipient, TemplateKind)>, ids: &[i64], k: TemplateKind| {
        for a in ids.iter().filter(|a| not_actor_agent(a)) {
            push(out, Recipient::Agent(*a), k);
        }
    };
    let submitter = facts.submitter.filter(|s| actor != Actor::Customer(*s));
    match *change {
        MailChange::Created { by_email } => {
            if let (true, true, Some(s)) = (settings.ticket_confirmation, by_email, facts.submitter) {
                // The submitter made this change, yet the confirmation is for them.
                push(&mut out, Recipient::Customer(s), TemplateKind::TicketConfirmation);
            }
            if settings.new_ticket_admins {
                agents(&mut out, &facts.admins, TemplateKind::NewTicketAdmin);
            }
            if settings.new_ticket_category {
                agents(&mut out, &facts.category_agents, TemplateKind::NewTicketCategory);
            }
        }
        MailChange::Updated { moved, taken_by, closed } => {
            if moved && settings.new_ticket_category {
                let new: Vec<i64> =
                    facts.category_agents.iter().copied().filter(|a| !facts.old_category_agents.contains(a)).collect();
                agents(&mut out, &new, TemplateKind::NewTicketCategory);
            }
            if let (Some(taker), true) = (taken_by, settings.ticket_taken_category) {
                let others: Vec<i64> = facts.category_agents.iter().copied().filter(|a| *a != taker).collect();
                agents(&mut out, &others, TemplateKind::TicketTaken);
            }
            if let (true, true, Some(s)) = (closed, settings.ticket_closed, submitter) {
                push(&mut out, Recipient::Customer(s), TemplateKind::TicketClosed);
            }
        }
        MailChange::CustomerMessage { by_email } => {
            if settings.customer_update_category {
                agents(&mut out, &facts.category_agents, TemplateKind::CustomerUpdate);
            }
            if by_email {
                if settings.customer_updates_technicians_only {
                    // NT-12: forwarded to the technician working on it, never to the other subscribers.
                    if let Some(a) = facts.assignee {
                        agents(&mut out, &[a], TemplateKind::TicketUpdated);
                    }
                } else {
                    forward(&mut out, settings, facts, submitter);
                }
            }
        }
        MailChange::AgentReply => {
            // The reply itself goes to the customer; NT-11 off: each subscriber gets a copy of their own.
            if !settings.reply_carries_subscribers_in_cc() {
                let submitter_address = facts.submitter_address.as_deref().map(str::to_lowercase);
                let to: Vec<String> = others(facts, submitter_address.as_deref());
                for a in to {
                    push(&mut out, Recipient::Address(a), TemplateKind::TicketUpdated);
                }
            }
        }
    }
    out
}

/// The subscribers to mail, lower-case, without the one who made the change and without `skip` (the submitter,
/// mailed as a customer).
fn others(facts: &Facts, skip: Option<&str>) -> Vec<String> {
    let mut v: Vec<String> = facts
        .subscribers
        .iter()
        .map(|s| s.to_lowercase())
        .filter(|s| Some(s.as_str()) != facts.actor_address.as_deref() && Some(s.as_str()) != skip)
        .collect();
    v.dedup();
    v
}

/// A customer's email reply forwarded to the other subscribers (and the submitter when someone else wrote):
/// one mail each, or one Cc mail to all (NT-11).
fn forward(
    out: &mut Vec<(Recipient, TemplateKind)>,
    settings: &NotificationSettings,
    facts: &Facts,
    submitter: Option<i64>,
) {
    let submitter_address = facts.submitter_address.as_deref().map(str::to_lowercase);
    let submitter_wrote = submitter.is_none() || facts.actor_address == submitter_address;
    let mut addresses = others(facts, submitter_address.as_deref());
    if settings.cc_subscribers {
        if let (false, Some(a)) = (submitter_wrote, &submitter_address) {
            addresses.insert(0, a.clone());
        }
        if !addresses.is_empty() {
            out.push((Recipient::Addresses(addresses), TemplateKind::TicketUpdated));
        }
        return;
    }
    if let (false, Some(s)) = (submitter_wrote, submitter) {
        out.push((Recipient::Customer(s), TemplateKind::TicketUpdated));
    }
    for a in addresses {
        out.push((Recipient::Address(a), TemplateKind::TicketUpdated));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: i64 = 1;
    const ALICE: i64 = 2;
    const BOB: i64 = 3;
    const CAROL: i64 = 4;
    const JANE: i64 = 50;

    fn facts() -> Facts {
        Facts {
            submitter: Some(JANE),
            submitter_address: Some("jane@customer.test".into()),
            admins: vec![ADMIN],
            category_agents: vec![ALICE, BOB],
            old_category_agents: vec![],
            assignee: Some(ALICE),
            subscribers: vec!["jane@customer.test".into(), "sub@customer.test".into()],
            actor_address: None,
        }
    }

    fn on() -> NotificationSettings {
        NotificationSettings::default()
    }

    fn with(f: impl FnOnce(&mut NotificationSettings)) -> NotificationSettings {
        let mut s = on();
        f(&mut s);
        s
    }

    use Recipient::{Address, Addresses, Agent, Customer};
    use TemplateKind::*;

    #[test]
    fn defaults_are_the_seeds() {
        let s = on();
        assert!(s.enabled && s.ticket_closed && s.ticket_confirmation && s.new_ticket_admins);
        assert!(s.new_ticket_category && s.customer_update_category && s.kb_article_category);
        assert!(s.ticket_taken_category && s.include_attachments && s.auto_login_links && s.welcome_email);
        assert!(!s.cc_subscribers && !s.customer_updates_technicians_only);
    }

    // covers NT-1
    #[test]
    fn master_switch_off_sends_nothing() {
        let off = with(|s| s.enabled = false);
        for change in [
            MailChange::Created { by_email: true },
            MailChange::Updated { moved: true, taken_by: Some(ALICE), closed: true },
            MailChange::CustomerMessage { by_email: true },
            MailChange::AgentReply,
        ] {
            assert!(decide(&change, Actor::System, &off, &facts()).is_empty(), "{change:?}");
        }
        assert!(off.reply_carries_subscribers_in_cc(), "replies still reach the subscribers, in Cc");
    }

    // covers NT-3, NT-4, NT-5
    #[test]
    fn a_new_ticket() {
        let by_mail = decide(&MailChange::Created { by_email: true }, Actor::Customer(JANE), &on(), &facts());
        assert_eq!(
            by_mail,
            vec![
                (Customer(JANE), TicketConfirmation),
                (Agent(ADMIN), NewTicketAdmin),
                (Agent(ALICE), NewTicketCategory),
                (Agent(BOB), NewTicketCategory),
            ]
        );
        // Not by mail (web, chat, custom channel): no confirmation (NT-3).
        let by_web = decide(&MailChange::Created { by_email: false }, Actor::Customer(JANE), &on(), &facts());
        assert!(!by_web.iter().any(|(_, k)| *k == TicketConfirmation));
        // An agent opening one is not told of it; an admin in the category gets one mail.
        let mut f = facts();
        f.category_agents.push(ADMIN);
        let by_alice = decide(&MailChange::Created { by_email: false }, Actor::Agent(ALICE), &on(), &f);
        assert_eq!(by_alice, vec![(Agent(ADMIN), NewTicketAdmin), (Agent(BOB), NewTicketCategory)]);
        // Each switch alone.
        let no3 = with(|s| s.ticket_confirmation = false);
        assert!(
            !decide(&MailChange::Created { by_email: true }, Actor::System, &no3, &facts())
                .contains(&(Customer(JANE), TicketConfirmation))
        );
        let no4 = with(|s| s.new_ticket_admins = false);
        assert!(
            !decide(&MailChange::Created { by_email: true }, Actor::System, &no4, &facts())
                .iter()
                .any(|(_, k)| *k == NewTicketAdmin)
        );
        let no5 = with(|s| s.new_ticket_category = false);
        assert!(
            !decide(&MailChange::Created { by_email: true }, Actor::System, &no5, &facts())
                .iter()
                .any(|(_, k)| *k == NewTicketCategory)
        );
    }

    // covers NT-5 (a move)
    #[test]
    fn a_move_tells_only_the_new_categorys_agents_who_did_not_see_it() {
        let mut f = facts();
        f.category_agents = vec![ALICE, BOB, CAROL];
        f.old_category_agents = vec![BOB];
        let change = MailChange::Updated { moved: true, taken_by: None, closed: false };
        assert_eq!(
            decide(&change, Actor::Agent(CAROL), &on(), &f),
            vec![(Agent(ALICE), NewTicketCategory)],
            "not Bob (saw it before), not Carol (moved it)"
        );
        assert!(decide(&change, Actor::Agent(CAROL), &with(|s| s.new_ticket_category = false), &f).is_empty());
    }

    // covers NT-6
    #[test]
    fn a_customer_message_tells_every_agent_of_the_category() {
        let change = MailChange::CustomerMessage { by_email: false };
        assert_eq!(
            decide(&change, Actor::Customer(JANE), &on(), &facts()),
            vec![(Agent(ALICE), CustomerUpdate), (Agent(BOB), CustomerUpdate)]
        );
        assert!(
            decide(&change, Actor::Customer(JANE), &with(|s| s.customer_update_category = false), &facts()).is_empty()
        );
    }

    // covers NT-8
    #[test]
    fn taking_a_ticket_tells_the_others() {
        let mut f = facts();
        f.category_agents = vec![ALICE, BOB, CAROL];
        // Bob takes it himself: Alice and Carol are told.
        let change = MailChange::Updated { moved: false, taken_by: Some(BOB), closed: false };
        assert_eq!(
            decide(&change, Actor::Agent(BOB), &on(), &f),
            vec![(Agent(ALICE), TicketTaken), (Agent(CAROL), TicketTaken)]
        );
        // Alice gives it to Bob: Carol is told (not Alice, who did it; not Bob, who is assigned).
        assert_eq!(decide(&change, Actor::Agent(ALICE), &on(), &f), vec![(Agent(CAROL), TicketTaken)]);
        assert!(decide(&change, Actor::Agent(BOB), &with(|s| s.ticket_taken_category = false), &f).is_empty());
    }

    // covers NT-2
    #[test]
    fn closing_tells_the_submitter() {
        let change = MailChange::Updated { moved: false, taken_by: None, closed: true };
        assert_eq!(decide(&change, Actor::Agent(ALICE), &on(), &facts()), vec![(Customer(JANE), TicketClosed)]);
        assert!(decide(&change, Actor::Customer(JANE), &on(), &facts()).is_empty(), "not when she closed it herself");
        assert!(decide(&change, Actor::Agent(ALICE), &with(|s| s.ticket_closed = false), &facts()).is_empty());
        let mut f = facts();
        f.submitter = None;
        assert!(decide(&change, Actor::Agent(ALICE), &on(), &f).is_empty(), "no address, no mail");
    }

    // covers NT-11, NT-12
    #[test]
    fn a_customers_mail_is_forwarded_to_the_other_subscribers() {
        let no_category = with(|s| s.customer_update_category = false);
        let change = MailChange::CustomerMessage { by_email: true };
        // Jane writes: the other subscriber gets it, one mail each.
        let mut f = facts();
        f.actor_address = Some("jane@customer.test".into());
        assert_eq!(
            decide(&change, Actor::Customer(JANE), &no_category, &f),
            vec![(Address("sub@customer.test".into()), TicketUpdated)]
        );
        // The subscriber writes: Jane (as the submitter) gets it.
        let mut f = facts();
        f.actor_address = Some("sub@customer.test".into());
        assert_eq!(decide(&change, Actor::Customer(77), &no_category, &f), vec![(Customer(JANE), TicketUpdated)]);
        // NT-11: one Cc mail to all.
        let cc = with(|s| {
            s.customer_update_category = false;
            s.cc_subscribers = true;
        });
        let mut f = facts();
        f.subscribers.push("third@customer.test".into());
        f.actor_address = Some("sub@customer.test".into());
        assert_eq!(
            decide(&change, Actor::Customer(77), &cc, &f),
            vec![(Addresses(vec!["jane@customer.test".into(), "third@customer.test".into()]), TicketUpdated)]
        );
        // NT-12: technicians only — the assignee, never the subscribers.
        let tech = with(|s| {
            s.customer_update_category = false;
            s.customer_updates_technicians_only = true;
        });
        assert_eq!(decide(&change, Actor::Customer(77), &tech, &f), vec![(Agent(ALICE), TicketUpdated)]);
        // Not by mail: nothing forwarded.
        assert!(
            decide(&MailChange::CustomerMessage { by_email: false }, Actor::Customer(JANE), &no_category, &f)
                .is_empty()
        );
    }

    // covers NT-11 (the reply path)
    #[test]
    fn an_agents_reply_is_copied_to_each_subscriber_unless_cc() {
        let mut f = facts();
        f.subscribers = vec!["jane@customer.test".into(), "sub@customer.test".into(), "alice@desk.test".into()];
        f.actor_address = Some("alice@desk.test".into());
        assert_eq!(
            decide(&MailChange::AgentReply, Actor::Agent(ALICE), &on(), &f),
            vec![(Address("sub@customer.test".into()), TicketUpdated)],
            "not Jane, who gets the reply itself; not Alice, who wrote it"
        );
        let cc = with(|s| s.cc_subscribers = true);
        assert!(decide(&MailChange::AgentReply, Actor::Agent(ALICE), &cc, &f).is_empty());
        assert!(cc.reply_carries_subscribers_in_cc() && !on().reply_carries_subscribers_in_cc());
    }

    // covers NT-9, NT-10
    #[test]
    fn attachments_and_auto_login() {
        assert!(on().serves_inline_mail_images_to_customers());
        assert!(!with(|s| s.include_attachments = false).serves_inline_mail_images_to_customers());
        assert!(on().auto_login_for(&Customer(JANE)));
        assert!(!on().auto_login_for(&Agent(ALICE)), "never for agents");
        assert!(!on().auto_login_for(&Address("x@y.test".into())));
        assert!(!with(|s| s.auto_login_links = false).auto_login_for(&Customer(JANE)));
        assert!(!with(|s| s.cc_subscribers = true).auto_login_for(&Customer(JANE)), "NT-11 drops them");
    }

    #[test]
    fn settings_change_by_name_and_refuse_unknown_names_and_non_booleans() {
        let d = NotificationSettings::default();
        let changes = serde_json::json!({"cc_subscribers": true, "enabled": false});
        let s = d.with_changes(changes.as_object().unwrap()).unwrap();
        assert!(s.cc_subscribers && !s.enabled && s.ticket_closed);
        assert_eq!(
            s.changed_since(&d),
            vec![("cc_subscribers".to_owned(), false, true), ("enabled".to_owned(), true, false)]
        );
        assert!(s.changed_since(&s).is_empty());
        for bad in [serde_json::json!({"no_such_setting": true}), serde_json::json!({"enabled": "yes"})] {
            assert!(d.with_changes(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }
}
