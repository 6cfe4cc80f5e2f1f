//! Customers who hang up in the middle of a join, on both backends: a request whose connection is reset while the
//! join runs either takes effect whole (a seat and its price held) or not at all, never a seat without its money
//! or money moved without a seat.

use crate::common::{campaign_with, live_campaign_with, wallet};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

const PRICE: i64 = 990;
/// Hang-ups sent in all, by [`CLIENTS`] clients at once, within [`HANG_UP_BUDGET`].
const HANG_UPS: usize = 1_200;
const CLIENTS: usize = 16;
const HANG_UP_BUDGET: Duration = Duration::from_secs(5);

/// Opens a connection, sends `POST path` signed in with `token`, and 0–4 ms later resets the connection (SO_LINGER
/// 0, so the close sends RST) without reading a byte of the answer.
pub(crate) async fn join_and_hang_up(address: &str, path: &str, token: &str, body: &str) {
    let mut stream = TcpStream::connect(address).await.expect("connect to the server");
    stream.set_zero_linger().expect("SO_LINGER 0");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send the request");
    let delay = Duration::from_micros(fastrand::u64(0..=4_000));
    if delay < Duration::from_millis(1) {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(delay).await;
    }
    drop(stream);
}

/// [`HANG_UPS`] joins of `path` by callers picked at random, each hung up by [`join_and_hang_up`].
pub(crate) async fn hang_up_joins(app: &TestApp, path: &str, callers: &[TestUser], body: &'static str) {
    let address = Arc::<str>::from(app.base.trim_start_matches("http://"));
    let path = Arc::<str>::from(path);
    let tokens: Arc<[String]> = callers.iter().map(|c| c.token.clone()).collect();
    let sent = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + HANG_UP_BUDGET;
    let clients = (0..CLIENTS).map(|_| {
        let (address, path, tokens, sent) = (address.clone(), path.clone(), tokens.clone(), sent.clone());
        tokio::spawn(async move {
            while sent.fetch_add(1, Ordering::SeqCst) < HANG_UPS && Instant::now() < deadline {
                let token = &tokens[fastrand::usize(..tokens.len())];
                join_and_hang_up(&address, &path, token, body).await;
            }
        })
    });
    for client in futures::future::join_all(clients).await {
        client.expect("a hanging-up client");
    }
}

