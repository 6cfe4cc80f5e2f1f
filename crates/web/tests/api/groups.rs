//! Joining and the draw (S2, S3) through the API, on both backends.

use crate::common::{campaign_with, code, live_campaign_with, wallet};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tuangou_domain::draw::{GroupRecord, verify_record};
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

async fn open(app: &TestApp, user: &TestUser, campaign: &str, body: Value) -> (StatusCode, Value) {
    app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&user.token), body).await
}

async fn join(app: &TestApp, user: &TestUser, group: &str, body: Value) -> (StatusCode, Value) {
    app.post(&format!("/api/v1/groups/{group}/members"), Some(&user.token), body).await
}

fn verifies(record: &Value) -> bool {
    let record: GroupRecord = serde_json::from_value(record.clone()).expect("a group record");
    verify_record(&record).is_ok()
}

async fn a_group_fills_and_is_drawn_fairly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138050").await;
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(json!({}))).await;
    let people = app.customers(&operator, 5, 2_000).await;

    let (status, first) = open(&app, &people[0], &campaign, json!({"client_seed": "我的种子 🎲"})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let group = first["group"]["id"].as_str().unwrap().to_owned();
    let commitment = first["group"]["seed_commitment"].as_str().unwrap().to_owned();
    assert_eq!(commitment.len(), 64);
    assert_eq!(first["group"]["status"], "open");
    assert_eq!(
        first["group"]["members"],
        json!([{"seq": 1, "ticket": first["membership"]["ticket"], "client_seed": "我的种子 🎲"}])
    );
    assert_eq!(first["group"]["draw"], Value::Null, "the seed stays secret until the draw");
    assert_eq!((&first["membership"]["seq"], &first["membership"]["status"]), (&json!(1), &json!("waiting")));
    assert_eq!(wallet(&app, &people[0]).await, json!({"available": 1_010, "held": 990, "points": 0}));
    let (_, listing) = app.get("/api/v1/campaigns", None).await;
    assert_eq!(listing["items"][0]["slots_left"], 4 + 9 * 5, "4 free seats, and stock for 9 more groups of 5");
    let (_, detail) = app.get(&format!("/api/v1/campaigns/{campaign}"), None).await;
    assert_eq!((&detail["slots_left"], &detail["groups_open"]), (&json!(49), &json!(1)));

    let mut last = Value::Null;
    for (i, person) in people.iter().enumerate().skip(1) {
        let (status, body) = join(&app, person, &group, json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["membership"]["seq"], i + 1);
        assert_eq!(body["group"]["seed_commitment"], commitment.as_str(), "the commitment never changes");
        last = body;
    }
    // The fifth join filled the group; an instant group is drawn before that join is answered.
    let record = &last["group"];
    assert_eq!(record["status"], "drawn", "{record}");
    let draw = &record["draw"];
    assert_eq!(draw["algorithm"], "tuangou-draw-v1");
    let members = record["members"].as_array().unwrap();
    assert_eq!(members.len(), 5);
    assert!(
        members.iter().all(|m| m["client_seed"].as_str().is_some_and(|s| !s.is_empty())),
        "absent seeds are filled in"
    );
    assert!(verifies(record), "the record verifies per FAIRNESS.md: {record}");
    let mut tampered = record.clone();
    tampered["members"][0]["client_seed"] = json!("changed");
    assert!(!verifies(&tampered), "a changed member breaks the digest");

    // Money, to the fen: winners paid 990 into the merchant's receivable; losers got 990 back and ¥3.
    let winners: Vec<i64> = draw["winners"].as_array().unwrap().iter().map(|w| w.as_i64().unwrap()).collect();
    assert_eq!(winners.len(), 2);
    for (i, person) in people.iter().enumerate() {
        let expected = if winners.contains(&(i as i64 + 1)) { 1_010 } else { 2_300 };
        assert_eq!(
            wallet(&app, person).await,
            json!({"available": expected, "held": 0, "points": 0}),
            "member {}",
            i + 1
        );
    }
    let (_, merchant_wallet) = app.get(&format!("/api/v1/merchants/{merchant}/wallet"), Some(&owner.token)).await;
    assert_eq!(
        (&merchant_wallet["receivable"], &merchant_wallet["reward_reserve"]),
        (&json!(1_980), &json!(9_000 - 900))
    );
    let (_, detail) = app.get(&format!("/api/v1/campaigns/{campaign}"), None).await;
    assert_eq!(
        (&detail["groups_open"], &detail["groups_full"], &detail["slots_left"]),
        (&json!(0), &json!(0), &json!(45))
    );
    let (status, same) = app.get(&format!("/api/v1/groups/{group}"), None).await;
    assert_eq!((status, &same), (StatusCode::OK, record), "the same record wherever a group appears");
    app.finish().await;
}

