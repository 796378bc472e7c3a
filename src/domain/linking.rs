//! Which customer an integrator's contact belongs to (CC-4…CC-6).
//!
//! The integrator names a contact by its own id on a channel (`user_custom_id`) and may add an
//! email and/or phone. An email or phone already owned by a customer links the contact to that
//! customer — unless that customer already has a *different* id on the same channel, in which
//! case the two are different people sharing an address, and the contact gets its own customer.

/// What the store found for one email or phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub customer_id: i64,
    /// The owner already has another external id on this same channel instance.
    pub has_other_id_on_channel: bool,
}

/// What the store found before deciding.
#[derive(Debug, Clone, Copy, Default)]
pub struct Found {
    /// The customer already known by this external id on this channel.
    pub by_external_id: Option<i64>,
    pub email_owner: Option<Owner>,
    pub phone_owner: Option<Owner>,
}

/// The decision: which customer, and which of the given email/phone to attach to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// `None`: create a new customer.
    pub customer_id: Option<i64>,
    /// Add the external id as a new identity (it was not known yet).
    pub add_external_id: bool,
    pub add_email: bool,
    pub add_phone: bool,
}

pub fn decide(found: Found) -> Link {
    // An id the channel already knows always wins: the integrator's id is authoritative.
    let customer_id = found.by_external_id.or_else(|| {
        [found.email_owner, found.phone_owner]
            .into_iter()
            .flatten()
            .find(|o| !o.has_other_id_on_channel)
            .map(|o| o.customer_id)
    });
    // An address is attached only when nobody owns it yet.
    Link {
        customer_id,
        add_external_id: found.by_external_id.is_none(),
        add_email: found.email_owner.is_none(),
        add_phone: found.phone_owner.is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(id: i64, other: bool) -> Option<Owner> {
        Some(Owner { customer_id: id, has_other_id_on_channel: other })
    }

    #[test]
    fn cc_6_new_contact_without_addresses_is_a_new_customer() {
        let link = decide(Found::default());
        assert_eq!(link, Link { customer_id: None, add_external_id: true, add_email: true, add_phone: true });
    }

    #[test]
    fn cc_6_known_external_id_wins_over_addresses() {
        let link = decide(Found { by_external_id: Some(7), email_owner: owner(9, false), phone_owner: None });
        assert_eq!(link.customer_id, Some(7));
        assert!(!link.add_external_id);
        assert!(!link.add_email, "the email belongs to customer 9 and stays there");
        assert!(link.add_phone);
    }

    #[test]
    fn cc_6_email_of_existing_customer_links() {
        let link = decide(Found { by_external_id: None, email_owner: owner(4, false), phone_owner: None });
        assert_eq!(link, Link { customer_id: Some(4), add_external_id: true, add_email: false, add_phone: true });
    }

    #[test]
    fn cc_6_phone_links_when_email_is_unknown() {
        let link = decide(Found { by_external_id: None, email_owner: None, phone_owner: owner(5, false) });
        assert_eq!(link.customer_id, Some(5));
        assert!(link.add_email && !link.add_phone);
    }

    #[test]
    fn cc_6_email_already_linked_to_another_id_of_the_same_channel_does_not_link() {
        let link = decide(Found { by_external_id: None, email_owner: owner(4, true), phone_owner: None });
        assert_eq!(link.customer_id, None, "a new customer");
        assert!(!link.add_email, "and the address stays with its owner");
        assert!(link.add_external_id);
    }

    #[test]
    fn cc_6_falls_back_to_the_phone_owner_when_the_email_owner_is_taken() {
        let link = decide(Found { by_external_id: None, email_owner: owner(4, true), phone_owner: owner(6, false) });
        assert_eq!(link.customer_id, Some(6));
    }
}
