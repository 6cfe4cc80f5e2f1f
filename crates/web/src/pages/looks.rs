//! What makes the pages look like a product (issue 18): photos with a fallback tile when there is none, the
//! draw's method kept out of the customer's sentences (it lives under "如何验证"), and the site's icon.

use super::Chrome;
use axum::http::header;
use axum::response::IntoResponse;

/// Tile colours a store or deal without a photo gets, chosen by its category (app.css `.tone-0` … `.tone-5`).
const TONES: u32 = 6;

/// The name of the draw's algorithm, as the rules card's sentences carry it.
const METHOD: &str = "tuangou-draw-v1";

impl Chrome {
    /// The address of the first photo there is (`/media/…`): a deal's own, else its store's.
    pub fn photo_src(&self, first: &Option<String>, second: &Option<String>) -> Option<String> {
        first.as_deref().or(second.as_deref()).map(tuangou_app::App::photo_path)
    }

    /// The address of a photo (`/media/…`), if there is one.
    pub fn photo_of(&self, photo: &Option<String>) -> Option<String> {
        self.photo_src(photo, &None)
    }

    /// A stable tile colour for a category: the same category, the same colour, on every page.
    pub fn tone(&self, category: &str) -> u32 {
        // FNV-1a: stable across builds and platforms (std's hasher is not).
        let hash = category.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        hash % TONES
    }

    /// The first letter of a name, for a tile without a photo.
    pub fn initial(&self, name: &str) -> String {
        name.chars().find(|c| c.is_alphanumeric()).map(String::from).unwrap_or_default()
    }

    /// A rules card sentence without the algorithm's name: "满员即开奖（tuangou-draw-v1，可验证）" reads
    /// "满员即开奖（可验证）". The name and the hashes are under "如何验证"; the card of the API keeps it.
    pub fn plain(&self, sentence: &str) -> String {
        sentence.replace(&format!("{METHOD}，"), "").replace(&format!("{METHOD}, "), "").replace(METHOD, "")
    }
}

/// A photo control on an owner's page (`templates/photo_field.html`, sent by `assets/photos.js`).
pub struct PhotoField {
    /// The file input's id.
    pub id: &'static str,
    /// Where the photo is `PUT`; `{id}` stands for the draft's id until it is saved.
    pub url: String,
    /// `now` (sent when chosen) or `after-save` (sent once the editor saved the new draft).
    pub mode: &'static str,
    /// The photo shown now.
    pub current: Option<String>,
}

impl PhotoField {
    /// The store's photo.
    pub fn store(merchant: &str, photo: Option<&str>) -> Self {
        let url = format!("/api/v1/merchants/{merchant}/photo");
        Self { id: "store-photo", url, mode: "now", current: photo.map(tuangou_app::App::photo_path) }
    }

    /// A saved campaign's photo, or a new one's (`campaign` None: sent after the draft is saved).
    pub fn campaign(campaign: Option<&str>, photo: Option<&str>) -> Self {
        let current = photo.map(tuangou_app::App::photo_path);
        match campaign {
            Some(id) => Self { id: "photo", url: format!("/api/v1/campaigns/{id}/photo"), mode: "now", current },
            None => Self { id: "photo", url: "/api/v1/campaigns/{id}/photo".into(), mode: "after-save", current },
        }
    }
}

const FAVICON_SVG: &str = include_str!("../../assets/favicon.svg");
const FAVICON_ICO: &[u8] = include_bytes!("../../assets/favicon.ico");

/// `/favicon.svg`, the icon pages link to. Its address is fixed (browsers ask for it by name): cached a day.
pub async fn favicon_svg() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")], FAVICON_SVG)
}

/// `/favicon.ico` (16, 32 and 48 px), for browsers and tools that ask for it whatever the page links.
pub async fn favicon_ico() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "image/x-icon"), (header::CACHE_CONTROL, "public, max-age=86400")], FAVICON_ICO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::Tr;
    use tuangou_domain::rules_card::Lang;

    fn chrome() -> Chrome {
        Chrome {
            tr: Tr(Lang::Zh),
            caller: None,
            user_name: None,
            is_operator: false,
            shops: Vec::new(),
            shop_names: Vec::new(),
            path: "/".into(),
            switched_to: None,
        }
    }

    #[test]
    fn the_method_leaves_the_sentence_and_the_rest_stays() {
        let page = chrome();
        assert_eq!(page.plain("满员即开奖（tuangou-draw-v1，可验证）"), "满员即开奖（可验证）");
        assert_eq!(
            page.plain("drawn the moment the group fills (tuangou-draw-v1, verifiable)"),
            "drawn the moment the group fills (verifiable)"
        );
    }

    #[test]
    fn a_category_keeps_its_tone_and_a_deal_falls_back_to_its_store() {
        let page = chrome();
        assert_eq!(page.tone("火锅"), page.tone("火锅"));
        assert!(page.tone("咖啡") < TONES);
        assert_eq!(page.initial("  老码头火锅"), "老");
        let store = Some("b".repeat(64) + ".jpg");
        assert_eq!(page.photo_src(&None, &store), Some(format!("/media/{}.jpg", "b".repeat(64))));
        assert_eq!(page.photo_src(&None, &None), None);
    }
}
