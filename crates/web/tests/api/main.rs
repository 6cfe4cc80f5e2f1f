//! The HTTP API of API.md, against a real server on each backend. Every test ends with `finish()`, which
//! asserts that all invariants hold.

mod accounts;
mod alipay;
mod alipay_fake;
mod authorization;
mod bad_input;
mod caches;
mod campaigns;
mod cancellation;
mod check;
mod commission_share;
mod common;
mod edges;
mod every_provider;
mod groups;
mod hangups;
mod inputs;
mod live_events;
mod merchants;
mod openapi;
mod operator;
mod pages;
mod pay_at_join;
mod paying;
mod payments;
mod payouts;
mod randomized;
mod reconciliation;
mod redemption;
mod service;
mod sign_in_limits;
mod trust;
mod wechatpay;
