//! The pages' static files, compiled into the binary (nothing is fetched at run time, no CDN). Each is served
//! under a name carrying a hash of its content, so browsers may cache it for a year.

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
];

/// `name` → `name?v=HASH`: the address pages link to.
pub fn url(name: &str) -> String {
    static VERSIONS: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    let versions = VERSIONS.get_or_init(|| {
        ASSETS.iter().map(|a| (a.name, hex::encode(&Sha256::digest(a.body.as_bytes())[..6]))).collect()
    });
    let version = versions.iter().find(|(n, _)| *n == name).map_or("0", |(_, v)| v.as_str());
    format!("/assets/{name}?v={version}")
}

pub async fn serve(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            asset.body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
