//! Groups and memberships (S2, S3): opening, joining, drawing and expiring, each one unit of work.
//!
//! Every transaction here takes its row locks in one order: the customer's participation row, then the group,
//! then the campaign, then balances (by account key). Joins of one group serialize on the group's row; stock
//! serializes on the campaign's row; a seat or a unit is taken by a conditional update that re-checks the rule
//! it guards (`member_count < group_size`, `reserved + won + K <= quantity`), never by read-then-write.

mod one_statement;
use one_statement::Runs;
mod outcome;

use crate::campaigns::CAMPAIGN_COLUMNS;
use crate::db::{Backend, Conn, Ran, Sql, sql};
use crate::idempotency::{IdempotencyClaim, attach_resource_sql, claim_sql};
use crate::ledger::{Posting, post_all};
use crate::payments::insert_payment_sql;
use crate::refunds::NewRefund;
use crate::{CampaignRow, NewPayment, Store, StoreError, StoreResult, new_id};
use tuangou_domain::ids::{CampaignId, GroupId, UserId};
use tuangou_domain::ledger::{Entry, Hold, PaidFrom, expiry_refunds, join_entry};
use tuangou_domain::money::Fen;
use tuangou_domain::time::Millis;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GroupRow {
    pub id: String,
    pub campaign_id: String,
    pub status: String,
    pub group_size: i64,
    pub winners_per_group: i64,
    pub member_count: i64,
    pub server_seed: String,
    pub seed_commitment: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub full_at: Option<i64>,
    pub draw_due_at: Option<i64>,
    pub drawn_at: Option<i64>,
    pub participants_digest: Option<String>,
    pub winners: Option<String>,
    pub expired_at: Option<i64>,
    /// Seats paid for; the group fills when they reach `group_size` (`member_count` counts pending seats too).
    pub paid_count: i64,
    /// Seqs below `member_count + released_seats` that no held seat has: released seats, for the next joiners.
    pub released_seats: i64,
    /// The seq of the last seat taken.
    pub last_seq: i64,
}
crate::sqlite_sql::from_values!(GroupRow {
    id,
    campaign_id,
    status,
    group_size,
    winners_per_group,
    member_count,
    server_seed,
    seed_commitment,
    created_at,
    expires_at,
    full_at,
    draw_due_at,
    drawn_at,
    participants_digest,
    winners,
    expired_at,
    paid_count,
    released_seats,
    last_seq
});

impl GroupRow {
    pub fn group_id(&self) -> GroupId {
        GroupId::from_trusted(&self.id)
    }

    pub fn campaign(&self) -> CampaignId {
        CampaignId::from_trusted(&self.campaign_id)
    }

    /// The drawn winners' seqs, ascending.
    pub fn winner_seqs(&self) -> Vec<i64> {
        self.winners.as_deref().unwrap_or("").split(',').filter_map(|s| s.parse().ok()).collect()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub id: String,
    pub group_id: String,
    pub campaign_id: String,
    pub user_id: String,
    pub seq: i64,
    pub ticket: String,
    pub client_seed: String,
    pub invited_by: Option<String>,
    pub price: i64,
    /// `pending` (seat held for a payment), `waiting`, `won`, `lost`, `expired`, `unpaid` (seat released).
    pub status: String,
    pub created_at: i64,
    /// `wallet`, or the provider that took (or is to take) the money.
    pub paid_with: String,
    /// Until when a pending seat is held.
    pub pay_by: Option<i64>,
}
crate::sqlite_sql::from_values!(MemberRow {
    id,
    group_id,
    campaign_id,
    user_id,
    seq,
    ticket,
    client_seed,
    invited_by,
    price,
    status,
    created_at,
    paid_with,
    pay_by
});

impl MemberRow {
    pub fn user(&self) -> UserId {
        UserId::from_trusted(&self.user_id)
    }

    /// Where this member's money came from (and where a refund of it goes).
    pub fn paid_from(&self) -> PaidFrom {
        PaidFrom::from_stored(&self.paid_with)
    }

    /// Whether the seat is still held (pending, or paid): a released seat (`unpaid`) is not a member any more.
    pub fn holds_seat(&self) -> bool {
        self.status != "unpaid"
    }
}

/// A seat taken: the group as the join left it, the new membership, and the group's members up to that seat when
/// the join's own statements saw them all (`None`: read them after the join).
#[derive(Debug, Clone)]
pub struct Seated {
    pub group: GroupRow,
    pub member: MemberRow,
    pub members: Option<Vec<MemberRow>>,
}

impl Seated {
    /// `member` with the `others` the join saw: whole only when they hold every seat the group counts, and are
    /// paid as often as it counts paid seats. A statement that waited for the group's row reads with a snapshot
    /// older than the lock, so it can miss a member who joined, was released or paid meanwhile; they are read
    /// again then.
    pub(crate) fn with_others(group: GroupRow, member: MemberRow, mut others: Vec<MemberRow>) -> Self {
        others.push(member.clone());
        others.sort_by_key(|m| m.seq);
        let paid = others.iter().filter(|m| m.status != "pending").count();
        let whole = others.len() as i64 == group.member_count && paid as i64 == group.paid_count;
        Self { group, member, members: whole.then_some(others) }
    }
}

/// A seat whose join saw no other member: whole when it is the group's only held seat (a group it opened).
impl From<(GroupRow, MemberRow)> for Seated {
    fn from((group, member): (GroupRow, MemberRow)) -> Self {
        Self::with_others(group, member, Vec::new())
    }
}

/// One customer into one group, as the app decided it.
#[derive(Debug, Clone)]
pub struct Admission {
    pub campaign: CampaignId,
    pub user: UserId,
    pub ticket: String,
    pub client_seed: String,
    pub invited_by: Option<String>,
    pub price: Fen,
    pub per_customer_limit: i64,
    /// When the group must be drawn at the latest if this member fills it.
    pub draw_due_if_full: Millis,
    pub now: Millis,
    pub idempotency: Option<IdempotencyClaim>,
    /// `None`: paid from the wallet in the join itself. `Some`: the seat is held (`pending`) for this payment.
    pub payment: Option<SeatPayment>,
}

/// A payment through a provider that a pending seat waits for: made in the join's unit, `created`, sent to the
/// provider after it.
#[derive(Debug, Clone)]
pub struct SeatPayment {
    pub id: String,
    pub provider: String,
    pub description: String,
    /// The end of the payment window; the seat is held until then or the group's own deadline, whichever is first.
    pub pay_by: Millis,
}

impl Admission {
    /// 1 when the join pays in full now (from the wallet), 0 when its seat waits for a payment.
    fn paid_now(&self) -> i64 {
        i64::from(self.payment.is_none())
    }
}

/// A group to open, with its committed seed.
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub group_size: i64,
    pub winners_per_group: i64,
    pub server_seed: String,
    pub seed_commitment: String,
    pub expires_at: Millis,
}

