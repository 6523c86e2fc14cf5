//! Destination clusters: the cluster ferry runs against (`https://kubernetes.default.svc`, or the
//! name `in-cluster`) and clusters registered as Secrets labelled
//! `argocd.argoproj.io/secret-type: cluster`, as Argo CD registers them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use ferry_cluster::ClusterClient;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde::Deserialize;

/// The server URL Argo CD uses for the cluster it runs in.
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
/// The name Argo CD gives the cluster it runs in.
pub const IN_CLUSTER_NAME: &str = "in-cluster";
/// The label that marks Secrets describing clusters and repositories.
pub const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";

/// Why a destination could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// No registered cluster matches.
    #[error(
        "no cluster {0} is known: register it as a Secret labelled argocd.argoproj.io/secret-type=cluster \
         in the ferry namespace, or use server https://kubernetes.default.svc"
    )]
    Unknown(String),
    /// The cluster Secret is malformed.
    #[error("cluster Secret {secret}: {message}")]
    BadSecret {
        /// The Secret's name.
        secret: String,
        /// What is wrong.
        message: String,
    },
    /// Listing the cluster Secrets failed.
    #[error("listing cluster Secrets: {0}")]
    List(#[source] kube::Error),
}

/// The `config` JSON of a cluster Secret.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClusterConfig {
    bearer_token: Option<String>,
    username: Option<String>,
    password: Option<String>,
    #[serde(default)]
    tls_client_config: TlsClientConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlsClientConfig {
    #[serde(default)]
    insecure: bool,
    ca_data: Option<String>,
    cert_data: Option<String>,
    key_data: Option<String>,
    server_name: Option<String>,
}

/// A destination resolved to its cluster: a client, the cluster's server URL and the name it
/// is known by (`in-cluster`, or the `name` of its cluster Secret). Project rules are checked
/// against this pair, never against what the Application happened to spell.
#[derive(Clone, Debug)]
pub struct ResolvedDestination {
    /// The client for the cluster.
    pub client: ClusterClient,
    /// The cluster's API server URL (without a trailing `/`).
    pub server: String,
    /// The cluster's name, if it has one.
    pub name: Option<String>,
}

/// Clients for destination clusters, built once per cluster and reused.
#[derive(Clone)]
pub struct Destinations {
    local: ClusterClient,
    namespace: String,
    cache: Arc<Mutex<HashMap<String, ResolvedDestination>>>,
}

