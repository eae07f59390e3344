//! Bearer tokens (JWT, HS256) and the extractors that guard routes: `AuthUser` for
//! any signed-in caller, `AdminUser` for `role = admin`; and one-time WebSocket
//! tickets, which let a browser open `/ws` without putting its long-lived token in a URL.
//! Every request a token authenticates also takes a turn of its user's pace (`pace`).

pub mod pace;

use std::future::{ready, Ready};
use std::time::Duration;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::AuthConfig;

use crate::error::AppError;
use crate::queue::Queue;
use pace::RequestPace;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("auth.jwt_secret is empty and auth.dev_mode is false: set DOCQUEUE_AUTH__JWT_SECRET")]
    MissingSecret,
    #[error("auth.jwt_secret could not be used: {0}")]
    BadSecret(String),
    #[error(
        "auth.jwt_secret is {0} bytes long; it must have at least {MIN_SECRET_BYTES} (make one with: openssl rand -hex 32)"
    )]
    ShortSecret(usize),
}

/// Signs and checks tokens with one HS256 secret.
#[derive(Clone)]
pub struct TokenKeys {
    /// Derived from the secret; keys the dashboard's CSRF tokens.
    csrf_key: Vec<u8>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// True when the secret was made for this process (development mode).
    pub generated: bool,
}

/// HS256 is as strong as its secret: RFC 7518 asks for a key at least as long as the
/// hash (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

impl TokenKeys {
    pub fn from_config(config: &AuthConfig) -> Result<TokenKeys, AuthSetupError> {
        if !config.jwt_secret.is_empty() && config.jwt_secret.len() < MIN_SECRET_BYTES {
            return Err(AuthSetupError::ShortSecret(config.jwt_secret.len()));
        }
        if !config.jwt_secret.is_empty() {
            return TokenKeys::from_secret(config.jwt_secret.as_bytes(), false);
        }
        if !config.dev_mode {
            return Err(AuthSetupError::MissingSecret);
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| AuthSetupError::BadSecret(e.to_string()))?;
        TokenKeys::from_secret(&secret, true)
    }

    fn from_secret(secret: &[u8], generated: bool) -> Result<TokenKeys, AuthSetupError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        // A token valid only from later (nbf) is refused until then.
        validation.validate_nbf = true;
        validation.leeway = 0;
        let bad = |e: jsonwebtoken::errors::Error| AuthSetupError::BadSecret(e.to_string());
        use sha2::Digest;
        let csrf_key =
            sha2::Sha256::new().chain_update(b"docqueue csrf key\0").chain_update(secret).finalize().to_vec();
        Ok(TokenKeys {
            csrf_key,
            encoding: EncodingKey::from_secret(secret).map_err(bad)?,
            decoding: DecodingKey::from_secret(secret).map_err(bad)?,
            validation,
            generated,
        })
    }

    pub fn csrf_key(&self) -> &[u8] {
        &self.csrf_key
    }

    pub fn issue(&self, user_id: &str, role: Role, ttl: Duration) -> Result<String, AppError> {
        let now = unix_now();
        let claims = Claims { sub: user_id.to_string(), role, exp: now + ttl.as_secs(), iat: now };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(AppError::internal)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        use jsonwebtoken::errors::ErrorKind;
        let claims =
            decode::<Claims>(token, &self.decoding, &self.validation).map(|data| data.claims).map_err(|e| {
                AppError::Unauthorized(
                    match e.kind() {
                        ErrorKind::ExpiredSignature => "token expired",
                        ErrorKind::InvalidSignature => "token signature is invalid",
                        _ => "token is malformed",
                    }
                    .into(),
                )
            })?;
        if claims.sub.trim().is_empty() {
            return Err(AppError::Unauthorized("token has no subject".into()));
        }
        Ok(claims)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The longest lifetime or age `parse_ttl` takes: 100 years.
pub const MAX_TTL_SECS: u64 = 100 * 365 * 86_400;

/// Parses `24h`, `30m`, `90s`, `7d` or a plain number of seconds, from 1 s to 100 years.
pub fn parse_ttl(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().ok()?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    let seconds = n.checked_mul(unit_secs)?;
    (1..=MAX_TTL_SECS).contains(&seconds).then(|| Duration::from_secs(seconds))
}

/// The signed-in caller.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub role: Role,
    /// When the token that authenticated the request expires (seconds since the epoch).
    pub expires_at: u64,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// The bearer token of a request: the `Authorization` header, or `?token=` where a
/// client cannot set headers (browsers opening a WebSocket).
pub fn bearer_token(req: &HttpRequest, allow_query: bool) -> Option<String> {
    if let Some(header) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let value = header.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string());
    }
    if allow_query {
        return web::Query::<TokenQuery>::from_query(req.query_string()).ok().and_then(|q| q.into_inner().token);
    }
    None
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

