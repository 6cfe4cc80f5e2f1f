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