/// Join-by-campaign passes over the groups the caller is already in: with a limit of two, the caller's second
/// join goes to the next group closest to full, not to the fuller group that is already theirs.
async fn join_by_campaign_passes_over_the_callers_own_group(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138070").await;
    let rules = json!({"quantity": 6, "group_size": 5, "winners_per_group": 2, "per_customer_limit": 2});
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(rules)).await;
    let people = app.customers(&operator, 3, 5_000).await;
    let (status, own) = open(&app, &people[0], &campaign, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    let own = own["group"]["id"].as_str().unwrap().to_owned();
    let (status, _) = join(&app, &people[1], &own, json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, other) = open(&app, &people[2], &campaign, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");

    let url = format!("/api/v1/campaigns/{campaign}/join");
    let (status, body) = app.post(&url, Some(&people[0].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["group"]["id"], other["group"]["id"], "the fuller group is the caller's own");
    assert_eq!(body["group"]["members"].as_array().unwrap().len(), 2);
    app.finish().await;
}

async fn joins_are_checked_in_api_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138051").await;
    let clerk = app.customer("13800138052").await;
    // Q 2, N 3, K 1: two groups' worth of stock; per-customer limit 1.
    let (merchant, campaign) = live_campaign_with(
        &app,
        &operator,
        &owner,
        campaign_with(json!({"quantity": 2, "group_size": 3, "winners_per_group": 1})),
    )
    .await;
    let (status, _) = app
        .post(&format!("/api/v1/merchants/{merchant}/staff"), Some(&owner.token), json!({"phone": clerk.phone}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let people = app.customers(&operator, 6, 5_000).await;
    let poor = app.customer("13800138053").await;

    for insider in [&owner, &clerk] {
        let (status, body) = open(&app, insider, &campaign, json!({})).await;
        assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "own_merchant"));
    }
    let (status, body) = open(&app, &people[0], &campaign, json!({"client_seed": "x".repeat(65)})).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("client_seed")));
    let (status, body) = open(&app, &people[0], &campaign, json!({"client_seed": "bad\nseed"})).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("client_seed")));

    let (status, first) = open(&app, &people[0], &campaign, json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let group = first["group"]["id"].as_str().unwrap().to_owned();
    let ticket = first["membership"]["ticket"].as_str().unwrap().to_owned();
    let (status, body) = join(&app, &people[0], &group, json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "limit_reached"),
        "the limit is checked before membership"
    );
    let (status, body) =
        app.post(&format!("/api/v1/campaigns/{campaign}/join"), Some(&people[0].token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "limit_reached"));

    let before = app.db.fingerprint().await;
    let (status, body) = join(&app, &poor, &group, json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::PAYMENT_REQUIRED, "insufficient_funds"));
    assert_eq!(app.db.fingerprint().await, before, "a refused join changes nothing");
    let (status, body) = app.post(&format!("/api/v1/campaigns/{campaign}/join"), Some(&poor.token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::PAYMENT_REQUIRED, "insufficient_funds"));
    assert_eq!(app.db.fingerprint().await, before, "nor does one by campaign that found a seat");

    // invited_by keeps a fellow member's ticket, and ignores unknown tickets.
    let (status, second) = join(&app, &people[1], &group, json!({"invited_by": ticket})).await;
    assert_eq!(status, StatusCode::CREATED);
    let membership = app.app.store().membership(second["membership"]["id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(membership.invited_by.as_deref(), Some(ticket.as_str()));
    let (_, third) = join(&app, &people[2], &group, json!({"invited_by": "t-nobody"})).await;
    let membership = app.app.store().membership(third["membership"]["id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(membership.invited_by, None);
    assert_eq!(third["group"]["status"], "drawn");

    let (status, body) = join(&app, &people[3], &group, json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "group_full"));
    let (status, _) = open(&app, &people[3], &campaign, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "the second group's stock");
    let (status, body) = open(&app, &people[4], &campaign, json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "sold_out"));
    let (status, body) =
        app.post(&format!("/api/v1/campaigns/{campaign}/join"), Some(&people[4].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "join finds the open group's seat: {body}");

    let (status, _) = app.post(&format!("/api/v1/campaigns/{campaign}/end"), Some(&owner.token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) =
        app.post(&format!("/api/v1/campaigns/{campaign}/join"), Some(&people[5].token), json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "campaign_not_live"));
    let (status, body) = join(&app, &people[5], "no-such-group", json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "unknown_group"));
    app.finish().await;
}

async fn an_idempotency_key_charges_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138054").await;
    let (_, campaign) =
        live_campaign_with(&app, &operator, &owner, campaign_with(json!({"per_customer_limit": 5}))).await;
    let people = app.customers(&operator, 2, 5_000).await;
    let url = format!("{}/api/v1/campaigns/{campaign}/join", app.base);
    let send = |user: &TestUser, key: &str, body: Value| {
        app.client.post(&url).bearer_auth(&user.token).header("idempotency-key", key).json(&body).send()
    };

    let (status, first) = TestApp::read(send(&people[0], "k-1", json!({"client_seed": "a"})).await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, again) = TestApp::read(send(&people[0], "k-1", json!({"client_seed": "a"})).await.unwrap()).await;
    assert_eq!((status, &again), (StatusCode::CREATED, &first), "the first answer, again");
    assert_eq!(wallet(&app, &people[0]).await["held"], 990, "charged once");
    let (status, body) = TestApp::read(send(&people[0], "k-1", json!({"client_seed": "b"})).await.unwrap()).await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"));
    let (status, _) = TestApp::read(send(&people[1], "k-1", json!({"client_seed": "a"})).await.unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "keys are per caller");

    // A refusal is a first answer too.
    let broke = app.customer("13800138055").await;
    let (status, refused) = TestApp::read(send(&broke, "k-2", json!({})).await.unwrap()).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    app.credit(&operator, json!({"user_id": broke.id}), 5_000).await;
    let (status, body) = TestApp::read(send(&broke, "k-2", json!({})).await.unwrap()).await;
    assert_eq!((status, body), (StatusCode::PAYMENT_REQUIRED, refused));

    // Twenty double-submits at once: one membership, one charge, the same answer for all.
    let answers = futures::future::join_all((0..20).map(|_| send(&people[1], "k-3", json!({})))).await;
    let mut bodies = Vec::new();
    for answer in answers {
        let (status, body) = TestApp::read(answer.unwrap()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        bodies.push(body["membership"]["id"].clone());
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    assert_eq!(wallet(&app, &people[1]).await["held"], 2 * 990, "k-1 and k-3, once each");
    let (status, body) = app
        .client
        .post(&url)
        .bearer_auth(&people[1].token)
        .header("idempotency-key", "x".repeat(201))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    let (_, body) = TestApp::read(body).await;
    assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("Idempotency-Key")));
    app.finish().await;
}

