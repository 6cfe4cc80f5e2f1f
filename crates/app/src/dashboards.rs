//! What the pages show beyond the API's own answers: a campaign's open groups, the merchant's and a campaign's
//! dashboards, the counter's recent redemptions, the operator's queue. Each checks who may see it; none writes.

use crate::{App, AppResult, Caller, CampaignView, MerchantView};
use tuangou_domain::ids::{CampaignId, MerchantId};
use tuangou_store::{
    CampaignRow, DailyFigures, GroupRow, MemberRow, MerchantRow, MerchantStats, RecentRedemption, StaffRow, StatsScope,
};

/// How many rows a dashboard list shows.
const LIST_LIMIT: i64 = 50;
/// The invitation tree covers at most this many memberships (the dashboard says when it was cut).
const TREE_LIMIT: i64 = 2_000;

/// The owner's view of a merchant.
#[derive(Debug, Clone)]
pub struct MerchantDashboard {
    pub merchant: MerchantView,
    pub campaigns: Vec<CampaignRow>,
    pub stats: MerchantStats,
    pub staff: Vec<StaffRow>,
}

/// The owner's view of one campaign.
#[derive(Debug, Clone)]
pub struct CampaignDashboard {
    pub campaign: CampaignView,
    pub stats: MerchantStats,
    pub daily: Vec<DailyFigures>,
    pub groups: Vec<GroupRow>,
    /// Memberships in join order, with `invited_by` tickets: the invitation tree's edges.
    pub members: Vec<MemberRow>,
    pub members_cut: bool,
}

impl CampaignDashboard {
    /// What the merchant paid per store visit, in fen: rewards, commission and the discount given on every
    /// redeemed voucher, over the redemptions; `None` before the first visit.
    pub fn cost_per_visit(&self) -> Option<i64> {
        let row = &self.campaign.campaign;
        let discount = (row.original_price - row.price) * self.stats.redeemed;
        let cost = self.stats.rewards_paid + self.stats.commission_paid + discount;
        (self.stats.redeemed > 0).then(|| cost / self.stats.redeemed)
    }

    /// Redeemed purchase vouchers per winner, in basis points; `None` before the first winner.
    pub fn redemption_rate_bps(&self) -> Option<i64> {
        (self.stats.winners > 0).then(|| self.stats.redeemed * 10_000 / self.stats.winners)
    }
}

impl App {
    /// A campaign's open groups, closest to full first, for its public page (drafts stay hidden as in
    /// [`App::campaign`]).
    pub async fn open_groups(
        &self,
        caller: Option<&Caller>,
        id: &CampaignId,
    ) -> AppResult<(CampaignView, Vec<GroupRow>)> {
        let view = self.campaign(caller, id).await?;
        let groups = self.store.open_groups(id, LIST_LIMIT).await?;
        Ok((view, groups))
    }

    /// The live campaigns of one merchant, for its public entrance page.
    pub async fn live_campaigns_of(&self, merchant: &MerchantId) -> AppResult<(MerchantView, Vec<CampaignRow>)> {
        let view = self.merchant(merchant).await?;
        let mut campaigns = self.store.merchant_campaigns(merchant, LIST_LIMIT).await?;
        campaigns.retain(|c| c.status == "live");
        Ok((view, campaigns))
    }

    pub async fn merchant_dashboard(&self, caller: &Caller, merchant: &MerchantId) -> AppResult<MerchantDashboard> {
        self.require_owner(caller, merchant).await?;
        Ok(MerchantDashboard {
            merchant: self.merchant(merchant).await?,
            campaigns: self.store.merchant_campaigns(merchant, LIST_LIMIT).await?,
            stats: self.store.merchant_stats(StatsScope::Merchant(merchant)).await?,
            staff: self.store.staff_of(merchant).await?,
        })
    }

    pub async fn campaign_dashboard(&self, caller: &Caller, id: &CampaignId) -> AppResult<CampaignDashboard> {
        let campaign = self.campaign(Some(caller), id).await?;
        let merchant = campaign.campaign.merchant();
        self.require_owner(caller, &merchant).await?;
        let mut members = self.store.campaign_members(id, TREE_LIMIT + 1).await?;
        let members_cut = members.len() as i64 > TREE_LIMIT;
        members.truncate(TREE_LIMIT as usize);
        Ok(CampaignDashboard {
            stats: self.store.merchant_stats(StatsScope::Campaign(&merchant, id)).await?,
            daily: self.store.campaign_daily(id).await?,
            groups: self.store.recent_groups(id, LIST_LIMIT).await?,
            members,
            members_cut,
            campaign,
        })
    }

    /// The counter's latest redemptions; for the merchant's staff and owner.
    pub async fn recent_redemptions(&self, caller: &Caller, merchant: &MerchantId) -> AppResult<Vec<RecentRedemption>> {
        self.require_staff(caller, merchant).await?;
        Ok(self.store.recent_redemptions(merchant, 20).await?)
    }

    /// Merchants waiting for approval; for operators.
    pub async fn pending_merchants(&self, caller: &Caller) -> AppResult<Vec<MerchantRow>> {
        caller.require_operator()?;
        Ok(self.store.pending_merchants(LIST_LIMIT).await?)
    }
}
