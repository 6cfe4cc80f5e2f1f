//! The ledger: balanced entries, their postings, and each account's running balance.

use crate::db::{Backend, Conn, Ran, Sql, sql};
use crate::{Store, StoreError, StoreResult, new_id};
use tuangou_domain::ids::EntryId;
use tuangou_domain::ledger::Entry;
use tuangou_domain::time::Millis;

#[derive(Debug, Clone, sqlx::FromRow)]
struct EntryRow {
    id: String,
    cause: String,
    reference: Option<String>,
    created_at: i64,
}
crate::sqlite_sql::from_values!(EntryRow { id, cause, reference, created_at });

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PostingRecord {
    pub account: String,
    pub unit: String,
    pub amount: i64,
}
crate::sqlite_sql::from_values!(PostingRecord { account, unit, amount });

/// An entry as stored.
#[derive(Debug, Clone)]
pub struct EntryRecord {
    pub id: EntryId,
    pub cause: String,
    pub reference: Option<String>,
    pub created_at: Millis,
    pub postings: Vec<PostingRecord>,
}

/// Writes `entry` inside the caller's transaction; see [`post_all`].
pub(crate) async fn post(conn: &mut Conn<'_>, entry: &Entry, now: Millis) -> StoreResult<EntryId> {
    let mut ids = post_all(conn, std::slice::from_ref(entry), now).await?;
    ids.pop().ok_or(StoreError::NotFound)
}

/// Writes entries inside the caller's transaction, in one batch of statements ([`Posting`]).
pub(crate) async fn post_all(conn: &mut Conn<'_>, entries: &[Entry], now: Millis) -> StoreResult<Vec<EntryId>> {
    let (statements, posting) = Posting::of(conn.backend(), entries, now);
    posting.check(&mut conn.run(statements).await)
}

/// The statements that write some entries, and what their results mean. Debits are conditional
/// (`balance + amount >= 0`) except on the external accounts, so an overdraft fails with
/// [`StoreError::InsufficientFunds`] and the caller's transaction rolls back. Callers may send more statements
/// after these in the same batch (a join sends its membership with its hold).
pub(crate) struct Posting {
    ids: Vec<EntryId>,
    /// Per statement: the accounts a conditional debit names, for the refusal when it does not move them all.
    debits: Vec<Option<String>>,
    /// How many balance rows the posting moves in all.
    moves: u64,
}

impl Posting {
    pub(crate) fn of(backend: Backend, entries: &[Entry], now: Millis) -> (Vec<Sql>, Posting) {
        let (mut statements, _, mut posting) = Self::build(backend, entries, now, None);
        if backend == Backend::Postgres && statements.len() == 3 {
            // The entries, their postings and the balances in one statement (one round trip per post).
            statements = Sql::chain(statements).into_iter().collect();
            posting.debits = vec![posting.debits.pop().flatten()];
        }
        (statements, posting)
    }

    /// PostgreSQL: the posting as named clauses of a larger statement ([`Sql::with`]), each writing only when
    /// `guard` (a condition over the other clauses) holds, and the SQL that counts the balance rows they moved;
    /// the larger statement selects that count for [`Posting::check_moved`].
    pub(crate) fn clauses(entries: &[Entry], now: Millis, guard: &str) -> (Vec<(String, Sql)>, String, Posting) {
        let (statements, upserts, posting) = Self::build(Backend::Postgres, entries, now, Some(guard));
        let first_upsert = statements.len() - upserts;
        let names: Vec<String> = (0..statements.len()).map(|i| format!("posting{i}")).collect();
        let moved = names[first_upsert..].iter().map(|name| format!("(SELECT COUNT(*) FROM {name})"));
        let moved =
            format!("CAST({} AS BIGINT)", std::iter::once("0".to_owned()).chain(moved).collect::<Vec<_>>().join(" + "));
        (names.into_iter().zip(statements).collect(), moved, posting)
    }

