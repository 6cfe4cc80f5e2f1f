//! PostgreSQL's join-by-campaign from the wallet: a seat (or a new group) with the hold and the membership in one
//! statement. (A join that pays through a provider takes the plain path in `groups.rs`: it writes no hold.)
//!
//! Joins of one group queue on the group's row, which a seat holds until its transaction commits, and openers of
//! one campaign queue on the campaign's row; every round trip between taking such a row and the commit is one
//! that everyone queued behind it waits for. Here the writes that follow a hot lock are the clauses of one
//! data-modifying `WITH`, and only the commit follows. The clauses take their locks in the global order: each
//! requires the clause whose lock must come first (the seat requires the participation, the money requires the
//! seat), and a clause that requires another runs after it.

use super::seat_violation;
use super::{Admission, FROM_CLOSEST_GROUP, GROUP_COLUMNS, GroupRow, MemberRow, NewGroup, Seated};
use super::{count_participation, insert_group, membership_insert, seat_in};
use crate::db::{Conn, Sql, refusal_of, refuse_when, sql};
use crate::idempotency::{attach_resource_sql, claim_sql, claim_with_resource_sql};
use crate::ledger::Posting;
use crate::{StoreError, StoreResult, new_id, unique_violation_as};
use tuangou_domain::ledger::join_entry;

/// How a join's statement runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Runs {
    /// Inside the unit's transaction, the key's insert before it: a statement that finds no seat leaves the key
    /// and the participation written and the unit goes on (reserves stock, opens a group); the unit's commit
    /// follows, or its rollback on a refusal the caller reads from the statement's counts.
    InTheUnit,
    /// As its own transaction ([`crate::Store::write_in_one_statement`]: one round trip), the key's insert one of
    /// its clauses: whatever must not happen it refuses itself ([`refuse_when`]), so it commits only a whole
    /// join, and a join that finds no seat leaves nothing and goes to the unit.
    AsItsOwnTransaction,
}

/// Takes the key (when there is one) and the participation, then, in the open group closest to full that has a
/// seat for the customer, the seat with the hold and the membership, and reads the group's other members for the
/// answer. `Ok(None)`: no open group had a seat in the statement's snapshot (in the unit: the key and the
/// participation are written, nothing else; as its own transaction: nothing), or, as its own transaction, it met
/// a race the unit resolves (a deadlock's victim, a seat taken meanwhile). Refusals: `idempotency_key_exists`,
/// `limit_reached`, insufficient funds, `already_member` (in the unit: the customer's own concurrent join took a
/// seat in that group first).
pub(super) async fn join_closest(conn: &mut Conn<'_>, a: &Admission, runs: Runs) -> StoreResult<Option<Seated>> {
    let membership_id = new_id();
    let own_key = runs == Runs::AsItsOwnTransaction && a.idempotency.is_some();
    let mut clauses = Vec::new();
    if let (true, Some(claim)) = (own_key, &a.idempotency) {
        // With its resource: the statement commits only with the membership.
        let key = claim_with_resource_sql(claim, a.now, Some(&membership_id));
        clauses.push(("key".to_owned(), key.followed_by(" RETURNING 1")));
    }
    // Each clause requires the one whose lock comes before its own: the key, the participation, the seat.
    let after_key = own_key.then_some("EXISTS (SELECT 1 FROM key)");
    clauses.push(("p".to_owned(), count_participation(a, after_key).followed_by(" RETURNING 1")));
    clauses.push((
        "seat".to_owned(),
        seat_in(&format!("(SELECT g.id {FROM_CLOSEST_GROUP}) AND EXISTS (SELECT 1 FROM p)"), a),
    ));
    let (moved, posting) = admission_clauses(&mut clauses, "seat", &membership_id, a, !own_key);
    let refused = match runs {
        Runs::InTheUnit => "0".to_owned(),
        Runs::AsItsOwnTransaction => refuse_when(&[
            ("NOT EXISTS (SELECT 1 FROM p)", "limit_reached"),
            ("NOT EXISTS (SELECT 1 FROM seat)", NO_SEAT),
            (&format!("{moved} <> {}", posting.moves()), "insufficient_funds"),
        ]),
    };
    // A row per member the statement's snapshot holds (one row, with no member, when there is none).
    let main = sql(format!(
        "SELECT (SELECT COUNT(*) FROM p) AS counted, (SELECT COUNT(*) FROM seat) AS seated, {moved} AS moved,
             {refused} AS refused, seat.*, {SEEN_COLUMNS}
         FROM (SELECT 1) AS one LEFT JOIN seat ON TRUE
             LEFT JOIN memberships m ON m.group_id = seat.id AND m.status <> 'unpaid'
         ORDER BY m.seq"
    ));
    let mut statements: Vec<Sql> =
        a.idempotency.iter().filter(|_| !own_key).map(|claim| claim_sql(claim, a.now)).collect();
    statements.push(Sql::with(clauses, main));
    let mut ran = conn.run(statements).await;
    if a.idempotency.is_some() && !own_key {
        ran.next().map_err(unique_violation_as("idempotency_key_exists"))?;
    }
    let done = match ran.next() {
        Ok(done) => done,
        Err(error) if runs == Runs::AsItsOwnTransaction => return refused_whole(error, posting),
        Err(error) => return Err(seat_violation(error)),
    };
    let (counted, seated, moved): (i64, i64, i64) = done.row()?.ok_or(StoreError::NotFound)?;
    if counted == 0 {
        return Err(StoreError::Conflict("limit_reached"));
    }
    if seated == 0 {
        return Ok(None);
    }
    posting.check_moved(moved)?;
    let group: GroupRow = done.row()?.ok_or(StoreError::NotFound)?;
    let member = member_row(membership_id, &group, a);
    let seen = done.rows::<SeenMember>()?.into_iter().filter_map(|seen| seen.member(&group)).collect();
    Ok(Some(Seated::with_others(group, member, seen)))
}

