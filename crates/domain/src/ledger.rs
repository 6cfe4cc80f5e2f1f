//! The double-entry ledger: which accounts exist and which balanced entries each event makes.
//!
//! Every movement is an [`Entry`] whose postings sum to zero per unit (fen, points). Balances are the sums of
//! postings; the external accounts (outside money coming in, points the platform issues) are the only ones that
//! go negative. Entries are never changed or deleted: a correction is a new entry.

use crate::campaign::Reward;
use crate::ids::{CampaignId, MerchantId, UserId};
use crate::money::{BasisPoints, Fen};
use serde::Serialize;

/// What a balance counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Fen,
    Points,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Fen => "fen",
            Unit::Points => "points",
        }
    }
}

/// An account of the ledger. Its [`key`](Account::key) is what the store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Account {
    /// Money from outside the platform by an operator's credit. Goes negative.
    ExternalFunding,
    /// Money that came in (or went out) through one payment provider (`sandbox`, `wechatpay`, `alipay`): the
    /// outside world's side of every payment, refund and payout there. Goes negative: its balance is minus what
    /// the provider holds for us (paid − refunded − paid out, PAYMENTS.md).
    ProviderClearing(String),
    CustomerAvailable(UserId),
    /// A customer's money paid into groups not yet drawn or expired.
    CustomerHeld(UserId),
    /// Money owed back to a customer through the provider that took it, until the provider confirms the refund.
    CustomerRefundPending(UserId),
    MerchantAvailable(MerchantId),
    /// What a published campaign set aside for cash rewards; one account per campaign so ending releases exactly
    /// what that campaign did not use.
    MerchantRewardReserve(MerchantId, CampaignId),
    /// Winners' payments captured at the draw, paid out to the merchant on redemption.
    MerchantReceivable(MerchantId),
    PlatformCommission,
    /// A merchant's payout on its way out through a provider (requested, not yet confirmed): out of the
    /// merchant's available balance, into the provider's clearing once it succeeded, back when it failed.
    MerchantPayoutPending(MerchantId),
    /// A customer's withdrawal on its way out through a provider, as [`Account::MerchantPayoutPending`].
    CustomerWithdrawalPending(UserId),
    /// A partner-mode profit share on its way (by the split's id): the merchant's net and the platform's
    /// commission, set aside until the provider confirms the split ([`crate::payouts`]).
    SplitPending(String),
    /// The source of every loyalty point. Goes negative.
    PointsIssued,
    CustomerPoints(UserId),
}

impl Account {
    pub fn key(&self) -> String {
        match self {
            Account::ExternalFunding => "external:funding".into(),
            Account::CustomerAvailable(u) => format!("customer:{u}:available"),
            Account::ProviderClearing(p) => format!("provider:{p}:clearing"),
            Account::CustomerHeld(u) => format!("customer:{u}:held"),
            Account::CustomerRefundPending(u) => format!("customer:{u}:refund_pending"),
            Account::MerchantAvailable(m) => format!("merchant:{m}:available"),
            Account::MerchantRewardReserve(m, c) => format!("merchant:{m}:reserve:{c}"),
            Account::MerchantReceivable(m) => format!("merchant:{m}:receivable"),
            Account::PlatformCommission => "platform:commission".into(),
            Account::MerchantPayoutPending(m) => format!("merchant:{m}:payout_pending"),
            Account::CustomerWithdrawalPending(u) => format!("customer:{u}:withdrawal_pending"),
            Account::SplitPending(s) => format!("split:{s}:pending"),
            Account::PointsIssued => "platform:points_issued".into(),
            Account::CustomerPoints(u) => format!("customer:{u}:points"),
        }
    }

    /// Whether this account may hold a negative balance: only the external sources.
    pub fn may_go_negative(&self) -> bool {
        matches!(self, Account::ExternalFunding | Account::PointsIssued | Account::ProviderClearing(_))
    }

    /// The same rule, read from a stored key (for the invariant check).
    pub fn key_may_go_negative(key: &str) -> bool {
        key == "external:funding"
            || key == "platform:points_issued"
            || (key.starts_with("provider:") && key.ends_with(":clearing"))
    }

    pub fn unit(&self) -> Unit {
        match self {
            Account::PointsIssued | Account::CustomerPoints(_) => Unit::Points,
            _ => Unit::Fen,
        }
    }
}

