//! Vouchers in the store (S4): what customers hold, what staff preview and redeem, the owner's undo, expiry.
//!
//! Staff of a merchant (and its owner) redeem only that merchant's vouchers; a preview also finds a voucher of
//! another store they work at, so the counter can move there. A guesser learns nothing: a malformed code, a bad
//! check character, an unknown code and the code of a store the caller does not work at all answer the same 404
//! `unknown_code`. Failed lookups and redemptions are throttled: after 10 failures in a minute by one staff
//! member, or 50 at one merchant, further attempts answer 429 until the minute has passed (a window opens at its
//! first failure).
//!
//! The throttle holds for requests in flight together, on every instance: a failure takes its slot in the
//! database's counters in the same transaction that logs it, only while there is room (`Store::record_failure`,
//! `Store::redeem`), and one that finds no room is answered 429 and changes nothing. A caller already over a
//! limit is refused on a read before the lookup, so a throttled guesser learns nothing, valid codes included. A
//! preview that finds its voucher writes nothing (a GET stays a read); successes do not count. Redemptions, undos
//! and counted failures are logged with the staff member, the result, the time and the client's address.

use crate::{App, AppError, AppResult, Caller};
use tuangou_domain::ids::{MembershipId, MerchantId, RedemptionId, VoucherId};
use tuangou_domain::time::Millis;
use tuangou_domain::voucher_code::VoucherCode;
use tuangou_store::{Attempt, Bucket, MemberRow, MerchantRole, RedemptionRow, StoreError, VoucherRow};

/// Failed attempts per staff member per minute that pass before the throttle answers 429.
pub const STAFF_FAILURES_PER_MINUTE: i64 = 10;
/// The same, for all staff of one merchant together.
pub const MERCHANT_FAILURES_PER_MINUTE: i64 = 50;
/// How long after a redemption its owner may undo it.
pub const UNDO_WINDOW_MS: i64 = Millis::HOUR;

/// A voucher with its code (derived from the server secret: never stored), the deal it is for and, once
/// redeemed, when: a voucher names what to serve wherever it is shown (issue 18). Where it is redeemed is always
/// its own store (`voucher.merchant_id`): staff redeem only their store's vouchers.
#[derive(Debug, Clone)]
pub struct VoucherView {
    pub voucher: VoucherRow,
    pub code: String,
    /// The campaign's title.
    pub deal: String,
    /// When the standing redemption was made (none once undone, or never redeemed).
    pub redeemed_at: Option<i64>,
}

/// A membership with what came of it.
#[derive(Debug, Clone)]
pub struct MembershipView {
    pub membership: MemberRow,
    /// The purchase voucher's code, for a winner.
    pub voucher_code: Option<String>,
    /// What a member not drawn received: (kind, amount); for a `commission_share`, the fen shared with them so
    /// far, net of undos.
    pub reward: Option<(String, i64)>,
}

fn unknown_code() -> AppError {
    AppError::NotFound("unknown_code", "no such voucher at this store")
}

/// The throttle's counters a failure at `merchant`'s counter by `caller` claims: the staff member's there, and
/// the merchant's.
fn counter_buckets(caller: &Caller, merchant: &MerchantId) -> [Bucket; 2] {
    [
        Bucket {
            key: format!("voucher-staff:{merchant}:{}", caller.user),
            limit: STAFF_FAILURES_PER_MINUTE,
            window_ms: 60_000,
        },
        Bucket { key: format!("voucher-merchant:{merchant}"), limit: MERCHANT_FAILURES_PER_MINUTE, window_ms: 60_000 },
    ]
}

impl App {
    fn code_of(&self, voucher: &VoucherRow) -> String {
        self.settings.secret.code_for(&voucher.id).display()
    }

    async fn view(&self, voucher: VoucherRow) -> AppResult<VoucherView> {
        let campaign = tuangou_domain::ids::CampaignId::from_trusted(&voucher.campaign_id);
        let deal = self.store.require_campaign(&campaign).await?.title;
        self.view_of_deal(voucher, deal).await
    }

    async fn view_of_deal(&self, voucher: VoucherRow, deal: String) -> AppResult<VoucherView> {
        let redeemed_at = match voucher.status.as_str() {
            "redeemed" => self.store.standing_redemption(&voucher.id).await?.map(|r| r.redeemed_at),
            _ => None,
        };
        Ok(VoucherView { code: self.code_of(&voucher), voucher, deal, redeemed_at })
    }