pub fn authenticate(req: &HttpRequest, allow_query: bool) -> Result<AuthUser, AppError> {
    let keys = req.app_data::<web::Data<TokenKeys>>().ok_or_else(|| AppError::internal("token keys not configured"))?;
    let token = bearer_token(req, allow_query).ok_or_else(|| AppError::Unauthorized("missing bearer token".into()))?;
    let claims = keys.verify(&token)?;
    if let Some(pace) = req.app_data::<web::Data<RequestPace>>() {
        if !pace.admit(&claims.sub) {
            return Err(AppError::Busy(pace.refusal()));
        }
    }
    Ok(AuthUser { id: claims.sub, role: claims.role, expires_at: claims.exp })
}

impl FromRequest for AuthUser {
    type Error = AppError;
    type Future = Ready<Result<AuthUser, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req, false))
    }
}

/// A caller with `role = admin`; anyone else signed in gets 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

impl FromRequest for AdminUser {
    type Error = AppError;
    type Future = Ready<Result<AdminUser, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req, false).and_then(|user| {
            if user.is_admin() {
                Ok(AdminUser(user))
            } else {
                Err(AppError::Forbidden("this route needs the admin role".into()))
            }
        }))
    }
}

/// How long a WebSocket ticket waits to be used: long enough to open a socket right
/// after asking for it, short enough that one read from a log is worthless.
pub const WS_TICKET_TTL: Duration = Duration::from_secs(30);
/// Tickets one user may be issued within `WS_TICKET_TTL`.
pub const MAX_WS_TICKETS_PER_TTL: u64 = 30;

/// What a ticket stands for: the caller of `POST /api/ws-ticket`, and when the token
/// they asked with expires (the session it opens ends then, as a token's would).
#[derive(Serialize, Deserialize)]
struct TicketHolder {
    sub: String,
    role: Role,
    exp: u64,
}

/// Issues a one-time ticket for `/ws?ticket=`: 32 random bytes, kept in Redis under
/// their SHA-256 for `WS_TICKET_TTL`.
pub async fn issue_ws_ticket(queue: &Queue, user: &AuthUser) -> Result<String, AppError> {
    // Each ticket is a key in Redis until it is used or expires: one user keeps a
    // bounded number of them. A page opens one socket at a time.
    if queue.count_ws_ticket_issued(&user.id, WS_TICKET_TTL).await? > MAX_WS_TICKETS_PER_TTL {
        return Err(AppError::Busy(format!(
            "more than {MAX_WS_TICKETS_PER_TTL} tickets in {} s; use the ones you have, or wait",
            WS_TICKET_TTL.as_secs()
        )));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(AppError::internal)?;
    let ticket = hex::encode(bytes);
    let holder = TicketHolder { sub: user.id.clone(), role: user.role, exp: user.expires_at };
    let holder = serde_json::to_string(&holder).map_err(AppError::internal)?;
    queue.keep_ws_ticket(&ticket_hash(&ticket), &holder, WS_TICKET_TTL).await?;
    Ok(ticket)
}

/// Takes a ticket (GETDEL: a second use finds nothing). None when it is unknown,
/// expired, already used, or the token it was issued for has expired since.
pub async fn redeem_ws_ticket(queue: &Queue, ticket: &str) -> Result<Option<AuthUser>, AppError> {
    let holder = queue.take_ws_ticket(&ticket_hash(ticket)).await?;
    let Some(holder) = holder else { return Ok(None) };
    let holder: TicketHolder = serde_json::from_str(&holder).map_err(AppError::internal)?;
    Ok((holder.exp > unix_now()).then_some(AuthUser { id: holder.sub, role: holder.role, expires_at: holder.exp }))
}

fn ticket_hash(ticket: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(ticket.as_bytes()))
}
