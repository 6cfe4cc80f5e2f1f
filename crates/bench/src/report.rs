//! The printed report: a section per scenario as it finishes, and a table over the backends at the end.

use crate::floor::Floor;
use crate::race::Race;
use crate::raw::{RawRate, RawRates};
use crate::stats::Summary;
use std::collections::BTreeMap;
use tuangou_app::Violation;

/// Everything one backend came to.
pub struct Outcome {
    pub backend: &'static str,
    /// Scenario A, per client count.
    pub joins: Vec<(usize, Summary)>,
    pub floor: Floor,
    pub raw: RawRates,
    pub race: Race,
    pub violations: Vec<Violation>,
}

/// Joins per second over the engine's raw transactions per second.
fn ratio_of(joins: &Summary, raw: &RawRate) -> f64 {
    joins.per_second() / raw.per_second().max(1e-9)
}

pub fn joins(summary: &Summary, clients: usize) {
    println!("  A. joins ({clients} clients, {:.1} s)", summary.elapsed.as_secs_f64());
    println!("     {} requests, {} joined: {:.0} joins/s", summary.requests(), summary.succeeded, summary.per_second());
    latencies(summary);
    errors(summary);
    println!("     each join cost {}", summary.cost.describe());
}

pub fn floor(floor: &Floor, clients: usize) {
    println!("  HTTP floor ({clients} clients, requests that write nothing)");
    for (what, summary) in [("GET /healthz", &floor.bare), ("GET /api/v1/me", &floor.signed_in)] {
        println!(
            "     {what}: {:.0} req/s, latency ms p50 {:.1}, p99 {:.1}, errors {} ({}); each cost {}",
            summary.per_second(),
            summary.percentile_ms(50.0),
            summary.percentile_ms(99.0),
            summary.error_count(),
            summary.errors_line(),
            summary.cost.describe()
        );
    }
}

/// The floors over the raw rate: the ratio HTTP alone already caps a join at.
pub fn floor_ratio(floor: &Floor, raw: &RawRates) {
    println!(
        "  HTTP floor ÷ raw tx/s: GET /healthz {:.3}, GET /api/v1/me {:.3} (no join's ratio can pass these)",
        ratio_of(&floor.bare, &raw.spread),
        ratio_of(&floor.signed_in, &raw.spread)
    );
}

pub fn raw(rates: &RawRates) {
    println!("  raw engine rate (insert + counter update; {})", rates.setup);
    raw_run("the counter rows spread", &rates.spread);
    raw_run("all on one hot row", &rates.hot);
}

fn raw_run(what: &str, rate: &RawRate) {
    println!(
        "     {what}: {:.0} tx/s ({} in {:.1} s); each cost {}",
        rate.per_second(),
        rate.committed,
        rate.elapsed.as_secs_f64(),
        rate.cost.describe()
    );
    for (error, n) in &rate.errors {
        println!("       error ×{n}: {error}");
    }
}

pub fn ratio(clients: usize, joins: &Summary, raw: &RawRates) {
    let ratio = ratio_of(joins, &raw.spread);
    println!(
        "  {clients} clients: joins/s ÷ raw tx/s = {ratio:.3} (a join costs about {:.1} raw transactions)",
        1.0 / ratio.max(1e-9)
    );
    println!("     measured, a join used {} of a raw transaction", joins.cost.times(&raw.spread.cost));
}

pub fn race(race: &Race, clients: usize) {
    let summary = &race.summary;
    println!("  B. race ({clients} clients at once, {:.2} s)", summary.elapsed.as_secs_f64());
    println!("     {} joined: {:.0} joins/s", summary.succeeded, summary.per_second());
    latencies(summary);
    errors(summary);
    let groups = &race.groups;
    let statuses: Vec<String> = groups.by_status.iter().map(|(status, n)| format!("{n} {status}")).collect();
    println!(
        "     groups: {} ({}), {} members",
        groups.by_status.values().sum::<usize>(),
        statuses.join(", "),
        groups.members
    );
    println!("     over-fill: {}", groups.overfilled());
    for violation in &groups.violations {
        println!("     VIOLATION: {violation}");
    }
}

