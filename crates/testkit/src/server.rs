//! A real server on a port of its own, over a fresh database, with a client that speaks the API.

use crate::TestDb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tuangou_app::{App, Clock, NewAccount, Settings};
use tuangou_domain::time::Millis;
use tuangou_store::Backend;

/// A signed-in account.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub phone: String,
    pub token: String,
}

pub struct TestApp {
    pub db: TestDb,
    pub app: App,
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
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

    /// Starts the service on 127.0.0.1:0 with a manual clock (tests move time with `app.clock().advance`).
    pub async fn spawn_with(backend: Backend, settings: Settings) -> Self {
        let db = TestDb::new(backend).await;
        let store = db.open().await;
        let now = Millis(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis() as i64
        );
        let app = App::new(store, settings, Clock::manual(now));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn({
            let app = app.clone();
            async move {
                let _ = tuangou_web::serve(listener, app, async {
                    let _ = stopped.await;
                })
                .await;
            }
        });
        let client = reqwest::Client::builder().build().expect("client");
        Self { db, app, base, client, stop: Some(stop), server: Some(server) }
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

    /// Sends raw bytes as the body (malformed JSON and the like).
    pub async fn send_raw(&self, method: Method, path: &str, token: Option<&str>, body: &[u8]) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base)).body(body.to_vec());
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
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.app.store().close().await;
    }
}
