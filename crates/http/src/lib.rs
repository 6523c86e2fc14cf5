//! ferry's outbound HTTP client for JSON APIs: the ApplicationSet `plugin`, `scmProvider` and
//! `pullRequest` generators and the Prometheus provider of rollout analysis call other services
//! through it.
//!
//! Its rules are the ones a generator that may delete apps needs: an answer is either the JSON
//! that was asked for or an error that says what came back (status, content type and the first
//! bytes of the body), never an empty list. Every request has a time limit and a size limit.
//! Only `http` and `https` URLs are accepted, without credentials in them (credentials go in
//! headers, which no error or log repeats), and error messages show a URL without its query.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How long a request may take, from connecting to the last byte of the answer, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer body read, by default (16 MiB).
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// What went wrong with a request. Each message names the URL (without its query) and says what
/// came back.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL cannot be used.
    #[error("URL {url:?} cannot be used: {reason}")]
    BadUrl {
        /// The URL as given, without its query.
        url: String,
        /// Why.
        reason: String,
    },
    /// A header name or value cannot be sent.
    #[error("header {name:?} cannot be sent: {reason}")]
    BadHeader {
        /// The header's name.
        name: String,
        /// Why (never the value).
        reason: String,
    },
    /// The extra CA certificates are not usable PEM.
    #[error("CA certificates: {0}")]
    Ca(String),
    /// The request did not get an answer (connection refused, DNS, TLS handshake).
    #[error("{method} {url}: no answer: {reason}")]
    Connect {
        /// The method.
        method: String,
        /// The URL, without its query.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// No whole answer within the time limit.
    #[error("{method} {url}: no whole answer within {secs} s")]
    Timeout {
        /// The method.
        method: String,
        /// The URL, without its query.
        url: String,
        /// The limit.
        secs: u64,
    },
    /// The answer's status was not 2xx.
    #[error("{method} {url}: HTTP {status}{}", snippet_suffix(.snippet))]
    Status {
        /// The method.
        method: String,
        /// The URL, without its query.
        url: String,
        /// The status code.
        status: u16,
        /// The first bytes of the body, for the message.
        snippet: String,
    },
    /// The answer was 2xx but its body is not JSON.
    #[error(
        "{method} {url}: the answer is not JSON (content-type {content_type:?}): {reason}{}",
        snippet_suffix(.snippet)
    )]
    NotJson {
        /// The method.
        method: String,
        /// The URL, without its query.
        url: String,
        /// The answer's content type, or "" when it had none.
        content_type: String,
        /// The JSON parser's message.
        reason: String,
        /// The first bytes of the body.
        snippet: String,
    },
    /// The answer's body was larger than the limit.
    #[error("{method} {url}: the answer is larger than {limit} bytes")]
    TooLarge {
        /// The method.
        method: String,
        /// The URL, without its query.
        url: String,
        /// The limit.
        limit: usize,
    },
}

fn snippet_suffix(snippet: &str) -> String {
    if snippet.is_empty() {
        String::new()
    } else {
        format!(": {snippet}")
    }
}

/// How a [`Client`] is made.
#[derive(Debug, Clone)]
pub struct Options {
    /// PEM certificates trusted besides the system's, for servers with a private CA.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Trust only `extra_ca_pem`, not the system's roots.
    pub only_extra_ca: bool,
    /// The time limit of one request.
    pub timeout: Duration,
    /// The largest answer body read.
    pub max_body: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            extra_ca_pem: None,
            only_extra_ca: false,
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// A JSON answer.
#[derive(Debug, Clone)]
pub struct JsonResponse {
    /// The status (always 2xx).
    pub status: StatusCode,
    /// The answer's headers (for pagination links).
    pub headers: HeaderMap,
    /// The parsed body.
    pub body: serde_json::Value,
}

/// An HTTP client for JSON APIs. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    max_body: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .finish()
    }
}