/// Why an entry was made. Every entry names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Credit,
    Reserve,
    Release,
    Join,
    Draw,
    Redemption,
    Undo,
    Expiry,
    Refund,
    Reward,
    /// Money in through a payment provider (a paid join).
    Payment,
    /// Money out through a payment provider (a merchant's payout, a customer's withdrawal).
    Payout,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Credit => "credit",
            Cause::Reserve => "reserve",
            Cause::Release => "release",
            Cause::Join => "join",
            Cause::Draw => "draw",
            Cause::Redemption => "redemption",
            Cause::Undo => "undo",
            Cause::Expiry => "expiry",
            Cause::Refund => "refund",
            Cause::Reward => "reward",
            Cause::Payment => "payment",
            Cause::Payout => "payout",
        }
    }
}

/// One line of an entry: `amount` (positive or negative) into `account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub account: Account,
    pub amount: i64,
}

/// A balanced movement. Only the constructors here make one, so an unbalanced entry cannot exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    cause: Cause,
    reference: Option<String>,
    postings: Vec<Posting>,
}

impl Entry {
    /// Moves `amount` fen from one account to another.
    pub fn transfer(cause: Cause, from: Account, to: Account, amount: Fen) -> Self {
        Self::pair(cause, from, to, amount.get())
    }

    /// Gives `points` to a customer from the platform's points-issued account.
    pub fn points(cause: Cause, to: UserId, points: i64) -> Self {
        Self::pair(cause, Account::PointsIssued, Account::CustomerPoints(to), points)
    }

    fn pair(cause: Cause, from: Account, to: Account, amount: i64) -> Self {
        debug_assert_eq!(from.unit(), to.unit());
        let postings = vec![Posting { account: from, amount: -amount }, Posting { account: to, amount }];
        Self { cause, reference: None, postings }
    }

    /// Tags the entry with an outside reference; the store keeps references unique (idempotent credits).
    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }

    pub fn cause(&self) -> Cause {
        self.cause
    }

    pub fn reference(&self) -> Option<&str> {
        self.reference.as_deref()
    }

    pub fn postings(&self) -> &[Posting] {
        &self.postings
    }
}

/// A member's part in a group's money: which membership, whose, what they paid into the hold, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub membership: String,
    pub user: UserId,
    pub paid: Fen,
    pub from: PaidFrom,
}

/// Where a join's money came from, so that a refund goes back the same way (原路退回, PAYMENTS.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaidFrom {
    Wallet,
    /// Through this payment provider (`sandbox`, `wechatpay`, `alipay`).
    Provider(String),
}

impl PaidFrom {
    /// As a membership stores it (`paid_with`): `wallet`, or the provider's name.
    pub fn from_stored(paid_with: &str) -> Self {
        match paid_with {
            "wallet" => PaidFrom::Wallet,
            provider => PaidFrom::Provider(provider.to_owned()),
        }
    }

    /// Where a refund of this money goes first: straight back to the wallet, or owed to the customer (refund
    /// pending) until the provider confirms it gave the money back.
    pub fn refund_account(&self, user: &UserId) -> Account {
        match self {
            PaidFrom::Wallet => Account::CustomerAvailable(user.clone()),
            PaidFrom::Provider(_) => Account::CustomerRefundPending(user.clone()),
        }
    }
}

/// A paid join's money arrived: from the provider's clearing account into the customer's hold.
pub fn payment_entry(payment: &str, provider: &str, user: &UserId, amount: Fen) -> Entry {
    Entry::transfer(
        Cause::Payment,
        Account::ProviderClearing(provider.to_owned()),
        Account::CustomerHeld(user.clone()),
        amount,
    )
    .with_reference(format!("payment:{payment}"))
}

/// Money that arrived for a seat that no longer waits for it (late or unusable money): owed straight back to the
/// customer through the provider. `refund` is the refund's id (`late_payment-{payment}`).
pub fn late_payment_entry(refund: &str, provider: &str, user: &UserId, amount: Fen) -> Entry {
    Entry::transfer(
        Cause::Refund,
        Account::ProviderClearing(provider.to_owned()),
        Account::CustomerRefundPending(user.clone()),
        amount,
    )
    .with_reference(format!("refund-owed:{refund}"))
}

