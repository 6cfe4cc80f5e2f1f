//! The draw against FAIRNESS.md's test vectors, which every implementation must reproduce bit for bit.
//!
//! The vectors are vendored beside this file so the crate tests alone; a second test checks the copy still equals
//! the shared original wherever that is checked out next to the repository.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use tuangou_domain::draw::{
    self, ALGORITHM, GroupRecord, Member, Mismatch, RandomStream, ServerSeed, participants_digest, select_winners,
    uniform, verify_record,
};

#[derive(Deserialize)]
struct Vectors {
    algorithm: String,
    vectors: Vec<Vector>,
    records: Vec<RecordCase>,
    uniform: Vec<UniformCase>,
}

#[derive(Deserialize)]
struct Vector {
    group_id: String,
    winners_per_group: usize,
    server_seed: String,
    seed_commitment: String,
    members: Vec<Member>,
    participants_digest: String,
    winners: Vec<i64>,
}

#[derive(Deserialize)]
struct RecordCase {
    expect: String,
    why: Option<String>,
    record: GroupRecord,
}

#[derive(Deserialize)]
struct UniformCase {
    m: u64,
    stream: Vec<String>,
    expected: u64,
}

fn vendored_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/draw-vectors.json")
}

fn load() -> Vectors {
    let text = std::fs::read_to_string(vendored_path()).expect("read the vendored vectors");
    serde_json::from_str(&text).expect("parse the vendored vectors")
}

#[test]
fn every_vector_reproduces() {
    let vectors = load();
    assert_eq!(vectors.algorithm, ALGORITHM);
    assert!(!vectors.vectors.is_empty());
    for v in &vectors.vectors {
        let seed = ServerSeed::from_hex(&v.server_seed).expect("a valid seed");
        assert_eq!(seed.commitment(), v.seed_commitment, "commitment of {}", v.group_id);
        assert_eq!(participants_digest(&v.members), v.participants_digest, "digest of {}", v.group_id);

        let mut stream = RandomStream::new(&seed, &v.group_id, &v.participants_digest);
        let winners = select_winners(&mut stream, v.members.len(), v.winners_per_group).expect("a draw");
        assert_eq!(winners, v.winners, "winners of {}", v.group_id);

        let outcome = draw::draw(&seed, &v.group_id, &v.members, v.winners_per_group).expect("a draw");
        assert_eq!(outcome.participants_digest, v.participants_digest);
        assert_eq!(outcome.winners, v.winners);
    }
}

#[test]
fn the_digest_does_not_depend_on_the_order_members_are_given() {
    for v in &load().vectors {
        let mut reversed = v.members.clone();
        reversed.reverse();
        assert_eq!(participants_digest(&reversed), v.participants_digest, "{}", v.group_id);
    }
}

#[test]
fn every_record_is_judged_as_expected() {
    let vectors = load();
    assert!(vectors.records.iter().any(|r| r.expect == "verified"));
    assert!(vectors.records.iter().any(|r| r.expect == "rejected"));
    for case in &vectors.records {
        let name = format!("{} ({})", case.record.id, case.why.as_deref().unwrap_or("untouched"));
        match (case.expect.as_str(), verify_record(&case.record)) {
            ("verified", Ok(())) => {}
            ("verified", Err(problems)) => panic!("{name} should verify, but: {problems:?}"),
            ("rejected", Err(problems)) => assert_names_the_tampering(&name, case.why.as_deref(), &problems),
            ("rejected", Ok(())) => panic!("{name} should be rejected"),
            (other, _) => panic!("{name}: unknown expectation {other:?}"),
        }
    }
}

/// A rejection must point at what was changed, not merely fail.
fn assert_names_the_tampering(name: &str, why: Option<&str>, problems: &[Mismatch]) {
    let expected: fn(&Mismatch) -> bool = match why.unwrap_or_default() {
        w if w.contains("winner") => |p| matches!(p, Mismatch::Winners { .. }),
        w if w.contains("seed") => |p| matches!(p, Mismatch::Commitment { .. }),
        w if w.contains("member") => |p| matches!(p, Mismatch::Digest { .. }),
        w if w.contains("commitment") => |p| matches!(p, Mismatch::Commitment { .. }),
        _ => |_| true,
    };
    assert!(problems.iter().any(expected), "{name}: {problems:?}");
}

#[test]
fn every_uniform_case_reproduces() {
    let vectors = load();
    assert!(!vectors.uniform.is_empty());
    for case in &vectors.uniform {
        let numbers: Vec<u64> = case.stream.iter().map(|n| n.parse().expect("a u64")).collect();
        // Some cases list numbers after the accepted one: they must simply go unread.
        assert_eq!(uniform(case.m, &mut numbers.iter().copied()), Some(case.expected), "m = {}", case.m);
    }
}

#[test]
fn the_vendored_vectors_equal_the_shared_ones() {
    let vendored = std::fs::read(vendored_path()).expect("read the vendored vectors");
    serde_json::from_slice::<Vectors>(&vendored).expect("parse the vendored vectors");
    // The shared folder sits beside the repository (…/shared next to …/main), or inside it in other checkouts.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates =
        [manifest.join("../../../shared/draw-vectors.json"), manifest.join("../../shared/draw-vectors.json")];
    for shared in candidates.iter().filter(|p| p.exists()) {
        let original = std::fs::read(shared).expect("read the shared vectors");
        assert!(original == vendored, "{} differs from {}: copy it again", vendored_path().display(), shared.display());
    }
}