/// What a draw decided, computed by the app from the group and its members: the outcome, the money it moves
/// (captures, refunds, rewards, referral bonuses) and the vouchers it issues (purchases for winners, coupons for
/// those not drawn when that is the reward).
#[derive(Debug, Clone)]
pub struct DrawPlan {
    pub participants_digest: String,
    pub winners: Vec<i64>,
    pub entries: Vec<Entry>,
    pub vouchers: Vec<crate::vouchers::NewVoucher>,
    /// The refunds of those not drawn (to the wallet, or owed through the provider that took the money).
    pub refunds: Vec<crate::refunds::NewRefund>,
}

/// The members of a campaign whose tickets a group's members named as `invited_by`: ticket → user.
pub type Inviters = std::collections::HashMap<String, UserId>;

/// How a draw's outcome is decided from the group, its members, its campaign and the inviters they named (the
/// app's rules: the store only writes what it decides).
pub trait PlanDraw:
    Fn(&GroupRow, &[MemberRow], &CampaignRow, &Inviters) -> StoreResult<DrawPlan> + Send + Sync + 'static
{
}
impl<F> PlanDraw for F where
    F: Fn(&GroupRow, &[MemberRow], &CampaignRow, &Inviters) -> StoreResult<DrawPlan> + Send + Sync + 'static
{
}

pub(crate) const GROUP_COLUMNS: &str = "id, campaign_id, status, group_size, winners_per_group, member_count, server_seed, \
     seed_commitment, created_at, expires_at, full_at, draw_due_at, drawn_at, participants_digest, winners, expired_at, \
     paid_count, released_seats, last_seq";
pub(crate) const MEMBER_COLUMNS: &str = "id, group_id, campaign_id, user_id, seq, ticket, client_seed, invited_by, price, \
     status, created_at, paid_with, pay_by";

