//! Scenario B, "race": a thundering herd. Every customer opens a keep-alive connection, waits at a barrier, and
//! then all of them `POST /join` the same campaign at once (by default 1,000 customers, groups of 100 with 10
//! winners, stock for exactly 10 groups: exactly one seat each). Afterwards every group that an answer named is
//! read back to show that none holds more members than its size, that full and drawn groups hold exactly their
//! size, and that the members counted in the groups are exactly the joins that were answered 201.

use crate::api::{self, Api, Timed, User};
use crate::stats::Summary;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::Barrier;

/// What the race came to.
pub struct Race {
    pub summary: Summary,
    pub groups: GroupsCheck,
}

/// The groups as read back after the race.
#[derive(Debug, Default)]
pub struct GroupsCheck {
    /// How many groups, by status.
    pub by_status: BTreeMap<String, usize>,
    /// Members over all groups.
    pub members: usize,
    /// Over-filled groups, under-filled full groups, and any other mismatch, in words.
    pub violations: Vec<String>,
}

impl GroupsCheck {
    pub fn overfilled(&self) -> usize {
        self.violations.iter().filter(|v| v.contains("over-filled")).count()
    }
}

/// Runs the race on `campaign` with one connection per customer, then checks the groups.
pub async fn run(api: &Api, campaign: &str, customers: &[User], max_groups: usize) -> anyhow::Result<Race> {
    let barrier = Arc::new(Barrier::new(customers.len()));
    let mut tasks = Vec::with_capacity(customers.len());
    for customer in customers {
        let client = api::http_client()?;
        let (base, campaign, token, barrier) =
            (api.base.clone(), campaign.to_owned(), customer.token.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            // Connect first, so the race measures joins rather than TCP handshakes.
            let warm = client.get(format!("{base}/healthz")).send().await.and_then(|r| r.error_for_status());
            barrier.wait().await;
            let join = api::join(&client, &base, &campaign, &token).await;
            (warm.err().map(|e| e.to_string()), join)
        }));
    }
    let mut joins = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (warm_failure, join) = task.await?;
        if let Some(failure) = warm_failure {
            eprintln!("  warning: a client could not connect before the race: {failure}");
        }
        joins.push(join);
    }
    let summary = Summary::of(&joins, span(&joins));
    let groups = check_groups(api, &joins, max_groups).await?;
    Ok(Race { summary, groups })
}

/// From the first request sent to the last answer received.
fn span(joins: &[Timed]) -> std::time::Duration {
    let first = joins.iter().map(|j| j.started).min();
    let last = joins.iter().map(|j| j.started + j.latency).max();
    match (first, last) {
        (Some(first), Some(last)) => last - first,
        _ => std::time::Duration::ZERO,
    }
}

/// Reads back every group the 201 answers named and checks it against its size and against the answers.
async fn check_groups(api: &Api, joins: &[Timed], max_groups: usize) -> anyhow::Result<GroupsCheck> {
    let mut check = GroupsCheck::default();
    let mut seats = BTreeSet::new();
    let mut answered: BTreeMap<String, usize> = BTreeMap::new();
    for join in joins.iter().filter(|j| j.ok()) {
        let body = &join.reply.body;
        let group = body["group"]["id"].as_str().unwrap_or_default().to_owned();
        if !seats.insert((group.clone(), body["membership"]["seq"].as_i64())) {
            check.violations.push(format!("group {group}: seat {} was answered twice", body["membership"]["seq"]));
        }
        *answered.entry(group).or_default() += 1;
    }
    if answered.len() > max_groups {
        check.violations.push(format!("{} groups opened, but stock allows {max_groups}", answered.len()));
    }
    for (id, answers) in &answered {
        let reply = api.get(&format!("/api/v1/groups/{id}")).await;
        if reply.status != Some(reqwest::StatusCode::OK) {
            check.violations.push(format!("group {id}: GET answered {}", reply.describe()));
            continue;
        }
        check_group(&reply.body, *answers, &mut check);
    }
    Ok(check)
}

/// One group: members ≤ size, full and drawn groups exactly at size, as many members as 201 answers named it.
fn check_group(group: &serde_json::Value, answers: usize, check: &mut GroupsCheck) {
    let id = group["id"].as_str().unwrap_or("?");
    let status = group["status"].as_str().unwrap_or("?").to_owned();
    let size = group["group_size"].as_u64().unwrap_or(0) as usize;
    let members = group["members"].as_array().map_or(0, Vec::len);
    check.members += members;
    if members > size {
        check.violations.push(format!("group {id}: over-filled, {members} members in a group of {size}"));
    }
    if matches!(status.as_str(), "full" | "drawn") && members != size {
        check.violations.push(format!("group {id}: {status} with {members} members in a group of {size}"));
    }
    if members != answers {
        check.violations.push(format!("group {id}: {members} members, but {answers} joins were answered 201"));
    }
    *check.by_status.entry(status).or_default() += 1;
}
