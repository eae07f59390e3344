//! The dashboard at `/admin`: pages for signed-in admins, a login page, and one POST
//! route per action. Every POST must carry the session's CSRF token (403 otherwise);
//! actions answer with a redirect back (303), so the browser's back button and
//! reloads stay harmless.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::Markup;

use super::session::{self, Session};
use super::{jobs, overview, pages};
use crate::auth::TokenKeys;
use crate::error::AppError;
use crate::job_state::JobState;
use crate::web::{get, post, serve, AppState};

type Form = Option<web::Form<HashMap<String, String>>>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(serve("", [get(show_overview)]))
        .service(serve("/", [get(show_overview)]))
        .service(serve("/login", [get(show_login), post(log_in)]))
        .service(serve("/logout", [post(log_out)]))
        .service(serve("/jobs", [get(show_jobs)]))
        .service(serve("/jobs/{job_id}", [get(show_job)]))
        .service(serve("/actions/retry-failed", [post(retry_failed)]))
        .service(serve("/actions/retry/{job_id}", [post(retry)]))
        .service(serve("/actions/cancel/{job_id}", [post(cancel)]))
        .service(serve("/actions/clean", [post(clean)]))
        .service(serve("/actions/pause", [post(pause)]))
        .service(serve("/actions/resume", [post(resume)]));
}

fn html(markup: Markup) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(markup.into_string())
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, to.to_string())).finish()
}

fn to_login() -> HttpResponse {
    redirect("/admin/login")
}

#[derive(serde::Deserialize)]
pub(crate) struct Flash {
    flash: Option<String>,
}

/// The dashboard: its overview page for a signed-in admin, otherwise a redirect to its
/// login page. Its other pages and forms are for a browser, not an API client.
#[utoipa::path(get, path = "/admin", tag = "admin", operation_id = "dashboard",
    responses(
        (status = 200, description = "The overview page", content_type = "text/html", body = String),
        (status = 303, description = "Not signed in: to /admin/login")))]
pub(crate) async fn show_overview(
    request: HttpRequest,
    state: web::Data<AppState>,
    flash: web::Query<Flash>,
) -> Result<HttpResponse, AppError> {
    let Some(session) = session::current(&request) else { return Ok(to_login()) };
    let overview = overview::gather(&state.queue).await?;
    let in_state =
        |job_state: JobState| jobs::JobSearch { state: Some(job_state.as_str().into()), ..Default::default() };
    let processing = jobs::search(&state, &in_state(JobState::Processing)).await?;
    let failed = jobs::search(&state, &in_state(JobState::Failed)).await?;
    Ok(html(pages::overview(&session.csrf, &overview, &processing.jobs, &failed.jobs, flash.flash.as_deref())))
}

async fn show_login(request: HttpRequest) -> HttpResponse {
    if session::current(&request).is_some() {
        return redirect("/admin");
    }
    html(pages::login(None))
}

async fn log_in(request: HttpRequest, keys: web::Data<TokenKeys>, form: Form) -> HttpResponse {
    let token = form.as_ref().and_then(|f| f.get("token")).map(|t| t.trim().to_string()).unwrap_or_default();
    match keys.verify(&token) {
        Ok(claims) if claims.role == crate::auth::Role::Admin => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/admin"))
            .cookie(session::cookie_for(&request, &token))
            .finish(),
        Ok(_) => HttpResponse::Forbidden()
            .content_type("text/html; charset=utf-8")
            .body(pages::login(Some("That token does not have the admin role.")).into_string()),
        Err(err) => HttpResponse::Unauthorized()
            .content_type("text/html; charset=utf-8")
            .body(pages::login(Some(&format!("That token was refused: {err}."))).into_string()),
    }
}

/// The signed-in admin, after the form's CSRF token is checked.
fn authorised(request: &HttpRequest, form: &Form) -> Result<Session, AppError> {
    let session =
        session::current(request).ok_or_else(|| AppError::Forbidden("sign in at /admin/login first".into()))?;
    session::check_csrf(&session, form.as_ref().and_then(|f| f.get("csrf")).map(String::as_str))?;
    Ok(session)
}

/// Where to go after an action: the form's `back` if it is a dashboard page, written
/// in printable ASCII (anything else could not be a `Location` header).
fn back(form: &Form, flash: &str) -> HttpResponse {
    let page = form
        .as_ref()
        .and_then(|f| f.get("back"))
        .filter(|b| b.starts_with("/admin") && !b.contains("//") && b.bytes().all(|c| c.is_ascii_graphic()))
        .map_or("/admin", String::as_str);
    let flash: String = flash
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    redirect(&format!("{page}?flash={flash}"))
}

async fn log_out(request: HttpRequest, form: Form) -> Result<HttpResponse, AppError> {
    authorised(&request, &form)?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin/login"))
        .cookie(session::expired_cookie(&request))
        .finish())
}

async fn show_jobs(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<jobs::JobSearch>,
) -> Result<HttpResponse, AppError> {
    let Some(session) = session::current(&request) else { return Ok(to_login()) };
    let page = jobs::search(&state, &query).await?;
    Ok(html(pages::jobs(&session.csrf, &query, &page)))
}

async fn show_job(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    flash: web::Query<Flash>,
) -> Result<HttpResponse, AppError> {
    let Some(session) = session::current(&request) else { return Ok(to_login()) };
    let story = jobs::story(&state, &path).await?;
    Ok(html(pages::job(&session.csrf, &story, flash.flash.as_deref())))
}

async fn retry(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, AppError> {
    authorised(&request, &form)?;
    let (document, _) = jobs::retry(&state, &path).await?;
    // The document now has a new job: a job page goes to that one.
    let form = form.map(|mut f| {
        if f.get("back").is_some_and(|b| b.starts_with("/admin/jobs/")) {
            f.insert("back".into(), format!("/admin/jobs/{}", document.job_id));
        }
        f
    });
    Ok(back(&form, &format!("Retrying {}", document.filename)))
}

async fn retry_failed(request: HttpRequest, state: web::Data<AppState>, form: Form) -> Result<HttpResponse, AppError> {
    authorised(&request, &form)?;
    let retried = jobs::retry_all_failed(&state).await?;
    Ok(back(&form, &format!("Retrying {retried} failed jobs")))
}

async fn cancel(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, AppError> {
    authorised(&request, &form)?;
    let document = jobs::cancel(&state, &path).await?;
    Ok(back(&form, &format!("{} is {}", document.filename, document.queue_status)))
}

async fn clean(request: HttpRequest, state: web::Data<AppState>, form: Form) -> Result<HttpResponse, AppError> {
    authorised(&request, &form)?;
    let fields = form.as_ref();
    let finished = fields.and_then(|f| f.get("state")).map(String::as_str);
    let age = jobs::parse_age(fields.and_then(|f| f.get("older_than")).map(String::as_str))?;
    let removed = jobs::clean(&state, finished, age).await?;
    let finished = finished.unwrap_or(JobState::Completed.as_str());
    Ok(back(&form, &format!("Removed {} {finished} jobs", removed.len())))
}

async fn pause(request: HttpRequest, state: web::Data<AppState>, form: Form) -> Result<HttpResponse, AppError> {
    authorised(&request, &form)?;
    state.queue.pause().await?;
    Ok(back(&form, "Claiming paused"))
}

async fn resume(request: HttpRequest, state: web::Data<AppState>, form: Form) -> Result<HttpResponse, AppError> {
    authorised(&request, &form)?;
    state.queue.resume().await?;
    Ok(back(&form, "Claiming resumed"))
}
