//! Small closed sets stored as text: channel kinds, modes, message directions and sources, priorities.
//!
//! Each is read from and written to the database as itself (diesel `Text` on both backends), so
//! row structs hold the enum, never a string to compare by hand. A stored value outside the set
//! (a damaged row) fails the read with [`BadStoredValue`], which the store answers as
//! `StoreError::BadData` (a 500, never the client's fault).

use std::fmt;

/// Defines a string-backed enum with `as_str`, `FromStr`, `Display`, `ALL`, and the diesel
/// conversions to and from `Text` for every backend whose `str`/`String` have them.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::diesel::expression::AsExpression, ::diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = ::diesel::sql_types::Text)]
        pub enum $name { $($variant),+ }

        impl<DB> ::diesel::serialize::ToSql<::diesel::sql_types::Text, DB> for $name
        where
            DB: ::diesel::backend::Backend,
            str: ::diesel::serialize::ToSql<::diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut ::diesel::serialize::Output<'b, '_, DB>) -> ::diesel::serialize::Result {
                <str as ::diesel::serialize::ToSql<::diesel::sql_types::Text, DB>>::to_sql(self.as_str(), out)
            }
        }

        impl<DB> ::diesel::deserialize::FromSql<::diesel::sql_types::Text, DB> for $name
        where
            DB: ::diesel::backend::Backend,
            String: ::diesel::deserialize::FromSql<::diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> ::diesel::deserialize::Result<Self> {
                let text = <String as ::diesel::deserialize::FromSql<::diesel::sql_types::Text, DB>>::from_sql(bytes)?;
                text.parse().map_err(|_| {
                    Box::new($crate::domain::kinds::BadStoredValue { what: stringify!($name), value: text }).into()
                })
            }
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::kinds::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::domain::kinds::UnknownValue {
                        what: stringify!($name),
                        allowed: &[$($text),+],
                    }),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

/// A value outside a closed set; its message lists what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    pub what: &'static str,
    pub allowed: &'static [&'static str],
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "must be one of: {}", self.allowed.join(", "))
    }
}

/// A stored value outside its closed set, met while reading a row (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadStoredValue {
    pub what: &'static str,
    pub value: String,
}

impl fmt::Display for BadStoredValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stored {} {:?} is not valid", self.what, self.value)
    }
}

impl std::error::Error for BadStoredValue {}

text_enum!(
    /// A Mattermost bot's connection, as admins see it (MM-11): the WebSocket is open and
    /// authenticated; not connected now (not yet, dropped, rate-limited) and trying again; or
    /// Mattermost refused the token or the account, and an admin must act (the reason says what).
    ConnectionState {
        Connected => "connected",
        Reconnecting => "reconnecting",
        NeedsAttention => "needs_attention",
    }
);

text_enum!(
    /// What a channel instance connects to (CORE-1). Only kinds with a working connector are offered
    /// (#14 item 12): see [`ChannelKind::OFFERED`].
    ChannelKind {
        Email => "email",
        Mattermost => "mattermost",
        Zalo => "zalo",
        Custom => "custom",
        Web => "web",
    }
);

impl ChannelKind {
    /// The mode a channel of this kind must have, or `None` when the admin chooses (CORE-2).
    pub fn fixed_mode(self) -> Option<Mode> {
        match self {
            ChannelKind::Email | ChannelKind::Web => Some(Mode::Async),
            ChannelKind::Mattermost | ChannelKind::Zalo => Some(Mode::Sync),
            ChannelKind::Custom => None,
        }
    }

    /// The kinds an admin may create today: those with a working connector (#14 item 12).
    pub const OFFERED: &'static [ChannelKind] =
        &[ChannelKind::Email, ChannelKind::Mattermost, ChannelKind::Zalo, ChannelKind::Custom];

    /// Whether something delivers this kind's outbound messages (SMTP for email, the reply webhook
    /// for custom channels, `POST /posts` for Mattermost bots, the OA send API for Zalo, issue #16). A reply on a kind
    /// without one gets no outbox row: it would stay pending for ever (#14 item 12).
    pub fn has_sender(self) -> bool {
        match self {
            ChannelKind::Email | ChannelKind::Mattermost | ChannelKind::Zalo | ChannelKind::Custom => true,
            // The customer portal (issue #18): the customer reads replies in the portal and learns of them by the
            // notification mail; nothing is queued for a web conversation's replies.
            ChannelKind::Web => false,
        }
    }

    /// Parse a kind an admin asks for: a known kind that is also offered. The error lists the
    /// offered kinds only.
    pub fn parse_offered(text: &str) -> Result<Self, UnknownValue> {
        const NAMES: &[&str] = &["email", "mattermost", "zalo", "custom"];
        match text.parse::<ChannelKind>() {
            Ok(kind) if Self::OFFERED.contains(&kind) => Ok(kind),
            _ => Err(UnknownValue { what: "ChannelKind", allowed: NAMES }),
        }
    }
}

