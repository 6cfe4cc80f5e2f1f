//! Voucher codes: short, typeable, self-checking, and read forgivingly.
//!
//! A code is 60 random bits written as 12 Crockford base32 characters plus one check character, shown as
//! `XXXX-XXXX-XXXX-C`. Staff type codes off a customer's phone at a busy counter, so parsing forgives the usual
//! slips: any case, spaces and hyphens anywhere, full-width characters from a Chinese input method, I and L read as
//! 1, O read as 0. Anything else (a wrong length, a character outside the alphabet, a wrong check character) is one
//! and the same [`MalformedCode`], because the API answers every bad code with the same 404.
//!
//! The check character is not Crockford's. His is the value mod 37 and needs five extra symbols, `*~$=U`: awkward
//! on a phone keyboard, `~` and `=` outside a QR code's compact alphanumeric mode, and `U` the very letter the
//! alphabet leaves out so it is not misread. Ours uses the same 32 symbols as the body: reading each symbol as an
//! element of the field GF(32) = GF(2)[x]/(x⁵ + x² + 1), the check `c` makes `Σ α^(12−i)·dᵢ + c = 0` over the 12
//! body symbols `dᵢ`, with α = x, a generator of GF(32)'s 31 non-zero elements. Every weight is non-zero, so any
//! single changed character is caught; the 13 weights α¹², …, α¹, 1 are distinct, so swapping any two different
//! characters, adjacent or not, check character included, is caught too: at least what mod 37 guarantees, within
//! the typeable alphabet. The check only catches typos: one random string in 32 passes it, so guessing is stopped by
//! 60 bits of randomness, keyed hashes and throttling, not by this.

/// Crockford's base32 symbols, in value order: digits and letters without I, L, O and U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const BODY_LEN: usize = 12;
const CODE_LEN: usize = BODY_LEN + 1;

/// A well-formed voucher code (its check character holds). Whether it was ever issued is the store's answer.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VoucherCode([u8; CODE_LEN]);

/// Not a voucher code: wrong length, a character outside the alphabet, or a wrong check character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a voucher code")]
pub struct MalformedCode;

// A code is a bearer token for a meal: `Debug` (and so any log line) never shows it.
impl std::fmt::Debug for VoucherCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VoucherCode(…)")
    }
}

/// Multiplies by α in GF(32): shift, and reduce by x⁵ + x² + 1 when x⁵ appears.
fn times_alpha(value: u8) -> u8 {
    let shifted = value << 1;
    if shifted & 0b10_0000 != 0 { shifted ^ 0b10_0101 } else { shifted }
}

/// `Σ α^(len−1−i)·sᵢ` by Horner's rule: zero over a whole valid code.
fn weighted_sum(symbols: &[u8]) -> u8 {
    symbols.iter().fold(0, |acc, &s| times_alpha(acc) ^ s)
}

/// Full-width forms (U+FF01–U+FF5E, typed with a Chinese input method in full-width mode) read as their ASCII.
fn half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// The value of one typed character, with I and L read as 1 and O as 0; `None` outside the alphabet.
fn symbol_value(c: char) -> Option<u8> {
    match c.to_ascii_uppercase() {
        'O' => Some(0),
        'I' | 'L' => Some(1),
        upper => ALPHABET.iter().position(|&a| char::from(a) == upper).and_then(|p| u8::try_from(p).ok()),
    }
}

impl VoucherCode {
    /// A new code from random bytes the caller supplies (from the operating system): their first 60 bits.
    pub fn generate_from(random: [u8; 8]) -> Self {
        let bits = u64::from_be_bytes(random) >> 4;
        let mut symbols = [0u8; CODE_LEN];
        for (i, symbol) in symbols[..BODY_LEN].iter_mut().enumerate() {
            *symbol = ((bits >> (5 * (BODY_LEN - 1 - i))) & 0b1_1111) as u8;
        }
        symbols[BODY_LEN] = times_alpha(weighted_sum(&symbols[..BODY_LEN]));
        Self(symbols)
    }

    /// Reads a code as typed or scanned: case, spaces, hyphens and full-width forms ignored; I, L → 1; O → 0.
    pub fn parse(text: &str) -> Result<Self, MalformedCode> {
        let mut symbols = [0u8; CODE_LEN];
        let mut len = 0;
        for c in text.chars().map(half_width) {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let slot = symbols.get_mut(len).ok_or(MalformedCode)?;
            *slot = symbol_value(c).ok_or(MalformedCode)?;
            len += 1;
        }
        if len == CODE_LEN && weighted_sum(&symbols) == 0 { Ok(Self(symbols)) } else { Err(MalformedCode) }
    }

    /// The 13 characters without hyphens, upper case: what is hashed and stored.
    pub fn canonical(&self) -> String {
        self.0.iter().map(|&s| char::from(ALPHABET[usize::from(s)])).collect()
    }

    /// `XXXX-XXXX-XXXX-C`: what people see.
    pub fn display(&self) -> String {
        let canonical = self.canonical();
        let (body, check) = canonical.split_at(BODY_LEN);
        format!("{}-{}-{}-{check}", &body[0..4], &body[4..8], &body[8..12])
    }
}

