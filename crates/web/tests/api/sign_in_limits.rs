//! Sign-in and sign-up under abuse, on both backends, with real (argon2id, 19 MiB) password hashing: a flood of
//! wrong passwords from a few addresses is throttled while the account's owner still signs in from elsewhere, the
//! process's memory stays bounded and the campaign list keeps answering; sign-ups are limited per address.
//!
//! Clients reach the service from distinct loopback addresses (127.0.0.2, …): the service sees each as another
//! client, as it would see different machines.

use crate::common::{CHUNXI, live_campaign};
use reqwest::StatusCode;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tuangou_app::{PasswordCost, Settings};
use tuangou_testkit::{Backend, TestApp, on_both_backends, server_password};

/// Concurrent clients in the flood, spread over [`FLOOD_ADDRESSES`] addresses.
const FLOODERS: usize = 200;
const FLOOD_ADDRESSES: u8 = 4;
/// How long the flood goes on at least, and at most (it ends once the owner and the list have been answered).
const FLOOD_FOR: Duration = Duration::from_secs(3);
const FLOOD_AT_MOST: Duration = Duration::from_secs(15);
/// The bound on the test process's peak resident memory (the service runs in it).
const PEAK_RSS_BOUND_KIB: u64 = 256 * 1024;

/// A client whose connections come from `127.0.0.{last}`.
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .pool_max_idle_per_host(FLOODERS)
        .build()
        .expect("a client")
}

/// A figure from `/proc/self/status` in KiB (`VmHWM`: the peak resident set; `VmRSS`: the current one).
fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// Answers counted by status.
#[derive(Default)]
struct Tally {
    unauthorized: AtomicUsize,
    throttled: AtomicUsize,
    overloaded: AtomicUsize,
    other: AtomicUsize,
}