pub fn check(violations: &[Violation]) {
    if violations.is_empty() {
        println!("  invariants (app.check): all hold");
    } else {
        println!("  invariants (app.check): {} BROKEN", violations.len());
        for v in violations {
            println!("     invariant {}: {}", v.invariant, v.detail);
        }
    }
}

fn latencies(summary: &Summary) {
    println!(
        "     latency ms: p50 {:.1}, p99 {:.1}, max {:.1}",
        summary.percentile_ms(50.0),
        summary.percentile_ms(99.0),
        summary.max_ms()
    );
}

fn errors(summary: &Summary) {
    println!("     errors: {} ({})", summary.error_count(), summary.errors_line());
    for (kind, example) in summary.error_examples() {
        println!("       e.g. {kind}: {}", truncate(example, 300));
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The middle value (the mean of the two middle ones for an even count); `NaN` for none.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => f64::NAN,
        n if n.is_multiple_of(2) => (values[middle - 1] + values[middle]) / 2.0,
        _ => values[middle],
    }
}

/// One line of the table: a backend at one client count, from one run (or the medians over several runs).
struct Row {
    backend: &'static str,
    clients: usize,
    joins_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
    raw: f64,
    hot: f64,
    ratio: f64,
    /// CPU per join (all processes), in milliseconds; `NaN` where not measured.
    cpu_ms: f64,
    /// Of it, this process's (the service and the load generator); the rest is mostly the database's.
    own_cpu_ms: f64,
    /// Statements sent to PostgreSQL per join; `NaN` on SQLite.
    statements: f64,
    floor_bare: f64,
    floor_signed_in: f64,
    race_joins_per_second: f64,
    race_p99_ms: f64,
    race_errors: usize,
    overfilled: usize,
    holds: bool,
}

impl Row {
    fn of(o: &Outcome) -> Vec<Row> {
        let race = &o.race.summary;
        o.joins
            .iter()
            .map(|(clients, joins)| Row {
                backend: o.backend,
                clients: *clients,
                joins_per_second: joins.per_second(),
                p50_ms: joins.percentile_ms(50.0),
                p99_ms: joins.percentile_ms(99.0),
                errors: joins.error_count(),
                raw: o.raw.spread.per_second(),
                hot: o.raw.hot.per_second(),
                ratio: ratio_of(joins, &o.raw.spread),
                cpu_ms: joins.cost.cpu_ms.unwrap_or(f64::NAN),
                own_cpu_ms: joins.cost.own_cpu_ms.unwrap_or(f64::NAN),
                statements: joins.cost.statements.unwrap_or(f64::NAN),
                floor_bare: o.floor.bare.per_second(),
                floor_signed_in: o.floor.signed_in.per_second(),
                race_joins_per_second: race.per_second(),
                race_p99_ms: race.percentile_ms(99.0),
                race_errors: race.error_count(),
                overfilled: o.race.groups.overfilled(),
                holds: o.violations.is_empty(),
            })
            .collect()
    }

    /// The median of each figure over `rows` (one backend and client count); counts are summed, and the check
    /// holds only if it held every time.
    fn median_of(rows: &[&Row]) -> Row {
        let median = |figure: fn(&Row) -> f64| median(rows.iter().map(|r| figure(r)).collect());
        Row {
            backend: rows[0].backend,
            clients: rows[0].clients,
            joins_per_second: median(|r| r.joins_per_second),
            p50_ms: median(|r| r.p50_ms),
            p99_ms: median(|r| r.p99_ms),
            errors: rows.iter().map(|r| r.errors).sum(),
            raw: median(|r| r.raw),
            hot: median(|r| r.hot),
            ratio: median(|r| r.ratio),
            cpu_ms: median(|r| r.cpu_ms),
            own_cpu_ms: median(|r| r.own_cpu_ms),
            statements: median(|r| r.statements),
            floor_bare: median(|r| r.floor_bare),
            floor_signed_in: median(|r| r.floor_signed_in),
            race_joins_per_second: median(|r| r.race_joins_per_second),
            race_p99_ms: median(|r| r.race_p99_ms),
            race_errors: rows.iter().map(|r| r.race_errors).sum(),
            overfilled: rows.iter().map(|r| r.overfilled).sum(),
            holds: rows.iter().all(|r| r.holds),
        }
    }

