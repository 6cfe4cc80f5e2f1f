//! Campaigns (S1): drafts, publishing, ending, and what customers see.

use crate::{App, AppError, AppResult, Caller};
use tuangou_domain::campaign::{self, CampaignInput, CampaignRules, CampaignStatus};
use tuangou_domain::geo::Coordinates;
use tuangou_domain::ids::{CampaignId, MerchantId};
use tuangou_domain::text;
use tuangou_store::{CampaignFilter, CampaignRow, MerchantRow};

/// A campaign with what the public page needs beside it.
#[derive(Debug, Clone)]
pub struct CampaignView {
    pub campaign: CampaignRow,
    pub merchant: MerchantRow,
    pub groups_open: i64,
    pub groups_full: i64,
    pub slots_left: i64,
}

/// One row of the nearby listing.
#[derive(Debug, Clone)]
pub struct NearbyView {
    pub campaign: CampaignRow,
    pub merchant_name: String,
    /// The store's photo, for a deal without one of its own.
    pub merchant_photo: Option<String>,
    /// The store's category, for the tile of a deal without any photo.
    pub merchant_category: String,
    pub distance_km: Option<f64>,
    pub slots_left: i64,
}

/// The nearby listing's query, parsed. With `at`, only campaigns within `radius_km` (default 10, at most 500)
/// are listed, nearest first; without it, every live campaign, newest first. `cursor` is an opaque offset.
#[derive(Debug, Clone, Default)]
pub struct NearbyQuery {
    at: Option<Coordinates>,
    radius_km: f64,
    category: Option<String>,
    text: Option<String>,
    limit: usize,
    offset: usize,
}

/// How many live campaigns the listing considers at most before sorting by distance.
const LISTING_SCAN_LIMIT: i64 = 5_000;

impl NearbyQuery {
    pub fn parse(
        lat: Option<f64>,
        lng: Option<f64>,
        radius_km: Option<f64>,
        category: Option<&str>,
        q: Option<&str>,
        limit: Option<i64>,
        cursor: Option<&str>,
    ) -> AppResult<Self> {
        let at = match (lat, lng) {
            (Some(lat), Some(lng)) => Some(Coordinates::parse(lat, lng).map_err(|mut e| {
                e.field = if e.field == "latitude" { "lat".into() } else { "lng".into() };
                e
            })?),
            (None, None) => None,
            (Some(_), None) => return Err(tuangou_domain::Invalid::field("lng", "give lat and lng together").into()),
            (None, Some(_)) => return Err(tuangou_domain::Invalid::field("lat", "give lat and lng together").into()),
        };
        let radius_km = radius_km.unwrap_or(10.0);
        if !(radius_km.is_finite() && radius_km > 0.0 && radius_km <= 500.0) {
            return Err(tuangou_domain::Invalid::field("radius_km", "must be more than 0 and at most 500").into());
        }
        let filter_text = |field: &str, value: Option<&str>| -> AppResult<Option<String>> {
            Ok(match value {
                Some(v) => Some(text::bounded(field, v, 0, 40)?).filter(|v| !v.is_empty()),
                None => None,
            })
        };
        Ok(Self {
            at,
            radius_km,
            category: filter_text("category", category)?,
            text: filter_text("q", q)?,
            limit: parse_limit(limit)?,
            offset: parse_cursor(cursor)?,
        })
    }
}

/// `limit`: default 50, from 1 to 200.
pub(crate) fn parse_limit(limit: Option<i64>) -> AppResult<usize> {
    match limit.unwrap_or(50) {
        l @ 1..=200 => Ok(l as usize),
        _ => Err(tuangou_domain::Invalid::field("limit", "must be from 1 to 200").into()),
    }
}

fn parse_cursor(cursor: Option<&str>) -> AppResult<usize> {
    match cursor {
        None | Some("") => Ok(0),
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|o| *o <= LISTING_SCAN_LIMIT as usize)
            .ok_or_else(|| tuangou_domain::Invalid::field("cursor", "is not a cursor this list gave").into()),
    }
}

