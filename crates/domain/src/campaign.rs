//! A campaign's rules: the one type that cannot hold an invalid deal.
//!
//! [`CampaignInput`] is what a merchant sends (and what a draft's JSON merge patch edits); [`CampaignRules::new`]
//! is the only way from it to [`CampaignRules`], which the rest of the system takes. Choices where SPEC.md and
//! API.md are silent: a title has 1–80 characters, a description at most 2,000; quantity is at most 1,000,000
//! units; the original price is never below the price; `reward.valid_days` (1–365, default 30) belongs to coupons
//! only; `draw_at` and `draw_window_hours` (1–168, default 24) to scheduled draws only; the per-customer limit is
//! 1–1,000; the most the cash rewards can cost must itself be a valid amount (at most ¥100 million). A
//! `commission_share` reward (claim 4) carries `share_bps` (1–10,000) and no `amount`: what losers get comes out
//! of the platform's commission on each redeemed winner's voucher, so it is not a figure the merchant sets.

use crate::money::{BasisPoints, Fen, MAX_AMOUNT};
use crate::time::Millis;
use crate::{Invalid, text};
use serde::{Deserialize, Serialize};

/// The largest discount (original price − price) a lottery prize may carry: ¥50,000 (the 2020 rules on sales
/// promotions).
pub const PRIZE_CAP: i64 = 5_000_000;

/// The fields a merchant sets, as sent. Times are already instants; checking happens in [`CampaignRules::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignInput {
    pub title: String,
    pub product_type: String,
    pub description: Option<String>,
    pub quantity: i64,
    pub price: i64,
    pub original_price: i64,
    pub group_size: i64,
    pub winners_per_group: i64,
    pub reward: RewardInput,
    pub referral_bonus_points: Option<i64>,
    pub commission_bps: i64,
    pub group_ttl_seconds: i64,
    pub draw_mode: String,
    pub draw_at: Option<Millis>,
    pub draw_window_hours: Option<i64>,
    pub voucher_valid_days: i64,
    pub per_customer_limit: Option<i64>,
    /// How long a seat waits for a payment through a provider: 1–15 minutes (default 5).
    #[serde(default)]
    pub payment_window_minutes: Option<i64>,
    pub starts_at: Option<Millis>,
    pub ends_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardInput {
    pub kind: String,
    /// Fen (cash, coupon) or points; required for those kinds, refused for `commission_share`.
    pub amount: Option<i64>,
    /// `commission_share` only: the share of the commission the losers split, in basis points.
    #[serde(default)]
    pub share_bps: Option<i64>,
    pub valid_days: Option<i64>,
}

/// What a customer who is not drawn receives, besides their money back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reward {
    /// Fen into the wallet, from the merchant's reward reserve.
    Cash(Fen),
    /// Platform loyalty points.
    Points(i64),
    /// An amount off the next visit, given in the store; valid for `valid_days`.
    Coupon { amount: Fen, valid_days: i64 },
    /// This share of the platform's commission on each winner's redeemed voucher, split equally among the group's
    /// losers and paid from the platform's commission account (claim 4): nothing is reserved at publishing.
    CommissionShare(BasisPoints),
}

impl Reward {
    pub fn kind(self) -> &'static str {
        match self {
            Reward::Cash(_) => "cash",
            Reward::Points(_) => "points",
            Reward::Coupon { .. } => "coupon",
            Reward::CommissionShare(_) => "commission_share",
        }
    }
}

/// The amount a cash, points or coupon reward must carry.
fn required_amount(reward: &RewardInput) -> Result<i64, Invalid> {
    reward.amount.ok_or_else(|| Invalid::field("reward.amount", "is required for this kind of reward"))
}

/// A `commission_share` reward: `share_bps` from 1 to 10,000 and no `amount` (the losers' money is a share of the
/// commission, decided at each redemption, never a figure set in advance).
fn parse_share(reward: &RewardInput) -> Result<BasisPoints, Invalid> {
    if reward.amount.is_some() {
        return Err(Invalid::field("reward.amount", "does not apply to commission_share rewards (set share_bps)"));
    }
    let bps = reward
        .share_bps
        .ok_or_else(|| Invalid::field("reward.share_bps", "is required for commission_share rewards"))?;
    BasisPoints::parse("reward.share_bps", in_range("reward.share_bps", bps, 1, 10_000)?)
}

/// When a full group is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrawMode {
    /// As soon as the N-th member commits.
    Instant,
    /// By staff in the store, at `draw_at` if set, and automatically `window_hours` after filling at the latest.
    Scheduled { draw_at: Option<Millis>, window_hours: i64 },
}

