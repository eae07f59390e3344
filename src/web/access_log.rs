//! The access log: one line per request, with every credential taken out. A bearer
//! token in `?token=` (WebSocket clients that cannot set headers) or a one-time
//! `?ticket=` would otherwise sit in log files for as long as they are kept; headers,
//! `Authorization` among them, are never logged.

use actix_web::dev::ServiceRequest;
use actix_web::middleware::Logger;

/// Query parameters whose values are credentials.
const SECRET_PARAMETERS: &[&str] = &["token", "ticket", "access_token"];

/// "GET /ws?token=[redacted] HTTP/1.1 101 3ms", not /healthz.
pub fn logger() -> Logger {
    Logger::new("%{request}xi %s %Dms").custom_request_replace("request", request_line).exclude("/healthz")
}

fn request_line(request: &ServiceRequest) -> String {
    let path = request.path();
    let query = redacted_query(request.query_string());
    let version = request.version();
    if query.is_empty() {
        format!("{} {path} {version:?}", request.method())
    } else {
        format!("{} {path}?{query} {version:?}", request.method())
    }
}

/// The query with the values of credential parameters replaced by `[redacted]`.
pub fn redacted_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_PARAMETERS.iter().any(|secret| name.eq_ignore_ascii_case(secret)) => {
                format!("{name}=[redacted]")
            }
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::redacted_query;

    #[test]
    fn credential_parameters_are_redacted_and_the_rest_kept() {
        assert_eq!(redacted_query("token=abc.def.ghi&since=4"), "token=[redacted]&since=4");
        assert_eq!(redacted_query("since=4&TICKET=xyz"), "since=4&TICKET=[redacted]");
        assert_eq!(redacted_query("q=token&k=5"), "q=token&k=5");
        assert_eq!(redacted_query(""), "");
    }
}
