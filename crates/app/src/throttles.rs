//! How often a client may try: the limits, and which counters ([`Bucket`]s, kept by the store and shared by every
//! instance) each kind of attempt claims.
//!
//! Every throttle here is count-and-claim in one step: a request takes its slot with one conditional update
//! before it may pass (`Store::claim`), so requests in flight together never all pass. A client already over a
//! limit is refused on a read, without a write (`Store::bucket_levels`).
//!
//! **Sign-in** must stop guessing without locking the real owner out, so nothing counts against an account
//! alone; failures count against where they come from:
//! - per client address, over all phones (generous: many people may share an address behind a carrier's NAT);
//! - per phone and address (tight): a few guesses at one phone from one address;
//! - per phone over all addresses, which never refuses by itself: past its threshold the phone is under attack,
//!   and then every address gets one failure for that phone per window instead of a few. An owner who has not
//!   failed from their address in the window still signs in; a distributed guesser gets one guess per address.
//!
//! A sign-in claims its slots *before* its password is hashed, as if it were going to fail, and a correct
//! password gives them back with the new session: a burst from one address reaches the (costly) hash at most as
//! often as its limit allows, and the counts still hold failures only. Sign-ups claim one slot per address,
//! kept. Both also wait their turn per address ([`crate::in_flight`]).

use crate::levels_seen::full_until;
use std::net::IpAddr;
use tuangou_domain::phone::UserPhone;
use tuangou_domain::time::Millis;
use tuangou_domain::voucher_keys::ServerSecret;
use tuangou_store::{Bucket, Level};

/// At most `max` in a window of `window_ms` (the window opens at the first attempt it counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: i64,
    pub window_ms: i64,
}

impl Limit {
    fn bucket(self, key: String) -> Bucket {
        Bucket { key, limit: self.max, window_ms: self.window_ms }
    }
}

/// The sign-in and sign-up limits (the voucher counter's are the API's: [`crate::vouchers`]), and how many password
/// hashes may wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttles {
    /// Failed sign-ins from one client address, whatever the phone.
    pub sign_in_failures_per_address: Limit,
    /// Failed sign-ins at one phone from one address.
    pub sign_in_failures_per_phone_and_address: Limit,
    /// Failed sign-ins at one phone from every address, past which each address gets one failure per window at
    /// that phone. Never refuses a correct password from an address that has not failed at the phone.
    pub sign_in_failures_per_phone: Limit,
    /// Sign-ups from one client address; `None` for none (test suites sign hundreds up from one address).
    pub sign_ups_per_address: Option<Limit>,
    /// Sign-ins and sign-ups one client address may have in flight at once (the rest answer 429 at once), so
    /// that one address cannot fill the password hashing's queue.
    pub in_flight_per_address: usize,
    /// Password hashes that may wait for a turn, per core (one hash per core runs at a time); past them, 503.
    pub hashes_waiting_per_core: usize,
}

const MINUTE: i64 = 60_000;

impl Default for Throttles {
    fn default() -> Self {
        Self {
            sign_in_failures_per_address: Limit { max: 50, window_ms: 15 * MINUTE },
            sign_in_failures_per_phone_and_address: Limit { max: 5, window_ms: 15 * MINUTE },
            sign_in_failures_per_phone: Limit { max: 20, window_ms: 15 * MINUTE },
            sign_ups_per_address: Some(Limit { max: 30, window_ms: 10 * MINUTE }),
            in_flight_per_address: 4,
            // With a hash taking some 20–50 ms, a wait stays well under a second.
            hashes_waiting_per_core: 8,
        }
    }
}

/// A client address as throttles count it: an IPv4 address, or the /64 an IPv6 address is in (one subscriber
/// usually holds a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
pub(crate) fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The buckets one sign-in may claim.
pub(crate) struct SignInBuckets {
    address: Bucket,
    /// For a phone that parsed: (phone and address, phone, the phone's threshold).
    phone: Option<(Bucket, Bucket, i64)>,
}

