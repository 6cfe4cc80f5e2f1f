//! Groups (S2, S3): opening and joining (with `Idempotency-Key`), the public record, live events, staff draws.

use crate::api::campaigns::campaign_id;
use crate::api::payer;
use crate::extract::Path;
use crate::extract::{Auth, optional_json_bytes, parse_json};
use crate::problem::{ApiResult, Problem, ProblemBody};
use crate::{AppState, times};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio_stream::wrappers::BroadcastStream;
use tuangou_app::{
    BusMessage, Caller, GroupView, IdempotencyClaim, JoinAnswer, JoinInput, JoinTarget, Joined, MemberRow,
    idempotency_claim,
};
use tuangou_domain::draw::ALGORITHM;
use tuangou_domain::ids::GroupId;
use tuangou_domain::time::Millis;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema, Default)]
pub struct JoinBody {
    /// 1–64 characters, kept verbatim; absent or empty: the server picks 32 random hex characters.
    #[serde(default)]
    #[schema(max_length = 64)]
    client_seed: Option<String>,
    /// The ticket of the member whose share link brought the caller.
    #[serde(default)]
    invited_by: Option<String>,
    /// How to pay: `wallet` (the default: 402 when it does not cover the price), or a provider this service offers
    /// (`sandbox`, `wechatpay`, `alipay`): then the answer is 202 with a pending seat and its payment.
    #[serde(default)]
    #[schema(pattern = "^(wallet|sandbox|wechatpay|alipay)$")]
    pay_with: Option<String>,
    /// With `pay_with` `wechatpay` only: the payer's WeChat `openid` (under the service's app id), so that a join
    /// from inside WeChat gets a JSAPI order (`client.type` `jsapi`, parameters for `WeixinJSBridge`); elsewhere a
    /// mobile browser gets H5 (`client.url`) and anything else Native (`client.code_url`, a QR code's text).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,128}$", max_length = 128)]
    payer_openid: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberBody {
    seq: i64,
    ticket: String,
    client_seed: String,
    /// Present (true) while the seat waits for its payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pending: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct DrawBody {
    algorithm: String,
    /// Revealed at the draw; its SHA-256 is the group's `seed_commitment`.
    server_seed: String,
    participants_digest: String,
    /// Winning seqs, ascending.
    winners: Vec<i64>,
    drawn_at: String,
}

/// The public record of a group: everything anyone needs to verify its draw (FAIRNESS.md).
#[derive(Serialize, ToSchema)]
pub struct GroupBody {
    id: String,
    campaign_id: String,
    /// `open`, `full`, `drawn` or `expired`.
    status: String,
    group_size: i64,
    winners_per_group: i64,
    expires_at: String,
    seed_commitment: String,
    members: Vec<MemberBody>,
    draw: Option<DrawBody>,
}

impl From<&GroupView> for GroupBody {
    fn from(view: &GroupView) -> Self {
        let g = &view.group;
        let draw = match (g.status.as_str(), g.drawn_at, &g.participants_digest) {
            ("drawn", Some(drawn_at), Some(digest)) => Some(DrawBody {
                algorithm: ALGORITHM.into(),
                server_seed: g.server_seed.clone(),
                participants_digest: digest.clone(),
                winners: g.winner_seqs(),
                drawn_at: times::format(Millis(drawn_at)),
            }),
            _ => None,
        };
        Self {
            id: g.id.clone(),
            campaign_id: g.campaign_id.clone(),
            status: g.status.clone(),
            group_size: g.group_size,
            winners_per_group: g.winners_per_group,
            expires_at: times::format(Millis(g.expires_at)),
            seed_commitment: g.seed_commitment.clone(),
            members: view
                .members
                .iter()
                .map(|m| MemberBody {
                    seq: m.seq,
                    ticket: m.ticket.clone(),
                    client_seed: m.client_seed.clone(),
                    pending: (m.status == "pending").then_some(true),
                })
                .collect(),
            draw,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MembershipBody {
    id: String,
    group_id: String,
    seq: i64,
    ticket: String,
    /// `pending` (seat held until its payment), `waiting`, `won`, `lost` (not drawn: refunded and rewarded),
    /// `expired` (refunded) or `unpaid` (the payment window ended: the seat was released).
    status: String,
}

impl From<&MemberRow> for MembershipBody {
    fn from(m: &MemberRow) -> Self {
        Self {
            id: m.id.clone(),
            group_id: m.group_id.clone(),
            seq: m.seq,
            ticket: m.ticket.clone(),
            status: m.status.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct JoinedBody {
    group: GroupBody,
    membership: MembershipBody,
    /// The payment a pending seat waits for (202 answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    payment: Option<crate::api::payments::PaymentBody>,
}

fn group_id(id: &str) -> Result<GroupId, Problem> {
    GroupId::parse(id).ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "unknown_group", "no such group"))
}

/// `Idempotency-Key`: 1–200 visible ASCII characters.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().ok().filter(|k| (1..=200).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(|k| Some(k.to_owned())).ok_or_else(|| {
        Problem::invalid("Idempotency-Key", "invalid_field", "must be 1 to 200 visible ASCII characters")
    })
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let content_type = if status.is_success() { "application/json" } else { "application/problem+json" };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Runs a join and answers it; with an `Idempotency-Key`, stores the first answer and replays it.
async fn join(state: AppState, caller: Caller, target: JoinTarget, request: Request) -> ApiResult<Response> {
    let endpoint = format!("{} {}", request.method(), request.uri().path());
    let key = idempotency_key(request.headers())?;
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip());
    let headers = request.headers().clone();
    let bytes = optional_json_bytes(request).await?.unwrap_or_default();
    let body: JoinBody = if bytes.is_empty() { JoinBody::default() } else { parse_json(&bytes)? };
    let claim: Option<IdempotencyClaim> = key.map(|k| idempotency_claim(&caller, &endpoint, &k, &bytes));
    if let Some(pay_with) = body.pay_with.as_deref()
        && !["wallet", "sandbox", "wechatpay", "alipay"].contains(&pay_with)
    {
        return Err(Problem::invalid("pay_with", "invalid_field", "must be wallet, sandbox, wechatpay or alipay"));
    }
    payer::check_openid(body.payer_openid.as_deref(), body.pay_with.as_deref())?;
    let input = JoinInput {
        client_seed: body.client_seed,
        invited_by: body.invited_by,
        pay_with: body.pay_with,
        payer: payer::payer_hints(&headers, peer, body.payer_openid),
    };
    let (status, body, fresh) = match state.app.join(&caller, target, input, claim.clone()).await {
        Ok(JoinAnswer::Fresh(joined)) => (joined_status(&joined), render(&joined), true),
        Ok(JoinAnswer::Again(joined)) => (joined_status(&joined), render(&joined), false),
        Ok(JoinAnswer::Stored { status, body }) => {
            return Ok(json_response(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body));
        }
        Err(error) => {
            let problem = Problem::from(error);
            if problem.status().is_server_error() {
                // A 5xx (a fault, or 503 overloaded) is never stored: a retry runs again, not told of it forever.
                return Err(problem);
            }
            let status = problem.status();
            (status, problem.body_json(), true)
        }
    };
    if let (Some(claim), true) = (&claim, fresh)
        && let Err(error) = state.app.remember_answer(claim, status.as_u16(), &body).await
    {
        tracing::warn!(%error, "could not store an idempotent answer; a retry re-renders it");
    }
    Ok(json_response(status, body))
}

/// 201 for a seat paid from the wallet, 202 for a seat that waits for its payment.
fn joined_status(joined: &Joined) -> StatusCode {
    if joined.membership.status == "pending" { StatusCode::ACCEPTED } else { StatusCode::CREATED }
}

fn render(joined: &Joined) -> String {
    let body = JoinedBody {
        group: (&joined.group).into(),
        membership: (&joined.membership).into(),
        payment: joined.payment.as_ref().map(Into::into),
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// Open a new group of the campaign and join it first.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/groups", tag = "groups", operation_id = "open_group",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64), ("Idempotency-Key" = Option<String>, Header, description = "the same key answers the first answer again", pattern = r"^[!-~]{1,200}$", max_length = 200)),
    request_body = Option<JoinBody>,
    responses((status = 201, body = JoinedBody), (status = 202, body = JoinedBody, description = "the seat waits for its payment"), (status = 400, body = ProblemBody), (status = 402, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody), (status = 409, body = ProblemBody),
        (status = 422, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn open(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let campaign = campaign_id(&id)?;
    join(state, caller, JoinTarget::NewGroup(campaign), request).await
}

/// Join the open group closest to full (among those the caller is not in), else open one.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/join", tag = "groups", operation_id = "join_campaign",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64), ("Idempotency-Key" = Option<String>, Header, description = "the same key answers the first answer again", pattern = r"^[!-~]{1,200}$", max_length = 200)),
    request_body = Option<JoinBody>,
    responses((status = 201, body = JoinedBody), (status = 202, body = JoinedBody, description = "the seat waits for its payment"), (status = 400, body = ProblemBody), (status = 402, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody), (status = 409, body = ProblemBody),
        (status = 422, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn join_campaign(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let campaign = campaign_id(&id)?;
    join(state, caller, JoinTarget::Campaign(campaign), request).await
}

/// Join a given group (a share link).
#[utoipa::path(post, path = "/api/v1/groups/{id}/members", tag = "groups", operation_id = "join_group",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64), ("Idempotency-Key" = Option<String>, Header, description = "the same key answers the first answer again", pattern = r"^[!-~]{1,200}$", max_length = 200)),
    request_body = Option<JoinBody>,
    responses((status = 201, body = JoinedBody), (status = 202, body = JoinedBody, description = "the seat waits for its payment"), (status = 400, body = ProblemBody), (status = 402, body = ProblemBody),
        (status = 403, body = ProblemBody), (status = 404, body = ProblemBody), (status = 409, body = ProblemBody),
        (status = 422, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn join_group(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let group = group_id(&id)?;
    join(state, caller, JoinTarget::Group(group), request).await
}

/// A group's public record.
#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "groups", operation_id = "get_group", params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, body = GroupBody), (status = 404, body = ProblemBody)))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<GroupBody>> {
    let view = state.app.group(&group_id(&id)?).await?;
    Ok(axum::Json((&view).into()))
}

/// Staff draw a full `scheduled` group.
#[utoipa::path(post, path = "/api/v1/groups/{id}/draw", tag = "groups", operation_id = "draw_group", params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, body = GroupBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 409, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn draw(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<GroupBody>> {
    let view = state.app.draw_by_staff(&caller, &group_id(&id)?).await?;
    Ok(axum::Json((&view).into()))
}

/// Server-sent events of one group, or of every group of a campaign: `joined`, `full`, `drawn`, `expired`, and
/// `resync` when events may have been missed (refetch). A comment `connected` opens the stream; keep-alive comments
/// follow whenever it was quiet for `event_keep_alive` (15 seconds by default), so a watcher that is gone is found
/// by the next write and its stream ends.
fn event_stream<F>(state: &AppState, keep: F) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<F>>
where
    F: Fn(&tuangou_app::GroupEvent) -> bool + Send + 'static,
{
    let receiver = state.app.subscribe();
    let mut closing = state.closing.clone();
    let closed = async move {
        let _ = closing.wait_for(|closing| *closing).await;
    };
    let messages = BroadcastStream::new(receiver).filter_map(move |message| {
        let event = match message {
            Ok(BusMessage::Event(e)) if keep(&e) => Some(
                Event::default()
                    .event(e.kind.clone())
                    .json_data(&e)
                    .unwrap_or_else(|_| Event::default().event("resync")),
            ),
            Ok(BusMessage::Event(_)) => None,
            // A lagging watcher missed events: it refetches, and the stream goes on.
            Ok(BusMessage::Resync) | Err(_) => Some(Event::default().event("resync").data("{}")),
        };
        std::future::ready(event.map(Ok))
    });
    let opening = futures::stream::once(std::future::ready(Ok(Event::default().comment("connected"))));
    Sse::new(opening.chain(messages).take_until(Box::pin(closed)))
        .keep_alive(KeepAlive::new().interval(state.http.event_keep_alive))
}

/// Live events of a group.
#[utoipa::path(get, path = "/api/v1/groups/{id}/events", tag = "groups", operation_id = "group_events", params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, content_type = "text/event-stream", description = "joined, full, drawn, expired, resync"),
        (status = 404, body = ProblemBody)))]
pub async fn group_events(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    let view = state.app.group(&group_id(&id)?).await?;
    let id = view.group.id;
    Ok(event_stream(&state, move |e| e.group_id == id))
}

/// Live events of one of the caller's vouchers: `redeemed`, `undone` (and `resync`: refetch), so the voucher's page
/// shows its redemption as staff make it. The owner's only (404 for anyone else's, as the voucher itself).
#[utoipa::path(get, path = "/api/v1/me/vouchers/{id}/events", tag = "vouchers", operation_id = "voucher_events",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, content_type = "text/event-stream", description = "redeemed, undone, resync"),
        (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)),
    security(("bearer" = [])))]
pub async fn voucher_events(
    State(state): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let view = state.app.my_voucher(&caller, &crate::api::vouchers::voucher_id(&id)?).await?;
    let id = Some(view.voucher.id);
    Ok(event_stream(&state, move |e| e.voucher_id == id))
}

/// Live events of every group of a campaign.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/events", tag = "groups", operation_id = "campaign_events",
    params(("id" = String, Path, description = "an id as the API gave it", pattern = r"^[A-Za-z0-9_-]{1,64}$", max_length = 64)),
    responses((status = 200, content_type = "text/event-stream", description = "joined, full, drawn, expired, resync"),
        (status = 404, body = ProblemBody)))]
pub async fn campaign_events(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    let campaign = state.app.campaign(None, &campaign_id(&id)?).await?;
    let id = campaign.campaign.id;
    Ok(event_stream(&state, move |e| e.campaign_id == id))
}
