//! Live events over server-sent events: on SQLite within the one instance, on PostgreSQL across two instances
//! of one database (LISTEN/NOTIFY).

use crate::common::{campaign_with, live_campaign_with};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use tuangou_testkit::{Backend, TestApp, on_both_backends};

/// Reads an SSE stream until `until` holds for what arrived, within ten seconds.
pub(crate) struct Watcher {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    seen: String,
}

impl Watcher {
    async fn open(app: &TestApp, path: &str) -> Self {
        Self::open_as(app, path, None).await
    }

    /// The stream as `token`'s bearer sees it (a voucher's is its owner's only).
    pub(crate) async fn open_as(app: &TestApp, path: &str, token: Option<&str>) -> Self {
        let mut request = app.client.get(format!("{}{path}", app.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut watcher = Self { stream: response.bytes_stream().boxed(), seen: String::new() };
        watcher.wait_for(": connected").await;
        watcher
    }

    pub(crate) async fn wait_for(&mut self, text: &str) {
        self.wait_for_times(text, 1).await;
    }

    /// Waits until `text` has arrived `times` times.
    async fn wait_for_times(&mut self, text: &str, times: usize) {
        let read = async {
            while self.seen.matches(text).count() < times {
                let chunk = self.stream.next().await.expect("the stream stays open").expect("a chunk");
                self.seen.push_str(&String::from_utf8_lossy(&chunk));
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), read).await.is_err() {
            panic!("no {text:?} within ten seconds; the stream said:\n{}", self.seen);
        }
    }
}

async fn watchers_see_joins_the_fill_and_the_draw(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    // On PostgreSQL the watcher is connected to another instance than the one that takes the joins.
    let second = match backend {
        Backend::Postgres => Some(first.second_instance().await),
        Backend::Sqlite => None,
    };
    let watched = second.as_ref().unwrap_or(&first);
    let operator = first.operator().await;
    let owner = first.customer("13800138070").await;
    let (_, campaign) =
        live_campaign_with(&first, &operator, &owner, campaign_with(json!({"group_size": 2, "winners_per_group": 1})))
            .await;
    let people = first.customers(&operator, 2, 1_000).await;

    let mut campaign_watcher = Watcher::open(watched, &format!("/api/v1/campaigns/{campaign}/events")).await;
    let (status, opened) =
        first.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let group = opened["group"]["id"].as_str().unwrap().to_owned();
    campaign_watcher.wait_for("event: joined").await;
    assert!(campaign_watcher.seen.contains(&group));

    let mut group_watcher = Watcher::open(watched, &format!("/api/v1/groups/{group}/events")).await;
    let (status, _) = first.post(&format!("/api/v1/groups/{group}/members"), Some(&people[1].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    group_watcher.wait_for("event: joined").await;
    group_watcher.wait_for("event: full").await;
    group_watcher.wait_for("event: drawn").await;
    assert!(group_watcher.seen.contains("\"member_count\":2"));
    let at = |kind: &str| group_watcher.seen.find(kind).unwrap();
    assert!(at("event: joined") < at("event: full") && at("event: full") < at("event: drawn"), "in order");
    campaign_watcher.wait_for("event: drawn").await;

    // A burst of joins at once: every event arrives (several may share one NOTIFY on PostgreSQL), and the joiners
    // fill groups of two instead of opening one each (on PostgreSQL, openers queue on the campaign's stock and look
    // again): six more groups filled and drawn.
    let burst = first.customers(&operator, 12, 1_000).await;
    let join_path = format!("/api/v1/campaigns/{campaign}/join");
    let joins = burst.iter().map(|c| first.post(&join_path, Some(&c.token), json!({})));
    for (status, body) in futures::future::join_all(joins).await {
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    campaign_watcher.wait_for_times("event: joined", 2 + burst.len()).await;
    campaign_watcher.wait_for_times("event: drawn", 1 + burst.len() / 2).await;

    let response = first.client.get(format!("{}/api/v1/groups/nope/events", first.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    drop((campaign_watcher, group_watcher));
    if let Some(second) = second {
        second.finish().await;
    }
    first.finish().await;
}

/// The worker loop (as `serve` runs it) expires a group within a second of its deadline, and says so live.
async fn the_worker_expires_a_group_within_a_second(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138071").await;
    let (_, campaign) =
        live_campaign_with(&app, &operator, &owner, campaign_with(json!({"group_ttl_seconds": 30}))).await;
    let people = app.customers(&operator, 1, 1_000).await;
    let (_, opened) =
        app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    let group = opened["group"]["id"].as_str().unwrap().to_owned();
    let mut watcher = Watcher::open(&app, &format!("/api/v1/groups/{group}/events")).await;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn({
        let app = app.app.clone();
        async move { app.run_jobs(stopped).await }
    });
    app.app.clock().advance(30_000);
    let expired = tokio::time::timeout(Duration::from_secs(1), watcher.wait_for("event: expired")).await;
    let _ = stop.send(true);
    worker.await.unwrap();
    assert!(expired.is_ok(), "not expired within a second of its deadline");
    let (_, record) = app.get(&format!("/api/v1/groups/{group}"), None).await;
    assert_eq!(record["status"], "expired");
    app.finish().await;
}

on_both_backends!(watchers_see_joins_the_fill_and_the_draw, the_worker_expires_a_group_within_a_second);

/// PostgreSQL only (SQLite has no listener): when the listener's connection dies, watchers are told to refetch,
/// and events flow again after it reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_listener_reconnects_and_says_resync() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138072").await;
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(json!({}))).await;
    let people = app.customers(&operator, 2, 5_000).await;
    let mut watcher = Watcher::open(&app, &format!("/api/v1/campaigns/{campaign}/events")).await;

    app.db
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
        )
        .await;
    watcher.wait_for("event: resync").await;
    // Joins after the reconnection arrive again (the listener may take a moment to come back: keep joining).
    let mut joined = false;
    for person in &people {
        let (status, _) =
            app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&person.token), json!({})).await;
        assert_eq!(status, StatusCode::CREATED);
        if tokio::time::timeout(Duration::from_secs(5), watcher.wait_for("event: joined")).await.is_ok() {
            joined = true;
            break;
        }
    }
    assert!(joined, "no event after the listener reconnected:\n{}", watcher.seen);
    app.finish().await;
}