async fn group_in(conn: &mut Conn<'_>, id: &str) -> StoreResult<Option<GroupRow>> {
    Ok(conn.fetch_optional(sql(format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = $1")).bind(id)).await?)
}

async fn members_in(conn: &mut Conn<'_>, group: &str) -> StoreResult<Vec<MemberRow>> {
    Ok(conn
        .fetch_all(
            sql(format!(
                "SELECT {MEMBER_COLUMNS} FROM memberships WHERE group_id = $1 AND status <> 'unpaid' ORDER BY seq"
            ))
            .bind(group),
        )
        .await?)
}

/// Counts one more membership of the campaign for the customer, unless that would pass the limit: changes no
/// row then (`limit_reached`). With `only_if`, only when that condition holds (a clause of a larger statement).
fn count_participation(a: &Admission, only_if: Option<&str>) -> Sql {
    // SQLite reads `INSERT … SELECT … ON CONFLICT` only when the SELECT has a WHERE.
    let source = match only_if {
        None => "VALUES ($1, $2, 1)".to_owned(),
        Some(condition) => format!("SELECT $1, $2, 1 WHERE {condition}"),
    };
    sql(format!(
        "INSERT INTO participations (campaign_id, user_id, active) {source}
         ON CONFLICT (campaign_id, user_id) DO UPDATE SET active = participations.active + 1
         WHERE participations.active < $3"
    ))
    .bind(a.campaign.as_str())
    .bind(a.user.as_str())
    .bind(a.per_customer_limit)
    .must_change(1)
}

/// The first statements of every join, sent with the look for a seat: the idempotency key when there is one, then
/// the participation.
fn join_preamble(a: &Admission) -> Vec<Sql> {
    let mut statements: Vec<Sql> = a.idempotency.iter().map(|claim| claim_sql(claim, a.now)).collect();
    statements.push(count_participation(a, None));
    statements
}

/// Reads what [`join_preamble`]'s statements did: `idempotency_key_exists`, `limit_reached`, or go on.
fn check_preamble(ran: &mut Ran, a: &Admission) -> StoreResult<()> {
    if a.idempotency.is_some() {
        ran.next().map_err(crate::unique_violation_as("idempotency_key_exists"))?;
    }
    match ran.next_met()? {
        Some(_) => Ok(()),
        None => Err(StoreError::Conflict("limit_reached")),
    }
}

/// The statements that admit a member to the seat `seq` of the group `group` (whose deadline is `group_expires`):
/// paid from the wallet, the price into the customer's hold; paid through a provider, the seat held (`pending`)
/// with its payment made `created`; then the membership, and the idempotency key's resource. See
/// [`Admitted::check`].
fn admit(backend: Backend, group: &str, seq: i64, group_expires: Millis, a: &Admission) -> (Vec<Sql>, Admitted) {
    let membership_id = new_id();
    let entries = match &a.payment {
        None => vec![join_entry(&membership_id, &a.user, a.price)],
        Some(_) => Vec::new(),
    };
    let (mut statements, posting) = Posting::of(backend, &entries, a.now);
    let returning = format!("RETURNING {MEMBER_COLUMNS}");
    let pay_by = a.payment.as_ref().map(|p| p.pay_by.min(group_expires));
    statements.push(membership_insert(&membership_id, a, pay_by, ["$12", "$13"], &returning).bind(group).bind(seq));
    if let (Some(payment), Some(pay_by)) = (&a.payment, pay_by) {
        statements.push(insert_payment_sql(&seat_payment(payment, &membership_id, pay_by, a), a.now));
    }
    if let Some(claim) = &a.idempotency {
        statements.push(attach_resource_sql(claim, &membership_id, None));
    }
    (statements, Admitted { posting, keyed: a.idempotency.is_some(), pays_later: a.payment.is_some() })
}

/// The payment a pending seat waits for, as our `payments` row.
fn seat_payment(payment: &SeatPayment, membership: &str, pay_by: Millis, a: &Admission) -> NewPayment {
    NewPayment {
        id: payment.id.clone(),
        provider: payment.provider.clone(),
        user: a.user.clone(),
        membership: Some(membership.to_owned()),
        amount: a.price,
        description: payment.description.clone(),
        expires_at: pay_by,
    }
}

/// The membership `id` of `a` (`pending` until `pay_by` when it waits for a payment): `group` and `seq` are the
/// SQL of the group's id and the seat's seq (placeholders after the eleven this binds, or columns of a seat
/// another part of the same call chose), `rest` what follows the select list (a `FROM …` clause, `RETURNING …`).
fn membership_insert(id: &str, a: &Admission, pay_by: Option<Millis>, [group, seq]: [&str; 2], rest: &str) -> Sql {
    let (status, paid_with) = match &a.payment {
        None => ("waiting", "wallet"),
        Some(payment) => ("pending", payment.provider.as_str()),
    };
    sql(format!(
        "INSERT INTO memberships ({MEMBER_COLUMNS})
         SELECT $1, {group}, $2, $3, {seq}, $4, $5, $6, $7, $9, $8, $10, $11 {rest}"
    ))
    .bind(id)
    .bind(a.campaign.as_str())
    .bind(a.user.as_str())
    .bind(&a.ticket)
    .bind(&a.client_seed)
    .bind(a.invited_by.clone())
    .bind(a.price.get())
    .bind(a.now.0)
    .bind(status)
    .bind(paid_with)
    .bind(pay_by.map(|at| at.0))
}

/// How to read [`admit`]'s statements' results.
struct Admitted {
    posting: Posting,
    keyed: bool,
    pays_later: bool,
}

impl Admitted {
    fn check(self, ran: &mut Ran) -> StoreResult<MemberRow> {
        self.posting.check(ran)?;
        let member = ran.next().map_err(seat_violation)?.row()?;
        if self.pays_later {
            ran.next()?;
        }
        if self.keyed {
            ran.next()?;
        }
        member.ok_or(StoreError::NotFound)
    }
}

/// A membership that broke a unique rule: the customer is in the group already, or — on PostgreSQL, when the
/// group had a released seat — a concurrent joiner took the same released seq after this statement's snapshot
/// (the unit runs again, and its fresh look sees that seat taken).
fn seat_violation(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() && db.constraint() == Some("memberships_seat") => {
            StoreError::RunAgain("seat_taken")
        }
        _ => crate::unique_violation_as("already_member")(error),
    }
}

/// Runs [`admit`] on its own, for the seat the group `row` says was just taken.
async fn admit_alone(conn: &mut Conn<'_>, row: &GroupRow, a: &Admission) -> StoreResult<MemberRow> {
    let (statements, admitted) = admit(conn.backend(), &row.id, row.last_seq, Millis(row.expires_at), a);
    admitted.check(&mut conn.run(statements).await)
}

/// One more seat, paid now (`paid` = 1) or pending (0): the group fills at N paid seats (`$2` = now, `$3` = when a
/// filled group is due to be drawn). The seat's seq is the next one, or the lowest released seq when a pending
/// seat was released (a drawn group's seqs are always 1..N). The seat updates below add the conditions that make
/// it a seat.
fn take_a_seat(paid: i64) -> String {
    format!(
        "UPDATE groups SET member_count = member_count + 1, paid_count = paid_count + {paid},
             last_seq = CASE WHEN released_seats = 0 THEN member_count + 1 ELSE
                 (SELECT MIN(r.seq) FROM memberships r WHERE r.group_id = groups.id AND r.status = 'unpaid'
                    AND NOT EXISTS (SELECT 1 FROM memberships h
                                    WHERE h.group_id = groups.id AND h.seq = r.seq AND h.status <> 'unpaid')) END,
             released_seats = CASE WHEN released_seats > 0 THEN released_seats - 1 ELSE 0 END,
             status = CASE WHEN paid_count + {paid} = group_size THEN 'full' ELSE 'open' END,
             full_at = CASE WHEN paid_count + {paid} = group_size THEN $2 ELSE NULL END,
             draw_due_at = CASE WHEN paid_count + {paid} = group_size THEN $3 ELSE NULL END"
    )
}

/// Takes the next seat of an open group by one conditional update; changes no row when there is none (full,
/// closed, past its deadline, or the campaign is no longer live). Returns the group as it is with the seat taken
/// (the new member's seq is its `member_count`).
fn take_seat(group: &str, a: &Admission) -> Sql {
    seat_in("$5", a).bind(group)
}

/// Where the campaign's open group closest to full that the customer is not in is found (`$1` campaign, `$2` now,
/// `$4` user); each look selects from it what it needs.
const FROM_CLOSEST_GROUP: &str = "FROM groups g
     WHERE g.campaign_id = $1 AND g.status = 'open' AND g.member_count < g.group_size AND g.expires_at > $2
       AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.group_id = g.id AND m.user_id = $4 AND m.campaign_id = $1)
     ORDER BY g.group_size - g.member_count, g.created_at, g.id
     LIMIT 1";

/// Takes a seat in the campaign's open group closest to full that the customer is not in, in one statement (the
/// hot path of join-by-campaign); no row when no seat was taken, for whatever reason (no such group, the
/// campaign ended, or on PostgreSQL another join took the last seat between the look and the update).
fn take_closest_seat(a: &Admission) -> Sql {
    seat_in(&format!("(SELECT g.id {FROM_CLOSEST_GROUP})"), a)
}

/// A seat in the group `candidate` (a subquery, or a placeholder after the four this binds) picks, re-checked on
/// the row the update sees.
fn seat_in(candidate: &str, a: &Admission) -> Sql {
    sql(format!(
        "{}
         WHERE id = {candidate}
           AND campaign_id = $1 AND status = 'open' AND member_count < group_size AND expires_at > $2
           AND EXISTS (SELECT 1 FROM campaigns c WHERE c.id = groups.campaign_id AND c.status = 'live')
         RETURNING {GROUP_COLUMNS}",
        take_a_seat(a.paid_now())
    ))
    .bind(a.campaign.as_str())
    .bind(a.now.0)
    .bind(a.draw_due_if_full.0)
    .bind(a.user.as_str())
}

/// The open group of the campaign closest to full with a seat for the customer, if any.
async fn closest_to_full(conn: &mut Conn<'_>, a: &Admission) -> StoreResult<Option<String>> {
    let row: Option<(String,)> = conn
        .fetch_optional(
            sql(format!("SELECT g.id {FROM_CLOSEST_GROUP}"))
                .bind(a.campaign.as_str())
                .bind(a.now.0)
                .bind(None::<i64>)
                .bind(a.user.as_str()),
        )
        .await?;
    Ok(row.map(|(id,)| id))
}

/// Reserves K units of stock for a new group; `sold_out` or `campaign_not_live` when the stock update finds
/// nothing.
async fn reserve_stock(conn: &mut Conn<'_>, group: &NewGroup, a: &Admission) -> StoreResult<()> {
    let reserved = conn
        .execute(
            sql("UPDATE campaigns SET reserved_units = reserved_units + $2
                 WHERE id = $1 AND status = 'live' AND reserved_units + won_units + $2 <= quantity")
            .bind(a.campaign.as_str())
            .bind(group.winners_per_group),
        )
        .await?;
    if reserved == 0 {
        let status: Option<(String,)> =
            conn.fetch_optional(sql("SELECT status FROM campaigns WHERE id = $1").bind(a.campaign.as_str())).await?;
        return Err(match status {
            Some((s,)) if s == "live" => StoreError::Conflict("sold_out"),
            Some(_) => StoreError::Conflict("campaign_not_live"),
            None => StoreError::NotFound,
        });
    }
    Ok(())
}

/// Opens a group whose stock is reserved, with `a` in its first seat: the group and the admission in one batch.
async fn open_in(conn: &mut Conn<'_>, group: &NewGroup, a: &Admission) -> StoreResult<(GroupRow, MemberRow)> {
    let id = new_id();
    let (admission, admitted) = admit(conn.backend(), &id, 1, group.expires_at, a);
    let mut ran = conn.run(std::iter::once(insert_group(&id, group, a, None)).chain(admission).collect()).await;
    let row = ran.next()?.row()?.ok_or(StoreError::NotFound)?;
    Ok((row, admitted.check(&mut ran)?))
}

/// The new group `id` with `a` as its first member (the count only: the membership is written separately),
/// returning the group; with `only_if`, only when that condition holds.
fn insert_group(id: &str, group: &NewGroup, a: &Admission, only_if: Option<&str>) -> Sql {
    // The first seat: seq 1, paid or pending. A group of one paid seat is never full (N ≥ 2).
    let values = format!("$1, $2, 'open', $3, $4, 1, $5, $6, $7, $8, {}, 0, 1", a.paid_now());
    let source = match only_if {
        None => format!("VALUES ({values})"),
        Some(condition) => format!("SELECT {values} WHERE {condition}"),
    };
    sql(format!(
        "INSERT INTO groups (id, campaign_id, status, group_size, winners_per_group, member_count, server_seed,
             seed_commitment, created_at, expires_at, paid_count, released_seats, last_seq)
         {source}
         RETURNING {GROUP_COLUMNS}"
    ))
    .bind(id)
    .bind(a.campaign.as_str())
    .bind(group.group_size)
    .bind(group.winners_per_group)
    .bind(&group.server_seed)
    .bind(&group.seed_commitment)
    .bind(a.now.0)
    .bind(group.expires_at.0)
}

/// Why a conditional seat update found no seat: the first rule of API.md's order that fails.
async fn explain_no_seat(conn: &mut Conn<'_>, group: &str, campaign: &CampaignId) -> StoreResult<StoreError> {
    let live: Option<(String,)> =
        conn.fetch_optional(sql("SELECT status FROM campaigns WHERE id = $1").bind(campaign.as_str())).await?;
    if live.is_none_or(|(s,)| s != "live") {
        return Ok(StoreError::Conflict("campaign_not_live"));
    }
    let Some(row) = group_in(conn, group).await? else { return Ok(StoreError::NotFound) };
    // An open group that refused a seat is past its deadline, or its seats are all held (some wait for their
    // payment); `full` and `drawn` groups are full.
    Ok(match row.status.as_str() {
        "open" if row.member_count >= row.group_size => StoreError::Conflict("group_full"),
        "open" | "expired" => StoreError::Conflict("group_closed"),
        _ => StoreError::Conflict("group_full"),
    })
}

/// [`Store::join_group`]'s unit of work.
async fn join_named_group(conn: &mut Conn<'_>, group: &GroupId, a: &Admission) -> StoreResult<(GroupRow, MemberRow)> {
    let mut look = join_preamble(a);
    look.push(
        sql("SELECT seq FROM memberships WHERE group_id = $1 AND user_id = $2")
            .bind(group.as_str())
            .bind(a.user.as_str()),
    );
    let mut ran = conn.run(look).await;
    check_preamble(&mut ran, a)?;
    if ran.next()?.row::<(i64,)>()?.is_some() {
        return Err(StoreError::Conflict("already_member"));
    }
    let Some(row) = conn.fetch_optional::<GroupRow>(take_seat(group.as_str(), a)).await? else {
        return Err(explain_no_seat(conn, group.as_str(), &a.campaign).await?);
    };
    let member = admit_alone(conn, &row, a).await?;
    Ok((row, member))
}

/// [`Store::join_campaign`] on SQLite. Its one writer sees everything there is, so one look decides: a seat in
/// the open group closest to full (look and seat in one conditional update), else a new group.
async fn join_closest_on_sqlite(
    conn: &mut Conn<'_>,
    new_group: &NewGroup,
    a: &Admission,
) -> StoreResult<(GroupRow, MemberRow)> {
    check_preamble(&mut conn.run(join_preamble(a)).await, a)?;
    if let Some(row) = conn.fetch_optional::<GroupRow>(take_closest_seat(a)).await? {
        let member = admit_alone(conn, &row, a).await?;
        return Ok((row, member));
    }
    reserve_stock(conn, new_group, a).await?;
    open_in(conn, new_group, a).await
}

/// [`Store::join_campaign`] on PostgreSQL, where each statement sees its own snapshot and other instances join
/// at the same time.
///
/// `already_member` here means the customer's own concurrent join (perhaps on another instance) took a seat in
/// the group this one chose after this one's snapshot was taken: the unit runs again, and its fresh look passes
/// over that group (API.md: a join by campaign picks a group the caller is not in).
async fn join_closest_on_postgres(conn: &mut Conn<'_>, new_group: &NewGroup, a: &Admission) -> StoreResult<Seated> {
    match seat_or_open_on_postgres(conn, new_group, a).await {
        Err(StoreError::Conflict("already_member")) => Err(StoreError::RunAgain("already_member")),
        other => other,
    }
}

async fn seat_or_open_on_postgres(conn: &mut Conn<'_>, new_group: &NewGroup, a: &Admission) -> StoreResult<Seated> {
    if a.payment.is_some() {
        // A seat that waits for a payment moves no money: the plain path, a look and a seat, else a new group.
        check_preamble(&mut conn.run(join_preamble(a)).await, a)?;
        if let Some(row) = conn.fetch_optional::<GroupRow>(take_closest_seat(a)).await? {
            let member = admit_alone(conn, &row, a).await?;
            return Ok(Seated::with_others(row, member, Vec::new()));
        }
        match reserve_stock(conn, new_group, a).await {
            Ok(()) => return open_in(conn, new_group, a).await.map(Seated::from),
            Err(StoreError::Conflict("sold_out")) => {}
            Err(other) => return Err(other),
        }
    } else {
        if let Some(joined) = one_statement::join_closest(conn, a, Runs::InTheUnit).await? {
            return Ok(joined);
        }
        // No seat in the look's snapshot: take the stock's row, then look again in a fresh one, and take a seat
        // or open a group in one statement ([`one_statement::take_unlocked_or_open`]).
        match reserve_stock(conn, new_group, a).await {
            Ok(()) => return one_statement::take_unlocked_or_open(conn, new_group, a).await,
            Err(StoreError::Conflict("sold_out")) => {}
            Err(other) => return Err(other),
        }
    }
    // The stock is gone: only seats are left to look for. Each look is a fresh statement (a fresh snapshot); the
    // bound only guards against a pathological storm.
    for attempt in 0..50 {
        if attempt > 0
            && let Some(row) = conn.fetch_optional::<GroupRow>(take_closest_seat(a)).await?
        {
            let member = admit_alone(conn, &row, a).await?;
            return Ok(Seated::with_others(row, member, Vec::new()));
        }
        let Some(group) = closest_to_full(conn, a).await? else {
            return Err(StoreError::Conflict("sold_out"));
        };
        if let Some(row) = conn.fetch_optional::<GroupRow>(take_seat(&group, a)).await? {
            let member = admit_alone(conn, &row, a).await?;
            return Ok(Seated::with_others(row, member, Vec::new()));
        }
        if let StoreError::Conflict("campaign_not_live") = explain_no_seat(conn, &group, &a.campaign).await? {
            return Err(StoreError::Conflict("campaign_not_live"));
        }
    }
    Err(StoreError::Conflict("sold_out"))
}

impl Store {
    /// Opens a group with `admission` as its first member: reserves K units of stock (409 `sold_out` when they
    /// are not there), commits the seed, and takes the price into the hold — all or nothing.
    pub async fn open_group(&self, group: &NewGroup, admission: &Admission) -> StoreResult<(GroupRow, MemberRow)> {
        self.write((group.clone(), admission.clone()), |mut conn, (group, admission)| {
            Box::pin(async move {
                check_preamble(&mut conn.run(join_preamble(admission)).await, admission)?;
                reserve_stock(&mut conn, group, admission).await?;
                open_in(&mut conn, group, admission).await
            })
        })
        .await
    }

    /// Joins an open group. Refusals name the first rule that fails, in API.md's order after the checks the app
    /// makes first: `limit_reached`, `already_member`, `group_full` / `group_closed` (or `campaign_not_live`),
    /// then insufficient funds. The seat is taken by one conditional update, so a group never over-fills.
    pub async fn join_group(&self, group: &GroupId, admission: &Admission) -> StoreResult<(GroupRow, MemberRow)> {
        self.write((group.clone(), admission.clone()), |mut conn, (group, admission)| {
            Box::pin(async move { join_named_group(&mut conn, group, admission).await })
        })
        .await
    }

    /// Joins the open group of the campaign closest to full that has a seat for the customer, else opens one
    /// (`new_group`) — one unit of work, so a seat that went while we looked costs a retried statement, not a
    /// retried request. `sold_out` only when a look taken after the stock ran out finds no seat.
    ///
    /// On PostgreSQL the hot path is one statement that is its own transaction ([`one_statement`]: the key, the
    /// seat, the money and the membership, or nothing), and it waits for the campaign's turn in this instance
    /// first ([`crate::join_queue`]).
    pub async fn join_campaign(&self, new_group: &NewGroup, admission: &Admission) -> StoreResult<Seated> {
        let _turn = match self.backend() {
            // Held until the unit of work has ended (an optimisation only: see join_queue.rs).
            Backend::Postgres => Some(self.join_queues.turn(admission.campaign.as_str()).await),
            Backend::Sqlite => None,
        };
        if self.backend() == Backend::Postgres && admission.payment.is_none() {
            // The common case, an open group with a seat, in one round trip; the unit below does the rest.
            let joined = self
                .write_in_one_statement(admission.clone(), |mut conn, admission| {
                    Box::pin(async move {
                        one_statement::join_closest(&mut conn, admission, Runs::AsItsOwnTransaction).await
                    })
                })
                .await?;
            if let Some(joined) = joined {
                return Ok(joined);
            }
        }
        self.write((new_group.clone(), admission.clone()), |mut conn, (new_group, admission)| {
            Box::pin(async move {
                match conn.backend() {
                    Backend::Sqlite => join_closest_on_sqlite(&mut conn, new_group, admission).await.map(Seated::from),
                    Backend::Postgres => join_closest_on_postgres(&mut conn, new_group, admission).await,
                }
            })
        })
        .await
    }

    pub async fn group(&self, id: &GroupId) -> StoreResult<Option<GroupRow>> {
        let mut pooled = self.pools.read().await?;
        group_in(&mut pooled.conn(), id.as_str()).await
    }

    pub async fn group_members(&self, id: &GroupId) -> StoreResult<Vec<MemberRow>> {
        let mut pooled = self.pools.read().await?;
        members_in(&mut pooled.conn(), id.as_str()).await
    }

    pub async fn membership(&self, id: &str) -> StoreResult<Option<MemberRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!("SELECT {MEMBER_COLUMNS} FROM memberships WHERE id = $1")).bind(id);
        Ok(pooled.conn().fetch_optional(q).await?)
    }

    /// A customer's memberships, newest first, after the cursor (a membership id) when given.
    pub async fn memberships_of(&self, user: &UserId, before: Option<&str>, limit: i64) -> StoreResult<Vec<MemberRow>> {
        let mut pooled = self.pools.read().await?;
        let q = sql(format!(
            "SELECT {MEMBER_COLUMNS} FROM memberships WHERE user_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
        ))
        .bind(user.as_str())
        .bind(before.unwrap_or(""))
        .bind(limit);
        Ok(pooled.conn().fetch_all(q).await?)
    }

    /// The member with this ticket in this campaign, if any (to resolve `invited_by`).
    pub async fn member_by_ticket(&self, campaign: &CampaignId, ticket: &str) -> StoreResult<Option<MemberRow>> {
        let mut pooled = self.pools.read().await?;
        Ok(pooled
            .conn()
            .fetch_optional(
                sql(format!("SELECT {MEMBER_COLUMNS} FROM memberships WHERE ticket = $1 AND campaign_id = $2"))
                    .bind(ticket)
                    .bind(campaign.as_str()),
            )
            .await?)
    }

    /// Open and full groups of a campaign, and the free seats of its open groups.
    pub async fn group_counts(&self, campaign: &CampaignId, now: Millis) -> StoreResult<(i64, i64, i64)> {
        let mut pooled = self.pools.read().await?;
        let row: (i64, i64, i64) = pooled
            .conn()
            .fetch_one(
                sql("SELECT
                       CAST(COALESCE(SUM(CASE WHEN status = 'open' AND expires_at > $2 THEN 1 ELSE 0 END), 0) AS BIGINT),
                       CAST(COALESCE(SUM(CASE WHEN status = 'full' THEN 1 ELSE 0 END), 0) AS BIGINT),
                       CAST(COALESCE(SUM(CASE WHEN status = 'open' AND expires_at > $2
                                              THEN group_size - member_count ELSE 0 END), 0) AS BIGINT)
                     FROM groups WHERE campaign_id = $1")
                .bind(campaign.as_str())
                .bind(now.0),
            )
            .await?;
        Ok(row)
    }

    /// Draws one full group that is due (or belongs to an ended campaign), if there is one; `group` picks a given
    /// one instead. `plan` decides the outcome from the group and its members; the state change, the members'
    /// statuses, the stock (K units from reserved to won) and the money move in one transaction. Exactly once:
    /// the group leaves `full` by a conditional update, so a second drawer finds nothing to do.
    pub async fn draw_group<F>(
        &self,
        group: Option<&GroupId>,
        now: Millis,
        plan: F,
    ) -> StoreResult<Option<(GroupRow, Vec<MemberRow>)>>
    where
        F: PlanDraw,
    {
        self.write((group.cloned(), now, plan), |mut conn, (group, now, plan)| {
            Box::pin(async move { draw_in(&mut conn, group.as_ref(), *now, plan).await })
        })
        .await
    }

    /// Draws the group `group` that a join has just filled, from what that join saw: its row and its `members`
    /// (whole: [`Seated::members`]). On PostgreSQL the plan is made first and written by one statement that is
    /// its own transaction ([`outcome::claim_and_write`]); when that wrote nothing (the group is no longer full,
    /// or its members are not those), [`Store::draw_group`] draws it or answers why not (`already_drawn`). On
    /// SQLite, [`Store::draw_group`] (its units are not round trips).
    pub async fn draw_filled_group<F>(
        &self,
        group: &GroupRow,
        members: &[MemberRow],
        campaign: &CampaignRow,
        now: Millis,
        plan: F,
    ) -> StoreResult<Option<(GroupRow, Vec<MemberRow>)>>
    where
        F: PlanDraw,
    {
        if self.backend() == Backend::Postgres && group.status == "full" {
            let inviters = {
                let mut pooled = self.pools.read().await?;
                inviters_of(&mut pooled.conn(), &group.id, members).await?
            };
            let decided = plan(group, members, campaign, &inviters)?;
            let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
            let input = (group.clone(), ids, campaign.clone(), decided, now);
            let drawn = self
                .write_in_one_statement(input, |mut conn, (group, ids, campaign, decided, now)| {
                    Box::pin(
                        async move { outcome::claim_and_write(&mut conn, group, ids, campaign, decided, *now).await },
                    )
                })
                .await;
            if let Some(drawn) = drawn? {
                let members = with_outcomes(members.to_vec(), &drawn.winner_seqs());
                return Ok(Some((drawn, members)));
            }
        }
        self.draw_group(Some(&group.group_id()), now, plan).await
    }

    /// Expires one open group that is past its deadline (or whose campaign ended), if there is one: every hold
    /// is released in full, its K units return to stock, its members' participations stop counting — exactly
    /// once, whichever instance gets there first.
    pub async fn expire_group(&self, now: Millis) -> StoreResult<Option<(GroupRow, Vec<MemberRow>)>> {
        self.write(now, |mut conn, now| Box::pin(async move { expire_in(&mut conn, *now).await })).await
    }
}

