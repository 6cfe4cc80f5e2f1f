//! RFC 3339 at the edge: the API speaks UTC strings, everything inside speaks [`Millis`].

use crate::problem::Problem;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tuangou_domain::time::Millis;

/// `2026-11-26T11:30:00.000Z`; the epoch for a value out of range (not reachable from checked input).
pub fn format(at: Millis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.0) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

pub fn format_opt(at: Option<i64>) -> Option<String> {
    at.map(|t| format(Millis(t)))
}

/// Parses an RFC 3339 time from the field `field` (any offset; stored as UTC), years 2000–9999.
pub fn parse(field: &str, text: &str) -> Result<Millis, Problem> {
    let invalid = || Problem::invalid(field, "invalid_field", "must be an RFC 3339 time such as 2026-12-01T12:00:00Z");
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| invalid())?;
    if !(2000..=9999).contains(&parsed.year()) {
        return Err(invalid());
    }
    Ok(Millis((parsed.unix_timestamp_nanos() / 1_000_000) as i64))
}

pub fn parse_opt(field: &str, text: Option<&str>) -> Result<Option<Millis>, Problem> {
    text.map(|t| parse(field, t)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_utc() {
        let at = parse("t", "2026-11-26T11:30:00+08:00").unwrap();
        assert_eq!(format(at), "2026-11-26T03:30:00Z");
        assert!(parse("t", "yesterday").is_err());
        assert!(parse("t", "0001-01-01T00:00:00Z").is_err());
    }
}
