//! The rules card: everything a customer must know before paying, as data (SPEC.md, "Trust and the law").
//!
//! It is derived from the campaign's checked rules and the merchant's contact, never typed in by hand, so it
//! cannot disagree with what the system does. Texts here are English; pages may render their own language from
//! the same fields.

use crate::campaign::{CampaignRules, DrawMode, Reward};
use crate::time::Millis;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulesCard {
    pub price: i64,
    pub original_price: i64,
    pub group_size: i64,
    pub winners_per_group: i64,
    /// "K/N", e.g. "2/5".
    pub odds: String,
    pub draw: DrawRules,
    pub loser_reward: RewardRules,
    pub referral_bonus_points: i64,
    pub redeem: RedeemRules,
    pub refunds: RefundRules,
    pub merchant_contact: MerchantContact,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrawRules {
    pub method: &'static str,
    /// `on_fill` or `scheduled`.
    pub when: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draw_at: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_hours: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RewardRules {
    pub kind: &'static str,
    pub amount: i64,
    pub rules: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedeemRules {
    #[serde(rename = "where")]
    pub where_: String,
    pub valid_days: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefundRules {
    pub not_drawn: String,
    pub unused_voucher: String,
    pub on_expiry: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MerchantContact {
    pub name: String,
    pub phone: String,
    pub address: String,
}

fn yuan(fen: i64) -> String {
    format!("¥{}.{:02}", fen / 100, fen % 100)
}

impl RulesCard {
    pub fn new(rules: &CampaignRules, contact: MerchantContact) -> Self {
        let (n, k) = (rules.group_size(), rules.winners_per_group());
        let draw = match rules.draw_mode() {
            DrawMode::Instant => {
                DrawRules { method: "tuangou-draw-v1", when: "on_fill", draw_at: None, window_hours: None }
            }
            DrawMode::Scheduled { draw_at, window_hours } => {
                DrawRules { method: "tuangou-draw-v1", when: "scheduled", draw_at, window_hours: Some(window_hours) }
            }
        };
        let reward = rules.reward();
        let reward_rules = match reward {
            Reward::Cash(fen) => format!(
                "{} cash into your tuangou wallet when your group is drawn and you are not among the winners; \
                 once per group; no expiry",
                yuan(fen.get())
            ),
            Reward::Points(points) => format!(
                "{points} tuangou points when your group is drawn and you are not among the winners; once per group"
            ),
            Reward::Coupon { amount, valid_days } => format!(
                "a {} coupon off your next visit to {}, valid for {valid_days} days, redeemed in the store; \
                 once per group; no cash value and no refund when it expires",
                yuan(amount.get()),
                contact.name
            ),
        };
        Self {
            price: rules.price().get(),
            original_price: rules.original_price().get(),
            group_size: n,
            winners_per_group: k,
            odds: format!("{k}/{n}"),
            draw,
            loser_reward: RewardRules { kind: reward.kind(), amount: reward.amount(), rules: reward_rules },
            referral_bonus_points: rules.input().referral_bonus_points.unwrap_or(0),
            redeem: RedeemRules {
                where_: format!("in the store: {}, {}", contact.name, contact.address),
                valid_days: rules.input().voucher_valid_days,
            },
            refunds: RefundRules {
                not_drawn: "members not drawn get the full price back at the draw".into(),
                unused_voucher: "a winner may return an unused voucher for a full refund at any time before it is used"
                    .into(),
                on_expiry:
                    "a group that does not fill in time, and a voucher that expires unused, are refunded in full \
                            automatically"
                        .into(),
            },
            merchant_contact: contact,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::CampaignInput;

    #[test]
    fn the_card_states_the_odds_and_the_reward() {
        let input = CampaignInput { referral_bonus_points: Some(10), ..crate::campaign::tests::sample() };
        let rules = CampaignRules::new(input).unwrap();
        let contact =
            MerchantContact { name: "老码头".into(), phone: "02888886666".into(), address: "春熙路".into() };
        let card = RulesCard::new(&rules, contact);
        assert_eq!(card.odds, "2/5");
        assert_eq!(card.draw.when, "on_fill");
        assert_eq!(card.loser_reward.kind, "cash");
        assert!(card.loser_reward.rules.contains("¥3.00"));
        assert_eq!(card.referral_bonus_points, 10);
        assert_eq!(card.redeem.valid_days, 30);
    }
}
