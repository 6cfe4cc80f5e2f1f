//! The `commission_share` loser reward (SPEC.md S4, claim 4) as the voucher units need it: the entries that share
//! a redeemed voucher's commission with its group's losers, and the entries that take them back on an undo. Both
//! are read and built inside the redemption's (or the undo's) own unit of work, and posted in the same batch as
//! its settlement, so a share exists exactly when its redemption stands. The arithmetic and the entries are
//! `domain::ledger`'s; this module only reads what they need.

use crate::db::{Backend, Conn, sql};
use crate::vouchers::VoucherRow;
use crate::{Store, StoreError, StoreResult};
use tuangou_domain::ids::UserId;
use tuangou_domain::ledger::{
    Account, Entry, Loser, commission_share_entries, commission_share_reversals, share_reference, share_to_reverse,
    unshare_reference,
};
use tuangou_domain::money::{BasisPoints, Fen};

/// The share (in basis points) of the campaign's commission its losers split, when its reward is a
/// `commission_share`; `None` for every other kind.
async fn share_of(conn: &mut Conn<'_>, campaign: &str) -> StoreResult<Option<BasisPoints>> {
    let row: Option<(Option<i64>,)> = conn
        .fetch_optional(
            sql("SELECT reward_share_bps FROM campaigns WHERE id = $1 AND reward_kind = 'commission_share'")
                .bind(campaign),
        )
        .await?;
    let Some((bps,)) = row else { return Ok(None) };
    let bps = bps.ok_or_else(|| StoreError::Inconsistent(format!("campaign {campaign} shares no share_bps")))?;
    BasisPoints::parse("reward_share_bps", bps)
        .map(Some)
        .map_err(|_| StoreError::Inconsistent(format!("campaign {campaign} shares {bps} bps")))
}

/// The losers of the group `membership` belongs to, in seat order (the group's `(group_id, seq)` index).
async fn losers_beside(conn: &mut Conn<'_>, membership: &str) -> StoreResult<Vec<Loser>> {
    let rows: Vec<(String, String)> = conn
        .fetch_all(
            sql("SELECT m.id, m.user_id FROM memberships m
                 WHERE m.group_id = (SELECT group_id FROM memberships WHERE id = $1) AND m.status = 'lost'
                 ORDER BY m.seq")
            .bind(membership),
        )
        .await?;
    Ok(rows.into_iter().map(|(membership, user)| Loser { membership, user: UserId::from_trusted(user) }).collect())
}

/// `$first, $first+1, …` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// The entries that share the commission `voucher` (a purchase, just redeemed by `redemption`) earned with its
/// group's losers: none unless its campaign's reward is a `commission_share`, the group has losers and each
/// part is at least a fen.
pub(crate) async fn shares_on_redemption(
    conn: &mut Conn<'_>,
    voucher: &VoucherRow,
    redemption: &str,
) -> StoreResult<Vec<Entry>> {
    let Some(share) = share_of(conn, &voucher.campaign_id).await? else { return Ok(Vec::new()) };
    let commission = Fen::from_stored(voucher.commission)
        .ok_or_else(|| StoreError::Inconsistent(format!("voucher {} has a negative commission", voucher.id)))?;
    let losers = losers_beside(conn, &voucher.membership_id).await?;
    Ok(commission_share_entries(redemption, commission, share, &losers))
}

/// The entries that take back what `redemption` (being undone) shared with the losers of `voucher`'s group:
/// for each loser it credited, the credit — or, when the loser has already spent part of it, what their wallet
/// still holds ([`share_to_reverse`]: the rest is the platform's loss). The wallets are read locked on
/// PostgreSQL (`FOR UPDATE`, in account-key order, before the undo's post locks the merchant's and the
/// platform's balances, whose keys sort after), so a loser's concurrent spending waits and the reversal cannot be
/// refused for an overdraft; SQLite's one writer sees them as they are. The platform's commission account bears
/// the loss in the same post: if it cannot (it holds less than the commission minus what comes back), the post
/// is refused like any overdraft ([`StoreError::InsufficientFunds`]) and the undo with it, so no account ever
/// goes below zero.
pub(crate) async fn reversals_on_undo(
    conn: &mut Conn<'_>,
    voucher: &VoucherRow,
    redemption: &str,
) -> StoreResult<Vec<Entry>> {
    if share_of(conn, &voucher.campaign_id).await?.is_none() {
        return Ok(Vec::new());
    }
    let losers = losers_beside(conn, &voucher.membership_id).await?;
    if losers.is_empty() {
        return Ok(Vec::new());
    }
    let references: Vec<String> = losers.iter().map(|l| share_reference(redemption, &l.membership)).collect();
    let lock = if conn.backend() == Backend::Postgres { " FOR UPDATE OF b" } else { "" };
    let mut q = sql(format!(
        "SELECT e.reference, p.amount, b.balance FROM ledger_entries e
         JOIN ledger_postings p ON p.entry_id = e.id AND p.account <> $1 AND p.unit = 'fen'
         JOIN balances b ON b.account = p.account AND b.unit = 'fen'
         WHERE e.reference IN ({}) ORDER BY b.account{lock}",
        placeholders(2, references.len())
    ))
    .bind(Account::PlatformCommission.key());
    for reference in &references {
        q = q.bind(reference);
    }
    let credited: Vec<(String, i64, i64)> = conn.fetch_all(q).await?;
    let mut reversals = Vec::with_capacity(credited.len());
    for (reference, amount, balance) in credited {
        let Some(loser) = references.iter().position(|r| *r == reference).map(|i| losers[i].clone()) else {
            continue;
        };
        let amount = Fen::from_stored(amount)
            .ok_or_else(|| StoreError::Inconsistent(format!("share {reference} credited a negative amount")))?;
        reversals.push((loser, share_to_reverse(amount, balance)));
    }
    Ok(commission_share_reversals(redemption, &reversals))
}

impl Store {
    /// What the commission shares of `membership`'s group have paid its member `user` so far, net of undos, in
    /// fen: the credits and reversals of every redemption of the group's winners' purchase vouchers (a few per
    /// winner), each found by its unique reference. Zero when the campaign's reward is another kind.
    pub async fn commission_shared(&self, membership: &str, user: &UserId) -> StoreResult<i64> {
        let mut pooled = self.pools.read().await?;
        let mut conn = pooled.conn();
        let redemptions: Vec<(String,)> = conn
            .fetch_all(
                sql("SELECT r.id FROM memberships w
                     JOIN vouchers v ON v.membership_id = w.id AND v.kind = 'purchase'
                     JOIN redemptions r ON r.voucher_id = v.id
                     WHERE w.group_id = (SELECT group_id FROM memberships WHERE id = $1) AND w.status = 'won'")
                .bind(membership),
            )
            .await?;
        if redemptions.is_empty() {
            return Ok(0);
        }
        let references: Vec<String> = redemptions
            .iter()
            .flat_map(|(r,)| [share_reference(r, membership), unshare_reference(r, membership)])
            .collect();
        let mut q = sql(format!(
            "SELECT CAST(COALESCE(SUM(p.amount), 0) AS BIGINT) FROM ledger_entries e
             JOIN ledger_postings p ON p.entry_id = e.id AND p.account = $1 AND p.unit = 'fen'
             WHERE e.reference IN ({})",
            placeholders(2, references.len())
        ))
        .bind(Account::CustomerAvailable(user.clone()).key());
        for reference in references {
            q = q.bind(reference);
        }
        let (net,): (i64,) = conn.fetch_one(q).await?;
        Ok(net)
    }
}
