//! The store's story, told once against its interface and run on both backends: accounts and sessions, the
//! ledger (including concurrent idempotent credits and concurrent overdrafts), merchants, and a campaign from
//! draft to ended.

use std::sync::Arc;
use tuangou_domain::campaign::{CampaignInput, CampaignRules, RewardInput};
use tuangou_domain::geo::Coordinates;
use tuangou_domain::ids::{CampaignId, MerchantId, UserId};
use tuangou_domain::ledger::{Account, Cause, Entry};
use tuangou_domain::money::Fen;
use tuangou_domain::time::Millis;
use tuangou_store::{Backend, CampaignFilter, MerchantRole, NewMerchant, NewUser, Store, StoreError};
use tuangou_testkit::{TestDb, on_both_backends};

const NOW: Millis = Millis(1_790_000_000_000);

fn new_user(phone: &str) -> NewUser {
    NewUser { phone: phone.into(), name: "测试".into(), password_hash: "hash".into(), is_operator: false }
}

fn fen(v: i64) -> Fen {
    Fen::from_stored(v).unwrap()
}

fn credit(to: Account, amount: i64, reference: &str) -> Entry {
    Entry::transfer(Cause::Credit, Account::ExternalFunding, to, fen(amount)).with_reference(reference)
}

fn merchant_at(name: &str, lat: f64, lng: f64) -> NewMerchant {
    NewMerchant {
        name: name.into(),
        category: "火锅".into(),
        description: None,
        address: "春熙路".into(),
        latitude: lat,
        longitude: lng,
        phone: "02888886666".into(),
        opening_hours: None,
        status: "active",
    }
}

fn rules(reward_cash: i64) -> CampaignRules {
    CampaignRules::new(CampaignInput {
        title: "双人套餐".into(),
        product_type: "火锅".into(),
        description: Some("麻辣".into()),
        quantity: 20,
        price: 990,
        original_price: 19_800,
        group_size: 5,
        winners_per_group: 2,
        reward: RewardInput { kind: "cash".into(), amount: Some(reward_cash), share_bps: None, valid_days: None },
        referral_bonus_points: None,
        commission_bps: 500,
        group_ttl_seconds: 3_600,
        draw_mode: "instant".into(),
        draw_at: None,
        draw_window_hours: None,
        voucher_valid_days: 30,
        per_customer_limit: None,
        payment_window_minutes: None,
        starts_at: None,
        ends_at: None,
    })
    .unwrap()
}

async fn accounts_and_sessions(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    let user = store.create_user(new_user("13800138000"), NOW).await.unwrap();
    assert!(matches!(store.create_user(new_user("13800138000"), NOW).await, Err(StoreError::Conflict("phone_taken"))));
    assert_eq!(store.user_by_phone("13800138000").await.unwrap().unwrap().id, user.id);
    assert!(store.user_by_phone("13900000000").await.unwrap().is_none());

    let id = user.user_id();
    store.create_session("h1", &id, NOW, NOW.plus_seconds(60)).await.unwrap();
    assert_eq!(store.session_user("h1", NOW).await.unwrap().unwrap().id, user.id);
    assert!(store.session_user("h1", NOW.plus_seconds(60)).await.unwrap().is_none(), "expired");
    store.delete_session("h1").await.unwrap();
    assert!(store.session_user("h1", NOW).await.unwrap().is_none(), "signed out");

    let operator = store.ensure_operator(new_user("13800138000"), NOW).await.unwrap();
    assert_eq!((operator.id.as_str(), operator.is_operator), (user.id.as_str(), 1), "an existing account is promoted");
    let again = store.ensure_operator(new_user("13800138000"), NOW).await.unwrap();
    assert_eq!(again.id, user.id, "idempotent");
    assert!(store.ledger_violations().await.unwrap().is_empty());
}

