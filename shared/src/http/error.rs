//! The one place where failures become HTTP responses: a status and a stable
//! `{"code", "detail"}` JSON body. 5xx bodies never carry internal detail.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

use crate::providers::Rejection;
use crate::storage::StoreError;

/// Response body type of both listeners.
pub type Body = Full<Bytes>;

/// An error that a handler returns to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Seconds for a `Retry-After` header on 503 answers.
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    detail: &'a str,
}

impl ApiError {
    /// Builds an error with a client-facing detail message.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 503 for a database or dependency outage; the provider retries later.
    pub fn unavailable() -> Self {
        ApiError {
            retry_after: Some(5),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service is temporarily unavailable; retry later",
            )
        }
    }

    /// 500 without internal detail; the cause is logged by the caller.
    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        )
    }

    /// 404 for an unknown route or row.
    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 400 naming the invalid parameter or field.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// Builds the JSON response.
    pub fn into_response(self) -> Response<Body> {
        let body = serde_json::to_vec(&ErrorBody {
            code: self.code,
            detail: &self.detail,
        })
        .unwrap_or_default();
        let mut response = json_bytes(self.status, body);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::VerifierUnavailable(_) => ApiError {
                code: rejection.code(),
                ..ApiError::unavailable()
            },
            Rejection::NoSecretConfigured => ApiError::new(
                StatusCode::NOT_FOUND,
                rejection.code(),
                rejection.to_string(),
            ),
            other => ApiError::new(StatusCode::BAD_REQUEST, other.code(), other.to_string()),
        }
    }
}

impl From<&StoreError> for ApiError {
    fn from(error: &StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => ApiError::unavailable(),
            StoreError::NotFound(id) => {
                ApiError::not_found(format!("webhook event {id} not found"))
            }
            StoreError::Conflict { .. } | StoreError::Locked(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", error.to_string())
            }
            StoreError::Invalid(detail) => ApiError::bad_request("invalid_value", detail.clone()),
            StoreError::Backend(_) => ApiError::internal(),
        }
    }
}

/// Serializes `value` as a JSON response with the given status.
pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(status, body),
        Err(error) => {
            tracing::error!(%error, "failed to serialize a JSON response");
            ApiError::internal().into_response()
        }
    }
}

fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
