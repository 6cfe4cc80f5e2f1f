//! The rules card: everything a customer must know before paying, as data (SPEC.md, "Trust and the law").
//!
//! It is derived from the campaign's checked rules and the merchant's contact, never typed in by hand, so it
//! cannot disagree with what the system does. Its sentences come in Simplified Chinese (the default) and English.

use crate::campaign::{CampaignRules, DrawMode, Reward};
use crate::time::{Millis, china_time};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulesCard {
    pub price: i64,
    pub original_price: i64,
    pub group_size: i64,
    pub winners_per_group: i64,
    /// "K/N", e.g. "2/5".
    pub odds: String,
    /// The deal in one plain sentence, e.g. "5 人成团，2 人中奖；未中奖全额退款并得 ¥3.00 现金".
    pub headline: String,
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
    /// When the draw happens, in plain words (the automatic draw that bounds a merchant's delay included).
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draw_at: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_hours: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RewardRules {
    pub kind: &'static str,
    /// What each loser gets (fen, or points); for `commission_share`, the most a loser can receive in all, in fen
    /// ([`crate::campaign::max_commission_share`]).
    pub amount: i64,
    /// `commission_share` only: the share of the commission the losers split, in basis points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_bps: Option<i64>,
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

/// The languages the card is written in: Simplified Chinese by default, English on request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// The reader's language from an `Accept-Language` header: English when English is preferred to Chinese,
    /// Chinese otherwise (the default for a missing or unreadable header).
    pub fn from_accept_language(header: Option<&str>) -> Self {
        let Some(header) = header else { return Lang::Zh };
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
            let lang = if tag.starts_with("en") {
                Lang::En
            } else if tag.starts_with("zh") {
                Lang::Zh
            } else {
                continue;
            };
            if best.is_none_or(|(best_q, _)| q > best_q) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::Zh, |(_, lang)| lang)
    }
}

/// The card's sentences in one language.
struct Texts {
    headline: fn(i64, i64, &str) -> String,
    headline_cash: fn(&str) -> String,
    headline_points: fn(i64) -> String,
    headline_coupon: fn(&str) -> String,
    headline_share: fn(&str) -> String,
    on_fill: &'static str,
    scheduled: fn(i64) -> String,
    scheduled_at: fn(&str, i64) -> String,
    cash: fn(&str) -> String,
    points: fn(i64) -> String,
    coupon: fn(&str, &str, i64) -> String,
    /// (share of the commission in percent, the most a loser can receive)
    share: fn(&str, &str) -> String,
    redeem_where: fn(&str, &str) -> String,
    not_drawn: &'static str,
    unused_voucher: &'static str,
    on_expiry: &'static str,
}

