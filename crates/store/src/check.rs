//! The ledger half of the invariant check (SPEC.md, invariant 1), run on the live data.

use crate::db::sql;
use crate::{Store, StoreResult};
pub use tuangou_domain::ledger::Account;

/// One broken invariant, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant of SPEC.md (1–7).
    pub invariant: u8,
    pub detail: String,
}

impl Store {
    /// Invariant 1: every unit sums to zero over all accounts; every entry balances per unit; each stored balance
    /// equals the sum of its postings; no account but the external ones is below zero.
    pub async fn ledger_violations(&self) -> StoreResult<Vec<Violation>> {
        let mut pooled = self.pools.read().await?;
        let mut conn = pooled.conn();
        let mut found = Vec::new();
        let totals: Vec<(String, i64)> = conn
            .fetch_all(sql(
                "SELECT unit, CAST(SUM(amount) AS BIGINT) FROM ledger_postings GROUP BY unit HAVING SUM(amount) <> 0",
            ))
            .await?;
        for (unit, total) in totals {
            found.push(Violation { invariant: 1, detail: format!("the {unit} postings sum to {total}, not 0") });
        }
        let unbalanced: Vec<(String, String, i64)> = conn
            .fetch_all(sql("SELECT entry_id, unit, CAST(SUM(amount) AS BIGINT) FROM ledger_postings
                 GROUP BY entry_id, unit HAVING SUM(amount) <> 0 ORDER BY entry_id LIMIT 100"))
            .await?;
        for (entry, unit, sum) in unbalanced {
            found.push(Violation { invariant: 1, detail: format!("entry {entry} does not balance: {sum} {unit}") });
        }
        let drifted: Vec<(String, String, i64, i64)> = conn
            .fetch_all(sql("SELECT b.account, b.unit, b.balance, CAST(COALESCE(SUM(p.amount), 0) AS BIGINT)
                 FROM balances b LEFT JOIN ledger_postings p ON p.account = b.account AND p.unit = b.unit
                 GROUP BY b.account, b.unit, b.balance
                 HAVING b.balance <> COALESCE(SUM(p.amount), 0) ORDER BY b.account LIMIT 100"))
            .await?;
        for (account, unit, balance, sum) in drifted {
            found.push(Violation {
                invariant: 1,
                detail: format!("{account} shows {balance} {unit} but its postings sum to {sum}"),
            });
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
