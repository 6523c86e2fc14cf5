//! Argo CD's `argoproj.io/v1alpha1` `AppProject` and the checks it imposes on Applications:
//! which repositories they may use ([`AppProjectSpec::permits_source`]), where they may deploy
//! ([`AppProjectSpec::permits_destination`]) and which kinds they may create
//! ([`AppProjectSpec::permits_resource`]).
//!
//! Patterns are globs (`*`, `?`, `[...]`); a pattern starting with `!` is a deny rule. As Argo CD
//! documents it, something is permitted when at least one allow rule matches it and no deny rule
//! does: a list of deny rules alone permits nothing.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use crate::application::null_as_default;
use crate::glob::glob_match;
use crate::repo_url::RepoUrl;

/// `spec` of an Argo CD `AppProject`: the guard rails for the Applications that belong to it.
///
/// Fields ferry does not use yet (roles, orphaned-resource settings, ...) are accepted and
/// ignored.
#[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AppProject",
    plural = "appprojects",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct AppProjectSpec {
    /// Repository URL patterns Applications may use; `!` entries deny.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub source_repos: Vec<String>,
    /// Clusters and namespaces Applications may deploy to.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub destinations: Vec<ProjectDestination>,
    /// Cluster-scoped kinds Applications may create (none when empty).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_resource_whitelist: Vec<GroupKind>,
    /// Cluster-scoped kinds Applications may not create (wins over the whitelist).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_resource_blacklist: Vec<GroupKind>,
    /// Namespaced kinds Applications may create (all when empty).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub namespace_resource_whitelist: Vec<GroupKind>,
    /// Namespaced kinds Applications may not create (wins over the whitelist).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub namespace_resource_blacklist: Vec<GroupKind>,
    /// Free-form description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Namespaces (globs) outside the control namespace whose Applications may use this project.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub source_namespaces: Vec<String>,
    /// When Applications may sync (see [`crate::sync_window`]).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sync_windows: Vec<crate::sync_window::SyncWindow>,
}

/// A permitted (or, with `!`, denied) destination: cluster by `server` URL or `name`, and a
/// namespace, each a glob.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProjectDestination {
    /// Pattern for the cluster's API server URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Pattern for the cluster's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Pattern for the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// An API group and kind, each a glob (`*` for all). `group` is empty for the core group.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct GroupKind {
    /// API group pattern.
    #[serde(default)]
    pub group: String,
    /// Kind pattern.
    #[serde(default)]
    pub kind: String,
}

impl GroupKind {
    /// A group/kind pair.
    pub fn new(group: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            kind: kind.into(),
        }
    }

    fn matches(&self, group: &str, kind: &str) -> bool {
        glob_match(&self.group, group, None) && glob_match(&self.kind, kind, None)
    }
}

/// A pattern and whether it is a deny rule (`!` prefix, removed).
fn split_negation(pattern: &str) -> (bool, &str) {
    match pattern.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    }
}

impl AppProjectSpec {
    /// Whether an Application of this project may use the repository `repo_url`.
    ///
    /// URLs are compared case-insensitively and without a trailing `.git` or `/`. In patterns, a
    /// lone `*` matches every URL, `*` matches within one path segment
    /// (`https://github.com/org/*`) and `**` across segments. Entries starting with `!` deny.
    pub fn permits_source(&self, repo_url: &str) -> bool {
        let url = RepoUrl::new(repo_url);
        let mut allowed = false;
        for entry in &self.source_repos {
            let (deny, pattern) = split_negation(entry);
            if url.matches_pattern(pattern) {
                if deny {
                    return false;
                }
                allowed = true;
            }
        }
        allowed
    }

