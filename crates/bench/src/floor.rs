//! The HTTP floor, for scale: what the same clients get from the service for requests that write nothing. Each
//! customer sends back to back on its own keep-alive connection, first `GET /healthz` (HTTP alone: routing,
//! middleware, no database), then `GET /api/v1/me` (HTTP plus the session and account reads every signed-in
//! request makes). A join is at least one such request plus its writes, so no join rate can pass these figures
//! on the same machine; set beside the raw engine rate they show how much of the ratio HTTP alone uses up.

use crate::api::User;
use crate::cost::Probe;
use crate::load;
use crate::stats::Summary;
use reqwest::StatusCode;
use std::time::Duration;

/// Both floors.
pub struct Floor {
    /// `GET /healthz`.
    pub bare: Summary,
    /// `GET /api/v1/me`.
    pub signed_in: Summary,
}

/// Runs each floor for `duration` with one connection per customer.
pub async fn run(base: &str, customers: &[User], duration: Duration, probe: &Probe) -> anyhow::Result<Floor> {
    let healthz = format!("{base}/healthz");
    let bare = load::back_to_back(customers, duration, probe, StatusCode::OK, move |client, _, _| client.get(&healthz))
        .await?;
    let me = format!("{base}/api/v1/me");
    let signed_in = load::back_to_back(customers, duration, probe, StatusCode::OK, move |client, token, _| {
        client.get(&me).bearer_auth(token)
    })
    .await?;
    Ok(Floor { bare, signed_in })
}
