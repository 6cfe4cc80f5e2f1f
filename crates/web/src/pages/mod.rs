//! The server-rendered pages (issue 5): customers, merchants, the counter, the live draw and the operator, in
//! Simplified Chinese by default and English by `Accept-Language` or the switch (`?lang=en`, kept in a cookie).
//!
//! Pages read through the same use cases as the API and render HTML with askama templates (`templates/`). They
//! never write: every action on a page is a small script calling the JSON API (`assets/app.js`), signed in by the
//! session cookie with the CSRF header. Without JavaScript every page still reads correctly.

mod account;
mod assets;
mod charts;
mod counter;
mod customer;
mod filters;
mod format;
mod i18n;
mod join;
mod looks;
mod merchant;
mod operator;
mod problem_words;
mod sandbox;

use crate::AppState;
use crate::extract::session_token;
use crate::problem::Problem;
use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
pub use i18n::Tr;
use tuangou_app::{AppError, Caller, MerchantRole, ShopRole};
use tuangou_domain::rules_card::Lang;

/// The cookie that keeps the reader's chosen language.
const LANG_COOKIE: &str = "tuangou_lang";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(customer::home))
        .route("/verify", get(customer::verify))
        .route("/m/{id}", get(customer::entrance))
        .route("/m/{id}/poster", get(merchant::poster))
        .route("/c/{id}", get(customer::campaign))
        .route("/g/{id}", get(customer::group))
        .route("/g/{id}/qr.svg", get(customer::group_qr))
        .route("/g/{id}/live", get(customer::live_draw))
        .route("/signin", get(account::sign_in))
        .route("/signup", get(account::sign_up))
        .route("/me", get(account::me))
        .route("/me/vouchers/{id}", get(account::voucher))
        .route("/shop/new", get(merchant::onboarding))
        .route("/shop/{id}", get(merchant::dashboard))
        .route("/shop/{id}/campaigns/new", get(merchant::new_campaign))
        .route("/shop/{id}/campaigns/preview", axum::routing::post(merchant::preview))
        .route("/shop/campaigns/{id}", get(merchant::campaign_dashboard))
        .route("/shop/campaigns/{id}/edit", get(merchant::edit_campaign))
        .route("/shop/{id}/redeem", get(counter::redeem))
        .route("/r/{merchant}/{code}", get(counter::scanned))
        .route("/operator", get(operator::operator))
        .route("/sandbox/pay/{id}", get(sandbox::pay))
        .route("/assets/{name}", get(assets::serve))
        .route("/favicon.ico", get(looks::favicon_ico))
        .route("/favicon.svg", get(looks::favicon_svg))
}

/// What every page knows about its reader: language, who is signed in, where the header links go.
pub struct Chrome {
    pub tr: Tr,
    pub caller: Option<Caller>,
    pub user_name: Option<String>,
    pub is_operator: bool,
    /// The merchants the reader owns or works for, with the role.
    pub shops: Vec<(String, MerchantRole)>,
    /// The same stores by name, for the header's store switcher (`store_switcher.html`).
    pub shop_names: Vec<ShopRole>,
    /// This page's address, for the language switch and for coming back after signing in.
    pub path: String,
    /// Set when the reader just switched language: the answer stores it in a cookie.
    switched_to: Option<Lang>,
}

impl Chrome {
    pub fn t(&self, key: &str) -> String {
        self.tr.t(key)
    }

    /// A message with one argument.
    pub fn ta1(&self, key: &str, name: &'static str, value: impl ToString) -> String {
        self.tr.ta(key, &[(name, value.to_string())])
    }

    /// A message with two arguments.
    pub fn ta2(
        &self,
        key: &str,
        name: &'static str,
        value: impl ToString,
        name2: &'static str,
        value2: impl ToString,
    ) -> String {
        self.tr.ta(key, &[(name, value.to_string()), (name2, value2.to_string())])
    }

    /// A state's name (`status-live`, `status-won`, …) in the reader's language.
    pub fn status_label(&self, status: &str) -> String {
        self.keyed("status", status)
    }

    /// The message `{family}-{value}` (a refund's `refund-cause-not_drawn`, say): a stored code in words.
    pub fn keyed(&self, family: &str, value: &str) -> String {
        self.tr.t(&format!("{family}-{value}"))
    }

    /// A membership's state (`pending` there is a seat waiting for its payment, not a store waiting for approval).
    pub fn seat_label(&self, status: &str) -> String {
        match status {
            "pending" => self.tr.t("status-seat-pending"),
            other => self.status_label(other),
        }
    }

    /// The link that shows this page in the other language.
    pub fn switch_url(&self) -> String {
        let (code, _) = self.tr.other();
        let separator = if self.path.contains('?') { '&' } else { '?' };
        format!("{}{separator}lang={code}", self.path)
    }

    pub fn asset(&self, name: &str) -> String {
        assets::url(name)
    }

    /// The script with the API's refusals in the reader's words (`problem_words`).
    pub fn problems_asset(&self) -> String {
        assets::url(problem_words::asset_name(self.tr))
    }

    /// The first shop the reader works the counter of (owners too).
    pub fn counter_shop(&self) -> Option<&str> {
        self.shops.first().map(|(id, _)| id.as_str())
    }

    /// Whether this page is one of the store's own (its dashboard, its counter): the switcher marks it.
    pub fn at_shop(&self, merchant: &str) -> bool {
        self.path.strip_prefix("/shop/").and_then(|rest| rest.split(['/', '?']).next()) == Some(merchant)
    }

    pub fn role_at(&self, merchant: &str) -> Option<MerchantRole> {
        self.shops.iter().find(|(id, _)| id == merchant).map(|(_, r)| *r)
    }