/// Two hundred customers race into one group of 100: exactly 100 members, everyone else a clean `group_full`.
async fn two_hundred_clients_race_for_one_group(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138056").await;
    let body = campaign_with(json!({"quantity": 10, "group_size": 100, "winners_per_group": 10}));
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let people = app.customers(&operator, 201, 1_000).await;
    let (status, first) = open(&app, &people[0], &campaign, json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let group = first["group"]["id"].as_str().unwrap().to_owned();

    let answers = futures::future::join_all(people[1..].iter().map(|p| join(&app, p, &group, json!({})))).await;
    let admitted = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    let full = answers.iter().filter(|(s, b)| *s == StatusCode::CONFLICT && code(b) == "group_full").count();
    assert_eq!(
        (admitted, full),
        (99, 101),
        "{:?}",
        answers.iter().find(|(s, b)| *s != StatusCode::CREATED && code(b) != "group_full")
    );
    let (_, record) = app.get(&format!("/api/v1/groups/{group}"), None).await;
    assert_eq!(record["members"].as_array().unwrap().len(), 100);
    let seqs: Vec<i64> = record["members"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
    assert_eq!(record["status"], "drawn");
    assert!(verifies(&record));
    app.finish().await;
}

/// Two hundred customers `join` a campaign whose stock runs out after three groups of ten: 30 seats taken,
/// every other answer `sold_out`, never over-sold.
async fn stock_runs_out_under_a_rush(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138057").await;
    let body = campaign_with(json!({"quantity": 6, "group_size": 10, "winners_per_group": 2}));
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let people = app.customers(&operator, 200, 1_000).await;
    let url = format!("/api/v1/campaigns/{campaign}/join");
    let answers = futures::future::join_all(people.iter().map(|p| app.post(&url, Some(&p.token), json!({})))).await;
    let admitted = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    let sold_out = answers.iter().filter(|(s, b)| *s == StatusCode::CONFLICT && code(b) == "sold_out").count();
    assert_eq!(
        (admitted, sold_out),
        (30, 170),
        "{:?}",
        answers.iter().find(|(s, b)| *s != StatusCode::CREATED && code(b) != "sold_out")
    );
    let (_, detail) = app.get(&format!("/api/v1/campaigns/{campaign}"), None).await;
    assert_eq!((&detail["slots_left"], &detail["groups_open"]), (&json!(0), &json!(0)));
    let (_, merchant_wallet) = app.get(&format!("/api/v1/merchants/{merchant}/wallet"), Some(&owner.token)).await;
    assert_eq!(merchant_wallet["receivable"], 6 * 990, "six winners in all, never more");
    app.finish().await;
}

async fn overdue_groups_expire_once_and_release_everything(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138058").await;
    let (merchant, campaign) =
        live_campaign_with(&app, &operator, &owner, campaign_with(json!({"group_ttl_seconds": 60}))).await;
    let people = app.customers(&operator, 3, 1_000).await;
    let (_, first) = open(&app, &people[0], &campaign, json!({})).await;
    let group = first["group"]["id"].as_str().unwrap().to_owned();
    for person in &people[1..] {
        assert_eq!(join(&app, person, &group, json!({})).await.0, StatusCode::CREATED);
    }
    assert_eq!(app.app.run_jobs_once().await.unwrap(), 0, "not due yet");
    app.app.clock().advance(60_000);
    let (status, body) = join(&app, &app.customer("13800138059").await, &group, json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "group_closed"),
        "past its deadline, before the worker ran"
    );

    // Four workers at once, as four instances would: the group expires exactly once.
    let runs = futures::future::join_all((0..4).map(|_| app.app.run_jobs_once())).await;
    assert_eq!(runs.into_iter().map(|r| r.unwrap()).sum::<usize>(), 1);
    let (_, record) = app.get(&format!("/api/v1/groups/{group}"), None).await;
    assert_eq!((&record["status"], &record["draw"]), (&json!("expired"), &Value::Null));
    for person in &people {
        assert_eq!(wallet(&app, person).await, json!({"available": 1_000, "held": 0, "points": 0}), "refunded in full");
    }
    let (_, detail) = app.get(&format!("/api/v1/campaigns/{campaign}"), None).await;
    assert_eq!(detail["slots_left"], 50, "its K units are back");
    let (status, _) = open(&app, &people[0], &campaign, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "an expired membership does not count against the limit");

    // Ending the campaign expires what is open and returns the unused reserve.
    let (status, _) = app.post(&format!("/api/v1/campaigns/{campaign}/end"), Some(&owner.token), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(wallet(&app, &people[0]).await["held"], 0);
    let (_, merchant_wallet) = app.get(&format!("/api/v1/merchants/{merchant}/wallet"), Some(&owner.token)).await;
    assert_eq!((&merchant_wallet["reward_reserve"], &merchant_wallet["available"]), (&json!(0), &json!(100_000_000)));
    app.finish().await;
}

/// PostgreSQL, where transactions can wait for each other in a cycle: the server breaks it by rolling one back
/// whole, and a join that is the victim runs again instead of answering 500. Here the cycle is made on purpose:
/// another transaction holds the campaign's row while the joiner, about to open a group, waits for it; then that
/// transaction waits for the joiner's new participation row. The joiner's deadlock check runs first (the other
/// transaction's `deadlock_timeout` is a minute), so the joiner is the victim.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_join_chosen_as_a_deadlock_victim_runs_again() {
    use sqlx::Connection;
    let app = TestApp::spawn(Backend::Postgres).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138063").await;
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(json!({}))).await;
    let joiner = app.customers(&operator, 1, 1_000).await.remove(0);

    let mut other = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    let mut other_tx = other.begin().await.unwrap();
    // The joiner's check for a cycle must run first, however loaded the machine: this side's comes much later.
    sqlx::query("SET LOCAL deadlock_timeout = '60s'").execute(&mut *other_tx).await.unwrap();
    sqlx::query("UPDATE campaigns SET quantity = quantity WHERE id = $1")
        .bind(&campaign)
        .execute(&mut *other_tx)
        .await
        .unwrap();
    let url = format!("/api/v1/campaigns/{campaign}/join");
    let join = tokio::spawn({
        let (client, base, token) = (app.client.clone(), app.base.clone(), joiner.token.clone());
        async move {
            TestApp::read(client.post(format!("{base}{url}")).bearer_auth(token).json(&json!({})).send().await.unwrap())
                .await
        }
    });
    // Until the joiner waits for the campaign's row (it holds its participation row by then).
    let mut watcher = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        // (A join that answered without waiting fails the assertions below instead of hanging here.)
        if waiting > 0 || join.is_finished() {
            break;
        }
        tokio::task::yield_now().await;
    }
    // Now wait for the joiner's participation row: a cycle.
    let ours = sqlx::query("INSERT INTO participations (campaign_id, user_id, active) VALUES ($1, $2, 0)")
        .bind(&campaign)
        .bind(&joiner.id)
        .execute(&mut *other_tx)
        .await;
    assert!(ours.is_ok(), "the joiner was the victim, so this went on: {ours:?}");
    other_tx.rollback().await.unwrap();
    let (status, body) = join.await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["membership"]["seq"], 1, "it opened a group on its second run");
    app.finish().await;
}

