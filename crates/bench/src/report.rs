//! The printed report: a section per scenario as it finishes, and a table over the backends at the end.

use crate::race::Race;
use crate::raw::RawRate;
use crate::stats::Summary;
use tuangou_app::Violation;

/// Everything one backend came to.
pub struct Outcome {
    pub backend: &'static str,
    pub joins: Summary,
    pub raw: RawRate,
    pub race: Race,
    pub violations: Vec<Violation>,
}

impl Outcome {
    /// Joins per second over the engine's raw transactions per second.
    pub fn ratio(&self) -> f64 {
        self.joins.joins_per_second() / self.raw.per_second().max(1e-9)
    }
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

pub fn raw(rate: &RawRate) {
    println!(
        "  raw engine rate ({} tasks, {:.1} s): {} transactions, {:.0} tx/s",
        rate.tasks,
        rate.elapsed.as_secs_f64(),
        rate.committed,
        rate.per_second()
    );
    for (error, n) in &rate.errors {
        println!("     error ×{n}: {error}");
    }
}

pub fn ratio(outcome_joins: &Summary, rate: &RawRate) {
    let ratio = outcome_joins.joins_per_second() / rate.per_second().max(1e-9);
    println!("  joins/s ÷ raw tx/s = {ratio:.3} (a join costs about {:.1} raw transactions)", 1.0 / ratio.max(1e-9));
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

/// The table over all backends.
pub fn summary(outcomes: &[Outcome]) {
    println!();
    println!(
        "{:<9}{:>9}{:>8}{:>8}{:>8}{:>10}{:>8}  | race:{:>9}{:>8}{:>8}{:>10}  check",
        "backend", "joins/s", "p50ms", "p99ms", "errors", "raw tx/s", "ratio", "joins/s", "p99ms", "errors", "overfill"
    );
    for o in outcomes {
        let race = &o.race.summary;
        println!(
            "{:<9}{:>9.0}{:>8.1}{:>8.1}{:>8}{:>10.0}{:>8.3}  |      {:>9.0}{:>8.1}{:>8}{:>10}  {}",
            o.backend,
            o.joins.joins_per_second(),
            o.joins.percentile_ms(50.0),
            o.joins.percentile_ms(99.0),
            o.joins.error_count(),
            o.raw.per_second(),
            o.ratio(),
            race.joins_per_second(),
            race.percentile_ms(99.0),
            race.error_count(),
            o.race.groups.overfilled(),
            if o.violations.is_empty() { "ok" } else { "BROKEN" },
        );
    }
}
