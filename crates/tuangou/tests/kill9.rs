//! `tuangou serve` killed with SIGKILL at random moments while customers join with `Idempotency-Key`s, and started
//! again on the same database each time, on both backends (`sqlite::NAME` and `postgres::NAME`).
//!
//! Also joins that pay through the sandbox provider, killed between the provider taking the money and the seat
//! being confirmed; withdrawals; and a burst of redemptions at the counter by several staff members at once.
//!
//! What it proves: a join the service answered 201 survives the kill (its membership is there); a retry with the
//! same key, whether the first try died before, during or after its commit, never joins twice and answers the first
//! 201 again; and the ledger's invariants hold (`tuangou check` exits 0).

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tuangou_testkit::{Backend, TestDb, on_both_backends};

mod common;
use common::{shown, tuangou};

const PASSWORD: &str = "kill-nine-password";
const OPERATOR_PHONE: &str = "13800000000";
/// The merchant's owner, who made the campaign of [`set_up`].
const OWNER_PHONE: &str = "13800138001";
/// Customers joining at once, one client each.
const CLIENTS: usize = 6;
/// Each client's joins at most: the campaign's `per_customer_limit`, so a client never meets `limit_reached`.
const KEYS_PER_CLIENT: usize = 1_000;
const PRICE: i64 = 990;
/// How long a client keeps retrying one key (through kills and restarts) before the test fails.
const RETRY_BUDGET: Duration = Duration::from_secs(20);
/// How long a restarted service may take to answer `/healthz`.
const START_BUDGET: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("an address").port()
}

/// `tuangou serve` on one port and one database, in one working directory (which keeps its secret), as a process
/// the test kills and starts again. Its logs go to `serve.log` there, across restarts.
struct Service {
    dir: tempfile::TempDir,
    database: String,
    port: u16,
    child: Option<Child>,
    api: Api,
    /// Whether the sandbox payment provider is on (`TUANGOU_PAYMENTS_SANDBOX=true`).
    sandbox: bool,
}

impl Service {
    fn new(database: &str) -> Self {
        let port = free_port();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().expect("a client");
        let api = Api { base: format!("http://127.0.0.1:{port}"), client };
        let dir = tempfile::tempdir().expect("a temporary folder");
        Self { dir, database: database.to_owned(), port, child: None, api, sandbox: false }
    }

    /// Runs a command of the binary to completion against the service's database.
    fn run(&self, args: &[&str]) -> Output {
        let mut command = tuangou(self.dir.path());
        command.args(args).args(["--database", &self.database]).stdin(Stdio::null());
        command.output().expect("run the tuangou binary")
    }

    /// Starts `serve` and waits until it answers `/healthz`.
    async fn start(&mut self) {
        let log = File::options().create(true).append(true).open(self.dir.path().join("serve.log")).expect("log");
        let listen = format!("127.0.0.1:{}", self.port);
        let mut command = tuangou(self.dir.path());
        if self.sandbox {
            command.env("TUANGOU_PAYMENTS_SANDBOX", "true");
        }
        let child = command
            .args(["serve", "--listen", &listen, "--database", &self.database])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tuangou serve");
        let child = self.child.insert(child);
        let deadline = Instant::now() + START_BUDGET;
        loop {
            if let Some(status) = child.try_wait().expect("poll the server") {
                panic!("tuangou serve exited ({status}) before answering /healthz\n{}", log_in(self.dir.path()));
            }
            let health = self.api.client.get(format!("{}/healthz", self.api.base)).send().await;
            if health.is_ok_and(|r| r.status() == StatusCode::OK) {
                return;
            }
            assert!(Instant::now() < deadline, "tuangou serve did not answer /healthz within {START_BUDGET:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no graceful shutdown, no request finishes, nothing is flushed by the process.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9 the server");
            child.wait().expect("reap the server");
        }
    }

    /// The end of the server's logs so far, for failure messages.
    fn log(&self) -> String {
        log_in(self.dir.path())
    }
}

/// The last lines of `serve.log` in `dir`.
fn log_in(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    format!("--- serve.log (end) ---\n{}", lines[lines.len().saturating_sub(40)..].join("\n"))
}

