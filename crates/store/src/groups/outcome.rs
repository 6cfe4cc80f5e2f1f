//! Writing what a draw decided: the group's record, every member's outcome (K ≥ 1, so the list of winners is
//! never empty), the stock (K units from reserved to won), the money, the vouchers and the refunds.
//!
//! One batch on SQLite. On PostgreSQL one statement (clauses of a data-modifying `WITH`): the draw holds the
//! campaign's row from its stock update to its commit, and joiners opening groups of that campaign queue on that
//! row, so nothing but the commit follows it. The money's clauses require the stock's, so the balances are still
//! locked after the campaign (the global order). The refunds' records are clauses too (a round trip each when
//! they followed as statements of their own). A group a join has just filled can be drawn by that statement
//! alone, its move from `full` to `drawn` one more clause ([`claim_and_write`]): the draw's whole transaction in
//! one round trip.

use super::{DrawPlan, GROUP_COLUMNS, GroupRow};
use crate::db::{Backend, Conn, Sql, refuse_when, sql};
use crate::ledger::Posting;
use crate::refunds::record_sql;
use crate::{CampaignRow, StoreError, StoreResult};
use tuangou_domain::time::Millis;

/// Writes `decided` for the group `row` (just moved to `drawn`, with `members` members); returns its record.
pub(super) async fn write(
    conn: &mut Conn<'_>,
    row: &GroupRow,
    members: usize,
    campaign: &CampaignRow,
    decided: &DrawPlan,
    now: Millis,
) -> StoreResult<GroupRow> {
    let drawn = match conn.backend() {
        Backend::Sqlite => {
            let vouchers = crate::vouchers::issue_all(&campaign.merchant_id, &campaign.id, &decided.vouchers, now);
            let mut statements =
                vec![record(row, decided), outcomes(row, decided).must_change(members as u64), stock(row)];
            let (posting_statements, posting) = Posting::of(Backend::Sqlite, &decided.entries, now);
            statements.extend(posting_statements);
            let voucher_statements = vouchers.len();
            statements.extend(vouchers);
            statements.extend(decided.refunds.iter().map(|refund| record_sql(refund, now)));
            let mut ran = conn.run(statements).await;
            let drawn: GroupRow = ran.next()?.row()?.ok_or(StoreError::NotFound)?;
            let covered = ran.next_met()?.is_some();
            ran.next()?;
            if covered {
                posting.check(&mut ran)?;
                for _ in 0..voucher_statements {
                    ran.next()?;
                }
                for _ in &decided.refunds {
                    ran.next_met()?.ok_or_else(unrecorded)?;
                }
            }
            (drawn, covered)
        }
        Backend::Postgres => {
            let (statement, posting) = one_statement(row, campaign, decided, now, Claims::No);
            let done = conn.run(vec![statement]).await.next()?;
            let (covered, moved, recorded): (i64, i64, i64) = done.row()?.ok_or(StoreError::NotFound)?;
            let drawn: GroupRow = done.row()?.ok_or(StoreError::NotFound)?;
            if covered == members as i64 {
                posting.check_moved(moved)?;
                if recorded != decided.refunds.len() as i64 {
                    return Err(unrecorded());
                }
            }
            (drawn, covered == members as i64)
        }
    };
    match drawn {
        (drawn, true) => Ok(drawn),
        (_, false) => {
            Err(StoreError::Inconsistent(format!("group {}: the outcomes do not cover its {members} members", row.id)))
        }
    }
}

/// Whether the outcome's statement also moves the group from `full` to `drawn`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Claims<'m> {
    /// The unit moved it already (`draw_in`).
    No,
    /// The statement does, as its own transaction, for a plan made from these members (ids): it refuses itself
    /// when the group is no longer full (`already_drawn`) or its waiting members are not these
    /// (`members_changed`), and writes nothing then.
    Yes(&'m [String]),
}

/// PostgreSQL, as its own transaction ([`crate::Store::write_in_one_statement`]): moves the group `row` from
/// `full` to `drawn` and writes `decided`, made from the members `members` (ids), in one statement: one round
/// trip for the whole draw. `None` when it wrote nothing: the group is no longer full, its members are not
/// these, or a row the draw writes is there already (the statement refuses itself, or fails on the row's unique
/// key); the draw's unit then draws it, or says why it cannot.
pub(super) async fn claim_and_write(
    conn: &mut Conn<'_>,
    row: &GroupRow,
    members: &[String],
    campaign: &CampaignRow,
    decided: &DrawPlan,
    now: Millis,
) -> StoreResult<Option<GroupRow>> {
    let (statement, _) = one_statement(row, campaign, decided, now, Claims::Yes(members));
    match conn.run(vec![statement]).await.next() {
        Ok(done) => Ok(Some(done.row()?.ok_or(StoreError::NotFound)?)),
        Err(error) => {
            tracing::debug!(%error, group = %row.id, "a filled group's draw statement wrote nothing");
            Ok(None)
        }
    }
}