impl DrawMode {
    pub fn name(self) -> &'static str {
        match self {
            DrawMode::Instant => "instant",
            DrawMode::Scheduled { .. } => "scheduled",
        }
    }
}

/// `draft` → `live` → `ended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    Live,
    Ended,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Live => "live",
            CampaignStatus::Ended => "ended",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "draft" => Some(Self::Draft),
            "live" => Some(Self::Live),
            "ended" => Some(Self::Ended),
            _ => None,
        }
    }
}

/// Checked campaign rules. Fields are private: the values always satisfy the rules in this module's docs.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRules {
    input: CampaignInput,
    price: Fen,
    original_price: Fen,
    reward: Reward,
    commission: BasisPoints,
    draw_mode: DrawMode,
    max_reward_cost: Fen,
}

fn in_range(field: &str, value: i64, min: i64, max: i64) -> Result<i64, Invalid> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Invalid::field(field, format!("must be from {min} to {max}")))
    }
}

impl CampaignRules {
    /// Checks every rule and normalises the input (trimmed texts, defaults filled in).
    pub fn new(mut input: CampaignInput) -> Result<Self, Invalid> {
        input.title = text::bounded("title", &input.title, 1, 80)?;
        input.product_type = text::bounded("product_type", &input.product_type, 1, 40)?;
        input.description = match input.description.as_deref() {
            Some(d) => Some(text::bounded("description", d, 0, 2_000)?).filter(|d| !d.is_empty()),
            None => None,
        };
        let n = in_range("group_size", input.group_size, 2, 1_000)?;
        let k = in_range("winners_per_group", input.winners_per_group, 1, n)?;
        let q = in_range("quantity", input.quantity, 1, 1_000_000)?;
        if q % k != 0 {
            return Err(Invalid::field("quantity", "must be a positive multiple of winners_per_group"));
        }
        let price = Fen::parse_positive("price", input.price)?;
        let original_price = Fen::parse_positive("original_price", input.original_price)?;
        if original_price < price {
            return Err(Invalid::field("original_price", "must not be below price"));
        }
        if original_price.get() - price.get() > PRIZE_CAP {
            return Err(Invalid::with_code(
                "original_price",
                "prize_cap_exceeded",
                "the discount (original_price − price) exceeds ¥50,000",
            ));
        }
        let reward = Self::parse_reward(&mut input.reward)?;
        input.referral_bonus_points =
            Some(in_range("referral_bonus_points", input.referral_bonus_points.unwrap_or(0), 0, 1_000_000)?);
        let commission = BasisPoints::parse("commission_bps", input.commission_bps)?;
        in_range("group_ttl_seconds", input.group_ttl_seconds, 1, 2_592_000)?;
        let draw_mode = Self::parse_draw_mode(&mut input)?;
        in_range("voucher_valid_days", input.voucher_valid_days, 1, 365)?;
        input.per_customer_limit =
            Some(in_range("per_customer_limit", input.per_customer_limit.unwrap_or(1), 1, 1_000)?);
        input.payment_window_minutes =
            Some(in_range("payment_window_minutes", input.payment_window_minutes.unwrap_or(5), 1, 15)?);
        if let (Some(starts), Some(ends)) = (input.starts_at, input.ends_at)
            && ends <= starts
        {
            return Err(Invalid::field("ends_at", "must be after starts_at"));
        }
        let max_reward_cost = Self::worst_case_reward_cost(q, k, n, reward)?;
        Ok(Self { input, price, original_price, reward, commission, draw_mode, max_reward_cost })
    }

    fn parse_reward(reward: &mut RewardInput) -> Result<Reward, Invalid> {
        let parsed = match reward.kind.as_str() {
            "cash" => Reward::Cash(Fen::parse_positive("reward.amount", required_amount(reward)?)?),
            "points" => Reward::Points(in_range("reward.amount", required_amount(reward)?, 1, 1_000_000)?),
            "coupon" => {
                let valid_days = in_range("reward.valid_days", reward.valid_days.unwrap_or(30), 1, 365)?;
                reward.valid_days = Some(valid_days);
                Reward::Coupon { amount: Fen::parse_positive("reward.amount", required_amount(reward)?)?, valid_days }
            }
            "commission_share" => Reward::CommissionShare(parse_share(reward)?),
            _ => return Err(Invalid::field("reward.kind", "must be cash, points, coupon or commission_share")),
        };
        if !matches!(parsed, Reward::Coupon { .. }) && reward.valid_days.is_some() {
            return Err(Invalid::field("reward.valid_days", "applies to coupon rewards only"));
        }
        if !matches!(parsed, Reward::CommissionShare(_)) && reward.share_bps.is_some() {
            return Err(Invalid::field("reward.share_bps", "applies to commission_share rewards only"));
        }
        Ok(parsed)
    }

