//! Joining and the draw (S2, S3): opening groups, joining them, drawing full ones, expiring late ones.
//!
//! Choices where API.md is silent: a `scheduled` group is due for its automatic draw at `draw_at` (or when it
//! fills, if later) and at the latest `draw_window_hours` after filling; an `instant` group is due when it fills
//! and is drawn right after the filling join commits, before that join is answered (the worker draws it within
//! a tick if the process died in between). A group's deadline is its opening time plus `group_ttl_seconds`.

use crate::events::GroupEvent;
use crate::{App, AppError, AppResult, Caller};
use std::collections::BTreeMap;
use tuangou_domain::campaign::Reward;
use tuangou_domain::campaign::{CampaignRules, DrawMode};
use tuangou_domain::draw::{self, Member, ServerSeed};
use tuangou_domain::ids::{CampaignId, GroupId};
use tuangou_domain::ledger::{Hold, draw_entries, referral_bonus};
use tuangou_domain::money::Fen;
use tuangou_domain::time::Millis;
use tuangou_domain::voucher_keys::ServerSecret;
use tuangou_store::{
    Admission, CampaignRow, DrawPlan, GroupRow, IdempotencyClaim, Inviters, MemberRow, NewGroup, NewRefund, NewVoucher,
    PaymentRow, SeatPayment, Seated, StoreError,
};

/// Where a join goes.
#[derive(Debug, Clone)]
pub enum JoinTarget {
    /// Open a new group of this campaign and be its first member.
    NewGroup(CampaignId),
    /// Join this group.
    Group(GroupId),
    /// Join the open group closest to full, else open one.
    Campaign(CampaignId),
}

/// The optional fields of a join.
#[derive(Debug, Clone, Default)]
pub struct JoinInput {
    pub client_seed: Option<String>,
    pub invited_by: Option<String>,
    /// `wallet` (the default), or a provider the seat waits to be paid through (`sandbox`, …).
    pub pay_with: Option<String>,
    /// What the web edge saw of the payer (browser, address, WeChat openid): the provider's kind of order.
    pub payer: crate::payments::port::PayerHints,
}

/// A group with its members, in join order.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub group: GroupRow,
    pub members: Vec<MemberRow>,
}

/// A successful join.
#[derive(Debug, Clone)]
pub struct Joined {
    pub group: GroupView,
    pub membership: MemberRow,
    /// The payment a pending seat waits for (with what the client pays with).
    pub payment: Option<PaymentRow>,
}

/// What a join answers: a new join, or the first answer to the same idempotency key.
#[derive(Debug, Clone)]
pub enum JoinAnswer {
    Fresh(Joined),
    /// The stored first answer, as it was sent.
    Stored {
        status: u16,
        body: String,
    },
    /// The first request succeeded but its answer was not stored (it is still being sent, or the process died):
    /// the same membership, as it is now.
    Again(Joined),
}

fn random_bytes<const N: usize>() -> AppResult<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
    Ok(bytes)
}

/// A public pseudonym for a membership: `t` and 15 lowercase base32 characters (75 random bits).
fn new_ticket() -> AppResult<String> {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let bytes = random_bytes::<15>()?;
    Ok(std::iter::once('t').chain(bytes.iter().map(|b| ALPHABET[usize::from(b % 32)] as char)).collect())
}

/// When a group that fills at `now` must be drawn at the latest.
pub(crate) fn draw_due(mode: DrawMode, now: Millis) -> Millis {
    match mode {
        DrawMode::Instant => now,
        DrawMode::Scheduled { draw_at, window_hours } => {
            let window_end = now.plus_millis(window_hours.saturating_mul(Millis::HOUR));
            match draw_at {
                Some(at) => at.max(now).min(window_end),
                None => window_end,
            }
        }
    }
}

pub(crate) fn rules_of(row: &CampaignRow) -> AppResult<CampaignRules> {
    CampaignRules::new(row.input())
        .map_err(|e| AppError::Internal(format!("stored campaign {} is invalid: {e}", row.id)))
}

fn event(kind: &str, group: &GroupRow) -> GroupEvent {
    GroupEvent {
        kind: kind.into(),
        group_id: group.id.clone(),
        campaign_id: group.campaign_id.clone(),
        status: group.status.clone(),
        member_count: group.member_count,
        voucher_id: None,
    }
}