impl Client {
    /// A client with `options`. The process must have installed its rustls crypto provider
    /// (ferry's `main` installs ring), or `ring` is used here.
    pub fn new(options: Options) -> Result<Self, HttpError> {
        let mut roots = rustls::RootCertStore::empty();
        if !options.only_extra_ca {
            roots.add_parsable_certificates(native_roots());
        }
        if let Some(pem) = &options.extra_ca_pem {
            use rustls_pki_types::pem::PemObject;
            let mut added = 0;
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| HttpError::Ca(e.to_string()))?;
                roots.add(cert).map_err(|e| HttpError::Ca(e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(HttpError::Ca(
                    "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)".into(),
                ));
            }
        }
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| std::sync::Arc::new(rustls::crypto::ring::default_provider()));
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HttpError::Ca(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(options.timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let inner = HyperClient::builder(TokioExecutor::new()).build(connector);
        Ok(Client {
            inner,
            timeout: options.timeout,
            max_body: options.max_body,
        })
    }

    /// `GET url` with `headers`, expecting JSON.
    pub async fn get_json(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<JsonResponse, HttpError> {
        self.json(Method::GET, url, headers, None).await
    }

    /// `POST url` with `headers` and the JSON `body`, expecting JSON.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> Result<JsonResponse, HttpError> {
        self.json(Method::POST, url, headers, Some(body)).await
    }

    /// Sends one request and parses the answer as JSON.
    pub async fn json(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<JsonResponse, HttpError> {
        let shown = shown_url(url);
        let uri = check_url(url)?;
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(header::ACCEPT, "application/json");
        for (name, value) in headers {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| HttpError::BadHeader {
                name: (*name).to_string(),
                reason: e.to_string(),
            })?;
            let mut v = HeaderValue::from_str(value).map_err(|_| HttpError::BadHeader {
                name: (*name).to_string(),
                reason: "the value has characters a header cannot carry (a line break?)".into(),
            })?;
            v.set_sensitive(true);
            request = request.header(n, v);
        }
        let payload = match body {
            Some(b) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(b).unwrap_or_default())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(payload))
            .map_err(|e| HttpError::BadUrl {
                url: shown.clone(),
                reason: e.to_string(),
            })?;
        let m = method.to_string();
        let exchange = async {
            let answer = self
                .inner
                .request(request)
                .await
                .map_err(|e| HttpError::Connect {
                    method: m.clone(),
                    url: shown.clone(),
                    reason: error_chain(&e),
                })?;
            let (parts, body) = answer.into_parts();
            let bytes = Limited::new(body, self.max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        HttpError::TooLarge {
                            method: m.clone(),
                            url: shown.clone(),
                            limit: self.max_body,
                        }
                    } else {
                        HttpError::Connect {
                            method: m.clone(),
                            url: shown.clone(),
                            reason: e.to_string(),
                        }
                    }
                })?
                .to_bytes();
            Ok::<_, HttpError>((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout {
                method: m.clone(),
                url: shown.clone(),
                secs: self.timeout.as_secs(),
            })??;
        if !parts.status.is_success() {
            return Err(HttpError::Status {
                method: m,
                url: shown,
                status: parts.status.as_u16(),
                snippet: snippet(&bytes),
            });
        }
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let parsed: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| HttpError::NotJson {
                method: m.clone(),
                url: shown.clone(),
                content_type: content_type.clone(),
                reason: e.to_string(),
                snippet: snippet(&bytes),
            })?;
        Ok(JsonResponse {
            status: parts.status,
            headers: parts.headers,
            body: parsed,
        })
    }
}

/// The system's trusted roots; none on a machine without any (then only the extra CA counts).
fn native_roots() -> Vec<rustls_pki_types::CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// The URL as it may appear in a message: without its query and fragment.
pub fn shown_url(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url[..end].to_string()
}

fn check_url(url: &str) -> Result<http::Uri, HttpError> {
    let bad = |reason: &str| HttpError::BadUrl {
        url: shown_url(url),
        reason: reason.to_string(),
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => {
            return Err(bad(&format!(
                "the scheme {other:?} is not allowed; use http:// or https://"
            )));
        }
        None => return Err(bad("it has no scheme; use http:// or https://")),
    }
    let authority = uri
        .authority()
        .ok_or_else(|| bad("it has no host"))?
        .as_str();
    if authority.contains('@') {
        return Err(bad(
            "it carries credentials; give them in a Secret, which ferry sends as a header",
        ));
    }
    Ok(uri)
}