/// [`Store::draw_group`]'s unit of work.
async fn draw_in<F>(
    conn: &mut Conn<'_>,
    group: Option<&GroupId>,
    now: Millis,
    plan: &F,
) -> StoreResult<Option<(GroupRow, Vec<MemberRow>)>>
where
    F: Fn(&GroupRow, &[MemberRow], &CampaignRow, &Inviters) -> StoreResult<DrawPlan>,
{
    // A named group is not claimed first: the batch's first statement waits for its row and re-checks it.
    let id = match group {
        Some(group) => group.as_str().to_owned(),
        None => match claim(conn, ClaimFor::Draw, now).await? {
            Some(id) => id,
            None => return Ok(None),
        },
    };
    // One batch: leave `full`, and read what the plan needs (the reads run on SQLite even when the group was
    // not full; nothing is written then).
    let mut ran = conn
        .run(vec![
            sql(format!(
                "UPDATE groups SET status = 'drawn', drawn_at = $2 WHERE id = $1 AND status = 'full'
                     RETURNING {GROUP_COLUMNS}"
            ))
            .bind(&id)
            .bind(now.0)
            .must_change(1),
            sql(format!(
                "SELECT {MEMBER_COLUMNS} FROM memberships WHERE group_id = $1 AND status <> 'unpaid' ORDER BY seq"
            ))
            .bind(&id),
            sql(format!(
                "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = (SELECT campaign_id FROM groups WHERE id = $1)"
            ))
            .bind(&id),
        ])
        .await;
    let Some(claimed) = ran.next_met()? else {
        drop(ran);
        return match group_in(conn, &id).await? {
            Some(g) if g.status == "drawn" => Err(StoreError::Conflict("already_drawn")),
            Some(_) => Err(StoreError::Conflict("not_full")),
            None => Err(StoreError::NotFound),
        };
    };
    let row: GroupRow = claimed.row()?.ok_or(StoreError::NotFound)?;
    let members: Vec<MemberRow> = ran.next()?.rows()?;
    let campaign: CampaignRow = ran.next()?.row()?.ok_or(StoreError::NotFound)?;
    let inviters = inviters_of(conn, &id, &members).await?;
    let decided = plan(&row, &members, &campaign, &inviters)?;
    let drawn = outcome::write(conn, &row, members.len(), &campaign, &decided, now).await?;
    Ok(Some((drawn, with_outcomes(members, &decided.winners))))
}

