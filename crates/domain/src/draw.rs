//! The draw: tuangou-draw-v1 of FAIRNESS.md, bit for bit.
//!
//! Why it is built this way: the outcome must be fixed before anyone joins, must depend on exactly who joined, and
//! must be recomputable by anyone, offline, from the group's public record. So a group's secret [`ServerSeed`] is
//! committed to (its SHA-256) when the group opens; the members are folded into a public participants digest; and
//! the only randomness is an HMAC-SHA256 stream keyed by the seed over that digest. Numbers are taken from the
//! stream without modulo bias and a partial Fisher–Yates shuffle picks the K winners. No library sampler is used
//! (their output may change between versions) and nothing here makes randomness: the caller brings the seed's bytes
//! from the operating system, so this module stays pure and every function in it is a function of its inputs.
//!
//! [`verify_record`] is the verifier behind `tuangou verify-draw`: it takes a group record as the API serves it and
//! lists every way the record disagrees with the algorithm.

use crate::Invalid;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The algorithm's name, as a drawn group's record carries it.
pub const ALGORITHM: &str = "tuangou-draw-v1";

/// The most members a draw accepts (groups have at most 1,000): bounds the memory a hostile record can cost.
pub const MAX_MEMBERS: usize = 1_000_000;

type HmacSha256 = Hmac<Sha256>;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A group's secret: 32 bytes from the operating system's CSPRNG, revealed only with the draw.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerSeed([u8; 32]);

// Before the draw the seed is the one secret that decides it: `Debug` (and so any log line) never shows it.
impl std::fmt::Debug for ServerSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSeed(…)")
    }
}

impl ServerSeed {
    /// Wraps fresh random bytes (the caller reads them from the operating system).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads a seed as stored or revealed: exactly 64 lowercase hex characters.
    pub fn from_hex(text: &str) -> Result<Self, Invalid> {
        let mut bytes = [0u8; 32];
        let ok = text.len() == 64 && is_lower_hex(text) && hex::decode_to_slice(text, &mut bytes).is_ok();
        if ok { Ok(Self(bytes)) } else { Err(Invalid::field("server_seed", "must be 64 lowercase hex characters")) }
    }

    /// The seed as 64 lowercase hex characters: to store it, and to reveal it with the draw.
    pub fn reveal_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `seed_commitment`: lowercase hex of SHA-256 of the 32 raw bytes, public from the group's first moment.
    pub fn commitment(&self) -> String {
        sha256_hex(&self.0)
    }
}

/// One membership as the draw sees it, and as the group record shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// 1..N in the order the joins were admitted.
    pub seq: i64,
    /// A public pseudonym of the membership (see [`check_ticket`]).
    pub ticket: String,
    /// Stored verbatim (see [`check_client_seed`]).
    pub client_seed: String,
}

/// A ticket is 1–64 characters of `[A-Za-z0-9_-]`. It cannot hold `:` or a line break, so the digest's lines
/// `{seq}:{ticket}:{client_seed}` cannot be forged by shifting text between fields or members.
pub fn check_ticket(ticket: &str) -> Result<(), Invalid> {
    let ok =
        (1..=64).contains(&ticket.len()) && ticket.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(Invalid::field("ticket", "must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -")) }
}

/// A client seed is 1–64 Unicode scalar values with no control characters (so no line break can enter the digest),
/// kept exactly as given: no trimming, no normalisation.
pub fn check_client_seed(client_seed: &str) -> Result<(), Invalid> {
    if !(1..=64).contains(&client_seed.chars().count()) {
        return Err(Invalid::field("client_seed", "must be 1 to 64 characters"));
    }
    if client_seed.chars().any(char::is_control) {
        return Err(Invalid::field("client_seed", "must not contain control characters"));
    }
    Ok(())
}

/// The client seed to store for a join: the customer's own when given, else (absent or empty) 32 lowercase hex
/// characters of the server's `random` bytes, as FAIRNESS.md says.
pub fn client_seed_or_random(given: Option<&str>, random: [u8; 16]) -> Result<String, Invalid> {
    match given {
        Some(seed) if !seed.is_empty() => check_client_seed(seed).map(|()| seed.to_owned()),
        _ => Ok(hex::encode(random)),
    }
}

