//! The dashboard's login session: the admin's token kept in an `HttpOnly`,
//! `SameSite=Strict` cookie, and a CSRF token derived from it (HMAC with the server's
//! secret) that every form carries and every POST must echo.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{web, HttpRequest};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::auth::{AuthUser, TokenKeys};
use crate::error::AppError;

pub const COOKIE: &str = "docqueue_admin";

/// A signed-in admin on the dashboard.
pub struct Session {
    pub user: AuthUser,
    pub csrf: String,
}

/// The session cookie for `token`. Marked `Secure` when the dashboard is reached over
/// HTTPS (directly, or through a proxy that says so in `X-Forwarded-Proto` or
/// `Forwarded`): the browser then never sends the admin's token over plain HTTP. A
/// development server on plain HTTP still gets a cookie it can use.
pub fn cookie_for(request: &HttpRequest, token: &str) -> Cookie<'static> {
    let secure = request.connection_info().scheme().eq_ignore_ascii_case("https");
    Cookie::build(COOKIE, token.to_string())
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish()
}

pub fn expired_cookie(request: &HttpRequest) -> Cookie<'static> {
    let mut cookie = cookie_for(request, "");
    cookie.make_removal();
    cookie
}

pub fn csrf_token(keys: &TokenKeys, session_token: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(keys.csrf_key()).expect("HMAC takes any key length");
    mac.update(b"docqueue csrf\0");
    mac.update(session_token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The session of this request, if its cookie holds a valid admin token.
pub fn current(request: &HttpRequest) -> Option<Session> {
    let keys = request.app_data::<web::Data<TokenKeys>>()?;
    let token = request.cookie(COOKIE)?.value().to_string();
    let claims = keys.verify(&token).ok()?;
    let user = AuthUser { id: claims.sub, role: claims.role, expires_at: claims.exp };
    user.is_admin().then(|| Session { csrf: csrf_token(keys, &token), user })
}

/// Checks a form's CSRF field against the session's token.
pub fn check_csrf(session: &Session, submitted: Option<&str>) -> Result<(), AppError> {
    match submitted {
        Some(token) if constant_time_eq(token.as_bytes(), session.csrf.as_bytes()) => Ok(()),
        _ => Err(AppError::Forbidden("the form's CSRF token is missing or wrong; reload the page".into())),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
