//! Use cases dropped part-way, on both backends. Each money path — a join, a join that pays through a provider,
//! the worker applying a payment, a staff draw, a redemption at the counter, a 随时退 refund — is called in process and its future dropped after it was polled n times, for n = 0,
//! 1, 2, … until a call completes within its n polls. After each drop, once every unit of work handed over has
//! ended (`Store::writes_settled`), the data holds either nothing of the call's effect (not one row changed) or
//! all of it, to the fen, and every invariant holds.

use crate::common::{Won, campaign_with, live_campaign_with, wallet, winner};
use crate::fault_worker::poll_at_most;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::future::Future;
use tuangou_app::{AppResult, Caller, GroupView, JoinAnswer, JoinInput, JoinTarget, RedemptionRow, VoucherView};
use tuangou_domain::ids::{CampaignId, GroupId, MerchantId, VoucherId};
use tuangou_testkit::{Backend, TestApp, TestUser, on_both_backends};

/// The price of every campaign here (`campaign_body`'s), its commission at 5 % and each loser's cash reward.
const PRICE: i64 = 990;
const COMMISSION: i64 = 49;
const CASH_REWARD: i64 = 300;
/// A call that has not completed after this many polls fails the test.
const MAX_POLLS: usize = 500;
/// How many times each path is swept from n = 0 at least, and at most. Where a given n drops a call depends on
/// what was quick to answer (a read the pool had ready, a batch already committing), so each sweep meets the
/// windows a little differently, and one sweep may go from drops that left nothing straight to a completed call.
/// Sweeps go on past [`SWEEPS`] until some drop came after the unit of work was handed over (and left it whole).
const SWEEPS: usize = 3;
const MAX_SWEEPS: usize = 30;

/// What a dropped call left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// Not a row changed.
    Nothing,
    /// The call's whole effect, as if it had been answered.
    Whole,
}

/// One money path, for [`drop_after_each_poll`].
trait MoneyPath {
    /// What one call acts on (a customer, a full group, a voucher); a new one is made once a call took effect.
    type Subject;
    /// What the balances that the call moves were before it.
    type Before;
    type Output;

    async fn fresh(&self, app: &TestApp) -> Self::Subject;
    async fn before(&self, app: &TestApp, subject: &Self::Subject) -> Self::Before;
    fn call<'a>(
        &'a self,
        app: &'a TestApp,
        subject: &'a Self::Subject,
    ) -> impl Future<Output = AppResult<Self::Output>> + 'a;
    /// Which of the two outcomes the data shows, asserting it is that outcome to the fen (and panicking on any
    /// other state).
    async fn left(&self, app: &TestApp, subject: &Self::Subject, before: &Self::Before) -> Left;
    /// Whether a completed call's answer is the success it should be.
    fn succeeded(&self, output: &Self::Output) -> bool;
}

/// What one [`sweep`] saw.
#[derive(Debug, Default)]
struct Tally {
    /// Drops that left nothing, and the last n that did.
    nothing: usize,
    last_nothing: Option<usize>,
    /// Drops that left the whole effect (the unit had been handed over), and the first n that did.
    whole: usize,
    first_whole: Option<usize>,
    /// The n within which the call completed.
    completed_at: usize,
}

/// Lines of `after` that `before` does not have, to show what a call that should have left nothing changed.
fn changed_rows(before: &str, after: &str) -> String {
    let old: std::collections::HashSet<&str> = before.lines().collect();
    after.lines().filter(|line| !old.contains(line)).collect::<Vec<_>>().join("\n")
}

/// [`sweep`]s `path` [`SWEEPS`] times, and more until a drop came after the unit of work was handed over.
async fn drop_after_each_poll<P: MoneyPath>(app: &TestApp, path: &P, name: &str) {
    let mut dropped_whole = 0;
    for round in 1..=MAX_SWEEPS {
        let tally = sweep(app, path, name).await;
        eprintln!("{name} ({:?}), sweep {round}: {tally:?}", app.db.backend);
        dropped_whole += tally.whole;
        if round >= SWEEPS && dropped_whole > 0 {
            return;
        }
    }
    panic!(
        "{name}: in {MAX_SWEEPS} sweeps no drop came after the unit of work was handed over: that window went untested"
    );
}