fn rules_of(row: &CampaignRow) -> AppResult<CampaignRules> {
    CampaignRules::new(row.input())
        .map_err(|e| AppError::Internal(format!("stored campaign {} is invalid: {e}", row.id)))
}

fn status_of(row: &CampaignRow) -> CampaignStatus {
    CampaignStatus::parse(&row.status).unwrap_or(CampaignStatus::Ended)
}

fn unknown_campaign() -> AppError {
    AppError::NotFound("unknown_campaign", "no such campaign")
}

impl App {
    /// A new draft; for the merchant's owner.
    pub async fn create_campaign(
        &self,
        caller: &Caller,
        merchant: &MerchantId,
        input: CampaignInput,
    ) -> AppResult<CampaignRow> {
        self.require_owner(caller, merchant).await?;
        let rules = CampaignRules::new(input)?;
        Ok(self.store.create_campaign(merchant, &rules, self.clock.now()).await?)
    }

    /// The draft's current fields, for its owner to patch. 409 `campaign_live` once published or ended — checked
    /// before any body is read.
    pub async fn draft_for_edit(&self, caller: &Caller, id: &CampaignId) -> AppResult<CampaignInput> {
        let row = self.owned_campaign(caller, id).await?;
        if status_of(&row) != CampaignStatus::Draft {
            return Err(AppError::conflict(
                "campaign_live",
                "the campaign is published: its rules can no longer change",
            ));
        }
        Ok(row.input())
    }

    pub async fn update_draft(&self, caller: &Caller, id: &CampaignId, input: CampaignInput) -> AppResult<CampaignRow> {
        self.owned_campaign(caller, id).await?;
        let rules = CampaignRules::new(input)?;
        Ok(self.store.update_draft(id, &rules).await?)
    }

    /// Draft → live, reserving the worst-case cash reward cost (402 when the wallet can't cover it).
    pub async fn publish_campaign(&self, caller: &Caller, id: &CampaignId) -> AppResult<CampaignRow> {
        let row = self.owned_campaign(caller, id).await?;
        let merchant = self.store.require_merchant(&row.merchant()).await?;
        if merchant.status != "active" {
            return Err(AppError::conflict("merchant_not_active", "the merchant awaits the operator's approval"));
        }
        let rules = rules_of(&row)?;
        if rules.input().ends_at.is_some_and(|ends| ends <= self.clock.now()) {
            return Err(AppError::conflict("campaign_ends_in_past", "ends_at has passed: change it before publishing"));
        }
        Ok(self.store.publish_campaign(id, rules.max_reward_cost(), self.clock.now()).await?)
    }

    /// Live → ended by the owner: open groups expire, full groups are drawn at once, and then what is left of
    /// the reward reserve returns to the wallet (the worker finishes whatever this call does not).
    pub async fn end_campaign(&self, caller: &Caller, id: &CampaignId) -> AppResult<CampaignRow> {
        self.owned_campaign(caller, id).await?;
        let row = self.store.end_campaign(id, self.clock.now()).await?;
        self.caches.forget(&tuangou_store::Stale::Campaign(id.to_string()));
        self.wind_up(id).await?;
        Ok(self.store.campaign(id).await?.unwrap_or(row))
    }

    /// Expires the open groups and draws the full groups of an ended campaign, then settles it.
    async fn wind_up(&self, id: &CampaignId) -> AppResult<()> {
        while self.expire_one().await? {}
        while self.draw_one(None).await? {}
        self.store.settle_campaign(id, self.clock.now()).await?;
        Ok(())
    }

    /// Settles ended campaigns whose groups are all done. Returns how many it settled.
    pub(crate) async fn settle_ended_campaigns(&self) -> AppResult<usize> {
        let mut settled = 0;
        for id in self.store.campaigns_to_settle(100).await? {
            settled += usize::from(self.store.settle_campaign(&id, self.clock.now()).await?);
        }
        Ok(settled)
    }

