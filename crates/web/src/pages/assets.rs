//! The pages' static files, compiled into the binary (nothing is fetched at run time, no CDN). Each is served
//! under a name carrying a hash of its content, so browsers may cache it for a year. The pages' words for the
//! API's refusals are made once from the catalogues (`problem_words`) and served the same way.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: include_str!("../../assets/app.css") },
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_str!("../../assets/app.js") },
    Asset {
        name: "verify.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/verify.js"),
    },
    Asset {
        name: "photos.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/photos.js"),
    },
    Asset {
        name: "redeem.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/redeem.js"),
    },
    Asset {
        name: "scan.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/scan.js"),
    },
    // jsQR 1.4.0 from the npm registry (Apache-2.0, its licence beside it): the counter's QR decoder where the
    // browser has no BarcodeDetector. Loaded by the counter page only.
    Asset {
        name: "jsQR.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../assets/vendor/jsQR.js"),
    },
];

/// The assets made once from the catalogues at start (`problem_words`): (name, body).
fn generated() -> &'static [(&'static str, String)] {
    static GENERATED: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    GENERATED.get_or_init(|| {
        ["problems.zh-CN.js", "problems.en.js"]
            .into_iter()
            .filter_map(|name| super::problem_words::asset(name).map(|body| (name, body)))
            .collect()
    })
}

/// The asset `name`: (content type, body).
fn find(name: &str) -> Option<(&'static str, &'static str)> {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => Some((asset.content_type, asset.body)),
        None => generated()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, body)| ("text/javascript; charset=utf-8", body.as_str())),
    }
}

/// `name` → `name?v=HASH`: the address pages link to.
pub fn url(name: &str) -> String {
    static VERSIONS: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    let versions = VERSIONS.get_or_init(|| {
        let names = ASSETS.iter().map(|a| a.name).chain(generated().iter().map(|(n, _)| *n));
        names.filter_map(|n| find(n).map(|(_, body)| (n, hex::encode(&Sha256::digest(body.as_bytes())[..6])))).collect()
    });
    let version = versions.iter().find(|(n, _)| *n == name).map_or("0", |(_, v)| v.as_str());
    format!("/assets/{name}?v={version}")
}

pub async fn serve(Path(name): Path<String>) -> Response {
    match find(&name) {
        Some((content_type, body)) => (
            [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")],
            body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