/// A live campaign of instant groups of two with one winner (the owner's phone `owner`), and `customers`
/// customers with ¥10 each.
async fn pairs(app: &TestApp, owner: &str, customers: usize) -> (String, Vec<TestUser>) {
    let operator = app.operator().await;
    let owner = app.customer(owner).await;
    let body = campaign_with(json!({"group_size": 2, "winners_per_group": 1}));
    let (_, campaign) = live_campaign_with(app, &operator, &owner, body).await;
    (campaign, app.customers(&operator, customers, 1_000).await)
}

/// A join straight into the store, as the app would admit it at 9.90 (a limit of one, an instant draw).
fn admission_at_990(
    campaign: &str,
    user: &str,
    ticket: &str,
    now: tuangou_domain::time::Millis,
    idempotency: Option<tuangou_app::IdempotencyClaim>,
) -> tuangou_app::Admission {
    tuangou_app::Admission {
        campaign: tuangou_domain::ids::CampaignId::from_trusted(campaign),
        user: tuangou_domain::ids::UserId::from_trusted(user),
        ticket: ticket.into(),
        client_seed: "seed".into(),
        invited_by: None,
        price: tuangou_domain::money::Fen::from_stored(990).unwrap(),
        per_customer_limit: 1,
        draw_due_if_full: now,
        now,
        idempotency,
        payment: None,
    }
}