impl Texts {
    fn in_lang(lang: Lang) -> Self {
        match lang {
            Lang::Zh => Texts {
                headline: |n, k, reward| format!("{n} 人成团，{k} 人中奖；未中奖全额退款并得{reward}"),
                headline_cash: |amount| format!(" {amount} 现金奖励"),
                headline_points: |points| format!(" {points} 积分"),
                headline_coupon: |amount| format!(" {amount} 到店优惠券"),
                headline_share: |most| format!("平台佣金分成（每人最多 {most}）"),
                on_fill: "满员即开奖（tuangou-draw-v1，可验证）",
                scheduled: |hours| {
                    format!(
                        "满员后在店内现场开奖；若商家 {hours} 小时内未开奖，系统自动开奖（tuangou-draw-v1，可验证）"
                    )
                },
                scheduled_at: |at, hours| {
                    format!(
                        "{at}（北京时间）在店内现场开奖，满员后最迟 {hours} 小时内系统自动开奖（tuangou-draw-v1，可验证）"
                    )
                },
                cash: |amount| format!("未中奖者开奖后获得 {amount} 现金奖励，存入 tuangou 钱包；每团一次；不过期"),
                points: |points| format!("未中奖者开奖后获得 {points} 积分；每团一次"),
                coupon: |amount, store, days| {
                    format!(
                        "未中奖者获得 {store} 下次到店立减 {amount} 优惠券，{days} 天内到店核销；每团一次；无现金价值，过期不退"
                    )
                },
                share: |percent, most| {
                    format!(
                        "本团中奖者每核销一张券，平台把该券佣金的 {percent}% 平分给本团未中奖者（按分向下取整，余数归平台），\
                         存入 tuangou 钱包；每人最多共得 {most}；券被退款或过期不产生佣金，也就没有分成；核销被撤销时，分成随之收回"
                    )
                },
                redeem_where: |store, address| format!("到店核销：{store}，{address}"),
                not_drawn: "未中奖者开奖时全额退款",
                unused_voucher: "中奖者可在使用前随时申请未使用券全额退款（随时退）",
                on_expiry: "未成团或券过期未使用，自动全额退款（过期退）",
            },
            Lang::En => Texts {
                headline: |n, k, reward| {
                    format!("Groups of {n}, {k} win; everyone else gets a full refund and{reward}")
                },
                headline_cash: |amount| format!(" {amount} cash"),
                headline_points: |points| format!(" {points} points"),
                headline_coupon: |amount| format!(" a {amount} coupon for the store"),
                headline_share: |most| format!(" a share of the platform's commission (at most {most} each)"),
                on_fill: "drawn the moment the group fills (tuangou-draw-v1, verifiable)",
                scheduled: |hours| {
                    format!(
                        "drawn live in the store once the group is full; if the store has not drawn within {hours} \
                         hours, the system draws automatically (tuangou-draw-v1, verifiable)"
                    )
                },
                scheduled_at: |at, hours| {
                    format!(
                        "drawn live in the store at {at} (China time); at the latest {hours} hours after the group \
                         fills, the system draws automatically (tuangou-draw-v1, verifiable)"
                    )
                },
                cash: |amount| {
                    format!(
                        "{amount} cash into your tuangou wallet when your group is drawn and you are not among the \
                         winners; once per group; no expiry"
                    )
                },
                points: |points| {
                    format!(
                        "{points} tuangou points when your group is drawn and you are not among the winners; once per group"
                    )
                },
                coupon: |amount, store, days| {
                    format!(
                        "a {amount} coupon off your next visit to {store}, valid for {days} days, redeemed in the \
                         store; once per group; no cash value and no refund when it expires"
                    )
                },
                share: |percent, most| {
                    format!(
                        "each time a winner of your group redeems their voucher in the store, {percent}% of the \
                         platform's commission on it is split equally among the members not drawn (rounded down to \
                         the fen; the platform keeps the remainder) and paid into your tuangou wallet; at most {most} \
                         each in all; a voucher refunded or expired earns no commission and shares nothing; an undone \
                         redemption takes its share back"
                    )
                },
                redeem_where: |store, address| format!("in the store: {store}, {address}"),
                not_drawn: "members not drawn get the full price back at the draw",
                unused_voucher: "a winner may return an unused voucher for a full refund at any time before it is used",
                on_expiry: "a group that does not fill in time, and a voucher that expires unused, are refunded in \
                            full automatically",
            },
        }
    }
}

fn yuan(fen: i64) -> String {
    format!("¥{}.{:02}", fen / 100, fen % 100)
}