    fn parse_draw_mode(input: &mut CampaignInput) -> Result<DrawMode, Invalid> {
        match input.draw_mode.as_str() {
            "instant" => {
                if input.draw_at.is_some() {
                    return Err(Invalid::field("draw_at", "applies to scheduled draws only"));
                }
                if input.draw_window_hours.is_some() {
                    return Err(Invalid::field("draw_window_hours", "applies to scheduled draws only"));
                }
                Ok(DrawMode::Instant)
            }
            "scheduled" => {
                let window_hours = in_range("draw_window_hours", input.draw_window_hours.unwrap_or(24), 1, 168)?;
                input.draw_window_hours = Some(window_hours);
                if let (Some(draw_at), Some(starts)) = (input.draw_at, input.starts_at)
                    && draw_at < starts
                {
                    return Err(Invalid::field("draw_at", "must not be before starts_at"));
                }
                Ok(DrawMode::Scheduled { draw_at: input.draw_at, window_hours })
            }
            _ => Err(Invalid::field("draw_mode", "must be instant or scheduled")),
        }
    }

    /// `(Q / K) × (N − K) × reward cash`: what publishing reserves (zero for points and coupons).
    fn worst_case_reward_cost(q: i64, k: i64, n: i64, reward: Reward) -> Result<Fen, Invalid> {
        let Reward::Cash(cash) = reward else { return Ok(Fen::ZERO) };
        let cost = i128::from(q / k) * i128::from(n - k) * i128::from(cash.get());
        if cost > i128::from(MAX_AMOUNT) {
            return Err(Invalid::field("reward.amount", "the cash rewards could cost more than ¥100 million"));
        }
        Ok(Fen::from_stored(cost as i64).unwrap_or(Fen::ZERO))
    }

    /// The normalised input, e.g. to store it or to apply a merge patch to it.
    pub fn input(&self) -> &CampaignInput {
        &self.input
    }

    pub fn price(&self) -> Fen {
        self.price
    }
    pub fn original_price(&self) -> Fen {
        self.original_price
    }
    pub fn reward(&self) -> Reward {
        self.reward
    }
    pub fn commission(&self) -> BasisPoints {
        self.commission
    }
    pub fn draw_mode(&self) -> DrawMode {
        self.draw_mode
    }
    pub fn quantity(&self) -> i64 {
        self.input.quantity
    }
    pub fn group_size(&self) -> i64 {
        self.input.group_size
    }
    pub fn winners_per_group(&self) -> i64 {
        self.input.winners_per_group
    }
    pub fn per_customer_limit(&self) -> i64 {
        self.input.per_customer_limit.unwrap_or(1)
    }
    pub fn payment_window_minutes(&self) -> i64 {
        self.input.payment_window_minutes.unwrap_or(5)
    }
    /// How long a seat waits for a payment through a provider, in milliseconds.
    pub fn payment_window(&self) -> i64 {
        self.input.payment_window_minutes.unwrap_or(5).saturating_mul(60_000)
    }
    /// The most the cash rewards can cost, reserved from the merchant's wallet on publishing.
    pub fn max_reward_cost(&self) -> Fen {
        self.max_reward_cost
    }

    /// The most one loser can receive, in the reward's unit (fen; points for points). For `commission_share`
    /// it is what the K winners' redemptions share with them at most; see [`max_commission_share`].
    pub fn loser_reward_amount(&self) -> i64 {
        match self.reward {
            Reward::Cash(fen) | Reward::Coupon { amount: fen, .. } => fen.get(),
            Reward::Points(points) => points,
            Reward::CommissionShare(share) => max_commission_share(
                self.commission.of(self.price),
                share,
                self.winners_per_group(),
                self.group_size() - self.winners_per_group(),
            )
            .get(),
        }
    }
}

