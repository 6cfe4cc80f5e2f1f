//! Whether a sign-in or sign-up may go on to the (costly) password hash: the throttles' limits for its client
//! address (and phone), claimed in one step, and the address's share of attempts in flight.
//!
//! A refused attempt is answered 429 after [`REFUSAL_DELAY`]: a client that ignores `Retry-After` and sends again
//! at once (a flood does) then sends at most one request a second per connection, instead of as many as the
//! service can refuse, which would take the time every other request needs. Waiting costs the service a timer.

use crate::in_flight::Attempt;
use crate::throttles::{self, SignInBuckets};
use crate::{App, AppError, AppResult};
use std::net::IpAddr;
use std::time::Duration;
use tuangou_domain::phone::UserPhone;
use tuangou_store::{Bucket, Claimed};

/// How long a refused sign-in or sign-up waits before it is answered.
const REFUSAL_DELAY: Duration = Duration::from_secs(1);

/// An attempt let through: its place among its address's attempts in flight, and the throttle slots it claimed.
pub(crate) struct Admitted {
    pub(crate) attempt: Attempt,
    pub(crate) claims: Vec<Claimed>,
}

impl App {
    /// Lets a sign-in at `phone` (when it parsed) from `client` through, or refuses it (429) when failures from
    /// there are over a limit (see `throttles`). Its slots are claimed as a failure's, to give back on success.
    pub(crate) async fn admit_sign_in(&self, phone: Option<&UserPhone>, client: IpAddr) -> AppResult<Admitted> {
        let address = throttles::address_key(client);
        let buckets = SignInBuckets::new(&self.settings.throttles, &self.settings.secret, phone, &address);
        let admitted = async {
            let now = self.clock.now();
            let to_claim = self.decide_on_levels(&buckets.all(), now, |levels| buckets.to_claim(levels, now)).await?;
            let attempt = self.attempt_from(&address)?;
            Ok(Admitted { attempt, claims: self.store.claim(to_claim, now).await? })
        };
        delay_refusal(admitted.await).await
    }

    /// Lets a sign-up from `client` through, or refuses it (429) past the address's sign-ups in the window.
    pub(crate) async fn admit_sign_up(&self, client: IpAddr) -> AppResult<Admitted> {
        let address = throttles::address_key(client);
        let buckets: Vec<Bucket> =
            throttles::sign_up_bucket(&self.settings.throttles, &self.settings.secret, &address).into_iter().collect();
        let admitted = async {
            let now = self.clock.now();
            self.refuse_when_full(&buckets, now).await?;
            let attempt = self.attempt_from(&address)?;
            let claims = if buckets.is_empty() { Vec::new() } else { self.store.claim(buckets.clone(), now).await? };
            Ok(Admitted { attempt, claims })
        };
        delay_refusal(admitted.await).await
    }

    /// Gives back the slots of an attempt that neither failed nor succeeded (the service was busy).
    pub(crate) async fn give_back(&self, claims: Vec<Claimed>) {
        if let Err(error) = self.store.release(claims).await {
            tracing::warn!(%error, "could not give throttle slots back");
        }
    }

    /// An attempt from `address`, unless it has its share in flight already (429, retry in a second).
    fn attempt_from(&self, address: &str) -> AppResult<Attempt> {
        self.in_flight.enter(address, self.settings.throttles.in_flight_per_address).ok_or(AppError::Throttled(1))
    }
}

async fn delay_refusal(admitted: AppResult<Admitted>) -> AppResult<Admitted> {
    if let Err(AppError::Throttled(_)) = &admitted {
        tokio::time::sleep(REFUSAL_DELAY).await;
    }
    admitted
}
