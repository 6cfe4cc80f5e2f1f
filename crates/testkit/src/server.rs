//! A real server on a port of its own, over a fresh database, with a client that speaks the API.

use crate::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use tuangou_app::{App, Clock, NewAccount, PasswordCost, Settings};
use tuangou_domain::time::Millis;
use tuangou_store::Backend;
use tuangou_web::HttpSettings;

/// A signed-in account.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub phone: String,
    pub token: String,
}

pub struct TestApp {
    pub db: Arc<TestDb>,
    pub app: App,
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A password every test account shares.
pub const PASSWORD: &str = "correct horse battery";

/// [`PASSWORD`], for tests that sign in by hand.
pub fn server_password() -> &'static str {
    PASSWORD
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, Settings::default()).await
    }

    /// Starts the service on 127.0.0.1:0 over a fresh database, with a manual clock (tests move time with
    /// `app.clock().advance`) and the cheapest password hashing (the suite signs up hundreds of customers).
    /// Background jobs do not run by themselves: tests drive `app.run_jobs_once()`.
    pub async fn spawn_with(backend: Backend, settings: Settings) -> Self {
        Self::spawn_with_http(backend, settings, HttpSettings::default()).await
    }

    /// [`TestApp::spawn_with`], with the server granting clients what `http` says (short timeouts, a small
    /// connection limit, frequent keep-alives, a trusted proxy).
    pub async fn spawn_with_http(backend: Backend, settings: Settings, http: HttpSettings) -> Self {
        let db = Arc::new(TestDb::new(backend).await);
        let now = Millis(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as i64
        );
        Self::start_with(db, settings, Clock::manual(now), http).await
    }

    /// The service started again on an existing database, as after a restart.
    pub async fn spawn_on(db: Arc<TestDb>, clock: Clock) -> Self {
        Self::start(db, Settings::default(), clock).await
    }

    /// The service started again on an existing database with these settings, as after a restart.
    pub async fn spawn_on_with(db: Arc<TestDb>, settings: Settings, clock: Clock) -> Self {
        Self::start(db, settings, clock).await
    }

    /// A second instance of the service on the same database (and the same clock), as behind a load balancer.
    pub async fn second_instance(&self) -> Self {
        Self::start(self.db.clone(), self.app.settings().clone(), self.app.clock().clone()).await
    }

    /// Starts the service with `settings` exactly as given (real password hashing and every production limit),
    /// for the tests of the limits themselves; otherwise like [`TestApp::spawn_with`].
    pub async fn spawn_exact(backend: Backend, settings: Settings) -> Self {
        let db = Arc::new(TestDb::new(backend).await);
        let now = Millis(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as i64
        );
        Self::start_exact(db, settings, Clock::manual(now), HttpSettings::default()).await
    }

    async fn start(db: Arc<TestDb>, settings: Settings, clock: Clock) -> Self {
        Self::start_with(db, settings, clock, HttpSettings::default()).await
    }

    async fn start_with(db: Arc<TestDb>, mut settings: Settings, clock: Clock, http: HttpSettings) -> Self {
        settings.password_cost = PasswordCost::Minimal;
        // Tests sign hundreds of customers up and in at once from one address, and a sign-in in flight counts as
        // a failure at its address until it succeeds: the limits per address and on attempts at once are tested
        // by themselves, with `spawn_exact` (failures per phone stay as they are in production).
        settings.throttles.sign_ups_per_address = None;
        settings.throttles.sign_in_failures_per_address.max = i64::MAX;
        settings.throttles.in_flight_per_address = usize::MAX;
        settings.throttles.hashes_waiting_per_core = 1 << 16;
        Self::start_exact(db, settings, clock, http).await
    }

    async fn start_exact(db: Arc<TestDb>, mut settings: Settings, clock: Clock, http: HttpSettings) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        // Share links and QR codes point at this very server, unless the test stands it behind HTTPS (a TLS proxy
        // that the test itself is not going through).
        if !settings.public_url.starts_with("https://") {
            settings.public_url = base.clone();
        }
        // Photos go to the test's own folder unless the test chose one.
        if settings.media_dir == std::path::Path::new(tuangou_app::DEFAULT_MEDIA_DIR) {
            settings.media_dir = db.media.path().to_owned();
        }
        let store = db.open().await;
        let app = App::new(store, settings, clock);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(events) = app.start_event_listener(stopped.clone()).await {
            tasks.push(events);
        }
        // The sandbox payment provider, when on, runs beside the service as it does in `serve`.
        if let Some(sandbox) = app.sandbox().cloned() {
            let stopped = stopped.clone();
            tasks.push(tokio::spawn(async move { sandbox.run(stopped).await }));
        }
        tasks.push(tokio::spawn({
            let (app, mut stopped) = (app.clone(), stopped.clone());
            async move {
                let _ = tuangou_web::serve_with(listener, app, http, async move {
                    let _ = stopped.changed().await;
                })
                .await;
            }
        }));
        // Idle connections are dropped before the server's header timeout (10 s by default) would close them, so
        // that no request ever goes out on a connection the server is closing at that very moment.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("client");
        Self { db, app, base, client, stop: Some(stop), tasks }
    }

    /// Sends a request; returns the status and the JSON body (`Null` when there is none).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the server answers");
        Self::read(response).await
    }

    /// Sends raw bytes as the body (malformed JSON and the like), as `application/json`.
    pub async fn send_raw(&self, method: Method, path: &str, token: Option<&str>, body: &[u8]) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the server answers");
        Self::read(response).await
    }

    /// Reads a response, checking that every error is problem+json with a code.
    pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
        let status = response.status();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(content_type, "application/problem+json", "{status} answered {content_type}: {body}");
            assert!(body["code"].is_string() && body["status"] == status.as_u16(), "{status}: {body}");
        }
        (status, body)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, token, Some(&body)).await
    }

    /// `count` new customers, signed up and in concurrently, each credited `credit` fen by `operator`.
    pub async fn customers(&self, operator: &TestUser, count: usize, credit: i64) -> Vec<TestUser> {
        // Phones never repeat within a process, however often a test asks for more customers.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let first = NEXT.fetch_add(count, std::sync::atomic::Ordering::SeqCst);
        let make = |i: usize| async move {
            let user = self.customer(&format!("1370{:07}", first + i)).await;
            if credit > 0 {
                self.credit(operator, json!({"user_id": user.id}), credit).await;
            }
            user
        };
        futures::future::join_all((0..count).map(make)).await
    }

    /// Signs a new customer up and in.
    pub async fn customer(&self, phone: &str) -> TestUser {
        let (status, body) =
            self.post("/api/v1/users", None, json!({"phone": phone, "password": PASSWORD, "name": "测试"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.sign_in(phone).await
    }

    pub async fn sign_in(&self, phone: &str) -> TestUser {
        let (status, body) = self.post("/api/v1/sessions", None, json!({"phone": phone, "password": PASSWORD})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        TestUser {
            id: body["user"]["id"].as_str().expect("id").to_owned(),
            phone: phone.to_owned(),
            token: body["token"].as_str().expect("token").to_owned(),
        }
    }

    /// The operator, created as `tuangou admin create` does, and signed in.
    pub async fn operator(&self) -> TestUser {
        let account = NewAccount::parse("13800000000", PASSWORD, "运营").expect("valid");
        self.app.create_operator(account).await.expect("operator");
        self.sign_in("13800000000").await
    }

    /// Credits an account through the operator's API.
    pub async fn credit(&self, operator: &TestUser, target: Value, amount: i64) {
        let mut body = target;
        body["amount"] = json!(amount);
        body["reference"] = json!(uuid::Uuid::new_v4().to_string());
        let (status, answer) = self.post("/api/v1/admin/credits", Some(&operator.token), body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }

    /// Asserts that every invariant holds, then stops the server. Every API test ends with it.
    pub async fn finish(mut self) {
        let violations = self.app.check().await.expect("check runs");
        assert!(violations.is_empty(), "invariants broken: {violations:?}");
        self.stop().await;
    }

    /// Stops the server and its listener, and closes the pools (the database stays while another instance or the
    /// test holds it).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        self.app.store().close().await;
    }
}
