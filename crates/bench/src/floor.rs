//! The HTTP floor, for scale: what the same clients get from the service for requests that write nothing. Each
//! customer sends back to back on its own keep-alive connection, first `GET /healthz` (HTTP alone: routing,
//! middleware, no database), then `GET /api/v1/me` (HTTP plus the session and account reads every signed-in
//! request makes). A join is at least one such request plus its writes, so no join rate can pass these figures
//! on the same machine; set beside the raw engine rate they show how much of the ratio HTTP alone uses up.

use crate::api::{self, Timed, User};
use crate::cost::Probe;
use crate::stats::Summary;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// Both floors.
pub struct Floor {
    /// `GET /healthz`.
    pub bare: Summary,
    /// `GET /api/v1/me`.
    pub signed_in: Summary,
}

/// Runs each floor for `duration` with one connection per customer.
pub async fn run(base: &str, customers: &[User], duration: Duration, probe: &Probe) -> anyhow::Result<Floor> {
    let start = probe.read().await;
    let mut bare = load(customers, duration, |client, _| client.get(format!("{base}/healthz"))).await?;
    bare.cost = probe.cost_since(start, bare.succeeded).await;
    let start = probe.read().await;
    let mut signed_in =
        load(customers, duration, |client, token| client.get(format!("{base}/api/v1/me")).bearer_auth(token)).await?;
    signed_in.cost = probe.cost_since(start, signed_in.succeeded).await;
    Ok(Floor { bare, signed_in })
}

/// Every customer sends `request` back to back until `duration` has passed; each must answer 200.
async fn load(
    customers: &[User],
    duration: Duration,
    request: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(customers.len());
    for customer in customers {
        let client = api::http_client()?;
        // Each task gets the customer's request ready-made: a builder per request, cloned cheaply.
        let template = request(&client, &customer.token);
        tasks.push(tokio::spawn(async move {
            let mut answers: Vec<Timed> = Vec::new();
            while Instant::now() < deadline {
                let Some(request) = template.try_clone() else { break };
                answers.push(api::timed(request, StatusCode::OK).await.slim());
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await?);
    }
    Ok(Summary::of(&answers, started.elapsed()))
}
