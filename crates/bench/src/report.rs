//! The printed report: a section per scenario as it finishes, and a table over the backends at the end.

use crate::race::Race;
use crate::raw::{RawRate, RawRates};
use crate::stats::Summary;
use tuangou_app::Violation;

/// Everything one backend came to.
pub struct Outcome {
    pub backend: &'static str,
    /// Scenario A, per client count.
    pub joins: Vec<(usize, Summary)>,
    pub raw: RawRates,
    pub race: Race,
    pub violations: Vec<Violation>,
}

/// Joins per second over the engine's raw transactions per second.
fn ratio_of(joins: &Summary, raw: &RawRate) -> f64 {
    joins.joins_per_second() / raw.per_second().max(1e-9)
}

pub fn joins(summary: &Summary, clients: usize) {
    println!("  A. joins ({clients} clients, {:.1} s)", summary.elapsed.as_secs_f64());
    println!(
        "     {} requests, {} joined: {:.0} joins/s",
        summary.requests(),
        summary.created,
        summary.joins_per_second()
    );
    latencies(summary);
    errors(summary);
}

pub fn raw(rates: &RawRates) {
    println!("  raw engine rate (insert + counter update, {} concurrent tasks)", rates.spread.tasks);
    raw_run("a counter row per task", &rates.spread);
    raw_run("all on one hot row", &rates.hot);
}

fn raw_run(what: &str, rate: &RawRate) {
    println!("     {what}: {:.0} tx/s ({} in {:.1} s)", rate.per_second(), rate.committed, rate.elapsed.as_secs_f64());
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
}

pub fn race(race: &Race, clients: usize) {
    let summary = &race.summary;
    println!("  B. race ({clients} clients at once, {:.2} s)", summary.elapsed.as_secs_f64());
    println!("     {} joined: {:.0} joins/s", summary.created, summary.joins_per_second());
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

/// The table over all backends. `raw tx/s` is the engine's ceiling (a counter row per task), `hot tx/s` the same
/// on one row, and `ratio` joins/s ÷ raw tx/s.
pub fn summary(outcomes: &[Outcome]) {
    println!();
    println!(
        "{:<9}{:>8}{:>9}{:>8}{:>8}{:>8}{:>10}{:>10}{:>8}  | race:{:>9}{:>8}{:>8}{:>10}  check",
        "backend",
        "clients",
        "joins/s",
        "p50ms",
        "p99ms",
        "errors",
        "raw tx/s",
        "hot tx/s",
        "ratio",
        "joins/s",
        "p99ms",
        "errors",
        "overfill"
    );
    for o in outcomes {
        let race = &o.race.summary;
        for (clients, joins) in &o.joins {
            println!(
                "{:<9}{:>8}{:>9.0}{:>8.1}{:>8.1}{:>8}{:>10.0}{:>10.0}{:>8.3}  |      {:>9.0}{:>8.1}{:>8}{:>10}  {}",
                o.backend,
                clients,
                joins.joins_per_second(),
                joins.percentile_ms(50.0),
                joins.percentile_ms(99.0),
                joins.error_count(),
                o.raw.spread.per_second(),
                o.raw.hot.per_second(),
                ratio_of(joins, &o.raw.spread),
                race.joins_per_second(),
                race.percentile_ms(99.0),
                race.error_count(),
                o.race.groups.overfilled(),
                if o.violations.is_empty() { "ok" } else { "BROKEN" },
            );
        }
    }
}
