//! Redemptions at the counter and 随时退 refunds hung up over real HTTP, many at once, on both backends: each
//! voucher ends redeemed once, refunded once, or still issued, and the merchant is paid exactly for the vouchers
//! redeemed (the platform's commission likewise), the winners refunded exactly for those refunded.

use crate::common::{Won, campaign_with, live_campaign_with, wallet, winner};
use crate::fault_payouts::stopped_and_started_again;
use crate::hangups::join_and_hang_up;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

const PRICE: i64 = 990;
const COMMISSION: i64 = 49;
const VOUCHERS: usize = 12;
/// Hang-ups sent in all, by [`CLIENTS`] clients at once, within [`BUDGET`].
const HANG_UPS: usize = 600;
const CLIENTS: usize = 16;
const BUDGET: Duration = Duration::from_secs(4);

async fn merchant_wallet(app: &TestApp, merchant: &str, owner: &TestUser) -> Value {
    let (status, body) = app.get(&format!("/api/v1/merchants/{merchant}/wallet"), Some(&owner.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Owner redemptions and winners' refunds of the same vouchers, each hung up 0–4 ms after it was sent.
async fn hang_up_redemptions_and_refunds(app: &TestApp, merchant: &str, owner: &TestUser, won: Arc<Vec<Won>>) {
    let address = Arc::<str>::from(app.base.trim_start_matches("http://"));
    let redeem = Arc::<str>::from(format!("/api/v1/merchants/{merchant}/redemptions"));
    let owner = Arc::<str>::from(owner.token.as_str());
    let sent = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + BUDGET;
    let clients = (0..CLIENTS).map(|_| {
        let (address, redeem, owner, sent, won) =
            (address.clone(), redeem.clone(), owner.clone(), sent.clone(), won.clone());
        tokio::spawn(async move {
            while sent.fetch_add(1, Ordering::SeqCst) < HANG_UPS && Instant::now() < deadline {
                // A third of the vouchers are only redeemed, a third only refunded, a third both at once.
                let index = fastrand::usize(..won.len());
                let voucher = &won[index];
                let redeem_it = match index % 3 {
                    0 => true,
                    1 => false,
                    _ => fastrand::bool(),
                };
                if redeem_it {
                    let body = json!({"code": voucher.code()}).to_string();
                    join_and_hang_up(&address, &redeem, &owner, &body).await;
                } else {
                    let path = format!("/api/v1/me/vouchers/{}/refund", voucher.id());
                    join_and_hang_up(&address, &path, &voucher.winner.token, "{}").await;
                }
            }
        })
    });
    for client in futures::future::join_all(clients).await {
        client.expect("a hanging-up client");
    }
}

/// Vouchers redeemed and refunded at once by clients who hang up: once every request in flight ended (the
/// service stopped and started again), each voucher is issued, redeemed with one redemption, or refunded with the
/// price back; the merchant's available and receivable and the platform's commission moved exactly for those.
async fn hang_ups_mid_redemption_and_refund_settle_each_voucher_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138401").await;
    let rules = json!({"quantity": 1_000, "group_size": 2, "winners_per_group": 1});
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(rules)).await;
    let mut won = Vec::new();
    for _ in 0..VOUCHERS {
        won.push(winner(&app, &operator, &campaign, PRICE).await);
    }
    let before = merchant_wallet(&app, &merchant, &owner).await;
    let commission_before = app.app.store().balance("platform:commission", "fen").await.unwrap();
    let won = Arc::new(won);
    hang_up_redemptions_and_refunds(&app, &merchant, &owner, won.clone()).await;
    let app = stopped_and_started_again(app).await;

    let (mut redeemed, mut refunded) = (0, 0);
    for voucher in won.iter() {
        let (_, mine) = app.get("/api/v1/me/vouchers", Some(&voucher.winner.token)).await;
        let row = mine["items"].as_array().unwrap().iter().find(|v| v["id"] == voucher.id()).unwrap().clone();
        let query = format!("SELECT COUNT(*) FROM redemptions WHERE voucher_id = '{}'", voucher.id());
        let redemptions = app.db.scalar(&query).await;
        let money = wallet(&app, &voucher.winner).await;
        let (expected_redemptions, expected_available) = match row["status"].as_str() {
            Some("issued") => (0, 0),
            Some("redeemed") => {
                redeemed += 1;
                (1, 0)
            }
            Some("refunded") => {
                refunded += 1;
                (0, PRICE)
            }
            other => panic!("a voucher {other:?} after hang-ups: {row}"),
        };
        assert_eq!(redemptions, expected_redemptions, "{row}");
        assert_eq!(money, json!({"available": expected_available, "held": 0, "points": 0}), "{row}");
    }
    eprintln!("{redeemed} redeemed, {refunded} refunded of {VOUCHERS} ({:?})", app.db.backend);
    let after = merchant_wallet(&app, &merchant, &owner).await;
    let moved = |field: &str| after[field].as_i64().unwrap() - before[field].as_i64().unwrap();
    assert_eq!(moved("available"), (PRICE - COMMISSION) * redeemed, "paid exactly for those redeemed: {after}");
    assert_eq!(moved("receivable"), -PRICE * (redeemed + refunded), "{after}");
    let commission = app.app.store().balance("platform:commission", "fen").await.unwrap();
    assert_eq!(commission - commission_before, COMMISSION * redeemed);
    app.finish().await;
}

on_both_backends!(hang_ups_mid_redemption_and_refund_settle_each_voucher_once);
