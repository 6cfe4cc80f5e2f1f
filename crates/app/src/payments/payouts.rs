//! Money out through a provider (PAYMENTS.md "Payouts"): a merchant's payout (its owner asks), a customer's
//! withdrawal, and — in partner mode — the profit share (split) of each provider-paid purchase once its
//! redemption can no longer be undone. The entries each step makes are `tuangou_domain::payouts`.
//!
//! Requesting writes our row (`requested`) and sets the money aside in one unit; no unit is open while a provider
//! is asked. The worker step ([`App::run_payouts_once`], part of `run_jobs_once`) claims what is due, asks the
//! provider — `pay_out` (or `split`) the first time, by our id, which the provider keeps idempotent; `query_payout`
//! (`query_split`) once it accepted — and settles it when the provider says it succeeded or failed. A provider
//! that does not answer is asked again with backoff (1 s, 2 s, 4 s, … 5 min); nothing is marked failed because
//! the provider did not answer.
//!
//! Choices where the specs are silent:
//! - the minimum is 1 fen (API.md: "from 1 fen"), the maximum 10^10 fen as every amount;
//! - a merchant has one payout in flight at a time (409 `payout_in_progress`, enforced by a partial unique index);
//!   a customer may have several withdrawals in flight (each is bounded by the available balance, which the
//!   ledger's conditional debit checks), and cannot close the account while one is (409 `withdrawal_pending`);
//! - the payee at the provider is the merchant's or the customer's id (the sandbox accepts any text);
//! - a split's receivers are the platform's receiver ([`PLATFORM_RECEIVER`]) for the commission and the merchant
//!   (its id) for the rest; it is asked [`SPLIT_AFTER_UNDO_MS`] after the undo window closed, so a late undo
//!   can never meet a split; a split whose money is no longer there (the owner had the balance paid out directly)
//!   is recorded `skipped` and never asked for.

use super::port::{PayoutRequest, ProviderError, SplitRequest, TransferState};
use crate::{App, AppError, AppResult, Caller, IdempotencyClaim};
use tuangou_domain::Invalid;
use tuangou_domain::ids::{MerchantId, PayoutId};
use tuangou_domain::money::Fen;
use tuangou_domain::payouts::{PayoutOwner, parse_amount};
use tuangou_store::{NewPayout, PayoutRow, Settled, SplitRow, StoreError};

/// The most payouts (and splits) one worker step asks about.
const BATCH: usize = 100;

/// The platform's receiving account at the provider, for the commission of a split.
pub const PLATFORM_RECEIVER: &str = "platform";

/// How long after a redemption's undo window closed its payment is split.
pub const SPLIT_AFTER_UNDO_MS: i64 = 60_000;

/// What a payout request answers: a new payout, or the first answer to the same idempotency key.
#[derive(Debug, Clone)]
pub enum PayoutAnswer {
    Fresh(PayoutRow),
    /// The payout the key's first request made (its answer was not stored).
    Again(PayoutRow),
    /// The answer stored for the key.
    Stored {
        status: u16,
        body: String,
    },
}

impl App {
    /// The owner asks for a payout of the merchant's available balance through `provider`.
    pub async fn request_merchant_payout(
        &self,
        caller: &Caller,
        merchant: &MerchantId,
        amount: i64,
        provider: &str,
        idempotency: Option<IdempotencyClaim>,
    ) -> AppResult<PayoutAnswer> {
        self.require_owner(caller, merchant).await?;
        self.request_payout(caller, PayoutOwner::Merchant(merchant.clone()), amount, provider, idempotency).await
    }

    /// A customer withdraws from their available balance through `provider`.
    pub async fn request_withdrawal(
        &self,
        caller: &Caller,
        amount: i64,
        provider: &str,
        idempotency: Option<IdempotencyClaim>,
    ) -> AppResult<PayoutAnswer> {
        self.request_payout(caller, PayoutOwner::Customer(caller.user.clone()), amount, provider, idempotency).await
    }

