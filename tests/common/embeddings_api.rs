//! A fake OpenAI-compatible embeddings API, served for a test on a free local port: the
//! one remote service the tests stand in for, spoken over real HTTP.

use actix_web::{web, App, HttpServer};

/// Serves the routes `routes` adds (its `/v1/embeddings` handler and that handler's
/// data) on a free local port; returns the base URL, ending in /v1.
pub fn serve(routes: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static) -> String {
    let server =
        HttpServer::new(move || App::new().configure(routes.clone())).workers(1).bind(("127.0.0.1", 0)).unwrap();
    let address = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    format!("http://{address}/v1")
}