/// Calls `path` and drops it after n polls for n = 0, 1, 2, … until a call completes within its n polls (which
/// must happen before [`MAX_POLLS`]). After each: waits until every unit of work has ended, checks that the call
/// left nothing (the whole database unchanged) or its whole effect, and that every invariant holds.
async fn sweep<P: MoneyPath>(app: &TestApp, path: &P, name: &str) -> Tally {
    let mut tally = Tally::default();
    let mut subject = path.fresh(app).await;
    for polls in 0..=MAX_POLLS {
        let before = path.before(app, &subject).await;
        let rows_before = app.db.fingerprint().await;
        let answer = poll_at_most(polls, path.call(app, &subject)).await;
        app.app.store().writes_settled().await;

        let left = path.left(app, &subject, &before).await;
        if left == Left::Nothing {
            let rows_after = app.db.fingerprint().await;
            assert!(
                rows_after == rows_before,
                "{name} dropped after {polls} polls left nothing of its effect, yet rows changed:\n{}",
                changed_rows(&rows_before, &rows_after)
            );
        }
        let violations = app.app.check().await.expect("the check runs");
        assert!(violations.is_empty(), "{name} dropped after {polls} polls broke invariants: {violations:?}");

        match answer {
            Some(Ok(output)) => {
                assert!(path.succeeded(&output), "{name} completed after {polls} polls with an unexpected answer");
                assert_eq!(left, Left::Whole, "{name} completed after {polls} polls, so its effect must be there");
                tally.completed_at = polls;
                return tally;
            }
            Some(Err(error)) => panic!("{name} failed after {polls} polls: {error}"),
            None if left == Left::Nothing => {
                tally.nothing += 1;
                tally.last_nothing = Some(polls);
            }
            None => {
                tally.whole += 1;
                tally.first_whole.get_or_insert(polls);
                subject = path.fresh(app).await;
            }
        }
    }
    panic!("{name} did not complete within {MAX_POLLS} polls");
}

async fn caller(app: &TestApp, user: &TestUser) -> Caller {
    app.app.authenticate(&user.token).await.expect("authenticate").expect("a valid session")
}