    /// The address a voucher's QR code holds: the store's counter page for this code. Staff of the store who scan
    /// it with any camera land on their counter with the code looked up (redeem is one more tap); anyone else
    /// gets a page saying whose voucher it is and to show it to the staff (`/r/…` in `tuangou-web`).
    pub fn voucher_url(&self, view: &VoucherView) -> String {
        let public = self.settings.public_url.trim_end_matches('/');
        format!("{public}/r/{}/{}", view.voucher.merchant_id, view.code)
    }

    /// The caller's vouchers, newest first.
    pub async fn my_vouchers(
        &self,
        caller: &Caller,
        cursor: Option<&VoucherId>,
        limit: usize,
    ) -> AppResult<Vec<VoucherView>> {
        let rows = self.store.vouchers_of(&caller.user, cursor.map(VoucherId::as_str), limit as i64).await?;
        // A page of vouchers often holds several of one deal: its title is read once.
        let mut deals: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        let mut views = Vec::with_capacity(rows.len());
        for voucher in rows {
            let deal = match deals.get(&voucher.campaign_id) {
                Some(title) => title.clone(),
                None => {
                    let campaign = tuangou_domain::ids::CampaignId::from_trusted(&voucher.campaign_id);
                    let title = self.store.require_campaign(&campaign).await?.title;
                    deals.insert(voucher.campaign_id.clone(), title.clone());
                    title
                }
            };
            views.push(self.view_of_deal(voucher, deal).await?);
        }
        Ok(views)
    }

    /// One of the caller's vouchers (404 for anyone else's).
    pub async fn my_voucher(&self, caller: &Caller, id: &VoucherId) -> AppResult<VoucherView> {
        let voucher = self.store.voucher(id.as_str()).await?.filter(|v| v.user_id == caller.user.as_str());
        match voucher {
            Some(v) => self.view(v).await,
            None => Err(AppError::NotFound("unknown_voucher", "no such voucher")),
        }
    }

    /// The caller's memberships, newest first, with their voucher codes and rewards.
    pub async fn my_memberships(
        &self,
        caller: &Caller,
        cursor: Option<&MembershipId>,
        limit: usize,
    ) -> AppResult<Vec<MembershipView>> {
        let mut views = Vec::new();
        let cursor = cursor.map(MembershipId::as_str);
        for membership in self.store.memberships_of(&caller.user, cursor, limit as i64).await? {
            let vouchers = self.store.vouchers_of_membership(&membership.id).await?;
            let voucher_code = vouchers.iter().find(|v| v.kind == "purchase").map(|v| self.code_of(v));
            let reward = if membership.status == "lost" { Some(self.reward_of(&membership).await?) } else { None };
            views.push(MembershipView { membership, voucher_code, reward });
        }
        Ok(views)
    }

    /// What a loser received: the campaign's reward, or for a `commission_share`, what the group's redemptions
    /// have shared with them so far, net of undos (a few indexed reads per membership).
    async fn reward_of(&self, membership: &MemberRow) -> AppResult<(String, i64)> {
        let campaign = self
            .store
            .require_campaign(&tuangou_domain::ids::CampaignId::from_trusted(&membership.campaign_id))
            .await?;
        let amount = match campaign.reward_amount() {
            Some(amount) => amount,
            None => self.store.commission_shared(&membership.id, &membership.user()).await?,
        };
        Ok((campaign.reward_kind, amount))
    }

    /// Staff (or the owner) of the merchant may work its counter; 404 for an unknown merchant, 403 otherwise.
    pub(crate) async fn require_staff(&self, caller: &Caller, merchant: &MerchantId) -> AppResult<MerchantRole> {
        self.store.merchant(merchant).await?.ok_or(AppError::NotFound("unknown_merchant", "no such merchant"))?;
        self.store
            .merchant_role(merchant, &caller.user)
            .await?
            .ok_or(AppError::Forbidden("staff_only", "only the merchant's staff may do this"))
    }

    /// A failed lookup or redemption: counted and logged, then answered 404 `unknown_code` (or 429 when the
    /// counters are full).
    async fn unknown_code(
        &self,
        caller: &Caller,
        merchant: &MerchantId,
        action: &'static str,
        client: Option<&str>,
    ) -> AppError {
        let attempt = Attempt {
            merchant,
            staff: &caller.user,
            voucher: None,
            action,
            result: "unknown_code",
            client_address: client,
            at: self.clock.now(),
        };
        match self.store.record_failure(&attempt, &counter_buckets(caller, merchant)).await {
            Ok(()) => unknown_code(),
            Err(error) => error.into(),
        }
    }