/// `participants_digest`: lowercase hex of SHA-256 over the lines `{seq}:{ticket}:{client_seed}` in ascending seq,
/// joined by `\n`, with no trailing newline. Members may be passed in any order.
pub fn participants_digest(members: &[Member]) -> String {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by_key(|m| m.seq);
    let lines: Vec<String> = sorted.iter().map(|m| format!("{}:{}:{}", m.seq, m.ticket, m.client_seed)).collect();
    sha256_hex(lines.join("\n").as_bytes())
}

/// The draw's numbers: block `i` is HMAC-SHA256(seed, `tuangou-draw-v1|{group_id}|{participants_digest}|{i}`),
/// read as four big-endian u64s. Endless: [`Iterator::next`] always answers.
pub struct RandomStream {
    keyed: HmacSha256,
    prefix: String,
    block: u64,
    numbers: [u64; 4],
    used: usize,
}

impl RandomStream {
    /// `group_id` exactly as the API shows it.
    pub fn new(seed: &ServerSeed, group_id: &str, participants_digest: &str) -> Self {
        let keyed = HmacSha256::new_from_slice(&seed.0).expect("HMAC takes a key of any length");
        let prefix = format!("{ALGORITHM}|{group_id}|{participants_digest}|");
        Self { keyed, prefix, block: 0, numbers: [0; 4], used: 4 }
    }

    fn refill(&mut self) {
        let mut mac = self.keyed.clone();
        mac.update(self.prefix.as_bytes());
        mac.update(self.block.to_string().as_bytes());
        let bytes = mac.finalize().into_bytes();
        self.numbers = std::array::from_fn(|i| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[8 * i..8 * i + 8]);
            u64::from_be_bytes(word)
        });
        self.block += 1;
        self.used = 0;
    }
}

impl Iterator for RandomStream {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.used == self.numbers.len() {
            self.refill();
        }
        let number = self.numbers[self.used];
        self.used += 1;
        Some(number)
    }
}

/// `uniform(m)`: a number in `0..m` without modulo bias. Numbers at or above `limit = 2^64 − (2^64 mod m)` (in
/// 128-bit arithmetic: for m a power of two the limit is 2^64 and all are kept) are skipped. `None` when `m` is 0
/// or the stream ends first (the draw's stream never ends; test streams do).
pub fn uniform(m: u64, stream: &mut impl Iterator<Item = u64>) -> Option<u64> {
    if m == 0 {
        return None;
    }
    let span: u128 = 1 << 64;
    let limit = span - span % u128::from(m);
    stream.find(|&x| u128::from(x) < limit).map(|x| x % m)
}

/// Why a draw could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrawError {
    #[error("{k} winners cannot be drawn from {n} members")]
    TooManyWinners { k: usize, n: usize },
    #[error("{n} members are more than the {MAX_MEMBERS} a draw accepts")]
    TooManyMembers { n: usize },
    #[error("member seqs must be exactly 1 to {n}, each once")]
    BadSeqs { n: usize },
    #[error("the random stream ended")]
    StreamEnded,
}

/// K winners of N by partial Fisher–Yates: `a = [1..=N]`; for j in 0..K, swap `a[j]` with `a[j + uniform(N − j)]`;
/// the winners are `a[0..K]`, sorted ascending, as seq numbers.
pub fn select_winners(stream: &mut impl Iterator<Item = u64>, n: usize, k: usize) -> Result<Vec<i64>, DrawError> {
    if n > MAX_MEMBERS {
        return Err(DrawError::TooManyMembers { n });
    }
    if k > n {
        return Err(DrawError::TooManyWinners { k, n });
    }
    // n ≤ MAX_MEMBERS, so every seq fits an i64 and every offset a usize.
    let mut a: Vec<i64> = (1..=n as i64).collect();
    for j in 0..k {
        let r = uniform((n - j) as u64, stream).ok_or(DrawError::StreamEnded)?;
        a.swap(j, j + r as usize);
    }
    a.truncate(k);
    a.sort_unstable();
    Ok(a)
}

/// What a draw publishes besides the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub participants_digest: String,
    /// Seq numbers, ascending.
    pub winners: Vec<i64>,
}

/// Draws `k` winners of a full group whose `members` carry seqs exactly 1..N (in any order).
pub fn draw(seed: &ServerSeed, group_id: &str, members: &[Member], k: usize) -> Result<Outcome, DrawError> {
    let n = members.len();
    if first_seq_gap(members).is_some() {
        return Err(DrawError::BadSeqs { n });
    }
    let participants_digest = participants_digest(members);
    let winners = select_winners(&mut RandomStream::new(seed, group_id, &participants_digest), n, k)?;
    Ok(Outcome { participants_digest, winners })
}

