//! The access log: one line per request, with every credential taken out. A bearer
//! token in `?token=` (WebSocket clients that cannot set headers) or a one-time
//! `?ticket=` would otherwise sit in log files for as long as they are kept; headers,
//! `Authorization` among them, are never logged. Query values are logged only for the
//! parameters known to hold none: a list of secrets to hide would miss `%74oken=`,
//! which the server decodes and accepts as `token=`.

use actix_web::dev::ServiceRequest;
use actix_web::middleware::Logger;

/// Query parameters whose values are logged: paging, filters and resumption, never a
/// credential nor what a user wrote (a search's `q`).
const LOGGED_PARAMETERS: &[&str] = &["since", "cursor", "limit", "status", "state", "k", "user", "older_than"];

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

/// The query with every value but those of `LOGGED_PARAMETERS` (named as the server
/// decodes them) replaced by `[redacted]`. A name is kept where it is a plain word;
/// anything else (a bare token sent as `?eyJ…`) is redacted whole.
pub fn redacted_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let decoded = form_urlencoded::parse(pair.as_bytes()).next().map(|(name, _)| name).unwrap_or_default();
            if LOGGED_PARAMETERS.contains(&decoded.as_ref()) {
                return pair.to_string();
            }
            let plain = |name: &str| {
                (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            };
            match pair.split_once('=') {
                Some((name, _)) if plain(name) => format!("{name}=[redacted]"),
                _ if pair.is_empty() => String::new(),
                _ => "[redacted]".to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::redacted_query;

    #[test]
    fn credentials_and_unknown_values_are_redacted_and_paging_kept() {
        assert_eq!(redacted_query("token=abc.def.ghi&since=4"), "token=[redacted]&since=4");
        assert_eq!(redacted_query("since=4&TICKET=xyz"), "since=4&TICKET=[redacted]");
        assert_eq!(redacted_query("status=failed&limit=50&cursor=01J"), "status=failed&limit=50&cursor=01J");
        assert_eq!(redacted_query("q=my+secret+plans&k=5"), "q=[redacted]&k=5");
        assert_eq!(redacted_query(""), "");
    }

    #[test]
    fn a_credential_under_an_encoded_name_is_redacted_too() {
        assert_eq!(redacted_query("%74oken=abc.def.ghi"), "[redacted]");
        assert_eq!(redacted_query("since=4&ti%63ket=xyz"), "since=4&[redacted]");
        // A logged parameter under an encoded name is still itself.
        assert_eq!(redacted_query("%73ince=4"), "%73ince=4");
    }

    #[test]
    fn an_item_that_is_no_plain_name_and_value_is_redacted_whole() {
        assert_eq!(redacted_query("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln&since=4"), "[redacted]&since=4");
        assert_eq!(redacted_query("a.b.c=1"), "[redacted]");
    }
}
