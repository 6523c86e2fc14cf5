//! The `plugin` generator: asks a service of the user's for the parameter sets.
//!
//! As Argo CD: the ConfigMap named by `configMapRef.name` gives `baseUrl`, `token` and optionally
//! `requestTimeout` (seconds). `token` is `$secret-name:key` (a Secret in the ApplicationSet's
//! namespace labelled `app.kubernetes.io/part-of: argocd`) or `$key` (a key of `argocd-secret`).
//! ferry POSTs `{"applicationSetName": ..., "input": {"parameters": ...}}` to
//! `{baseUrl}/api/v1/getparams.execute` with `Authorization: Bearer <token>` and expects
//! `{"output": {"parameters": [{...}, ...]}}`. Each parameter set also carries
//! `generator.input.parameters` and the generator's `values` (under `values`).
//!
//! Anything else that comes back (an error status, an HTML page, JSON without
//! `output.parameters`, an item that is not an object) is an error, never an empty list.

use std::time::Duration;

use serde_json::{Value, json};

use super::RemoteContext;
use super::remote::{self, ARGOCD_SECRET};
use crate::params::{GeneratorError, Params};

const GENERATOR: &str = "plugin";

/// How often Argo CD asks the plugin again when `requeueAfterSeconds` is not set.
pub const DEFAULT_REQUEUE: Duration = Duration::from_secs(30 * 60);

/// When the ApplicationSet should be generated again.
pub fn requeue_after(spec: &Value) -> Duration {
    remote::requeue_after_seconds(spec).unwrap_or(DEFAULT_REQUEUE)
}

/// Asks the plugin for its parameter sets.
pub async fn generate(
    spec: &Value,
    ctx: &RemoteContext<'_>,
) -> Result<Vec<Params>, GeneratorError> {
    let err = |m: String| GeneratorError::new(GENERATOR, m);
    let cm_name = spec
        .pointer("/configMapRef/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| err("configMapRef.name is required: name the plugin's ConfigMap".into()))?;
    let cm = remote::config_map(ctx, GENERATOR, cm_name).await?;
    let where_ = format!("ConfigMap {}/{cm_name}", ctx.namespace);
    let base_url = cm
        .get("baseUrl")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err(format!("{where_} has no baseUrl: add the plugin's URL")))?;
    let token_ref = cm
        .get("token")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            err(format!(
                "{where_} has no token: add token: \"$secret-name:key\" naming the plugin's token"
            ))
        })?;
    let token = resolve_token(ctx, &where_, token_ref).await?;
    let timeout = match cm.get("requestTimeout").map(|s| s.trim()) {
        None | Some("") => None,
        Some(t) => Some(Duration::from_secs(t.parse::<u64>().map_err(|_| {
            err(format!(
                "{where_}: requestTimeout {t:?} is not a whole number of seconds"
            ))
        })?)),
    };
    let parameters = spec
        .pointer("/input/parameters")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if !parameters.is_object() {
        return Err(err(format!(
            "input.parameters must be an object, not {}",
            remote::describe(&parameters)
        )));
    }
    let values = remote::values(GENERATOR, spec)?;
    let url = format!(
        "{}/api/v1/getparams.execute",
        base_url.trim_end_matches('/')
    );
    let body = json!({
        "applicationSetName": ctx.appset,
        "input": { "parameters": parameters },
    });
    let auth = format!("Bearer {token}");
    let headers = [("Authorization", auth.as_str())];
    let call = ctx.http.post_json(&url, &headers, &body);
    let answer = match timeout {
        Some(limit) => tokio::time::timeout(limit, call).await.map_err(|_| {
            err(format!(
                "POST {}: no whole answer within the ConfigMap's requestTimeout of {} s",
                ferry_http::shown_url(&url),
                limit.as_secs()
            ))
        })?,
        None => call.await,
    }
    .map_err(|e| remote::http_error(GENERATOR, e))?;
    let items = answer
        .body
        .pointer("/output/parameters")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            remote::wrong_shape(
                GENERATOR,
                "POST",
                &url,
                "{\"output\": {\"parameters\": [...]}}",
                &answer.body,
            )
        })?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(fields) = item else {
            return Err(remote::wrong_shape(
                GENERATOR,
                "POST",
                &url,
                &format!("an object as output.parameters[{i}]"),
                item,
            ));
        };
        let mut params = fields.clone();
        params.insert(
            "generator".into(),
            json!({ "input": { "parameters": parameters } }),
        );
        if let Some(values) = &values {
            params.insert("values".into(), Value::Object(values.clone()));
        }
        out.push(params);
    }
    Ok(out)
}

/// The token a ConfigMap's `token` names: `$secret:key`, `$key` (in `argocd-secret`), or the
/// text itself when it does not start with `$` (as Argo CD allows).
async fn resolve_token(
    ctx: &RemoteContext<'_>,
    where_: &str,
    token_ref: &str,
) -> Result<String, GeneratorError> {
    let Some(reference) = token_ref.strip_prefix('$') else {
        return Ok(token_ref.to_string());
    };
    let token = match reference.split_once(':') {
        Some((secret, key)) if !secret.is_empty() && !key.is_empty() => {
            remote::secret_key(ctx, GENERATOR, secret, key, true).await?
        }
        Some(_) => {
            return Err(GeneratorError::new(
                GENERATOR,
                format!("{where_}: token must be \"$secret-name:key\" or \"$key\""),
            ));
        }
        None => remote::secret_key(ctx, GENERATOR, ARGOCD_SECRET, reference, false).await?,
    };
    if token.is_empty() {
        return Err(GeneratorError::new(
            GENERATOR,
            format!("{where_}: the token it names is empty"),
        ));
    }
    Ok(token)
}
