//! The pages' words in Simplified Chinese (the default) and English, from Fluent files under `locales/`, compiled
//! into the binary. The language travels with each request ([`Tr`]); nothing process-wide changes (DESIGN.md
//! pitfall 8).

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid};
use std::borrow::Cow;
use std::collections::HashMap;
use tuangou_domain::rules_card::Lang;

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "zh-CN",
        // Unicode isolation marks around arguments would show up in copied text and tests.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

static ZH: LanguageIdentifier = langid!("zh-CN");
static EN: LanguageIdentifier = langid!("en");

/// The reader's language, with lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr(pub Lang);

impl Tr {
    fn id(&self) -> &'static LanguageIdentifier {
        match self.0 {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    /// The message `key`; the key itself when the catalogue lacks it (a test checks that none is missing).
    pub fn t(&self, key: &str) -> String {
        LOCALES.try_lookup(self.id(), key).unwrap_or_else(|| key.to_owned())
    }

    /// The message `key` with named arguments.
    pub fn ta(&self, key: &str, args: &[(&'static str, String)]) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue<'_>> =
            args.iter().map(|(name, value)| (Cow::Borrowed(*name), FluentValue::from(value.clone()))).collect();
        LOCALES.try_lookup_with_args(self.id(), key, &args).unwrap_or_else(|| key.to_owned())
    }

    /// `zh-CN` or `en`, for `<html lang>`.
    pub fn code(&self) -> &'static str {
        match self.0 {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The other language's switch: its `?lang=` value and its name in itself.
    pub fn other(&self) -> (&'static str, &'static str) {
        match self.0 {
            Lang::Zh => ("en", "English"),
            Lang::En => ("zh", "中文"),
        }
    }

    pub fn lang(&self) -> Lang {
        self.0
    }
}

/// Every key the catalogues define, per language (for the completeness test).
#[cfg(test)]
fn keys(file: &str) -> std::collections::BTreeSet<String> {
    file.lines()
        .filter_map(|line| line.split_once(" =").map(|(key, _)| key.trim()))
        .filter(|key| !key.is_empty() && !key.starts_with('#') && !key.starts_with(' ') && !key.starts_with('.'))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_define_the_same_keys() {
        let zh = keys(include_str!("../../locales/zh-CN/main.ftl"));
        let en = keys(include_str!("../../locales/en/main.ftl"));
        let only_zh: Vec<_> = zh.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&zh).collect();
        assert!(only_zh.is_empty() && only_en.is_empty(), "zh only: {only_zh:?}; en only: {only_en:?}");
        assert!(zh.len() > 50);
    }

    #[test]
    fn every_key_the_templates_use_exists() {
        let zh = keys(include_str!("../../locales/zh-CN/main.ftl"));
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut missing = Vec::new();
        for folder in ["templates", "src/pages"] {
            for entry in std::fs::read_dir(dir.join(folder)).unwrap() {
                let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
                let calls = [".t(\"", ".ta(\"", ".ta1(\"", ".ta2(\""];
                for quoted in calls.iter().flat_map(|call| text.split(call).skip(1)) {
                    let key = quoted.split('"').next().unwrap();
                    if !zh.contains(key) {
                        missing.push(key.to_owned());
                    }
                }
            }
        }
        assert!(missing.is_empty(), "keys used but not defined: {missing:?}");
    }

    #[test]
    fn lookups_use_the_readers_language() {
        assert_eq!(Tr(Lang::En).t("nav-home"), "Deals");
        assert_eq!(Tr(Lang::Zh).t("nav-home"), "附近好团");
        assert_eq!(Tr(Lang::En).ta("group-progress", &[("joined", "3".into()), ("size", "5".into())]), "3 of 5 joined");
    }
}
