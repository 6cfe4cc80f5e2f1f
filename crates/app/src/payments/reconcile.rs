//! Reconciliation (PAYMENTS.md, issue 15 point 5): a provider's bill for one business day in China Standard Time,
//! matched line by line with our books for that day, and the result kept. Nothing is ever fixed here: a mismatch is
//! recorded and listed (`tuangou reconcile`, `GET /api/v1/admin/reconciliations`, the operator's page).
//!
//! Our side of a day `[00:00, 24:00)` CST for provider P:
//! - payments at P whose `paid_at` falls in the day and whose status is `paid` or `refunded` (a refunded payment
//!   was paid all the same), by id (our `out_trade_no`) and the amount the provider took (`paid_amount`, which
//!   may differ from the amount we asked: such money pays for nothing and is refunded, but it was paid);
//! - refunds through P (`destination = 'provider'`) that `succeeded`, by their `settled_at` (the moment the
//!   refund was known to have succeeded), by id (our `out_refund_no`) and amount. Providers bill a refund on the
//!   day it succeeded, so the refund worker keeps the provider's success time (`TransferState::Succeeded { at }`)
//!   as `settled_at`; then both sides count it on the same day.
//!
//! A bill line with no counterpart that day is *missing on our side*; the result then says what we have under
//! that id instead, whatever its day or state (a payment we still think `created`, one we count on the day
//! before), so the operator sees why. Ours with no line on the bill are *missing on theirs*; both with different
//! amounts, *amount differs*.
//!
//! The daily job ([`App::reconcile_due_day`], a step of `run_jobs_once`) reconciles yesterday once that day is
//! over by [`RECONCILE_AFTER_MS`] (02:00 CST: real providers publish a day's bill in the morning, WeChat Pay from
//! about 10:00, so a real adapter answers "not ready" until then and the job tries again). For each offered
//! provider, an instance first claims `(provider, day)` by a unique key in the database, so the day is
//! reconciled once however many instances step at the same moment; a claim whose instance died before the result
//! is taken over after [`CLAIM_LEASE_MS`]. Only the one day before is due: a day missed while no instance ran is
//! reconciled with the command. Cheap when there is nothing to do: once an instance knows the due day is done it
//! does not look again until the next day, and while another instance holds a claim it looks once a minute.

use crate::{App, AppError, AppResult, Caller};
use std::sync::{Arc, Mutex};
use tuangou_domain::reconciliation::{Kind, Line, Mismatches, Side, compare};
use tuangou_domain::time::{ChinaDay, Millis};
use tuangou_store::{NewReconciliation, ReconciliationRow};

use super::port::BillLine;

/// How long after a day ends the daily job reconciles it: 02:00 CST the next day.
pub const RECONCILE_AFTER_MS: i64 = 2 * Millis::HOUR;
/// How long a claim holds before another instance may take it over (its instance died).
pub const CLAIM_LEASE_MS: i64 = 15 * 60_000;
/// How often an instance looks again while a day is not done (held elsewhere, or its bill not ready).
const RETRY_EVERY_MS: i64 = 60_000;

/// A day's result as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    pub id: String,
    pub provider: String,
    pub day: ChinaDay,
    /// Every line matched.
    pub matched: bool,
    /// Lines on the provider's bill.
    pub bill_lines: i64,
    /// Our payments and refunds counted that day.
    pub our_lines: i64,
    /// Ids both sides listed for the same amount.
    pub matched_lines: i64,
    pub mismatches: Mismatches,
    pub checked_at: Millis,
}

impl TryFrom<ReconciliationRow> for Reconciliation {
    type Error = AppError;

    fn try_from(row: ReconciliationRow) -> AppResult<Self> {
        let broken = |what: &str| AppError::Internal(format!("reconciliation {} has {what}", row.id));
        Ok(Self {
            day: ChinaDay::parse(&row.day).ok_or_else(|| broken("a day that is not YYYY-MM-DD"))?,
            mismatches: serde_json::from_str(&row.mismatches).map_err(|_| broken("mismatches that are not JSON"))?,
            matched: row.status == "matched",
            bill_lines: row.bill_lines,
            our_lines: row.our_lines,
            matched_lines: row.matched,
            checked_at: Millis(row.checked_at),
            provider: row.provider,
            id: row.id,
        })
    }
}