/// A group as its public record, for verification per FAIRNESS.md (the same fields the API shows).
pub(crate) fn record_of(group: &GroupRow, members: &[MemberRow]) -> draw::GroupRecord {
    let drawn = group.status == "drawn";
    draw::GroupRecord {
        id: group.id.clone(),
        campaign_id: Some(group.campaign_id.clone()),
        status: Some(group.status.clone()),
        group_size: group.group_size,
        winners_per_group: group.winners_per_group,
        expires_at: None,
        seed_commitment: group.seed_commitment.clone(),
        members: members
            .iter()
            .map(|m| Member { seq: m.seq, ticket: m.ticket.clone(), client_seed: m.client_seed.clone() })
            .collect(),
        draw: drawn.then(|| draw::DrawRecord {
            algorithm: draw::ALGORITHM.into(),
            server_seed: group.server_seed.clone(),
            participants_digest: group.participants_digest.clone().unwrap_or_default(),
            winners: group.winner_seqs(),
            drawn_at: None,
        }),
    }
}

/// A group to open for this admission, with a fresh committed seed.
fn new_group(rules: &CampaignRules, admission: &Admission) -> AppResult<NewGroup> {
    let seed = ServerSeed::from_bytes(random_bytes::<32>()?);
    Ok(NewGroup {
        group_size: rules.group_size(),
        winners_per_group: rules.winners_per_group(),
        server_seed: seed.reveal_hex(),
        seed_commitment: seed.commitment(),
        expires_at: admission.now.plus_seconds(rules.input().group_ttl_seconds),
    })
}

fn unknown_group() -> AppError {
    AppError::NotFound("unknown_group", "no such group")
}

/// What a seat's statement saw of the group it filled: every member, and the campaign the join was checked
/// against (a live campaign's rules do not change).
#[derive(Clone, Copy)]
pub(crate) struct Filled<'a> {
    members: &'a [MemberRow],
    campaign: &'a CampaignRow,
}

/// The draw of FAIRNESS.md over the group's members, and the money it moves.
fn plan_draw(
    group: &GroupRow,
    members: &[MemberRow],
    campaign: &CampaignRow,
    inviters: &Inviters,
    secret: &ServerSecret,
    now: Millis,
) -> Result<DrawPlan, StoreError> {
    let broken = StoreError::Inconsistent;
    let rules = CampaignRules::new(campaign.input()).map_err(|e| broken(format!("campaign {}: {e}", campaign.id)))?;
    let seed = ServerSeed::from_hex(&group.server_seed).map_err(|_| broken(format!("group {}: bad seed", group.id)))?;
    let public: Vec<Member> = members
        .iter()
        .map(|m| Member { seq: m.seq, ticket: m.ticket.clone(), client_seed: m.client_seed.clone() })
        .collect();
    let k = usize::try_from(group.winners_per_group).unwrap_or(0);
    let outcome = draw::draw(&seed, &group.id, &public, k).map_err(|e| broken(format!("group {}: {e}", group.id)))?;
    let hold = |m: &MemberRow| Hold {
        membership: m.id.clone(),
        user: m.user(),
        paid: Fen::from_stored(m.price).unwrap_or(Fen::ZERO),
        from: m.paid_from(),
    };
    let (winners, losers): (Vec<&MemberRow>, Vec<&MemberRow>) =
        members.iter().partition(|m| outcome.winners.contains(&m.seq));
    let winners: Vec<Hold> = winners.into_iter().map(hold).collect();
    let losers: Vec<Hold> = losers.into_iter().map(hold).collect();
    let mut entries = draw_entries(&campaign.merchant(), &campaign.campaign_id(), rules.reward(), &winners, &losers);
    // Referral bonus: each member who came through another member's share link earns that member the bonus.
    let bonus = rules.input().referral_bonus_points.unwrap_or(0);
    if bonus > 0 {
        for member in members {
            let inviter = member.invited_by.as_ref().and_then(|t| inviters.get(t)).filter(|u| **u != member.user());
            if let Some(inviter) = inviter {
                entries.push(referral_bonus(&member.id, inviter, bonus));
            }
        }
    }
    let voucher = |hold: &Hold, kind: &'static str, amount: Fen, commission: Fen, days: i64| {
        let id = tuangou_store::new_id();
        NewVoucher {
            code_hash: secret.lookup_hash(&secret.code_for(&id)),
            id,
            kind,
            membership_id: hold.membership.clone(),
            user: hold.user.clone(),
            amount,
            commission,
            expires_at: now.plus_millis(days.saturating_mul(Millis::DAY)),
        }
    };
    let valid_days = rules.input().voucher_valid_days;
    let mut vouchers: Vec<NewVoucher> =
        winners.iter().map(|w| voucher(w, "purchase", w.paid, rules.commission().of(w.paid), valid_days)).collect();
    if let Reward::Coupon { amount, valid_days } = rules.reward() {
        vouchers.extend(losers.iter().map(|l| voucher(l, "coupon", amount, Fen::ZERO, valid_days)));
    }
    let refunds = losers
        .iter()
        .map(|l| NewRefund::of_membership("not_drawn", &l.membership, &l.user, l.paid, l.from.clone()))
        .collect();
    Ok(DrawPlan {
        participants_digest: outcome.participants_digest,
        winners: outcome.winners,
        entries,
        vouchers,
        refunds,
    })
}