/// The provider confirmed a refund: what was owed to the customer leaves through the provider.
pub fn refund_settled_entry(refund: &str, provider: &str, user: &UserId, amount: Fen) -> Entry {
    Entry::transfer(
        Cause::Refund,
        Account::CustomerRefundPending(user.clone()),
        Account::ProviderClearing(provider.to_owned()),
        amount,
    )
    .with_reference(format!("refund-settled:{refund}"))
}

/// The reference of the one entry of `cause` that a membership may have. References are unique in the ledger,
/// so a second join charge, capture, refund or reward of one membership cannot be written at all.
pub fn membership_reference(cause: Cause, membership: &str) -> String {
    format!("{}:{membership}", cause.as_str())
}

/// A customer joined: the price moves into their hold.
pub fn join_entry(membership: &str, user: &UserId, price: Fen) -> Entry {
    Entry::transfer(Cause::Join, Account::CustomerAvailable(user.clone()), Account::CustomerHeld(user.clone()), price)
        .with_reference(membership_reference(Cause::Join, membership))
}

/// A group expired: every hold goes back to its owner in full.
pub fn expiry_refunds(holds: &[Hold]) -> Vec<Entry> {
    holds
        .iter()
        .map(|h| {
            let (held, back) = (Account::CustomerHeld(h.user.clone()), h.from.refund_account(&h.user));
            Entry::transfer(Cause::Expiry, held, back, h.paid)
                .with_reference(membership_reference(Cause::Expiry, &h.membership))
        })
        .collect()
}

/// A group was drawn: winners' holds are captured into the merchant's receivable (paid out on redemption);
/// losers' holds go back in full, and each loser gets the campaign's reward once — cash from the campaign's
/// reserve, or points. (A coupon reward moves no money: it is a voucher.)
pub fn draw_entries(
    merchant: &MerchantId,
    campaign: &CampaignId,
    reward: Reward,
    winners: &[Hold],
    losers: &[Hold],
) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(winners.len() + 2 * losers.len());
    for w in winners {
        let (held, receivable) = (Account::CustomerHeld(w.user.clone()), Account::MerchantReceivable(merchant.clone()));
        entries.push(
            Entry::transfer(Cause::Draw, held, receivable, w.paid)
                .with_reference(membership_reference(Cause::Draw, &w.membership)),
        );
    }
    for l in losers {
        let (held, back) = (Account::CustomerHeld(l.user.clone()), l.from.refund_account(&l.user));
        let available = Account::CustomerAvailable(l.user.clone());
        entries.push(
            Entry::transfer(Cause::Refund, held, back, l.paid)
                .with_reference(membership_reference(Cause::Refund, &l.membership)),
        );
        let reward_entry = match reward {
            Reward::Cash(amount) => Some(Entry::transfer(
                Cause::Reward,
                Account::MerchantRewardReserve(merchant.clone(), campaign.clone()),
                available,
                amount,
            )),
            Reward::Points(points) => Some(Entry::points(Cause::Reward, l.user.clone(), points)),
            // A coupon is a voucher; a commission share is paid at each winner's redemption, not at the draw.
            Reward::Coupon { .. } | Reward::CommissionShare(_) => None,
        };
        if let Some(entry) = reward_entry {
            entries.push(entry.with_reference(membership_reference(Cause::Reward, &l.membership)));
        }
    }
    entries
}

/// A purchase voucher was redeemed: the merchant is paid the price less commission from its receivable, and the
/// platform the commission.
pub fn settlement_entries(redemption: &str, merchant: &MerchantId, price: Fen, commission: Fen) -> Vec<Entry> {
    let receivable = Account::MerchantReceivable(merchant.clone());
    let net = Fen::from_stored(price.get() - commission.get()).unwrap_or(Fen::ZERO);
    let mut entries = vec![
        Entry::transfer(Cause::Redemption, receivable.clone(), Account::MerchantAvailable(merchant.clone()), net)
            .with_reference(format!("redemption:{redemption}")),
    ];
    if commission > Fen::ZERO {
        entries.push(
            Entry::transfer(Cause::Redemption, receivable, Account::PlatformCommission, commission)
                .with_reference(format!("commission:{redemption}")),
        );
    }
    entries
}