/// The service's API at its one address, which stays the same across restarts.
#[derive(Clone)]
struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    /// `METHOD path` with an optional bearer token and JSON body: the status and the JSON answer.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        key: Option<&str>,
    ) -> reqwest::Result<(StatusCode, Value)> {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// A setup call, while nothing is killed: it must answer `expected`.
    async fn must(&self, path: &str, token: Option<&str>, body: Value, expected: StatusCode) -> Value {
        let (status, answer) =
            self.call(reqwest::Method::POST, path, token, Some(body), None).await.expect("the server answers");
        assert_eq!(status, expected, "POST {path}: {answer}");
        answer
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let (status, body) =
            self.call(reqwest::Method::GET, path, Some(token), None, None).await.expect("the server answers");
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Signs a new account up and in; returns `(id, token)`.
async fn sign_up(api: &Api, phone: &str) -> (String, String) {
    let account = json!({"phone": phone, "password": PASSWORD, "name": "顾客"});
    api.must("/api/v1/users", None, account, StatusCode::CREATED).await;
    sign_in(api, phone).await
}

async fn sign_in(api: &Api, phone: &str) -> (String, String) {
    let credentials = json!({"phone": phone, "password": PASSWORD});
    let session = api.must("/api/v1/sessions", None, credentials, StatusCode::CREATED).await;
    (session["user"]["id"].as_str().expect("an id").to_owned(), session["token"].as_str().expect("a token").to_owned())
}

/// The operator (made by `tuangou admin create`), a merchant with a live instant-draw campaign of groups of three
/// (so groups fill and are drawn all the time), and [`CLIENTS`] customers with money for every join they may make.
/// Returns the campaign and the customers' tokens.
async fn set_up(service: &Service) -> (String, Vec<String>) {
    let created = service.run(&["admin", "create", "--phone", OPERATOR_PHONE, "--password", PASSWORD]);
    assert!(created.status.success(), "{}", shown(&created));
    let api = &service.api;
    let (_, operator) = sign_in(api, OPERATOR_PHONE).await;
    let credit = |target: Value, amount: i64| {
        let mut body = target;
        body["amount"] = json!(amount);
        body["reference"] = json!(format!("credit-{}", fastrand::u64(..)));
        api.must("/api/v1/admin/credits", Some(&operator), body, StatusCode::CREATED)
    };
    let (_, owner) = sign_up(api, OWNER_PHONE).await;
    let merchant = json!({"name": "老码头", "category": "火锅", "address": "锦江区春熙路 8 号",
        "latitude": 30.6563, "longitude": 104.08, "phone": "02886661234"});
    let merchant = api.must("/api/v1/merchants", Some(&owner), merchant, StatusCode::CREATED).await;
    let merchant = merchant["id"].as_str().expect("a merchant id").to_owned();
    credit(json!({"merchant_id": merchant}), 100_000_000).await;
    let campaign = json!({
        "title": "双人火锅套餐", "product_type": "火锅", "quantity": 10_000, "price": PRICE, "original_price": 19_800,
        "group_size": 3, "winners_per_group": 1, "reward": {"kind": "cash", "amount": 100}, "commission_bps": 500,
        "group_ttl_seconds": 3_600, "draw_mode": "instant", "voucher_valid_days": 30,
        "per_customer_limit": KEYS_PER_CLIENT});
    let path = format!("/api/v1/merchants/{merchant}/campaigns");
    let campaign = api.must(&path, Some(&owner), campaign, StatusCode::CREATED).await;
    let campaign = campaign["id"].as_str().expect("a campaign id").to_owned();
    api.must(&format!("/api/v1/campaigns/{campaign}/publish"), Some(&owner), json!({}), StatusCode::OK).await;
    let mut customers = Vec::new();
    for i in 0..CLIENTS {
        let (id, token) = sign_up(api, &format!("1390000{i:04}")).await;
        credit(json!({"user_id": id}), PRICE * KEYS_PER_CLIENT as i64).await;
        customers.push(token);
    }
    (campaign, customers)
}

/// One key's first answer that was not a 5xx or a lost connection, and how many tries it took.
#[derive(Debug, Clone)]
struct Answer {
    key: String,
    status: StatusCode,
    body: Value,
    tries: u32,
}

impl Answer {
    fn membership(&self) -> &str {
        self.body["membership"]["id"].as_str().unwrap_or("")
    }
}

/// Joins the campaign with `key` until the service answers: a lost connection (the server was killed) or a 5xx
/// is tried again with the same key, for at most [`RETRY_BUDGET`].
async fn join_until_answered(api: &Api, campaign: &str, token: &str, key: &str) -> Answer {
    let path = format!("/api/v1/campaigns/{campaign}/join");
    let (status, body, tries) = answered(api, &path, token, json!({}), key).await;
    Answer { key: key.to_owned(), status, body, tries }
}

/// One customer's joins, one new key each, back to back until `stop` (finishing the key in hand).
async fn client(api: Api, campaign: String, number: usize, token: String, stop: Arc<AtomicBool>) -> Vec<Answer> {
    let mut answers = Vec::new();
    for i in 0..KEYS_PER_CLIENT {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        answers.push(join_until_answered(&api, &campaign, &token, &format!("client-{number}-join-{i}")).await);
    }
    answers
}

/// Every membership the customer has, through `GET /api/v1/me/memberships`, page by page: id → group id.
async fn memberships(api: &Api, token: &str) -> BTreeMap<String, String> {
    listed(api, "/api/v1/me/memberships", token, "group_id").await
}

/// Every item of a list of the customer's (`path`), page by page: id → the item's `field`.
async fn listed(api: &Api, path: &str, token: &str, field: &str) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let page = api.get(&format!("{path}?limit=200{cursor}"), token).await;
        for item in page["items"].as_array().expect("items") {
            let (id, value) = (item["id"].as_str().expect("an id"), item[field].as_str().expect("the field"));
            all.insert(id.to_owned(), value.to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return all,
        }
    }
}

/// Customers join with idempotency keys while the server is killed with SIGKILL 3–5 times, 0.3–1.5 s apart, and
/// started again on the same database each time; clients retry lost connections and 5xx with the same key. Then:
/// every key was answered 201; each customer's memberships are exactly those of their 201s (none lost, none made
/// twice), each in its group's record at its seat; every key answers again with the same membership; and
/// `tuangou check` exits 0.
async fn joins_survive_kill_9_and_retries_with_the_same_key_join_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut service = Service::new(&db.url);
    service.start().await;
    let (campaign, customers) = set_up(&service).await;

    let api = service.api.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = customers
        .iter()
        .enumerate()
        .map(|(number, token)| tokio::spawn(client(api.clone(), campaign.clone(), number, token.clone(), stop.clone())))
        .collect();
    let kills = fastrand::usize(3..=5);
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(300..=1_500))).await;
        service.kill();
        service.start().await;
    }
    // A little more joining after the last start; then each client finishes the key in hand (retrying it until it
    // is answered) and stops.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut answers = Vec::new();
    for client in clients {
        answers.push(client.await.expect("a client"));
    }

    let unexpected: Vec<&Answer> = answers.iter().flatten().filter(|a| a.status != StatusCode::CREATED).collect();
    assert!(unexpected.is_empty(), "every key should be answered 201: {unexpected:#?}\n{}", service.log());
    let total: usize = answers.iter().map(Vec::len).sum();
    assert!(total > CLIENTS, "the clients hardly joined ({total} joins)");
    let retried = answers.iter().flatten().filter(|a| a.tries > 1).count();
    assert!(retried > 0, "no kill interrupted a join: nothing was retried");

    let mut groups: BTreeMap<String, Vec<&Answer>> = BTreeMap::new();
    for (token, answered) in customers.iter().zip(&answers) {
        let listed = memberships(&api, token).await;
        let ids: BTreeSet<&str> = answered.iter().map(Answer::membership).collect();
        assert_eq!(ids.len(), answered.len(), "two keys answered the same membership");
        let listed_ids: BTreeSet<&str> = listed.keys().map(String::as_str).collect();
        assert_eq!(listed_ids, ids, "the memberships are exactly those answered 201, each once");
        for answer in answered {
            let group = answer.body["group"]["id"].as_str().expect("a group id");
            assert_eq!(listed[answer.membership()], group, "{answer:?}");
            groups.entry(group.to_owned()).or_default().push(answer);
        }
    }
    for (group, answered) in &groups {
        let record = api.get(&format!("/api/v1/groups/{group}"), &customers[0]).await;
        let members = record["members"].as_array().expect("members");
        for answer in answered {
            let membership = &answer.body["membership"];
            let seated = members.iter().any(|m| m["seq"] == membership["seq"] && m["ticket"] == membership["ticket"]);
            assert!(seated, "membership {membership} is not in group {group}: {record}");
        }
    }

    for (token, answered) in customers.iter().zip(&answers) {
        for first in answered {
            let again = join_until_answered(&api, &campaign, token, &first.key).await;
            assert_eq!(
                (again.status, again.membership()),
                (first.status, first.membership()),
                "key {}: answered differently the second time: {}",
                first.key,
                again.body
            );
        }
    }

    service.kill();
    let check = service.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}\n{}", shown(&check), service.log());
}

