//! The API's refusals in the reader's words. The API answers problem+json with a stable `code` (and the `field` it
//! is about) and an English `detail` for developers; the pages never show that detail: `assets/app.js` shows the
//! Fluent message `problem-{code}`, or for a field `problem-field-{field}` (dots as dashes: `reward.amount` is
//! `problem-field-reward-amount`). The messages reach the script as a small per-language asset
//! (`problems.zh-CN.js`, `problems.en.js`) made once from the catalogues. Tests keep every code the API can answer,
//! and every field a page has an error slot for, in both catalogues.

use super::Tr;
use std::collections::BTreeMap;
use tuangou_domain::rules_card::Lang;

/// The asset's name for a language.
pub fn asset_name(tr: Tr) -> &'static str {
    match tr.lang() {
        Lang::Zh => "problems.zh-CN.js",
        Lang::En => "problems.en.js",
    }
}

/// The asset `name`, when it is one of these: a script setting `window.tuangouProblems` to `{codes, fields,
/// fallback}`, each message in that language.
pub fn asset(name: &str) -> Option<String> {
    let tr = match name {
        "problems.zh-CN.js" => Tr(Lang::Zh),
        "problems.en.js" => Tr(Lang::En),
        _ => return None,
    };
    let (mut codes, mut fields) = (BTreeMap::new(), BTreeMap::new());
    // Both catalogues hold the same keys (a test in `i18n` checks), so one list of keys serves both languages.
    for key in problem_keys(include_str!("../../locales/zh-CN/main.ftl")) {
        match key.strip_prefix("problem-field-") {
            Some(field) => fields.insert(field.replace('-', "."), tr.t(&key)),
            None => codes.insert(key["problem-".len()..].to_owned(), tr.t(&key)),
        };
    }
    let fallback = codes.get("internal").cloned().unwrap_or_default();
    let words = serde_json::json!({ "codes": codes, "fields": fields, "fallback": fallback });
    Some(format!("window.tuangouProblems = {words};\n"))
}

/// A problem in the reader's words, as `assets/app.js` says it: the field's words for a field that is wrong,
/// else the code's, else the words for a fault of ours (the test below keeps every code in the catalogues).
pub fn say(tr: Tr, code: &str, field: Option<&str>) -> String {
    let known = |key: String| -> Option<String> { (tr.t(&key) != key).then(|| tr.t(&key)) };
    let field_words = field.and_then(|f| known(format!("problem-field-{}", f.replace('.', "-"))));
    let code_words = known(format!("problem-{code}"));
    match (code, field_words, code_words) {
        ("invalid_field", Some(words), _) | (_, Some(words), None) => words,
        (_, _, Some(words)) => words,
        _ => tr.t("problem-internal"),
    }
}

