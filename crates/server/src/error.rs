//! API errors: an HTTP status and a JSON body `{"code": "...", "message": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferry_controller::operations::OperationError;
use serde_json::json;

/// An error answered to an API client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code, e.g. `application_not_found`.
    pub code: &'static str,
    /// What went wrong and what to do about it, for people.
    pub message: String,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 404: no Application `name`.
    pub fn app_not_found(name: &str, namespace: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "application_not_found",
            format!("application {name} not found in namespace {namespace}"),
        )
    }

    /// 400: the request body could not be read.
    pub fn bad_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// An error from the Kubernetes API while `doing` something: 404 and 409 pass through,
    /// anything else is 502 (the API server is the upstream).
    pub fn kube(doing: &str, err: &kube::Error) -> Self {
        match err {
            kube::Error::Api(s) if s.code == 404 => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{doing}: {err}"),
            ),
            kube::Error::Api(s) if s.code == 409 => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{doing}: the object changed meanwhile; try again ({err})"),
            ),
            _ => Self::new(
                StatusCode::BAD_GATEWAY,
                "kubernetes_error",
                format!("{doing}: {err}"),
            ),
        }
    }
}

impl From<OperationError> for ApiError {
    /// 404 for a missing app or history entry, 409 for a pending operation (or one that could
    /// not be requested for the app kept changing), 504 for a wait that timed out, and
    /// [`ApiError::kube`]'s mapping (502 mostly) for the Kubernetes API's failures.
    fn from(e: OperationError) -> Self {
        let message = e.to_string();
        match e {
            OperationError::NotFound { name, namespace } => Self::app_not_found(&name, &namespace),
            OperationError::OperationPending { .. } | OperationError::Conflict { .. } => {
                Self::new(StatusCode::CONFLICT, "operation_pending", message)
            }
            OperationError::NoHistoryEntry { .. } => {
                Self::new(StatusCode::NOT_FOUND, "history_entry_not_found", message)
            }
            OperationError::Timeout { .. } => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
            }
            OperationError::Kube { name, doing, error } => {
                Self::kube(&format!("{doing} of application {name}"), &error)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "API request failed");
        }
        (
            self.status,
            Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}