async fn credits_are_idempotent_under_concurrency(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Arc::new(db.open().await);
    let user = store.create_user(new_user("13800138001"), NOW).await.unwrap().user_id();
    let account = Account::CustomerAvailable(user.clone());
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (store, entry) = (store.clone(), credit(account.clone(), 5_000, "bank-42"));
        tasks.push(tokio::spawn(async move { store.post_once(&entry, NOW).await }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for task in tasks {
        let (record, new) = task.await.unwrap().unwrap();
        ids.insert(record.id.to_string());
        created += usize::from(new);
    }
    assert_eq!((ids.len(), created), (1, 1), "one entry, created once");
    assert_eq!(store.balance(&account.key(), "fen").await.unwrap(), 5_000);
    assert_eq!(store.balance(&Account::ExternalFunding.key(), "fen").await.unwrap(), -5_000);
    assert!(store.ledger_violations().await.unwrap().is_empty());
}

async fn campaign_lifecycle(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    let owner = store.create_user(new_user("13800138002"), NOW).await.unwrap().user_id();
    let staff = store.create_user(new_user("13800138003"), NOW).await.unwrap().user_id();
    let merchant = store.create_merchant(merchant_at("老码头", 30.6563, 104.08), &owner, NOW).await.unwrap();
    let merchant_id = MerchantId::from_trusted(&merchant.id);
    assert_eq!(store.merchant_role(&merchant_id, &owner).await.unwrap(), Some(MerchantRole::Owner));
    store.add_staff(&merchant_id, &staff, NOW).await.unwrap();
    assert!(matches!(store.add_staff(&merchant_id, &staff, NOW).await, Err(StoreError::Conflict("already_staff"))));
    assert_eq!(store.roles_of(&staff).await.unwrap(), vec![(merchant_id.clone(), MerchantRole::Staff)]);

    let draft = store.create_campaign(&merchant_id, &rules(300), NOW).await.unwrap();
    let id = CampaignId::from_trusted(&draft.id);
    assert_eq!(draft.status, "draft");
    let edited = store.update_draft(&id, &rules(200)).await.unwrap();
    assert_eq!(edited.reward_amount, 200);
    assert_eq!(CampaignRules::new(edited.input()).unwrap(), rules(200), "stored fields read back as the same rules");

    // Publishing reserves (20 / 2) × 3 × 200 = 6,000 fen; with 5,000 available it is refused and nothing changes.
    let available = Account::MerchantAvailable(merchant_id.clone());
    store.post_once(&credit(available.clone(), 5_000, "m-1"), NOW).await.unwrap();
    let short = store.publish_campaign(&id, fen(6_000), NOW).await;
    assert!(matches!(short, Err(StoreError::InsufficientFunds(_))), "{short:?}");
    assert_eq!(store.require_campaign(&id).await.unwrap().status, "draft");
    assert_eq!(store.balance(&available.key(), "fen").await.unwrap(), 5_000);

    store.post_once(&credit(available.clone(), 1_500, "m-2"), NOW).await.unwrap();
    let live = store.publish_campaign(&id, fen(6_000), NOW).await.unwrap();
    assert_eq!(live.status, "live");
    assert_eq!(store.balance(&available.key(), "fen").await.unwrap(), 500);
    let reserve = format!("merchant:{merchant_id}:reserve:");
    assert_eq!(store.balance_with_prefix(&reserve, "fen").await.unwrap(), 6_000);
    assert!(matches!(
        store.publish_campaign(&id, fen(6_000), NOW).await,
        Err(StoreError::Conflict("campaign_not_draft"))
    ));
    assert!(matches!(store.update_draft(&id, &rules(100)).await, Err(StoreError::Conflict("campaign_live"))));

    let near = Coordinates::parse(30.6574, 104.0658).unwrap();
    let filter = CampaignFilter {
        within: Some(near.bounding_box(5.0)),
        category: Some("火锅".into()),
        text: Some("双人".into()),
        limit: 10,
        now: NOW,
    };
    assert_eq!(store.live_campaigns(&filter).await.unwrap().len(), 1);
    let far =
        CampaignFilter { within: Some(Coordinates::parse(39.9, 116.4).unwrap().bounding_box(5.0)), ..filter.clone() };
    assert!(store.live_campaigns(&far).await.unwrap().is_empty(), "Beijing is not near Chengdu");
    let other_text = CampaignFilter { text: Some("100%_".into()), ..filter.clone() };
    assert!(store.live_campaigns(&other_text).await.unwrap().is_empty(), "LIKE wildcards in the query are literal");

    assert!(store.campaigns_due_to_end(NOW, 10).await.unwrap().is_empty());
    let ended = store.end_campaign(&id, NOW).await.unwrap();
    assert_eq!(ended.status, "ended");
    assert_eq!(store.campaigns_to_settle(10).await.unwrap(), vec![id.clone()]);
    assert!(store.settle_campaign(&id, NOW).await.unwrap(), "no groups: settled at once");
    assert!(!store.settle_campaign(&id, NOW).await.unwrap(), "once");
    assert!(store.campaigns_to_settle(10).await.unwrap().is_empty());
    assert_eq!(store.balance(&available.key(), "fen").await.unwrap(), 6_500, "the unused reserve came back");
    assert_eq!(store.balance_with_prefix(&reserve, "fen").await.unwrap(), 0);
    assert!(matches!(store.end_campaign(&id, NOW).await, Err(StoreError::Conflict("campaign_not_live"))));
    assert!(store.live_campaigns(&filter).await.unwrap().is_empty(), "ended campaigns are not listed");
    assert!(store.ledger_violations().await.unwrap().is_empty());
}

/// Many publishes race for one wallet that covers only some: the balance never goes below zero and exactly the
/// covered number succeed.
async fn concurrent_debits_never_overdraw(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Arc::new(db.open().await);
    let owner = store.create_user(new_user("13800138004"), NOW).await.unwrap().user_id();
    let merchant = store.create_merchant(merchant_at("茶馆", 30.67, 104.05), &owner, NOW).await.unwrap();
    let merchant_id = MerchantId::from_trusted(&merchant.id);
    let available = Account::MerchantAvailable(merchant_id.clone());
    store.post_once(&credit(available.clone(), 6_000 * 7 + 10, "m"), NOW).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(CampaignId::from_trusted(store.create_campaign(&merchant_id, &rules(200), NOW).await.unwrap().id));
    }
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move { store.publish_campaign(&id, fen(6_000), NOW).await })
        })
        .collect();
    let mut published = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => published += 1,
            Err(StoreError::InsufficientFunds(_)) => {}
            Err(other) => panic!("a refused publish must say why: {other:?}"),
        }
    }
    assert_eq!(published, 7);
    assert_eq!(store.balance(&available.key(), "fen").await.unwrap(), 10);
    assert!(store.ledger_violations().await.unwrap().is_empty());
}