/// The refusal of a join that found no seat in its own transaction.
const NO_SEAT: &str = "no_seat";

/// How a join that ran as its own transaction failed, all of it undone: a refusal to answer, or `None` when the
/// unit should do the join (no seat, or a race the unit runs again from).
fn refused_whole(error: sqlx::Error, posting: Posting) -> StoreResult<Option<Seated>> {
    match refusal_of(&error).as_deref() {
        Some("limit_reached") => return Err(StoreError::Conflict("limit_reached")),
        Some("insufficient_funds") => return Err(posting.insufficient_funds()),
        Some(_) => return Ok(None),
        None => {}
    }
    if matches!(&error, sqlx::Error::Database(db) if db.constraint() == Some("idempotency_keys_pkey")) {
        return Err(StoreError::Conflict("idempotency_key_exists"));
    }
    match seat_violation(error) {
        StoreError::RunAgain(_) | StoreError::Conflict("already_member") => Ok(None),
        other if other.runs_again() => Ok(None),
        other => Err(other),
    }
}

/// The members' columns a join's statement reads beside the group's, named apart from them.
const SEEN_COLUMNS: &str = "m.id AS seen_id, m.user_id AS seen_user_id, m.seq AS seen_seq, m.ticket AS seen_ticket,
     m.client_seed AS seen_client_seed, m.invited_by AS seen_invited_by, m.price AS seen_price,
     m.status AS seen_status, m.created_at AS seen_created_at, m.paid_with AS seen_paid_with, m.pay_by AS seen_pay_by";

/// A member of the group as the join's statement saw it ([`SEEN_COLUMNS`]; all absent on the row of a group
/// that had no other member).
#[derive(sqlx::FromRow)]
struct SeenMember {
    seen_id: Option<String>,
    seen_user_id: Option<String>,
    seen_seq: Option<i64>,
    seen_ticket: Option<String>,
    seen_client_seed: Option<String>,
    seen_invited_by: Option<String>,
    seen_price: Option<i64>,
    seen_status: Option<String>,
    seen_created_at: Option<i64>,
    seen_paid_with: Option<String>,
    seen_pay_by: Option<i64>,
}
crate::sqlite_sql::from_values!(SeenMember {
    seen_id,
    seen_user_id,
    seen_seq,
    seen_ticket,
    seen_client_seed,
    seen_invited_by,
    seen_price,
    seen_status,
    seen_created_at,
    seen_paid_with,
    seen_pay_by
});

impl SeenMember {
    fn member(self, group: &GroupRow) -> Option<MemberRow> {
        Some(MemberRow {
            id: self.seen_id?,
            group_id: group.id.clone(),
            campaign_id: group.campaign_id.clone(),
            user_id: self.seen_user_id?,
            seq: self.seen_seq?,
            ticket: self.seen_ticket?,
            client_seed: self.seen_client_seed?,
            invited_by: self.seen_invited_by,
            price: self.seen_price?,
            status: self.seen_status?,
            created_at: self.seen_created_at?,
            paid_with: self.seen_paid_with?,
            pay_by: self.seen_pay_by,
        })
    }
}