/// The N-th member committed, then the process died before the draw: after a restart the worker draws the group,
/// exactly once.
async fn an_instant_group_is_drawn_after_a_crash(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let (campaign, people) = pairs(&app, "13800138060", 2).await;
    let (_, first) = open(&app, &people[0], &campaign, json!({})).await;
    let group = first["group"]["id"].as_str().unwrap().to_owned();

    // The filling join, straight into the store: what a process that died right after its commit leaves behind.
    let admission = admission_at_990(&campaign, &people[1].id, "t-crash", app.app.clock().now(), None);
    let gid = tuangou_domain::ids::GroupId::from_trusted(&group);
    let (row, _) = app.app.store().join_group(&gid, &admission).await.unwrap();
    assert_eq!(row.status, "full");
    app.stop().await;

    let restarted = TestApp::spawn_on(app.db.clone(), app.app.clock().clone()).await;
    assert_eq!(restarted.app.run_jobs_once().await.unwrap(), 1);
    assert_eq!(restarted.app.run_jobs_once().await.unwrap(), 0, "exactly once");
    let (_, record) = restarted.get(&format!("/api/v1/groups/{group}"), None).await;
    assert_eq!(record["status"], "drawn");
    assert!(verifies(&record));
    restarted.finish().await;
}

/// A keyed join by campaign records with its key the membership it made (what answers a retry whose first
/// request died before storing its answer), whether it took a seat in an open group or opened one; the membership
/// it answers with is the one stored.
async fn a_keyed_join_records_its_membership_with_its_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (campaign, people) = pairs(&app, "13800138062", 3).await;
    let store = app.app.store();
    let now = app.app.clock().now();
    let mut groups = Vec::new();
    for (i, person) in people.iter().enumerate() {
        let claim = tuangou_app::IdempotencyClaim {
            caller: person.id.clone(),
            endpoint: "join".into(),
            key: format!("k-{i}"),
            request_hash: "h".into(),
        };
        let admission = admission_at_990(&campaign, &person.id, &format!("t-key-{i}"), now, Some(claim.clone()));
        let new_group = tuangou_store::NewGroup {
            group_size: 2,
            winners_per_group: 1,
            server_seed: "00".repeat(32),
            seed_commitment: "11".repeat(32),
            expires_at: tuangou_domain::time::Millis(now.0 + 3_600_000),
        };
        let tuangou_store::Seated { group, member, .. } = store.join_campaign(&new_group, &admission).await.unwrap();
        assert_eq!(member.seq, [1, 2, 1][i], "open, take the second seat, open");
        let record = store.idempotency_record(&claim).await.unwrap().expect("the key is stored");
        assert_eq!(record.resource.as_deref(), Some(member.id.as_str()));
        let stored = store.membership(&member.id).await.unwrap().expect("stored");
        assert_eq!(format!("{stored:?}"), format!("{member:?}"), "answered as stored");
        groups.push(group.id);
    }
    assert_eq!((&groups[0], groups[1] != groups[2]), (&groups[1], true));
    app.finish().await;
}

