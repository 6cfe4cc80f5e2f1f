//! The invariants of SPEC.md on the live data, as far as SQL can see them: 1 (the ledger), 2 (group sizes),
//! 3 (draws happen, with K distinct winners), 4 (one capture, refund and reward per membership), 5 (stock), and
//! 7 (once per group, within the limit). Checking that each draw verifies per FAIRNESS.md needs the domain: the
//! app does it over [`Store::drawn_groups`]. Each query lists at most 100 offenders.

use crate::db::{Conn, sql};
use crate::groups::{GroupRow, MemberRow};
use crate::{Store, StoreResult};
use tuangou_domain::ledger::Account;
use tuangou_domain::time::Millis;

/// One broken invariant, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant of SPEC.md (1–7), or 8: the money invariants of PAYMENTS.md.
    pub invariant: u8,
    pub detail: String,
}

/// A full group whose draw is overdue by more than this is reported (the worker draws within a second).
const DRAW_GRACE_MS: i64 = 60_000;

async fn each<T: crate::db::Row>(
    conn: &mut Conn<'_>,
    found: &mut Vec<Violation>,
    invariant: u8,
    query: &str,
    describe: impl Fn(T) -> String,
) -> StoreResult<()> {
    let rows: Vec<T> = conn.fetch_all(sql(format!("{query} LIMIT 100"))).await?;
    found.extend(rows.into_iter().map(|row| Violation { invariant, detail: describe(row) }));
    Ok(())
}

