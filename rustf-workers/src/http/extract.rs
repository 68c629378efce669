//! Extractors whose rejections are `ErrorBody` JSON, like every other error of the router.
//! axum's own extractors answer a bad request with plain text.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::handlers::respond;
use super::RouterBuilder;

/// axum's `Path`. A parameter that cannot be read (`GET /runs/%FF`: not UTF-8) is `400`
/// `invalid_path`.
pub(super) struct Path<T>(pub(super) T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(err)) => Err(respond(
                StatusCode::BAD_REQUEST,
                "invalid_path",
                format!(
                    "the path `{}` is not valid: {}",
                    parts.uri.path(),
                    err.kind()
                ),
            )),
            // A route without the parameter its handler reads: a bug here, not the client's.
            Err(rejection) => Err(respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                rejection.body_text(),
            )),
        }
    }
}

/// The request body, at most [`RouterBuilder::body_limit`] bytes. A longer one is `413`
/// `body_too_large`; one that breaks off is `400` `invalid_body`.
pub(super) struct Body(pub(super) Bytes);

impl FromRequest<Arc<RouterBuilder>> for Body {
    type Rejection = Response;

    async fn from_request(request: Request, http: &Arc<RouterBuilder>) -> Result<Self, Response> {
        match Bytes::from_request(request, http).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))) => {
                Err(respond(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!(
                        "the request body is over the limit of {} bytes; \
                         `RouterBuilder::body_limit` sets it",
                        http.body_limit
                    ),
                ))
            }
            Err(rejection) => Err(respond(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("the request body could not be read: {rejection}"),
            )),
        }
    }
}

/// axum's `Query`. A query string that does not read as the route's parameters is `400`
/// `invalid_query`.
pub(super) struct Query<T>(pub(super) T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(err)) => Err(respond(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("the query string is not valid: {}", err.body_text()),
            )),
            Err(rejection) => Err(respond(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                rejection.body_text(),
            )),
        }
    }
}