/// The draw of a group a join has just filled, from what the join saw (`Store::draw_filled_group`: one statement
/// on PostgreSQL): drawn whole from the members as stored even when the members it is given are not those (the
/// statement then writes nothing and the draw's unit draws it), and exactly once: a second call is
/// `already_drawn` and changes nothing.
async fn a_filled_group_is_drawn_from_its_stored_members_exactly_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (campaign, people) = pairs(&app, "13800138064", 2).await;
    let (_, first) = open(&app, &people[0], &campaign, json!({})).await;
    let group = first["group"]["id"].as_str().unwrap().to_owned();
    let store = app.app.store();
    let admission = admission_at_990(&campaign, &people[1].id, "t-filled", app.app.clock().now(), None);
    let gid = tuangou_domain::ids::GroupId::from_trusted(&group);
    let (full, _) = store.join_group(&gid, &admission).await.unwrap();
    assert_eq!(full.status, "full");
    let stored = store.group_members(&gid).await.unwrap();
    let campaign_row =
        store.campaign(&tuangou_domain::ids::CampaignId::from_trusted(&campaign)).await.unwrap().unwrap();

    // Members that are not the stored ones: one of them is someone else.
    let mut seen = stored.clone();
    seen[0].id = tuangou_store::new_id();
    let (now, plan) = app.app.draw_plan();
    let (drawn, members) = store.draw_filled_group(&full, &seen, &campaign_row, now, plan).await.unwrap().unwrap();
    assert_eq!(drawn.status, "drawn");
    let ids = |members: &[tuangou_store::MemberRow]| members.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&members), ids(&stored), "drawn from the members as stored");
    let (_, record) = app.get(&format!("/api/v1/groups/{group}"), None).await;
    assert_eq!(record["status"], "drawn");
    assert!(verifies(&record), "{record}");
    let statuses: Vec<String> = store.group_members(&gid).await.unwrap().into_iter().map(|m| m.status).collect();
    assert_eq!((statuses.iter().filter(|s| *s == "won").count(), statuses.len()), (1, 2), "{statuses:?}");

    let before = app.db.fingerprint().await;
    let (now, plan) = app.app.draw_plan();
    let again = store.draw_filled_group(&full, &stored, &campaign_row, now, plan).await;
    assert!(matches!(again, Err(tuangou_store::StoreError::Conflict("already_drawn"))), "{again:?}");
    assert_eq!(app.db.fingerprint().await, before, "a second draw changes nothing");
    app.finish().await;
}