/// The catalogue's keys that name a problem (`problem-…`).
fn problem_keys(ftl: &str) -> Vec<String> {
    ftl.lines()
        .filter_map(|line| line.split_once(" = ").map(|(key, _)| key))
        .filter(|key| key.starts_with("problem-") && !key.contains(' '))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    /// Where a code is written as an argument: (the call, the argument holding the code; `None`: every string
    /// literal among its arguments).
    const CODE_ARGUMENTS: &[(&str, Option<usize>)] = &[
        ("AppError::Forbidden(", Some(0)),
        ("AppError::NotFound(", Some(0)),
        ("AppError::Conflict(", Some(0)),
        ("AppError::conflict(", Some(0)),
        ("AppError::Unauthenticated(", Some(0)),
        ("StoreError::Conflict(", Some(0)),
        ("StoreError::RunAgain(", Some(0)),
        ("unique_violation_as(", Some(0)),
        ("unique_as(", Some(0)),
        ("changed_or(", None),
        ("refuse(", Some(0)),
        ("with_code(", Some(1)),
        ("Problem::new(", Some(1)),
        ("Problem::invalid(", Some(1)),
        ("Self::new(StatusCode", Some(1)),
    ];

    fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, into);
            } else if path.extension().is_some_and(|e| e == "rs") {
                into.push(path);
            }
        }
    }

    /// The top-level arguments of the call whose `(` ends just before `text` (up to its `)`).
    fn arguments(text: &str) -> Vec<&str> {
        let (mut depth, mut start, mut quoted, mut args) = (0, 0, false, Vec::new());
        let mut chars = text.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' if quoted => {
                    chars.next();
                }
                '"' => quoted = !quoted,
                _ if quoted => {}
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' if depth > 0 => depth -= 1,
                ')' => {
                    args.push(text[start..i].trim());
                    return args;
                }
                ',' if depth == 0 => {
                    args.push(text[start..i].trim());
                    start = i + 1;
                }
                _ => {}
            }
        }
        args
    }

    /// `"snake_case"` → `snake_case`.
    fn code_literal(arg: &str) -> Option<&str> {
        let code = arg.strip_prefix('"')?.strip_suffix('"')?;
        let snake = code.starts_with(|c: char| c.is_ascii_lowercase())
            && code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        snake.then_some(code)
    }

    /// Every problem code the service's code can answer with: the literals written where codes are made, in the
    /// crates a request passes through, and the codes `AppError`'s conflict messages name.
    fn codes_in_the_source() -> BTreeSet<String> {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for name in ["domain", "app", "store", "web"] {
            rust_files(&crates.join(name).join("src"), &mut files);
        }
        let mut codes = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // Unit tests inside a file make up codes of their own (e.g. a unit that refuses): not the service's.
            let text = text.split("#[cfg(test)]").next().unwrap_or("");
            for (call, index) in CODE_ARGUMENTS {
                for (at, _) in text.match_indices(call) {
                    let args = arguments(&text[at + call.len()..]);
                    let chosen: Vec<&str> = match index {
                        Some(i) => args.get(*i).copied().into_iter().collect(),
                        None => args,
                    };
                    codes.extend(chosen.into_iter().filter_map(code_literal).map(str::to_owned));
                }
            }
            if file.ends_with("app/src/error.rs") {
                let messages = text.split("fn conflict_message").nth(1).unwrap_or("");
                for arm in messages.lines().filter_map(|l| l.trim().split_once(" => ")) {
                    codes.extend(code_literal(arm.0).map(str::to_owned));
                }
            }
        }
        codes
    }

    fn catalogues() -> [(&'static str, BTreeSet<String>); 2] {
        let keys = |ftl: &str| problem_keys(ftl).into_iter().collect::<BTreeSet<_>>();
        [
            ("zh-CN", keys(include_str!("../../locales/zh-CN/main.ftl"))),
            ("en", keys(include_str!("../../locales/en/main.ftl"))),
        ]
    }

    #[test]
    fn every_code_the_api_answers_has_words_in_both_languages() {
        let codes = codes_in_the_source();
        // The scan sees the codes wherever they are made (a scan that found little would prove nothing).
        for known in ["invalid_field", "group_full", "phone_taken", "csrf_failed", "expired", "already_staff"] {
            assert!(codes.contains(known), "the scan missed {known}: {codes:?}");
        }
        assert!(codes.len() > 50, "{codes:?}");
        for (lang, keys) in catalogues() {
            let missing: Vec<_> = codes.iter().filter(|c| !keys.contains(&format!("problem-{c}"))).collect();
            assert!(missing.is_empty(), "codes without words in {lang}: {missing:?}");
        }
    }

    #[test]
    fn every_field_a_page_shows_errors_for_has_words_in_both_languages() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut fields = BTreeSet::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for slot in text.split("data-field-error=\"").skip(1) {
                fields.insert(slot.split('"').next().unwrap().to_owned());
            }
        }
        assert!(fields.contains("phone") && fields.contains("reward.amount"), "{fields:?}");
        for (lang, keys) in catalogues() {
            let missing: Vec<_> =
                fields.iter().filter(|f| !keys.contains(&format!("problem-field-{}", f.replace('.', "-")))).collect();
            assert!(missing.is_empty(), "fields without words in {lang}: {missing:?}");
        }
    }

    #[test]
    fn the_script_carries_the_readers_words() {
        let zh = asset("problems.zh-CN.js").unwrap();
        let en = asset("problems.en.js").unwrap();
        assert!(zh.starts_with("window.tuangouProblems = {"));
        let words = |js: &str| -> serde_json::Value {
            serde_json::from_str(js.trim_start_matches("window.tuangouProblems = ").trim_end().trim_end_matches(';'))
                .unwrap()
        };
        let (zh, en) = (words(&zh), words(&en));
        assert!(zh["fields"]["phone"].as_str().unwrap().contains("手机号"), "{}", zh["fields"]["phone"]);
        assert!(en["fields"]["reward.amount"].as_str().unwrap().contains("reward"));
        assert!(zh["codes"]["group_full"].as_str().unwrap().contains("满"));
        assert!(!zh["fallback"].as_str().unwrap().is_empty());
        assert_eq!(asset("problems.fr.js"), None);
    }

    #[test]
    fn pages_say_a_problem_as_the_script_does() {
        let zh = Tr(Lang::Zh);
        assert_eq!(say(zh, "invalid_field", Some("latitude")), "纬度须在 -90 到 90 之间");
        assert_eq!(say(zh, "invalid_field", Some("no_such_field")), "有一项填写得不对，请检查后再试");
        assert_eq!(say(zh, "prize_cap_exceeded", Some("original_price")), "原价与团购价相差不能超过 ¥50,000");
        assert_eq!(say(Tr(Lang::En), "group_full", None), "This group just filled up — try another");
        assert_eq!(say(zh, "no_such_code", None), "服务器出了点问题，请稍后再试");
    }
}
