//! SQLite's join-by-campaign in one call to the writer's thread.
//!
//! On SQLite the writer's time is mostly round trips to its connection's thread, one per call, and the join is
//! the hot path. Here the whole common case goes in one batch: the idempotency key, the participation, the look
//! for the open group closest to full, the seat, the hold and the membership. The statements cannot pass values
//! to each other, so the look writes the chosen group and the seat it expects into a temporary table of the
//! writer's connection, which the seat update and the membership read; the membership is only written when the
//! seat update took that very seat (`member_count = seq`). Everything after the participation runs inside a
//! nested savepoint, so when no seat was taken the money and the membership are undone and the caller goes on
//! to open a group, with the key and the participation already counted. PostgreSQL, which cannot take several
//! statements with arguments in one message, does the same in one statement ([`super::one_statement`]).

use super::{Admission, Admitted, FROM_CLOSEST_GROUP, GroupRow, MEMBER_COLUMNS, MemberRow, membership_insert};
use super::{check_preamble, join_preamble, seat_in};
use crate::db::{Backend, Conn, Sql, sql};
use crate::idempotency::attach_resource_sql;
use crate::ledger::Posting;
use crate::{StoreError, StoreResult, new_id};
use tuangou_domain::ledger::join_entry;

/// The seat the look chose, for the statements after it (a temporary table lives with the writer's connection).
const SEAT_TABLE: &str = "CREATE TEMP TABLE IF NOT EXISTS tuangou_seat (group_id TEXT NOT NULL, seq INTEGER NOT NULL)";

/// Takes the key, the participation and, when there is one, a seat with the hold and the membership, in one
/// call. `Ok(None)`: no open group had a seat (only the key and the participation stay).
pub(super) async fn join_closest(conn: &mut Conn<'_>, a: &Admission) -> StoreResult<Option<(GroupRow, MemberRow)>> {
    let membership_id = new_id();
    let (posting_statements, posting) =
        Posting::of(Backend::Sqlite, &[join_entry(&membership_id, &a.user, a.price)], a.now);
    let mut statements = join_preamble(a);
    statements.extend([
        sql(SEAT_TABLE),
        sql("DELETE FROM temp.tuangou_seat"),
        sql("SAVEPOINT tuangou_seat"),
        sql(format!(
            "INSERT INTO temp.tuangou_seat (group_id, seq) SELECT g.id, g.member_count + 1 {FROM_CLOSEST_GROUP}"
        ))
        .bind(a.campaign.as_str())
        .bind(a.now.0)
        .bind(None::<i64>)
        .bind(a.user.as_str()),
        seat_in("(SELECT group_id FROM temp.tuangou_seat)", a).must_change(1),
    ]);
    statements.extend(posting_statements);
    statements.push(membership(&membership_id, a));
    if let Some(claim) = &a.idempotency {
        statements.push(attach_resource_sql(claim, &membership_id, None));
    }
    let mut ran = conn.run(statements).await;
    check_preamble(&mut ran, a)?;
    for _ in 0..4 {
        ran.next()?; // the seat table, emptied, the savepoint, the look
    }
    let Some(seat) = ran.next_met()? else {
        drop(ran);
        let undo = vec![sql("ROLLBACK TO SAVEPOINT tuangou_seat"), sql("RELEASE SAVEPOINT tuangou_seat")];
        let mut undone = conn.run(undo).await;
        undone.next()?;
        undone.next()?;
        return Ok(None);
    };
    let row: GroupRow = seat.row()?.ok_or(StoreError::NotFound)?;
    let member = Admitted { posting, keyed: a.idempotency.is_some() }.check(&mut ran)?;
    Ok(Some((row, member)))
}

/// The membership in the seat the look chose, written only if the seat update took it.
fn membership(id: &str, a: &Admission) -> Sql {
    membership_insert(
        id,
        a,
        ["s.group_id", "s.seq"],
        &format!(
            "FROM temp.tuangou_seat s JOIN groups g ON g.id = s.group_id AND g.member_count = s.seq
             RETURNING {MEMBER_COLUMNS}"
        ),
    )
}