/// The first place where the sorted seqs stop being 1, 2, 3, …: `(expected, found)`.
fn first_seq_gap(members: &[Member]) -> Option<(i64, i64)> {
    let mut seqs: Vec<i64> = members.iter().map(|m| m.seq).collect();
    seqs.sort_unstable();
    (1..).zip(seqs).find(|(expected, found)| expected != found)
}

/// A group as `GET /api/v1/groups/{id}` returns it. Unknown fields are ignored; the fields verification does not
/// need may be missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub group_size: i64,
    pub winners_per_group: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub seed_commitment: String,
    pub members: Vec<Member>,
    /// `None` until the group is drawn.
    #[serde(default)]
    pub draw: Option<DrawRecord>,
}

/// The revealed draw inside a group record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawRecord {
    pub algorithm: String,
    pub server_seed: String,
    pub participants_digest: String,
    pub winners: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drawn_at: Option<String>,
}

/// One way a group record disagrees with tuangou-draw-v1; its `Display` is a sentence for the command line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("the group has not been drawn: its record has no draw")]
    NotDrawn,
    #[error("the draw names algorithm {found:?}; this verifier knows only {ALGORITHM:?}")]
    Algorithm { found: String },
    #[error("group_size is {group_size} but the record lists {members} members")]
    MemberCount { group_size: i64, members: usize },
    #[error("member seqs must be exactly 1 to N: after sorting, seq {found} stands where {expected} should")]
    Seqs { expected: i64, found: i64 },
    #[error("member {seq}: {problem}")]
    Member { seq: i64, problem: String },
    #[error("the member list hashes to {computed}, but the draw's participants_digest is {published}")]
    Digest { computed: String, published: String },
    #[error("server_seed is not 64 lowercase hex characters")]
    MalformedSeed,
    #[error("SHA-256 of server_seed is {computed}, but the seed_commitment is {published}")]
    Commitment { computed: String, published: String },
    #[error("winners_per_group is {winners_per_group}, not between 1 and the {members} members")]
    WinnersPerGroup { winners_per_group: i64, members: usize },
    #[error("the draw lists {found} winners, not winners_per_group = {expected}")]
    WinnerCount { expected: i64, found: usize },
    #[error("the winners recompute to {computed:?}, but the draw lists {published:?}")]
    Winners { computed: Vec<i64>, published: Vec<i64> },
    #[error("{members} members are more than the {MAX_MEMBERS} this verifier draws")]
    TooManyMembers { members: usize },
}

/// Checks a group record per FAIRNESS.md: the algorithm's name, SHA-256(seed) against the commitment, the digest
/// against the member list, seqs exactly 1..N with N = group_size, every member's shape, and the winners (K of them)
/// against the stream. Lists every mismatch found. The winners are recomputed from the digest the draw published,
/// so a changed member list shows as one digest mismatch rather than a cascade.
pub fn verify_record(record: &GroupRecord) -> Result<(), Vec<Mismatch>> {
    let mut found = member_mismatches(record);
    match &record.draw {
        None => found.push(Mismatch::NotDrawn),
        Some(draw) if draw.algorithm != ALGORITHM => {
            found.push(Mismatch::Algorithm { found: draw.algorithm.clone() });
        }
        Some(draw) => found.extend(draw_mismatches(record, draw)),
    }
    if found.is_empty() { Ok(()) } else { Err(found) }
}

fn member_mismatches(record: &GroupRecord) -> Vec<Mismatch> {
    let mut found = Vec::new();
    let members = record.members.len();
    if i64::try_from(members).ok() != Some(record.group_size) {
        found.push(Mismatch::MemberCount { group_size: record.group_size, members });
    }
    if let Some((expected, seq)) = first_seq_gap(&record.members) {
        found.push(Mismatch::Seqs { expected, found: seq });
    }
    for member in &record.members {
        if let Err(problem) = check_ticket(&member.ticket).and_then(|()| check_client_seed(&member.client_seed)) {
            found.push(Mismatch::Member { seq: member.seq, problem: problem.to_string() });
        }
    }
    found
}

