//! The generators that call other services, against small local HTTP servers written here
//! (`ferry_testsupport::scm_server`) and the real local control plane (for their Secrets,
//! ConfigMaps and custom resources).

mod cluster_decision_resource;
mod desired;
mod plugin;
mod pull_request;
mod scm_provider;

use std::time::Duration;

use ferry_appset::generators::RemoteContext;
use ferry_appset::params::{GeneratorError, Params};
use ferry_testsupport::scm_server::Fault;
use ferry_testsupport::{Cluster, TestNamespace};

/// The token the servers expect; no error message may contain it.
pub(crate) const TOKEN: &str = "s3cr3t-t0ken-value";

/// A test's namespace, cluster client and HTTP client (short time limit, for the `Hang` fault).
pub(crate) struct Env {
    pub(crate) ns: TestNamespace,
    pub(crate) kube: kube::Client,
    pub(crate) http: ferry_http::Client,
}

impl Env {
    pub(crate) async fn new(test: &str) -> Env {
        ferry_testsupport::install_crypto_provider();
        let ns = Cluster::shared().namespace(test).await;
        let kube = ns.client();
        let http = ferry_http::Client::new(ferry_http::Options {
            timeout: Duration::from_secs(2),
            ..Default::default()
        })
        .expect("an HTTP client");
        Env { ns, kube, http }
    }

    pub(crate) fn ctx(&self) -> RemoteContext<'_> {
        RemoteContext {
            kube: &self.kube,
            namespace: self.ns.name(),
            appset: "my-appset",
            http: &self.http,
        }
    }

    /// A Secret with one key, optionally labelled `app.kubernetes.io/part-of: argocd`.
    pub(crate) fn secret(&self, name: &str, key: &str, value: &str, part_of_argocd: bool) {
        let labels = if part_of_argocd {
            "\n  labels:\n    app.kubernetes.io/part-of: argocd"
        } else {
            ""
        };
        self.ns.kubectl().apply(&format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}{labels}\nstringData:\n  {key}: {value:?}\n"
        ));
    }

    /// A ConfigMap from key/value pairs.
    pub(crate) fn config_map(&self, name: &str, data: &[(&str, &str)]) {
        let mut yaml =
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n");
        for (k, v) in data {
            yaml.push_str(&format!("  {k}: {v:?}\n"));
        }
        self.ns.kubectl().apply(&yaml);
    }
}

/// Every fault mode of the test server.
pub(crate) const FAULTS: [Fault; 4] = [
    Fault::Status500,
    Fault::Html200,
    Fault::WrongShape,
    Fault::Hang,
];

/// Checks that a generator failed closed: an error naming the generator and `url`, saying what
/// came back for `fault`, and never carrying the token.
pub(crate) fn assert_fails_closed(
    result: Result<Vec<Params>, GeneratorError>,
    generator: &str,
    url: &str,
    fault: &Fault,
) {
    let e = match result {
        Ok(p) => panic!(
            "{generator} with fault {fault:?}: expected an error, got {} parameter sets",
            p.len()
        ),
        Err(e) => e,
    };
    let text = e.to_string();
    assert_eq!(e.generator, generator, "{text}");
    assert!(
        text.contains(url),
        "the error names the server {url}: {text}"
    );
    assert!(
        !text.contains(TOKEN),
        "the error must not carry the token: {text}"
    );
    let what = match fault {
        Fault::Status500 => "HTTP 500",
        Fault::Html200 => "Down for maintenance",
        Fault::WrongShape => "unexpected",
        Fault::Hang => "no whole answer",
    };
    assert!(
        text.contains(what),
        "the error says what came back ({what}): {text}"
    );
}

/// A parameter as text.
pub(crate) fn text<'p>(p: &'p Params, key: &str) -> &'p str {
    p.get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("parameter {key} in {p:?}"))
}