/// The caller's memberships, as `GET /api/v1/me/memberships` lists them.
async fn memberships(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let (status, body) = app.get("/api/v1/me/memberships?limit=200", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().expect("items").clone()
}

/// How many ledger postings touch any of the customer's accounts.
async fn postings_of(app: &TestApp, user: &TestUser) -> i64 {
    let query = format!("SELECT COUNT(*) FROM ledger_postings WHERE account LIKE 'customer:{}:%'", user.id);
    app.db.scalar(&query).await
}

/// Customers with no money, and customers with exactly one join's price, send joins by campaign and reset their
/// connections 0–4 ms later, sixteen at a time. Once every write that was accepted has run to its end (a join sent
/// afterwards is answered, then the service stops and starts again on the same database): no customer without money
/// has a membership, a balance or a posting; each customer with the price either has one membership and the price
/// held, or none and the price untouched; and every invariant holds.
async fn customers_who_hang_up_mid_join_never_get_a_seat_they_did_not_pay_for(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138081").await;
    // Groups of 100 never fill here, so nothing is drawn: a seat's price stays held.
    let rules = json!({"quantity": 20, "group_size": 100, "winners_per_group": 10});
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(rules)).await;
    let broke = app.customers(&operator, 20, 0).await;
    let exact = app.customers(&operator, 8, PRICE).await;
    let path = format!("/api/v1/campaigns/{campaign}/join");
    let callers: Vec<TestUser> = broke.iter().chain(&exact).cloned().collect();
    hang_up_joins(&app, &path, &callers, "{}").await;

    // Quiescence: a join sent after every hang-up is answered, then stopping the service waits for the requests
    // still in flight and closes the pools; the answers below come from the service started again.
    let witness = app.customers(&operator, 1, PRICE).await.remove(0);
    let (status, body) = app.post(&path, Some(&witness.token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "an ordinary join still works: {body}");
    tokio::time::timeout(Duration::from_secs(10), app.stop()).await.expect("the service stops within 10 s");
    let app = TestApp::spawn_on(app.db.clone(), app.app.clock().clone()).await;

    for customer in &broke {
        let joined = memberships(&app, customer).await;
        assert!(joined.is_empty(), "a customer without money got a seat: {joined:?}");
        assert_eq!(wallet(&app, customer).await, json!({"available": 0, "held": 0, "points": 0}));
        assert_eq!(postings_of(&app, customer).await, 0, "no money ever moved for a customer without any");
    }
    for customer in &exact {
        let joined = memberships(&app, customer).await;
        let expected = match joined.len() {
            0 => json!({"available": PRICE, "held": 0, "points": 0}),
            1 => json!({"available": 0, "held": PRICE, "points": 0}),
            n => panic!("{n} memberships for one join's money: {joined:?}"),
        };
        assert_eq!(wallet(&app, customer).await, expected, "memberships: {joined:?}");
    }
    app.finish().await;
}

/// The same with joins that pay through the sandbox provider: a seat held for a payment always has its payment
/// (made before the provider is asked, so a hang-up between the two leaves a payment the next look completes), no
/// money moves before it arrives, and at the end of the window every such seat is closed at the provider and
/// released.
async fn customers_who_hang_up_mid_paid_join_leave_a_seat_with_its_payment_or_nothing(backend: Backend) {
    use tuangou_app::payments::PaymentSettings;
    use tuangou_app::payments::sandbox::{Faults, SandboxKey, SandboxSettings};
    let sandbox = SandboxSettings { key: SandboxKey::from_bytes([3; 32]), faults: Faults::default() };
    let settings = tuangou_app::Settings {
        payments: PaymentSettings { sandbox: Some(sandbox), partner_mode: false, ..PaymentSettings::default() },
        ..tuangou_app::Settings::default()
    };
    let mut app = TestApp::spawn_with(backend, settings).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138082").await;
    let rules = json!({"quantity": 20, "group_size": 100, "winners_per_group": 10, "payment_window_minutes": 1});
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(rules)).await;
    let callers = app.customers(&operator, 12, 0).await;
    let path = format!("/api/v1/campaigns/{campaign}/join");
    hang_up_joins(&app, &path, &callers, r#"{"pay_with":"sandbox"}"#).await;

    let witness = app.customers(&operator, 1, 0).await.remove(0);
    let (status, body) = app.post(&path, Some(&witness.token), json!({"pay_with": "sandbox"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "an ordinary paid join still works: {body}");
    tokio::time::timeout(Duration::from_secs(10), app.stop()).await.expect("the service stops within 10 s");
    let app = TestApp::spawn_on_with(app.db.clone(), app.app.settings().clone(), app.app.clock().clone()).await;

    let mut seats = 0;
    for customer in callers.iter().chain([&witness]) {
        for seat in memberships(&app, customer).await {
            assert_eq!(seat["status"], "pending", "{seat}");
            let membership = app.app.store().membership(seat["id"].as_str().unwrap()).await.unwrap().unwrap();
            let payment = app.app.store().payment_of_membership(&membership.id).await.unwrap();
            assert!(payment.is_some_and(|p| p.status == "created"), "a pending seat without its payment: {seat}");
            seats += 1;
        }
        assert_eq!(postings_of(&app, customer).await, 0, "no money moved before it arrived");
    }
    assert!(seats >= 1);
    // The window ends: every seat's payment is closed at the provider, then the seat released.
    app.app.clock().advance(61_000);
    for _ in 0..20 {
        app.app.run_jobs_once().await.unwrap();
    }
    for customer in callers.iter().chain([&witness]) {
        for seat in memberships(&app, customer).await {
            assert_eq!(seat["status"], "unpaid", "{seat}");
        }
    }
    app.finish().await;
}

on_both_backends!(
    customers_who_hang_up_mid_join_never_get_a_seat_they_did_not_pay_for,
    customers_who_hang_up_mid_paid_join_leave_a_seat_with_its_payment_or_nothing,
);