/// What this instance knows of the daily job, so a step with nothing to do makes no query.
#[derive(Debug, Clone, Default)]
pub(crate) struct Daily(Arc<Mutex<DailyState>>);

#[derive(Debug, Default)]
struct DailyState {
    /// The start of the last day known reconciled for every provider.
    done: i64,
    /// The start of the day last tried and not done, and when.
    tried: (i64, i64),
}

impl Daily {
    fn lock(&self) -> std::sync::MutexGuard<'_, DailyState> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A bill line as the matcher reads it.
fn bill_line(line: &BillLine) -> Line {
    match line {
        BillLine::Payment { at, out_trade_no, amount, .. } => Line {
            kind: Kind::Payment,
            id: out_trade_no.clone(),
            side: Side { amount: amount.get(), at: Some(*at), status: None },
        },
        BillLine::Refund { at, out_refund_no, amount, .. } => Line {
            kind: Kind::Refund,
            id: out_refund_no.clone(),
            side: Side { amount: amount.get(), at: Some(*at), status: None },
        },
    }
}

impl App {
    /// Reconciles one business day with one provider (`tuangou reconcile`, and the daily job): fetches its bill,
    /// matches every line with our payments and refunds of the day, and keeps the result (a newer one for a day
    /// reconciled before). Changes nothing else. Unknown provider: 404 `unknown_provider`; a bill the provider
    /// cannot give: 503 `provider_unavailable` (nothing is kept).
    pub async fn reconcile(&self, provider: &str, day: ChinaDay) -> AppResult<Reconciliation> {
        let adapter = self
            .provider(provider)
            .ok_or(AppError::NotFound("unknown_provider", "this payment provider is not offered"))?;
        let bill = adapter.fetch_bill(day).await?;
        let theirs: Vec<Line> = bill.lines.iter().map(bill_line).collect();
        let (from, to) = (day.start(), day.end());
        let mut ours: Vec<Line> = Vec::new();
        for p in self.store.booked_payments(provider, from, to).await? {
            let side = Side { amount: p.amount, at: p.paid_at.map(Millis), status: Some(p.status) };
            ours.push(Line { kind: Kind::Payment, id: p.id, side });
        }
        for r in self.store.booked_refunds(provider, from, to).await? {
            let side = Side { amount: r.amount, at: r.settled_at.map(Millis), status: Some(r.status) };
            ours.push(Line { kind: Kind::Refund, id: r.id, side });
        }
        let mut outcome = compare(&theirs, &ours);
        // What we have instead under each id the bill lists and our day does not: another state, another day.
        for missing in &mut outcome.mismatches.missing_ours {
            missing.ours = match missing.kind {
                Kind::Payment => self
                    .store
                    .booked_payment(&missing.id)
                    .await?
                    .filter(|p| p.provider == provider)
                    .map(|p| Side { amount: p.amount, at: p.paid_at.map(Millis), status: Some(p.status) }),
                Kind::Refund => self
                    .store
                    .booked_refund(&missing.id)
                    .await?
                    .filter(|r| r.provider == provider)
                    .map(|r| Side { amount: r.amount, at: r.settled_at.map(Millis), status: Some(r.status) }),
            };
        }
        let m = &outcome.mismatches;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let result = NewReconciliation {
            provider: provider.to_owned(),
            day: day.to_string(),
            bill_lines: count(outcome.bill_lines),
            our_lines: count(outcome.our_lines),
            matched: count(outcome.matched),
            missing_ours: count(m.missing_ours.len()),
            missing_theirs: count(m.missing_theirs.len()),
            amount_differs: count(m.amount_differs.len()),
            mismatches: serde_json::to_string(m).map_err(|e| AppError::Internal(e.to_string()))?,
            checked_at: self.clock.now(),
        };
        let row = self.store.record_reconciliation(&result).await?;
        if row.status == "matched" {
            tracing::info!(provider, %day, lines = row.bill_lines, "reconciled: every line matches");
        } else {
            tracing::warn!(provider, %day, missing_ours = row.missing_ours, missing_theirs = row.missing_theirs,
                amount_differs = row.amount_differs, "reconciled: mismatches found");
        }
        row.try_into()
    }

