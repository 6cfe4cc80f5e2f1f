//! Live events over server-sent events: on SQLite within the one instance, on PostgreSQL across two instances
//! of one database (LISTEN/NOTIFY).

use crate::common::{campaign_with, live_campaign_with};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use tuangou_testkit::{Backend, TestApp, on_both_backends};

/// Reads an SSE stream until `until` holds for what arrived, within ten seconds.
struct Watcher {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    seen: String,
}

impl Watcher {
    async fn open(app: &TestApp, path: &str) -> Self {
        let response = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut watcher = Self { stream: response.bytes_stream().boxed(), seen: String::new() };
        watcher.wait_for(": connected").await;
        watcher
    }

    async fn wait_for(&mut self, text: &str) {
        let read = async {
            while !self.seen.contains(text) {
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
    campaign_watcher.wait_for("event: drawn").await;

    let response = first.client.get(format!("{}/api/v1/groups/nope/events", first.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    drop((campaign_watcher, group_watcher));
    if let Some(second) = second {
        second.finish().await;
    }
    first.finish().await;
}

on_both_backends!(watchers_see_joins_the_fill_and_the_draw);
