//! Reconciliation (PAYMENTS.md): a provider's bill for one business day against our books for the same day.
//!
//! Both sides are lists of lines — payments by `out_trade_no` (our payment's id) and refunds by `out_refund_no`
//! (our refund's id) — matched by kind and id, then by amount. What does not match is recorded as one of three
//! kinds of mismatch; nothing here (or anywhere) fixes anything:
//! - **missing on our side**: the bill lists it, our books for that day do not (we have no such payment, we do
//!   not think it is paid, or we count it on another day);
//! - **missing on theirs**: our books list it, the bill does not;
//! - **amount differs**: both list it, for different amounts.
//!
//! A bill that lists the same id twice is summed, so a duplicated line shows as an amount that differs.

use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Money in: matched by `out_trade_no`.
    Payment,
    /// Money back: matched by `out_refund_no`.
    Refund,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Payment => "payment",
            Kind::Refund => "refund",
        }
    }
}

/// One side's record of an id: its amount (fen), when it happened, and (ours only) our state of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    pub amount: i64,
    /// When it was paid or refunded; `None` when our record of it never was.
    pub at: Option<Millis>,
    /// Ours only: `paid`, `refunded`, `created`, `closed` for a payment; `requested`, `succeeded`, `failed` for
    /// a refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A line of either side: a payment or a refund, by our id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub kind: Kind,
    pub id: String,
    pub side: Side,
}

/// An id the two sides do not agree on, with what each side says (absent: that side does not list it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    pub id: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ours: Option<Side>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theirs: Option<Side>,
}

/// Every mismatch of a day, by kind (each list ordered by time, then id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatches {
    pub missing_ours: Vec<Mismatch>,
    pub missing_theirs: Vec<Mismatch>,
    pub amount_differs: Vec<Mismatch>,
}

impl Mismatches {
    pub fn is_empty(&self) -> bool {
        self.missing_ours.is_empty() && self.missing_theirs.is_empty() && self.amount_differs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.missing_ours.len() + self.missing_theirs.len() + self.amount_differs.len()
    }
}

/// What comparing a day's two sides found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Lines on the provider's bill.
    pub bill_lines: usize,
    /// Our payments and refunds counted on that day.
    pub our_lines: usize,
    /// Ids both sides list for the same amount.
    pub matched: usize,
    pub mismatches: Mismatches,
}

