//! Accounts and sessions: sign up, sign in and out, who is calling, the operator's first account, a customer's own
//! history, and closing an account.

use crate::admission::Admitted;
use crate::caches::CachedSession;
use crate::{App, AppError, AppResult, in_flight, passwords};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use tuangou_domain::ids::{MerchantId, UserId};
use tuangou_domain::phone::UserPhone;
use tuangou_domain::text;
use tuangou_domain::time::Millis;
use tuangou_store::{MerchantRole, NewUser, ShopRole, Stale, StoreError, UserRow};

/// A sign-up, parsed.
pub struct NewAccount {
    pub phone: UserPhone,
    pub password: String,
    pub name: String,
}

impl NewAccount {
    pub fn parse(phone: &str, password: &str, name: &str) -> AppResult<Self> {
        Ok(Self {
            phone: UserPhone::parse("phone", phone)?,
            password: text::password("password", password)?,
            name: text::person_name("name", name)?,
        })
    }
}

/// Who is making a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserId,
    pub is_operator: bool,
}

impl Caller {
    fn from_row(row: &UserRow) -> Self {
        Self { user: row.user_id(), is_operator: row.is_operator != 0 }
    }

    pub(crate) fn require_operator(&self) -> AppResult<()> {
        if self.is_operator {
            Ok(())
        } else {
            Err(AppError::Forbidden("operator_only", "only an operator may do this"))
        }
    }
}

/// A fresh session: the bearer token (shown once, never stored) and who it belongs to.
pub struct SignedIn {
    pub token: String,
    pub user: UserRow,
    pub roles: Vec<(MerchantId, MerchantRole)>,
    pub expires_at: Millis,
}

/// The SHA-256 of a token, as sessions are stored: a database dump holds no usable token.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The CSRF token that goes with a session token: cookie-authenticated writes must echo it in `X-CSRF-Token`.
/// Derived rather than stored, so it needs no extra state; it reveals nothing about the session token.
pub fn csrf_token_for(session_token: &str) -> String {
    hex::encode(Sha256::digest(format!("tuangou-csrf|{session_token}").as_bytes()))
}

fn random_token() -> AppResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AppError::Internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

impl App {
    /// Signs a customer up from `client`. 409 `phone_taken` when the phone is registered; 429 `throttled` past the
    /// address's sign-ups in the window (every attempt counts, taken phones too) or its attempts at once; 503
    /// `overloaded` when password hashing is saturated.
    pub async fn sign_up(&self, account: NewAccount, client: IpAddr) -> AppResult<UserRow> {
        let Admitted { attempt, claims } = self.admit_sign_up(client).await?;
        let turn = attempt.turn().await;
        let password_hash = match self.hashing.hash(account.password, self.settings.password_cost, turn).await {
            Ok(hash) => hash,
            Err(error) => {
                self.give_back(claims).await;
                return Err(error);
            }
        };
        self.create_user(account.phone, account.name, password_hash).await
    }

    /// Signs a customer up without a client to throttle (the demo's seeding).
    pub async fn register(&self, account: NewAccount) -> AppResult<UserRow> {
        let password_hash = self.hashing.hash(account.password, self.settings.password_cost, ()).await?;
        self.create_user(account.phone, account.name, password_hash).await
    }

    async fn create_user(&self, phone: UserPhone, name: String, password_hash: String) -> AppResult<UserRow> {
        let user = NewUser { phone: phone.as_str().to_owned(), name, password_hash, is_operator: false };
        Ok(self.store.create_user(user, self.clock.now()).await?)
    }

    /// Checks a phone and password from `client` and opens a session. 401 `bad_credentials`; 429 `throttled`
    /// while failures from this address (at this phone, or at all) are over their limits (see `throttles`);
    /// 503 `overloaded` when password hashing is saturated.
    pub async fn sign_in(&self, phone: &str, password: &str, client: IpAddr) -> AppResult<SignedIn> {
        // Any malformed phone is simply a wrong credential: the answer must not tell which part was wrong.
        let phone = UserPhone::parse("phone", phone).ok();
        let Admitted { attempt, claims } = self.admit_sign_in(phone.as_ref(), client).await?;
        let user = match self.check_password(phone.as_ref(), password, attempt).await {
            Ok(Some(user)) => user,
            Ok(None) => return Err(AppError::BadCredentials),
            Err(error) => {
                self.give_back(claims).await;
                return Err(error);
            }
        };
        let token = random_token()?;
        let now = self.clock.now();
        let expires_at = now.plus_millis(self.settings.session_ttl_hours.saturating_mul(Millis::HOUR));
        self.store.create_session_releasing(&token_hash(&token), &user.user_id(), now, expires_at, claims).await?;
        let roles = self.store.roles_of(&user.user_id()).await?;
        Ok(SignedIn { token, user, roles, expires_at })
    }