/// The most one loser of a group can receive from a `commission_share` reward, in fen.
///
/// Each winner's voucher, when redeemed, earned `commission = floor(price × commission_bps / 10000)`; the group's
/// `losers = N − K` split `share = floor(commission × share_bps / 10000)` of it, each getting
/// `floor(share / losers)` ([`crate::ledger::commission_share_each`]). At most all K winners redeem, so a loser
/// receives at most `K × floor(share / losers)`. That is the figure the card promises: it is what the ledger
/// really pays, and it is never above `floor(share × K / losers)` (each redemption floors its own split, so the
/// remainders, kept by the platform, are never pooled). No losers (K = N) means no share: zero.
pub fn max_commission_share(commission: Fen, share: BasisPoints, winners: i64, losers: i64) -> Fen {
    let each = crate::ledger::commission_share_each(commission, share, losers);
    each.checked_mul(winners.max(0)).unwrap_or(Fen::ZERO)
}

/// How many more people can still join a campaign: the free seats of its open groups, plus N seats for each
/// group its remaining stock can still open (opening a group reserves K units).
pub fn slots_left(rules: &CampaignRules, reserved_units: i64, won_units: i64, free_seats_in_open_groups: i64) -> i64 {
    let units_left = (rules.quantity() - reserved_units - won_units).max(0);
    let groups_left = units_left / rules.winners_per_group();
    free_seats_in_open_groups.max(0) + groups_left * rules.group_size()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> CampaignInput {
        CampaignInput {
            title: "双人火锅套餐".into(),
            product_type: "火锅".into(),
            description: None,
            quantity: 20,
            price: 990,
            original_price: 19_800,
            group_size: 5,
            winners_per_group: 2,
            reward: RewardInput { kind: "cash".into(), amount: Some(300), share_bps: None, valid_days: None },
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
        }
    }

    fn field_of(input: CampaignInput) -> String {
        CampaignRules::new(input).unwrap_err().field
    }

    #[test]
    fn a_valid_campaign_reserves_its_worst_case_cash() {
        let rules = CampaignRules::new(sample()).unwrap();
        // 20 / 2 = 10 groups, 3 losers each, ¥3 each.
        assert_eq!(rules.max_reward_cost().get(), 10 * 3 * 300);
        assert_eq!(rules.per_customer_limit(), 1);
        assert_eq!(rules.input().referral_bonus_points, Some(0));
    }

    #[test]
    fn group_shape_is_checked() {
        assert_eq!(field_of(CampaignInput { group_size: 1, ..sample() }), "group_size");
        assert_eq!(field_of(CampaignInput { group_size: 1_001, ..sample() }), "group_size");
        assert_eq!(field_of(CampaignInput { winners_per_group: 6, ..sample() }), "winners_per_group");
        assert_eq!(field_of(CampaignInput { winners_per_group: 0, ..sample() }), "winners_per_group");
        assert_eq!(field_of(CampaignInput { quantity: 21, ..sample() }), "quantity");
        assert!(CampaignRules::new(CampaignInput { winners_per_group: 5, quantity: 5, ..sample() }).is_ok());
    }

    #[test]
    fn money_is_checked() {
        assert_eq!(field_of(CampaignInput { price: 0, ..sample() }), "price");
        assert_eq!(field_of(CampaignInput { original_price: 500, ..sample() }), "original_price");
        assert_eq!(field_of(CampaignInput { commission_bps: 10_001, ..sample() }), "commission_bps");
        let capped = CampaignRules::new(CampaignInput { original_price: 990 + PRIZE_CAP + 1, ..sample() });
        assert_eq!(capped.unwrap_err().code, "prize_cap_exceeded");
        assert!(CampaignRules::new(CampaignInput { original_price: 990 + PRIZE_CAP, ..sample() }).is_ok());
    }

    #[test]
    fn rewards_and_draws_are_checked() {
        let coupon = RewardInput { kind: "coupon".into(), amount: Some(500), share_bps: None, valid_days: None };
        let rules = CampaignRules::new(CampaignInput { reward: coupon, ..sample() }).unwrap();
        assert_eq!(rules.reward(), Reward::Coupon { amount: Fen::from_stored(500).unwrap(), valid_days: 30 });
        assert_eq!(rules.max_reward_cost(), Fen::ZERO);
        let bad_kind = RewardInput { kind: "gold".into(), amount: Some(1), share_bps: None, valid_days: None };
        assert_eq!(field_of(CampaignInput { reward: bad_kind, ..sample() }), "reward.kind");
        let cash_days = RewardInput { kind: "cash".into(), amount: Some(1), share_bps: None, valid_days: Some(3) };
        assert_eq!(field_of(CampaignInput { reward: cash_days, ..sample() }), "reward.valid_days");
        assert_eq!(field_of(CampaignInput { draw_at: Some(Millis(1)), ..sample() }), "draw_at");
        let scheduled = CampaignRules::new(CampaignInput { draw_mode: "scheduled".into(), ..sample() }).unwrap();
        assert_eq!(scheduled.draw_mode(), DrawMode::Scheduled { draw_at: None, window_hours: 24 });
        assert_eq!(field_of(CampaignInput { draw_mode: "later".into(), ..sample() }), "draw_mode");
        assert_eq!(field_of(CampaignInput { group_ttl_seconds: 0, ..sample() }), "group_ttl_seconds");
        assert_eq!(field_of(CampaignInput { group_ttl_seconds: 2_592_001, ..sample() }), "group_ttl_seconds");
    }

    fn share(share_bps: Option<i64>, amount: Option<i64>) -> RewardInput {
        RewardInput { kind: "commission_share".into(), amount, share_bps, valid_days: None }
    }

    #[test]
    fn a_commission_share_takes_share_bps_and_no_amount() {
        let rules = CampaignRules::new(CampaignInput { reward: share(Some(5_000), None), ..sample() }).unwrap();
        assert_eq!(rules.reward(), Reward::CommissionShare(BasisPoints::parse("s", 5_000).unwrap()));
        assert_eq!(rules.max_reward_cost(), Fen::ZERO, "publishing reserves nothing");
        // Price 990, commission 5 %: 49; half of it 24, split by 3 losers: 8 each, twice (K = 2): 16.
        assert_eq!(rules.loser_reward_amount(), 16);
        for bad in [None, Some(0), Some(10_001), Some(-1)] {
            assert_eq!(field_of(CampaignInput { reward: share(bad, None), ..sample() }), "reward.share_bps", "{bad:?}");
        }
        assert_eq!(field_of(CampaignInput { reward: share(Some(100), Some(1)), ..sample() }), "reward.amount");
        assert!(CampaignRules::new(CampaignInput { reward: share(Some(1), None), ..sample() }).is_ok());
        assert!(CampaignRules::new(CampaignInput { reward: share(Some(10_000), None), ..sample() }).is_ok());
        let cash_share = RewardInput { share_bps: Some(100), ..sample().reward };
        assert_eq!(field_of(CampaignInput { reward: cash_share, ..sample() }), "reward.share_bps");
        let cash_without_amount = RewardInput { amount: None, ..sample().reward };
        assert_eq!(field_of(CampaignInput { reward: cash_without_amount, ..sample() }), "reward.amount");
        let share_days = RewardInput { valid_days: Some(3), ..share(Some(100), None) };
        assert_eq!(field_of(CampaignInput { reward: share_days, ..sample() }), "reward.valid_days");
    }

    #[test]
    fn the_most_a_loser_can_share_is_floored_per_redemption() {
        let bps = |b| BasisPoints::parse("s", b).unwrap();
        let fen = |f| Fen::from_stored(f).unwrap();
        // Commission 100, share 50 % = 50, 3 losers: 16 each per redemption, 2 winners: 32 (not floor(100/3) = 33).
        assert_eq!(max_commission_share(fen(100), bps(5_000), 2, 3), fen(32));
        assert_eq!(max_commission_share(fen(100), bps(5_000), 5, 0), Fen::ZERO, "K = N: no losers");
        assert_eq!(max_commission_share(fen(1), bps(10_000), 1, 2), Fen::ZERO, "a share below a fen each");
        let k_equals_n =
            CampaignInput { winners_per_group: 5, quantity: 5, reward: share(Some(10_000), None), ..sample() };
        assert_eq!(CampaignRules::new(k_equals_n).unwrap().loser_reward_amount(), 0);
    }

    #[test]
    fn worst_case_reward_cost_must_be_an_amount() {
        let huge = RewardInput { kind: "cash".into(), amount: Some(10_000_000_000), share_bps: None, valid_days: None };
        assert_eq!(field_of(CampaignInput { reward: huge, ..sample() }), "reward.amount");
    }

    #[test]
    fn slots_count_open_seats_and_openable_groups() {
        let rules = CampaignRules::new(sample()).unwrap(); // Q 20, K 2, N 5
        assert_eq!(slots_left(&rules, 0, 0, 0), 50);
        assert_eq!(slots_left(&rules, 2, 0, 3), 3 + 9 * 5);
        assert_eq!(slots_left(&rules, 10, 10, 0), 0);
    }

    #[test]
    fn times_must_be_in_order() {
        let input = CampaignInput { starts_at: Some(Millis(10)), ends_at: Some(Millis(10)), ..sample() };
        assert_eq!(field_of(input), "ends_at");
    }
}