    /// The latest result per provider and day, newest day first (operator only), after the page that ended at
    /// `(day, provider)`.
    pub async fn reconciliations(
        &self,
        caller: &Caller,
        after: Option<(ChinaDay, &str)>,
        limit: usize,
    ) -> AppResult<Vec<Reconciliation>> {
        caller.require_operator()?;
        let after = after.map(|(day, provider)| (day.to_string(), provider));
        let rows =
            self.store.latest_reconciliations(after.as_ref().map(|(d, p)| (d.as_str(), *p)), limit as i64).await?;
        rows.into_iter().map(Reconciliation::try_from).collect()
    }

    /// Every result kept for one provider and day, newest first (the history behind the latest).
    pub async fn reconciliations_of_day(&self, provider: &str, day: ChinaDay) -> AppResult<Vec<Reconciliation>> {
        let rows = self.store.reconciliations_of_day(provider, &day.to_string()).await?;
        rows.into_iter().map(Reconciliation::try_from).collect()
    }

    /// The daily job's step: reconciles the day that is due (yesterday, from 02:00 CST) with every offered
    /// provider, once across instances (see the module's docs). Returns how many results it kept. A provider that
    /// cannot give its bill is logged and tried again a minute later; it never fails the other jobs.
    pub(crate) async fn reconcile_due_day(&self) -> usize {
        if self.providers.all.is_empty() {
            return 0;
        }
        let now = self.clock.now();
        let day = ChinaDay::of(Millis(now.0 - Millis::DAY - RECONCILE_AFTER_MS));
        let key = day.start().0;
        {
            let state = self.reconciling.lock();
            if state.done == key || (state.tried.0 == key && now.0 - state.tried.1 < RETRY_EVERY_MS) {
                return 0;
            }
        }
        let (mut kept, mut all_done) = (0, true);
        let names = self.provider_names();
        for name in names {
            let claim =
                self.store.claim_reconciliation_day(name, &day.to_string(), now, Millis(now.0 - CLAIM_LEASE_MS)).await;
            match claim {
                Ok(tuangou_store::DayClaim::Done) => {}
                Ok(tuangou_store::DayClaim::Held) => all_done = false,
                Ok(tuangou_store::DayClaim::Claimed) => match self.reconcile(name, day).await {
                    Ok(_) => kept += 1,
                    Err(error) => {
                        all_done = false;
                        tracing::warn!(provider = name, %day, %error, "daily reconciliation failed; trying again later");
                        if let Err(error) = self.store.release_reconciliation_day(name, &day.to_string()).await {
                            tracing::warn!(provider = name, %day, %error, "could not release the reconciliation claim");
                        }
                    }
                },
                Err(error) => {
                    all_done = false;
                    tracing::warn!(provider = name, %day, %error, "could not claim the day's reconciliation");
                }
            }
        }
        let mut state = self.reconciling.lock();
        if all_done {
            state.done = state.done.max(key);
        } else {
            state.tried = (key, now.0);
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The due day is yesterday from 02:00 CST on, the day before yesterday until then.
    #[test]
    fn the_due_day_turns_at_two_in_the_morning_in_china() {
        let today = ChinaDay::parse("2025-11-27").unwrap();
        let due = |at: i64| ChinaDay::of(Millis(at - Millis::DAY - RECONCILE_AFTER_MS)).to_string();
        assert_eq!(due(today.start().0 + RECONCILE_AFTER_MS), "2025-11-26");
        assert_eq!(due(today.start().0 + RECONCILE_AFTER_MS - 1), "2025-11-25");
        assert_eq!(due(today.end().0 - 1), "2025-11-26");
    }
}