/// The claim for an `Idempotency-Key`: scoped to the caller and the endpoint (method and path), bound to the
/// body by its SHA-256.
pub fn idempotency_claim(caller: &Caller, endpoint: &str, key: &str, body: &[u8]) -> IdempotencyClaim {
    use sha2::{Digest, Sha256};
    IdempotencyClaim {
        caller: caller.user.to_string(),
        endpoint: endpoint.to_owned(),
        key: key.to_owned(),
        request_hash: hex::encode(Sha256::digest(body)),
    }
}

impl App {
    /// Remembers the answer to a claimed key (the first answer is kept; later ones are ignored). A 5xx is never
    /// remembered: it is no answer to the request, and a retry must run it again.
    pub async fn remember_answer(&self, claim: &IdempotencyClaim, status: u16, body: &str) -> AppResult<()> {
        if status >= 500 {
            return Ok(());
        }
        Ok(self.store.store_idempotent_answer(claim, status, body, self.clock.now()).await?)
    }

    /// The stored first answer to a key, if any (422 when the key came with another body). For writes whose
    /// effect is itself conditional (a redemption), so a lost answer can only make a retry meet the state it left.
    pub async fn stored_answer(&self, claim: &IdempotencyClaim) -> AppResult<Option<(u16, String)>> {
        let Some(record) = self.store.idempotency_record(claim).await? else { return Ok(None) };
        if record.request_hash != claim.request_hash {
            return Err(AppError::IdempotencyKeyReused);
        }
        Ok(record.status.zip(record.body).map(|(status, body)| (u16::try_from(status).unwrap_or(500), body)))
    }

    /// A group with its members (public: members appear by ticket only).
    pub async fn group(&self, id: &GroupId) -> AppResult<GroupView> {
        let group = self.store.group(id).await?.ok_or_else(unknown_group)?;
        let members = self.store.group_members(id).await?;
        Ok(GroupView { group, members })
    }

    /// Who shared the link that names `ticket` (`?from=`): the display name of that member of `campaign`, masked
    /// as others may see it (`text::masked_name`); `None` for a ticket of no member of it, of a closed account, or
    /// of the reader themselves (as a join ignores it).
    pub async fn inviter_name(
        &self,
        reader: Option<&Caller>,
        campaign: &CampaignId,
        ticket: &str,
    ) -> AppResult<Option<String>> {
        if draw::check_ticket(ticket).is_err() {
            return Ok(None);
        }
        let Some(member) = self.store.member_by_ticket(campaign, ticket).await? else { return Ok(None) };
        if reader.is_some_and(|r| r.user == member.user()) {
            return Ok(None);
        }
        let user = self.store.user(&member.user()).await?;
        Ok(user.map(|u| tuangou_domain::text::masked_name(&u.name)).filter(|name| !name.is_empty()))
    }

    /// Opens or joins a group for the caller (API.md's order of checks), honouring an idempotency key.
    pub async fn join(
        &self,
        caller: &Caller,
        target: JoinTarget,
        input: JoinInput,
        idempotency: Option<IdempotencyClaim>,
    ) -> AppResult<JoinAnswer> {
        if let Some(claim) = &idempotency
            && let Some(answer) = self.replay(claim).await?
        {
            return Ok(answer);
        }
        match self.join_once(caller, target, input, idempotency.clone()).await {
            Err(AppError::Conflict("idempotency_key_exists", _)) => {
                // A duplicate claimed the key first while we ran: answer with its answer, once it is durable.
                let claim = idempotency.ok_or_else(|| AppError::Internal("key conflict without a key".into()))?;
                self.replay_settled(&claim).await?.ok_or_else(|| AppError::Internal("idempotency key vanished".into()))
            }
            other => other.map(JoinAnswer::Fresh),
        }
    }

