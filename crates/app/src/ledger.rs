//! Wallets and the operator's credits.

use crate::{App, AppError, AppResult, Caller};
use tuangou_domain::Invalid;
use tuangou_domain::ids::{MerchantId, UserId};
use tuangou_domain::ledger::{Account, Cause, Entry};
use tuangou_domain::money::Fen;
use tuangou_store::{EntryRecord, MerchantRole};

/// `GET /me/wallet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerWallet {
    pub available: i64,
    pub held: i64,
    pub points: i64,
    /// Refunds owed back through the provider that took the money, until it confirms them.
    pub refund_pending: i64,
}

/// `GET /merchants/{id}/wallet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerchantWallet {
    pub available: i64,
    pub reward_reserve: i64,
    pub receivable: i64,
}

/// Whom an operator credit goes to.
#[derive(Debug, Clone)]
pub enum CreditTarget {
    User(UserId),
    Merchant(MerchantId),
}

const CREDIT_PREFIX: &str = "credit:";

/// A credit reference: 1–100 printable characters, no spaces at either end.
fn parse_reference(reference: &str) -> Result<String, Invalid> {
    let trimmed = reference.trim();
    let valid = !trimmed.is_empty() && trimmed.chars().count() <= 100 && !trimmed.chars().any(char::is_control);
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(Invalid::field("reference", "must be 1 to 100 printable characters"))
    }
}

impl App {
    pub async fn customer_wallet(&self, caller: &Caller) -> AppResult<CustomerWallet> {
        let user = caller.user.clone();
        Ok(CustomerWallet {
            available: self.store.balance(&Account::CustomerAvailable(user.clone()).key(), "fen").await?,
            held: self.store.balance(&Account::CustomerHeld(user.clone()).key(), "fen").await?,
            refund_pending: self.store.balance(&Account::CustomerRefundPending(user.clone()).key(), "fen").await?,
            points: self.store.balance(&Account::CustomerPoints(user).key(), "points").await?,
        })
    }

    /// The merchant's wallet; for its owner only.
    pub async fn merchant_wallet(&self, caller: &Caller, merchant: &MerchantId) -> AppResult<MerchantWallet> {
        self.require_owner(caller, merchant).await?;
        Ok(MerchantWallet {
            available: self.store.balance(&Account::MerchantAvailable(merchant.clone()).key(), "fen").await?,
            reward_reserve: self.store.balance_with_prefix(&format!("merchant:{merchant}:reserve:"), "fen").await?,
            receivable: self.store.balance(&Account::MerchantReceivable(merchant.clone()).key(), "fen").await?,
        })
    }

    /// Credits money from outside to a customer's or merchant's available balance, once per `reference`: the
    /// same reference again answers with the first entry when it asked for the same credit, and 409
    /// `reference_reused` when it asked for a different one. Returns the entry and whether it is new.
    pub async fn credit(
        &self,
        caller: &Caller,
        target: CreditTarget,
        amount: i64,
        reference: &str,
    ) -> AppResult<(EntryRecord, bool)> {
        caller.require_operator()?;
        let amount = Fen::parse_positive("amount", amount)?;
        let reference = parse_reference(reference)?;
        let account = match target {
            CreditTarget::User(user) => {
                self.store.user(&user).await?.ok_or(AppError::NotFound("unknown_user", "no such user"))?;
                Account::CustomerAvailable(user)
            }
            CreditTarget::Merchant(merchant) => {
                self.store
                    .merchant(&merchant)
                    .await?
                    .ok_or(AppError::NotFound("unknown_merchant", "no such merchant"))?;
                Account::MerchantAvailable(merchant)
            }
        };
        let key = account.key();
        // References share one unique index with the ledger's own (`join:…`, `refund:…`): credits get a namespace.
        let stored_reference = format!("{CREDIT_PREFIX}{reference}");
        let entry =
            Entry::transfer(Cause::Credit, Account::ExternalFunding, account, amount).with_reference(stored_reference);
        let (mut record, created) = self.store.post_once(&entry, self.clock.now()).await?;
        record.reference = record.reference.map(|r| r.strip_prefix(CREDIT_PREFIX).map(str::to_owned).unwrap_or(r));
        let same =
            record.cause == "credit" && record.postings.iter().any(|p| p.account == key && p.amount == amount.get());
        if !created && !same {
            return Err(AppError::conflict("reference_reused", "this reference was used for a different credit"));
        }
        Ok((record, created))
    }

    /// Fails unless the caller owns the merchant: 404 for an unknown merchant, 403 for anyone else (a
    /// merchant's profile is public, so its existence is no secret).
    pub(crate) async fn require_owner(&self, caller: &Caller, merchant: &MerchantId) -> AppResult<()> {
        self.store.merchant(merchant).await?.ok_or(AppError::NotFound("unknown_merchant", "no such merchant"))?;
        match self.store.merchant_role(merchant, &caller.user).await? {
            Some(MerchantRole::Owner) => Ok(()),
            _ => Err(AppError::Forbidden("owner_only", "only the merchant's owner may do this")),
        }
    }
}
