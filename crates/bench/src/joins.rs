//! Scenario A, "joins": sustained load. Each of C customers has a keep-alive HTTP connection of its own and joins
//! again as soon as its previous join is answered, for S seconds, spreading over a few instant-draw campaigns
//! (N 5, K 2), so every fifth join also fills a group and runs its draw before answering.

use crate::api::{self, Timed, User};
use crate::stats::Summary;
use std::time::{Duration, Instant};

/// Runs the load: `customers[i]` starts on campaign `i mod len` and moves to the next campaign after each join.
pub async fn run(base: &str, campaigns: &[String], customers: &[User], duration: Duration) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(customers.len());
    for (i, customer) in customers.iter().enumerate() {
        let client = api::http_client()?;
        let (base, campaigns, token) = (base.to_owned(), campaigns.to_vec(), customer.token.clone());
        tasks.push(tokio::spawn(async move { keep_joining(&client, &base, &campaigns, &token, i, deadline).await }));
    }
    let mut joins = Vec::new();
    for task in tasks {
        joins.extend(task.await?);
    }
    Ok(Summary::of(&joins, started.elapsed()))
}

/// One customer's loop: join, and again, until `deadline`.
async fn keep_joining(
    client: &reqwest::Client,
    base: &str,
    campaigns: &[String],
    token: &str,
    first: usize,
    deadline: Instant,
) -> Vec<Timed> {
    let mut joins = Vec::new();
    let mut next = first;
    while Instant::now() < deadline {
        let campaign = &campaigns[next % campaigns.len()];
        joins.push(api::join(client, base, campaign, token).await.slim());
        next += 1;
    }
    joins
}
