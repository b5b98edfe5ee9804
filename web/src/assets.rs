//! The browser UI: three files compiled into the binary, so the daemon
//! serves it with nothing to install and nothing fetched from elsewhere.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::api::App;

const INDEX: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");

pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(|| file(INDEX, "text/html; charset=utf-8")))
        .route(
            "/app.js",
            get(|| file(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route("/app.css", get(|| file(APP_CSS, "text/css; charset=utf-8")))
}

async fn file(body: &'static str, mime: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, mime)], body)
}