/// PostgreSQL: the draw's writes as one statement (clauses of a data-modifying `WITH`), selecting how many
/// members it covered, balance rows it moved and refunds it recorded, then the group's record.
fn one_statement(
    row: &GroupRow,
    campaign: &CampaignRow,
    decided: &DrawPlan,
    now: Millis,
    claims: Claims,
) -> (Sql, Posting) {
    let vouchers = crate::vouchers::issue_all(&campaign.merchant_id, &campaign.id, &decided.vouchers, now);
    let (money, moved, posting) = Posting::clauses(&decided.entries, now, "EXISTS (SELECT 1 FROM stock)");
    // Claiming, the group's row comes first (the global order: group, memberships, campaign, balances): the
    // record's update takes it, and the outcomes and the stock require the record.
    let (record, after_record) = match claims {
        Claims::No => (record(row, decided), String::new()),
        Claims::Yes(_) => (claim_and_record(row, decided, now), " AND EXISTS (SELECT 1 FROM record)".to_owned()),
    };
    let mut outcomes = outcomes(row, decided).followed_by(&after_record);
    if let Claims::Yes(members) = claims {
        outcomes = only_members(outcomes, members);
    }
    let mut clauses = vec![
        ("record".to_owned(), record),
        ("outcomes".to_owned(), outcomes.followed_by(" RETURNING 1")),
        ("stock".to_owned(), stock(row).followed_by(&after_record).followed_by(" RETURNING 1")),
    ];
    clauses.extend(money);
    clauses.extend(vouchers.into_iter().enumerate().map(|(i, v)| (format!("vouchers{i}"), v)));
    let refunds: Vec<String> = (0..decided.refunds.len()).map(|i| format!("refund{i}")).collect();
    for (name, refund) in refunds.iter().zip(&decided.refunds) {
        clauses.push((name.clone(), record_sql(refund, now).followed_by(" RETURNING 1")));
    }
    let recorded = refunds.iter().map(|name| format!(" + (SELECT COUNT(*) FROM {name})")).collect::<String>();
    let recorded = format!("CAST(0{recorded} AS BIGINT)");
    let refused = match claims {
        Claims::No => "0".to_owned(),
        Claims::Yes(members) => refuse_when(&[
            ("NOT EXISTS (SELECT 1 FROM record)", "already_drawn"),
            (&format!("(SELECT COUNT(*) FROM outcomes) <> {}", members.len()), "members_changed"),
            (&format!("{moved} <> {}", posting.moves()), "insufficient_funds"),
            (&format!("{recorded} <> {}", decided.refunds.len()), "unrecorded"),
        ]),
    };
    let main = sql(format!(
        "SELECT (SELECT COUNT(*) FROM outcomes) AS covered, {moved} AS moved, {recorded} AS recorded,
             {refused} AS refused, record.*
         FROM (SELECT 1) AS one LEFT JOIN record ON TRUE"
    ));
    (Sql::with(clauses, main), posting)
}

fn unrecorded() -> StoreError {
    StoreError::Inconsistent("a refund was not recorded".into())
}

/// The group's record: the digest of its participants and the winners' seqs.
fn record(row: &GroupRow, decided: &DrawPlan) -> Sql {
    let winners = decided.winners.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    sql(format!("UPDATE groups SET participants_digest = $2, winners = $3 WHERE id = $1 RETURNING {GROUP_COLUMNS}"))
        .bind(&row.id)
        .bind(&decided.participants_digest)
        .bind(winners)
}

/// The group's record with its move from `full` to `drawn` (no row when it is no longer full).
fn claim_and_record(row: &GroupRow, decided: &DrawPlan, now: Millis) -> Sql {
    let winners = decided.winners.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    sql(format!(
        "UPDATE groups SET status = 'drawn', drawn_at = $4, participants_digest = $2, winners = $3
         WHERE id = $1 AND status = 'full' RETURNING {GROUP_COLUMNS}"
    ))
    .bind(&row.id)
    .bind(&decided.participants_digest)
    .bind(winners)
    .bind(now.0)
}

/// `outcomes` restricted to the members `ids` (those the plan was made from).
fn only_members(outcomes: Sql, ids: &[String]) -> Sql {
    let first = outcomes.arg_count() + 1;
    let list = (first..first + ids.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
    ids.iter().fold(outcomes.followed_by(&format!(" AND id IN ({list})")), |q, id| q.bind(id.as_str()))
}

/// Every member's outcome.
fn outcomes(row: &GroupRow, decided: &DrawPlan) -> Sql {
    let seqs = (0..decided.winners.len()).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
    let mut outcomes = sql(format!(
        "UPDATE memberships SET status = CASE WHEN seq IN ({seqs}) THEN 'won' ELSE 'lost' END
         WHERE group_id = $1 AND status = 'waiting'"
    ))
    .bind(&row.id);
    for seq in &decided.winners {
        outcomes = outcomes.bind(*seq);
    }
    outcomes
}

/// K units from reserved to won.
fn stock(row: &GroupRow) -> Sql {
    sql("UPDATE campaigns SET reserved_units = reserved_units - $2, won_units = won_units + $2 WHERE id = $1")
        .bind(&row.campaign_id)
        .bind(row.winners_per_group)
}