impl Store {
    /// Every violation SQL can find (see the module's docs).
    pub async fn violations(&self, now: Millis) -> StoreResult<Vec<Violation>> {
        let mut found = self.ledger_violations().await?;
        let mut pooled = self.pools.read().await?;
        let conn = &mut pooled.conn();
        let f = &mut found;

        // 2. No group has more than N members (held seats, paid or pending); a full group has exactly N, all
        //    paid; seqs are distinct, and 1..N in a full group (a released seq waits for the next joiner).
        each(
            conn,
            f,
            2,
            "SELECT id, member_count, group_size, status FROM groups
             WHERE member_count > group_size OR paid_count > member_count
                OR (status IN ('full', 'drawn') AND (member_count <> group_size OR paid_count <> group_size))",
            |(id, count, size, status): (String, i64, i64, String)| {
                format!("group {id} is {status} with {count} of {size} members")
            },
        )
        .await?;
        each(conn, f, 2, "SELECT g.id, g.member_count, CAST(COUNT(m.id) AS BIGINT), CAST(COALESCE(MIN(m.seq), 1) AS BIGINT),
                 CAST(COALESCE(MAX(m.seq), 0) AS BIGINT)
             FROM groups g LEFT JOIN memberships m ON m.group_id = g.id AND m.status <> 'unpaid'
             GROUP BY g.id, g.member_count, g.released_seats, g.group_size
             HAVING COUNT(m.id) <> g.member_count OR COALESCE(MIN(m.seq), 1) < 1
                 OR COALESCE(MAX(m.seq), 0) > g.member_count + g.released_seats OR COALESCE(MAX(m.seq), 0) > g.group_size
                 OR (COUNT(m.id) = g.group_size AND COALESCE(MAX(m.seq), 0) <> g.group_size)",
            |(id, count, rows, min, max): (String, i64, i64, i64, i64)| {
                format!("group {id} counts {count} members but has {rows} (seqs {min}..{max})")
            }).await?;

        // 3. Full groups are drawn when due; a drawn group has K distinct winners.
        let overdue = now.0 - DRAW_GRACE_MS;
        each(
            conn,
            f,
            3,
            &format!("SELECT id FROM groups WHERE status = 'full' AND draw_due_at < {overdue}"),
            |(id,): (String,)| format!("group {id} is full and its draw is overdue"),
        )
        .await?;
        each(
            conn,
            f,
            3,
            "SELECT g.id, g.winners_per_group, CAST(COUNT(m.id) AS BIGINT) FROM groups g
             LEFT JOIN memberships m ON m.group_id = g.id AND m.status = 'won'
             WHERE g.status = 'drawn' GROUP BY g.id, g.winners_per_group HAVING COUNT(m.id) <> g.winners_per_group",
            |(id, k, won): (String, i64, i64)| format!("group {id} was drawn with {won} winners, not {k}"),
        )
        .await?;
        each(
            conn,
            f,
            3,
            "SELECT m.id, m.status, g.status FROM memberships m JOIN groups g ON g.id = m.group_id
             WHERE m.status <> 'unpaid' AND ((g.status = 'drawn' AND m.status NOT IN ('won', 'lost'))
                OR (g.status = 'expired' AND m.status <> 'expired')
                OR (g.status = 'full' AND m.status <> 'waiting')
                OR (g.status = 'open' AND m.status NOT IN ('waiting', 'pending')))",
            |(id, member, group): (String, String, String)| format!("membership {id} is {member} in a {group} group"),
        )
        .await?;

        // 4. Each membership's money moved once per step: a join charge (from the wallet, or its payment through a
        //    provider) for every seat that was paid; a capture for a winner; a refund for a loser or an expired
        //    paid member. (References are unique, so none can be there twice.)
        each(conn, f, 4, "SELECT m.id, m.status FROM memberships m WHERE (m.status NOT IN ('pending', 'unpaid')
                 AND NOT (m.status = 'expired' AND m.paid_with <> 'wallet' AND NOT EXISTS
                     (SELECT 1 FROM payments p JOIN ledger_entries e ON e.reference = 'payment:' || p.id
                      WHERE p.membership_id = m.id))
                 AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.reference = 'join:' || m.id)
                 AND NOT EXISTS (SELECT 1 FROM payments p JOIN ledger_entries e ON e.reference = 'payment:' || p.id
                                 WHERE p.membership_id = m.id))
             OR (m.status = 'won' AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.reference = 'draw:' || m.id))
             OR (m.status = 'lost' AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.reference = 'refund:' || m.id))
             OR (m.status = 'expired' AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.reference = 'expiry:' || m.id)
                 AND (m.paid_with = 'wallet' OR EXISTS (SELECT 1 FROM payments p JOIN ledger_entries e
                      ON e.reference = 'payment:' || p.id WHERE p.membership_id = m.id)))",
            |(id, status): (String, String)| format!("membership {id} ({status}) lacks its ledger entry")).await?;
        each(
            conn,
            f,
            4,
            "SELECT m.id FROM memberships m JOIN campaigns c ON c.id = m.campaign_id
             WHERE m.status = 'lost' AND c.reward_kind IN ('cash', 'points')
               AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.reference = 'reward:' || m.id)",
            |(id,): (String,)| format!("membership {id} lost but got no reward"),
        )
        .await?;
        each(conn, f, 4, "SELECT m.id, m.status FROM memberships m WHERE
                (m.status <> 'won' AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.reference = 'draw:' || m.id))
             OR (m.status <> 'lost' AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.reference IN ('refund:' || m.id, 'reward:' || m.id)))",
            |(id, status): (String, String)| format!("membership {id} ({status}) has entries of another outcome")).await?;

        //    One purchase voucher per winner, one coupon per loser of a coupon campaign, none for anyone else.
        each(
            conn,
            f,
            4,
            "SELECT m.id, m.status, CAST(COUNT(v.id) AS BIGINT) FROM memberships m
             JOIN campaigns c ON c.id = m.campaign_id
             LEFT JOIN vouchers v ON v.membership_id = m.id
             GROUP BY m.id, m.status, c.reward_kind
             HAVING COUNT(v.id) <> CASE WHEN m.status = 'won' THEN 1
                                        WHEN m.status = 'lost' AND c.reward_kind = 'coupon' THEN 1 ELSE 0 END",
            |(id, status, n): (String, String, i64)| format!("membership {id} ({status}) has {n} vouchers"),
        )
        .await?;
        each(
            conn,
            f,
            4,
            "SELECT v.id, v.kind, m.status FROM vouchers v JOIN memberships m ON m.id = v.membership_id
             WHERE (v.kind = 'purchase' AND m.status <> 'won') OR (v.kind = 'coupon' AND m.status <> 'lost')
                OR v.user_id <> m.user_id",
            |(id, kind, status): (String, String, String)| {
                format!("{kind} voucher {id} belongs to a {status} membership")
            },
        )
        .await?;

        // 5. Stock: reserved + won never exceeds Q, and both agree with the groups.
        each(conn, f, 5, "SELECT c.id, c.quantity, c.reserved_units, c.won_units,
                 CAST(COALESCE(SUM(CASE WHEN g.status IN ('open', 'full') THEN g.winners_per_group ELSE 0 END), 0) AS BIGINT),
                 CAST(COALESCE(SUM(CASE WHEN g.status = 'drawn' THEN g.winners_per_group ELSE 0 END), 0) AS BIGINT)
             FROM campaigns c LEFT JOIN groups g ON g.campaign_id = c.id
             GROUP BY c.id, c.quantity, c.reserved_units, c.won_units
             HAVING c.reserved_units + c.won_units > c.quantity
                 OR c.reserved_units <> COALESCE(SUM(CASE WHEN g.status IN ('open', 'full') THEN g.winners_per_group ELSE 0 END), 0)
                 OR c.won_units <> COALESCE(SUM(CASE WHEN g.status = 'drawn' THEN g.winners_per_group ELSE 0 END), 0)",
            |(id, q, reserved, won, open_k, drawn_k): (String, i64, i64, i64, i64, i64)| {
                format!("campaign {id}: Q {q}, reserved {reserved} (groups say {open_k}), won {won} (groups say {drawn_k})")
            }).await?;
        each(
            conn,
            f,
            5,
            "SELECT c.id, c.quantity, CAST(COUNT(m.id) AS BIGINT) FROM campaigns c
             JOIN memberships m ON m.campaign_id = c.id AND m.status = 'won'
             GROUP BY c.id, c.quantity HAVING COUNT(m.id) > c.quantity",
            |(id, q, won): (String, i64, i64)| format!("campaign {id} has {won} winners for {q} units"),
        )
        .await?;

        // 6. A voucher's redemptions, net of undos, are 0 or 1 (1 exactly when it is redeemed), each by staff or
        //    the owner of its own merchant.
        each(
            conn,
            f,
            6,
            "SELECT v.id, v.status, CAST(COUNT(r.id) AS BIGINT) FROM vouchers v
             LEFT JOIN redemptions r ON r.voucher_id = v.id AND r.undone_at IS NULL
             GROUP BY v.id, v.status
             HAVING COUNT(r.id) > 1 OR (v.status = 'redeemed') <> (COUNT(r.id) = 1)",
            |(id, status, n): (String, String, i64)| format!("voucher {id} is {status} with {n} standing redemptions"),
        )
        .await?;
        each(
            conn,
            f,
            6,
            "SELECT r.id, r.staff_id FROM redemptions r JOIN vouchers v ON v.id = r.voucher_id
             WHERE r.merchant_id <> v.merchant_id OR NOT EXISTS
                 (SELECT 1 FROM merchant_roles mr WHERE mr.merchant_id = v.merchant_id AND mr.user_id = r.staff_id)",
            |(id, staff): (String, String)| format!("redemption {id} was made by {staff}, not staff of its merchant"),
        )
        .await?;

        // 7. Once per group (also a unique constraint), and within the per-customer limit.
        each(
            conn,
            f,
            7,
            "SELECT group_id, user_id FROM memberships WHERE status <> 'unpaid'
             GROUP BY group_id, user_id HAVING COUNT(*) > 1",
            |(group, user): (String, String)| format!("user {user} is in group {group} more than once"),
        )
        .await?;
        each(
            conn,
            f,
            7,
            "SELECT m.campaign_id, m.user_id, CAST(COUNT(*) AS BIGINT), c.per_customer_limit
             FROM memberships m JOIN campaigns c ON c.id = m.campaign_id WHERE m.status NOT IN ('expired', 'unpaid')
             GROUP BY m.campaign_id, m.user_id, c.per_customer_limit HAVING COUNT(*) > c.per_customer_limit",
            |(campaign, user, n, limit): (String, String, i64, i64)| {
                format!("user {user} holds {n} memberships of campaign {campaign}, over its limit of {limit}")
            },
        )
        .await?;
        each(
            conn,
            f,
            7,
            "SELECT p.campaign_id, p.user_id, p.active, CAST(COUNT(m.id) AS BIGINT) FROM participations p
             LEFT JOIN memberships m ON m.campaign_id = p.campaign_id AND m.user_id = p.user_id
                 AND m.status NOT IN ('expired', 'unpaid')
             GROUP BY p.campaign_id, p.user_id, p.active HAVING p.active <> COUNT(m.id)",
            |(campaign, user, active, n): (String, String, i64, i64)| {
                format!("user {user} counts {active} memberships of campaign {campaign} but holds {n}")
            },
        )
        .await?;
        // Payments (PAYMENTS.md): every paid payment is a paid seat's hold or has a refund; every refund is
        // recorded with the ledger entry that owes it, and one that succeeded through a provider was paid out.
        each(
            conn,
            f,
            8,
            "SELECT p.id, p.status FROM payments p WHERE p.status IN ('paid', 'refunded')
               AND NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.reference = 'payment:' || p.id)
               AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id AND r.cause = 'late_payment')",
            |(id, status): (String, String)| format!("payment {id} is {status} but seats no one and was not refunded"),
        )
        .await?;
        each(
            conn,
            f,
            8,
            "SELECT r.id, r.status FROM refunds r WHERE r.destination = 'provider' AND (
                 (r.status = 'succeeded') <> EXISTS (SELECT 1 FROM ledger_entries e WHERE e.reference = 'refund-settled:' || r.id)
              OR (r.cause = 'late_payment' AND NOT EXISTS
                     (SELECT 1 FROM ledger_entries e WHERE e.reference = 'refund-owed:' || r.id)))",
            |(id, status): (String, String)| format!("refund {id} ({status}) does not match its ledger entries"),
        )
        .await?;
        Ok(found)
    }

    /// Drawn groups with their members, oldest first, a page at a time (`after` is the last id seen), for the
    /// app to verify each draw per FAIRNESS.md.
    pub async fn drawn_groups(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<(GroupRow, Vec<MemberRow>)>> {
        let mut pooled = self.pools.read().await?;
        let mut conn = pooled.conn();
        let ids: Vec<(String,)> = conn
            .fetch_all(
                sql("SELECT id FROM groups WHERE status = 'drawn' AND id > $1 ORDER BY id LIMIT $2")
                    .bind(after.unwrap_or(""))
                    .bind(limit),
            )
            .await?;
        let mut groups = Vec::with_capacity(ids.len());
        for (id,) in ids {
            let gid = tuangou_domain::ids::GroupId::from_trusted(&id);
            if let (Some(group), members) = (self.group(&gid).await?, self.group_members(&gid).await?) {
                groups.push((group, members));
            }
        }
        Ok(groups)
    }

    /// Invariant 1: every unit sums to zero over all accounts; every entry balances per unit; each stored balance
    /// equals the sum of its postings; no account but the external ones is below zero; per provider, minus the
    /// clearing account's balance equals paid − refunded − paid out.
    pub async fn ledger_violations(&self) -> StoreResult<Vec<Violation>> {
        let mut pooled = self.pools.read().await?;
        let conn = &mut pooled.conn();
        let mut found = Vec::new();
        let f = &mut found;
        each(
            conn,
            f,
            1,
            "SELECT unit, CAST(SUM(amount) AS BIGINT) FROM ledger_postings GROUP BY unit HAVING SUM(amount) <> 0",
            |(unit, total): (String, i64)| format!("the {unit} postings sum to {total}, not 0"),
        )
        .await?;
        each(
            conn,
            f,
            1,
            "SELECT entry_id, unit, CAST(SUM(amount) AS BIGINT) FROM ledger_postings
             GROUP BY entry_id, unit HAVING SUM(amount) <> 0 ORDER BY entry_id",
            |(entry, unit, sum): (String, String, i64)| format!("entry {entry} does not balance: {sum} {unit}"),
        )
        .await?;
        each(
            conn,
            f,
            1,
            "SELECT b.account, b.unit, b.balance, CAST(COALESCE(SUM(p.amount), 0) AS BIGINT)
             FROM balances b LEFT JOIN ledger_postings p ON p.account = b.account AND p.unit = b.unit
             GROUP BY b.account, b.unit, b.balance
             HAVING b.balance <> COALESCE(SUM(p.amount), 0) ORDER BY b.account",
            |(account, unit, balance, sum): (String, String, i64, i64)| {
                format!("{account} shows {balance} {unit} but its postings sum to {sum}")
            },
        )
        .await?;
        // Per provider, minus its clearing account's balance is what the provider holds for us (PAYMENTS.md):
        // paid (payments paid or refunded since, by what the provider took) − refunded (refunds through it that succeeded) − paid out
        // (payouts and splits that succeeded).
        let clearing: Vec<(String, i64, i64, i64, i64)> = conn
            .fetch_all(sql("SELECT p.provider,
                     CAST(COALESCE((SELECT SUM(COALESCE(paid_amount, amount)) FROM payments
                                    WHERE provider = p.provider AND status IN ('paid', 'refunded')), 0) AS BIGINT),
                     CAST(COALESCE((SELECT SUM(amount) FROM refunds WHERE provider = p.provider
                                    AND destination = 'provider' AND status = 'succeeded'), 0) AS BIGINT),
                     CAST(COALESCE((SELECT SUM(amount) FROM payouts
                                    WHERE provider = p.provider AND status = 'succeeded'), 0)
                        + COALESCE((SELECT SUM(amount) FROM splits
                                    WHERE provider = p.provider AND status = 'succeeded'), 0) AS BIGINT),
                     CAST(COALESCE((SELECT balance FROM balances WHERE unit = 'fen'
                                    AND account = 'provider:' || p.provider || ':clearing'), 0) AS BIGINT)
                 FROM (SELECT provider FROM payments
                       UNION SELECT provider FROM refunds WHERE provider IS NOT NULL
                       UNION SELECT provider FROM payouts
                       UNION SELECT provider FROM splits
                       UNION SELECT SUBSTR(account, 10, LENGTH(account) - 18) FROM balances
                             WHERE account LIKE 'provider:%:clearing') p
                 ORDER BY p.provider LIMIT 100"))
            .await?;
        for (provider, paid, refunded, paid_out, balance) in clearing {
            if -balance != paid - refunded - paid_out {
                found.push(Violation {
                    invariant: 1,
                    detail: format!(
                        "provider {provider}'s clearing account shows {balance} fen, but paid {paid} − refunded \
                         {refunded} − paid out {paid_out} means it holds {} for us",
                        paid - refunded - paid_out
                    ),
                });
            }
        }
        let negative: Vec<(String, String, i64)> = conn
            .fetch_all(sql("SELECT account, unit, balance FROM balances WHERE balance < 0 ORDER BY account LIMIT 1000"))
            .await?;
        for (account, unit, balance) in negative.into_iter().filter(|(a, _, _)| !Account::key_may_go_negative(a)) {
            found.push(Violation { invariant: 1, detail: format!("{account} is below zero: {balance} {unit}") });
        }
        Ok(found)
    }
}
