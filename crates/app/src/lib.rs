//! The use cases of tuangou: what each actor can do, with the checks each step needs.
//!
//! [`App`] is the one entry point: the web layer and the command line call its methods and get back rows and
//! views, or an [`AppError`] that says which rule refused the request. It turns parsed input (domain types)
//! into store calls, decides who may do what, and runs the background jobs. It does not parse HTTP or render
//! pages, and it holds no SQL.
#![forbid(unsafe_code)]

mod accounts;
mod admission;
mod caches;
mod campaigns;
mod clock;
mod dashboards;
mod error;
mod events;
mod groups;
mod in_flight;
mod jobs;
mod ledger;
mod levels_seen;
mod merchants;
mod passwords;
pub mod payments;
pub mod photos;
mod throttles;
mod vouchers;

pub use accounts::{Caller, NewAccount, SignedIn, csrf_token_for};
pub use campaigns::{CampaignView, NearbyQuery, NearbyView};
pub use clock::Clock;
pub use dashboards::{CampaignDashboard, MerchantDashboard};
pub use error::AppError;
pub use events::{BusMessage, GroupEvent};
pub use groups::{GroupView, JoinAnswer, JoinInput, JoinTarget, Joined, idempotency_claim};
pub use ledger::{CreditTarget, CustomerWallet, MerchantWallet};
pub use merchants::{MerchantInput, MerchantView};
pub use passwords::PasswordCost;
pub use throttles::{Limit, Throttles};
pub use tuangou_domain::voucher_keys::ServerSecret;
pub use tuangou_store::{
    Admission, Backend, CampaignRow, DailyFigures, EntryRecord, GroupRow, History, IdempotencyClaim, MemberRow,
    MerchantRole, MerchantRow, PaymentEventRow, PaymentRow, PayoutRow, RecentRedemption, RedemptionRow, RefundRow,
    SandboxPaymentRow, ShopRole, SplitRow, StaffRow, Store, UserRow, Violation,
};
pub use vouchers::{MembershipView, VoucherView};

pub type AppResult<T> = Result<T, AppError>;

/// Settings the use cases need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// New merchants start `pending` until an operator approves them (off by default: they start `active`).
    pub require_merchant_approval: bool,
    /// How long a session lasts.
    pub session_ttl_hours: i64,
    /// The address customers reach this service at, for entrance links and QR codes.
    pub public_url: String,
    /// The work a password hash costs (always `Standard` outside test suites).
    pub password_cost: PasswordCost,
    /// The secret voucher codes are derived and hashed with; kept outside the database.
    pub secret: ServerSecret,
    /// How often sign-ins may fail and sign-ups happen per client address.
    pub throttles: Throttles,
    /// The payment providers this instance offers.
    pub payments: payments::PaymentSettings,
    /// Where uploaded photos are kept (`photos::MediaDir`).
    pub media_dir: std::path::PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            require_merchant_approval: false,
            session_ttl_hours: 24 * 30,
            public_url: "http://127.0.0.1:8080".into(),
            password_cost: PasswordCost::Standard,
            secret: ServerSecret::from_bytes(random_secret()),
            throttles: Throttles::default(),
            payments: payments::PaymentSettings::default(),
            media_dir: DEFAULT_MEDIA_DIR.into(),
        }
    }
}

/// The media directory when none is configured, relative to the working directory.
pub const DEFAULT_MEDIA_DIR: &str = "tuangou-media";

/// 32 bytes from the operating system, for a secret made on the spot (tests; the binary keeps its secret in a file).
pub fn random_secret() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    // The OS generator does not fail on the systems we run on; an all-zero secret would still only weaken codes.
    let _ = getrandom::fill(&mut bytes);
    bytes
}

/// The application: the store, the settings and the clock, shared by every request and job.
#[derive(Clone)]
pub struct App {
    store: Store,
    settings: Settings,
    clock: Clock,
    events: events::Events,
    /// Every password hash goes through it: bounded in time and memory.
    hashing: passwords::Hashing,
    /// Sign-ins and sign-ups in flight per client address.
    in_flight: in_flight::InFlight,
    /// The throttles' buckets as last read here, to refuse a client past a limit without a read.
    levels_seen: levels_seen::LevelsSeen,
    /// When this instance last pruned the throttles' closed windows.
    pruned_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
    providers: payments::Providers,
    /// What this instance knows of the daily reconciliation (`payments::reconcile`).
    reconciling: payments::reconcile::Daily,
    /// Where photos are kept, and the gate their decoding goes through.
    photos: photos::Photos,
    /// Sessions, roles and live campaigns as last read (`caches.rs`).
    caches: std::sync::Arc<caches::Caches>,
}

impl App {
    pub fn new(store: Store, settings: Settings, clock: Clock) -> Self {
        let hashing = passwords::Hashing::sized_to_the_machine(settings.throttles.hashes_waiting_per_core);
        let providers = payments::Providers::new(&settings.payments, &store, &clock, &settings.public_url);
        let photos = photos::Photos::new(photos::MediaDir::new(settings.media_dir.clone()));
        // On PostgreSQL the caches wait for the listener (other instances' changes reach this one through it).
        let caches = std::sync::Arc::new(caches::Caches::new(!store.shares_events()));
        Self {
            store,
            settings,
            clock,
            events: events::Events::default(),
            hashing,
            in_flight: in_flight::InFlight::default(),
            levels_seen: levels_seen::LevelsSeen::default(),
            pruned_at: std::sync::Arc::default(),
            providers,
            reconciling: payments::reconcile::Daily::default(),
            photos,
            caches,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether the database answers.
    pub async fn ready(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    /// Every invariant of SPEC.md that the data breaks right now (empty when all hold): what the store's queries
    /// find, and every drawn group re-verified per FAIRNESS.md (invariant 3).
    pub async fn check(&self) -> AppResult<Vec<Violation>> {
        let mut found = self.store.violations(self.clock.now()).await?;
        let mut after: Option<String> = None;
        loop {
            let page = self.store.drawn_groups(after.as_deref(), 200).await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.id.clone());
            for (group, members) in &page {
                if let Err(mismatches) = tuangou_domain::draw::verify_record(&groups::record_of(group, members)) {
                    let why = mismatches.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                    found
                        .push(Violation { invariant: 3, detail: format!("group {} does not verify: {why}", group.id) });
                }
            }
        }
        Ok(found)
    }
}