/// Customers join paying through the sandbox provider (202, a pending seat) and pay on its page, while the server
/// is killed with SIGKILL 3–5 times and started again: between a payment being confirmed at the provider and its
/// seat being confirmed, at any moment. Then, once the restarted worker has caught up: every payment the sandbox
/// took is a paid seat (confirmed once: the price held or settled once) and none stays pending; `tuangou check`
/// (with PAYMENTS.md's invariants: every paid payment a seat's hold or refunded, the clearing account equal to paid
/// − refunded − paid out) exits 0.
async fn paid_joins_survive_kill_9(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut service = Service::new(&db.url);
    service.sandbox = true;
    service.start().await;
    let (campaign, customers) = set_up(&service).await;
    let api = service.api.clone();
    let paid = clients_while_killed(&mut service, &customers, "paid-join", move |api, token, key| {
        let path = format!("/api/v1/campaigns/{campaign}/join");
        async move {
            let joined = answered(&api, &path, &token, json!({"pay_with": "sandbox"}), &key).await;
            assert_eq!(joined.0, StatusCode::ACCEPTED, "{}", joined.1);
            let payment = joined.1["payment"]["id"].as_str().expect("a payment").to_owned();
            let pay = format!("/sandbox/payments/{payment}/pay");
            let (status, body, _) = answered(&api, &pay, &token, json!({}), &key).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            joined.1["membership"]["id"].as_str().expect("a membership").to_owned()
        }
    })
    .await;
    assert!(paid.iter().map(Vec::len).sum::<usize>() > CLIENTS, "the clients hardly paid");

    // The sandbox's notifications (kept in its outbox across kills) and the worker's queries catch up.
    let deadline = Instant::now() + Duration::from_secs(60);
    for (token, seats) in customers.iter().zip(&paid) {
        caught_up(&service, deadline, async || {
            // Every page: a fast client pays for more seats than one page holds.
            let statuses = listed(&api, "/api/v1/me/memberships", token, "status").await;
            let pending: Vec<&String> = statuses.iter().filter(|(_, s)| *s == "pending").map(|(id, _)| id).collect();
            let unpaid: Vec<&String> =
                seats.iter().filter(|id| statuses.get(*id).is_none_or(|s| s == "pending")).collect();
            if pending.is_empty() && unpaid.is_empty() {
                Ok(())
            } else {
                Err(format!("seats still pending: {pending:?}, paid but not confirmed: {unpaid:?}"))
            }
        })
        .await;
    }
    service.kill();
    let check = service.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}\n{}", shown(&check), service.log());
}