/// The caller's memberships, as `GET /api/v1/me/memberships` lists them.
async fn memberships(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let (status, body) = app.get("/api/v1/me/memberships?limit=200", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().expect("items").clone()
}

/// The caller's vouchers, as `GET /api/v1/me/vouchers` lists them.
async fn vouchers(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let (status, body) = app.get("/api/v1/me/vouchers?limit=200", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().expect("items").clone()
}

async fn merchant_wallet(app: &TestApp, merchant: &str, owner: &TestUser) -> Value {
    let (status, body) = app.get(&format!("/api/v1/merchants/{merchant}/wallet"), Some(&owner.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// `wallet` with `changes` added to its fields (`{"receivable": -990}`, say).
fn moved(wallet: &Value, changes: Value) -> Value {
    let mut out = wallet.clone();
    for (field, change) in changes.as_object().expect("an object") {
        out[field] = json!(wallet[field].as_i64().expect("a balance") + change.as_i64().expect("an amount"));
    }
    out
}

fn wallet_of(available: i64, held: i64) -> Value {
    json!({"available": available, "held": held, "points": 0})
}

/// Opens a group of `campaign` with `people[0]` and has the others join it; returns the group as the last join
/// answered it.
async fn fill(app: &TestApp, campaign: &str, people: &[TestUser]) -> Value {
    let (status, first) =
        app.post(&format!("/api/v1/campaigns/{campaign}/groups"), Some(&people[0].token), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let group = first["group"]["id"].as_str().expect("a group id").to_owned();
    let mut last = first["group"].clone();
    for person in &people[1..] {
        let (status, joined) =
            app.post(&format!("/api/v1/groups/{group}/members"), Some(&person.token), json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{joined}");
        last = joined["group"].clone();
    }
    last
}

// ---------------------------------------------------------------------------------------------------------------
// A join by campaign.

struct JoinPath<'a> {
    operator: &'a TestUser,
    campaign: String,
}

struct Joiner {
    user: TestUser,
    caller: Caller,
}

impl MoneyPath for JoinPath<'_> {
    type Subject = Joiner;
    type Before = ();
    type Output = JoinAnswer;

    /// A customer with exactly the price.
    async fn fresh(&self, app: &TestApp) -> Joiner {
        let user = app.customers(self.operator, 1, PRICE).await.remove(0);
        let caller = caller(app, &user).await;
        Joiner { user, caller }
    }

    async fn before(&self, _: &TestApp, _: &Joiner) {}

    fn call<'a>(&'a self, app: &'a TestApp, joiner: &'a Joiner) -> impl Future<Output = AppResult<JoinAnswer>> + 'a {
        let target = JoinTarget::Campaign(CampaignId::from_trusted(&self.campaign));
        app.app.join(&joiner.caller, target, JoinInput::default(), None)
    }

    async fn left(&self, app: &TestApp, joiner: &Joiner, _: &()) -> Left {
        let joined = memberships(app, &joiner.user).await;
        let money = wallet(app, &joiner.user).await;
        match joined.as_slice() {
            [] => {
                assert_eq!(money, wallet_of(PRICE, 0), "no seat, so the price must be untouched");
                Left::Nothing
            }
            [seat] => {
                assert_eq!((&seat["campaign_id"], &seat["status"]), (&json!(self.campaign), &json!("waiting")));
                assert_eq!(money, wallet_of(0, PRICE), "a seat, so exactly its price must be held: {seat}");
                Left::Whole
            }
            more => panic!("{} memberships for one join's money: {more:?}", more.len()),
        }
    }

    fn succeeded(&self, answer: &JoinAnswer) -> bool {
        matches!(answer, JoinAnswer::Fresh(joined) if joined.membership.status == "waiting")
    }
}

/// A join by campaign (seat, participation, stock and the price's hold in one unit) dropped after every poll.
async fn a_join_dropped_midway_takes_the_seat_and_its_price_together_or_neither(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138201").await;
    // One group of 1,000 never fills here, so nothing is drawn: a seat's price stays held.
    let rules = json!({"quantity": 10, "group_size": 1_000, "winners_per_group": 1});
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(rules)).await;
    let path = JoinPath { operator: &operator, campaign };
    drop_after_each_poll(&app, &path, "a join").await;
    app.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// A staff draw of a full scheduled group.

struct DrawPath<'a> {
    operator: &'a TestUser,
    owner: &'a TestUser,
    owner_caller: Caller,
    merchant: String,
    campaign: String,
}

struct FullGroup {
    id: String,
    members: Vec<TestUser>,
}

impl MoneyPath for DrawPath<'_> {
    type Subject = FullGroup;
    /// The merchant's wallet.
    type Before = Value;
    type Output = GroupView;

    /// A full group of two customers who each had exactly the price.
    async fn fresh(&self, app: &TestApp) -> FullGroup {
        let members = app.customers(self.operator, 2, PRICE).await;
        let group = fill(app, &self.campaign, &members).await;
        assert_eq!((&group["status"], &group["draw"]), (&json!("full"), &Value::Null), "it waits for staff");
        FullGroup { id: group["id"].as_str().expect("an id").to_owned(), members }
    }

    async fn before(&self, app: &TestApp, _: &FullGroup) -> Value {
        merchant_wallet(app, &self.merchant, self.owner).await
    }

    fn call<'a>(&'a self, app: &'a TestApp, group: &'a FullGroup) -> impl Future<Output = AppResult<GroupView>> + 'a {
        let id = GroupId::from_trusted(&group.id);
        async move { app.app.draw_by_staff(&self.owner_caller, &id).await }
    }

    async fn left(&self, app: &TestApp, group: &FullGroup, merchant_before: &Value) -> Left {
        let (status, record) = app.get(&format!("/api/v1/groups/{}", group.id), None).await;
        assert_eq!(status, StatusCode::OK, "{record}");
        let merchant_after = merchant_wallet(app, &self.merchant, self.owner).await;
        let mut statuses = Vec::new();
        for member in &group.members {
            let joined = memberships(app, member).await;
            assert_eq!(joined.len(), 1, "one membership each: {joined:?}");
            let status = joined[0]["status"].as_str().expect("a status").to_owned();
            let money = wallet(app, member).await;
            let held = vouchers(app, member).await;
            match (record["status"].as_str(), status.as_str()) {
                (Some("full"), "waiting") => {
                    assert_eq!(money, wallet_of(0, PRICE), "not drawn, so the price stays held");
                    assert!(held.is_empty(), "not drawn, yet a voucher: {held:?}");
                }
                (Some("drawn"), "won") => {
                    assert_eq!(money, wallet_of(0, 0), "a winner's price is captured");
                    assert_eq!(held.len(), 1, "a winner has one voucher: {held:?}");
                    assert_eq!(
                        (&held[0]["kind"], &held[0]["status"], &held[0]["amount"]),
                        (&json!("purchase"), &json!("issued"), &json!(PRICE))
                    );
                }
                (Some("drawn"), "lost") => {
                    assert_eq!(money, wallet_of(PRICE + CASH_REWARD, 0), "a loser gets the price back and ¥3");
                    assert!(held.is_empty(), "a cash reward is no voucher: {held:?}");
                }
                (group_status, member) => panic!("group {group_status:?} with a member {member}: {record}"),
            }
            statuses.push(status);
        }
        statuses.sort();
        if record["status"] == "full" {
            assert_eq!(&merchant_after, merchant_before, "not drawn, so the merchant's wallet is untouched");
            Left::Nothing
        } else {
            assert_eq!(statuses, ["lost", "won"], "one winner and one loser: {record}");
            let expected = moved(merchant_before, json!({"receivable": PRICE, "reward_reserve": -CASH_REWARD}));
            assert_eq!(merchant_after, expected, "the winner's price is receivable, the loser's ¥3 left the reserve");
            Left::Whole
        }
    }

    fn succeeded(&self, drawn: &GroupView) -> bool {
        drawn.group.status == "drawn" && drawn.members.iter().all(|m| m.status == "won" || m.status == "lost")
    }
}