    /// The first answer to an idempotency key, if the key was used. 422 when it was used with another body.
    async fn replay(&self, claim: &IdempotencyClaim) -> AppResult<Option<JoinAnswer>> {
        let record = self.store.idempotency_record(claim).await?;
        self.answer_from(claim, record).await
    }

    /// [`App::replay`] for a key another request has just claimed: waits until that request's writes are durable.
    async fn replay_settled(&self, claim: &IdempotencyClaim) -> AppResult<Option<JoinAnswer>> {
        let record = self.store.idempotency_record_settled(claim).await?;
        self.answer_from(claim, record).await
    }

    async fn answer_from(
        &self,
        claim: &IdempotencyClaim,
        record: Option<tuangou_store::IdempotencyRecord>,
    ) -> AppResult<Option<JoinAnswer>> {
        let Some(record) = record else { return Ok(None) };
        if record.request_hash != claim.request_hash {
            return Err(AppError::IdempotencyKeyReused);
        }
        if let (Some(status), Some(body)) = (record.status, record.body) {
            return Ok(Some(JoinAnswer::Stored { status: u16::try_from(status).unwrap_or(500), body }));
        }
        let Some(membership_id) = record.resource else { return Ok(None) };
        let membership = self.store.membership(&membership_id).await?.ok_or_else(unknown_group)?;
        let group = self.group(&GroupId::from_trusted(&membership.group_id)).await?;
        let payment = self.seat_payment(&membership).await?;
        Ok(Some(JoinAnswer::Again(Joined { group, membership, payment })))
    }

    async fn join_once(
        &self,
        caller: &Caller,
        target: JoinTarget,
        input: JoinInput,
        idempotency: Option<IdempotencyClaim>,
    ) -> AppResult<Joined> {
        // The body is checked before anything else (a 400 comes before every state check).
        let client_seed = draw::client_seed_or_random(input.client_seed.as_deref(), random_bytes::<16>()?)?;
        let provider = self.provider_for_join(input.pay_with.as_deref())?;
        let campaign_id = match &target {
            JoinTarget::NewGroup(c) | JoinTarget::Campaign(c) => c.clone(),
            JoinTarget::Group(g) => self.store.group(g).await?.ok_or_else(unknown_group)?.campaign(),
        };
        let campaign = self
            .campaign_to_join(&campaign_id)
            .await?
            .ok_or(AppError::NotFound("unknown_campaign", "no such campaign"))?;
        if campaign.status != "live" {
            return Err(AppError::conflict("campaign_not_live", "the campaign is not live"));
        }
        if self.works_at(&caller.user).await?.contains(&campaign.merchant()) {
            return Err(AppError::Forbidden("own_merchant", "the merchant's owner and staff cannot join its groups"));
        }
        let rules = rules_of(&campaign)?;
        let invited_by = self.inviter(&campaign_id, caller, input.invited_by.as_deref()).await?;
        let now = self.clock.now();
        let admission = Admission {
            campaign: campaign_id.clone(),
            user: caller.user.clone(),
            ticket: new_ticket()?,
            client_seed,
            invited_by,
            price: rules.price(),
            per_customer_limit: rules.per_customer_limit(),
            draw_due_if_full: draw_due(rules.draw_mode(), now),
            now,
            idempotency,
            payment: provider.map(|provider| SeatPayment {
                id: tuangou_store::new_id(),
                provider,
                description: campaign.title.clone(),
                pay_by: now.plus_millis(rules.payment_window()),
            }),
        };
        let Seated { group, member: membership, members } = match target {
            JoinTarget::NewGroup(_) => self.open(&rules, &admission).await?.into(),
            JoinTarget::Group(group) => self.store.join_group(&group, &admission).await?.into(),
            JoinTarget::Campaign(_) => self.join_any(&rules, &admission).await?,
        };
        let payment = match self.seat_payment_for(&membership, input.payer).await {
            Ok(payment) => payment,
            // The seat and its payment are kept; the provider is asked again when the customer looks at them.
            Err(AppError::ProviderUnavailable(why)) => {
                tracing::warn!(%why, membership = %membership.id, "the provider did not answer a new payment");
                self.store.payment_of_membership(&membership.id).await?
            }
            Err(error) => return Err(error),
        };
        let filled = members.as_deref().map(|members| Filled { members, campaign: &campaign });
        if let Some(drawn) = self.after_seat_taken(&group, &membership, rules.draw_mode(), filled).await? {
            return Ok(Joined { payment, ..drawn });
        }
        // Answer with the group as the join's transaction left it: its row came back from that transaction, and so
        // did its members when the join saw them all; else they are read up to its seats (later joiners are not
        // part of this answer).
        let members = match members {
            Some(members) => members,
            None => {
                let mut members = self.store.group_members(&group.group_id()).await?;
                members.retain(|m| m.seq <= group.member_count + group.released_seats);
                members
            }
        };
        Ok(Joined { group: GroupView { group, members }, membership, payment })
    }