    /// The statements, how many of them (the last ones) apply the balances, and how to read them.
    fn build(backend: Backend, entries: &[Entry], now: Millis, guard: Option<&str>) -> (Vec<Sql>, usize, Posting) {
        let ids: Vec<String> = entries.iter().map(|_| new_id()).collect();
        let mut statements = Vec::new();
        // Multi-row inserts: a draw writes hundreds of rows, a join three.
        for chunk in ids.iter().zip(entries).collect::<Vec<_>>().chunks(ROWS_PER_INSERT) {
            let mut q = sql(values_insert("ledger_entries (id, cause, reference, created_at)", chunk.len(), guard));
            for (id, entry) in chunk {
                q = q.bind(*id).bind(entry.cause().as_str()).bind(entry.reference()).bind(now.0);
            }
            statements.push(q);
        }
        let postings: Vec<(&String, String, &'static str, i64, bool)> = ids
            .iter()
            .zip(entries)
            .flat_map(|(id, entry)| {
                entry.postings().iter().map(move |p| {
                    (id, p.account.key(), p.account.unit().as_str(), p.amount, p.account.may_go_negative())
                })
            })
            .collect();
        for chunk in postings.chunks(ROWS_PER_INSERT) {
            let mut q = sql(values_insert("ledger_postings (entry_id, account, unit, amount)", chunk.len(), guard));
            for (id, key, unit, amount, _) in chunk {
                q = q.bind(*id).bind(key).bind(*unit).bind(*amount);
            }
            statements.push(q);
        }
        let changes = postings.into_iter().map(|(_, key, unit, amount, negative_ok)| (key, unit, amount, negative_ok));
        let mut debits = vec![None; statements.len()];
        let (mut moves, mut upserts) = (0, 0_usize);
        let net = net(changes.collect());
        let changes = match backend {
            Backend::Sqlite => sqlite_balance_changes(net),
            Backend::Postgres => balance_upserts(net, guard),
        };
        for (statement, rows, debit) in changes {
            statements.push(statement);
            debits.push(debit);
            moves += rows;
            upserts += 1;
        }
        let ids = ids.into_iter().map(EntryId::from_trusted).collect();
        (statements, upserts, Posting { ids, debits, moves })
    }

    /// Reads this posting's statements' results from `ran`; returns the entries' ids.
    pub(crate) fn check(self, ran: &mut Ran) -> StoreResult<Vec<EntryId>> {
        for debit in self.debits {
            if ran.next_met()?.is_none() {
                return Err(StoreError::InsufficientFunds(debit.unwrap_or_default()));
            }
        }
        Ok(self.ids)
    }

    /// For [`Posting::clauses`]: `moved` balance rows must be all of them, or a debit was not covered.
    /// How many balance rows the posting must move ([`Posting::check_moved`]'s count, for a statement that checks
    /// it itself).
    pub(crate) fn moves(&self) -> u64 {
        self.moves
    }

    pub(crate) fn check_moved(self, moved: i64) -> StoreResult<Vec<EntryId>> {
        if u64::try_from(moved).ok() != Some(self.moves) {
            return Err(self.insufficient_funds());
        }
        Ok(self.ids)
    }

    /// The refusal of a posting that did not move every balance row: the accounts its debits name.
    pub(crate) fn insufficient_funds(self) -> StoreError {
        let debited: Vec<String> = self.debits.into_iter().flatten().collect();
        StoreError::InsufficientFunds(debited.join(", "))
    }
}

/// A balance change: account key, unit, amount, whether the account may go below zero.
type Change = (String, &'static str, i64, bool);

/// One change per account: the net amount, so an account that is credited and debited in one go (a hold released
/// and paid again) is checked on its result. Sorted by account key.
fn net(mut changes: Vec<Change>) -> Vec<Change> {
    changes.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut net: Vec<Change> = Vec::new();
    for change in changes {
        match net.last_mut() {
            Some(last) if last.0 == change.0 && last.1 == change.1 => last.2 += change.2,
            _ => net.push(change),
        }
    }
    net
}

/// PostgreSQL: the statements that apply `net` to the balances, each with how many rows it must move and the
/// accounts it debits conditionally (if any): one upsert per [`ROWS_PER_UPSERT`] accounts, rows in account-key
/// order, so concurrent posts take the balance rows' locks in one global order and queue instead of deadlocking.
///
/// A debit of an account that may not go below zero moves only if the balance covers it (a missing row is a zero
/// balance and is not inserted); the statement must move every row, or the post fails and the caller's
/// transaction rolls back whatever did move.
fn balance_upserts(net: Vec<Change>, guard: Option<&str>) -> Vec<(Sql, u64, Option<String>)> {
    let changes: Vec<Change> =
        net.into_iter().filter(|(_, _, amount, may_go_negative)| *amount != 0 || *may_go_negative).collect();
    let mut statements = Vec::new();
    for chunk in changes.chunks(ROWS_PER_UPSERT) {
        let rows = placeholder_rows(chunk.len(), 3);
        let may_go_negative: Vec<&str> =
            chunk.iter().filter(|(.., negative_ok)| *negative_ok).map(|(key, ..)| key.as_str()).collect();
        let (free_new, free_old) = if may_go_negative.is_empty() {
            (String::new(), String::new())
        } else {
            let first = 3 * chunk.len() + 1;
            let list = (first..first + may_go_negative.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
            (format!(" OR v.column1 IN ({list})"), format!(" OR balances.account IN ({list})"))
        };
        let (only_if, returning) = match guard {
            Some(guard) => (format!("({guard}) AND "), " RETURNING 1"),
            None => (String::new(), ""),
        };
        let mut q = sql(format!(
            "INSERT INTO balances (account, unit, balance)
             SELECT v.column1, v.column2, v.column3 FROM (VALUES {rows}) AS v
             WHERE {only_if}(v.column3 >= 0{free_new}
                OR EXISTS (SELECT 1 FROM balances b WHERE b.account = v.column1 AND b.unit = v.column2))
             ORDER BY v.column1, v.column2
             ON CONFLICT (account, unit) DO UPDATE SET balance = balances.balance + excluded.balance
             WHERE excluded.balance >= 0 OR balances.balance + excluded.balance >= 0{free_old}{returning}"
        ));
        for (key, unit, amount, _) in chunk {
            q = q.bind(key.as_str()).bind(*unit).bind(*amount);
        }
        for key in may_go_negative {
            q = q.bind(key);
        }
        let debited: Vec<&str> = chunk
            .iter()
            .filter(|(_, _, amount, negative_ok)| *amount < 0 && !*negative_ok)
            .map(|(key, ..)| key.as_str())
            .collect();
        let debited = (!debited.is_empty()).then(|| debited.join(", "));
        statements.push((q.must_change(chunk.len() as u64), chunk.len() as u64, debited));
    }
    statements
}

/// SQLite: one writer at a time, so lock order does not matter: the conditional debits in one update, then all
/// credits in one multi-row upsert (measured cheaper for SQLite's writer than the one upsert).
fn sqlite_balance_changes(net: Vec<Change>) -> Vec<(Sql, u64, Option<String>)> {
    let (debits, credits): (Vec<_>, Vec<_>) =
        net.into_iter().partition(|(_, _, amount, may_go_negative)| *amount < 0 && !*may_go_negative);
    let mut statements = Vec::new();
    for chunk in debits.chunks(ROWS_PER_UPSERT) {
        let cases: Vec<String> = (0..chunk.len())
            .map(|r| format!("WHEN account = ${} AND unit = ${} THEN ${}", 3 * r + 1, 3 * r + 2, 3 * r + 3))
            .collect();
        let conditions: Vec<String> = (0..chunk.len())
            .map(|r| format!("(account = ${} AND unit = ${} AND balance + ${} >= 0)", 3 * r + 1, 3 * r + 2, 3 * r + 3))
            .collect();
        let mut q = sql(format!(
            "UPDATE balances SET balance = balance + CASE {} END WHERE {}",
            cases.join(" "),
            conditions.join(" OR ")
        ));
        for (key, unit, amount, _) in chunk {
            q = q.bind(key.as_str()).bind(*unit).bind(*amount);
        }
        let keys: Vec<&str> = chunk.iter().map(|(key, ..)| key.as_str()).collect();
        statements.push((q.must_change(chunk.len() as u64), chunk.len() as u64, Some(keys.join(", "))));
    }
    let credits: Vec<_> =
        credits.into_iter().filter(|(_, _, amount, negative_ok)| *amount != 0 || *negative_ok).collect();
    for chunk in credits.chunks(ROWS_PER_UPSERT) {
        let rows = placeholder_rows(chunk.len(), 3);
        let mut q = sql(format!(
            "INSERT INTO balances (account, unit, balance) VALUES {rows}
             ON CONFLICT (account, unit) DO UPDATE SET balance = balances.balance + excluded.balance"
        ));
        for (key, unit, amount, _) in chunk {
            q = q.bind(key.as_str()).bind(*unit).bind(*amount);
        }
        statements.push((q, chunk.len() as u64, None));
    }
    statements
}

/// Rows per multi-row insert: 4 parameters a row stays far below both engines' parameter limits.
const ROWS_PER_INSERT: usize = 200;
/// Accounts per balance upsert: 3 parameters each, and as many again at most for the accounts that may go negative.
const ROWS_PER_UPSERT: usize = 200;

/// `INSERT INTO {into} VALUES ($1, $2, $3, $4), ($5, …)` for `rows` rows of four values; with a guard, the rows
/// are only inserted when it holds.
fn values_insert(into: &str, rows: usize, guard: Option<&str>) -> String {
    let tuples = placeholder_rows(rows, 4);
    match guard {
        None => format!("INSERT INTO {into} VALUES {tuples}"),
        Some(guard) => format!("INSERT INTO {into} SELECT * FROM (VALUES {tuples}) AS v WHERE {guard}"),
    }
}

/// `($1, $2, …), (…)`: `rows` tuples of `width` placeholders, numbered in order.
fn placeholder_rows(rows: usize, width: usize) -> String {
    let tuple = |r: usize| (1..=width).map(|c| format!("${}", width * r + c)).collect::<Vec<_>>().join(", ");
    (0..rows).map(|r| format!("({})", tuple(r))).collect::<Vec<_>>().join(", ")
}

pub(crate) async fn balance_in(conn: &mut Conn<'_>, account: &str, unit: &str) -> StoreResult<i64> {
    let row: Option<(i64,)> = conn
        .fetch_optional(sql("SELECT balance FROM balances WHERE account = $1 AND unit = $2").bind(account).bind(unit))
        .await?;
    Ok(row.map_or(0, |(b,)| b))
}

async fn entry_in(conn: &mut Conn<'_>, filter: &str, value: &str) -> StoreResult<Option<EntryRecord>> {
    let row: Option<EntryRow> = conn
        .fetch_optional(
            sql(format!("SELECT id, cause, reference, created_at FROM ledger_entries WHERE {filter} = $1")).bind(value),
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let postings = conn
        .fetch_all(
            sql("SELECT account, unit, amount FROM ledger_postings WHERE entry_id = $1 ORDER BY amount, account")
                .bind(&row.id),
        )
        .await?;
    Ok(Some(EntryRecord {
        id: EntryId::from_trusted(row.id),
        cause: row.cause,
        reference: row.reference,
        created_at: Millis(row.created_at),
        postings,
    }))
}

impl Store {
    /// Posts an entry that carries a reference, once: when an entry with the same reference exists already, it
    /// is returned instead (with `false`), whatever its contents; the caller compares them.
    pub async fn post_once(&self, entry: &Entry, now: Millis) -> StoreResult<(EntryRecord, bool)> {
        let reference = entry.reference().ok_or(StoreError::Conflict("reference_required"))?.to_owned();
        let posted = self
            .write((entry.clone(), reference.clone(), now), |mut conn, (entry, reference, now)| {
                Box::pin(async move {
                    // An existing entry is answered only once it is durable: a unit is answered after its batch
                    // commits (on SQLite the first entry may still be in the writer's open batch).
                    if let Some(existing) = entry_in(&mut conn, "reference", reference).await? {
                        return Ok((existing, false));
                    }
                    let id = post(&mut conn, entry, *now).await?;
                    let record = entry_in(&mut conn, "id", id.as_str()).await?.ok_or(StoreError::NotFound)?;
                    Ok((record, true))
                })
            })
            .await;
        match posted {
            // A concurrent post with the same reference came first (PostgreSQL: it has committed by the time the
            // unique index refuses ours): answer with it.
            Err(StoreError::Database(sqlx::Error::Database(db))) if db.is_unique_violation() => {
                let existing = self
                    .write(reference, |mut conn, reference| {
                        Box::pin(async move { entry_in(&mut conn, "reference", reference).await })
                    })
                    .await?;
                existing.map(|e| (e, false)).ok_or(StoreError::NotFound)
            }
            other => other,
        }
    }

    /// The balance of one account (0 when it never moved).
    pub async fn balance(&self, account: &str, unit: &str) -> StoreResult<i64> {
        let mut pooled = self.pools.read().await?;
        balance_in(&mut pooled.conn(), account, unit).await
    }

    /// The sum of the balances of every account whose key starts with `prefix`.
    pub async fn balance_with_prefix(&self, prefix: &str, unit: &str) -> StoreResult<i64> {
        let mut pooled = self.pools.read().await?;
        let pattern = format!("{}%", prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let row: (i64,) = pooled
            .conn()
            .fetch_one(
                sql("SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM balances
                     WHERE account LIKE $1 ESCAPE '\\' AND unit = $2")
                .bind(pattern)
                .bind(unit),
            )
            .await?;
        Ok(row.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tuangou_domain::ids::UserId;
    use tuangou_domain::ledger::{Hold, expiry_refunds};
    use tuangou_domain::money::Fen;

    async fn held(store: &Store, user: &str, amount: i64) {
        store
            .write_statement(
                sql("INSERT INTO balances (account, unit, balance) VALUES ($1, 'fen', $2)")
                    .bind(format!("customer:{user}:held"))
                    .bind(amount),
            )
            .await
            .unwrap();
    }

    /// Posts `entries` as a unit of work of their own.
    async fn post_alone(store: &Store, entries: &[Entry], now: Millis) -> StoreResult<Vec<EntryId>> {
        store
            .write((entries.to_vec(), now), |mut conn, (entries, now)| {
                Box::pin(async move { post_all(&mut conn, entries, *now).await })
            })
            .await
    }

    fn refunds(amounts: &[(&str, i64)]) -> Vec<Entry> {
        let holds: Vec<Hold> = amounts
            .iter()
            .map(|(user, paid)| Hold {
                membership: format!("m-{user}"),
                user: UserId::from_trusted(*user),
                paid: Fen::parse_positive("paid", *paid).unwrap(),
                from: tuangou_domain::ledger::PaidFrom::Wallet,
            })
            .collect();
        expiry_refunds(&holds)
    }

    /// A post's debits (one update on SQLite, one upsert in key order on PostgreSQL): all move when every one is
    /// covered; when one is not, the post fails and nothing moves.
    async fn several_debits_move_together_or_not_at_all(backend: tuangou_testkit::Backend) {
        let db = tuangou_testkit::TestDb::new(backend).await;
        let store = Store::open(&db.url, &crate::PoolSettings::default()).await.unwrap();
        held(&store, "a", 100).await;
        held(&store, "b", 50).await;

        let short = post_alone(&store, &refunds(&[("a", 100), ("b", 80)]), Millis(1)).await;
        assert!(matches!(short, Err(StoreError::InsufficientFunds(_))), "{short:?}");
        assert_eq!(store.balance("customer:a:held", "fen").await.unwrap(), 100, "a's debit moved back");
        assert_eq!(store.balance("customer:b:held", "fen").await.unwrap(), 50);
        assert_eq!(store.balance("customer:a:available", "fen").await.unwrap(), 0);

        post_alone(&store, &refunds(&[("a", 100), ("b", 50)]), Millis(2)).await.unwrap();
        for (user, refunded) in [("a", 100), ("b", 50)] {
            assert_eq!(store.balance(&format!("customer:{user}:held"), "fen").await.unwrap(), 0);
            assert_eq!(store.balance(&format!("customer:{user}:available"), "fen").await.unwrap(), refunded);
        }
        store.close().await;
    }

    /// A debit of an account that never moved is a debit of zero: refused, and no row is made for it. The accounts
    /// that may go negative do, in the same upsert as the others.
    async fn missing_accounts_have_nothing_and_external_ones_go_negative(backend: tuangou_testkit::Backend) {
        use tuangou_domain::ledger::{Account, Cause};
        let db = tuangou_testkit::TestDb::new(backend).await;
        let store = Store::open(&db.url, &crate::PoolSettings::default()).await.unwrap();
        let (rich, poor) = (UserId::from_trusted("rich"), UserId::from_trusted("poor"));
        let fen = |n| Fen::parse_positive("amount", n).unwrap();

        let funded = [
            Entry::transfer(
                Cause::Credit,
                Account::ExternalFunding,
                Account::CustomerAvailable(rich.clone()),
                fen(500),
            ),
            Entry::points(Cause::Reward, rich.clone(), 30),
        ];
        post_alone(&store, &funded, Millis(1)).await.unwrap();
        assert_eq!(store.balance("external:funding", "fen").await.unwrap(), -500);
        assert_eq!(store.balance("platform:points_issued", "points").await.unwrap(), -30);
        assert_eq!(store.balance("customer:rich:available", "fen").await.unwrap(), 500);

        let from_nothing = [
            Entry::transfer(
                Cause::Join,
                Account::CustomerAvailable(rich.clone()),
                Account::CustomerHeld(rich),
                fen(100),
            ),
            Entry::transfer(Cause::Join, Account::CustomerAvailable(poor.clone()), Account::CustomerHeld(poor), fen(1)),
        ];
        let refused = post_alone(&store, &from_nothing, Millis(2)).await;
        assert!(
            matches!(&refused, Err(StoreError::InsufficientFunds(keys)) if keys.contains("customer:poor:available"))
        );
        assert_eq!(store.balance("customer:rich:available", "fen").await.unwrap(), 500, "nothing moved");
        let mut pooled = store.pools.read().await.unwrap();
        let rows: (i64,) = pooled
            .conn()
            .fetch_one(sql("SELECT COUNT(*) FROM balances WHERE account LIKE 'customer:poor:%'"))
            .await
            .unwrap();
        assert_eq!(rows.0, 0, "no balance row for the refused debit");
        drop(pooled);
        store.close().await;
    }

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        assert_eq!(placeholder_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholder_rows(1, 4), "($1, $2, $3, $4)");
    }

    tuangou_testkit::on_both_backends!(
        several_debits_move_together_or_not_at_all,
        missing_accounts_have_nothing_and_external_ones_go_negative
    );
}
