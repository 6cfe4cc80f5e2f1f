//! What an instance keeps of sessions, roles and live campaigns is forgotten when they change, on the instance
//! that changed them at once and, on PostgreSQL, on every other instance as soon as it hears the change's
//! notification. Each test makes the cached answer first (so a cache that was not told would answer it again),
//! then changes the row on one instance and asks the other (on SQLite, one instance: the same one).
//!
//! "As soon as it hears": notifications arrive in commit order on one listener connection, so once the second
//! instance has heard a group event published after the change, it has heard the change too.

use crate::common::{campaign_with, code, live_campaign_with};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tuangou_app::BusMessage;
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

/// The instance to ask after a change on `first`: a second one on PostgreSQL, the same one on SQLite.
async fn other_instance(first: &TestApp, backend: Backend) -> Option<TestApp> {
    match backend {
        Backend::Postgres => Some(first.second_instance().await),
        Backend::Sqlite => None,
    }
}

/// Waits until `listener` has heard what `first` committed so far: `someone` joins `campaign` on `first`, and
/// its `joined` event comes back through `listener`'s own listener (immediately on SQLite, one instance).
async fn heard_so_far(first: &TestApp, listener: &TestApp, campaign: &str, someone: &TestUser) {
    let mut heard = listener.app.subscribe();
    let (status, joined) =
        first.post(&format!("/api/v1/campaigns/{campaign}/join"), Some(&someone.token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{joined}");
    let group = joined["group"]["id"].as_str().unwrap().to_owned();
    loop {
        match heard.recv().await.expect("the listener is running") {
            BusMessage::Event(event) if event.group_id == group && event.kind == "joined" => return,
            _ => {}
        }
    }
}

/// A session signed out, or whose account closed, on one instance is refused on every instance, though each had
/// just let it in.
async fn an_ended_session_is_refused_everywhere(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = other_instance(&first, backend).await;
    let other = second.as_ref().unwrap_or(&first);
    let operator = first.operator().await;
    let owner = first.customer("13800138201").await;
    let body = campaign_with(json!({"quantity": 100, "draw_mode": "scheduled", "draw_window_hours": 2}));
    let (_, campaign) = live_campaign_with(&first, &operator, &owner, body).await;
    let joiner = first.customers(&operator, 1, 100_000).await.remove(0);
    let leaving = first.customer("13800138202").await;
    let closing = first.customer("13800138203").await;
    for user in [&leaving, &closing] {
        for instance in [&first, other] {
            let (status, _) = instance.get("/api/v1/me", Some(&user.token)).await;
            assert_eq!(status, StatusCode::OK, "signed in, and now cached");
        }
    }

    let (status, _) = first.send(Method::DELETE, "/api/v1/sessions/current", Some(&leaving.token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = first.send(Method::DELETE, "/api/v1/me", Some(&closing.token), None).await;
    assert!(status.is_success(), "{status} {body}");
    let (status, _) = first.get("/api/v1/me", Some(&leaving.token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "at once where it was signed out");

    heard_so_far(&first, other, &campaign, &joiner).await;
    for user in [&leaving, &closing] {
        for instance in [&first, other] {
            let (status, body) = instance.get("/api/v1/me", Some(&user.token)).await;
            assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "not_signed_in"), "{body}");
        }
    }
    if let Some(second) = second {
        second.finish().await;
    }
    first.finish().await;
}

/// Someone made staff on one instance may no longer join the merchant's groups on any instance, though each had
/// just let them join as a customer.
async fn new_staff_may_not_join_anywhere(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = other_instance(&first, backend).await;
    let other = second.as_ref().unwrap_or(&first);
    let operator = first.operator().await;
    let owner = first.customer("13800138211").await;
    let body = campaign_with(
        json!({"quantity": 100, "draw_mode": "scheduled", "draw_window_hours": 2, "per_customer_limit": 10}),
    );
    let (merchant, campaign) = live_campaign_with(&first, &operator, &owner, body).await;
    let mut people = first.customers(&operator, 2, 100_000).await;
    let (hired, joiner) = (people.remove(0), people.remove(0));
    let join = format!("/api/v1/campaigns/{campaign}/join");
    for instance in [&first, other] {
        let (status, body) = instance.post(&join, Some(&hired.token), json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "a customer still: {body}");
    }

    let (status, body) = first
        .post(&format!("/api/v1/merchants/{merchant}/staff"), Some(&owner.token), json!({"phone": hired.phone}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    heard_so_far(&first, other, &campaign, &joiner).await;
    for instance in [&first, other] {
        let (status, body) = instance.post(&join, Some(&hired.token), json!({})).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "own_merchant"), "{body}");
    }
    if let Some(second) = second {
        second.finish().await;
    }
    first.finish().await;
}

/// A campaign ended on one instance takes no join on any instance, though each had just taken one.
async fn an_ended_campaign_takes_no_join_anywhere(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = other_instance(&first, backend).await;
    let other = second.as_ref().unwrap_or(&first);
    let operator = first.operator().await;
    let owner = first.customer("13800138221").await;
    let body = campaign_with(
        json!({"quantity": 100, "draw_mode": "scheduled", "draw_window_hours": 2, "per_customer_limit": 10}),
    );
    let (_, campaign) = live_campaign_with(&first, &operator, &owner, body).await;
    let (_, watched) = live_campaign_with(&first, &operator, &owner, campaign_with(json!({"quantity": 100}))).await;
    let mut people = first.customers(&operator, 2, 100_000).await;
    let (customer, joiner) = (people.remove(0), people.remove(0));
    let join = format!("/api/v1/campaigns/{campaign}/join");
    for instance in [&first, other] {
        let (status, body) = instance.post(&join, Some(&customer.token), json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let (status, body) = first.post(&format!("/api/v1/campaigns/{campaign}/end"), Some(&owner.token), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    heard_so_far(&first, other, &watched, &joiner).await;
    for instance in [&first, other] {
        let (status, body) = instance.post(&join, Some(&customer.token), json!({})).await;
        assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "campaign_not_live"), "{body}");
    }
    if let Some(second) = second {
        second.finish().await;
    }
    first.finish().await;
}

on_both_backends!(
    an_ended_session_is_refused_everywhere,
    new_staff_may_not_join_anywhere,
    an_ended_campaign_takes_no_join_anywhere
);