    async fn request_payout(
        &self,
        caller: &Caller,
        owner: PayoutOwner,
        amount: i64,
        provider: &str,
        idempotency: Option<IdempotencyClaim>,
    ) -> AppResult<PayoutAnswer> {
        if let Some(claim) = &idempotency
            && let Some(answer) = self.payout_replay(claim, false).await?
        {
            return Ok(answer);
        }
        let amount = parse_amount(amount)?;
        if self.provider(provider).is_none() {
            return Err(
                Invalid::with_code("provider", "unknown_provider", "this payment provider is not offered").into()
            );
        }
        let new = NewPayout {
            id: tuangou_store::new_id(),
            owner,
            requested_by: caller.user.clone(),
            provider: provider.to_owned(),
            amount,
        };
        match self.store.request_payout(&new, idempotency.clone(), self.clock.now()).await {
            Ok(row) => {
                tracing::info!(payout = %row.id, kind = %row.kind, amount = row.amount, provider, "payout requested");
                Ok(PayoutAnswer::Fresh(row))
            }
            Err(StoreError::Conflict("idempotency_key_exists")) => {
                // A duplicate claimed the key first while we ran: answer with its answer, once it is durable.
                let claim = idempotency.ok_or_else(|| AppError::Internal("key conflict without a key".into()))?;
                self.payout_replay(&claim, true)
                    .await?
                    .ok_or_else(|| AppError::Internal("idempotency key vanished".into()))
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn payout_replay(&self, claim: &IdempotencyClaim, settled: bool) -> AppResult<Option<PayoutAnswer>> {
        let record = if settled {
            self.store.idempotency_record_settled(claim).await?
        } else {
            self.store.idempotency_record(claim).await?
        };
        let Some(record) = record else { return Ok(None) };
        if record.request_hash != claim.request_hash {
            return Err(AppError::IdempotencyKeyReused);
        }
        if let (Some(status), Some(body)) = (record.status, record.body) {
            return Ok(Some(PayoutAnswer::Stored { status: u16::try_from(status).unwrap_or(500), body }));
        }
        let Some(id) = record.resource else { return Ok(None) };
        let row = self.store.payout(&id).await?.ok_or_else(AppError::not_found)?;
        Ok(Some(PayoutAnswer::Again(row)))
    }

    /// A merchant's payouts, newest first; for its owner only.
    pub async fn merchant_payouts(
        &self,
        caller: &Caller,
        merchant: &MerchantId,
        cursor: Option<&PayoutId>,
        limit: usize,
    ) -> AppResult<Vec<PayoutRow>> {
        self.require_owner(caller, merchant).await?;
        Ok(self.store.payouts_of_merchant(merchant, cursor.map(PayoutId::as_str), limit as i64).await?)
    }

    /// The caller's withdrawals, newest first.
    pub async fn my_withdrawals(
        &self,
        caller: &Caller,
        cursor: Option<&PayoutId>,
        limit: usize,
    ) -> AppResult<Vec<PayoutRow>> {
        Ok(self.store.withdrawals_of(&caller.user, cursor.map(PayoutId::as_str), limit as i64).await?)
    }

    /// One worker step: asks providers about the payouts due, then (in partner mode) requests the splits due
    /// and asks about those. Returns how many payouts and splits it requested or settled.
    pub async fn run_payouts_once(&self) -> AppResult<usize> {
        let mut changed = 0;
        for _ in 0..BATCH {
            let Some(payout) = self.store.claim_due_payout(self.clock.now()).await? else { break };
            changed += usize::from(self.advance_payout(payout).await?);
        }
        if self.settings.payments.partner_mode {
            changed += self.request_due_splits().await?;
        }
        // Splits requested before partner mode was switched off are still followed to the end.
        for _ in 0..BATCH {
            let Some(split) = self.store.claim_due_split(self.clock.now()).await? else { break };
            changed += usize::from(self.advance_split(split).await?);
        }
        Ok(changed)
    }

    /// Asks the provider about one claimed payout and settles it when the provider has the last word. Whether it
    /// settled.
    async fn advance_payout(&self, payout: PayoutRow) -> AppResult<bool> {
        let Some(provider) = self.provider(&payout.provider) else {
            let why = format!("the provider {} is not offered by this instance", payout.provider);
            self.store.note_payout(&payout.id, payout.provider_payout_id.as_deref(), Some(&why)).await?;
            return Ok(false);
        };
        let submitted = payout.provider_payout_id.is_some();
        let answer = if submitted {
            provider.query_payout(&payout.id).await
        } else {
            let amount = Fen::from_stored(payout.amount).unwrap_or(Fen::ZERO);
            let request = PayoutRequest {
                out_payout_no: payout.id.clone(),
                payee: payout.payee.clone(),
                amount,
                description: if payout.kind == "merchant" { "商户结算".into() } else { "余额提现".into() },
            };
            provider.pay_out(&request).await
        };
        let known = payout.provider_payout_id.as_deref();
        let outcome = match answer {
            Ok(status) => match status.state {
                TransferState::Succeeded { .. } => Some((Settled::Succeeded, Some(status.provider_id))),
                TransferState::Failed => Some((Settled::Failed, Some(status.provider_id))),
                TransferState::Processing => {
                    self.store.note_payout(&payout.id, Some(&status.provider_id), None).await?;
                    None
                }
            },
            Err(ProviderError::Unavailable(why)) => {
                tracing::info!(payout = %payout.id, attempts = payout.attempts, %why, "payout: the provider did not answer; asking again later");
                self.store.note_payout(&payout.id, known, Some(&why)).await?;
                None
            }
            Err(ProviderError::Refused("not_found", why)) if submitted => {
                // The provider has no payout of ours by this id: ask it to pay out again (idempotent by our id).
                self.store.note_payout(&payout.id, None, Some(&why)).await?;
                None
            }
            Err(ProviderError::Refused(code, why)) if submitted => {
                self.store.note_payout(&payout.id, known, Some(&format!("{code}: {why}"))).await?;
                None
            }
            Err(error @ (ProviderError::Refused(..) | ProviderError::Unsupported(_))) => {
                // The provider said no to the payout itself, for good: it failed.
                tracing::warn!(payout = %payout.id, %error, "payout refused by the provider");
                self.store.note_payout(&payout.id, known, Some(&error.to_string())).await?;
                Some((Settled::Failed, None))
            }
        };
        let Some((outcome, provider_id)) = outcome else { return Ok(false) };
        let (row, settled) =
            self.store.settle_payout(&payout.id, outcome, provider_id.as_deref(), self.clock.now()).await?;
        if settled {
            tracing::info!(payout = %row.id, status = %row.status, "payout settled");
        }
        Ok(settled)
    }

    /// Partner mode: requests the split of every provider-paid purchase whose redemption can no longer be undone.
    async fn request_due_splits(&self) -> AppResult<usize> {
        let now = self.clock.now();
        let before = now.plus_millis(-(crate::vouchers::UNDO_WINDOW_MS + SPLIT_AFTER_UNDO_MS));
        let mut changed = 0;
        for candidate in self.store.split_candidates(before, BATCH as i64).await? {
            if self.provider(&candidate.provider).is_none() {
                continue;
            }
            match self.store.request_split(&candidate, now).await {
                Ok(_) => changed += 1,
                Err(StoreError::InsufficientFunds(account)) => {
                    let why = format!("{account} no longer held the money (paid out directly)");
                    tracing::info!(redemption = %candidate.redemption_id, %why, "split skipped");
                    match self.store.skip_split(&candidate, &why, now).await {
                        Ok(_) => changed += 1,
                        Err(StoreError::Conflict("split_exists")) => {}
                        Err(error) => return Err(error.into()),
                    }
                }
                Err(StoreError::Conflict("split_exists" | "redemption_undone")) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(changed)
    }

    /// Asks the provider about one claimed split, as [`App::advance_payout`].
    async fn advance_split(&self, split: SplitRow) -> AppResult<bool> {
        let Some(provider) = self.provider(&split.provider) else {
            let why = format!("the provider {} is not offered by this instance", split.provider);
            self.store.note_split(&split.id, split.provider_split_id.as_deref(), Some(&why)).await?;
            return Ok(false);
        };
        let submitted = split.provider_split_id.is_some();
        let answer = if submitted {
            provider.query_split(&split.payment_id, &split.id).await
        } else {
            let commission = Fen::from_stored(split.commission).unwrap_or(Fen::ZERO);
            let receivers: Vec<(String, Fen)> =
                [(PLATFORM_RECEIVER.to_owned(), commission), (split.merchant_id.clone(), split.net())]
                    .into_iter()
                    .filter(|(_, share)| *share > Fen::ZERO)
                    .collect();
            let request = SplitRequest {
                out_trade_no: split.payment_id.clone(),
                out_order_no: split.id.clone(),
                receivers,
                description: "团购分账".into(),
            };
            provider.split(&request).await
        };
        let known = split.provider_split_id.as_deref();
        let outcome = match answer {
            Ok(status) => match status.state {
                TransferState::Succeeded { .. } => Some((Settled::Succeeded, Some(status.provider_id))),
                TransferState::Failed => Some((Settled::Failed, Some(status.provider_id))),
                TransferState::Processing => {
                    self.store.note_split(&split.id, Some(&status.provider_id), None).await?;
                    None
                }
            },
            Err(ProviderError::Unavailable(why)) => {
                self.store.note_split(&split.id, known, Some(&why)).await?;
                None
            }
            Err(ProviderError::Refused("not_found", why)) if submitted => {
                self.store.note_split(&split.id, None, Some(&why)).await?;
                None
            }
            Err(ProviderError::Refused(code, why)) if submitted => {
                self.store.note_split(&split.id, known, Some(&format!("{code}: {why}"))).await?;
                None
            }
            Err(error @ (ProviderError::Refused(..) | ProviderError::Unsupported(_))) => {
                tracing::warn!(split = %split.id, %error, "split refused by the provider");
                self.store.note_split(&split.id, known, Some(&error.to_string())).await?;
                Some((Settled::Failed, None))
            }
        };
        let Some((outcome, provider_id)) = outcome else { return Ok(false) };
        let (_, settled) =
            self.store.settle_split(&split.id, outcome, provider_id.as_deref(), self.clock.now()).await?;
        Ok(settled)
    }
}