/// A staff draw (the group's state, its members, the stock, every hold and the vouchers in one unit) dropped
/// after every poll.
async fn a_draw_dropped_midway_settles_the_whole_group_or_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138202").await;
    let rules = json!({
        "quantity": 1_000, "group_size": 2, "winners_per_group": 1, "draw_mode": "scheduled", "draw_window_hours": 2
    });
    let (merchant, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(rules)).await;
    let owner_caller = caller(&app, &owner).await;
    let path = DrawPath { operator: &operator, owner: &owner, owner_caller, merchant, campaign };
    drop_after_each_poll(&app, &path, "a draw").await;
    app.finish().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Vouchers: redemption and refund.

/// The voucher as its owner sees it now.
async fn voucher_now(app: &TestApp, won: &Won) -> Value {
    let id = won.id();
    let mine = vouchers(app, &won.winner).await;
    mine.into_iter().find(|v| v["id"] == id).unwrap_or_else(|| panic!("voucher {id} is gone"))
}

/// An instant campaign of groups of two, one winner each.
async fn instant_campaign(app: &TestApp, operator: &TestUser, owner: &TestUser) -> (String, String) {
    let rules = json!({"quantity": 1_000, "group_size": 2, "winners_per_group": 1});
    live_campaign_with(app, operator, owner, campaign_with(rules)).await
}

struct RedeemPath<'a> {
    operator: &'a TestUser,
    owner: &'a TestUser,
    owner_caller: Caller,
    merchant: String,
    campaign: String,
}