impl std::fmt::Debug for Destinations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destinations")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Destinations {
    /// `local` is the cluster ferry runs against; cluster Secrets are read from `namespace`.
    pub fn new(local: ClusterClient, namespace: &str) -> Self {
        Destinations {
            local,
            namespace: namespace.to_string(),
            cache: Arc::default(),
        }
    }

    /// The cluster ferry itself runs against.
    pub fn local(&self) -> &ClusterClient {
        &self.local
    }

    /// The client for an Application's destination (`server` or `name`).
    pub async fn resolve(
        &self,
        server: Option<&str>,
        name: Option<&str>,
    ) -> Result<ClusterClient, DestinationError> {
        self.resolve_destination(server, name)
            .await
            .map(|d| d.client)
    }

    /// An Application's destination (`server` or `name`) resolved to its cluster: client,
    /// server URL and name.
    pub async fn resolve_destination(
        &self,
        server: Option<&str>,
        name: Option<&str>,
    ) -> Result<ResolvedDestination, DestinationError> {
        let server = server.filter(|s| !s.is_empty());
        let name = name.filter(|s| !s.is_empty());
        if server.map(|s| s.trim_end_matches('/')) == Some(IN_CLUSTER_SERVER)
            || (server.is_none() && name == Some(IN_CLUSTER_NAME))
        {
            return Ok(ResolvedDestination {
                client: self.local.clone(),
                server: IN_CLUSTER_SERVER.to_owned(),
                name: Some(IN_CLUSTER_NAME.to_owned()),
            });
        }
        let key = server
            .map(|s| format!("server:{}", s.trim_end_matches('/')))
            .or(name.map(|n| format!("name:{n}")));
        let Some(key) = key else {
            return Err(DestinationError::Unknown(
                "(no server or name given)".into(),
            ));
        };
        if let Some(c) = self.cache.lock().expect("destination cache lock").get(&key) {
            return Ok(c.clone());
        }
        let secrets: Api<Secret> = Api::namespaced(self.local.client().clone(), &self.namespace);
        let list = secrets
            .list(&ListParams::default().labels(&format!("{SECRET_TYPE_LABEL}=cluster")))
            .await
            .map_err(DestinationError::List)?;
        for secret in list.items {
            let field = |k: &str| {
                secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(k))
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    .or_else(|| secret.string_data.as_ref().and_then(|d| d.get(k).cloned()))
            };
            let secret_server = field("server").map(|s| s.trim_end_matches('/').to_string());
            let secret_name = field("name");
            let matches = match (server, name) {
                (Some(s), _) => secret_server.as_deref() == Some(s.trim_end_matches('/')),
                (None, Some(n)) => secret_name.as_deref() == Some(n),
                (None, None) => false,
            };
            if !matches {
                continue;
            }
            let secret_id = secret.metadata.name.clone().unwrap_or_default();
            let bad = |message: String| DestinationError::BadSecret {
                secret: secret_id.clone(),
                message,
            };
            let server_url = secret_server.ok_or_else(|| bad("has no `server`".into()))?;
            let config: ClusterConfig = match field("config") {
                Some(c) => serde_json::from_str(&c)
                    .map_err(|e| bad(format!("`config` is not valid JSON: {e}")))?,
                None => ClusterConfig::default(),
            };
            let client = build_client(&server_url, config).map_err(bad)?;
            let resolved = ResolvedDestination {
                client,
                server: server_url,
                name: secret_name.filter(|n| !n.is_empty()),
            };
            self.cache
                .lock()
                .expect("destination cache lock")
                .insert(key, resolved.clone());
            return Ok(resolved);
        }
        Err(DestinationError::Unknown(
            server.or(name).unwrap_or_default().to_string(),
        ))
    }
}

fn build_client(server: &str, config: ClusterConfig) -> Result<ClusterClient, String> {
    let url = server
        .parse()
        .map_err(|e| format!("`server` {server:?} is not a URL: {e}"))?;
    let mut kc = kube::Config::new(url);
    let b64 = |field: &str, v: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .map_err(|e| format!("`config.tlsClientConfig.{field}` is not base64: {e}"))
    };
    let tls = config.tls_client_config;
    kc.accept_invalid_certs = tls.insecure;
    kc.tls_server_name = tls.server_name;
    if let Some(ca) = tls.ca_data {
        kc.root_cert = Some(pem_certificates(&b64("caData", &ca)?)?);
    }
    if let (Some(cert), Some(key)) = (tls.cert_data, tls.key_data) {
        // Both are base64-encoded PEM, as in a kubeconfig's client-certificate-data.
        b64("certData", &cert)?;
        b64("keyData", &key)?;
        kc.auth_info.client_certificate_data = Some(cert);
        kc.auth_info.client_key_data = Some(key.into());
    }
    if let Some(token) = config.bearer_token {
        kc.auth_info.token = Some(token.into());
    } else if let (Some(user), Some(pass)) = (config.username, config.password) {
        kc.auth_info.username = Some(user);
        kc.auth_info.password = Some(pass.into());
    }
    let client = ferry_cluster::instrumented_client(kc)
        .map_err(|e| format!("building a client for {server}: {e}"))?;
    Ok(ClusterClient::named(client, server))
}

/// The DER certificates in a PEM bundle.
fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "`caData` is not PEM text".to_string())?;
    let mut out = Vec::new();
    let mut inside = false;
    let mut body = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            inside = true;
            body.clear();
        } else if line == "-----END CERTIFICATE-----" {
            inside = false;
            out.push(
                base64::engine::general_purpose::STANDARD
                    .decode(&body)
                    .map_err(|e| format!("`caData` holds a malformed certificate: {e}"))?,
            );
        } else if inside {
            body.push_str(line);
        }
    }
    if out.is_empty() {
        return Err("`caData` holds no PEM certificate".into());
    }
    Ok(out)
}
