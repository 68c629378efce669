//! The dashboard: a web page over the router's JSON and event routes, from a few static
//! files compiled into the crate. Feature `dashboard`.
//!
//! Nothing is fetched at run time and every URL the page uses is relative, so it works
//! under whatever path the application nests the router at, and behind a proxy. The
//! page's only script is `app.js`: the Content-Security-Policy allows no inline script or
//! style, and no origin but the page's own.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::{RouterBuilder, CSRF_HEADER};
use crate::Error;

type Shared = State<Arc<RouterBuilder>>;

/// The page's policy: its own scripts, styles, images and connections, nothing inline,
/// no frames, no forms posted anywhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// One compiled-in file.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: &'static str,
}

macro_rules! asset {
    ($file:literal, $type:literal) => {{
        const BODY: &str = include_str!(concat!("dashboard/", $file));
        const TAG: [u8; 18] = etag(BODY.as_bytes());
        Asset {
            body: BODY,
            content_type: $type,
            // `etag` writes ASCII only.
            etag: match std::str::from_utf8(&TAG) {
                Ok(tag) => tag,
                Err(_) => "\"\"",
            },
        }
    }};
}

const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");
const SCRIPT: Asset = asset!("app.js", "text/javascript; charset=utf-8");
const STYLE: Asset = asset!("app.css", "text/css; charset=utf-8");
const ICON: Asset = asset!("icon.svg", "image/svg+xml");

/// A quoted 16-digit hex FNV-1a hash of `bytes`, at compile time: the file's `ETag`,
/// which changes whenever the file does, so browsers revalidate after an upgrade.
const fn etag(bytes: &[u8]) -> [u8; 18] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    let digits = b"0123456789abcdef";
    let mut tag = [b'"'; 18];
    let mut d = 0;
    while d < 16 {
        tag[1 + d] = digits[((hash >> (60 - 4 * d)) & 0xf) as usize];
        d += 1;
    }
    tag
}

/// Adds the dashboard's routes to `router`.
pub(super) fn routes(router: Router<Arc<RouterBuilder>>) -> Router<Arc<RouterBuilder>> {
    router
        .route("/ui", get(to_slash))
        .route(
            "/ui/",
            get(|headers: HeaderMap| async move { serve(&INDEX, &headers) }),
        )
        .route(
            "/ui/app.js",
            get(|headers: HeaderMap| async move { serve(&SCRIPT, &headers) }),
        )
        .route(
            "/ui/app.css",
            get(|headers: HeaderMap| async move { serve(&STYLE, &headers) }),
        )
        .route(
            "/ui/icon.svg",
            get(|headers: HeaderMap| async move { serve(&ICON, &headers) }),
        )
        .route("/ui/config", get(config))
}

/// `GET /ui` moves to `ui/`, relative to where the application mounted the router, so
/// that the page's relative URLs resolve inside it.
async fn to_slash() -> Response {
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, "ui/")]).into_response()
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.as_bytes() == asset.etag.as_bytes());
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        ),
        // Revalidated at each load (a `304` while unchanged): never a stale page after an
        // upgrade of the application.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, HeaderValue::from_static(asset.etag)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    if fresh {
        (StatusCode::NOT_MODIFIED, headers).into_response()
    } else {
        (headers, asset.body).into_response()
    }
}

/// `GET /ui/config`: what the page may offer.
async fn config(State(http): Shared) -> Response {
    let queue = !matches!(http.registry.job_counts().await, Err(Error::NoQueue));
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "allow_starting_runs": http.allow_start,
        "allow_cancelling_runs": http.allow_cancel,
        "allow_managing_jobs": http.allow_jobs,
        "queue": queue,
        "csrf_header": CSRF_HEADER,
    }))
    .into_response()
}
