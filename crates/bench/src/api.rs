//! The untimed part: speaking the API to set the scene (operator, merchant, campaigns, funded customers), and the
//! one timed call every scenario makes, `POST /api/v1/campaigns/{id}/join`.

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tuangou_app::{App, NewAccount};

/// Every account's password.
const PASSWORD: &str = "correct horse battery";
/// How many setup requests run at once.
const SETUP_CONCURRENCY: usize = 32;
/// A request that takes longer than this counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A signed-in account.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub token: String,
}

/// The API at one address, with a pooled keep-alive client for the setup.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    client: reqwest::Client,
}

/// A keep-alive HTTP client of its own (one per simulated customer).
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(REQUEST_TIMEOUT).pool_max_idle_per_host(64).build()?)
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self { base: base.to_owned(), client: http_client()? })
    }

    /// Sends a JSON request; returns the status and the JSON body (`Null` when there is none).
    pub async fn send(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None, None).await
    }

    /// A POST that must answer `expected`; returns the body.
    async fn post_ok(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
        expected: StatusCode,
    ) -> anyhow::Result<Value> {
        let reply = self.send(reqwest::Method::POST, path, token, Some(body)).await;
        if reply.status != Some(expected) {
            bail!("POST {path} answered {}: {}", reply.describe(), reply.body);
        }
        Ok(reply.body)
    }

    /// The operator, created as `tuangou admin create` does, and signed in.
    pub async fn operator(&self, app: &App) -> anyhow::Result<User> {
        let account = NewAccount::parse("13800000000", PASSWORD, "运营").map_err(|e| anyhow::anyhow!("{e}"))?;
        app.create_operator(account).await.map_err(|e| anyhow::anyhow!("creating the operator: {e}"))?;
        self.sign_in("13800000000").await
    }

    /// Signs a new account up and in.
    pub async fn sign_up(&self, phone: &str) -> anyhow::Result<User> {
        let body = json!({"phone": phone, "password": PASSWORD, "name": "压测"});
        self.post_ok("/api/v1/users", None, body, StatusCode::CREATED).await?;
        self.sign_in(phone).await
    }

    async fn sign_in(&self, phone: &str) -> anyhow::Result<User> {
        let body = json!({"phone": phone, "password": PASSWORD});
        let answer = self.post_ok("/api/v1/sessions", None, body, StatusCode::CREATED).await?;
        Ok(User { id: text(&answer["user"]["id"])?, token: text(&answer["token"])? })
    }

    /// Credits a user (`{"user_id": …}`) or a merchant (`{"merchant_id": …}`) through the operator's API.
    pub async fn credit(&self, operator: &User, target: Value, amount: i64) -> anyhow::Result<()> {
        let mut body = target;
        body["amount"] = json!(amount);
        body["reference"] = json!(uuid::Uuid::new_v4().to_string());
        self.post_ok("/api/v1/admin/credits", Some(&operator.token), body, StatusCode::CREATED).await?;
        Ok(())
    }

    /// `count` customers with phones `139` + eight digits, signed up and in concurrently, each credited `credit`.
    pub async fn customers(&self, operator: &User, count: usize, credit: i64) -> anyhow::Result<Vec<User>> {
        futures::stream::iter(0..count)
            .map(|i| async move {
                let user = self.sign_up(&format!("139{i:08}")).await?;
                self.credit(operator, json!({"user_id": user.id}), credit).await?;
                Ok::<_, anyhow::Error>(user)
            })
            .buffered(SETUP_CONCURRENCY)
            .try_collect()
            .await
    }

    /// A merchant owned by `owner`, credited `funds` for the campaigns' reward reserves; returns its id.
    pub async fn merchant(&self, operator: &User, owner: &User, funds: i64) -> anyhow::Result<String> {
        let body = json!({
            "name": "老码头火锅", "category": "火锅", "description": "老店", "address": "锦江区春熙路 8 号",
            "latitude": 30.6563, "longitude": 104.0800, "phone": "028-8666 1234", "opening_hours": "11:00–23:00"
        });
        let merchant = self.post_ok("/api/v1/merchants", Some(&owner.token), body, StatusCode::CREATED).await?;
        let id = text(&merchant["id"])?;
        self.credit(operator, json!({"merchant_id": id}), funds).await?;
        Ok(id)
    }

    /// Drafts and publishes an instant-draw campaign; returns its id.
    pub async fn live_campaign(&self, owner: &User, merchant: &str, shape: &CampaignShape) -> anyhow::Result<String> {
        let path = format!("/api/v1/merchants/{merchant}/campaigns");
        let draft = self.post_ok(&path, Some(&owner.token), shape.body(), StatusCode::CREATED).await?;
        let id = text(&draft["id"])?;
        let path = format!("/api/v1/campaigns/{id}/publish");
        self.post_ok(&path, Some(&owner.token), json!({}), StatusCode::OK).await?;
        Ok(id)
    }
}

