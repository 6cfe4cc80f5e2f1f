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

/// A display name as others may see it: its first character, a star, and its last character when it has three
/// or more ("小王" → "小*", "张三丰" → "张*丰", "Alice" → "A*e"), so a friend recognises it and a stranger learns
/// little; at most three characters whatever the name's length. Empty stays empty.
pub fn masked_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.as_slice() {
        [] => String::new(),
        [first] | [first, _] => format!("{first}*"),
        [first, .., last] => format!("{first}*{last}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn masked_names_keep_the_first_and_last_characters_only() {
        assert_eq!(masked_name("小王"), "小*");
        assert_eq!(masked_name("张三丰"), "张*丰");
        assert_eq!(masked_name("欧阳娜娜"), "欧*娜");
        assert_eq!(masked_name(" Alice "), "A*e");
        assert_eq!(masked_name("王"), "王*");
        assert_eq!(masked_name(""), "");
    }
}
