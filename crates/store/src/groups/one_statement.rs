//! PostgreSQL's join-by-campaign: the participation, the seat, the hold and the membership in one statement.
//!
//! Joins of one group queue on the group's row, which a seat holds until its transaction commits, so every round
//! trip between the seat and the commit is one that every other joiner of that group waits for. Here they are the
//! clauses of one data-modifying `WITH`, and only the commit follows the seat. The clauses take their locks in
//! the global order: the participation first (the seat requires its row), then the group, then the balances (the
//! money requires the seat). When no seat was taken only the participation was written, and the caller goes on to
//! open a group in the same transaction.

use super::{Admission, FROM_CLOSEST_GROUP, GroupRow, MemberRow, membership_in_chosen_seat};
use super::{count_participation, seat_in};
use crate::db::{Conn, Sql, sql};
use crate::idempotency::{attach_resource_when, claim_sql};
use crate::ledger::Posting;
use crate::{StoreError, StoreResult, new_id};
use tuangou_domain::ledger::join_entry;

/// What every clause after the seat requires.
const SEATED: &str = "EXISTS (SELECT 1 FROM seat)";

/// Takes the key (when there is one) and the participation, then, in the open group closest to full that has a
/// seat for the customer, the seat with the hold and the membership. `Ok(None)`: no open group had a seat (the key
/// and the participation are written, nothing else). Refusals: `idempotency_key_exists`, `limit_reached`,
/// insufficient funds, `already_member` (the customer's own concurrent join took a seat in that group first).
pub(super) async fn join_closest(conn: &mut Conn<'_>, a: &Admission) -> StoreResult<Option<(GroupRow, MemberRow)>> {
    let membership_id = new_id();
    let (posting_statements, posting) =
        Posting::guarded(&[join_entry(&membership_id, &a.user, a.price)], a.now, SEATED);
    let [entries, postings, moves]: [Sql; 3] = posting_statements
        .try_into()
        .map_err(|_| StoreError::Inconsistent("a join's hold is one entry of two postings".into()))?;
    let mut clauses = vec![
        ("p".to_owned(), count_participation(a).followed_by(" RETURNING 1")),
        // The seat's candidate carries the condition that orders the locks: no seat before the participation.
        ("seat".to_owned(), seat_in(&format!("(SELECT g.id {FROM_CLOSEST_GROUP}) AND EXISTS (SELECT 1 FROM p)"), a)),
        ("entries".to_owned(), entries),
        ("postings".to_owned(), postings),
        ("moves".to_owned(), moves),
        ("member".to_owned(), membership(&membership_id, a)),
    ];
    if let Some(claim) = &a.idempotency {
        clauses.push(("resource".to_owned(), attach_resource_when(claim, &membership_id, SEATED)));
    }
    let main = sql("SELECT (SELECT COUNT(*) FROM p) AS counted, (SELECT COUNT(*) FROM seat) AS seated,
                (SELECT COUNT(*) FROM moves) AS moved, seat.*
         FROM (SELECT 1) AS one LEFT JOIN seat ON TRUE");
    let mut statements: Vec<Sql> = a.idempotency.iter().map(|claim| claim_sql(claim, a.now)).collect();
    statements.push(Sql::with(clauses, main));
    let mut ran = conn.run(statements).await;
    if a.idempotency.is_some() {
        ran.next().map_err(crate::unique_violation_as("idempotency_key_exists"))?;
    }
    let done = ran.next().map_err(crate::unique_violation_as("already_member"))?;
    let (counted, seated, moved): (i64, i64, i64) = done.row()?.ok_or(StoreError::NotFound)?;
    if counted == 0 {
        return Err(StoreError::Conflict("limit_reached"));
    }
    if seated == 0 {
        return Ok(None);
    }
    posting.check_moved(moved)?;
    let group: GroupRow = done.row()?.ok_or(StoreError::NotFound)?;
    let member = MemberRow {
        id: membership_id,
        group_id: group.id.clone(),
        campaign_id: a.campaign.as_str().to_owned(),
        user_id: a.user.as_str().to_owned(),
        seq: group.member_count,
        ticket: a.ticket.clone(),
        client_seed: a.client_seed.clone(),
        invited_by: a.invited_by.clone(),
        price: a.price.get(),
        status: "waiting".into(),
        created_at: a.now.0,
    };
    Ok(Some((group, member)))
}

/// The membership in the seat the `seat` clause took (its seq is the group's new count).
fn membership(id: &str, a: &Admission) -> Sql {
    membership_in_chosen_seat(id, a, ["seat.id", "seat.member_count"], "FROM seat")
}