async fn scheduled_groups_wait_for_staff_or_their_window(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138061").await;
    let body = campaign_with(
        json!({"group_size": 2, "winners_per_group": 1, "draw_mode": "scheduled", "draw_window_hours": 2, "per_customer_limit": 3}),
    );
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, body).await;
    let people = app.customers(&operator, 2, 10_000).await;
    let mut groups = Vec::new();
    for _ in 0..2 {
        let (_, first) = open(&app, &people[0], &campaign, json!({})).await;
        let group = first["group"]["id"].as_str().unwrap().to_owned();
        let (_, second) = join(&app, &people[1], &group, json!({})).await;
        assert_eq!((&second["group"]["status"], &second["group"]["draw"]), (&json!("full"), &Value::Null), "it waits");
        groups.push(group);
    }
    let (_, open_one) = open(&app, &people[0], &campaign, json!({})).await;
    let open_group = open_one["group"]["id"].as_str().unwrap();

    async fn draw(app: &TestApp, group: &str, user: &TestUser) -> (StatusCode, Value) {
        app.post(&format!("/api/v1/groups/{group}/draw"), Some(&user.token), json!({})).await
    }
    let (status, body) = draw(&app, &groups[0], &people[0]).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "staff_only"));
    let (status, body) = draw(&app, open_group, &owner).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "not_full"));
    let (status, body) = draw(&app, &groups[0], &owner).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("drawn")), "{body}");
    assert!(verifies(&body));
    let (status, body) = draw(&app, &groups[0], &owner).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "already_drawn"));

    app.app.clock().advance(2 * 3_600_000 - 1_000);
    app.app.run_jobs_once().await.unwrap();
    let (_, record) = app.get(&format!("/api/v1/groups/{}", groups[1]), None).await;
    assert_eq!(record["status"], "full", "inside its window");
    app.app.clock().advance(1_000);
    app.app.run_jobs_once().await.unwrap();
    let (_, record) = app.get(&format!("/api/v1/groups/{}", groups[1]), None).await;
    assert_eq!(record["status"], "drawn", "drawn automatically when staff did not");
    let (status, _) = app.send(Method::POST, &format!("/api/v1/groups/{}/draw", groups[1]), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.finish().await;
}

/// Customers joining by campaign many times at once, through two instances on PostgreSQL (one on SQLite, whose
/// single writer is the instance): every join lands in a group the caller is not in yet. A join whose chosen group
/// took the same customer's concurrent join first (after its snapshot) runs again rather than answering
/// `already_member` (API.md: `/join` picks a group the caller is not in).
async fn concurrent_joins_by_campaign_never_answer_already_member(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = match backend {
        Backend::Postgres => Some(first.second_instance().await),
        Backend::Sqlite => None,
    };
    let operator = first.operator().await;
    let owner = first.customer("13800138070").await;
    let body = campaign_with(
        json!({"quantity": 200, "draw_mode": "scheduled", "draw_window_hours": 2, "per_customer_limit": 10}),
    );
    let (_, campaign) = live_campaign_with(&first, &operator, &owner, body).await;
    let people = first.customers(&operator, 8, 10 * 990).await;
    let mut joins = Vec::new();
    for person in &people {
        for i in 0..10 {
            let instance = if i % 2 == 1 { second.as_ref().unwrap_or(&first) } else { &first };
            let path = format!("/api/v1/campaigns/{campaign}/join");
            joins.push(async move { (person.id.clone(), instance.post(&path, Some(&person.token), json!({})).await) });
        }
    }
    let answers = futures::future::join_all(joins).await;
    let mut groups_of: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for (person, (status, body)) in answers {
        assert_eq!(status, StatusCode::CREATED, "{body}");
        groups_of.entry(person).or_default().push(body["group"]["id"].as_str().unwrap().to_owned());
    }
    for (person, mut groups) in groups_of {
        groups.sort();
        groups.dedup();
        assert_eq!(groups.len(), 10, "customer {person} is in ten different groups");
    }
    if let Some(second) = second {
        second.finish().await;
    }
    first.finish().await;
}

on_both_backends!(
    concurrent_joins_by_campaign_never_answer_already_member,
    a_group_fills_and_is_drawn_fairly,
    a_keyed_join_records_its_membership_with_its_key,
    joins_are_checked_in_api_order,
    join_by_campaign_passes_over_the_callers_own_group,
    an_idempotency_key_charges_once,
    two_hundred_clients_race_for_one_group,
    stock_runs_out_under_a_rush,
    overdue_groups_expire_once_and_release_everything,
    an_instant_group_is_drawn_after_a_crash,
    a_filled_group_is_drawn_from_its_stored_members_exactly_once,
    scheduled_groups_wait_for_staff_or_their_window,
);
