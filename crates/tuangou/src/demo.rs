//! `serve --demo`: a small demo city (Chengdu) so a newcomer sees deals at once. Seeded once: when the demo
//! operator exists already, nothing is added. Everything goes through the same use cases as real traffic.

use anyhow::anyhow;
use tuangou_app::{App, Caller, CreditTarget, MerchantInput, NewAccount};
use tuangou_domain::campaign::{CampaignInput, RewardInput};
use tuangou_domain::ids::CampaignId;

const OPERATOR_PHONE: &str = "13800000000";
const OWNER_PHONE: &str = "13800000001";
const CUSTOMER_PHONES: [&str; 2] = ["13900000001", "13900000002"];
const PASSWORD: &str = "tuangou-demo";

/// (name, category, address, latitude, longitude, phone, hours)
const MERCHANTS: [(&str, &str, &str, f64, f64, &str, &str); 3] = [
    ("老码头火锅 (春熙路店)", "火锅", "锦江区春熙路北段 8 号", 30.6563, 104.0800, "02886661234", "11:00–23:00"),
    ("宽窄巷子茶馆", "茶饮", "青羊区宽巷子 26 号", 30.6697, 104.0553, "02887775678", "09:00–21:00"),
    ("玉林小酒馆", "酒吧", "武侯区玉林西路 55 号", 30.6296, 104.0545, "13880001234", "18:00–02:00"),
];

fn deal(
    title: &str,
    product_type: &str,
    price: i64,
    original: i64,
    n: i64,
    k: i64,
    reward: (&str, i64),
) -> CampaignInput {
    CampaignInput {
        title: title.into(),
        product_type: product_type.into(),
        description: None,
        quantity: k * 20,
        price,
        original_price: original,
        group_size: n,
        winners_per_group: k,
        reward: RewardInput { kind: reward.0.into(), amount: reward.1, valid_days: None },
        referral_bonus_points: Some(10),
        commission_bps: 500,
        group_ttl_seconds: 24 * 3600,
        draw_mode: "instant".into(),
        draw_at: None,
        draw_window_hours: None,
        voucher_valid_days: 30,
        per_customer_limit: None,
        starts_at: None,
        ends_at: None,
    }
}

fn account(phone: &str, name: &str) -> anyhow::Result<NewAccount> {
    NewAccount::parse(phone, PASSWORD, name).map_err(|e| anyhow!("{e}"))
}

pub async fn seed(app: &App) -> anyhow::Result<()> {
    let err = |e: tuangou_app::AppError| anyhow!("{e}");
    if app.store().user_by_phone(OPERATOR_PHONE).await?.is_some() {
        print_accounts();
        return Ok(());
    }
    let operator = app.create_operator(account(OPERATOR_PHONE, "运营")?).await.map_err(err)?;
    let operator = Caller { user: operator.user_id(), is_operator: true };
    let owner = app.register(account(OWNER_PHONE, "王老板")?).await.map_err(err)?;
    let owner = Caller { user: owner.user_id(), is_operator: false };
    for (i, phone) in CUSTOMER_PHONES.iter().enumerate() {
        let customer = app.register(account(phone, &format!("顾客{}", i + 1))?).await.map_err(err)?;
        let reference = format!("demo-customer-{i}");
        app.credit(&operator, CreditTarget::User(customer.user_id()), 50_000, &reference).await.map_err(err)?;
    }
    let deals = [
        deal("双人火锅套餐 5 人团 2 人中", "火锅", 990, 19_800, 5, 2, ("cash", 300)),
        deal("盖碗茶 + 点心 3 人团 1 人中", "茶饮", 500, 6_800, 3, 1, ("points", 50)),
        deal("精酿啤酒 4 杯 6 人团 3 人中", "酒吧", 1_500, 16_000, 6, 3, ("coupon", 2_000)),
    ];
    for (i, ((name, category, address, lat, lng, phone, hours), input)) in MERCHANTS.iter().zip(deals).enumerate() {
        let profile =
            MerchantInput::parse(name, category, None, address, *lat, *lng, phone, Some(hours)).map_err(err)?;
        let merchant = app.create_merchant(&owner, profile).await.map_err(err)?;
        let id = tuangou_domain::ids::MerchantId::from_trusted(&merchant.merchant.id);
        app.credit(&operator, CreditTarget::Merchant(id.clone()), 1_000_000, &format!("demo-merchant-{i}"))
            .await
            .map_err(err)?;
        let campaign = app.create_campaign(&owner, &id, input).await.map_err(err)?;
        app.publish_campaign(&owner, &CampaignId::from_trusted(&campaign.id)).await.map_err(err)?;
    }
    print_accounts();
    Ok(())
}

fn print_accounts() {
    println!("demo accounts (password {PASSWORD}):");
    println!("  operator        {OPERATOR_PHONE}");
    println!("  merchant owner  {OWNER_PHONE}");
    for phone in CUSTOMER_PHONES {
        println!("  customer        {phone} (¥500.00 in the wallet)");
    }
}
