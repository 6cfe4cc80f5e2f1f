//! Money: integer fen (1 yuan = 100 fen), never a float, never negative.

use crate::Invalid;
use serde::{Deserialize, Serialize};

/// The largest single amount the API accepts: 10,000,000,000 fen (¥100 million).
pub const MAX_AMOUNT: i64 = 10_000_000_000;

/// A non-negative amount of money in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(i64);

impl Fen {
    pub const ZERO: Fen = Fen(0);

    /// An amount a client sent: from 1 fen to [`MAX_AMOUNT`].
    pub fn parse_positive(field: &str, value: i64) -> Result<Self, Invalid> {
        if (1..=MAX_AMOUNT).contains(&value) {
            Ok(Self(value))
        } else {
            Err(Invalid::field(field, format!("must be from 1 to {MAX_AMOUNT} fen")))
        }
    }

    /// An amount the system computed or stored; `None` when negative.
    pub fn from_stored(value: i64) -> Option<Self> {
        (value >= 0).then_some(Self(value))
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    /// Yuan with two decimals (`19.90`), as providers' bills write amounts.
    pub fn yuan_text(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }

    /// Yuan with up to two decimals (`19.9`, `0.01`, `3`), as providers' bills write them; `None` for anything else.
    pub fn parse_yuan(text: &str) -> Option<Fen> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) if digits(fraction) => (whole, fraction),
            Some(_) => return None,
            None => (text, ""),
        };
        if !digits(whole) || fraction.len() > 2 || whole.len() > 12 {
            return None;
        }
        let cents = format!("{fraction:0<2}").parse::<i64>().ok()?;
        Some(Fen(whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(cents)?))
    }

    pub fn checked_mul(self, factor: i64) -> Option<Fen> {
        if factor < 0 {
            return None;
        }
        self.0.checked_mul(factor).map(Fen)
    }
}

/// Commission in basis points (0–10000) of a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BasisPoints(i64);

impl BasisPoints {
    pub fn parse(field: &str, value: i64) -> Result<Self, Invalid> {
        if (0..=10_000).contains(&value) {
            Ok(Self(value))
        } else {
            Err(Invalid::field(field, "must be from 0 to 10000 basis points"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// `floor(price × bps / 10000)` fen, as SPEC.md defines commission. Exact: the product fits in i128.
    pub fn of(self, price: Fen) -> Fen {
        let fen = i128::from(price.0) * i128::from(self.0) / 10_000;
        Fen(i64::try_from(fen).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_text_round_trips() {
        for fen in [0, 1, 10, 99, 100, 1990, 123_456_789] {
            let text = Fen(fen).yuan_text();
            assert_eq!(Fen::parse_yuan(&text), Some(Fen(fen)), "{text}");
        }
        assert_eq!(Fen(1990).yuan_text(), "19.90");
        assert_eq!(Fen::parse_yuan("19.9"), Some(Fen(1990)));
        assert_eq!(Fen::parse_yuan("3"), Some(Fen(300)));
        for bad in ["", ".5", "1.234", "-1", "1e3", "1.", "abc"] {
            assert_eq!(Fen::parse_yuan(bad), None, "{bad}");
        }
    }

    #[test]
    fn amounts_are_bounded() {
        assert!(Fen::parse_positive("amount", 0).is_err());
        assert!(Fen::parse_positive("amount", -5).is_err());
        assert!(Fen::parse_positive("amount", MAX_AMOUNT + 1).is_err());
        assert_eq!(Fen::parse_positive("amount", MAX_AMOUNT).map(Fen::get), Ok(MAX_AMOUNT));
    }

    #[test]
    fn commission_rounds_down() {
        let bps = BasisPoints::parse("commission_bps", 550).unwrap();
        assert_eq!(bps.of(Fen(999)).get(), 54); // 54.945 → 54
        assert_eq!(BasisPoints::parse("c", 10_000).unwrap().of(Fen(MAX_AMOUNT)).get(), MAX_AMOUNT);
        assert!(BasisPoints::parse("c", 10_001).is_err());
    }
}