    /// Whether an Application of this project may deploy to the cluster given by `server` URL
    /// and/or `name`, in `namespace` (empty for cluster-scoped resources).
    ///
    /// A destination entry matches when its namespace pattern matches and either its server
    /// pattern matches `server` or its name pattern matches `name`. An entry with a `!` on any of
    /// its patterns is a deny rule: it denies what it matches with the `!` removed (so
    /// `{server: "*", namespace: "!kube-system"}` denies `kube-system` on every cluster).
    /// Resolving the destination is the caller's job: pass the cluster's server URL *and* its
    /// name as the destination resolves to them (never the Application's own spelling of one
    /// of them), so that a deny rule on either field applies however the app names the cluster.
    pub fn permits_destination(
        &self,
        server: Option<&str>,
        name: Option<&str>,
        namespace: &str,
    ) -> bool {
        let mut allowed = false;
        for entry in &self.destinations {
            let (deny_server, server_pattern) =
                split_negation(entry.server.as_deref().unwrap_or(""));
            let (deny_name, name_pattern) = split_negation(entry.name.as_deref().unwrap_or(""));
            let (deny_ns, ns_pattern) = split_negation(entry.namespace.as_deref().unwrap_or(""));
            let cluster_matches = server
                .is_some_and(|s| !server_pattern.is_empty() && glob_match(server_pattern, s, None))
                || name
                    .is_some_and(|n| !name_pattern.is_empty() && glob_match(name_pattern, n, None));
            let matches = cluster_matches && glob_match(ns_pattern, namespace, None);
            if matches {
                if deny_server || deny_name || deny_ns {
                    return false;
                }
                allowed = true;
            }
        }
        allowed
    }

    /// Whether an Application of this project may create resources of `group`/`kind`.
    ///
    /// Cluster-scoped kinds (`namespaced == false`) need a match in `clusterResourceWhitelist`
    /// (an empty whitelist allows none) and no match in `clusterResourceBlacklist`. Namespaced
    /// kinds are allowed unless `namespaceResourceBlacklist` matches, and, when
    /// `namespaceResourceWhitelist` is non-empty, only if it matches. Group and kind are globs.
    ///
    /// Argo CD tells an explicitly empty `namespaceResourceWhitelist: []` (nothing allowed) apart
    /// from an absent one (everything allowed); ferry treats both as absent.
    ///
    /// The `default` project gets no special treatment here: ferry's installer creates it (like
    /// Argo CD's) with `*`/`*` whitelists, see [`default_project`].
    pub fn permits_resource(&self, group: &str, kind: &str, namespaced: bool) -> bool {
        let in_list = |list: &[GroupKind]| list.iter().any(|gk| gk.matches(group, kind));
        if namespaced {
            let whitelisted = self.namespace_resource_whitelist.is_empty()
                || in_list(&self.namespace_resource_whitelist);
            whitelisted && !in_list(&self.namespace_resource_blacklist)
        } else {
            in_list(&self.cluster_resource_whitelist) && !in_list(&self.cluster_resource_blacklist)
        }
    }

    /// Whether Applications in `namespace` may use this project, given the project lives in
    /// `project_namespace` (Argo CD's control namespace): always for the control namespace,
    /// otherwise only when `sourceNamespaces` has a matching pattern.
    pub fn permits_app_namespace(&self, project_namespace: &str, namespace: &str) -> bool {
        namespace == project_namespace
            || self
                .source_namespaces
                .iter()
                .any(|pattern| glob_match(pattern, namespace, None))
    }
}

impl AppProject {
    /// See [`AppProjectSpec::permits_source`].
    pub fn permits_source(&self, repo_url: &str) -> bool {
        self.spec.permits_source(repo_url)
    }

    /// See [`AppProjectSpec::permits_destination`].
    pub fn permits_destination(
        &self,
        server: Option<&str>,
        name: Option<&str>,
        namespace: &str,
    ) -> bool {
        self.spec.permits_destination(server, name, namespace)
    }

    /// See [`AppProjectSpec::permits_resource`].
    pub fn permits_resource(&self, group: &str, kind: &str, namespaced: bool) -> bool {
        self.spec.permits_resource(group, kind, namespaced)
    }
}