fn snippet(bytes: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    let mut one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if bytes.len() > MAX {
        one_line.push('…');
    }
    one_line
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one canned answer per connection, for `n` connections, and returns the address.
    async fn serve(answers: Vec<String>) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for answer in answers {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 65536];
                let mut read = 0;
                loop {
                    let n = sock.read(&mut buf[read..]).await.unwrap();
                    read += n;
                    let text = String::from_utf8_lossy(&buf[..read]);
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let len = text[..head_end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if read >= head_end + 4 + len {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                sock.write_all(answer.as_bytes()).await.unwrap();
                sock.shutdown().await.ok();
            }
        });
        addr
    }

    fn answer(status: &str, content_type: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn client() -> Client {
        Client::new(Options {
            timeout: Duration::from_secs(5),
            ..Options::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn json_answer_is_parsed_and_headers_kept() {
        let addr = serve(vec![answer(
            "200 OK",
            "application/json",
            r#"{"items":[1,2]}"#,
        )])
        .await;
        let r = client()
            .post_json(
                &format!("http://{addr}/api/v1/getparams.execute"),
                &[("Authorization", "Bearer s3cret")],
                &serde_json::json!({"input": {}}),
            )
            .await
            .unwrap();
        assert_eq!(r.body["items"][1], 2);
        assert_eq!(r.headers["content-type"], "application/json");
    }

    #[tokio::test]
    async fn html_with_200_is_an_error_that_shows_what_came_back() {
        let addr = serve(vec![answer(
            "200 OK",
            "text/html",
            "<html><body>Maintenance</body></html>",
        )])
        .await;
        let err = client()
            .get_json(&format!("http://{addr}/repos?token=abc"), &[])
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, HttpError::NotJson { .. }), "{msg}");
        assert!(
            msg.contains("text/html") && msg.contains("Maintenance"),
            "{msg}"
        );
        assert!(!msg.contains("token=abc"), "the query is not shown: {msg}");
    }

    #[tokio::test]
    async fn a_500_is_an_error_with_its_status() {
        let addr = serve(vec![answer(
            "500 Internal Server Error",
            "text/plain",
            "boom",
        )])
        .await;
        let err = client()
            .get_json(&format!("http://{addr}/x"), &[])
            .await
            .unwrap_err();
        assert!(
            matches!(err, HttpError::Status { status: 500, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("boom"));
    }

    #[tokio::test]
    async fn an_answer_over_the_size_limit_is_refused() {
        let big = format!("[{}0]", "0,".repeat(1000));
        let addr = serve(vec![answer("200 OK", "application/json", &big)]).await;
        let c = Client::new(Options {
            max_body: 100,
            ..Options::default()
        })
        .unwrap();
        let err = c
            .get_json(&format!("http://{addr}/x"), &[])
            .await
            .unwrap_err();
        assert!(
            matches!(err, HttpError::TooLarge { limit: 100, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let (_sock, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
        });
        let c = Client::new(Options {
            timeout: Duration::from_millis(300),
            ..Options::default()
        })
        .unwrap();
        let err = c
            .get_json(&format!("http://{addr}/x"), &[])
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Timeout { .. }), "{err}");
        hold.abort();
    }

    #[tokio::test]
    async fn refused_connection_names_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = client()
            .get_json(&format!("http://{addr}/api"), &[])
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Connect { .. }), "{err}");
        assert!(err.to_string().contains(&format!("http://{addr}/api")));
    }

    #[test]
    fn urls_other_than_http_and_https_and_urls_with_credentials_are_refused() {
        for url in [
            "file:///etc/passwd",
            "ftp://example.com/x",
            "example.com/x",
            "https://user:pw@example.com/x",
            "-oProxyCommand=x",
        ] {
            assert!(
                matches!(check_url(url), Err(HttpError::BadUrl { .. })),
                "{url} was accepted"
            );
        }
        assert!(check_url("https://gitea.local:3000/api/v1").is_ok());
    }

    #[test]
    fn a_header_value_with_a_line_break_is_refused_without_showing_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(client().get_json(
                "http://127.0.0.1:1/x",
                &[("Authorization", "Bearer a\r\nX-Evil: 1")],
            ))
            .unwrap_err();
        assert!(matches!(err, HttpError::BadHeader { .. }), "{err}");
        assert!(!err.to_string().contains("Bearer"), "{err}");
    }

    #[test]
    fn a_bad_extra_ca_is_an_error() {
        let err = Client::new(Options {
            extra_ca_pem: Some(b"not a pem".to_vec()),
            ..Options::default()
        })
        .unwrap_err();
        assert!(matches!(err, HttpError::Ca(_)), "{err}");
    }
}
