//! Money out through a provider (PAYMENTS.md "Payouts"): a merchant's payout, a customer's withdrawal, and a
//! partner-mode profit share (split) at redemption — the entries each step makes.
//!
//! A payout moves its amount from the payer's available account into an in-flight account when it is requested
//! (in the unit that writes the payout row), then into the provider's clearing account when the provider says it
//! succeeded, or back to available when the provider says it failed. Nothing is ever marked failed because the
//! provider did not answer: it is asked again with backoff ([`retry_delay_ms`]).
//!
//! A split (partner mode) shares a provider-paid purchase voucher's payment once its redemption can no longer be
//! undone: the commission to the platform's receiver, the rest (net) released to the merchant's own account at
//! the provider. At the redemption the ledger already moved the price from the merchant's receivable to the
//! merchant's available (net) and the platform's commission. The split's ledger model keeps every balance ≥ 0
//! and the clearing invariant true:
//! - requested: `MerchantAvailable → SplitPending(split)` (net) and `PlatformCommission → SplitPending(split)`
//!   (commission), in the unit that writes the split row; if either is no longer there (the merchant had its
//!   balance paid out directly meanwhile), the unit fails whole and the split is recorded `skipped` instead —
//!   the money then left through that payout, and the payment stays with the provider's pool;
//! - succeeded: `SplitPending(split) → ProviderClearing(provider)` (net + commission): that much left the pool
//!   we hold at the provider, so it counts as paid out;
//! - failed: `SplitPending(split)` back to the merchant's available and the platform's commission.
//!
//! Every entry has a unique reference derived from the payout's or split's id, so whatever crashes in between,
//! no step can be written twice.

use crate::ids::{MerchantId, UserId};
use crate::ledger::{Account, Cause, Entry};
use crate::money::Fen;

/// Whose available balance a payout empties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayoutOwner {
    Merchant(MerchantId),
    Customer(UserId),
}

impl PayoutOwner {
    pub fn available(&self) -> Account {
        match self {
            PayoutOwner::Merchant(m) => Account::MerchantAvailable(m.clone()),
            PayoutOwner::Customer(u) => Account::CustomerAvailable(u.clone()),
        }
    }

    pub fn in_flight(&self) -> Account {
        match self {
            PayoutOwner::Merchant(m) => Account::MerchantPayoutPending(m.clone()),
            PayoutOwner::Customer(u) => Account::CustomerWithdrawalPending(u.clone()),
        }
    }

    /// `merchant` or `customer`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            PayoutOwner::Merchant(_) => "merchant",
            PayoutOwner::Customer(_) => "customer",
        }
    }

    /// The receiving account at the provider: the merchant's or the customer's id (the sandbox accepts any text;
    /// a real provider's account, an `openid` or an Alipay login, would be looked up from it).
    pub fn payee(&self) -> String {
        match self {
            PayoutOwner::Merchant(m) => m.to_string(),
            PayoutOwner::Customer(u) => u.to_string(),
        }
    }
}

/// The smallest payout or withdrawal: 1 fen (API.md "from 1 fen to the available balance").
pub const MINIMUM_PAYOUT: i64 = 1;

/// A payout's amount as a client sent it: from [`MINIMUM_PAYOUT`] to [`crate::money::MAX_AMOUNT`] fen.
pub fn parse_amount(value: i64) -> Result<Fen, crate::Invalid> {
    Fen::parse_positive("amount", value)
}

/// How long to wait before asking the provider again after `attempts` tries: 1 s, 2 s, 4 s, … at most 5 minutes.
pub fn retry_delay_ms(attempts: i64) -> i64 {
    let exponent = attempts.saturating_sub(1).clamp(0, 20) as u32;
    (1_000_i64 << exponent).min(300_000)
}

/// Requested: available → in flight.
pub fn payout_requested(payout: &str, owner: &PayoutOwner, amount: Fen) -> Entry {
    Entry::transfer(Cause::Payout, owner.available(), owner.in_flight(), amount)
        .with_reference(format!("payout:{payout}"))
}

/// The provider paid it out: in flight → the provider's clearing account.
pub fn payout_succeeded(payout: &str, owner: &PayoutOwner, provider: &str, amount: Fen) -> Entry {
    Entry::transfer(Cause::Payout, owner.in_flight(), Account::ProviderClearing(provider.to_owned()), amount)
        .with_reference(format!("payout-succeeded:{payout}"))
}

/// The provider said it failed: in flight → back to available.
pub fn payout_failed(payout: &str, owner: &PayoutOwner, amount: Fen) -> Entry {
    Entry::transfer(Cause::Payout, owner.in_flight(), owner.available(), amount)
        .with_reference(format!("payout-failed:{payout}"))
}