impl MoneyPath for RedeemPath<'_> {
    type Subject = Won;
    /// The merchant's wallet and the platform's commission.
    type Before = (Value, i64);
    type Output = (VoucherView, RedemptionRow);

    async fn fresh(&self, app: &TestApp) -> Won {
        winner(app, self.operator, &self.campaign, PRICE).await
    }

    async fn before(&self, app: &TestApp, _: &Won) -> (Value, i64) {
        let commission = app.app.store().balance("platform:commission", "fen").await.expect("a balance");
        (merchant_wallet(app, &self.merchant, self.owner).await, commission)
    }

    fn call<'a>(
        &'a self,
        app: &'a TestApp,
        won: &'a Won,
    ) -> impl Future<Output = AppResult<(VoucherView, RedemptionRow)>> + 'a {
        let merchant = MerchantId::from_trusted(&self.merchant);
        let code = won.code().to_owned();
        async move { app.app.redeem(&self.owner_caller, &merchant, &code, None).await }
    }

    async fn left(&self, app: &TestApp, won: &Won, (merchant_before, commission_before): &(Value, i64)) -> Left {
        let voucher = voucher_now(app, won).await;
        let merchant_after = merchant_wallet(app, &self.merchant, self.owner).await;
        let commission = app.app.store().balance("platform:commission", "fen").await.expect("a balance");
        let id = voucher["id"].as_str().expect("an id");
        let redemptions = app.db.scalar(&format!("SELECT COUNT(*) FROM redemptions WHERE voucher_id = '{id}'")).await;
        assert_eq!(wallet(app, &won.winner).await, wallet_of(0, 0), "a redemption moves none of the customer's money");
        match voucher["status"].as_str() {
            Some("issued") => {
                assert_eq!(redemptions, 0, "an issued voucher has no redemption");
                assert_eq!(&merchant_after, merchant_before, "not redeemed, so the merchant is not paid");
                assert_eq!(commission, *commission_before, "not redeemed, so no commission");
                Left::Nothing
            }
            Some("redeemed") => {
                assert_eq!(redemptions, 1, "one redemption for a redeemed voucher");
                let paid = moved(merchant_before, json!({"available": PRICE - COMMISSION, "receivable": -PRICE}));
                assert_eq!(merchant_after, paid, "the merchant is paid the price less commission from its receivable");
                assert_eq!(commission, commission_before + COMMISSION, "the platform takes the commission");
                Left::Whole
            }
            other => panic!("a voucher {other:?} after a redemption: {voucher}"),
        }
    }

    fn succeeded(&self, (voucher, redemption): &(VoucherView, RedemptionRow)) -> bool {
        voucher.voucher.status == "redeemed" && redemption.voucher_id == voucher.voucher.id
    }
}

/// A redemption at the counter (the voucher's state, the redemption, the settlement and the attempt in one unit)
/// dropped after every poll.
async fn a_redemption_dropped_midway_pays_the_merchant_whole_or_not_at_all(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138203").await;
    let (merchant, campaign) = instant_campaign(&app, &operator, &owner).await;
    let owner_caller = caller(&app, &owner).await;
    let path = RedeemPath { operator: &operator, owner: &owner, owner_caller, merchant, campaign };
    drop_after_each_poll(&app, &path, "a redemption").await;
    app.finish().await;
}

struct RefundPath<'a> {
    operator: &'a TestUser,
    owner: &'a TestUser,
    merchant: String,
    campaign: String,
}

impl MoneyPath for RefundPath<'_> {
    /// The winner, and their caller to ask for the refund with.
    type Subject = (Won, Caller);
    /// The merchant's wallet.
    type Before = Value;
    type Output = VoucherView;

    async fn fresh(&self, app: &TestApp) -> (Won, Caller) {
        let won = winner(app, self.operator, &self.campaign, PRICE).await;
        let caller = caller(app, &won.winner).await;
        (won, caller)
    }

    async fn before(&self, app: &TestApp, _: &(Won, Caller)) -> Value {
        merchant_wallet(app, &self.merchant, self.owner).await
    }

    fn call<'a>(
        &'a self,
        app: &'a TestApp,
        (won, caller): &'a (Won, Caller),
    ) -> impl Future<Output = AppResult<VoucherView>> + 'a {
        let id = VoucherId::parse(won.id()).expect("an id");
        async move { app.app.refund_voucher(caller, &id).await }
    }

    async fn left(&self, app: &TestApp, (won, _): &(Won, Caller), merchant_before: &Value) -> Left {
        let voucher = voucher_now(app, won).await;
        let money = wallet(app, &won.winner).await;
        let merchant_after = merchant_wallet(app, &self.merchant, self.owner).await;
        match voucher["status"].as_str() {
            Some("issued") => {
                assert_eq!(money, wallet_of(0, 0), "not refunded, so the price stays spent");
                assert_eq!(&merchant_after, merchant_before, "not refunded, so the merchant's wallet is untouched");
                Left::Nothing
            }
            Some("refunded") => {
                assert_eq!(money, wallet_of(PRICE, 0), "refunded, so the whole price is back");
                let returned = moved(merchant_before, json!({"receivable": -PRICE}));
                assert_eq!(merchant_after, returned, "the price goes back from the merchant's receivable");
                Left::Whole
            }
            other => panic!("a voucher {other:?} after a refund: {voucher}"),
        }
    }

    fn succeeded(&self, refunded: &VoucherView) -> bool {
        refunded.voucher.status == "refunded"
    }
}

