//! Paying at the join (PAYMENTS.md): a join that pays through a provider holds a `pending` seat with a payment;
//! the workers here settle it.
//!
//! - [`App::apply_payment_events`]: verified notifications, each applied once (paid → the seat is confirmed, or the
//!   money refunded when the seat no longer waits; closed → the seat is released; a refund's → the refund settled,
//!   or its failure counted).
//! - [`App::check_unpaid_payments`]: payments still unpaid past a minute are queried (a notification can be lost);
//!   at the end of the window the payment is closed at the provider first, and the seat is released only when the
//!   provider says it is closed — if it says paid after all, it is paid.
//! - [`App::attempt_refunds`]: refunds owed through a provider are asked for (idempotent by our refund id) and
//!   followed until the provider confirms; failures are retried with backoff and, after
//!   [`tuangou_store::MAX_ATTEMPTS`], wait in the operator's queue.
//!
//! No unit of work is open across a provider call: the store claims a row with a lease, the provider is called,
//! and what it said is kept in a second unit that re-checks the row's state.

use super::port::{PayerHints, PaymentRequest, PaymentState, ProviderError, RefundRequest, TransferState};
use crate::groups::{draw_due, rules_of};
use crate::{App, AppError, AppResult};
use tuangou_domain::Invalid;
use tuangou_domain::ids::GroupId;
use tuangou_domain::money::Fen;
use tuangou_domain::time::Millis;
use tuangou_store::{
    CampaignRow, EventApplied, GroupRow, MemberRow, PaymentApplied, PaymentRow, RefundEventRow, RefundProgress,
    RefundRow, StoreError,
};

/// How long a claimed payment or refund is left alone while one worker talks to the provider about it.
const LEASE_MS: i64 = 15_000;

/// The most of each kind one worker step settles, so a step stays short.
const BATCH: usize = 200;

/// The wait before the next attempt at a refund: 5 s, doubling, at most 10 minutes.
fn refund_backoff(attempts: i64) -> i64 {
    5_000_i64.saturating_mul(1 << attempts.clamp(0, 7)).min(600_000)
}

impl App {
    /// The provider a join asks to pay through: `None` for the wallet (the default). An unknown or unoffered
    /// provider is a 400 naming `pay_with`.
    pub(crate) fn provider_for_join(&self, pay_with: Option<&str>) -> AppResult<Option<String>> {
        match pay_with {
            None | Some("wallet") => Ok(None),
            Some(name) if self.provider(name).is_some() => Ok(Some(name.to_owned())),
            Some(_) => Err(AppError::Invalid(Invalid::with_code(
                "pay_with",
                "unknown_provider",
                "this payment provider is not offered here",
            ))),
        }
    }

    /// The payment a pending seat waits for, made at its provider if that did not happen yet (the provider's
    /// answer was lost, or it was down when the seat was taken): `None` for a seat paid from the wallet. The
    /// provider's call is idempotent by our id, so asking again is safe. 503 when the provider does not answer.
    /// Made again later, the payer is not known (no hints): WeChat Pay then makes a Native order (a QR code).
    pub async fn seat_payment(&self, membership: &MemberRow) -> AppResult<Option<PaymentRow>> {
        self.seat_payment_for(membership, PayerHints::default()).await
    }

    /// [`App::seat_payment`] with what the join saw of the payer (their browser, address, WeChat openid), which
    /// chooses the provider's kind of order.
    pub(crate) async fn seat_payment_for(
        &self,
        membership: &MemberRow,
        payer: PayerHints,
    ) -> AppResult<Option<PaymentRow>> {
        if membership.paid_with == "wallet" {
            return Ok(None);
        }
        let Some(payment) = self.store.payment_of_membership(&membership.id).await? else { return Ok(None) };
        if payment.client.is_some() || payment.status != "created" {
            return Ok(Some(payment));
        }
        let provider = self.provider(&payment.provider).ok_or_else(|| {
            AppError::ProviderUnavailable(format!("the provider {} is not offered any more", payment.provider))
        })?;
        let request = PaymentRequest {
            out_trade_no: payment.id.clone(),
            amount: Fen::from_stored(payment.amount).unwrap_or(Fen::ZERO),
            description: payment.description.clone(),
            expires_at: Millis(payment.expires_at),
            payer: PayerHints { return_url: Some(format!("/g/{}", membership.group_id)), ..payer },
        };
        let created = provider.create_payment(&request).await?;
        Ok(Some(
            self.store
                .set_payment_client(&payment.id, created.provider_trade_id.as_deref(), &created.client.to_string())
                .await?,
        ))
    }

    /// A payment of the caller's (404 for anyone else's). One the provider has not answered yet (its `client` is
    /// empty) is made there again first, when the provider answers now.
    pub async fn my_payment(&self, caller: &crate::Caller, id: &str) -> AppResult<PaymentRow> {
        let payment = self.store.payment(id).await?.filter(|p| p.user_id == caller.user.as_str());
        let payment = payment.ok_or(AppError::NotFound("unknown_payment", "no such payment"))?;
        if payment.client.is_none()
            && let Some(membership) = &payment.membership_id
            && let Some(membership) = self.store.membership(membership).await?
            && let Ok(Some(made)) = self.seat_payment(&membership).await
        {
            return Ok(made);
        }
        Ok(payment)
    }

