//! The templates' own filters: `{{ price|yuan }}` and `{{ at|when }}` (askama finds them as `filters::…` in the
//! module that derives a template, so each page module imports this one).

use super::format;
use std::borrow::Borrow;

/// Fen as yuan: `990|yuan` → `¥9.90`.
#[askama::filter_fn]
pub fn yuan<T: Borrow<i64>>(fen: T, _: &dyn askama::Values) -> askama::Result<String> {
    Ok(format::yuan(*fen.borrow()))
}

/// Unix milliseconds as China Standard Time: `YYYY-MM-DD HH:MM`.
#[askama::filter_fn]
pub fn when<T: Borrow<i64>>(at: T, _: &dyn askama::Values) -> askama::Result<String> {
    Ok(format::when(*at.borrow()))
}
