//! A pending seat's end (PAYMENTS.md "Paying at the join"): its payment arrives, or its window ends.
//!
//! Paid ([`Store::confirm_payment`], from a verified notification or a query that found it paid): in one unit of
//! work the payment is `paid`, the money enters the ledger (the provider's clearing account → the customer's
//! hold), the membership is confirmed (`pending` → `waiting`) and the group counts one more paid seat, filling at
//! N. Money for a seat that no longer waits for it (released, expired, or an amount that differs) is never kept:
//! it is owed back at once (`late_payment` refund, through the provider); a seat paid another amount is released
//! (its price was not paid). The same payment twice changes nothing.
//!
//! Not paid ([`Store::release_seat`], after the provider closed the payment): the payment is `closed`, the
//! membership `unpaid`, and its seat (and seq) goes to the next joiner; the customer's participation stops
//! counting.
//!
//! Locks, in this order: the payment, the group, the membership, then the participation or the balances. A
//! group's expiry takes the group first too, so a seat is released, confirmed or expired by whichever comes first.

use crate::db::{Conn, sql};
use crate::groups::{GROUP_COLUMNS, GroupRow, MEMBER_COLUMNS, MemberRow};
use crate::ledger::post_all;
use crate::payments::{PAYMENT_COLUMNS, PaymentRow};
use crate::refunds::{NewRefund, record_all, refund_id};
use crate::{Backend, CampaignRow, Store, StoreError, StoreResult};
use tuangou_domain::ids::UserId;
use tuangou_domain::ledger::{PaidFrom, late_payment_entry, payment_entry};
use tuangou_domain::money::Fen;
use tuangou_domain::time::Millis;

/// What a payment's money did.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one per applied notification, answered and dropped: never stored in bulk
pub enum PaymentApplied {
    /// It paid its pending seat: the group as it is now (`full` when this was its N-th paid seat).
    Seated { group: GroupRow, member: MemberRow },
    /// The seat no longer waited for it: refunded in full (the refund's id).
    Refunded { refund: String },
    /// Paid (or refunded) before: nothing changed.
    AlreadySettled,
}

/// A payment's seat released.
#[derive(Debug, Clone)]
pub struct Released {
    pub payment: PaymentRow,
    /// The group whose seat was freed, when the payment still held one.
    pub group: Option<GroupRow>,
}

fn lock_suffix(conn: &Conn<'_>) -> &'static str {
    match conn.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    }
}

