//! A failure as the API returns it: an HTTP status and one JSON object,
//! `{"error": "…", "kind": "…"}`, the same shape `--json` prints on stderr.
//! `kind` is one of the CLI's error kinds, or `unauthorized` (401: no valid
//! token) or `forbidden` (403: the token does not reach that far, or the
//! request came from another origin or Host).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lattice_host::api::ErrorKind;
use lattice_host::api::access::AccessError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::FORBIDDEN,
            kind: "forbidden",
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            kind: "unauthorized",
            message: message.into(),
        }
    }

    /// A request body or query the API cannot use.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "not_found",
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "failed",
            message: message.into(),
        }
    }

    /// What the node answered, with the status its kind implies.
    pub fn node(kind: ErrorKind, message: String) -> ApiError {
        let (status, kind) = match kind {
            ErrorKind::Usage => (StatusCode::BAD_REQUEST, "usage"),
            ErrorKind::Invalid => (StatusCode::BAD_REQUEST, "invalid"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::Ambiguous => (StatusCode::CONFLICT, "ambiguous"),
            // A mesh rule said no (not the founder, invite used): the
            // request is understood and cannot be done, whoever asks.
            ErrorKind::Refused => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
            ErrorKind::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ErrorKind::Offline => (StatusCode::SERVICE_UNAVAILABLE, "offline"),
            ErrorKind::Integrity => (StatusCode::INTERNAL_SERVER_ERROR, "integrity"),
            ErrorKind::Failed => (StatusCode::INTERNAL_SERVER_ERROR, "failed"),
        };
        ApiError {
            status,
            kind,
            message,
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> ApiError {
        match e {
            AccessError::Unauthenticated(m) => ApiError::unauthorized(m),
            AccessError::Forbidden(m) => ApiError::forbidden(m),
            AccessError::Node(e) => ApiError::node(e.kind(), e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "kind": self.kind });
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lattice\""),
            );
        }
        r
    }
}
