//! Phone numbers, normalised once at the edge.
//!
//! A user's phone is a mainland mobile number (`1[3-9]` and 9 digits, optionally written with `+86`/`86`,
//! spaces or hyphens) or any E.164 number. Mainland numbers are stored as their 11 digits, others as `+` and
//! digits, so that one person cannot register twice by writing their number differently. A merchant's contact
//! phone may also be a landline (`0` and 9–11 digits, e.g. `02888886666` or `028-8888 6666`).

use crate::Invalid;
use serde::{Deserialize, Serialize};

/// A user's phone number, normalised.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserPhone(String);

/// A merchant's contact number: a user phone or a landline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContactPhone(String);

// Phone numbers are personal data: `Debug` (and so any log line that prints one) shows only its last two digits.
impl std::fmt::Debug for UserPhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tail: String = self.0.chars().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect();
        write!(f, "UserPhone(…{tail})")
    }
}

fn strip_separators(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect()
}

fn is_mainland_mobile(digits: &str) -> bool {
    let b = digits.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && b.iter().all(u8::is_ascii_digit)
}

fn parse_user_phone(text: &str) -> Option<String> {
    if text.len() > 32 {
        return None;
    }
    let compact = strip_separators(text.trim());
    let national = compact.strip_prefix("+86").or_else(|| compact.strip_prefix("86").filter(|r| r.len() == 11));
    if let Some(rest) = national.filter(|r| is_mainland_mobile(r)) {
        return Some(rest.to_owned());
    }
    if is_mainland_mobile(&compact) {
        return Some(compact);
    }
    // E.164: '+', a non-zero country digit, at most 15 digits in all.
    let digits = compact.strip_prefix('+')?;
    let valid = (8..=15).contains(&digits.len())
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with("86"); // a +86 number that is not a mobile number is not a user phone
    valid.then_some(compact)
}

impl UserPhone {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        parse_user_phone(text).map(Self).ok_or_else(|| {
            Invalid::field(field, "must be a mainland mobile number (11 digits starting 13–19) or E.164 (+ and digits)")
        })
    }

    pub fn from_trusted(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ContactPhone {
    pub fn parse(field: &str, text: &str) -> Result<Self, Invalid> {
        if let Some(phone) = parse_user_phone(text) {
            return Ok(Self(phone));
        }
        let compact = strip_separators(text.trim());
        let landline = text.len() <= 32
            && compact.starts_with('0')
            && (10..=12).contains(&compact.len())
            && compact.bytes().all(|b| b.is_ascii_digit());
        if landline {
            Ok(Self(compact))
        } else {
            Err(Invalid::field(field, "must be a mobile number, an E.164 number or a landline such as 02888886666"))
        }
    }

    pub fn from_trusted(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Option<String> {
        UserPhone::parse("phone", text).ok().map(|p| p.0)
    }

    #[test]
    fn mainland_numbers_normalise_to_eleven_digits() {
        assert_eq!(user("13800138000").as_deref(), Some("13800138000"));
        assert_eq!(user("+86 138-0013-8000").as_deref(), Some("13800138000"));
        assert_eq!(user("8613800138000").as_deref(), Some("13800138000"));
        assert_eq!(user("12800138000"), None);
        assert_eq!(user("1380013800"), None);
        assert_eq!(user("+862888886666"), None);
    }

    #[test]
    fn e164_numbers_are_kept_with_their_plus() {
        assert_eq!(user("+44 20 7946 0958").as_deref(), Some("+442079460958"));
        assert_eq!(user("+0123456789"), None);
        assert_eq!(user("+1234567890123456"), None);
        assert_eq!(user("hello"), None);
        assert_eq!(user(""), None);
    }

    #[test]
    fn landlines_are_contact_phones_only() {
        assert!(UserPhone::parse("phone", "02888886666").is_err());
        assert_eq!(ContactPhone::parse("phone", "028-8888 6666").unwrap().as_str(), "02888886666");
        assert_eq!(ContactPhone::parse("phone", "13800138000").unwrap().as_str(), "13800138000");
        assert!(ContactPhone::parse("phone", "12345").is_err());
    }

    #[test]
    fn debug_hides_the_number() {
        let phone = UserPhone::parse("phone", "13800138000").unwrap();
        assert_eq!(format!("{phone:?}"), "UserPhone(…00)");
    }
}