/// A redemption was undone: the settlement is reversed by new entries (nothing is deleted).
pub fn undo_entries(redemption: &str, merchant: &MerchantId, price: Fen, commission: Fen) -> Vec<Entry> {
    let receivable = Account::MerchantReceivable(merchant.clone());
    let net = Fen::from_stored(price.get() - commission.get()).unwrap_or(Fen::ZERO);
    let mut entries = vec![
        Entry::transfer(Cause::Undo, Account::MerchantAvailable(merchant.clone()), receivable.clone(), net)
            .with_reference(format!("undo:{redemption}")),
    ];
    if commission > Fen::ZERO {
        entries.push(
            Entry::transfer(Cause::Undo, Account::PlatformCommission, receivable, commission)
                .with_reference(format!("undo-commission:{redemption}")),
        );
    }
    entries
}

/// What each loser gets when one winner's voucher is redeemed under a `commission_share` reward (claim 4):
/// `share = floor(commission × share_bps / 10000)`, split equally, `floor(share / losers)`; the remainder stays
/// with the platform. No losers (K = N) share nothing.
pub fn commission_share_each(commission: Fen, share: BasisPoints, losers: i64) -> Fen {
    if losers <= 0 {
        return Fen::ZERO;
    }
    Fen::from_stored(share.of(commission).get() / losers).unwrap_or(Fen::ZERO)
}

/// A loser of a group, as a commission share sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loser {
    pub membership: String,
    pub user: UserId,
}

/// The reference of the share `redemption` paid to `membership`. It names the redemption, so every redemption
/// of a voucher (redeem → undo → redeem …) shares once, and a second credit for one redemption cannot be written.
pub fn share_reference(redemption: &str, membership: &str) -> String {
    format!("share:{redemption}:{membership}")
}

/// The reference of the reversal of that share when the redemption is undone (once: the undo happens once).
pub fn unshare_reference(redemption: &str, membership: &str) -> String {
    format!("unshare:{redemption}:{membership}")
}

/// A winner's voucher was redeemed under a `commission_share` reward: each loser's equal part of the shared
/// commission, from the platform's commission account into their wallet (cause `reward`). Nothing when the
/// part is 0 fen (or there are no losers): a zero entry would say something was paid.
pub fn commission_share_entries(redemption: &str, commission: Fen, share: BasisPoints, losers: &[Loser]) -> Vec<Entry> {
    let each = commission_share_each(commission, share, losers.len() as i64);
    if each == Fen::ZERO {
        return Vec::new();
    }
    losers
        .iter()
        .map(|l| {
            Entry::transfer(
                Cause::Reward,
                Account::PlatformCommission,
                Account::CustomerAvailable(l.user.clone()),
                each,
            )
            .with_reference(share_reference(redemption, &l.membership))
        })
        .collect()
}

/// What an undo takes back from a loser: what the redemption credited them, but never more than their wallet
/// holds now. A loser who already spent the money keeps what they spent: the rest stays the platform's loss,
/// because the undo corrects the merchant's counter (a winner's voucher must become usable again) and must not
/// hang on what a third customer did with money paid to them in good faith.
pub fn share_to_reverse(credited: Fen, available: i64) -> Fen {
    Fen::from_stored(credited.get().min(available.max(0))).unwrap_or(Fen::ZERO)
}

/// A redemption that shared commission was undone: each loser's share goes back to the platform's commission
/// account (cause `undo`), `amount` per loser as [`share_to_reverse`] decided; none for 0 fen.
pub fn commission_share_reversals(redemption: &str, reversals: &[(Loser, Fen)]) -> Vec<Entry> {
    reversals
        .iter()
        .filter(|(_, amount)| *amount > Fen::ZERO)
        .map(|(l, amount)| {
            Entry::transfer(
                Cause::Undo,
                Account::CustomerAvailable(l.user.clone()),
                Account::PlatformCommission,
                *amount,
            )
            .with_reference(unshare_reference(redemption, &l.membership))
        })
        .collect()
}

/// A purchase voucher expired unredeemed: its price goes back to the customer from the merchant's receivable.
pub fn voucher_expiry_refund(
    voucher: &str,
    merchant: &MerchantId,
    user: &UserId,
    price: Fen,
    from: &PaidFrom,
) -> Entry {
    Entry::transfer(Cause::Expiry, Account::MerchantReceivable(merchant.clone()), from.refund_account(user), price)
        .with_reference(format!("voucher-expiry:{voucher}"))
}