impl SignInBuckets {
    pub(crate) fn new(limits: &Throttles, secret: &ServerSecret, phone: Option<&UserPhone>, address: &str) -> Self {
        let pseudonym = |purpose: &str, data: &str| secret.pseudonym(purpose, data);
        let at_address = pseudonym("tuangou-throttle-address", address);
        Self {
            address: limits.sign_in_failures_per_address.bucket(format!("sign-in-address:{at_address}")),
            phone: phone.map(|phone| {
                let at_phone = pseudonym("tuangou-throttle-phone", phone.as_str());
                let threshold = limits.sign_in_failures_per_phone;
                (
                    limits
                        .sign_in_failures_per_phone_and_address
                        .bucket(format!("sign-in-phone-address:{at_phone}:{at_address}")),
                    // Counts only: it never refuses by itself (see the module's docs).
                    Limit { max: i64::MAX, ..threshold }.bucket(format!("sign-in-phone:{at_phone}")),
                    threshold.max,
                )
            }),
        }
    }

    /// Every bucket, to read their levels.
    pub(crate) fn all(&self) -> Vec<Bucket> {
        let mut all = vec![self.address.clone()];
        if let Some((pair, phone, _)) = &self.phone {
            all.extend([pair.clone(), phone.clone()]);
        }
        all
    }

    /// Given the levels of [`Self::all`] now, the buckets to claim, or how many seconds to wait when one is full.
    pub(crate) fn to_claim(&self, levels: &[Level], now: Millis) -> Result<Vec<Bucket>, u64> {
        let mut buckets = self.all();
        if let (Some((_, _, threshold)), Some(phone)) = (&self.phone, levels.get(2))
            && phone.used >= *threshold
        {
            buckets[1].limit = 1;
        }
        full_until(&buckets, levels, now).map_or(Ok(buckets), Err)
    }
}

/// The bucket for sign-ups from `address`, if sign-ups are limited.
pub(crate) fn sign_up_bucket(limits: &Throttles, secret: &ServerSecret, address: &str) -> Option<Bucket> {
    let at_address = secret.pseudonym("tuangou-throttle-address", address);
    limits.sign_ups_per_address.map(|limit| limit.bucket(format!("sign-up-address:{at_address}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn addresses_count_by_subscriber() {
        assert_eq!(address_key(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))), "10.1.2.3");
        let v6 = |s: &str| address_key(IpAddr::V6(s.parse::<Ipv6Addr>().unwrap()));
        assert_eq!(v6("2408:8207:1:2:aaaa::1"), v6("2408:8207:1:2:ffff::9"), "one /64");
        assert_ne!(v6("2408:8207:1:2::1"), v6("2408:8207:1:3::1"));
        assert_eq!(v6("::ffff:10.1.2.3"), "10.1.2.3");
    }

    #[test]
    fn a_phone_under_attack_allows_one_failure_per_address() {
        let limits = Throttles::default();
        let secret = ServerSecret::from_bytes([1; 32]);
        let phone = UserPhone::parse("phone", "13800138000").unwrap();
        let buckets = SignInBuckets::new(&limits, &secret, Some(&phone), "10.0.0.1");
        let now = Millis(1_000_000);
        let level = |used| Level { used, closes_at: Millis(now.0 + 90_500) };
        let quiet = buckets.to_claim(&[level(0), level(1), level(3)], now).unwrap();
        assert_eq!(quiet[1].limit, 5);
        assert!(!quiet.iter().any(|b| b.key.contains("13800138000") || b.key.contains("10.0.0.1")), "pseudonyms");
        let attacked = buckets.to_claim(&[level(0), level(0), level(20)], now).unwrap();
        assert_eq!(attacked[1].limit, 1, "one failure per address while the phone is under attack");
        assert_eq!(buckets.to_claim(&[level(0), level(1), level(20)], now), Err(91));
        assert_eq!(buckets.to_claim(&[level(50), level(0), level(0)], now), Err(91), "the address is full");
        let unknown = SignInBuckets::new(&limits, &secret, None, "10.0.0.1");
        assert_eq!(unknown.all().len(), 1, "a phone that does not parse counts at its address only");
    }
}
