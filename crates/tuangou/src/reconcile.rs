//! `tuangou reconcile`: runs the reconciliation use case for one provider and day and prints its result.

use tuangou_app::payments::reconcile::Reconciliation;
use tuangou_domain::money::Fen;
use tuangou_domain::reconciliation::{Mismatch, Side};
use tuangou_domain::time::china_time_seconds;

fn yuan(fen: i64) -> String {
    Fen::from_stored(fen).map_or_else(|| format!("{fen} fen"), |f| format!("{} yuan", f.yuan_text()))
}

/// `19.90 yuan at 2025-11-27 10:00:00 (paid)`.
fn side(side: &Side) -> String {
    let mut text = yuan(side.amount);
    if let Some(at) = side.at {
        text.push_str(&format!(" at {} CST", china_time_seconds(at)));
    }
    if let Some(status) = &side.status {
        text.push_str(&format!(" ({status})"));
    }
    text
}

fn mismatch(what: &str, m: &Mismatch) -> String {
    let ours = m.ours.as_ref().map_or_else(|| "none".to_owned(), side);
    let theirs = m.theirs.as_ref().map_or_else(|| "none".to_owned(), side);
    format!("{what}: {} {} — ours: {ours}; theirs: {theirs}", m.kind.as_str(), m.id)
}

/// The result as lines for standard output: a summary, then one line per mismatch.
pub fn report(result: &Reconciliation) -> Vec<String> {
    let status = if result.matched { "matched" } else { "mismatched" };
    let mut lines = vec![format!(
        "{} {}: {status} (lines: {} on the bill, {} of ours, {} matched)",
        result.provider, result.day, result.bill_lines, result.our_lines, result.matched_lines
    )];
    let m = &result.mismatches;
    lines.extend(m.missing_ours.iter().map(|x| mismatch("missing on our side", x)));
    lines.extend(m.missing_theirs.iter().map(|x| mismatch("missing on theirs", x)));
    lines.extend(m.amount_differs.iter().map(|x| mismatch("amount differs", x)));
    lines
}