/// A 随时退 refund (the voucher's state and the money back in one unit) dropped after every poll.
async fn a_refund_dropped_midway_returns_the_whole_price_or_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138204").await;
    let (merchant, campaign) = instant_campaign(&app, &operator, &owner).await;
    let path = RefundPath { operator: &operator, owner: &owner, merchant, campaign };
    drop_after_each_poll(&app, &path, "a refund").await;
    app.finish().await;
}

on_both_backends!(
    a_join_dropped_midway_takes_the_seat_and_its_price_together_or_neither,
    a_draw_dropped_midway_settles_the_whole_group_or_nothing,
    a_redemption_dropped_midway_pays_the_merchant_whole_or_not_at_all,
    a_refund_dropped_midway_returns_the_whole_price_or_nothing,
    a_paid_join_dropped_midway_holds_the_seat_with_its_payment_or_neither,
    a_payment_applied_midway_confirms_the_seat_whole_or_not_at_all,
);

// ---------------------------------------------------------------------------------------------------------------
// Paying at the join: a join that pays through the sandbox, and the worker applying the sandbox's notification.

fn with_sandbox() -> tuangou_app::Settings {
    use tuangou_app::payments::PaymentSettings;
    use tuangou_app::payments::sandbox::{Faults, SandboxKey, SandboxSettings};
    let sandbox = SandboxSettings { key: SandboxKey::from_bytes([5; 32]), faults: Faults::default() };
    tuangou_app::Settings {
        payments: PaymentSettings { sandbox: Some(sandbox), partner_mode: false, ..PaymentSettings::default() },
        ..tuangou_app::Settings::default()
    }
}

struct PaidJoinPath<'a> {
    operator: &'a TestUser,
    campaign: String,
}

impl MoneyPath for PaidJoinPath<'_> {
    type Subject = Joiner;
    type Before = ();
    type Output = JoinAnswer;

    /// A customer with an empty wallet.
    async fn fresh(&self, app: &TestApp) -> Joiner {
        let user = app.customers(self.operator, 1, 0).await.remove(0);
        let caller = caller(app, &user).await;
        Joiner { user, caller }
    }

    async fn before(&self, _: &TestApp, _: &Joiner) {}

    fn call<'a>(&'a self, app: &'a TestApp, joiner: &'a Joiner) -> impl Future<Output = AppResult<JoinAnswer>> + 'a {
        let target = JoinTarget::Campaign(CampaignId::from_trusted(&self.campaign));
        let input = JoinInput { pay_with: Some("sandbox".into()), ..JoinInput::default() };
        app.app.join(&joiner.caller, target, input, None)
    }

    /// Nothing: no seat and no payment. Whole: a pending seat with its payment (`created`; the provider's answer may
    /// not have been kept yet, and the next look at the seat asks again), and no money moved.
    async fn left(&self, app: &TestApp, joiner: &Joiner, _: &()) -> Left {
        let joined = memberships(app, &joiner.user).await;
        assert_eq!(wallet(app, &joiner.user).await, wallet_of(0, 0), "no money moves before it arrives");
        match joined.as_slice() {
            [] => Left::Nothing,
            [seat] => {
                assert_eq!(seat["status"], "pending", "{seat}");
                let membership = app.app.store().membership(seat["id"].as_str().unwrap()).await.unwrap().unwrap();
                let payment = app.app.seat_payment(&membership).await.expect("the provider answers");
                let payment = payment.expect("a pending seat has its payment");
                assert_eq!((payment.status.as_str(), payment.amount), ("created", PRICE));
                assert!(payment.client.is_some(), "asked again, the provider gave the client's parameters");
                Left::Whole
            }
            more => panic!("{} memberships for one join: {more:?}", more.len()),
        }
    }

    fn succeeded(&self, answer: &JoinAnswer) -> bool {
        matches!(answer, JoinAnswer::Fresh(joined) if joined.membership.status == "pending"
            && joined.payment.as_ref().is_some_and(|p| p.client.is_some()))
    }
}

