//! The rules of tuangou, with no IO.
//!
//! Everything here is plain data and pure functions: money that cannot go negative, phone numbers and texts that
//! are already checked, campaign rules that cannot hold an invalid campaign, and the ledger entries each event
//! makes. Parse, don't validate: the only way to get one of these types is through a constructor that checks it,
//! so the layers above cannot forget a check. This crate knows neither SQL nor HTTP, and is never async.
#![forbid(unsafe_code)]

pub mod campaign;
pub mod draw;
pub mod geo;
pub mod ids;
pub mod invalid;
pub mod ledger;
pub mod money;
pub mod payouts;
pub mod phone;
pub mod reconciliation;
pub mod rules_card;
pub mod text;
pub mod time;
pub mod voucher_code;
pub mod voucher_keys;

pub use invalid::Invalid;