/// A winner returned an unused voucher (随时退): its price goes back from the merchant's receivable.
pub fn voucher_refund(voucher: &str, merchant: &MerchantId, user: &UserId, price: Fen, from: &PaidFrom) -> Entry {
    Entry::transfer(Cause::Refund, Account::MerchantReceivable(merchant.clone()), from.refund_account(user), price)
        .with_reference(format!("voucher-refund:{voucher}"))
}

/// A friend joined through `inviter`'s share link and their group was drawn: the inviter's bonus, once per friend.
pub fn referral_bonus(friend_membership: &str, inviter: &UserId, points: i64) -> Entry {
    Entry::points(Cause::Reward, inviter.clone(), points)
        .with_reference(membership_reference(Cause::Reward, &format!("referral:{friend_membership}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_balances() {
        let user = UserId::from_trusted("u1");
        let entry = Entry::transfer(
            Cause::Credit,
            Account::ExternalFunding,
            Account::CustomerAvailable(user),
            Fen::from_stored(500).unwrap(),
        );
        assert_eq!(entry.postings().iter().map(|p| p.amount).sum::<i64>(), 0);
        assert_eq!(entry.postings()[1].account.key(), "customer:u1:available");
    }

    #[test]
    fn a_draw_captures_winners_and_refunds_and_rewards_losers() {
        let (m, c) = (MerchantId::from_trusted("m"), CampaignId::from_trusted("c"));
        let hold = |u: &str| Hold {
            membership: format!("m-{u}"),
            user: UserId::from_trusted(u),
            paid: Fen::from_stored(990).unwrap(),
            from: PaidFrom::Wallet,
        };
        let cash = Reward::Cash(Fen::from_stored(300).unwrap());
        let entries = draw_entries(&m, &c, cash, &[hold("w")], &[hold("l1"), hold("l2")]);
        assert_eq!(entries.len(), 5);
        let into = |key: &str| -> i64 {
            entries.iter().flat_map(|e| e.postings()).filter(|p| p.account.key() == key).map(|p| p.amount).sum()
        };
        assert_eq!(into("merchant:m:receivable"), 990);
        assert_eq!(into("customer:l1:available"), 990 + 300);
        assert_eq!(into("customer:w:held"), -990);
        assert_eq!(into("merchant:m:reserve:c"), -600);
        let points = draw_entries(&m, &c, Reward::Points(50), &[], &[hold("l")]);
        assert_eq!(
            points
                .iter()
                .flat_map(|e| e.postings())
                .filter(|p| p.account.key() == "customer:l:points")
                .map(|p| p.amount)
                .sum::<i64>(),
            50
        );
        assert_eq!(expiry_refunds(&[hold("a")])[0].postings()[1].account.key(), "customer:a:available");
        assert_eq!(entries[1].reference(), Some("refund:m-l1"));
        assert_eq!(entries[2].reference(), Some("reward:m-l1"));
        assert_eq!(entries[1].reference(), Some("refund:m-l1"));
        assert_eq!(entries[2].reference(), Some("reward:m-l1"));
    }

    #[test]
    fn refunds_go_back_the_way_the_money_came() {
        let (m, c) = (MerchantId::from_trusted("m"), CampaignId::from_trusted("c"));
        let paid = Fen::from_stored(990).unwrap();
        let by_sandbox = Hold {
            membership: "m1".into(),
            user: UserId::from_trusted("u"),
            paid,
            from: PaidFrom::Provider("sandbox".into()),
        };
        let entries =
            draw_entries(&m, &c, Reward::Cash(Fen::from_stored(300).unwrap()), &[], std::slice::from_ref(&by_sandbox));
        assert_eq!(entries[0].postings()[1].account.key(), "customer:u:refund_pending", "the price is owed back");
        assert_eq!(entries[1].postings()[1].account.key(), "customer:u:available", "the reward is the platform's");
        assert_eq!(expiry_refunds(&[by_sandbox])[0].postings()[1].account.key(), "customer:u:refund_pending");
        let user = UserId::from_trusted("u");
        let came = payment_entry("p", "sandbox", &user, paid);
        let went = refund_settled_entry("r", "sandbox", &user, paid);
        assert_eq!(came.postings()[0].account.key(), "provider:sandbox:clearing");
        assert_eq!(went.postings()[1].account.key(), "provider:sandbox:clearing");
        assert!(Account::key_may_go_negative("provider:sandbox:clearing"));
        assert!(!Account::key_may_go_negative("customer:u:refund_pending"));
        assert_eq!(PaidFrom::from_stored("wallet"), PaidFrom::Wallet);
    }

    #[test]
    fn settlement_and_its_undo_cancel_out() {
        let m = MerchantId::from_trusted("m");
        let (price, commission) = (Fen::from_stored(990).unwrap(), Fen::from_stored(49).unwrap());
        let mut sums = std::collections::HashMap::new();
        for entry in
            settlement_entries("r", &m, price, commission).iter().chain(&undo_entries("r", &m, price, commission))
        {
            for p in entry.postings() {
                *sums.entry(p.account.key()).or_insert(0) += p.amount;
            }
        }
        assert!(sums.values().all(|v| *v == 0), "{sums:?}");
        let paid: i64 = settlement_entries("r", &m, price, commission)
            .iter()
            .flat_map(|e| e.postings())
            .filter(|p| p.account.key() == "merchant:m:available")
            .map(|p| p.amount)
            .sum();
        assert_eq!(paid, 941);
    }

    fn losers(n: usize) -> Vec<Loser> {
        (0..n).map(|i| Loser { membership: format!("m{i}"), user: UserId::from_trusted(format!("l{i}")) }).collect()
    }

    #[test]
    fn a_commission_share_splits_equally_and_floors() {
        let (fen, bps) = (|f| Fen::from_stored(f).unwrap(), |b| BasisPoints::parse("s", b).unwrap());
        // Commission 49, 50 %: 24, three losers: 8 each, nothing left over.
        assert_eq!(commission_share_each(fen(49), bps(5_000), 3), fen(8));
        // Commission 100, 100 %: 100, three losers: 33 each, 1 fen stays with the platform.
        let entries = commission_share_entries("r", fen(100), bps(10_000), &losers(3));
        assert_eq!(entries.len(), 3);
        let paid: i64 = entries.iter().map(|e| e.postings()[1].amount).sum();
        assert_eq!(paid, 99);
        assert!(entries.iter().all(|e| e.postings()[0].account == Account::PlatformCommission));
        assert!(entries.iter().all(|e| e.cause() == Cause::Reward));
        assert!(entries.iter().all(|e| e.postings().iter().map(|p| p.amount).sum::<i64>() == 0));
        assert_eq!(entries[2].reference(), Some("share:r:m2"));
        // floor(99 × 1 / 10000) = 0: nothing written; no losers: nothing written.
        assert!(commission_share_entries("r", fen(99), bps(1), &losers(2)).is_empty());
        assert!(commission_share_entries("r", fen(100), bps(10_000), &[]).is_empty());
        assert_eq!(commission_share_each(fen(2), bps(10_000), 3), Fen::ZERO);
    }

    #[test]
    fn a_reversal_takes_back_what_is_there() {
        let fen = |f| Fen::from_stored(f).unwrap();
        assert_eq!(share_to_reverse(fen(33), 1_000), fen(33));
        assert_eq!(share_to_reverse(fen(33), 20), fen(20));
        assert_eq!(share_to_reverse(fen(33), 0), Fen::ZERO);
        let ls = losers(2);
        let entries = commission_share_reversals("r", &[(ls[0].clone(), fen(33)), (ls[1].clone(), Fen::ZERO)]);
        assert_eq!(entries.len(), 1, "a zero reversal writes nothing");
        assert_eq!(entries[0].reference(), Some("unshare:r:m0"));
        assert_eq!(entries[0].cause(), Cause::Undo);
        assert_eq!(entries[0].postings()[1], Posting { account: Account::PlatformCommission, amount: 33 });
    }

    #[test]
    fn only_external_accounts_may_go_negative() {
        assert!(Account::ExternalFunding.may_go_negative());
        assert!(Account::PointsIssued.may_go_negative());
        assert!(!Account::PlatformCommission.may_go_negative());
        assert!(Account::key_may_go_negative(&Account::PointsIssued.key()));
        assert!(!Account::key_may_go_negative(&Account::CustomerHeld(UserId::from_trusted("u")).key()));
    }
}