/// A split's id: derived from the redemption, so it is asked once.
pub fn split_id(redemption: &str) -> String {
    format!("split-{redemption}")
}

/// Requested: the merchant's net and the platform's commission are set aside (zero amounts make no entry).
pub fn split_requested(split: &str, merchant: &MerchantId, net: Fen, commission: Fen) -> Vec<Entry> {
    let pending = Account::SplitPending(split.to_owned());
    let mut entries = Vec::new();
    if net > Fen::ZERO {
        entries.push(
            Entry::transfer(Cause::Payout, Account::MerchantAvailable(merchant.clone()), pending.clone(), net)
                .with_reference(format!("split:{split}")),
        );
    }
    if commission > Fen::ZERO {
        entries.push(
            Entry::transfer(Cause::Payout, Account::PlatformCommission, pending, commission)
                .with_reference(format!("split-commission:{split}")),
        );
    }
    entries
}

/// The provider shared it: everything set aside left the pool (net + commission).
pub fn split_succeeded(split: &str, provider: &str, total: Fen) -> Vec<Entry> {
    if total == Fen::ZERO {
        return Vec::new();
    }
    vec![
        Entry::transfer(
            Cause::Payout,
            Account::SplitPending(split.to_owned()),
            Account::ProviderClearing(provider.to_owned()),
            total,
        )
        .with_reference(format!("split-succeeded:{split}")),
    ]
}

/// The provider said the split failed: what was set aside goes back.
pub fn split_failed(split: &str, merchant: &MerchantId, net: Fen, commission: Fen) -> Vec<Entry> {
    let pending = Account::SplitPending(split.to_owned());
    let mut entries = Vec::new();
    if net > Fen::ZERO {
        entries.push(
            Entry::transfer(Cause::Payout, pending.clone(), Account::MerchantAvailable(merchant.clone()), net)
                .with_reference(format!("split-failed:{split}")),
        );
    }
    if commission > Fen::ZERO {
        entries.push(
            Entry::transfer(Cause::Payout, pending, Account::PlatformCommission, commission)
                .with_reference(format!("split-failed-commission:{split}")),
        );
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sums(entries: &[Entry]) -> HashMap<String, i64> {
        let mut sums = HashMap::new();
        for p in entries.iter().flat_map(|e| e.postings()) {
            *sums.entry(p.account.key()).or_insert(0) += p.amount;
        }
        sums
    }

    #[test]
    fn a_payout_ends_in_clearing_or_back_in_available() {
        let owner = PayoutOwner::Merchant(MerchantId::from_trusted("m"));
        let amount = Fen::from_stored(500).unwrap();
        let done = sums(&[payout_requested("p", &owner, amount), payout_succeeded("p", &owner, "sandbox", amount)]);
        assert_eq!(done["merchant:m:available"], -500);
        assert_eq!(done["merchant:m:payout_pending"], 0);
        assert_eq!(done["provider:sandbox:clearing"], 500);
        let owner = PayoutOwner::Customer(UserId::from_trusted("u"));
        let failed = sums(&[payout_requested("p", &owner, amount), payout_failed("p", &owner, amount)]);
        assert!(failed.values().all(|v| *v == 0), "{failed:?}");
        assert_ne!(payout_requested("p", &owner, amount).reference(), payout_failed("p", &owner, amount).reference());
    }

    #[test]
    fn a_split_sets_aside_then_leaves_or_returns() {
        let m = MerchantId::from_trusted("m");
        let (net, commission) = (Fen::from_stored(941).unwrap(), Fen::from_stored(49).unwrap());
        let total = Fen::from_stored(990).unwrap();
        let mut done = split_requested("s", &m, net, commission);
        done.extend(split_succeeded("s", "sandbox", total));
        let done = sums(&done);
        assert_eq!((done["merchant:m:available"], done["platform:commission"]), (-941, -49));
        assert_eq!((done["split:s:pending"], done["provider:sandbox:clearing"]), (0, 990));
        let mut failed = split_requested("s", &m, net, commission);
        failed.extend(split_failed("s", &m, net, commission));
        assert!(sums(&failed).values().all(|v| *v == 0));
        assert_eq!(split_requested("s", &m, net, Fen::ZERO).len(), 1, "no zero entry");
    }

    #[test]
    fn retries_back_off_to_five_minutes() {
        assert_eq!((retry_delay_ms(1), retry_delay_ms(2), retry_delay_ms(3)), (1_000, 2_000, 4_000));
        assert_eq!(retry_delay_ms(0), 1_000);
        assert_eq!(retry_delay_ms(40), 300_000);
    }
}
