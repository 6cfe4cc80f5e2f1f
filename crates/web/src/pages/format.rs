//! How the pages write money, times and rates.

use tuangou_domain::time::{Millis, china_time};

/// `¥9.90` from 990 fen; `-¥1.00` for negatives.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    format!("{sign}¥{}.{:02}", fen / 100, fen % 100)
}

/// `2026-11-26 18:00` in China Standard Time.
pub fn when(at: i64) -> String {
    china_time(Millis(at))
}

/// `12.5%` from basis points.
pub fn percent(bps: i64) -> String {
    format!("{}.{}%", bps / 100, bps % 100 / 10)
}

/// A share of `part` in `whole` as a CSS width percentage, 0–100.
pub fn width(part: i64, whole: i64) -> i64 {
    if whole <= 0 { 0 } else { (part.clamp(0, whole) * 100) / whole }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_rates_read_naturally() {
        assert_eq!(yuan(990), "¥9.90");
        assert_eq!(yuan(5), "¥0.05");
        assert_eq!(yuan(-100), "-¥1.00");
        assert_eq!(percent(1250), "12.5%");
        assert_eq!(width(3, 5), 60);
        assert_eq!(width(1, 0), 0);
    }
}