    /// When a group of the campaign that fills now must be drawn at the latest (for a unit that confirms a seat).
    fn draw_due_of(now: Millis) -> impl Fn(&CampaignRow) -> Result<Millis, StoreError> + Send + Sync + 'static {
        move |campaign| {
            let rules = rules_of(campaign).map_err(|e| StoreError::Inconsistent(e.to_string()))?;
            Ok(draw_due(rules.draw_mode(), now))
        }
    }

    /// What follows a seat that was just paid: its events, and the draw when it filled an instant group.
    async fn after_seat_paid(&self, group: &GroupRow, member: &MemberRow) -> AppResult<()> {
        let campaign = self.store.require_campaign(&group.campaign()).await?;
        self.after_seat_taken(group, member, rules_of(&campaign)?.draw_mode(), None).await?;
        Ok(())
    }

    /// What follows a released seat: the group's watchers see it has a seat again.
    fn after_seat_released(&self, group: &GroupRow) {
        self.publish(vec![crate::events::GroupEvent {
            kind: "joined".into(),
            group_id: group.id.clone(),
            campaign_id: group.campaign_id.clone(),
            status: group.status.clone(),
            member_count: group.member_count,
            voucher_id: None,
        }]);
    }

    /// Applies the stored notifications, oldest first. Returns how many it applied.
    pub(crate) async fn apply_payment_events(&self) -> AppResult<usize> {
        let mut applied = 0;
        for _ in 0..BATCH {
            let now = self.clock.now();
            let Some((event, outcome, _)) = self.store.apply_next_payment_event(now, Self::draw_due_of(now)).await?
            else {
                break;
            };
            applied += 1;
            tracing::info!(provider = %event.provider, event = %event.event_id, payment = %event.payment_id, "payment notification applied");
            self.follow(outcome).await?;
        }
        Ok(applied + self.apply_refund_events().await?)
    }

    /// Applies the stored refund notifications, oldest first, through the refunds' settle path: succeeded → the
    /// refund is settled (once; one settled before is left as it is); failed (closed, abnormal) → counted as a
    /// failed attempt, tried again with backoff, then the operator's. Returns how many it applied.
    async fn apply_refund_events(&self) -> AppResult<usize> {
        let mut applied = 0;
        for _ in 0..BATCH {
            let now = self.clock.now();
            let progress = move |refund: &RefundRow, event: &RefundEventRow| match event.settled_at {
                Some(at) if event.outcome == "succeeded" => RefundProgress::Succeeded { at: Millis(at) },
                _ => RefundProgress::Failed {
                    error: format!("{} notified that the refund did not succeed", event.provider),
                    next: now.plus_millis(refund_backoff(refund.attempts)),
                },
            };
            let Some((event, settled)) = self.store.apply_next_refund_event(now, progress).await? else { break };
            applied += 1;
            let status = settled.as_ref().map_or("unchanged", |r| r.status.as_str());
            tracing::info!(provider = %event.provider, event = %event.event_id, refund = %event.refund_id, status, "refund notification applied");
        }
        Ok(applied)
    }

    async fn follow(&self, outcome: EventApplied) -> AppResult<()> {
        match outcome {
            EventApplied::Paid(PaymentApplied::Seated { group, member }) => self.after_seat_paid(&group, &member).await,
            EventApplied::Paid(PaymentApplied::Refunded { refund }) => {
                tracing::warn!(%refund, "money came for a seat that no longer waits for it: refunding");
                Ok(())
            }
            EventApplied::Paid(PaymentApplied::AlreadySettled) => Ok(()),
            EventApplied::Closed(released) => {
                if let Some(group) = released.and_then(|r| r.group) {
                    self.after_seat_released(&group);
                }
                Ok(())
            }
        }
    }

    /// Asks providers about payments still unpaid past a minute, and closes those whose window ended (then
    /// releases their seats). Returns how many payments changed.
    pub(crate) async fn check_unpaid_payments(&self) -> AppResult<usize> {
        let mut changed = 0;
        for _ in 0..BATCH {
            let now = self.clock.now();
            let Some(payment) = self.store.claim_payment_to_check(now, now.plus_millis(LEASE_MS)).await? else {
                break;
            };
            if self.check_payment(&payment, now).await? {
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// One unpaid payment: query it (or close it when its window ended) and act on what the provider says.
    async fn check_payment(&self, payment: &PaymentRow, now: Millis) -> AppResult<bool> {
        let Some(provider) = self.provider(&payment.provider) else { return Ok(false) };
        let window_over = now.0 >= payment.expires_at;
        let asked = if window_over {
            provider.close_payment(&payment.id).await
        } else {
            provider.query_payment(&payment.id).await
        };
        let status = match asked {
            Ok(status) => status,
            // Never made at the provider (it was down when the seat was taken): nothing can be paid there.
            Err(ProviderError::Refused("not_found", _)) if window_over => return self.release(payment, now).await,
            Err(error) => {
                tracing::warn!(payment = %payment.id, %error, "the provider did not answer about a payment; asking again later");
                return Ok(false);
            }
        };
        match status.state {
            PaymentState::Paid { at } => {
                let outcome =
                    self.store.confirm_payment(&payment.id, status.amount, at, now, Self::draw_due_of(now)).await?;
                self.follow(EventApplied::Paid(outcome)).await?;
                Ok(true)
            }
            PaymentState::Closed => self.release(payment, now).await,
            PaymentState::NotPaid => Ok(false),
        }
    }

    async fn release(&self, payment: &PaymentRow, now: Millis) -> AppResult<bool> {
        let released = self.store.release_seat(&payment.id, now).await?;
        let changed = released.is_some();
        self.follow(EventApplied::Closed(released)).await?;
        Ok(changed)
    }

    /// Asks providers for the refunds owed through them and follows them to the end. Returns how many refunds
    /// changed state.
    pub(crate) async fn attempt_refunds(&self) -> AppResult<usize> {
        let mut changed = 0;
        for _ in 0..BATCH {
            let now = self.clock.now();
            let Some(refund) = self.store.claim_due_refund(now, now.plus_millis(LEASE_MS)).await? else { break };
            let progress = self.attempt_refund(&refund, now).await;
            if let Some(row) = self.store.settle_refund(&refund.id, progress, now).await?
                && row.status != "requested"
            {
                changed += 1;
                if row.status == "failed" {
                    tracing::error!(refund = %row.id, error = ?row.last_error, "a refund keeps failing: it waits for the operator");
                }
            }
        }
        Ok(changed)
    }

    async fn attempt_refund(&self, refund: &RefundRow, now: Millis) -> RefundProgress {
        let next = now.plus_millis(refund_backoff(refund.attempts));
        let failed = |error: String| RefundProgress::Failed { error, next };
        let (Some(name), Some(payment)) = (&refund.provider, &refund.payment_id) else {
            return failed("the refund names no provider payment".into());
        };
        let Some(provider) = self.provider(name) else { return failed(format!("the provider {name} is not offered")) };
        let request = RefundRequest {
            out_trade_no: payment.clone(),
            out_refund_no: refund.id.clone(),
            amount: Fen::from_stored(refund.amount).unwrap_or(Fen::ZERO),
            reason: refund.cause.clone(),
        };
        match provider.refund(&request).await {
            Ok(status) => match status.state {
                TransferState::Succeeded { at } => RefundProgress::Succeeded { at },
                TransferState::Processing => RefundProgress::Processing { next: now.plus_millis(refund_backoff(0)) },
                TransferState::Failed => failed("the provider says the refund failed".into()),
            },
            Err(error) => failed(error.to_string()),
        }
    }

    /// A group's id, for pages that follow a payment back to its group.
    pub async fn group_of_payment(&self, payment: &PaymentRow) -> AppResult<Option<GroupId>> {
        let Some(membership) = &payment.membership_id else { return Ok(None) };
        Ok(self.store.membership(membership).await?.map(|m| GroupId::from_trusted(&m.group_id)))
    }
}

impl App {
    /// The caller's latest payments through providers (for 我的).
    pub async fn my_payments(&self, caller: &crate::Caller, limit: i64) -> AppResult<Vec<PaymentRow>> {
        Ok(self.store.payments_of(&caller.user, limit).await?)
    }

    /// The caller's refunds, newest first (`GET /api/v1/me/refunds`).
    pub async fn my_refunds(
        &self,
        caller: &crate::Caller,
        before: Option<&str>,
        limit: i64,
    ) -> AppResult<Vec<RefundRow>> {
        Ok(self.store.refunds_of(&caller.user, before, limit).await?)
    }

    /// Refunds in a state, for the operator (`failed`: the queue of refunds waiting for a person).
    pub async fn refunds_with_status(
        &self,
        caller: &crate::Caller,
        status: &str,
        after: Option<&str>,
        limit: i64,
    ) -> AppResult<Vec<RefundRow>> {
        caller.require_operator()?;
        Ok(self.store.refunds_with_status(status, after, limit).await?)
    }

    /// The operator sends a failed refund back to the worker once the provider's problem is fixed.
    pub async fn retry_refund(&self, caller: &crate::Caller, id: &str) -> AppResult<RefundRow> {
        caller.require_operator()?;
        self.store.retry_refund(id, self.clock.now()).await.map_err(|error| match error {
            StoreError::NotFound => AppError::NotFound("unknown_refund", "no such refund"),
            StoreError::Conflict(code) => AppError::conflict(code, "only a failed refund can be tried again"),
            other => other.into(),
        })
    }
}