/// Asks `settled` every 200 ms until it answers `Ok` (the restarted worker catching up, its next attempts seconds
/// away); fails at `deadline` with what it last answered and the service's log.
async fn caught_up(service: &Service, deadline: Instant, mut settled: impl AsyncFnMut() -> Result<(), String>) {
    loop {
        let Err(left) = settled().await else { return };
        assert!(Instant::now() < deadline, "{left} a minute after the kills\n{}", service.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// POSTs `body` to `path` with `key` until the service answers (a lost connection or a 5xx is tried again with the
/// same key, for at most [`RETRY_BUDGET`]): the answer and how many tries it took.
async fn answered(api: &Api, path: &str, token: &str, body: Value, key: &str) -> (StatusCode, Value, u32) {
    let deadline = Instant::now() + RETRY_BUDGET;
    let mut tries = 0;
    loop {
        tries += 1;
        let answer = api.call(reqwest::Method::POST, path, Some(token), Some(body.clone()), Some(key)).await;
        match answer {
            Ok((status, body)) if !status.is_server_error() => return (status, body, tries),
            Err(error) if error.is_timeout() => panic!("{path} ({key}): the server took over 15 s: {error}"),
            Ok(_) | Err(_) => {}
        }
        assert!(Instant::now() < deadline, "{path} ({key}): no answer within {RETRY_BUDGET:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills the service with SIGKILL 3–5 times, 0.3–1.5 s apart, starting it again each time; lets the clients go on
/// a little after the last start, then tells them to stop (each finishes the key in hand).
async fn kill_now_and_then(service: &mut Service, stop: &AtomicBool) {
    for _ in 0..fastrand::usize(3..=5) {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(300..=1_500))).await;
        service.kill();
        service.start().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
}

/// The clients' results, once they ran through [`kill_now_and_then`] and stopped.
async fn through_kills<T>(
    service: &mut Service,
    stop: &AtomicBool,
    clients: Vec<tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    kill_now_and_then(service, stop).await;
    let mut results = Vec::new();
    for client in clients {
        results.push(client.await.expect("a client"));
    }
    results
}

/// One client per customer, each making `step(api, token, key)` with a new key `client-{number}-{what}-{i}`, back
/// to back, while the service is killed [now and then](kill_now_and_then) (each finishes the key in hand): what
/// each client's steps answered, in order.
async fn clients_while_killed<T, F, Fut>(
    service: &mut Service,
    customers: &[String],
    what: &'static str,
    step: F,
) -> Vec<Vec<T>>
where
    T: Send + 'static,
    F: Fn(Api, String, String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = customers
        .iter()
        .enumerate()
        .map(|(number, token)| {
            let (api, token, stop, step) = (service.api.clone(), token.clone(), stop.clone(), step.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for i in 0..KEYS_PER_CLIENT {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    answers.push(step(api.clone(), token.clone(), format!("client-{number}-{what}-{i}")).await);
                }
                answers
            })
        })
        .collect();
    through_kills(service, &stop, clients).await
}

/// Every withdrawal the customer made, through `GET /api/v1/me/withdrawals`, page by page: id → status.
async fn withdrawals(api: &Api, token: &str) -> BTreeMap<String, String> {
    listed(api, "/api/v1/me/withdrawals", token, "status").await
}

/// Customers ask for withdrawals of 1 yuan through the sandbox with `Idempotency-Key`s while the server (and its
/// payout worker, between the provider paying out and the settlement being kept) is killed with SIGKILL 3–5 times
/// and started again. Then, once the restarted worker has caught up: each customer's withdrawals are exactly the
/// keys answered 201, each once, every one paid out; the wallet lost exactly one yuan for each; `tuangou check`
/// (the clearing account equal to paid − refunded − paid out among them) exits 0.
async fn withdrawals_survive_kill_9(backend: Backend) {
    const WITHDRAWAL: i64 = 100;
    let db = TestDb::new(backend).await;
    let mut service = Service::new(&db.url);
    service.sandbox = true;
    service.start().await;
    let (_, customers) = set_up(&service).await;
    let api = service.api.clone();
    let asked = clients_while_killed(&mut service, &customers, "withdrawal", |api, token, key| async move {
        let body = json!({"amount": WITHDRAWAL, "provider": "sandbox"});
        let (status, answer, _) = answered(&api, "/api/v1/me/withdrawals", &token, body, &key).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["id"].as_str().expect("a withdrawal id").to_owned()
    })
    .await;
    let asked: Vec<BTreeSet<String>> = asked.into_iter().map(|ids| ids.into_iter().collect()).collect();
    assert!(asked.iter().map(BTreeSet::len).sum::<usize>() > CLIENTS, "the clients hardly withdrew");

    // The restarted worker pays out what is still in flight (its next attempts are at most seconds away).
    let deadline = Instant::now() + Duration::from_secs(60);
    for (token, ids) in customers.iter().zip(&asked) {
        caught_up(&service, deadline, async || {
            let listed = withdrawals(&api, token).await;
            let ids_listed: BTreeSet<&String> = listed.keys().collect();
            assert_eq!(ids_listed, ids.iter().collect(), "the withdrawals are exactly those answered 201, each once");
            let statuses: BTreeSet<&str> = listed.values().map(String::as_str).collect();
            if statuses.iter().all(|s| *s == "succeeded") {
                Ok(())
            } else {
                Err(format!("withdrawals still in flight: {statuses:?}"))
            }
        })
        .await;
        let wallet = api.get("/api/v1/me/wallet", token).await;
        let expected = PRICE * KEYS_PER_CLIENT as i64 - WITHDRAWAL * ids.len() as i64;
        assert_eq!(wallet["available"].as_i64(), Some(expected), "one yuan gone for each withdrawal: {wallet}");
    }
    service.kill();
    let check = service.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}\n{}", shown(&check), service.log());
}

/// Staff members redeeming at once in [`redemptions_survive_kill_9`].
const STAFF: usize = 3;
/// Joins each customer makes to win vouchers for the redemption burst (a third of the joins win).
const JOINS_FOR_VOUCHERS: usize = 200;
/// Each staff member's pause between redemptions: the burst outlasts the kills.
const REDEMPTION_PACE: Duration = Duration::from_millis(50);
const COMMISSION: i64 = 49;

/// One voucher's redemption as its staff member saw it.
#[derive(Debug)]
struct Redeemed {
    voucher: String,
    code: String,
    key: String,
    status: StatusCode,
    body: Value,
    tries: u32,
}

/// Every voucher of `customers` with its code, and the merchant they are for.
async fn vouchers(api: &Api, customers: &[String]) -> (BTreeMap<String, String>, String) {
    let mut codes = BTreeMap::new();
    for token in customers {
        codes.extend(listed(api, "/api/v1/me/vouchers", token, "code").await);
    }
    let page = api.get("/api/v1/me/vouchers?limit=1", &customers[0]).await;
    let merchant = page["items"][0]["merchant_id"].as_str().expect("a merchant").to_owned();
    (codes, merchant)
}

/// Customers win vouchers (no kills yet); [`STAFF`] staff members then redeem them all at once, with an
/// `Idempotency-Key` per voucher, while the server is killed with SIGKILL 3–5 times and started again; a lost
/// connection or a 5xx is tried again with the same key. Then: each voucher a staff member tried is redeemed,
/// with one redemption, and no other is; every 201 the staff saw is a stored redemption; a voucher answered 409
/// `already_redeemed` was so only on a retry (its first try committed before the kill); each key answers again as
/// it did (or, answered 409 on a retry, with its first try's stored 201); another try at a redeemed voucher answers 409 `already_redeemed`; the merchant was paid exactly the
/// price less commission for each (and its receivable fell by the price); `tuangou check` exits 0.
async fn redemptions_survive_kill_9(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut service = Service::new(&db.url);
    service.start().await;
    let (campaign, customers) = set_up(&service).await;
    let api = service.api.clone();
    let joins: Vec<_> = customers
        .iter()
        .map(|token| {
            let (api, path, token) = (api.clone(), format!("/api/v1/campaigns/{campaign}/join"), token.clone());
            tokio::spawn(async move {
                for _ in 0..JOINS_FOR_VOUCHERS {
                    api.must(&path, Some(&token), json!({}), StatusCode::CREATED).await;
                }
            })
        })
        .collect();
    for joining in joins {
        joining.await.expect("a customer's joins");
    }
    let (codes, merchant) = vouchers(&api, &customers).await;
    let (_, owner) = sign_in(&api, OWNER_PHONE).await;
    let mut staff = Vec::new();
    for i in 0..STAFF {
        let phone = format!("1370000{i:04}");
        let (_, token) = sign_up(&api, &phone).await;
        api.must(
            &format!("/api/v1/merchants/{merchant}/staff"),
            Some(&owner),
            json!({"phone": phone}),
            StatusCode::CREATED,
        )
        .await;
        staff.push(token);
    }
    let wallet = format!("/api/v1/merchants/{merchant}/wallet");
    let before = api.get(&wallet, &owner).await;

    let stop = Arc::new(AtomicBool::new(false));
    let path = format!("/api/v1/merchants/{merchant}/redemptions");
    let all: Vec<(String, String)> = codes.clone().into_iter().collect();
    let clients: Vec<_> = staff
        .iter()
        .enumerate()
        .map(|(number, token)| {
            let mine: Vec<(String, String)> = all.iter().skip(number).step_by(STAFF).cloned().collect();
            let (api, path, token, stop) = (api.clone(), path.clone(), token.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for (voucher, code) in mine {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let key = format!("redeem-{voucher}");
                    let (status, body, tries) = answered(&api, &path, &token, json!({"code": code}), &key).await;
                    seen.push(Redeemed { voucher, code, key, status, body, tries });
                    tokio::time::sleep(REDEMPTION_PACE).await;
                }
                seen
            })
        })
        .collect();
    let seen = through_kills(&mut service, &stop, clients).await;

    let tried: usize = seen.iter().map(Vec::len).sum();
    let retried = seen.iter().flatten().filter(|r| r.tries > 1).count();
    let conflicts = seen.iter().flatten().filter(|r| r.status == StatusCode::CONFLICT).count();
    eprintln!(
        "{tried} of {} vouchers tried, {retried} retried, {conflicts} already redeemed ({backend:?})",
        codes.len()
    );
    assert!(tried > STAFF, "the staff hardly redeemed ({tried} redemptions)");
    assert!(retried > 0, "no kill interrupted a redemption: nothing was retried");
    for answer in seen.iter().flatten() {
        let problem = answer.body["code"].as_str();
        let fine = answer.status == StatusCode::CREATED
            || (answer.status == StatusCode::CONFLICT && problem == Some("already_redeemed") && answer.tries > 1);
        assert!(fine, "a redemption answered otherwise: {answer:?}\n{}", service.log());
    }

    // Stored: each voucher tried is redeemed once, no other; each 201 is a stored redemption of its voucher.
    let mut statuses = BTreeMap::new();
    for token in &customers {
        statuses.extend(listed(&api, "/api/v1/me/vouchers", token, "status").await);
    }
    let redeemed: BTreeSet<&str> = seen.iter().flatten().map(|r| r.voucher.as_str()).collect();
    for (voucher, status) in &statuses {
        let expected = if redeemed.contains(voucher.as_str()) { "redeemed" } else { "issued" };
        assert_eq!(status, expected, "voucher {voucher}");
    }
    let twice =
        "SELECT COUNT(*) FROM (SELECT voucher_id FROM redemptions GROUP BY voucher_id HAVING COUNT(*) > 1) twice";
    assert_eq!(db.scalar(twice).await, 0, "a voucher redeemed twice");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM redemptions").await, redeemed.len() as i64, "one redemption each");
    let created: Vec<String> = seen
        .iter()
        .flatten()
        .filter(|r| r.status == StatusCode::CREATED)
        .map(|r| format!("('{}', '{}')", r.body["id"].as_str().expect("a redemption id"), r.voucher))
        .collect();
    let stored = format!("SELECT COUNT(*) FROM redemptions WHERE (id, voucher_id) IN (VALUES {})", created.join(", "));
    assert_eq!(db.scalar(&stored).await, created.len() as i64, "every 201 is a stored redemption of its voucher");

    // Retried: each key answers as it did, except that a key answered 409 on a retry may answer its first try's
    // 201 now (the killed server had sent the statement storing that answer, and the database ran it after the
    // retry had looked for it); another try at a redeemed voucher is 409 `already_redeemed`.
    for (token, answers) in staff.iter().zip(&seen) {
        for first in answers {
            let (status, again, _) = answered(&api, &path, token, json!({"code": first.code}), &first.key).await;
            if first.status == StatusCode::CONFLICT && status == StatusCode::CREATED {
                let id = again["id"].as_str().expect("a redemption id");
                let query =
                    format!("SELECT COUNT(*) FROM redemptions WHERE id = '{id}' AND voucher_id = '{}'", first.voucher);
                assert_eq!(
                    db.scalar(&query).await,
                    1,
                    "key {}: the first try's redemption is stored: {again}",
                    first.key
                );
                continue;
            }
            assert_eq!((status, &again["id"]), (first.status, &first.body["id"]), "key {}: {again}", first.key);
        }
        if let Some(first) = answers.first() {
            let fresh = format!("{}-again", first.key);
            let (status, again, _) = answered(&api, &path, token, json!({"code": first.code}), &fresh).await;
            assert_eq!((status, again["code"].as_str()), (StatusCode::CONFLICT, Some("already_redeemed")), "{again}");
        }
    }

    // Paid exactly for the vouchers redeemed.
    let after = api.get(&wallet, &owner).await;
    let moved = |field: &str| after[field].as_i64().expect("fen") - before[field].as_i64().expect("fen");
    let n = redeemed.len() as i64;
    assert_eq!((moved("available"), moved("receivable")), ((PRICE - COMMISSION) * n, -PRICE * n), "{after}");
    service.kill();
    let check = service.run(&["check"]);
    assert_eq!(check.status.code(), Some(0), "{}\n{}", shown(&check), service.log());
}

on_both_backends!(
    joins_survive_kill_9_and_retries_with_the_same_key_join_once,
    paid_joins_survive_kill_9,
    withdrawals_survive_kill_9,
    redemptions_survive_kill_9,
);