/// The `default` AppProject that ferry's installer creates in `namespace`: any repository, any
/// cluster (by server or name) and namespace, any cluster-scoped kind — the same as Argo CD's.
pub fn default_project(namespace: &str) -> AppProject {
    let mut project = AppProject::new(
        crate::application::DEFAULT_PROJECT,
        AppProjectSpec {
            source_repos: vec!["*".into()],
            destinations: vec![ProjectDestination {
                server: Some("*".into()),
                name: Some("*".into()),
                namespace: Some("*".into()),
            }],
            cluster_resource_whitelist: vec![GroupKind::new("*", "*")],
            ..AppProjectSpec::default()
        },
    );
    project.metadata.namespace = Some(namespace.to_owned());
    project
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    fn project(yaml: &str) -> AppProject {
        serde_saphyr::from_str(yaml).expect("AppProject parses")
    }

    fn with_sources(repos: &[&str]) -> AppProjectSpec {
        AppProjectSpec {
            source_repos: repos.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }
    }

    fn dest(server: Option<&str>, name: Option<&str>, namespace: &str) -> ProjectDestination {
        ProjectDestination {
            server: server.map(Into::into),
            name: name.map(Into::into),
            namespace: Some(namespace.into()),
        }
    }

    #[test]
    fn argo_manifest_parses() {
        let p = project(
            r#"
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: workshop
  namespace: argocd
spec:
  description: Workshop apps
  sourceRepos:
    - https://github.com/example/*
    - '!https://github.com/example/secret-stuff'
  destinations:
    - server: https://kubernetes.default.svc
      namespace: 'team-*'
    - name: in-cluster
      namespace: podinfo
  clusterResourceWhitelist:
    - group: ''
      kind: Namespace
  namespaceResourceBlacklist:
    - group: ''
      kind: ResourceQuota
  sourceNamespaces: [apps-*]
  roles:
    - name: ci
      policies: ["p, proj:workshop:ci, applications, sync, workshop/*, allow"]
  orphanedResources:
    warn: true
"#,
        );
        assert_eq!(p.metadata.name.as_deref(), Some("workshop"));
        assert_eq!(p.spec.description.as_deref(), Some("Workshop apps"));
        assert_eq!(p.spec.source_repos.len(), 2);
        assert_eq!(p.spec.destinations[1].name.as_deref(), Some("in-cluster"));
        assert_eq!(
            p.spec.cluster_resource_whitelist,
            [GroupKind::new("", "Namespace")]
        );
        assert!(p.permits_source("https://github.com/example/podinfo.git"));
        assert!(!p.permits_source("https://github.com/example/secret-stuff"));
        assert!(p.permits_destination(Some("https://kubernetes.default.svc"), None, "team-a"));
        assert!(p.permits_resource("", "Namespace", false));
        assert!(!p.permits_resource("", "ResourceQuota", true));
        assert!(p.spec.permits_app_namespace("argocd", "apps-x"));
        assert!(!p.spec.permits_app_namespace("argocd", "other"));
        assert!(p.spec.permits_app_namespace("argocd", "argocd"));
        assert_eq!(AppProject::plural(&()), "appprojects");
        assert_eq!(
            serde_json::to_value(&p).unwrap()["apiVersion"],
            "argoproj.io/v1alpha1"
        );
    }

    #[test]
    fn star_source_permits_everything() {
        let spec = with_sources(&["*"]);
        assert!(spec.permits_source("https://github.com/a/b.git"));
        assert!(spec.permits_source("git@github.com:a/b.git"));
        assert!(spec.permits_source("https://charts.example.com/nested/path"));
    }

    #[test]
    fn empty_source_list_permits_nothing() {
        assert!(!with_sources(&[]).permits_source("https://github.com/a/b"));
    }

    #[test]
    fn source_globs_stay_within_a_path_segment() {
        let spec = with_sources(&["https://github.com/org/*"]);
        assert!(spec.permits_source("https://github.com/org/repo"));
        assert!(spec.permits_source("https://github.com/org/repo.git"));
        assert!(!spec.permits_source("https://github.com/org/group/repo"));
        assert!(!spec.permits_source("https://github.com/other/repo"));
        let deep = with_sources(&["https://gitlab.com/org/**"]);
        assert!(deep.permits_source("https://gitlab.com/org/group/repo"));
    }

    #[test]
    fn source_urls_are_normalized() {
        let spec = with_sources(&["https://GitHub.com/Org/Repo.git"]);
        assert!(spec.permits_source("https://github.com/org/repo"));
        assert!(spec.permits_source("https://github.com/org/repo/"));
        assert!(spec.permits_source("  https://github.com/ORG/repo.git "));
        assert!(!spec.permits_source("https://github.com/org/repo2"));
    }

    #[test]
    fn negated_source_denies_even_when_allowed() {
        let spec = with_sources(&["*", "!https://github.com/evil/*"]);
        assert!(spec.permits_source("https://github.com/good/repo"));
        assert!(!spec.permits_source("https://github.com/evil/repo"));
        // Order does not matter.
        let spec = with_sources(&["!https://github.com/evil/*", "*"]);
        assert!(!spec.permits_source("https://github.com/evil/repo"));
        // Deny rules alone allow nothing.
        let only_deny = with_sources(&["!https://github.com/evil/*"]);
        assert!(!only_deny.permits_source("https://github.com/good/repo"));
    }

    #[test]
    fn destination_by_server_name_and_namespace_globs() {
        let spec = AppProjectSpec {
            destinations: vec![
                dest(Some("https://kubernetes.default.svc"), None, "team-*"),
                dest(None, Some("prod-*"), "shop"),
            ],
            ..Default::default()
        };
        let local = Some("https://kubernetes.default.svc");
        assert!(spec.permits_destination(local, None, "team-a"));
        assert!(!spec.permits_destination(local, None, "kube-system"));
        assert!(!spec.permits_destination(Some("https://other:6443"), None, "team-a"));
        assert!(spec.permits_destination(None, Some("prod-eu"), "shop"));
        assert!(!spec.permits_destination(None, Some("prod-eu"), "team-a"));
        assert!(!spec.permits_destination(None, Some("staging"), "shop"));
        // A destination given by name does not match server-only entries, and vice versa.
        assert!(!spec.permits_destination(None, Some("in-cluster"), "team-a"));
        assert!(spec.permits_destination(local, Some("in-cluster"), "team-a"));
    }

    #[test]
    fn negated_destination_namespace_denies() {
        let spec = AppProjectSpec {
            destinations: vec![
                dest(Some("*"), None, "*"),
                dest(Some("*"), None, "!kube-system"),
            ],
            ..Default::default()
        };
        assert!(spec.permits_destination(Some("https://a"), None, "default"));
        assert!(!spec.permits_destination(Some("https://a"), None, "kube-system"));
    }

    #[test]
    fn negated_destination_server_denies() {
        let spec = AppProjectSpec {
            destinations: vec![
                dest(Some("*"), None, "*"),
                dest(Some("!https://prod.example.com*"), None, "*"),
            ],
            ..Default::default()
        };
        assert!(spec.permits_destination(Some("https://staging.example.com"), None, "x"));
        assert!(!spec.permits_destination(Some("https://prod.example.com:6443"), None, "x"));
        // Deny entries alone allow nothing.
        let only_deny = AppProjectSpec {
            destinations: vec![dest(Some("!https://prod*"), None, "*")],
            ..Default::default()
        };
        assert!(!only_deny.permits_destination(Some("https://staging"), None, "x"));
    }

    #[test]
    fn deny_rules_hold_for_the_resolved_pair() {
        // Any cluster by name, except the in-cluster server: an app naming the cluster
        // `in-cluster` is checked with the server it resolves to, and denied.
        let spec = AppProjectSpec {
            destinations: vec![
                dest(None, Some("*"), "*"),
                dest(Some("!https://kubernetes.default.svc"), None, "*"),
            ],
            ..Default::default()
        };
        assert!(!spec.permits_destination(
            Some("https://kubernetes.default.svc"),
            Some("in-cluster"),
            "x"
        ));
        assert!(spec.permits_destination(Some("https://dev.example"), Some("dev"), "x"));
        // A name deny holds when the app gave the server.
        let spec = AppProjectSpec {
            destinations: vec![dest(Some("*"), None, "*"), dest(None, Some("!prod"), "*")],
            ..Default::default()
        };
        assert!(!spec.permits_destination(Some("https://prod.example"), Some("prod"), "x"));
        // Only `dev` allowed: the in-cluster pair is not.
        let spec = AppProjectSpec {
            destinations: vec![dest(None, Some("dev"), "*")],
            ..Default::default()
        };
        assert!(!spec.permits_destination(
            Some("https://kubernetes.default.svc"),
            Some("in-cluster"),
            "x"
        ));
    }

    #[test]
    fn cluster_scoped_needs_whitelist() {
        let mut spec = AppProjectSpec::default();
        assert!(!spec.permits_resource("", "Namespace", false));
        assert!(!spec.permits_resource("rbac.authorization.k8s.io", "ClusterRole", false));
        spec.cluster_resource_whitelist = vec![GroupKind::new("", "Namespace")];
        assert!(spec.permits_resource("", "Namespace", false));
        assert!(!spec.permits_resource("rbac.authorization.k8s.io", "ClusterRole", false));
        spec.cluster_resource_whitelist = vec![GroupKind::new("rbac.authorization.k8s.io", "*")];
        assert!(spec.permits_resource("rbac.authorization.k8s.io", "ClusterRoleBinding", false));
        assert!(!spec.permits_resource("", "Namespace", false));
    }

    #[test]
    fn cluster_blacklist_wins_over_whitelist() {
        let spec = AppProjectSpec {
            cluster_resource_whitelist: vec![GroupKind::new("*", "*")],
            cluster_resource_blacklist: vec![GroupKind::new("apiextensions.k8s.io", "*")],
            ..Default::default()
        };
        assert!(spec.permits_resource("", "Namespace", false));
        assert!(!spec.permits_resource("apiextensions.k8s.io", "CustomResourceDefinition", false));
    }

    #[test]
    fn namespaced_allowed_unless_blacklisted_or_outside_whitelist() {
        let mut spec = AppProjectSpec::default();
        assert!(spec.permits_resource("apps", "Deployment", true));
        spec.namespace_resource_blacklist = vec![GroupKind::new("", "Secret")];
        assert!(!spec.permits_resource("", "Secret", true));
        assert!(spec.permits_resource("", "ConfigMap", true));
        spec.namespace_resource_whitelist =
            vec![GroupKind::new("apps", "*"), GroupKind::new("", "*")];
        assert!(spec.permits_resource("apps", "StatefulSet", true));
        assert!(spec.permits_resource("", "ConfigMap", true));
        assert!(!spec.permits_resource("", "Secret", true));
        assert!(!spec.permits_resource("batch", "Job", true));
        // Whitelists of the other scope do not apply.
        assert!(!spec.permits_resource("apps", "Deployment", false));
    }

    #[test]
    fn group_kind_globs() {
        let spec = AppProjectSpec {
            cluster_resource_whitelist: vec![GroupKind::new("*.k8s.io", "Cluster?ole*")],
            ..Default::default()
        };
        assert!(spec.permits_resource("rbac.authorization.k8s.io", "ClusterRole", false));
        assert!(spec.permits_resource("rbac.authorization.k8s.io", "ClusterRoleBinding", false));
        assert!(!spec.permits_resource("", "ClusterRole", false));
    }

    #[test]
    fn default_project_allows_everything() {
        let p = default_project("ferry");
        assert_eq!(p.metadata.name.as_deref(), Some("default"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("ferry"));
        assert!(p.permits_source("https://github.com/any/thing.git"));
        assert!(p.permits_source("oci://registry.example.com/charts"));
        assert!(p.permits_destination(Some("https://kubernetes.default.svc"), None, "x"));
        assert!(p.permits_destination(None, Some("in-cluster"), "x"));
        assert!(p.permits_destination(Some("https://k"), None, ""));
        assert!(p.permits_resource("", "Namespace", false));
        assert!(p.permits_resource("apiextensions.k8s.io", "CustomResourceDefinition", false));
        assert!(p.permits_resource("apps", "Deployment", true));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["kind"], "AppProject");
        assert_eq!(json["spec"]["clusterResourceWhitelist"][0]["kind"], "*");
    }
}