    /// The account with this phone if `password` is its password. An unknown phone is checked against a decoy
    /// hash, so that it takes as long as a wrong password.
    async fn check_password(
        &self,
        phone: Option<&UserPhone>,
        password: &str,
        attempt: in_flight::Attempt,
    ) -> AppResult<Option<UserRow>> {
        let user = match phone {
            Some(phone) => self.store.user_by_phone(phone.as_str()).await?,
            None => None,
        };
        let stored = user.as_ref().map_or(passwords::DECOY_HASH.to_owned(), |u| u.password_hash.clone());
        let matches = self.hashing.verify(password.to_owned(), stored, attempt.turn().await).await?;
        Ok(user.filter(|_| matches))
    }

    pub async fn sign_out(&self, token: &str) -> AppResult<()> {
        let hash = token_hash(token);
        self.store.delete_session(&hash).await?;
        self.caches.forget(&Stale::Session(hash));
        Ok(())
    }

    /// The caller behind a session token, if the session is valid: from this instance's cache while it holds
    /// the session (see `caches.rs`), else from the database.
    pub async fn authenticate(&self, token: &str) -> AppResult<Option<Caller>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let (hash, now) = (token_hash(token), self.clock.now());
        let sessions = &self.caches.sessions;
        let trusted = self.caches.trusted();
        if trusted && let Some(session) = sessions.get(&hash).filter(|s| s.expires_at > now) {
            return Ok(Some(session.caller));
        }
        let epoch = sessions.epoch();
        let Some((user, expires_at)) = self.store.session_of(&hash, now).await? else { return Ok(None) };
        let caller = Caller::from_row(&user);
        if trusted {
            sessions.fill(epoch, hash, CachedSession { caller: caller.clone(), expires_at });
        }
        Ok(Some(caller))
    }

    /// The merchants `user` owns or works at: from this instance's cache while it holds them, else from the
    /// database.
    pub(crate) async fn works_at(&self, user: &UserId) -> AppResult<Vec<MerchantId>> {
        let roles = &self.caches.roles;
        let trusted = self.caches.trusted();
        if trusted && let Some(merchants) = roles.get(&user.to_string()) {
            return Ok(merchants);
        }
        let epoch = roles.epoch();
        let merchants: Vec<MerchantId> =
            self.store.roles_of(user).await?.into_iter().map(|(merchant, _)| merchant).collect();
        if trusted {
            roles.fill(epoch, user.to_string(), merchants.clone());
        }
        Ok(merchants)
    }

    /// The caller's account and merchant roles (`GET /me`).
    pub async fn me(&self, caller: &Caller) -> AppResult<(UserRow, Vec<(MerchantId, MerchantRole)>)> {
        let user = self.store.user(&caller.user).await?.ok_or(AppError::NotSignedIn)?;
        let roles = self.store.roles_of(&caller.user).await?;
        Ok((user, roles))
    }

    /// The caller and the stores they own or work at, by name: what a page's header shows.
    pub async fn me_with_shops(&self, caller: &Caller) -> AppResult<(UserRow, Vec<ShopRole>)> {
        let user = self.store.user(&caller.user).await?.ok_or(AppError::NotSignedIn)?;
        let shops = self.store.shops_of(&caller.user).await?;
        Ok((user, shops))
    }

    /// Creates the operator account, or makes an existing account an operator (idempotent for the same phone).
    pub async fn create_operator(&self, account: NewAccount) -> AppResult<UserRow> {
        let password_hash = self.hashing.hash(account.password, self.settings.password_cost, ()).await?;
        let user =
            NewUser { phone: account.phone.as_str().to_owned(), name: account.name, password_hash, is_operator: true };
        let row = self.store.ensure_operator(user, self.clock.now()).await?;
        self.caches.forget(&Stale::User(row.id.clone()));
        Ok(row)
    }

    /// The caller's record: what they joined, won, lost, were refunded and rewarded.
    pub async fn history(&self, caller: &Caller) -> AppResult<tuangou_store::History> {
        Ok(self.store.history(&caller.user).await?)
    }

    /// Closes the caller's account (see `Store::close_account`).
    pub async fn close_account(&self, caller: &Caller) -> AppResult<()> {
        match self.store.close_account(&caller.user, self.clock.now()).await {
            Err(StoreError::NotFound) => Err(AppError::NotSignedIn),
            other => {
                other?;
                self.caches.forget(&Stale::User(caller.user.to_string()));
                Ok(())
            }
        }
    }
}
