//! Checks and headers every response gets, API and UI alike.
//!
//! - **DNS rebinding**: a page on `evil.example` that re-points its name at
//!   127.0.0.1 reaches this port with `Host: evil.example`. Only a Host
//!   that is `localhost` or an IP literal is served (an IP literal cannot
//!   be rebound: no name is involved), as Syncthing does.
//! - **Cross-origin requests**: a browser sends `Origin` on cross-origin
//!   fetches and on every POST; one that is not this very origin is
//!   refused, before any token is looked at. The API takes its token only
//!   from the `Authorization` header, never from a cookie, so a forged
//!   cross-site form carries no credential anyway (CSRF).
//! - **Content-Security-Policy**: scripts, styles and connections from this
//!   origin only, no inline script, no frames, no plugins, no `<base>`:
//!   even text that slipped into the page as markup could not run.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub async fn guard(req: Request, next: Next) -> Response {
    if let Err(e) = check(req.headers()) {
        return with_headers(e.into_response());
    }
    with_headers(next.run(req).await)
}

fn check(h: &HeaderMap) -> Result<(), ApiError> {
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::forbidden("a Host header is required"))?;
    if !host_allowed(host) {
        return Err(ApiError::forbidden(format!(
            "Host `{}` is not this node: use http://127.0.0.1:PORT or http://localhost:PORT",
            host.escape_debug()
        )));
    }
    if let Some(origin) = h.get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(|o| o.eq_ignore_ascii_case(host));
        if !ok {
            return Err(ApiError::forbidden(format!(
                "cross-origin request from {} refused",
                String::from_utf8_lossy(origin.as_bytes()).escape_debug()
            )));
        }
    }
    Ok(())
}

/// `localhost` or an IP literal, with an optional port.
pub fn host_allowed(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || valid_port(port) => {
                return ip.parse::<std::net::Ipv6Addr>().is_ok();
            }
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if valid_port(&format!(":{port}")) => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

fn valid_port(p: &str) -> bool {
    p.strip_prefix(':')
        .is_some_and(|d| !d.is_empty() && d.len() <= 5 && d.bytes().all(|b| b.is_ascii_digit()))
}

fn with_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CACHE_CONTROL, "no-store");
    h.insert(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn only_loopback_names_and_ip_literals_pass() {
        for ok in [
            "localhost",
            "LOCALHOST:8384",
            "127.0.0.1",
            "127.0.0.1:8384",
            "[::1]",
            "[::1]:8384",
            "192.168.1.5:80",
        ] {
            assert!(host_allowed(ok), "{ok} refused");
        }
        for bad in [
            "evil.example",
            "evil.example:8384",
            "localhost.evil.example",
            "127.0.0.1.nip.io:8384",
            "[::1",
            "[evil]:80",
            "127.0.0.1:",
            "127.0.0.1:80:80",
            "localhost:http",
            "",
        ] {
            assert!(!host_allowed(bad), "{bad} passed");
        }
    }
}
