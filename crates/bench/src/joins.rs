//! Scenario A, "joins": sustained load. Each of C customers has a keep-alive HTTP connection of its own and joins
//! again as soon as its previous join is answered, for S seconds, spreading over a few instant-draw campaigns
//! (N 5, K 2), so every fifth join also fills a group and runs its draw before answering.

use crate::api::{self, User};
use crate::cost::Probe;
use crate::load;
use crate::stats::Summary;
use reqwest::StatusCode;
use std::time::Duration;

/// Runs the load: `customers[i]` starts on campaign `i mod len` and moves to the next campaign after each join.
pub async fn run(
    base: &str,
    campaigns: &[String],
    customers: &[User],
    duration: Duration,
    probe: &Probe,
) -> anyhow::Result<Summary> {
    let (base, campaigns) = (base.to_owned(), campaigns.to_vec());
    load::back_to_back(customers, duration, probe, StatusCode::CREATED, move |client, token, turn| {
        api::join_request(client, &base, &campaigns[turn % campaigns.len()], token)
    })
    .await
}