/// A join that pays through a provider (the seat, the participation, the stock and the payment in one unit, the
/// provider asked after it), dropped after every poll.
async fn a_paid_join_dropped_midway_holds_the_seat_with_its_payment_or_neither(backend: Backend) {
    let app = TestApp::spawn_with(backend, with_sandbox()).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138205").await;
    let rules = json!({"quantity": 10, "group_size": 1_000, "winners_per_group": 1});
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(rules)).await;
    // The day's reconciliation, if due, is done before the sweep (it would change rows of its own).
    app.app.run_jobs_once().await.unwrap();
    let path = PaidJoinPath { operator: &operator, campaign };
    drop_after_each_poll(&app, &path, "a paid join").await;
    app.finish().await;
}

struct ConfirmPath<'a> {
    operator: &'a TestUser,
    campaign: String,
}

struct PaidSeat {
    user: TestUser,
    membership: String,
}

impl MoneyPath for ConfirmPath<'_> {
    type Subject = PaidSeat;
    type Before = ();
    type Output = usize;

    /// A pending seat whose payment the sandbox took, its notification stored and not applied yet.
    async fn fresh(&self, app: &TestApp) -> PaidSeat {
        let user = app.customers(self.operator, 1, 0).await.remove(0);
        let (status, joined) = app
            .post(
                &format!("/api/v1/campaigns/{}/join", self.campaign),
                Some(&user.token),
                json!({"pay_with": "sandbox"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{joined}");
        let payment = joined["payment"]["id"].as_str().unwrap().to_owned();
        let (status, _) = app.post(&format!("/sandbox/payments/{payment}/pay"), None, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        // Stored by the service, and marked delivered by the sandbox (which it does once it has the service's
        // answer: a mark still to come would show as a change made by the call under test).
        let stored = async {
            loop {
                let stored = !app.app.store().payment_events_of(&payment).await.unwrap().is_empty();
                let sent = app.app.store().sandbox_notifications_of(&payment).await.unwrap();
                if stored && sent.iter().all(|n| n.status != "pending") {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), stored).await.expect("the notification arrives");
        PaidSeat { user, membership: joined["membership"]["id"].as_str().unwrap().to_owned() }
    }

    async fn before(&self, _: &TestApp, _: &PaidSeat) {}

    fn call<'a>(&'a self, app: &'a TestApp, _: &'a PaidSeat) -> impl Future<Output = AppResult<usize>> + 'a {
        app.app.run_jobs_once()
    }

    /// Nothing: the seat still pending, nothing held. Whole: the seat paid, its price held once.
    async fn left(&self, app: &TestApp, seat: &PaidSeat, _: &()) -> Left {
        let joined = memberships(app, &seat.user).await;
        let status = joined.iter().find(|m| m["id"] == seat.membership.as_str()).expect("the seat")["status"].clone();
        let money = wallet(app, &seat.user).await;
        match status.as_str() {
            Some("pending") => {
                assert_eq!(money, wallet_of(0, 0));
                Left::Nothing
            }
            Some("waiting") => {
                assert_eq!(money, wallet_of(0, PRICE), "the paid price is held once");
                Left::Whole
            }
            other => panic!("the seat is {other:?}"),
        }
    }

    fn succeeded(&self, changed: &usize) -> bool {
        *changed >= 1
    }
}

/// The worker's step that applies a notification (the payment paid, the money in, the seat confirmed, in one
/// unit), dropped after every poll.
async fn a_payment_applied_midway_confirms_the_seat_whole_or_not_at_all(backend: Backend) {
    let app = TestApp::spawn_with(backend, with_sandbox()).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138206").await;
    let rules = json!({"quantity": 10, "group_size": 1_000, "winners_per_group": 1, "per_customer_limit": 1});
    let (_, campaign) = live_campaign_with(&app, &operator, &owner, campaign_with(rules)).await;
    app.app.run_jobs_once().await.unwrap();
    let path = ConfirmPath { operator: &operator, campaign };
    drop_after_each_poll(&app, &path, "a payment applied").await;
    app.finish().await;
}