impl std::fmt::Display for VoucherCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl std::str::FromStr for VoucherCode {
    type Err = MalformedCode;

    fn from_str(text: &str) -> Result<Self, MalformedCode> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handful of codes from fixed "random" bytes.
    fn samples() -> Vec<VoucherCode> {
        (0u64..64).map(|i| VoucherCode::generate_from(i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes())).collect()
    }

    #[test]
    fn alpha_generates_all_31_nonzero_elements() {
        let mut seen = std::collections::BTreeSet::new();
        let mut power = 1u8;
        for _ in 0..31 {
            seen.insert(power);
            power = times_alpha(power);
        }
        assert_eq!(power, 1);
        assert_eq!(seen.len(), 31);
    }

    #[test]
    fn codes_are_pinned() {
        // Issued codes must keep parsing: these fix the encoding and the check character.
        assert_eq!(VoucherCode::generate_from([0; 8]).display(), "0000-0000-0000-0");
        assert_eq!(VoucherCode::generate_from([0xff; 8]).display(), "ZZZZ-ZZZZ-ZZZZ-R");
        assert_eq!(VoucherCode::generate_from([0, 0, 0, 0, 0, 0, 0, 0x10]).display(), "0000-0000-0001-2");
        assert_eq!(VoucherCode::generate_from(*b"tuangou!").display(), "EHTP-2VK7-DXTJ-G");
    }

    #[test]
    fn display_and_canonical_round_trip() {
        for code in samples() {
            let shown = code.display();
            assert_eq!(shown.len(), 16);
            assert_eq!(shown.matches('-').count(), 3);
            assert_eq!(code.canonical(), shown.replace('-', ""));
            assert_eq!(VoucherCode::parse(&shown), Ok(code.clone()));
            assert_eq!(VoucherCode::parse(&code.canonical()), Ok(code.clone()));
            assert_eq!(code.to_string(), shown);
        }
    }

    #[test]
    fn typing_is_forgiving() {
        let code = VoucherCode::generate_from(*b"tuangou!");
        let canonical = code.canonical();
        assert_eq!(canonical, "EHTP2VK7DXTJG");
        for typed in [
            "ehtp-2vk7-dxtj-g",
            "EHTP 2VK7 DXTJ G",
            " e-h-t-p 2vk7dxtjg\n",
            "ＥＨＴＰ－２ＶＫ７　ＤＸＴＪ－Ｇ",
            "EHTP--2VK7--DXTJ--G",
        ] {
            assert_eq!(VoucherCode::parse(typed), Ok(code.clone()), "{typed}");
        }
        let ones_and_zeros = VoucherCode::generate_from([0, 0, 0, 0, 0, 0, 0, 0x10]);
        assert_eq!(ones_and_zeros.canonical(), "0000000000012");
        for typed in
            ["OOOO-OOOO-OOO1-2", "oooo-0000-000I-2", "0000-0000-000l-2", "0000-0000-000L-2", "0000-0000-000i-2"]
        {
            assert_eq!(VoucherCode::parse(typed), Ok(ones_and_zeros.clone()), "{typed}");
        }
    }

    #[test]
    fn malformed_codes_are_refused() {
        for typed in [
            "",
            "EHTP-2VK7-DXTJ",        // no check character
            "EHTP-2VK7-DXTJ-GG",     // one too many
            "EHTP-2VK7-DXTJ-H",      // wrong check character
            "EHTP-2VK7-DXTU-G",      // U is not in the alphabet
            "EHTP-2VK7-DXTJ-*",      // nor are Crockford's check symbols
            "EHTP_2VK7_DXTJ_G",      // only spaces and hyphens are ignored
            "EHTP-2VK7-DXTJ-G\u{0}", // nor control characters
            "ÉHTP-2VK7-DXTJ-G",
        ] {
            assert_eq!(VoucherCode::parse(typed), Err(MalformedCode), "{typed:?}");
        }
        assert_eq!(VoucherCode::parse(&"0".repeat(10_000)), Err(MalformedCode));
    }

    #[test]
    fn every_single_substitution_is_caught() {
        for code in samples() {
            let canonical = code.canonical().into_bytes();
            for position in 0..CODE_LEN {
                for &other in ALPHABET.iter().filter(|&&a| a != canonical[position]) {
                    let mut typo = canonical.clone();
                    typo[position] = other;
                    let typo = String::from_utf8(typo).unwrap();
                    assert_eq!(VoucherCode::parse(&typo), Err(MalformedCode), "{typo}");
                }
            }
        }
    }

    #[test]
    fn every_transposition_is_caught_adjacent_or_not() {
        for code in samples() {
            let canonical = code.canonical().into_bytes();
            for i in 0..CODE_LEN {
                for j in i + 1..CODE_LEN {
                    if canonical[i] == canonical[j] {
                        continue;
                    }
                    let mut typo = canonical.clone();
                    typo.swap(i, j);
                    let typo = String::from_utf8(typo).unwrap();
                    assert_eq!(VoucherCode::parse(&typo), Err(MalformedCode), "{typo}");
                }
            }
        }
    }

    #[test]
    fn debug_hides_the_code() {
        let code = VoucherCode::generate_from([7; 8]);
        assert_eq!(format!("{code:?}"), "VoucherCode(…)");
    }
}