    /// A caller or a redirect to the sign-in page that comes back here.
    pub fn require_caller(&self) -> Result<&Caller, PageError> {
        self.caller.as_ref().ok_or_else(|| PageError::SignIn(self.path.clone()))
    }
}

fn query_lang(query: Option<&str>) -> Option<Lang> {
    form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == "lang").and_then(|(_, v)| match v.as_ref() {
        "en" => Some(Lang::En),
        "zh" | "zh-CN" => Some(Lang::Zh),
        _ => None,
    })
}

fn cookie_lang(parts: &Parts) -> Option<Lang> {
    parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(
        |pair| match pair.trim().split_once('=') {
            Some((LANG_COOKIE, "en")) => Some(Lang::En),
            Some((LANG_COOKIE, "zh")) => Some(Lang::Zh),
            _ => None,
        },
    )
}

/// The page address without its `lang` parameter.
fn path_without_lang(uri: &axum::http::Uri) -> String {
    let kept: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k != "lang")
                .map(|(k, v)| (k.into(), v.into()))
                .collect()
        })
        .unwrap_or_default();
    if kept.is_empty() {
        uri.path().to_owned()
    } else {
        let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(kept).finish();
        format!("{}?{query}", uri.path())
    }
}

impl FromRequestParts<AppState> for Chrome {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let uri = parts.extensions.get::<OriginalUri>().map_or_else(|| parts.uri.clone(), |u| u.0.clone());
        let switched_to = query_lang(uri.query());
        let lang = switched_to.or_else(|| cookie_lang(parts)).unwrap_or_else(|| {
            Lang::from_accept_language(parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()))
        });
        // A session that ended reads as signed out on a page (the API answers 401 instead).
        let caller = match session_token(&parts.headers) {
            Some(token) => state.app.authenticate(&token).await?,
            None => None,
        };
        let (user_name, shop_names) = match &caller {
            Some(c) => {
                let (user, shops) = state.app.me_with_shops(c).await?;
                (Some(user.name), shops)
            }
            None => (None, Vec::new()),
        };
        let shops = shop_names.iter().map(|s| (s.merchant_id.clone(), s.role)).collect();
        Ok(Chrome {
            tr: Tr(lang),
            is_operator: caller.as_ref().is_some_and(|c| c.is_operator),
            caller,
            user_name,
            shops,
            shop_names,
            path: path_without_lang(&uri),
            switched_to,
        })
    }
}

/// Why a page could not be shown.
pub enum PageError {
    /// Sign in first, then come back to this address.
    SignIn(String),
    App(AppError),
    NotFound,
}

impl From<AppError> for PageError {
    fn from(error: AppError) -> Self {
        PageError::App(error)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    page: &'a Chrome,
    status: u16,
    detail: String,
}

impl PageError {
    /// The error as a page in the reader's language (a bare one when even the chrome failed).
    pub fn render(self, page: Option<&Chrome>) -> Response {
        let problem = match self {
            PageError::SignIn(back) => return sign_in_redirect(&back),
            PageError::NotFound => Problem::not_found(),
            PageError::App(AppError::NotSignedIn) => return sign_in_redirect(page.map_or("/", |p| p.path.as_str())),
            PageError::App(error) => Problem::from(error),
        };
        let status = problem.status();
        let Some(page) = page else {
            return (status, Html(format!("<!doctype html><title>{status}</title><h1>{status}</h1>"))).into_response();
        };
        let detail = match status {
            StatusCode::NOT_FOUND => page.t("error-not-found"),
            StatusCode::FORBIDDEN => page.t("error-forbidden"),
            s if s.is_client_error() => problem_words::say(page.tr, problem.code(), problem.field()),
            _ => page.t("error-server"),
        };
        (status, html(&ErrorPage { page, status: status.as_u16(), detail })).into_response()
    }
}

fn sign_in_redirect(back: &str) -> Response {
    let query = form_urlencoded::Serializer::new(String::new()).append_pair("next", back).finish();
    Redirect::to(&format!("/signin?{query}")).into_response()
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.render(None)
    }
}

/// Renders a template into an HTML answer.
fn html(template: &impl Template) -> Response {
    match template.render() {
        Ok(body) => Html(body).into_response(),
        Err(error) => {
            tracing::error!(%error, "a page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, Html("<!doctype html><h1>500</h1>".to_owned())).into_response()
        }
    }
}

/// The page, with the language cookie when the reader just switched.
fn respond(page: &Chrome, template: &impl Template) -> Response {
    let mut response = html(template);
    if let Some(lang) = page.switched_to {
        let value = match lang {
            Lang::En => "en",
            Lang::Zh => "zh",
        };
        let cookie = format!("{LANG_COOKIE}={value}; Path=/; Max-Age=31536000; SameSite=Lax");
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page's one path parameter. A segment that does not even decode names nothing we have: the reader gets the
/// not-found page in their language (not the API's problem).
pub type PagePath = Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>;

fn path_id(path: PagePath) -> Result<String, PageError> {
    // No id of ours holds a NUL (nor could PostgreSQL's text): such a segment names nothing.
    path.map(|p| p.0).ok().filter(|id| !id.contains('\0')).ok_or(PageError::NotFound)
}

/// A page's query parameters; an unreadable query reads as no parameters (a page never answers 400).
fn query_params<T: serde::de::DeserializeOwned + Default>(raw: Option<String>) -> T {
    raw.and_then(|q| serde_urlencoded::from_str(&q).ok()).unwrap_or_default()
}

/// A page's answer, or its error shown as a page.
fn finish(page: &Chrome, result: Result<Response, PageError>) -> Response {
    result.unwrap_or_else(|error| error.render(Some(page)))
}