    /// A campaign as the public sees it. Drafts are visible only to the merchant's owner and staff.
    pub async fn campaign(&self, caller: Option<&Caller>, id: &CampaignId) -> AppResult<CampaignView> {
        let row = self.store.campaign(id).await?.ok_or_else(unknown_campaign)?;
        if status_of(&row) == CampaignStatus::Draft {
            let role = match caller {
                Some(c) => self.store.merchant_role(&row.merchant(), &c.user).await?,
                None => None,
            };
            if role.is_none() {
                return Err(unknown_campaign());
            }
        }
        let merchant = self.store.require_merchant(&row.merchant()).await?;
        let rules = rules_of(&row)?;
        let (groups_open, groups_full, free_seats) = self.store.group_counts(id, self.clock.now()).await?;
        let slots_left = match status_of(&row) {
            CampaignStatus::Live => campaign::slots_left(&rules, row.reserved_units, row.won_units, free_seats),
            _ => 0,
        };
        Ok(CampaignView { campaign: row, merchant, groups_open, groups_full, slots_left })
    }

    /// Live campaigns, nearest first when a position is given. Returns a page and the next cursor.
    pub async fn nearby_campaigns(&self, query: &NearbyQuery) -> AppResult<(Vec<NearbyView>, Option<String>)> {
        let filter = CampaignFilter {
            within: query.at.map(|at| at.bounding_box(query.radius_km)),
            category: query.category.clone(),
            text: query.text.clone(),
            limit: LISTING_SCAN_LIMIT,
            now: self.clock.now(),
        };
        let rows = self.store.live_campaigns(&filter).await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            let distance_km = query.at.map(|at| at.distance_km(Coordinates::from_stored(row.latitude, row.longitude)));
            if distance_km.is_some_and(|d| d > query.radius_km) {
                continue;
            }
            let rules = rules_of(&row.campaign)?;
            let slots_left =
                campaign::slots_left(&rules, row.campaign.reserved_units, row.campaign.won_units, row.free_seats);
            views.push(NearbyView {
                campaign: row.campaign,
                merchant_name: row.merchant_name,
                merchant_photo: row.merchant_photo,
                merchant_category: row.merchant_category,
                distance_km,
                slots_left,
            });
        }
        if query.at.is_some() {
            views.sort_by(|a, b| a.distance_km.unwrap_or(0.0).total_cmp(&b.distance_km.unwrap_or(0.0)));
        }
        let page: Vec<_> = views.iter().skip(query.offset).take(query.limit).cloned().collect();
        let next = query.offset + page.len();
        let next_cursor = (next < views.len()).then(|| next.to_string());
        Ok((page, next_cursor))
    }

    /// The campaign, when the caller owns its merchant (404 for unknown, 403 for others').
    pub(crate) async fn owned_campaign(&self, caller: &Caller, id: &CampaignId) -> AppResult<CampaignRow> {
        let row = self.store.campaign(id).await?.ok_or_else(unknown_campaign)?;
        self.require_owner(caller, &row.merchant()).await?;
        Ok(row)
    }

    /// Ends every live campaign whose `ends_at` has passed. Returns how many it ended. Safe to run on several
    /// instances at once: ending is a conditional update, so each campaign ends exactly once.
    pub async fn end_due_campaigns(&self) -> AppResult<usize> {
        let due = self.store.campaigns_due_to_end(self.clock.now(), 100).await?;
        let mut ended = 0;
        for id in due {
            match self.store.end_campaign(&id, self.clock.now()).await {
                Ok(_) => {
                    ended += 1;
                    self.caches.forget(&tuangou_store::Stale::Campaign(id.to_string()));
                    self.wind_up(&id).await?;
                }
                Err(tuangou_store::StoreError::Conflict(_)) => {} // another instance ended it first
                Err(e) => return Err(e.into()),
            }
        }
        Ok(ended)
    }
}
