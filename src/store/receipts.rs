//! The delivery state of outgoing messages (issue #16, `MessageView.delivery`), for every channel: *pending*,
//! *sent* or *failed* from the message's outbox row (the dispatcher's attempts), *delivered* or *read* from the
//! channel's receipts (`message_receipts`, written by Zalo's processor through `store::zalo::receipts`). A receipt
//! wins over the outbox: the customer's app saw the message.
//!
//! Reading only; [`derive`] is the one rule, pure and unit-tested.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{message_receipts, outbox};
use super::{Store, StoreResult};
use crate::db;
use crate::domain::Receipt;

/// Where an outgoing message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Queued or being retried (the error says why the last attempt failed).
    Pending,
    /// The channel took it.
    Sent,
    /// Given up on (the error says why).
    Failed,
    /// It reached the customer's device.
    Delivered,
    /// The customer read it.
    Read,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Read => "read",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub state: DeliveryState,
    pub error: Option<String>,
    pub updated_at: NaiveDateTime,
}

/// What the outbox says of a message's newest delivery.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct OutboxState {
    pub message_id: Option<i64>,
    pub id: i64,
    pub state: String,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
}

/// The one rule: a receipt (`delivered` / `read`, when) wins; else the outbox row's state.
pub fn derive(row: Option<&OutboxState>, receipt: Option<(Receipt, NaiveDateTime)>) -> Option<Delivery> {
    if let Some((receipt, at)) = receipt {
        let state = match receipt {
            Receipt::Read => DeliveryState::Read,
            Receipt::Delivered => DeliveryState::Delivered,
        };
        return Some(Delivery { state, error: None, updated_at: at });
    }
    let row = row?;
    let at = row.updated_at.unwrap_or(row.created_at);
    Some(match row.state.as_str() {
        "delivered" => Delivery { state: DeliveryState::Sent, error: None, updated_at: row.delivered_at.unwrap_or(at) },
        "failed" => Delivery { state: DeliveryState::Failed, error: row.last_error.clone(), updated_at: at },
        _ => Delivery { state: DeliveryState::Pending, error: row.last_error.clone(), updated_at: at },
    })
}

/// The delivery state of each of `message_ids` that has one (an outgoing message with an outbox row or a receipt).
pub async fn of_messages(store: &Store, message_ids: Vec<i64>) -> StoreResult<HashMap<i64, Delivery>> {
    if message_ids.is_empty() {
        return Ok(HashMap::new());
    }
    store
        .run(move |store| async move {
            let mut conn = store.read().await?;
            let tx = &mut conn.tx();
            let rows: Vec<OutboxState> = db!(
                tx,
                outbox::table
                    .filter(outbox::message_id.eq_any(&message_ids))
                    .filter(outbox::kind.eq("message.created"))
                    .select((
                        outbox::message_id,
                        outbox::id,
                        outbox::state,
                        outbox::last_error,
                        outbox::created_at,
                        outbox::delivered_at,
                        outbox::updated_at,
                    ))
                    .load(tx)
                    .await
            )?;
            let receipts: HashMap<i64, (Receipt, NaiveDateTime)> = db!(
                tx,
                message_receipts::table
                    .filter(message_receipts::message_id.eq_any(&message_ids))
                    .select((message_receipts::message_id, (message_receipts::state, message_receipts::updated_at)))
                    .load::<(i64, (Receipt, NaiveDateTime))>(tx)
                    .await
            )?
            .into_iter()
            .collect();
            let mut newest: HashMap<i64, &OutboxState> = HashMap::new();
            for r in &rows {
                if let Some(m) = r.message_id {
                    let e = newest.entry(m).or_insert(r);
                    if r.id > e.id {
                        *e = r;
                    }
                }
            }
            let mut out = HashMap::new();
            for id in message_ids {
                if let Some(d) = derive(newest.get(&id).copied(), receipts.get(&id).copied()) {
                    out.insert(id, d);
                }
            }
            Ok(out)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap().naive_utc()
    }

    fn row(state: &str, error: Option<&str>) -> OutboxState {
        OutboxState {
            message_id: Some(1),
            id: 1,
            state: state.into(),
            last_error: error.map(str::to_owned),
            created_at: at(0),
            delivered_at: (state == "delivered").then(|| at(5)),
            updated_at: (state != "pending").then(|| at(5)),
        }
    }

    #[test]
    fn a_receipt_wins_else_the_outbox_says() {
        assert_eq!(derive(None, None), None, "an incoming message, or a note: no delivery");
        let pending = derive(Some(&row("pending", None)), None).unwrap();
        assert_eq!((pending.state, pending.updated_at), (DeliveryState::Pending, at(0)));
        let retrying = derive(Some(&row("pending", Some("Zalo error -32"))), None).unwrap();
        assert_eq!(retrying.error.as_deref(), Some("Zalo error -32"));
        let sent = derive(Some(&row("delivered", None)), None).unwrap();
        assert_eq!((sent.state, sent.updated_at), (DeliveryState::Sent, at(5)));
        let failed = derive(Some(&row("failed", Some("Zalo error -230: user not reachable"))), None).unwrap();
        assert_eq!(failed.state, DeliveryState::Failed);
        assert_eq!(failed.error.as_deref(), Some("Zalo error -230: user not reachable"));
        let read = derive(Some(&row("delivered", None)), Some((Receipt::Read, at(9)))).unwrap();
        assert_eq!((read.state, read.error, read.updated_at), (DeliveryState::Read, None, at(9)));
        assert_eq!(derive(None, Some((Receipt::Delivered, at(3)))).unwrap().state, DeliveryState::Delivered);
        assert_eq!(DeliveryState::Read.as_str(), "read");
    }
}
