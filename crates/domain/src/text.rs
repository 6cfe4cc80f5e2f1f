//! Free text with bounds: trimmed, within a length in characters, without control characters.

use crate::Invalid;

/// Trims `text` and checks it holds `min..=max` characters (Unicode scalar values) and no control characters
/// other than line breaks and tabs in multi-line fields.
pub fn bounded(field: &str, text: &str, min: usize, max: usize) -> Result<String, Invalid> {
    let trimmed = text.trim();
    let count = trimmed.chars().count();
    if count < min || count > max {
        let message = if min == 0 {
            format!("must be at most {max} characters")
        } else {
            format!("must be {min} to {max} characters")
        };
        return Err(Invalid::field(field, message));
    }
    if trimmed.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(Invalid::field(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// A person's display name (1–40 characters).
pub fn person_name(field: &str, text: &str) -> Result<String, Invalid> {
    bounded(field, text, 1, 40)
}

/// A password: 8–128 characters, kept exactly as typed (no trimming).
pub fn password(field: &str, text: &str) -> Result<String, Invalid> {
    let count = text.chars().count();
    if (8..=128).contains(&count) {
        Ok(text.to_owned())
    } else {
        Err(Invalid::field(field, "must be 8 to 128 characters"))
    }
}

/// A display name as a screen in a shop shows it: the first character, the rest masked (at most three stars), so
/// the room recognises a winner without anyone's full name in public. `王小明` → `王**`, `Li` → `L*`.
pub fn masked_name(name: &str) -> String {
    let mut chars = name.trim().chars();
    match chars.next() {
        Some(first) => {
            let hidden = chars.count().clamp(1, 3);
            format!("{first}{}", "*".repeat(hidden))
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_on_a_screen_are_masked_after_their_first_character() {
        assert_eq!(masked_name("王小明"), "王**");
        assert_eq!(masked_name("小王"), "小*");
        assert_eq!(masked_name("王"), "王*");
        assert_eq!(masked_name(" Alexander "), "A***");
        assert_eq!(masked_name(""), "***");
    }

    #[test]
    fn bounds_count_characters_not_bytes() {
        assert_eq!(bounded("name", "  火锅店  ", 1, 3).unwrap(), "火锅店");
        assert!(bounded("name", "火锅店!", 1, 3).is_err());
        assert!(bounded("name", "   ", 1, 3).is_err());
        assert!(bounded("name", "a\u{0}b", 1, 3).is_err());
    }

    #[test]
    fn passwords_keep_their_spaces() {
        assert_eq!(password("password", " secret pw ").unwrap(), " secret pw ");
        assert!(password("password", "short").is_err());
        assert!(password("password", &"x".repeat(129)).is_err());
    }
}