    /// What follows a seat taken or paid: its events, and the draw when it filled an instant group. `Some`: the
    /// group was full, with the group and the membership as they are now (drawn, when the draw ran). `filled`:
    /// what the seat's statement saw, when it saw the whole group, so the draw need not read it again.
    pub(crate) async fn after_seat_taken(
        &self,
        group: &GroupRow,
        membership: &MemberRow,
        mode: DrawMode,
        filled: Option<Filled<'_>>,
    ) -> AppResult<Option<Joined>> {
        let mut events = vec![event("joined", group)];
        if group.status == "full" {
            events.push(event("full", group));
        }
        self.publish(events);
        if group.status != "full" || mode != DrawMode::Instant {
            return Ok(None);
        }
        let drawn = match filled {
            Some(filled) => self.draw_filled(group, filled).await,
            None => self.draw(Some(&group.group_id())).await,
        };
        match drawn {
            // The draw answers with the group and its members as it left them.
            Ok(Some(drawn)) => {
                if let Some(membership) = drawn.members.iter().find(|m| m.id == membership.id).cloned() {
                    return Ok(Some(Joined { group: drawn, membership, payment: None }));
                }
            }
            // Drawn meanwhile by the worker or another instance: exactly once either way.
            Ok(None) | Err(AppError::Conflict("already_drawn", _)) => {}
            Err(error) => tracing::warn!(%error, group = %group.id, "instant draw failed; the worker retries"),
        }
        // The draw changed the group and this membership: answer with them as they are now.
        let group = self.group(&group.group_id()).await?;
        let membership = self.store.membership(&membership.id).await?.unwrap_or_else(|| membership.clone());
        Ok(Some(Joined { group, membership, payment: None }))
    }

    /// The campaign a join names: from this instance's cache while it is live there (a live campaign's rules do
    /// not change, and its end is a stale key: see `caches.rs`), else from the database.
    async fn campaign_to_join(&self, id: &CampaignId) -> AppResult<Option<CampaignRow>> {
        let campaigns = &self.caches.campaigns;
        let trusted = self.caches.trusted();
        if trusted && let Some(campaign) = campaigns.get(&id.to_string()) {
            return Ok(Some(campaign));
        }
        let epoch = campaigns.epoch();
        let campaign = self.store.campaign(id).await?;
        if let Some(live) = campaign.as_ref().filter(|c| trusted && c.status == "live") {
            campaigns.fill(epoch, id.to_string(), live.clone());
        }
        Ok(campaign)
    }

    async fn open(&self, rules: &CampaignRules, admission: &Admission) -> AppResult<(GroupRow, MemberRow)> {
        Ok(self.store.open_group(&new_group(rules, admission)?, admission).await?)
    }

    /// Joins the open group closest to full that has a seat for the caller, else opens one: one transaction
    /// that looks and takes the seat together (see `Store::join_campaign`).
    async fn join_any(&self, rules: &CampaignRules, admission: &Admission) -> AppResult<Seated> {
        Ok(self.store.join_campaign(&new_group(rules, admission)?, admission).await?)
    }

    /// `invited_by` is kept only when it is the ticket of another member of the same campaign.
    async fn inviter(&self, campaign: &CampaignId, caller: &Caller, ticket: Option<&str>) -> AppResult<Option<String>> {
        let Some(ticket) = ticket.filter(|t| draw::check_ticket(t).is_ok()) else { return Ok(None) };
        let member = self.store.member_by_ticket(campaign, ticket).await?;
        Ok(member.filter(|m| m.user() != caller.user).map(|m| m.ticket))
    }