/// Basis points as a percentage without trailing zeros: 2500 → "25", 1250 → "12.5", 5 → "0.05".
fn percent(bps: i64) -> String {
    let text = format!("{}.{:02}", bps / 100, bps % 100);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

impl RulesCard {
    /// The card in `lang`; only the sentences differ between languages, never the figures.
    pub fn new(rules: &CampaignRules, contact: MerchantContact, lang: Lang) -> Self {
        let (n, k) = (rules.group_size(), rules.winners_per_group());
        let texts = Texts::in_lang(lang);
        let draw = match rules.draw_mode() {
            DrawMode::Instant => DrawRules {
                method: "tuangou-draw-v1",
                when: "on_fill",
                description: texts.on_fill.into(),
                draw_at: None,
                window_hours: None,
            },
            DrawMode::Scheduled { draw_at, window_hours } => DrawRules {
                method: "tuangou-draw-v1",
                when: "scheduled",
                description: match draw_at {
                    Some(at) => (texts.scheduled_at)(&china_time(at), window_hours),
                    None => (texts.scheduled)(window_hours),
                },
                draw_at,
                window_hours: Some(window_hours),
            },
        };
        let reward = rules.reward();
        let headline_reward = match reward {
            Reward::Cash(fen) => (texts.headline_cash)(&yuan(fen.get())),
            Reward::Points(points) => (texts.headline_points)(points),
            Reward::Coupon { amount, .. } => (texts.headline_coupon)(&yuan(amount.get())),
            Reward::CommissionShare(_) => (texts.headline_share)(&yuan(rules.loser_reward_amount())),
        };
        let reward_rules = match reward {
            Reward::Cash(fen) => (texts.cash)(&yuan(fen.get())),
            Reward::Points(points) => (texts.points)(points),
            Reward::Coupon { amount, valid_days } => (texts.coupon)(&yuan(amount.get()), &contact.name, valid_days),
            Reward::CommissionShare(share) => (texts.share)(&percent(share.get()), &yuan(rules.loser_reward_amount())),
        };
        let share_bps = match reward {
            Reward::CommissionShare(share) => Some(share.get()),
            _ => None,
        };
        Self {
            price: rules.price().get(),
            original_price: rules.original_price().get(),
            group_size: n,
            winners_per_group: k,
            odds: format!("{k}/{n}"),
            headline: (texts.headline)(n, k, &headline_reward),
            draw,
            loser_reward: RewardRules {
                kind: reward.kind(),
                amount: rules.loser_reward_amount(),
                share_bps,
                rules: reward_rules,
            },
            referral_bonus_points: rules.input().referral_bonus_points.unwrap_or(0),
            redeem: RedeemRules {
                where_: (texts.redeem_where)(&contact.name, &contact.address),
                valid_days: rules.input().voucher_valid_days,
            },
            refunds: RefundRules {
                not_drawn: texts.not_drawn.into(),
                unused_voucher: texts.unused_voucher.into(),
                on_expiry: texts.on_expiry.into(),
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
        let card = RulesCard::new(&rules, contact.clone(), Lang::En);
        assert_eq!(card.odds, "2/5");
        assert_eq!(card.draw.when, "on_fill");
        assert_eq!(card.loser_reward.kind, "cash");
        assert!(card.loser_reward.rules.contains("¥3.00"));
        assert_eq!(card.referral_bonus_points, 10);
        assert_eq!(card.redeem.valid_days, 30);
        let zh = RulesCard::new(&rules, contact, Lang::Zh);
        assert!(zh.loser_reward.rules.contains("¥3.00") && zh.loser_reward.rules.contains("现金"));
        assert_eq!(zh.headline, "5 人成团，2 人中奖；未中奖全额退款并得 ¥3.00 现金奖励");
        assert_eq!(card.headline, "Groups of 5, 2 win; everyone else gets a full refund and ¥3.00 cash");
        assert!(zh.draw.description.contains("满员即开奖"));
        assert_eq!((zh.odds, zh.price), (card.odds, card.price), "only the sentences change");
    }

    #[test]
    fn a_commission_share_card_says_the_most_a_loser_can_receive() {
        use crate::campaign::RewardInput;
        // Price 9,900, commission 10 %: 990 per voucher; 25 % of it: 247; 3 losers: 82 each; K = 2: at most 164.
        let reward =
            RewardInput { kind: "commission_share".into(), amount: None, share_bps: Some(2_500), valid_days: None };
        let input = CampaignInput { price: 9_900, commission_bps: 1_000, reward, ..crate::campaign::tests::sample() };
        let rules = CampaignRules::new(input).unwrap();
        let contact = MerchantContact { name: "老码头".into(), phone: "028".into(), address: "春熙路".into() };
        let en = RulesCard::new(&rules, contact.clone(), Lang::En);
        assert_eq!(
            (en.loser_reward.kind, en.loser_reward.amount, en.loser_reward.share_bps),
            ("commission_share", 164, Some(2_500))
        );
        assert!(
            en.loser_reward.rules.contains("25%") && en.loser_reward.rules.contains("at most ¥1.64"),
            "{}",
            en.loser_reward.rules
        );
        assert!(en.headline.ends_with("a share of the platform's commission (at most ¥1.64 each)"), "{}", en.headline);
        let zh = RulesCard::new(&rules, contact, Lang::Zh);
        assert!(
            zh.loser_reward.rules.contains("25%") && zh.loser_reward.rules.contains("最多共得 ¥1.64"),
            "{}",
            zh.loser_reward.rules
        );
        assert!(zh.headline.ends_with("平台佣金分成（每人最多 ¥1.64）"), "{}", zh.headline);
        let json = serde_json::to_value(&en).unwrap();
        assert_eq!(json["loser_reward"]["share_bps"], 2_500);
        assert_eq!(percent(1_250), "12.5");
        assert_eq!(percent(5), "0.05");
        assert_eq!(percent(10_000), "100");
    }

    #[test]
    fn the_reader_language_comes_from_accept_language() {
        assert_eq!(Lang::from_accept_language(None), Lang::Zh);
        assert_eq!(Lang::from_accept_language(Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("zh-CN,zh;q=0.9,en;q=0.8")), Lang::Zh);
        assert_eq!(Lang::from_accept_language(Some("fr-FR, en;q=0.5")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("zh;q=0.3, en;q=0.7")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("de")), Lang::Zh);
    }
}