/// For a joiner that found no seat and then reserved the stock of a new group (so it holds the campaign's row):
/// looks again, in this statement's fresh snapshot, for an open group with a seat that no one holds, and takes
/// the seat, giving the stock back; else opens the group. Then the hold and the membership. Groups that another
/// transaction holds are skipped, not waited for: waiting for a group while holding the campaign would take the
/// two locks in the opposite order to a group's expiry. So a burst of joiners fills groups, one opener at a time,
/// rather than opening one each.
pub(super) async fn take_unlocked_or_open(conn: &mut Conn<'_>, group: &NewGroup, a: &Admission) -> StoreResult<Seated> {
    let membership_id = new_id();
    let mut clauses = vec![
        (
            "seat".to_owned(),
            seat_in(&format!("(SELECT g.id {FROM_CLOSEST_GROUP} FOR NO KEY UPDATE SKIP LOCKED)"), a),
        ),
        (
            "give_back".to_owned(),
            sql("UPDATE campaigns SET reserved_units = reserved_units - $2 WHERE id = $1 AND EXISTS (SELECT 1 FROM seat)")
                .bind(a.campaign.as_str())
                .bind(group.winners_per_group),
        ),
        ("opened".to_owned(), insert_group(&new_id(), group, a, Some("NOT EXISTS (SELECT 1 FROM seat)"))),
        (
            "chosen".to_owned(),
            sql(format!("SELECT {GROUP_COLUMNS} FROM seat UNION ALL SELECT {GROUP_COLUMNS} FROM opened")),
        ),
    ];
    let (moved, posting) = admission_clauses(&mut clauses, "chosen", &membership_id, a, true);
    let main = sql(format!("SELECT {moved} AS moved, chosen.* FROM chosen"));
    let done = conn.run(vec![Sql::with(clauses, main)]).await.next().map_err(seat_violation)?;
    let (moved,): (i64,) = done.row()?.ok_or(StoreError::NotFound)?;
    posting.check_moved(moved)?;
    let joined: GroupRow = done.row()?.ok_or(StoreError::NotFound)?;
    let member = member_row(membership_id, &joined, a);
    Ok(Seated::from((joined, member)))
}

/// Adds the clauses that admit `a` to the seat the clause `seat` names (a row with the group's columns, its
/// `last_seq` the new member's seq): the hold, the membership, and (`attach_key`: when an earlier statement
/// claimed it) the idempotency key's resource. Each writes only when that seat exists. Returns the SQL that
/// counts the balance rows the hold moved, and how to check it.
fn admission_clauses(
    clauses: &mut Vec<(String, Sql)>,
    seat: &str,
    membership_id: &str,
    a: &Admission,
    attach_key: bool,
) -> (String, Posting) {
    let seated = format!("EXISTS (SELECT 1 FROM {seat})");
    let (money, moved, posting) = Posting::clauses(&[join_entry(membership_id, &a.user, a.price)], a.now, &seated);
    clauses.extend(money);
    let (group, seq) = (format!("{seat}.id"), format!("{seat}.last_seq"));
    let member = membership_insert(membership_id, a, None, [&group, &seq], &format!("FROM {seat}"));
    clauses.push(("member".to_owned(), member));
    if let (true, Some(claim)) = (attach_key, &a.idempotency) {
        clauses.push(("resource".to_owned(), attach_resource_sql(claim, membership_id, Some(&seated))));
    }
    (moved, posting)
}

/// The membership the clauses wrote, as stored (every field is known before the statement but the group and seq).
fn member_row(id: String, group: &GroupRow, a: &Admission) -> MemberRow {
    MemberRow {
        id,
        group_id: group.id.clone(),
        campaign_id: a.campaign.as_str().to_owned(),
        user_id: a.user.as_str().to_owned(),
        seq: group.last_seq,
        ticket: a.ticket.clone(),
        client_seed: a.client_seed.clone(),
        invited_by: a.invited_by.clone(),
        price: a.price.get(),
        status: "waiting".into(),
        created_at: a.now.0,
        paid_with: "wallet".into(),
        pay_by: None,
    }
}