    /// Staff draw a full `scheduled` group in the store.
    pub async fn draw_by_staff(&self, caller: &Caller, id: &GroupId) -> AppResult<GroupView> {
        let group = self.store.group(id).await?.ok_or_else(unknown_group)?;
        let campaign = self.store.require_campaign(&group.campaign()).await?;
        if self.store.merchant_role(&campaign.merchant(), &caller.user).await?.is_none() {
            return Err(AppError::Forbidden("staff_only", "only the merchant's staff may draw its groups"));
        }
        if rules_of(&campaign)?.draw_mode() == DrawMode::Instant {
            return Err(AppError::conflict("instant_draw", "this campaign draws each group as it fills"));
        }
        self.draw_one(Some(id)).await?;
        self.group(id).await
    }

    /// A group's members as the pages show them, by seat: the display name masked after its first character
    /// (customers choose no nickname: the name they signed up with, masked, is what the room recognises; a closed
    /// account shows stars). Tickets stay in the draw's record, for its verification.
    pub async fn names_on_screen(&self, group: &GroupId) -> AppResult<BTreeMap<i64, String>> {
        let names = self.store.member_names(group).await?;
        Ok(names
            .into_iter()
            .map(|(seq, name)| {
                let masked = name.map(|n| tuangou_domain::text::masked_name(&n)).filter(|n| !n.is_empty());
                (seq, masked.unwrap_or_else(|| "***".to_owned()))
            })
            .collect())
    }

    /// One draw: the named group, or the next due one. Returns whether a group was drawn.
    pub(crate) async fn draw_one(&self, group: Option<&GroupId>) -> AppResult<bool> {
        Ok(self.draw(group).await?.is_some())
    }

    /// [`App::draw_one`], answering with the drawn group and its members as the draw left them.
    async fn draw(&self, group: Option<&GroupId>) -> AppResult<Option<GroupView>> {
        let (now, plan) = self.draw_plan();
        Ok(self.announce_drawn(self.store.draw_group(group, now, plan).await?))
    }

    /// [`App::draw`] of the group a join has just filled, from what the join saw (see `Store::draw_filled_group`).
    async fn draw_filled(&self, group: &GroupRow, filled: Filled<'_>) -> AppResult<Option<GroupView>> {
        let (now, plan) = self.draw_plan();
        let drawn = self.store.draw_filled_group(group, filled.members, filled.campaign, now, plan).await?;
        Ok(self.announce_drawn(drawn))
    }

    /// The time of a draw about to run, and how this app plans a group's outcome (FAIRNESS.md, and the money,
    /// vouchers and refunds that follow): what the store's draws call. Public for tests that drive those draws.
    pub fn draw_plan(&self) -> (Millis, impl tuangou_store::PlanDraw + use<>) {
        let (now, secret) = (self.clock.now(), self.settings.secret.clone());
        (now, move |g, m, c, i| plan_draw(g, m, c, i, &secret, now))
    }

    /// A draw's group as it left it, announced to the group's watchers.
    fn announce_drawn(&self, drawn: Option<(GroupRow, Vec<MemberRow>)>) -> Option<GroupView> {
        let (group, members) = drawn?;
        self.publish(vec![event("drawn", &group)]);
        Some(GroupView { group, members })
    }

    /// Expires one overdue open group, if any. Returns whether it did.
    pub(crate) async fn expire_one(&self) -> AppResult<bool> {
        let Some((group, _)) = self.store.expire_group(self.clock.now()).await? else { return Ok(false) };
        self.publish(vec![event("expired", &group)]);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_fall_due_on_fill_at_draw_at_or_at_the_end_of_the_window() {
        let filled = Millis(1_000_000);
        let hour = Millis::HOUR;
        assert_eq!(draw_due(DrawMode::Instant, filled), filled);
        let window = |draw_at| DrawMode::Scheduled { draw_at, window_hours: 24 };
        assert_eq!(draw_due(window(None), filled), filled.plus_millis(24 * hour), "staff have the whole window");
        let at = filled.plus_millis(2 * hour);
        assert_eq!(draw_due(window(Some(at)), filled), at, "a set time inside the window");
        assert_eq!(draw_due(window(Some(Millis(0))), filled), filled, "a set time already past: on fill");
        let late = filled.plus_millis(48 * hour);
        assert_eq!(draw_due(window(Some(late)), filled), filled.plus_millis(24 * hour), "never later than the window");
    }

    #[test]
    fn tickets_are_public_pseudonyms_of_the_allowed_alphabet() {
        let ticket = new_ticket().unwrap();
        assert_eq!(ticket.len(), 16);
        assert!(draw::check_ticket(&ticket).is_ok());
        assert_ne!(ticket, new_ticket().unwrap());
    }
}
