use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::{Cluster, Kubectl};

/// Label put on every namespace a test creates, so leftovers are easy to find.
pub const TEST_NAMESPACE_LABEL: &str = "ferry.dev/test";

/// A namespace that belongs to one test. Dropping it deletes the namespace (without waiting),
/// except when the test is failing or `FERRY_TEST_KEEP=1`: then it stays for a post-mortem and
/// its name is printed.
pub struct TestNamespace {
    name: String,
    kubectl: Kubectl,
    client: kube::Client,
}

impl TestNamespace {
    pub(crate) async fn create(cluster: &Cluster, test: &str) -> TestNamespace {
        let name = namespace_name(test, &random_suffix());
        let client = cluster.client().await;
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(TEST_NAMESPACE_LABEL.to_string(), test_label(test))].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating test namespace {name}: {e}"));
        TestNamespace {
            kubectl: cluster.kubectl().in_namespace(&name),
            name,
            client,
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// kubectl as admin with `-n` set to this namespace.
    pub fn kubectl(&self) -> &Kubectl {
        &self.kubectl
    }

    /// An admin kube-rs client.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A namespaced API of this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var("FERRY_TEST_KEEP").is_ok_and(|v| v == "1") {
            eprintln!("keeping namespace {} for inspection", self.name);
            return;
        }
        let _ = self
            .kubectl
            .try_run(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// `t-<test>-<suffix>`, lower-cased, other characters turned to `-`, at most 63 characters.
fn namespace_name(test: &str, suffix: &str) -> String {
    let cleaned = test_label(test);
    let room = 63 - "t-".len() - 1 - suffix.len();
    let head: String = cleaned.chars().take(room).collect();
    format!("t-{}-{suffix}", head.trim_end_matches('-'))
}

fn test_label(test: &str) -> String {
    let s: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-');
    let s: String = s.chars().take(63).collect();
    s.trim_end_matches('-').to_string()
}

fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let mut x =
        nanos ^ (u64::from(std::process::id()) << 32) ^ COUNTER.fetch_add(1, Ordering::Relaxed);
    // splitmix64: spread the bits so consecutive calls look unrelated.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..6)
        .map(|i| alphabet[((x >> (i * 6)) % 36) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        let n = namespace_name("Deployment_rolls::out", "abc123");
        assert_eq!(n, "t-deployment-rolls--out-abc123");
        let long = namespace_name(&"x".repeat(200), "abc123");
        assert!(long.len() <= 63, "{long} is {} long", long.len());
        assert!(long.ends_with("-abc123"));
    }

    #[test]
    fn suffixes_differ() {
        let a = random_suffix();
        let b = random_suffix();
        assert_ne!(a, b);
        assert_eq!(a.len(), 6);
    }
}