/// The check sees a ledger that was tampered with behind the store's back.
async fn check_reports_a_corrupted_ledger(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store: Store = db.open().await;
    let user = UserId::from_trusted(store.create_user(new_user("13800138005"), NOW).await.unwrap().id);
    store.post_once(&credit(Account::CustomerAvailable(user.clone()), 100, "c"), NOW).await.unwrap();
    assert!(store.ledger_violations().await.unwrap().is_empty());
    db.execute(&format!("UPDATE balances SET balance = -5 WHERE account = 'customer:{user}:available'")).await;
    db.execute("INSERT INTO ledger_entries (id, cause, reference, created_at) VALUES ('forged', 'credit', NULL, 0)")
        .await;
    db.execute("INSERT INTO ledger_postings (entry_id, account, unit, amount) VALUES ('forged', 'platform:commission', 'fen', 7)").await;
    let found: Vec<String> = store.ledger_violations().await.unwrap().into_iter().map(|v| v.detail).collect();
    assert!(found.iter().any(|d| d.contains("fen postings sum to 7")), "{found:?}");
    assert!(found.iter().any(|d| d.contains("entry forged does not balance")), "{found:?}");
    assert!(found.iter().any(|d| d.contains("below zero")), "{found:?}");
    assert!(found.iter().any(|d| d.contains("postings sum to 100")), "{found:?}");
}

async fn unknown_schemes_are_refused(backend: Backend) {
    // Backend-independent, but kept with the story so both runs show it.
    let _ = backend;
    let error = Store::open("mysql://localhost/x", &Default::default()).await.err().expect("refused");
    assert!(error.to_string().contains("unsupported database URL scheme \"mysql\""), "{error}");
}

on_both_backends!(
    accounts_and_sessions,
    credits_are_idempotent_under_concurrency,
    campaign_lifecycle,
    concurrent_debits_never_overdraw,
    check_reports_a_corrupted_ledger,
    unknown_schemes_are_refused,
);
