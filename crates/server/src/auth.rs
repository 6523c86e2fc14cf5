//! Authentication of API requests. Every route except the probes, `/metrics` and the webhook
//! goes through [`require_auth`]; a real authenticator (tokens, OIDC) will replace its body.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, ServerState};

/// Lets a request through when the server runs with `insecure_no_auth`; answers 401 otherwise
/// (no authentication method exists yet).
pub async fn require_auth(
    State(state): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    if state.config.insecure_no_auth {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this server has no authentication method configured yet; start it with \
         --insecure-no-auth for local use",
    )
    .into_response()
}