    /// What staff see before redeeming: the voucher, never its owner. A code of another store the caller works at
    /// is found too (its `merchant_id` says which), so a counter can move to that store as it does for a scanned
    /// one; a code of a store they do not work at is refused like any unknown code, and counted at this counter.
    pub async fn preview_voucher(
        &self,
        caller: &Caller,
        merchant: &MerchantId,
        code: &str,
        client: Option<&str>,
    ) -> AppResult<VoucherView> {
        self.require_staff(caller, merchant).await?;
        // Before the lookup: a throttled caller learns nothing.
        self.refuse_when_full(&counter_buckets(caller, merchant), self.clock.now()).await?;
        let found = match VoucherCode::parse(code) {
            Ok(code) => {
                self.store.voucher_by_code_for_staff(&caller.user, &self.settings.secret.lookup_hash(&code)).await?
            }
            Err(_) => None,
        };
        match found {
            Some(voucher) => self.view(voucher).await,
            None => Err(self.unknown_code(caller, merchant, "preview", client).await),
        }
    }

    /// Redeems a voucher at the counter: the merchant is paid the price less commission, the platform the
    /// commission, and under a `commission_share` reward the group's losers their part of it, all in one unit.
    /// 409 `already_redeemed`, 410 `expired`, 404 `unknown_code`, 429 `throttled`.
    pub async fn redeem(
        &self,
        caller: &Caller,
        merchant: &MerchantId,
        code: &str,
        client: Option<&str>,
    ) -> AppResult<(VoucherView, RedemptionRow)> {
        self.require_staff(caller, merchant).await?;
        let counters = counter_buckets(caller, merchant);
        self.refuse_when_full(&counters, self.clock.now()).await?;
        let Ok(parsed) = VoucherCode::parse(code) else {
            return Err(self.unknown_code(caller, merchant, "redeem", client).await);
        };
        let attempt = Attempt {
            merchant,
            staff: &caller.user,
            voucher: None,
            action: "redeem",
            result: "ok",
            client_address: client,
            at: self.clock.now(),
        };
        match self.store.redeem(&self.settings.secret.lookup_hash(&parsed), &attempt, &counters).await {
            Ok((voucher, redemption)) => {
                self.publish(vec![crate::events::GroupEvent::of_voucher("redeemed", &voucher)]);
                Ok((self.view(voucher).await?, redemption))
            }
            Err(StoreError::NotFound) => Err(unknown_code()),
            Err(StoreError::Conflict("expired")) => Err(AppError::Gone("this voucher has expired")),
            Err(other) => Err(other.into()),
        }
    }

    /// The owner undoes a redemption within one hour: the voucher is `issued` again, the settlement reversed, and
    /// the commission it shared taken back from the losers as far as their wallets hold it (the rest is the
    /// platform's loss). 402 `insufficient_funds` when the merchant's wallet, or the platform's commission account
    /// bearing that loss, cannot cover the reversal: then nothing changes.
    pub async fn undo_redemption(
        &self,
        caller: &Caller,
        merchant: &MerchantId,
        redemption: &RedemptionId,
        client: Option<&str>,
    ) -> AppResult<VoucherView> {
        if self.require_staff(caller, merchant).await? != MerchantRole::Owner {
            return Err(AppError::Forbidden("owner_only", "only the merchant's owner may undo a redemption"));
        }
        let attempt = Attempt {
            merchant,
            staff: &caller.user,
            voucher: None,
            action: "undo",
            result: "ok",
            client_address: client,
            at: self.clock.now(),
        };
        match self.store.undo_redemption(redemption.as_str(), UNDO_WINDOW_MS, &attempt).await {
            Ok(voucher) => {
                self.publish(vec![crate::events::GroupEvent::of_voucher("undone", &voucher)]);
                self.view(voucher).await
            }
            Err(StoreError::NotFound) => {
                Err(AppError::NotFound("unknown_redemption", "no such redemption at this store"))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// The caller returns an unused purchase voucher for a full refund (随时退), racing safely against a
    /// redemption at the counter: exactly one of the two wins.
    pub async fn refund_voucher(&self, caller: &Caller, id: &VoucherId) -> AppResult<VoucherView> {
        match self.store.refund_voucher(id.as_str(), &caller.user, self.clock.now()).await {
            Ok(voucher) => self.view(voucher).await,
            Err(StoreError::NotFound) => Err(AppError::NotFound("unknown_voucher", "no such voucher")),
            Err(StoreError::Conflict("expired")) => Err(AppError::Gone("this voucher has expired (and was refunded)")),
            Err(other) => Err(other.into()),
        }
    }

    /// Expires one voucher past its date (a purchase is refunded). Returns whether it did.
    pub(crate) async fn expire_one_voucher(&self) -> AppResult<bool> {
        Ok(self.store.expire_voucher(self.clock.now()).await?.is_some())
    }
}
