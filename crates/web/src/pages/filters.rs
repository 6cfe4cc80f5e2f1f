//! The templates' own filters: `{{ price|yuan }}` and `{{ at|when }}` (askama finds them as `filters::…` in the
//! module that derives a template, so each page module imports this one).

use super::format;

/// A whole number however deeply the template borrowed it (`i64`, `&i64`, `&&i64`).
pub trait Whole {
    fn whole(&self) -> i64;
}

impl Whole for i64 {
    fn whole(&self) -> i64 {
        *self
    }
}

impl<T: Whole + ?Sized> Whole for &T {
    fn whole(&self) -> i64 {
        (**self).whole()
    }
}

/// Fen as yuan: `990|yuan` → `¥9.90`.
#[askama::filter_fn]
pub fn yuan<T: Whole>(fen: T, _: &dyn askama::Values) -> askama::Result<String> {
    Ok(format::yuan(fen.whole()))
}

/// Unix milliseconds as China Standard Time: `YYYY-MM-DD HH:MM`.
#[askama::filter_fn]
pub fn when<T: Whole>(at: T, _: &dyn askama::Values) -> askama::Result<String> {
    Ok(format::when(at.whole()))
}
