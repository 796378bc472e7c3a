//! The customer portal's pieces that are neither HTTP nor SQL (issue #18): the signed customer links
//! ([`links::Links`]) that notification mail carries and the portal's `/portal/...` pages check.
//! The portal's HTTP side is `http::portal`, its data `store::portal`, its pure rules `domain::links`.

pub mod links;