/// The members as a draw's outcome statement left them, the winners' seqs `winners` (nothing else of theirs
/// changed).
fn with_outcomes(members: Vec<MemberRow>, winners: &[i64]) -> Vec<MemberRow> {
    members
        .into_iter()
        .map(|m| {
            let status = if winners.contains(&m.seq) { "won" } else { "lost" };
            MemberRow { status: status.into(), ..m }
        })
        .collect()
}

/// The members of the campaign whose tickets the group `id`'s members named as `invited_by`, found from the
/// group's few members through the unique ticket (never a scan of the campaign's); no read when none named one.
async fn inviters_of(conn: &mut Conn<'_>, id: &str, members: &[MemberRow]) -> StoreResult<Inviters> {
    if members.iter().all(|m| m.invited_by.is_none()) {
        return Ok(Inviters::new());
    }
    let inviters: Vec<(String, String)> = conn
        .fetch_all(
            sql("SELECT DISTINCT inviter.ticket, inviter.user_id
                 FROM memberships invited JOIN memberships inviter ON inviter.ticket = invited.invited_by
                 WHERE invited.group_id = $1 AND inviter.campaign_id = invited.campaign_id")
            .bind(id),
        )
        .await?;
    Ok(inviters.into_iter().map(|(ticket, user)| (ticket, UserId::from_trusted(user))).collect())
}

/// [`Store::expire_group`]'s unit of work.
async fn expire_in(conn: &mut Conn<'_>, now: Millis) -> StoreResult<Option<(GroupRow, Vec<MemberRow>)>> {
    let Some(id) = claim(conn, ClaimFor::Expiry, now).await? else { return Ok(None) };
    let members = members_in(conn, &id).await?;
    let expired: Option<GroupRow> = conn
        .fetch_optional(
            sql(format!(
                "UPDATE groups SET status = 'expired', expired_at = $2
                     WHERE id = $1 AND status = 'open' AND member_count = $3
                       AND (expires_at <= $2 OR EXISTS
                           (SELECT 1 FROM campaigns c WHERE c.id = groups.campaign_id AND c.status = 'ended'))
                     RETURNING {GROUP_COLUMNS}"
            ))
            .bind(&id)
            .bind(now.0)
            .bind(members.len() as i64),
        )
        .await?;
    let Some(row) = expired else {
        // Someone joined between our read and the update, or it filled or expired meanwhile: next pass.
        return Ok(None);
    };
    // Every held seat (paid or pending) stops counting; only paid ones have money to give back.
    let mut users: Vec<&MemberRow> = members.iter().collect();
    users.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    for member in &users {
        conn.execute(
            sql("UPDATE participations SET active = active - 1 WHERE campaign_id = $1 AND user_id = $2 AND active > 0")
                .bind(&member.campaign_id)
                .bind(&member.user_id),
        )
        .await?;
    }
    conn.execute(
        sql("UPDATE memberships SET status = 'expired', pay_by = NULL
             WHERE group_id = $1 AND status IN ('pending', 'waiting')")
        .bind(&id),
    )
    .await?;
    conn.execute(
        sql("UPDATE campaigns SET reserved_units = reserved_units - $2 WHERE id = $1")
            .bind(&row.campaign_id)
            .bind(row.winners_per_group),
    )
    .await?;
    let holds: Vec<Hold> = members
        .iter()
        .filter(|m| m.status == "waiting")
        .filter_map(|m| {
            let paid = Fen::from_stored(m.price)?;
            Some(Hold { membership: m.id.clone(), user: m.user(), paid, from: m.paid_from() })
        })
        .collect();
    post_all(conn, &expiry_refunds(&holds), now).await?;
    let refunds: Vec<NewRefund> = holds
        .iter()
        .map(|h| NewRefund::of_membership("group_expired", &h.membership, &h.user, h.paid, h.from.clone()))
        .collect();
    crate::refunds::record_all(conn, &refunds, now).await?;
    let members = members_in(conn, &id).await?;
    Ok(Some((row, members)))
}

/// Picks the due group a worker step acts on, inside its unit of work. On PostgreSQL the row is locked with
/// `FOR UPDATE SKIP LOCKED`, so instances running the same job pick different groups instead of queueing.
async fn claim(conn: &mut Conn<'_>, purpose: ClaimFor, now: Millis) -> StoreResult<Option<String>> {
    let lock = match conn.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let (status, due) = match purpose {
        ClaimFor::Draw => ("full", "draw_due_at"),
        ClaimFor::Expiry => ("open", "expires_at"),
    };
    let row: Option<(String,)> = conn
        .fetch_optional(
            sql(format!(
                "SELECT id FROM groups g WHERE g.status = '{status}' AND (g.{due} <= $1 OR EXISTS
                         (SELECT 1 FROM campaigns c WHERE c.id = g.campaign_id AND c.status = 'ended'))
                     ORDER BY g.{due} LIMIT 1{lock}"
            ))
            .bind(now.0),
        )
        .await?;
    Ok(row.map(|(id,)| id))
}

#[derive(Clone, Copy)]
enum ClaimFor {
    Draw,
    Expiry,
}