/// The numbers that matter in a benchmark campaign; the rest is a typical hot-pot deal.
#[derive(Debug, Clone)]
pub struct CampaignShape {
    pub quantity: i64,
    pub group_size: i64,
    pub winners_per_group: i64,
    pub per_customer_limit: i64,
}

/// The price of a seat, and each loser's cash reward, in fen.
pub const PRICE: i64 = 990;
pub const REWARD: i64 = 100;

impl CampaignShape {
    /// What publishing reserves: `(Q / K) × (N − K) × reward`.
    pub fn reserve(&self) -> i64 {
        self.quantity / self.winners_per_group * (self.group_size - self.winners_per_group) * REWARD
    }

    fn body(&self) -> Value {
        json!({
            "title": "双人火锅套餐", "product_type": "火锅", "description": "麻辣锅底",
            "quantity": self.quantity, "price": PRICE, "original_price": 19_800,
            "group_size": self.group_size, "winners_per_group": self.winners_per_group,
            "reward": {"kind": "cash", "amount": REWARD}, "commission_bps": 500, "group_ttl_seconds": 3600,
            "draw_mode": "instant", "voucher_valid_days": 30, "per_customer_limit": self.per_customer_limit
        })
    }
}

fn text(value: &Value) -> anyhow::Result<String> {
    value.as_str().map(str::to_owned).with_context(|| format!("expected a string, got {value}"))
}

/// An answer: the status (none when the request failed before one arrived) and the JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: Option<StatusCode>,
    pub body: Value,
    /// Why no status arrived (connection refused, timeout, …).
    pub failure: Option<String>,
}

impl Reply {
    async fn from(sent: reqwest::Result<reqwest::Response>) -> Self {
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Self::failed(error),
        };
        let status = response.status();
        match response.bytes().await {
            Ok(bytes) => {
                let body = serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
                Self { status: Some(status), body, failure: None }
            }
            Err(error) => Self::failed(error),
        }
    }

    fn failed(error: reqwest::Error) -> Self {
        let kind = if error.is_timeout() { "timeout" } else { "transport error" };
        Self { status: None, body: Value::Null, failure: Some(format!("{kind}: {error}")) }
    }

    /// `201`, `409 sold_out`, `timeout: …`: how errors are counted.
    pub fn describe(&self) -> String {
        match (self.status, &self.failure) {
            (Some(status), _) => match self.body["code"].as_str() {
                Some(code) => format!("{} {code}", status.as_u16()),
                None => status.as_u16().to_string(),
            },
            (None, Some(failure)) => failure.clone(),
            (None, None) => "no answer".into(),
        }
    }
}

/// One timed request and what it was answered.
#[derive(Debug, Clone)]
pub struct Timed {
    pub started: Instant,
    pub latency: Duration,
    pub reply: Reply,
    /// The status a success answers with (201 for a join); any other is an error.
    expected: StatusCode,
}

impl Timed {
    pub fn ok(&self) -> bool {
        self.reply.status == Some(self.expected)
    }

    /// The same request without a successful answer's body (a long run keeps only what the report needs).
    pub fn slim(mut self) -> Self {
        if self.ok() {
            self.reply.body = Value::Null;
        }
        self
    }
}

/// Sends `request`, timed from send to the last byte of the answer.
pub async fn timed(request: reqwest::RequestBuilder, expected: StatusCode) -> Timed {
    let started = Instant::now();
    let reply = Reply::from(request.send().await).await;
    Timed { started, latency: started.elapsed(), reply, expected }
}

/// `POST /api/v1/campaigns/{id}/join` with an empty body.
pub fn join_request(client: &reqwest::Client, base: &str, campaign: &str, token: &str) -> reqwest::RequestBuilder {
    client.post(format!("{base}/api/v1/campaigns/{campaign}/join")).bearer_auth(token).json(&json!({}))
}

/// [`join_request`], timed; a join answers 201.
pub async fn join(client: &reqwest::Client, base: &str, campaign: &str, token: &str) -> Timed {
    timed(join_request(client, base, campaign, token), StatusCode::CREATED).await
}
