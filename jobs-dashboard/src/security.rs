//! What every request passes: the host's authorization, security headers on every response, and
//! for state-changing requests read-only mode, a same-origin check and the CSRF token.

use crate::config::Config;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// No script or style but the dashboard's own files; no framing; forms post back here only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Authorizes, refuses cross-site or read-only writes, and adds the security headers.
pub(crate) async fn guard(State(config): State<Config>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if let Some(allow) = &config.authorize {
        if !allow(&parts) {
            return refuse(StatusCode::FORBIDDEN, "not allowed");
        }
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        if parts.method != Method::POST {
            return refuse(StatusCode::METHOD_NOT_ALLOWED, "only GET and POST");
        }
        if config.read_only {
            return refuse(StatusCode::FORBIDDEN, "this dashboard is read-only");
        }
        if let Err(why) = same_origin(&parts.headers) {
            return refuse(StatusCode::FORBIDDEN, why);
        }
    }
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    let mut r = (status, why).into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    r
}

/// A write must come from a page of this dashboard: the browser says so with
/// `Sec-Fetch-Site`, or (older browsers) with an `Origin` naming this host. A request with
/// neither (not from a browser) passes here and is held to the CSRF token alone.
fn same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            _ => Err("cross-site request refused"),
        };
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let origin = origin.to_str().unwrap_or("");
        let bare = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .unwrap_or("");
        return if !host.is_empty() && bare == host {
            Ok(())
        } else {
            Err("cross-origin request refused")
        };
    }
    Ok(())
}

/// Checks a form's CSRF token: the refusal to send when it is wrong.
pub(crate) fn check_token(config: &Config, token: &str) -> Option<Response> {
    // Compared in full whatever the mismatch, so timing tells nothing.
    let expected = config.csrf.as_bytes();
    let given = token.as_bytes();
    let mut diff = u8::from(expected.len() != given.len());
    for (a, b) in expected.iter().zip(given) {
        diff |= a ^ b;
    }
    (diff != 0).then(|| {
        refuse(
            StatusCode::FORBIDDEN,
            "missing or wrong form token: reload the page and try again",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_same_origin_writes_pass() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-site")])).is_err());
        let ok = [
            ("origin", "http://127.0.0.1:9292"),
            ("host", "127.0.0.1:9292"),
        ];
        assert!(same_origin(&headers(&ok)).is_ok());
        let bad = [
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:9292"),
        ];
        assert!(same_origin(&headers(&bad)).is_err());
        assert!(same_origin(&headers(&[])).is_ok());
    }
}
