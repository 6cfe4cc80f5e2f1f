//! Writing what a draw decided: the group's record, every member's outcome (K ≥ 1, so the list of winners is
//! never empty), the stock (K units from reserved to won), the money, the vouchers and the refunds.
//!
//! One batch on SQLite. On PostgreSQL one statement (clauses of a data-modifying `WITH`): the draw holds the
//! campaign's row from its stock update to its commit, and joiners opening groups of that campaign queue on that
//! row, so nothing but the commit follows it. The money's clauses require the stock's, so the balances are still
//! locked after the campaign (the global order). The refunds' records are clauses too (a round trip each when
//! they followed as statements of their own).

use super::{DrawPlan, GROUP_COLUMNS, GroupRow};
use crate::db::{Backend, Conn, Sql, sql};
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
    let vouchers = crate::vouchers::issue_all(&campaign.merchant_id, &campaign.id, &decided.vouchers, now);
    let drawn = match conn.backend() {
        Backend::Sqlite => {
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
            let (money, moved, posting) = Posting::clauses(&decided.entries, now, "EXISTS (SELECT 1 FROM stock)");
            let mut clauses = vec![
                ("outcomes".to_owned(), outcomes(row, decided).followed_by(" RETURNING 1")),
                ("stock".to_owned(), stock(row).followed_by(" RETURNING 1")),
            ];
            clauses.extend(money);
            clauses.extend(vouchers.into_iter().enumerate().map(|(i, v)| (format!("vouchers{i}"), v)));
            let refunds: Vec<String> = (0..decided.refunds.len()).map(|i| format!("refund{i}")).collect();
            for (name, refund) in refunds.iter().zip(&decided.refunds) {
                clauses.push((name.clone(), record_sql(refund, now).followed_by(" RETURNING 1")));
            }
            clauses.push(("record".to_owned(), record(row, decided)));
            let recorded = refunds.iter().map(|name| format!(" + (SELECT COUNT(*) FROM {name})")).collect::<String>();
            let main = sql(format!(
                "SELECT (SELECT COUNT(*) FROM outcomes) AS covered, {moved} AS moved, CAST(0{recorded} AS BIGINT) AS recorded, record.*
                 FROM record"
            ));
            let done = conn.run(vec![Sql::with(clauses, main)]).await.next()?;
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
