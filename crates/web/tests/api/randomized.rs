//! Random sequences of joins, staff draws, expiries, redemptions, undos and voucher expiries, many at a time;
//! after every round all invariants of SPEC.md hold. The sequence comes from a seed (printed), so a failure can be
//! replayed with `TUANGOU_RANDOM_SEED`.

use crate::common::{campaign_with, live_campaign_with};
use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::sync::Mutex;
use tuangou_testkit::{Backend, TestApp, on_both_backends};

/// xorshift64*: enough randomness for choosing actions, reproducible from its seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % sides
    }
}

async fn random_days_keep_every_invariant(backend: Backend) {
    let seed = std::env::var("TUANGOU_RANDOM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("TUANGOU_RANDOM_SEED={seed}");
    let dice = Mutex::new(Dice(seed));
    let roll = |sides: u64| dice.lock().unwrap().roll(sides);

    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138140").await;
    let instant =
        campaign_with(json!({"quantity": 30, "group_size": 3, "winners_per_group": 1, "group_ttl_seconds": 600,
        "per_customer_limit": 3, "voucher_valid_days": 1}));
    let scheduled = campaign_with(
        json!({"quantity": 30, "group_size": 2, "winners_per_group": 1, "draw_mode": "scheduled",
        "reward": {"kind": "coupon", "amount": 500, "valid_days": 1}, "per_customer_limit": 3, "voucher_valid_days": 1}),
    );
    let (merchant, first) = live_campaign_with(&app, &operator, &owner, instant).await;
    let second = crate::common::draft(&app, &owner, &merchant, scheduled).await;
    app.post(&format!("/api/v1/campaigns/{second}/publish"), Some(&owner.token), json!({})).await;
    let campaigns = [first, second];
    let people = app.customers(&operator, 12, 20_000).await;
    let redemptions = Mutex::new(Vec::<String>::new());

    for round in 0..12 {
        let actions = (0..10).map(|_| {
            let (choice, who, which) = (roll(10), roll(people.len() as u64) as usize, roll(2) as usize);
            let (app, people, owner, merchant, campaigns, redemptions) =
                (&app, &people, &owner, &merchant, &campaigns, &redemptions);
            async move {
                match choice {
                    0..=4 => {
                        let url = format!("/api/v1/campaigns/{}/join", campaigns[which]);
                        let (status, body) = app.post(&url, Some(&people[who].token), json!({})).await;
                        assert!(status.is_success() || status.is_client_error(), "join: {status} {body}");
                    }
                    5 => {
                        // The worker runs while joins and redemptions are in flight.
                        app.app.run_jobs_once().await.unwrap();
                    }
                    6 => {
                        let (_, mine) = app.get("/api/v1/me/vouchers", Some(&people[who].token)).await;
                        if let Some(v) = mine["items"].as_array().unwrap().iter().find(|v| v["status"] == "issued") {
                            let url = format!("/api/v1/merchants/{merchant}/redemptions");
                            let (status, body) = app.post(&url, Some(&owner.token), json!({"code": v["code"]})).await;
                            assert!(status.as_u16() < 500, "redeem: {status} {body}");
                            if status == StatusCode::CREATED {
                                redemptions.lock().unwrap().push(body["id"].as_str().unwrap().to_owned());
                            }
                        }
                    }
                    7 => {
                        let last = redemptions.lock().unwrap().pop();
                        if let Some(id) = last {
                            let url = format!("/api/v1/merchants/{merchant}/redemptions/{id}");
                            let (status, body) = app.send(Method::DELETE, &url, Some(&owner.token), None).await;
                            assert!(status.as_u16() < 500, "undo: {status} {body}");
                        }
                    }
                    _ => app.app.run_jobs_once().await.map(|_| ()).unwrap(),
                }
            }
        });
        join_all(actions).await;
        // Time passes between rounds: groups expire, scheduled draws fall due, vouchers lapse.
        app.app.clock().advance([0, 60_000, 700_000, 3_600_000, 25 * 3_600_000][roll(5) as usize]);
        app.app.run_jobs_once().await.unwrap();
        let violations = app.app.check().await.unwrap();
        assert!(violations.is_empty(), "round {round} (seed {seed}): {violations:?}");
    }
    // Sessions may have outlived the clock; the last check is what matters.
    app.finish().await;
}

on_both_backends!(random_days_keep_every_invariant);