async fn locked_payment(conn: &mut Conn<'_>, id: &str) -> StoreResult<PaymentRow> {
    let lock = lock_suffix(conn);
    conn.fetch_optional(sql(format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1{lock}")).bind(id))
        .await?
        .ok_or(StoreError::NotFound)
}

/// The payment's membership and its group, the group's row locked (PostgreSQL), when the membership still waits.
async fn pending_seat(conn: &mut Conn<'_>, payment: &PaymentRow) -> StoreResult<Option<(MemberRow, GroupRow)>> {
    let Some(membership) = &payment.membership_id else { return Ok(None) };
    let member: Option<MemberRow> = conn
        .fetch_optional(sql(format!("SELECT {MEMBER_COLUMNS} FROM memberships WHERE id = $1")).bind(membership))
        .await?;
    let Some(member) = member.filter(|m| m.status == "pending") else { return Ok(None) };
    let lock = lock_suffix(conn);
    let group: GroupRow = conn
        .fetch_one(sql(format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = $1{lock}")).bind(&member.group_id))
        .await?;
    // Read again under the group's lock: an expiry that got there first changed it.
    let member: Option<MemberRow> = conn
        .fetch_optional(
            sql(format!("SELECT {MEMBER_COLUMNS} FROM memberships WHERE id = $1 AND status = 'pending'"))
                .bind(membership),
        )
        .await?;
    Ok(member.map(|m| (m, group)))
}

impl Store {
    /// The provider says `payment` was paid `amount` at `paid_at`. `draw_due` says when the group must be drawn at
    /// the latest if this seat fills it (from its campaign). See the module's docs.
    pub async fn confirm_payment<F>(
        &self,
        payment: &str,
        amount: Fen,
        paid_at: Millis,
        now: Millis,
        draw_due: F,
    ) -> StoreResult<PaymentApplied>
    where
        F: Fn(&CampaignRow) -> StoreResult<Millis> + Send + Sync + 'static,
    {
        self.write((payment.to_owned(), amount, paid_at, now, draw_due), |mut conn, input| {
            let (payment, amount, paid_at, now, draw_due) = input;
            Box::pin(async move { confirm_in(&mut conn, payment, *amount, *paid_at, *now, draw_due).await })
        })
        .await
    }

    /// The provider closed `payment` unpaid: see the module's docs. `None` when the payment is no longer
    /// `created` (paid or closed meanwhile): nothing changes then.
    pub async fn release_seat(&self, payment: &str, now: Millis) -> StoreResult<Option<Released>> {
        self.write((payment.to_owned(), now), |mut conn, (payment, now)| {
            Box::pin(async move { release_in(&mut conn, payment, *now).await })
        })
        .await
    }
}

/// [`Store::confirm_payment`]'s unit of work.
pub(crate) async fn confirm_in<F>(
    conn: &mut Conn<'_>,
    id: &str,
    amount: Fen,
    paid_at: Millis,
    now: Millis,
    draw_due: &F,
) -> StoreResult<PaymentApplied>
where
    F: Fn(&CampaignRow) -> StoreResult<Millis>,
{
    let payment = locked_payment(conn, id).await?;
    if payment.status == "paid" || payment.status == "refunded" {
        return Ok(PaymentApplied::AlreadySettled);
    }
    conn.execute(
        sql("UPDATE payments SET status = 'paid', paid_at = $2, paid_amount = $3, next_check_at = NULL
             WHERE id = $1 AND status IN ('created', 'closed')")
        .bind(id)
        .bind(paid_at.0)
        .bind(amount.get()),
    )
    .await?;
    let user = UserId::from_trusted(&payment.user_id);
    let seat = pending_seat(conn, &payment).await?;
    if amount.get() != payment.amount
        && let Some((member, _)) = &seat
    {
        // Another amount than the seat's price cannot pay for it: the money goes back, the seat is released.
        release_member(conn, member).await?;
    }
    let seat = seat.filter(|_| amount.get() == payment.amount);
    let Some((member, group)) = seat else {
        // Late or unusable money: owed back in full, through the provider, at once.
        let refund = NewRefund {
            cause: "late_payment",
            of: payment.id.clone(),
            user: user.clone(),
            membership: payment.membership_id.clone(),
            payment: Some(payment.id.clone()),
            amount,
            to: PaidFrom::Provider(payment.provider.clone()),
        };
        let id = refund_id(refund.cause, &refund.of);
        post_all(conn, &[late_payment_entry(&id, &payment.provider, &user, amount)], now).await?;
        record_all(conn, &[refund], now).await?;
        return Ok(PaymentApplied::Refunded { refund: id });
    };
    let campaign: CampaignRow = conn
        .fetch_one(
            sql(format!("SELECT {} FROM campaigns WHERE id = $1", crate::campaigns::CAMPAIGN_COLUMNS))
                .bind(&group.campaign_id),
        )
        .await?;
    let due = draw_due(&campaign)?;
    let member: MemberRow = conn
        .fetch_one(
            sql(format!(
                "UPDATE memberships SET status = 'waiting', pay_by = NULL WHERE id = $1 AND status = 'pending'
                 RETURNING {MEMBER_COLUMNS}"
            ))
            .bind(&member.id),
        )
        .await?;
    let group: GroupRow = conn
        .fetch_one(
            sql(format!(
                "UPDATE groups SET paid_count = paid_count + 1,
                     status = CASE WHEN paid_count + 1 = group_size THEN 'full' ELSE status END,
                     full_at = CASE WHEN paid_count + 1 = group_size THEN $2 ELSE full_at END,
                     draw_due_at = CASE WHEN paid_count + 1 = group_size THEN $3 ELSE draw_due_at END
                 WHERE id = $1 AND status = 'open' RETURNING {GROUP_COLUMNS}"
            ))
            .bind(&group.id)
            .bind(now.0)
            .bind(due.0),
        )
        .await?;
    post_all(conn, &[payment_entry(&payment.id, &payment.provider, &user, amount)], now).await?;
    Ok(PaymentApplied::Seated { group, member })
}

/// [`Store::release_seat`]'s unit of work.
pub(crate) async fn release_in(conn: &mut Conn<'_>, id: &str, now: Millis) -> StoreResult<Option<Released>> {
    let payment = locked_payment(conn, id).await?;
    if payment.status != "created" {
        return Ok(None);
    }
    let payment: PaymentRow = conn
        .fetch_one(
            sql(format!(
                "UPDATE payments SET status = 'closed', closed_at = $2, next_check_at = NULL
                 WHERE id = $1 AND status = 'created' RETURNING {PAYMENT_COLUMNS}"
            ))
            .bind(id)
            .bind(now.0),
        )
        .await?;
    let Some((member, _)) = pending_seat(conn, &payment).await? else {
        return Ok(Some(Released { payment, group: None }));
    };
    let group = release_member(conn, &member).await?;
    Ok(Some(Released { payment, group: Some(group) }))
}

/// Releases a pending seat whose group's row this unit holds: the membership `unpaid`, its seq free for the next
/// joiner, the customer's participation no longer counted. Returns the group as it is now.
async fn release_member(conn: &mut Conn<'_>, member: &MemberRow) -> StoreResult<GroupRow> {
    conn.execute(
        sql("UPDATE memberships SET status = 'unpaid', pay_by = NULL WHERE id = $1 AND status = 'pending'")
            .bind(&member.id),
    )
    .await?;
    let group: GroupRow = conn
        .fetch_one(
            sql(format!(
                "UPDATE groups SET member_count = member_count - 1, released_seats = released_seats + 1
                 WHERE id = $1 RETURNING {GROUP_COLUMNS}"
            ))
            .bind(&member.group_id),
        )
        .await?;
    conn.execute(
        sql("UPDATE participations SET active = active - 1 WHERE campaign_id = $1 AND user_id = $2 AND active > 0")
            .bind(&member.campaign_id)
            .bind(&member.user_id),
    )
    .await?;
    Ok(group)
}
