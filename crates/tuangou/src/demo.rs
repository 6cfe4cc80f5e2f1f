//! `serve --demo`: a demo city (Chengdu) so a newcomer sees the whole story at once — ten merchants at
//! real-looking coordinates, twenty campaigns across draw modes and rewards (one a share of the commission), customers with money, and groups in
//! every state (open, full and waiting for a scheduled draw, drawn with vouchers, expired). Seeded once: when the
//! demo operator exists already, nothing is added. Everything goes through the same use cases as real traffic,
//! the photos of every store and deal included (drawn by `demo_photos`, uploaded by [`photos`] beside the server).

use anyhow::anyhow;
use tuangou_app::photos::{PhotoUpload, UploadType};
use tuangou_app::{App, AppError, Caller, CreditTarget, JoinInput, JoinTarget, MerchantInput, NewAccount};
use tuangou_domain::campaign::{CampaignInput, RewardInput};
use tuangou_domain::ids::{CampaignId, MerchantId};

const OPERATOR_PHONE: &str = "13800000000";
const OWNER_PHONE: &str = "13800000001";
const CUSTOMERS: usize = 8;
const PASSWORD: &str = "tuangou-demo";

/// (name, category, address, latitude, longitude, phone, hours)
type Shop = (&'static str, &'static str, &'static str, f64, f64, &'static str, &'static str);

const MERCHANTS: [Shop; 10] = [
    ("老码头火锅 (春熙路店)", "火锅", "锦江区春熙路北段 8 号", 30.6563, 104.0800, "02886661234", "11:00–23:00"),
    ("宽窄巷子茶馆", "茶饮", "青羊区宽巷子 26 号", 30.6697, 104.0553, "02887775678", "09:00–21:00"),
    ("玉林小酒馆", "酒吧", "武侯区玉林西路 55 号", 30.6296, 104.0545, "13880001234", "18:00–02:00"),
    ("锦里冰粉", "甜品", "武侯区锦里古街 12 号", 30.6469, 104.0489, "02885551111", "10:00–22:00"),
    ("太古里手冲咖啡", "咖啡", "锦江区中纱帽街 8 号", 30.6540, 104.0840, "02886662222", "08:00–22:00"),
    ("建设路烧烤", "烧烤", "成华区建设路 48 号", 30.6770, 104.1030, "13980003333", "17:00–02:00"),
    ("九眼桥串串香", "串串", "锦江区九眼桥滨江路 3 号", 30.6390, 104.0870, "02884444444", "16:00–01:00"),
    ("鹤鸣茶社", "茶饮", "青羊区人民公园内", 30.6590, 104.0560, "02886135555", "07:00–19:00"),
    ("东郊记忆面包坊", "烘焙", "成华区建设南支路 4 号", 30.6720, 104.1250, "13880006666", "09:00–21:00"),
    ("奎星楼小面", "面馆", "青羊区奎星楼街 35 号", 30.6680, 104.0500, "02887777777", "07:00–15:00"),
];

/// One deal: (title, price, original, N, K, reward kind, reward amount (share_bps for a commission share),
/// scheduled?)
type Deal = (&'static str, i64, i64, i64, i64, &'static str, i64, bool);

/// Two deals per merchant, in the order of `MERCHANTS`.
const DEALS: [Deal; 20] = [
    ("双人火锅套餐 · 5 人团 2 人中", 990, 19_800, 5, 2, "cash", 300, false),
    ("毛肚鸭肠拼盘 · 3 人团 1 人中", 500, 6_800, 3, 1, "coupon", 2_000, true),
    ("盖碗茶 + 点心 · 3 人团 1 人中", 500, 6_800, 3, 1, "points", 50, false),
    ("茶艺体验课 · 4 人团 2 人中", 1_990, 12_800, 4, 2, "cash", 200, true),
    ("精酿啤酒 4 杯 · 6 人团 3 人中", 1_500, 16_000, 6, 3, "coupon", 2_000, false),
    ("调酒师特调 · 2 人团 1 人中", 990, 8_800, 2, 1, "commission_share", 5_000, false),
    ("冰粉三拼 · 3 人团 1 人中", 300, 2_400, 3, 1, "cash", 100, false),
    ("红糖糍粑 · 4 人团 2 人中", 200, 1_800, 4, 2, "points", 20, true),
    ("手冲咖啡两杯 · 4 人团 1 人中", 900, 9_600, 4, 1, "coupon", 1_000, false),
    ("咖啡豆 250g · 5 人团 1 人中", 2_900, 16_800, 5, 1, "cash", 500, true),
    ("烧烤双人餐 · 5 人团 2 人中", 1_990, 22_800, 5, 2, "cash", 400, false),
    ("冷啖杯畅饮 · 3 人团 1 人中", 990, 9_900, 3, 1, "points", 100, false),
    ("串串 100 签 · 4 人团 2 人中", 990, 12_000, 4, 2, "coupon", 1_500, false),
    ("钵钵鸡 · 2 人团 1 人中", 500, 3_800, 2, 1, "cash", 150, true),
    ("掏耳朵 + 茶 · 3 人团 1 人中", 990, 8_000, 3, 1, "points", 60, false),
    ("茶社包场一小时 · 6 人团 1 人中", 4_900, 48_000, 6, 1, "cash", 300, true),
    ("欧包礼盒 · 4 人团 2 人中", 1_290, 8_800, 4, 2, "coupon", 1_000, false),
    ("生日蛋糕 6 寸 · 5 人团 1 人中", 2_990, 19_800, 5, 1, "points", 120, false),
    ("豌杂面 + 冰粉 · 3 人团 1 人中", 300, 2_600, 3, 1, "cash", 100, false),
    ("小面月卡 · 5 人团 1 人中", 990, 39_000, 5, 1, "coupon", 500, true),
];

fn deal(&(title, price, original, n, k, kind, amount, scheduled): &Deal) -> CampaignInput {
    CampaignInput {
        title: title.into(),
        product_type: title.split(' ').next().unwrap_or(title).chars().take(40).collect(),
        description: None,
        quantity: k * 20,
        price,
        original_price: original,
        group_size: n,
        winners_per_group: k,
        reward: if kind == "commission_share" {
            RewardInput { kind: kind.into(), amount: None, share_bps: Some(amount), valid_days: None }
        } else {
            RewardInput { kind: kind.into(), amount: Some(amount), share_bps: None, valid_days: None }
        },
        referral_bonus_points: Some(10),
        commission_bps: 500,
        group_ttl_seconds: 24 * 3600,
        draw_mode: if scheduled { "scheduled" } else { "instant" }.into(),
        draw_at: None,
        draw_window_hours: None,
        voucher_valid_days: 30,
        per_customer_limit: Some(3),
        payment_window_minutes: None,
        starts_at: None,
        ends_at: None,
    }
}

fn account(phone: &str, name: &str) -> anyhow::Result<NewAccount> {
    NewAccount::parse(phone, PASSWORD, name).map_err(|e| anyhow!("{e}"))
}

fn customer_phone(i: usize) -> String {
    format!("1390000{:04}", i + 1)
}

fn err(e: AppError) -> anyhow::Error {
    anyhow!("{e}")
}

pub async fn seed(app: &App) -> anyhow::Result<()> {
    if app.store().user_by_phone(OPERATOR_PHONE).await?.is_some() {
        print_accounts();
        return Ok(());
    }
    let operator = app.create_operator(account(OPERATOR_PHONE, "运营")?).await.map_err(err)?;
    let operator = Caller { user: operator.user_id(), is_operator: true };
    let owner = app.register(account(OWNER_PHONE, "王老板")?).await.map_err(err)?;
    let owner = Caller { user: owner.user_id(), is_operator: false };
    let mut customers = Vec::new();
    for i in 0..CUSTOMERS {
        let customer = app.register(account(&customer_phone(i), &format!("顾客{}", i + 1))?).await.map_err(err)?;
        app.credit(&operator, CreditTarget::User(customer.user_id()), 50_000, &format!("demo-customer-{i}"))
            .await
            .map_err(err)?;
        customers.push(Caller { user: customer.user_id(), is_operator: false });
    }
    let mut campaigns = Vec::new();
    for (i, (name, category, address, lat, lng, phone, hours)) in MERCHANTS.iter().enumerate() {
        let profile =
            MerchantInput::parse(name, category, None, address, *lat, *lng, phone, Some(hours)).map_err(err)?;
        let merchant = app.create_merchant(&owner, profile).await.map_err(err)?;
        let id = MerchantId::from_trusted(&merchant.merchant.id);
        app.credit(&operator, CreditTarget::Merchant(id.clone()), 2_000_000, &format!("demo-merchant-{i}"))
            .await
            .map_err(err)?;
        for offer in &DEALS[2 * i..2 * i + 2] {
            let campaign = app.create_campaign(&owner, &id, deal(offer)).await.map_err(err)?;
            let campaign = CampaignId::from_trusted(&campaign.id);
            app.publish_campaign(&owner, &campaign).await.map_err(err)?;
            campaigns.push((campaign, offer.3, offer.7));
        }
    }
    // Groups in every state: drawn (instant, filled), full and waiting (scheduled, filled), open (one member).
    let join = |who: usize, target: JoinTarget| {
        let customer = customers[who % CUSTOMERS].clone();
        async move { app.join(&customer, target, JoinInput::default(), None).await.map(|_| ()).map_err(err) }
    };
    for (c, (campaign, n, _)) in campaigns.iter().enumerate().take(8) {
        for member in 0..usize::try_from(*n).unwrap_or(2) {
            join(c + member, JoinTarget::Campaign(campaign.clone())).await?;
        }
    }
    for (c, (campaign, _, _)) in campaigns.iter().enumerate().skip(8).take(6) {
        join(c, JoinTarget::NewGroup(campaign.clone())).await?;
    }
    // An expired group: a campaign whose owner ended it while a group was still open.
    let (last, _, _) = &campaigns[19];
    join(3, JoinTarget::NewGroup(last.clone())).await?;
    app.end_campaign(&owner, last).await.map_err(err)?;
    print_accounts();
    Ok(())
}

/// Gives every demo store and deal without a photo one, drawn on the spot (`demo_photos`) and uploaded by the
/// owner through the same use case as a real upload. `serve --demo` runs it beside the server once seeding is
/// done: drawing and re-encoding thirty photos takes seconds in a debug build, and the city is usable meanwhile
/// (cards show their tiles until their photo arrives). A run cut short is finished by the next start.
pub async fn photos(app: &App) -> anyhow::Result<()> {
    let Some(owner) = app.store().user_by_phone(OWNER_PHONE).await? else { return Ok(()) };
    let owner = Caller { user: owner.user_id(), is_operator: false };
    for (i, (merchant, _)) in app.store().roles_of(&owner.user).await?.into_iter().enumerate() {
        let board = app.merchant_dashboard(&owner, &merchant).await.map_err(err)?;
        let category = board.merchant.merchant.category.clone();
        if board.merchant.merchant.photo.is_none() {
            let picture = draw(category.clone(), 3 * i).await?;
            app.set_merchant_photo(&owner, &merchant, picture).await.map_err(err)?;
        }
        for (k, campaign) in board.campaigns.iter().enumerate() {
            if campaign.photo.is_none() {
                let picture = draw(category.clone(), 3 * i + k + 1).await?;
                app.set_campaign_photo(&owner, &CampaignId::from_trusted(&campaign.id), picture).await.map_err(err)?;
            }
        }
    }
    Ok(())
}

/// One picture, drawn off the async workers.
async fn draw(category: String, variant: usize) -> anyhow::Result<PhotoUpload> {
    let bytes = tokio::task::spawn_blocking(move || crate::demo_photos::picture(&category, variant)).await?;
    Ok(PhotoUpload { kind: UploadType::Jpeg, bytes })
}

fn print_accounts() {
    println!("demo city: Chengdu, 10 merchants, 20 campaigns (password for every account: {PASSWORD})");
    println!("  operator        {OPERATOR_PHONE}");
    println!("  merchant owner  {OWNER_PHONE} (owns all ten stores)");
    for i in 0..CUSTOMERS {
        println!("  customer        {}", customer_phone(i));
    }
}
