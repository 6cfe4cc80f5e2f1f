//! Closed-loop load, as scenario A and the HTTP floor use it: each customer, on a keep-alive connection of its
//! own, sends its next request as soon as the last one is answered, until the time is up; the run is metered.

use crate::api::{self, User};
use crate::cost::Probe;
use crate::stats::Summary;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// Runs the load for `duration` and summarises it, with what each successful request cost the machine.
/// `request(client, token, turn)` makes a customer's next request; `turn` is the customer's index plus the
/// requests it has sent so far, so customers can start at different places and move on with each request. Every
/// answer but `expected` counts as an error.
pub async fn back_to_back<F>(
    customers: &[User],
    duration: Duration,
    probe: &Probe,
    expected: StatusCode,
    request: F,
) -> anyhow::Result<Summary>
where
    F: Fn(&reqwest::Client, &str, usize) -> reqwest::RequestBuilder + Clone + Send + 'static,
{
    let start = probe.read().await;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(customers.len());
    for (i, customer) in customers.iter().enumerate() {
        let (client, token, request) = (api::http_client()?, customer.token.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            while Instant::now() < deadline {
                let next = request(&client, &token, i + answers.len());
                answers.push(api::timed(next, expected).await.slim());
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await?);
    }
    let mut summary = Summary::of(&answers, started.elapsed());
    summary.cost = probe.cost_since(start, summary.succeeded).await;
    Ok(summary)
}