/// Compares the provider's bill (`theirs`) with our books for the same day (`ours`, at most one line per kind and
/// id). Pure: the caller fetched both sides, and records the outcome.
pub fn compare(theirs: &[Line], ours: &[Line]) -> Outcome {
    let mut bill: BTreeMap<(Kind, &str), Side> = BTreeMap::new();
    for line in theirs {
        bill.entry((line.kind, line.id.as_str()))
            .and_modify(|side| side.amount = side.amount.saturating_add(line.side.amount))
            .or_insert_with(|| Side { status: None, ..line.side.clone() });
    }
    let books: BTreeMap<(Kind, &str), &Side> = ours.iter().map(|l| ((l.kind, l.id.as_str()), &l.side)).collect();
    let mut outcome = Outcome { bill_lines: theirs.len(), our_lines: books.len(), ..Outcome::default() };
    for ((kind, id), their) in &bill {
        let mismatch = |ours: Option<&Side>| Mismatch {
            id: (*id).to_owned(),
            kind: *kind,
            ours: ours.cloned(),
            theirs: Some(their.clone()),
        };
        match books.get(&(*kind, *id)) {
            None => outcome.mismatches.missing_ours.push(mismatch(None)),
            Some(our) if our.amount != their.amount => outcome.mismatches.amount_differs.push(mismatch(Some(our))),
            Some(_) => outcome.matched += 1,
        }
    }
    for ((kind, id), our) in &books {
        if !bill.contains_key(&(*kind, *id)) {
            outcome.mismatches.missing_theirs.push(Mismatch {
                id: (*id).to_owned(),
                kind: *kind,
                ours: Some((*our).clone()),
                theirs: None,
            });
        }
    }
    let when = |m: &Mismatch| (m.theirs.as_ref().or(m.ours.as_ref()).and_then(|s| s.at), m.kind, m.id.clone());
    for list in [
        &mut outcome.mismatches.missing_ours,
        &mut outcome.mismatches.missing_theirs,
        &mut outcome.mismatches.amount_differs,
    ] {
        list.sort_by_key(when);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: Kind, id: &str, amount: i64, at: i64, status: Option<&str>) -> Line {
        Line { kind, id: id.into(), side: Side { amount, at: Some(Millis(at)), status: status.map(Into::into) } }
    }

    #[test]
    fn matching_days_match_and_each_difference_is_named() {
        let theirs = [
            line(Kind::Payment, "p1", 1_990, 1, None),
            line(Kind::Payment, "p2", 500, 2, None),
            line(Kind::Refund, "r1", 1_990, 3, None),
        ];
        let ours = [
            line(Kind::Refund, "r1", 1_990, 3, Some("succeeded")),
            line(Kind::Payment, "p2", 500, 2, Some("paid")),
            line(Kind::Payment, "p1", 1_990, 1, Some("refunded")),
        ];
        let all = compare(&theirs, &ours);
        assert_eq!((all.bill_lines, all.our_lines, all.matched), (3, 3, 3));
        assert!(all.mismatches.is_empty());

        // The same id as a payment and as a refund are two lines, not one.
        let ours = [
            line(Kind::Payment, "p1", 1_000, 1, Some("paid")),
            line(Kind::Payment, "p3", 700, 4, Some("paid")),
            line(Kind::Payment, "r1", 1_990, 3, Some("paid")),
        ];
        let found = compare(&theirs, &ours);
        assert_eq!(found.matched, 0);
        let ids = |list: &[Mismatch]| list.iter().map(|m| (m.kind, m.id.clone())).collect::<Vec<_>>();
        assert_eq!(ids(&found.mismatches.missing_ours), [(Kind::Payment, "p2".into()), (Kind::Refund, "r1".into())]);
        assert_eq!(ids(&found.mismatches.missing_theirs), [(Kind::Payment, "r1".into()), (Kind::Payment, "p3".into())]);
        assert_eq!(ids(&found.mismatches.amount_differs), [(Kind::Payment, "p1".into())]);
        let differs = &found.mismatches.amount_differs[0];
        assert_eq!((differs.ours.as_ref().unwrap().amount, differs.theirs.as_ref().unwrap().amount), (1_000, 1_990));
        assert!(found.mismatches.missing_ours[0].ours.is_none() && found.mismatches.missing_theirs[0].theirs.is_none());
        assert_eq!(found.mismatches.len(), 5);
    }

    #[test]
    fn a_line_listed_twice_is_summed_and_differs() {
        let theirs = [line(Kind::Payment, "p1", 500, 1, None), line(Kind::Payment, "p1", 500, 1, None)];
        let found = compare(&theirs, &[line(Kind::Payment, "p1", 500, 1, Some("paid"))]);
        assert_eq!(found.bill_lines, 2);
        assert_eq!(found.mismatches.amount_differs.len(), 1);
        assert_eq!(found.mismatches.amount_differs[0].theirs.as_ref().unwrap().amount, 1_000);
    }

    #[test]
    fn mismatches_keep_their_shape_as_json() {
        let found = compare(&[line(Kind::Refund, "r9", 10, 5, None)], &[]);
        let text = serde_json::to_string(&found.mismatches).unwrap();
        assert_eq!(
            text,
            r#"{"missing_ours":[{"id":"r9","kind":"refund","theirs":{"amount":10,"at":5}}],"missing_theirs":[],"amount_differs":[]}"#
        );
        assert_eq!(serde_json::from_str::<Mismatches>(&text).unwrap(), found.mismatches);
    }
}