text_enum!(
    /// A customer's satisfaction rating of a ticket (HD-12, issue #18): the Good / Average / Bad links.
    Rating {
        Good => "good",
        Average => "average",
        Bad => "bad",
    }
);

text_enum!(
    /// Chat-like (`sync`) or email-like (`async`) (CORE-2).
    Mode {
        Sync => "sync",
        Async => "async",
    }
);

text_enum!(
    /// Which way a message went; notes never leave the help desk (CORE-10).
    Direction {
        In => "in",
        Out => "out",
        Note => "note",
    }
);

text_enum!(
    /// Who produced a message: the channel (customer side), an agent in the dashboard, the API,
    /// an automation rule, or the system itself.
    Source {
        Channel => "channel",
        Agent => "agent",
        Api => "api",
        Rule => "rule",
        System => "system",
    }
);

text_enum!(
    /// What a channel's receipt says of an outgoing message (ZL-4, stored in `message_receipts`): it reached
    /// the customer's device, or the customer read it. Read implies delivered, never the other way round.
    Receipt {
        Delivered => "delivered",
        Read => "read",
    }
);

impl Receipt {
    /// Whether a message already marked `self` needs no mark `other` (a mark only rises).
    pub fn covers(self, other: Receipt) -> bool {
        self == other || self == Receipt::Read
    }
}

text_enum!(
    Priority {
        Low => "low",
        Normal => "normal",
        High => "high",
        Urgent => "urgent",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_text() {
        for k in ChannelKind::ALL {
            assert_eq!(k.as_str().parse::<ChannelKind>(), Ok(*k));
        }
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>(), Ok(*m));
        }
        for d in Direction::ALL {
            assert_eq!(d.as_str().parse::<Direction>(), Ok(*d));
        }
        for s in Source::ALL {
            assert_eq!(s.as_str().parse::<Source>(), Ok(*s));
        }
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>(), Ok(*p));
        }
    }

    #[test]
    fn unknown_values_list_what_is_allowed() {
        let err = "chatty".parse::<Mode>().unwrap_err();
        assert_eq!(err.to_string(), "must be one of: sync, async");
        assert!("Email".parse::<ChannelKind>().is_err(), "matching is case-sensitive");
    }

    #[test]
    fn zl_4_a_receipt_mark_only_rises() {
        assert!(Receipt::Read.covers(Receipt::Delivered), "a late delivery receipt does not undo a read");
        assert!(Receipt::Read.covers(Receipt::Read) && Receipt::Delivered.covers(Receipt::Delivered));
        assert!(!Receipt::Delivered.covers(Receipt::Read), "a read receipt raises a delivered mark");
        assert_eq!("read".parse::<Receipt>(), Ok(Receipt::Read));
    }

    #[test]
    fn core_2_fixed_modes() {
        assert_eq!(ChannelKind::Email.fixed_mode(), Some(Mode::Async));
        assert_eq!(ChannelKind::Mattermost.fixed_mode(), Some(Mode::Sync));
        assert_eq!(ChannelKind::Zalo.fixed_mode(), Some(Mode::Sync));
        assert_eq!(ChannelKind::Custom.fixed_mode(), None);
        assert_eq!(ChannelKind::Web.fixed_mode(), Some(Mode::Async), "issue #18: portal tickets are async");
    }

    #[test]
    fn hd_12_ratings_and_the_web_kind_round_trip() {
        for r in Rating::ALL {
            assert_eq!(r.as_str().parse::<Rating>(), Ok(*r));
        }
        assert_eq!(Rating::ALL.len(), 3);
        assert!(!ChannelKind::Web.has_sender(), "no outbox row for a web conversation's replies");
        assert!(ChannelKind::parse_offered("web").is_err(), "the web channel is created by the portal, not offered");
    }

    #[test]
    fn only_kinds_with_a_connector_are_offered_and_queue_replies() {
        assert_eq!(ChannelKind::parse_offered("email"), Ok(ChannelKind::Email));
        assert_eq!(ChannelKind::parse_offered("custom"), Ok(ChannelKind::Custom));
        assert_eq!(ChannelKind::parse_offered("mattermost"), Ok(ChannelKind::Mattermost));
        assert_eq!(ChannelKind::parse_offered("zalo"), Ok(ChannelKind::Zalo), "issue #16");
        for refused in ["fax", ""] {
            let err = ChannelKind::parse_offered(refused).unwrap_err();
            assert_eq!(err.to_string(), "must be one of: email, mattermost, zalo, custom", "{refused}");
        }
        for k in ChannelKind::ALL {
            assert_eq!(ChannelKind::OFFERED.contains(k), k.has_sender(), "{k}: offered exactly when it has a sender");
        }
        let names: Vec<&str> = ChannelKind::OFFERED.iter().map(|k| k.as_str()).collect();
        assert_eq!(ChannelKind::parse_offered("x").unwrap_err().allowed, names.as_slice());
    }
}
