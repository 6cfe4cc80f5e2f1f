//! Typed identifiers, so that a group id cannot be passed where a campaign id is meant.
//!
//! Ids are opaque strings (the store makes UUIDv7s, whose text sorts by creation time, which the list cursors
//! rely on). Parsing an id from a URL only bounds its length and alphabet: whether it exists is the store's answer.

use serde::{Deserialize, Serialize};

macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id the store made or read back.
            pub fn from_trusted(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// Accepts an id from outside (a path or a body) when it could be one of ours; `None` otherwise, which
            /// callers answer as "not found", exactly like an id that is well formed but unknown.
            pub fn parse(text: &str) -> Option<Self> {
                let plausible = !text.is_empty()
                    && text.len() <= 64
                    && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                plausible.then(|| Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

typed_id!(
    /// A person's account.
    UserId,
    /// A store.
    MerchantId,
    /// A deal a merchant publishes.
    CampaignId,
    /// A group of N that fills and is drawn.
    GroupId,
    /// A balanced ledger entry.
    EntryId,
    /// A seat a customer holds in a group (also the cursor of their memberships' list).
    MembershipId,
    /// A voucher a winner or a loser holds (also the cursor of their vouchers' list).
    VoucherId,
    /// A voucher's redemption at the counter.
    RedemptionId,
    /// A payment through a provider (our `out_trade_no`).
    PaymentId,
    /// A refund (derived from its cause: `{cause}-{what}`), also the provider's `out_refund_no`.
    RefundId,
    /// A payout or withdrawal (also the cursor of their lists, and our `out_payout_no`).
    PayoutId,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_refuses_what_cannot_be_an_id() {
        assert!(UserId::parse("0192f0c1-7a2b-7c3d-8e4f-123456789abc").is_some());
        assert!(UserId::parse("").is_none());
        assert!(UserId::parse("../etc/passwd").is_none());
        assert!(UserId::parse(&"a".repeat(65)).is_none());
        assert!(UserId::parse("名字").is_none());
        // A NUL (or any control character) never gets past the edge: PostgreSQL's text refuses it.
        assert!(VoucherId::parse("a\0").is_none());
        assert!(RedemptionId::parse("\0").is_none());
        assert!(MembershipId::parse("a b").is_none());
    }
}