    fn print(&self, label: &str) {
        println!(
            "{:<9}{:>8}{:>9.0}{:>8.1}{:>8.1}{:>8}{:>10.0}{:>10.0}{:>8.3}{:>8.2}{:>8.2}{:>7.1}{:>10.0}{:>9.0}  |      {:>9.0}{:>8.1}{:>8}{:>10}  {}{label}",
            self.backend,
            self.clients,
            self.joins_per_second,
            self.p50_ms,
            self.p99_ms,
            self.errors,
            self.raw,
            self.hot,
            self.ratio,
            self.cpu_ms,
            self.own_cpu_ms,
            self.statements,
            self.floor_bare,
            self.floor_signed_in,
            self.race_joins_per_second,
            self.race_p99_ms,
            self.race_errors,
            self.overfilled,
            if self.holds { "ok" } else { "BROKEN" },
        );
    }
}

/// The table over all backends (and runs). `raw tx/s` is the engine's ceiling (the counter rows spread; how it
/// was measured is printed under the table), `hot tx/s` the same on one row, `ratio` joins/s ÷ raw tx/s, `cpu ms`
/// the CPU of all processes per join, `svc ms` this process's share of it (the service and the load generator;
/// the rest is mostly PostgreSQL's), `stmts` the statements sent to PostgreSQL per join (round trips), and
/// `health/s` and `me/s` the HTTP floor (measured at the first client count; see `floor.rs`). With several runs
/// per backend, a line per backend and client count follows with the median of each figure (this machine's
/// figures vary from run to run).
pub fn summary(outcomes: &[Outcome]) {
    println!();
    println!(
        "{:<9}{:>8}{:>9}{:>8}{:>8}{:>8}{:>10}{:>10}{:>8}{:>8}{:>8}{:>7}{:>10}{:>9}  | race:{:>9}{:>8}{:>8}{:>10}  check",
        "backend",
        "clients",
        "joins/s",
        "p50ms",
        "p99ms",
        "errors",
        "raw tx/s",
        "hot tx/s",
        "ratio",
        "cpu ms",
        "svc ms",
        "stmts",
        "health/s",
        "me/s",
        "joins/s",
        "p99ms",
        "errors",
        "overfill"
    );
    let rows: Vec<Row> = outcomes.iter().flat_map(Row::of).collect();
    for row in &rows {
        row.print("");
    }
    let mut groups: Vec<(&str, usize)> = rows.iter().map(|r| (r.backend, r.clients)).collect();
    groups.sort();
    groups.dedup();
    for (backend, clients) in groups {
        let runs: Vec<&Row> = rows.iter().filter(|r| r.backend == backend && r.clients == clients).collect();
        if runs.len() > 1 {
            Row::median_of(&runs).print(&format!("  (median of {} runs)", runs.len()));
        }
    }
    raw_setups(outcomes);
}

/// Under the table, how each backend's `raw tx/s` was measured: the two are not measured alike (C-level on
/// SQLite, sqlx on PostgreSQL), so the column is read with this beside it.
fn raw_setups(outcomes: &[Outcome]) {
    let setups: BTreeMap<&str, &str> = outcomes.iter().map(|o| (o.backend, o.raw.setup.as_str())).collect();
    for (backend, setup) in setups {
        println!("raw tx/s on {backend}: {setup}");
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_two() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![7.0]), 7.0);
        assert!(median(Vec::new()).is_nan());
    }
}