impl Tally {
    fn count(&self, status: StatusCode) {
        let counter = match status {
            StatusCode::UNAUTHORIZED => &self.unauthorized,
            StatusCode::TOO_MANY_REQUESTS => &self.throttled,
            StatusCode::SERVICE_UNAVAILABLE => &self.overloaded,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }

    fn total(&self) -> usize {
        [&self.unauthorized, &self.throttled, &self.overloaded, &self.other]
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .sum()
    }
}

/// 200 clients send wrong passwords back to back for a few seconds, half at the owner's phone and half at random
/// phones, from four addresses. Meanwhile the owner signs in from their own address, and the campaign list
/// answers. Figures: the answers by status, the owner's and the list's latencies, the peak memory.
async fn a_sign_in_flood_is_throttled_and_the_owner_still_signs_in(backend: Backend) {
    let settings = Settings { password_cost: PasswordCost::Standard, ..Settings::default() };
    let app = TestApp::spawn_exact(backend, settings).await;
    let operator = app.operator().await;
    let owner = app.customer("13800138300").await;
    live_campaign(&app, &operator, &owner, "老码头", CHUNXI).await;
    let rss_before_kib = proc_status_kib("VmRSS");

    let tally = Arc::new(Tally::default());
    let first_throttled = Arc::new(tokio::sync::Notify::new());
    let started = Instant::now();
    let (deadline, cap) = (started + FLOOD_FOR, started + FLOOD_AT_MOST);
    let (done, until_done) = tokio::sync::watch::channel(false);
    let url: Arc<str> = format!("{}/api/v1/sessions", app.base).into();
    let clients: Vec<reqwest::Client> = (0..FLOOD_ADDRESSES).map(|i| client_from(2 + i)).collect();
    let flood: Vec<_> = (0..FLOODERS)
        .map(|i| {
            let client = clients[i % clients.len()].clone();
            let (url, tally, first_throttled) = (url.clone(), tally.clone(), first_throttled.clone());
            let (owner_phone, until_done) = (owner.phone.clone(), until_done.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while (Instant::now() < deadline || !*until_done.borrow()) && Instant::now() < cap {
                    n += 1;
                    let phone = if i % 2 == 0 { owner_phone.clone() } else { format!("139{:08}", i * 10_000 + n) };
                    let body = json!({"phone": phone, "password": format!("wrong guess {i} {n}")});
                    let answer = client.post(&*url).json(&body).send().await.expect("the server answers");
                    let status = answer.status();
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        assert!(answer.headers().contains_key("retry-after"), "429 carries Retry-After");
                        first_throttled.notify_one();
                    }
                    let _ = answer.bytes().await;
                    tally.count(status);
                }
            })
        })
        .collect();

    // Once the throttle has answered (or the flood is over, which fails below), the owner signs in from home.
    tokio::select! {
        _ = first_throttled.notified() => {}
        _ = tokio::time::sleep_until(cap.into()) => {}
    }
    let asked = Instant::now();
    let (status, body) =
        app.post("/api/v1/sessions", None, json!({"phone": owner.phone, "password": server_password()})).await;
    let owner_took = asked.elapsed();
    let answered_before_owner = tally.total();
    assert_eq!(status, StatusCode::CREATED, "the owner signs in during the flood: {body}");
    let mut list_took = Vec::new();
    for _ in 0..10 {
        let asked = Instant::now();
        let (status, body) = app.get("/api/v1/campaigns", None).await;
        list_took.push(asked.elapsed());
        assert_eq!((status, body["items"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{body}");
    }
    let still_flooding = Instant::now() < cap;
    let _ = done.send(true);
    for task in flood {
        task.await.expect("a flooding client");
    }
    let peak_kib = proc_status_kib("VmHWM");
    list_took.sort();
    eprintln!(
        "flood on {backend:?}: {} answers in {:?} — 401: {}, 429: {}, 503: {}, other: {}; \
         the owner signed in in {owner_took:?}; campaign list max {:?} (median {:?}); \
         peak RSS {} MiB (RSS before the flood {} MiB, growth {} MiB)",
        tally.total(),
        started.elapsed(),
        tally.unauthorized.load(Ordering::SeqCst),
        tally.throttled.load(Ordering::SeqCst),
        tally.overloaded.load(Ordering::SeqCst),
        tally.other.load(Ordering::SeqCst),
        list_took.last().unwrap(),
        list_took[list_took.len() / 2],
        peak_kib / 1024,
        rss_before_kib / 1024,
        peak_kib.saturating_sub(rss_before_kib) / 1024,
    );
    assert!(still_flooding && tally.total() > answered_before_owner, "the owner and the list ran during the flood");
    assert_eq!(tally.other.load(Ordering::SeqCst), 0, "only 401, 429 and 503");
    assert!(tally.throttled.load(Ordering::SeqCst) > 0, "the flood is throttled");
    assert!(peak_kib < PEAK_RSS_BOUND_KIB, "peak RSS {peak_kib} KiB");
    assert!(*list_took.last().unwrap() < Duration::from_secs(1), "the list stays responsive: {list_took:?}");

    // The flooding addresses stay throttled for the owner's phone; the owner's own address is not.
    let (status, _) = TestApp::read(
        client_from(2)
            .post(&*url)
            .json(&json!({"phone": owner.phone, "password": server_password()}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the right password from a flooding address waits too");
    app.sign_in(&owner.phone).await;
    app.finish().await;
}

/// Wrong passwords count where they come from: five at one phone from one address, then that address waits (even
/// with the right password) while the owner signs in from elsewhere; once twenty failures at the phone came from
/// anywhere, each further address gets one; the window's end lets everyone try again.
async fn sign_in_failures_count_per_phone_and_address(backend: Backend) {
    let app =
        TestApp::spawn_exact(backend, Settings { password_cost: PasswordCost::Minimal, ..Settings::default() }).await;
    let limits = app.app.settings().throttles.clone();
    let owner = app.customer("13800138310").await;
    let url = format!("{}/api/v1/sessions", app.base);
    let sign_in = |from: u8, password: &str| {
        let body = json!({"phone": owner.phone, "password": password});
        let request = client_from(from).post(&url).json(&body);
        async move {
            let answer = request.send().await.expect("the server answers");
            let retry_after = answer.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            (TestApp::read(answer).await.0, retry_after)
        }
    };
    let per_pair = limits.sign_in_failures_per_phone_and_address.max as usize;
    for _ in 0..per_pair {
        assert_eq!(sign_in(2, "wrong guess").await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, retry_after) = sign_in(2, server_password()).await;
    let window_seconds = (limits.sign_in_failures_per_phone_and_address.window_ms / 1_000).to_string();
    assert_eq!((status, retry_after.as_deref()), (StatusCode::TOO_MANY_REQUESTS, Some(window_seconds.as_str())));
    assert_eq!(sign_in(3, server_password()).await.0, StatusCode::CREATED, "the owner, from another address");
    assert_eq!(sign_in(1, "another guess").await.0, StatusCode::UNAUTHORIZED, "another address has its own count");

    // Twenty failures at the phone in all (from five addresses): the phone is under attack.
    let threshold = limits.sign_in_failures_per_phone.max as usize;
    let mut failed = per_pair + 1;
    for from in 4..=6 {
        for _ in 0..per_pair.min(threshold - failed) {
            assert_eq!(sign_in(from, "wrong guess").await.0, StatusCode::UNAUTHORIZED);
            failed += 1;
        }
    }
    assert_eq!(failed, threshold);
    assert_eq!(sign_in(7, "wrong guess").await.0, StatusCode::UNAUTHORIZED, "one failure from a new address");
    assert_eq!(sign_in(7, "wrong guess").await.0, StatusCode::TOO_MANY_REQUESTS, "and no second");
    assert_eq!(sign_in(8, server_password()).await.0, StatusCode::CREATED, "the owner still signs in");
    assert_eq!(sign_in(8, server_password()).await.0, StatusCode::CREATED, "again: successes do not count");

    app.app.clock().advance(limits.sign_in_failures_per_phone_and_address.window_ms);
    assert_eq!(sign_in(2, server_password()).await.0, StatusCode::CREATED, "the window has closed");
    app.finish().await;
}

/// Sign-ups are limited per address: a burst from one address creates at most the limit, the rest are told to
/// wait; another address signs up meanwhile; once the window has passed, the first may sign up again.
async fn sign_ups_are_limited_per_address(backend: Backend) {
    let app =
        TestApp::spawn_exact(backend, Settings { password_cost: PasswordCost::Minimal, ..Settings::default() }).await;
    let limit = app.app.settings().throttles.sign_ups_per_address.expect("a sign-up limit").max as usize;
    let client = client_from(2);
    let url = format!("{}/api/v1/users", app.base);
    let sign_up = |client: reqwest::Client, phone: String| {
        let url = url.clone();
        async move {
            let body = json!({"phone": phone, "password": "long enough", "name": "新客"});
            let answer = client.post(&url).json(&body).send().await.expect("the server answers");
            let retry_after = answer.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let (status, _) = TestApp::read(answer).await;
            (status, retry_after)
        }
    };
    let burst = (0..limit * 3).map(|i| sign_up(client.clone(), format!("1371000{i:04}")));
    let answers = futures::future::join_all(burst).await;
    let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    let throttled = answers.iter().filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS).count();
    eprintln!("sign-up burst on {backend:?}: {} sent, {created} created, {throttled} throttled", answers.len());
    assert!(created <= limit, "{created} created, the limit is {limit}");
    assert!(
        throttled > 0
            && answers.iter().all(|(s, _)| [
                StatusCode::CREATED,
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::SERVICE_UNAVAILABLE
            ]
            .contains(s))
    );
    assert!(answers.iter().filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS).all(|(_, r)| r.is_some()));
    // Sequentially, the address uses up the rest of its window exactly.
    let mut more = 0;
    loop {
        let (status, retry_after) = sign_up(client.clone(), format!("1372000{more:04}")).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
            assert!(seconds >= 1, "{seconds}");
            break;
        }
        assert_eq!(status, StatusCode::CREATED);
        more += 1;
        assert!(more <= limit, "the limit holds sequentially");
    }
    assert_eq!(created + more, limit, "exactly the limit in one window");
    let (status, _) = sign_up(client_from(3), "13730000000".into()).await;
    assert_eq!(status, StatusCode::CREATED, "another address is not affected");
    let window = app.app.settings().throttles.sign_ups_per_address.unwrap().window_ms;
    app.app.clock().advance(window);
    let (status, _) = sign_up(client, "13730000001".into()).await;
    assert_eq!(status, StatusCode::CREATED, "a new window");
    app.finish().await;
}

on_both_backends!(
    a_sign_in_flood_is_throttled_and_the_owner_still_signs_in,
    sign_in_failures_count_per_phone_and_address,
    sign_ups_are_limited_per_address
);