fn draw_mismatches(record: &GroupRecord, draw: &DrawRecord) -> Vec<Mismatch> {
    let mut found = Vec::new();
    let computed = participants_digest(&record.members);
    if computed != draw.participants_digest {
        found.push(Mismatch::Digest { computed, published: draw.participants_digest.clone() });
    }
    let n = record.members.len();
    let k = usize::try_from(record.winners_per_group).ok().filter(|k| (1..=n).contains(k));
    match k {
        Some(k) if k != draw.winners.len() => {
            found.push(Mismatch::WinnerCount { expected: record.winners_per_group, found: draw.winners.len() });
        }
        None => found.push(Mismatch::WinnersPerGroup { winners_per_group: record.winners_per_group, members: n }),
        Some(_) => {}
    }
    let Ok(seed) = ServerSeed::from_hex(&draw.server_seed) else {
        found.push(Mismatch::MalformedSeed);
        return found;
    };
    let commitment = seed.commitment();
    if commitment != record.seed_commitment {
        found.push(Mismatch::Commitment { computed: commitment, published: record.seed_commitment.clone() });
    }
    if let Some(k) = k {
        let mut stream = RandomStream::new(&seed, &record.id, &draw.participants_digest);
        match select_winners(&mut stream, n, k) {
            Ok(winners) if winners == draw.winners => {}
            Ok(winners) => found.push(Mismatch::Winners { computed: winners, published: draw.winners.clone() }),
            Err(_) => found.push(Mismatch::TooManyMembers { members: n }),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: i64) -> Vec<Member> {
        (1..=n).map(|seq| Member { seq, ticket: format!("t{seq:04}"), client_seed: format!("cs{}", seq * 7) }).collect()
    }

    #[test]
    fn debug_hides_the_seed() {
        let seed = ServerSeed::from_bytes([0xab; 32]);
        assert_eq!(format!("{seed:?}"), "ServerSeed(…)");
    }

    #[test]
    fn seeds_read_only_lowercase_hex() {
        let hex = "a1".repeat(32);
        assert_eq!(ServerSeed::from_hex(&hex).unwrap().reveal_hex(), hex);
        assert!(ServerSeed::from_hex(&"A1".repeat(32)).is_err());
        assert!(ServerSeed::from_hex(&"a1".repeat(31)).is_err());
        assert!(ServerSeed::from_hex(&"zz".repeat(32)).is_err());
        assert!(ServerSeed::from_hex(&"é".repeat(32)).is_err());
    }

    #[test]
    fn tickets_and_client_seeds_are_checked() {
        assert!(check_ticket("t-0001_A").is_ok());
        assert!(check_ticket("").is_err());
        assert!(check_ticket("a:b").is_err());
        assert!(check_ticket(&"a".repeat(65)).is_err());
        assert!(check_client_seed("客户-7 : anything").is_ok());
        assert!(check_client_seed(&"客".repeat(64)).is_ok());
        assert!(check_client_seed(&"客".repeat(65)).is_err());
        assert!(check_client_seed("").is_err());
        assert!(check_client_seed("a\nb").is_err());
    }

    #[test]
    fn a_missing_client_seed_becomes_random_hex() {
        assert_eq!(client_seed_or_random(Some(" mine "), [0; 16]).unwrap(), " mine ");
        assert_eq!(client_seed_or_random(Some(""), [0xab; 16]).unwrap(), "ab".repeat(16));
        assert_eq!(client_seed_or_random(None, [0x01; 16]).unwrap().len(), 32);
        assert!(client_seed_or_random(Some("a\u{7}"), [0; 16]).is_err());
    }

    #[test]
    fn the_stream_is_the_hmac_of_each_block() {
        let seed = ServerSeed::from_bytes([7; 32]);
        let numbers: Vec<u64> = RandomStream::new(&seed, "g", "d").take(5).collect();
        let mut mac = HmacSha256::new_from_slice(&[7; 32]).unwrap();
        mac.update(b"tuangou-draw-v1|g|d|1");
        let block1 = mac.finalize().into_bytes();
        assert_eq!(numbers[4], u64::from_be_bytes(block1[..8].try_into().unwrap()));
    }

    #[test]
    fn uniform_refuses_zero_and_an_ended_stream() {
        assert_eq!(uniform(0, &mut [1u64].into_iter()), None);
        assert_eq!(uniform(3, &mut [u64::MAX].into_iter()), None);
        assert_eq!(uniform(1 << 63, &mut [u64::MAX].into_iter()), Some((1 << 63) - 1));
    }

    #[test]
    fn the_draw_picks_k_distinct_sorted_winners() {
        let seed = ServerSeed::from_bytes([1; 32]);
        let outcome = draw(&seed, "g-1", &members(10), 3).unwrap();
        assert_eq!(outcome.winners.len(), 3);
        assert!(outcome.winners.windows(2).all(|w| w[0] < w[1]));
        assert!(outcome.winners.iter().all(|w| (1..=10).contains(w)));
        assert_eq!(draw(&seed, "g-1", &members(3), 4), Err(DrawError::TooManyWinners { k: 4, n: 3 }));
        let mut gap = members(3);
        gap[2].seq = 4;
        assert_eq!(draw(&seed, "g-1", &gap, 1), Err(DrawError::BadSeqs { n: 3 }));
    }

    fn drawn_record() -> GroupRecord {
        let seed = ServerSeed::from_bytes([9; 32]);
        let members = members(5);
        let outcome = draw(&seed, "g-9", &members, 2).unwrap();
        GroupRecord {
            id: "g-9".into(),
            campaign_id: None,
            status: Some("drawn".into()),
            group_size: 5,
            winners_per_group: 2,
            expires_at: None,
            seed_commitment: seed.commitment(),
            members,
            draw: Some(DrawRecord {
                algorithm: ALGORITHM.into(),
                server_seed: seed.reveal_hex(),
                participants_digest: outcome.participants_digest,
                winners: outcome.winners,
                drawn_at: None,
            }),
        }
    }

    #[test]
    fn a_fresh_draw_verifies() {
        assert_eq!(verify_record(&drawn_record()), Ok(()));
    }

    #[test]
    fn verification_names_each_problem() {
        let mut record = drawn_record();
        record.members[0].seq = 6;
        record.group_size = 4;
        let problems = verify_record(&record).unwrap_err();
        assert!(problems.contains(&Mismatch::Seqs { expected: 1, found: 2 }));
        assert!(problems.contains(&Mismatch::MemberCount { group_size: 4, members: 5 }));
        assert!(problems.iter().any(|p| matches!(p, Mismatch::Digest { .. })));

        let mut record = drawn_record();
        record.winners_per_group = 3;
        let problems = verify_record(&record).unwrap_err();
        assert!(problems.contains(&Mismatch::WinnerCount { expected: 3, found: 2 }));

        let mut record = drawn_record();
        record.winners_per_group = 0;
        assert!(
            verify_record(&record)
                .unwrap_err()
                .contains(&Mismatch::WinnersPerGroup { winners_per_group: 0, members: 5 })
        );

        let mut record = drawn_record();
        record.members[1].ticket = "bad:ticket".into();
        let problems = verify_record(&record).unwrap_err();
        assert!(problems.iter().any(|p| matches!(p, Mismatch::Member { seq: 2, .. })));

        let mut record = drawn_record();
        record.draw.as_mut().unwrap().server_seed = "not hex".into();
        assert_eq!(verify_record(&record), Err(vec![Mismatch::MalformedSeed]));

        let mut record = drawn_record();
        record.draw.as_mut().unwrap().algorithm = "tuangou-draw-v2".into();
        assert_eq!(verify_record(&record), Err(vec![Mismatch::Algorithm { found: "tuangou-draw-v2".into() }]));

        let mut record = drawn_record();
        record.draw = None;
        assert_eq!(verify_record(&record), Err(vec![Mismatch::NotDrawn]));
    }

    #[test]
    fn records_parse_leniently_but_need_what_verification_uses() {
        let open = r#"{"id": "g", "status": "open", "group_size": 3, "winners_per_group": 1, "seed_commitment": "00",
            "members": [{"seq": 1, "ticket": "t1", "client_seed": "x", "joined_at": "2026-01-01T00:00:00Z"}],
            "draw": null, "campaign": {"title": "extra"}}"#;
        let record: GroupRecord = serde_json::from_str(open).unwrap();
        assert_eq!(record.draw, None);
        assert!(verify_record(&record).unwrap_err().contains(&Mismatch::NotDrawn));
        let without_commitment = r#"{"id": "g", "group_size": 3, "winners_per_group": 1, "members": [], "draw": null}"#;
        assert!(serde_json::from_str::<GroupRecord>(without_commitment).is_err());
    }

    #[test]
    fn mismatches_read_as_sentences() {
        let text = Mismatch::WinnerCount { expected: 2, found: 1 }.to_string();
        assert_eq!(text, "the draw lists 1 winners, not winners_per_group = 2");
    }
}
