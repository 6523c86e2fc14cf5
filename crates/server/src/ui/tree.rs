//! An application's resource tree: the Application, the resources it manages (from
//! `status.resources`) and what Kubernetes made from them (ReplicaSets, Pods), found through
//! `ownerReferences`. Child Applications (App-of-Apps) link to their own page.

use std::collections::{BTreeMap, BTreeSet};

use ferry_cluster::ClusterClient;
use ferry_core::application::{Application, ResourceStatus};
use serde_json::Value;

use super::{encode_component, escape_html, health_class, sync_class};

/// Kinds whose Pods (or ReplicaSets) are shown under them.
const WORKLOAD_KINDS: [(&str, &str); 5] = [
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
];

/// How deep ownership is followed below a managed resource (CronJob → Job → Pod is 2).
const MAX_DEPTH: usize = 4;

/// Identifies an object in the tree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct NodeKey {
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) kind: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
}

/// One node: an object with its status and what it owns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TreeNode {
    pub(crate) key: NodeKey,
    /// Sync status (managed resources and the Application only).
    pub(crate) sync: Option<String>,
    /// Health status, when known.
    pub(crate) health: Option<String>,
    /// Where the node's name links to.
    pub(crate) link: Option<String>,
    pub(crate) children: Vec<TreeNode>,
}

/// A live object that may be owned by a managed one: its identity, uid, owners' uids, health.
#[derive(Debug, Clone)]
pub(crate) struct LiveObject {
    pub(crate) key: NodeKey,
    pub(crate) uid: String,
    pub(crate) owners: Vec<String>,
    pub(crate) health: Option<String>,
}

impl LiveObject {
    /// Reads what the tree needs from a listed object (`apiVersion` and `kind` set).
    pub(crate) fn of(obj: &Value) -> Option<LiveObject> {
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default();
        let (group, version) = match s("/apiVersion").split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), s("/apiVersion").to_string()),
        };
        let uid = s("/metadata/uid");
        if uid.is_empty() {
            return None;
        }
        let owners = obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .map(|refs| {
                refs.iter()
                    .filter_map(|r| r.get("uid").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Some(LiveObject {
            key: NodeKey {
                group,
                version,
                kind: s("/kind").to_string(),
                namespace: s("/metadata/namespace").to_string(),
                name: s("/metadata/name").to_string(),
            },
            uid: uid.to_string(),
            owners,
            health: ferry_core::health::assess_health(obj).map(|h| format!("{:?}", h.status)),
        })
    }
}

/// The link to a resource's manifest page of app `app` (a canary Rollout's page for a Rollout).
pub(crate) fn resource_link(app: &str, key: &NodeKey) -> String {
    if key.group == "argoproj.io" && key.kind == "Rollout" {
        return super::rollout::rollout_link(app, &key.name);
    }
    manifest_link(app, key)
}

/// The link to a resource's manifest page of app `app`.
pub(crate) fn manifest_link(app: &str, key: &NodeKey) -> String {
    format!(
        "/applications/{}/resource?group={}&version={}&kind={}&namespace={}&name={}",
        encode_component(app),
        encode_component(&key.group),
        encode_component(&key.version),
        encode_component(&key.kind),
        encode_component(&key.namespace),
        encode_component(&key.name),
    )
}

fn key_of(r: &ResourceStatus) -> NodeKey {
    NodeKey {
        group: r.group.clone(),
        version: r.version.clone(),
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
    }
}

/// Builds the tree of app `app` from its status and the `live` objects around its resources.
/// Objects owned (directly or not) by a managed resource hang below it; everything else in
/// `live` is left out. Child Applications link to their page (`/applications/{name}`) when
/// they live in `apps_namespace`.
pub(crate) fn build_tree(app: &Application, apps_namespace: &str, live: &[LiveObject]) -> TreeNode {
    let name = app.metadata.name.clone().unwrap_or_default();
    let status = app.status.clone().unwrap_or_default();
    let mut by_owner: BTreeMap<&str, Vec<&LiveObject>> = BTreeMap::new();
    for obj in live {
        for owner in &obj.owners {
            by_owner.entry(owner.as_str()).or_default().push(obj);
        }
    }
    let uid_of: BTreeMap<(&str, &str, &str, &str), &str> = live
        .iter()
        .map(|o| {
            (
                (
                    o.key.group.as_str(),
                    o.key.kind.as_str(),
                    o.key.namespace.as_str(),
                    o.key.name.as_str(),
                ),
                o.uid.as_str(),
            )
        })
        .collect();
    let mut resources: Vec<&ResourceStatus> = status.resources.iter().collect();
    resources.sort_by_key(|r| {
        (
            kind_rank(&r.kind),
            r.kind.clone(),
            r.namespace.clone(),
            r.name.clone(),
        )
    });
    let children = resources
        .into_iter()
        .map(|r| {
            let key = key_of(r);
            let is_child_app = r.group == "argoproj.io" && r.kind == "Application";
            let link = if is_child_app && (r.namespace.is_empty() || r.namespace == apps_namespace)
            {
                format!("/applications/{}", encode_component(&r.name))
            } else {
                resource_link(&name, &key)
            };
            let uid = uid_of
                .get(&(
                    r.group.as_str(),
                    r.kind.as_str(),
                    r.namespace.as_str(),
                    r.name.as_str(),
                ))
                .copied();
            let mut seen = BTreeSet::new();
            TreeNode {
                sync: r.status.map(|s| format!("{s:?}")),
                health: r.health.as_ref().map(|h| format!("{:?}", h.status)),
                link: Some(link),
                children: uid
                    .map(|u| owned_by(&name, u, &by_owner, 1, &mut seen))
                    .unwrap_or_default(),
                key,
            }
        })
        .collect();
    TreeNode {
        key: NodeKey {
            group: "argoproj.io".into(),
            version: "v1alpha1".into(),
            kind: "Application".into(),
            namespace: app.metadata.namespace.clone().unwrap_or_default(),
            name: name.clone(),
        },
        sync: Some(format!("{:?}", status.sync.status)),
        health: Some(format!("{:?}", status.health.status)),
        link: None,
        children,
    }
}

/// The nodes owned by `uid`, recursively.
fn owned_by<'a>(
    app: &str,
    uid: &'a str,
    by_owner: &BTreeMap<&str, Vec<&'a LiveObject>>,
    depth: usize,
    seen: &mut BTreeSet<&'a str>,
) -> Vec<TreeNode> {
    if depth > MAX_DEPTH || !seen.insert(uid) {
        return Vec::new();
    }
    let mut owned: Vec<&LiveObject> = by_owner.get(uid).cloned().unwrap_or_default();
    owned.sort_by(|a, b| (kind_rank(&a.key.kind), &a.key).cmp(&(kind_rank(&b.key.kind), &b.key)));
    owned
        .into_iter()
        .map(|o| TreeNode {
            key: o.key.clone(),
            sync: None,
            health: o.health.clone(),
            link: Some(resource_link(app, &o.key)),
            children: owned_by(app, &o.uid, by_owner, depth + 1, seen),
        })
        .collect()
}

/// Sort order of kinds: workloads and their children first, then Services, then the rest.
fn kind_rank(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "Application" => 1,
        "Deployment" | "StatefulSet" | "DaemonSet" | "CronJob" => 2,
        "ReplicaSet" | "Job" => 3,
        "Pod" => 4,
        "Service" => 5,
        _ => 6,
    }
}

impl TreeNode {
    /// Finds the node with `key` (any depth).
    pub(crate) fn find(&self, key: &NodeKey) -> Option<&TreeNode> {
        if &self.key == key {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(key))
    }

    /// The tree as nested lists (`<ul>`/`<li>`), each node with its kind, linked name and
    /// sync and health badges; all text escaped.
    pub(crate) fn to_html(&self) -> String {
        let mut out = String::from("<ul class=\"tree\">");
        self.write_html(&mut out);
        out.push_str("</ul>");
        out
    }

    fn write_html(&self, out: &mut String) {
        let k = &self.key;
        out.push_str(&format!(
            "<li data-kind=\"{}\" data-name=\"{}\"><div class=\"node\"><span class=\"kind\">{}</span> ",
            escape_html(&k.kind),
            escape_html(&k.name),
            escape_html(&k.kind)
        ));
        let label = if k.namespace.is_empty() || k.kind == "Application" {
            escape_html(&k.name)
        } else {
            format!(
                "{}<span class=\"ns\"> in {}</span>",
                escape_html(&k.name),
                escape_html(&k.namespace)
            )
        };
        match &self.link {
            Some(href) => out.push_str(&format!(
                "<a class=\"name\" href=\"{}\">{label}</a>",
                escape_html(href)
            )),
            None => out.push_str(&format!("<span class=\"name\">{label}</span>")),
        }
        if let Some(s) = &self.sync {
            out.push_str(&format!(
                " <span class=\"badge {}\" data-badge=\"sync\"><span class=\"sr\">sync: </span>{}</span>",
                sync_class(s),
                escape_html(s)
            ));
        }
        if let Some(h) = &self.health {
            out.push_str(&format!(
                " <span class=\"badge {}\" data-badge=\"health\"><span class=\"sr\">health: </span>{}</span>",
                health_class(h),
                escape_html(h)
            ));
        }
        out.push_str("</div>");
        if !self.children.is_empty() {
            out.push_str("<ul>");
            for c in &self.children {
                c.write_html(out);
            }
            out.push_str("</ul>");
        }
        out.push_str("</li>");
    }
}

/// Lists the objects the tree may need below `app`'s managed workloads, in the namespaces
/// they live in: the workloads themselves (for their uids), ReplicaSets, Jobs and Pods.
/// Listing a kind that fails (no permission, say) leaves it out rather than failing the page.
pub(crate) async fn live_objects(cluster: &ClusterClient, app: &Application) -> Vec<LiveObject> {
    let status = app.status.clone().unwrap_or_default();
    // namespace -> kinds to list there
    let mut wanted: BTreeMap<String, BTreeSet<(&str, &str)>> = BTreeMap::new();
    for r in &status.resources {
        let Some((group, kind)) = WORKLOAD_KINDS
            .iter()
            .find(|(g, k)| *g == r.group && *k == r.kind)
        else {
            continue;
        };
        let kinds = wanted.entry(r.namespace.clone()).or_default();
        let api_version = if *group == "apps" {
            "apps/v1"
        } else {
            "batch/v1"
        };
        kinds.insert((api_version, kind));
        kinds.insert(("v1", "Pod"));
        match *kind {
            "Deployment" => {
                kinds.insert(("apps/v1", "ReplicaSet"));
            }
            "CronJob" => {
                kinds.insert(("batch/v1", "Job"));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (namespace, kinds) in wanted {
        for (api_version, kind) in kinds {
            match cluster.list(api_version, kind, &namespace, None).await {
                Ok(items) => out.extend(items.iter().filter_map(LiveObject::of)),
                Err(e) => tracing::debug!(%namespace, kind, "listing for the resource tree: {e}"),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app() -> Application {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "root", "namespace": "ferry"},
            "spec": {"project": "default", "destination": {}, "source": {"repoURL": "r"}},
            "status": {
                "sync": {"status": "OutOfSync"},
                "health": {"status": "Healthy"},
                "resources": [
                    {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "web",
                     "name": "podinfo", "status": "OutOfSync", "health": {"status": "Healthy"}},
                    {"version": "v1", "kind": "Service", "namespace": "web", "name": "podinfo",
                     "status": "Synced", "health": {"status": "Healthy"}},
                    {"group": "argoproj.io", "version": "v1alpha1", "kind": "Application",
                     "namespace": "ferry", "name": "child<b>", "status": "Synced",
                     "health": {"status": "Progressing"}}
                ]
            }
        }))
        .unwrap()
    }

    fn obj(api_version: &str, kind: &str, name: &str, uid: &str, owner: Option<&str>) -> Value {
        let mut o = json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": "web", "uid": uid},
        });
        if let Some(owner) = owner {
            o["metadata"]["ownerReferences"] = json!([{"uid": owner, "kind": "x", "name": "x"}]);
        }
        o
    }

    #[test]
    fn deployment_replicaset_pods_hang_below_their_owner() {
        let live: Vec<LiveObject> = [
            obj("apps/v1", "Deployment", "podinfo", "d1", None),
            obj("apps/v1", "ReplicaSet", "podinfo-abc", "rs1", Some("d1")),
            obj("apps/v1", "ReplicaSet", "unrelated", "rs2", Some("other")),
            obj("v1", "Pod", "podinfo-abc-2", "p2", Some("rs1")),
            obj("v1", "Pod", "podinfo-abc-1", "p1", Some("rs1")),
            obj("v1", "Pod", "unrelated-1", "p3", Some("rs2")),
        ]
        .iter()
        .filter_map(LiveObject::of)
        .collect();
        let tree = build_tree(&app(), "ferry", &live);
        assert_eq!(tree.key.kind, "Application");
        assert_eq!(tree.sync.as_deref(), Some("OutOfSync"));
        let kinds: Vec<&str> = tree.children.iter().map(|c| c.key.kind.as_str()).collect();
        assert_eq!(kinds, ["Application", "Deployment", "Service"]);
        let deploy = &tree.children[1];
        assert_eq!(deploy.sync.as_deref(), Some("OutOfSync"));
        assert_eq!(deploy.children.len(), 1, "{deploy:?}");
        let rs = &deploy.children[0];
        assert_eq!(
            (rs.key.kind.as_str(), rs.key.name.as_str()),
            ("ReplicaSet", "podinfo-abc")
        );
        let pods: Vec<&str> = rs.children.iter().map(|p| p.key.name.as_str()).collect();
        assert_eq!(pods, ["podinfo-abc-1", "podinfo-abc-2"]);
        // A Pod without status is Progressing by ferry's rules; what matters is that it has one.
        assert!(rs.children[0].health.is_some());
        assert!(tree.find(&rs.children[1].key).is_some());
        let unrelated = NodeKey {
            kind: "Pod".into(),
            name: "unrelated-1".into(),
            ..rs.children[0].key.clone()
        };
        assert!(tree.find(&unrelated).is_none(), "not owned by the app");
    }

    #[test]
    fn child_applications_link_to_their_page_and_html_is_escaped() {
        let tree = build_tree(&app(), "ferry", &[]);
        let child = &tree.children[0];
        assert_eq!(child.link.as_deref(), Some("/applications/child%3Cb%3E"));
        let html = tree.to_html();
        assert!(html.contains("child&lt;b&gt;"), "{html}");
        assert!(!html.contains("child<b>"));
        assert!(html.contains("data-kind=\"Deployment\""));
        assert!(html.contains("/applications/root/resource?group=apps&amp;version=v1&amp;kind=Deployment&amp;namespace=web&amp;name=podinfo"), "{html}");
        // Nested lists: as many <ul> as </ul>.
        assert_eq!(html.matches("<ul").count(), html.matches("</ul>").count());
    }

    #[test]
    fn cronjob_jobs_and_their_pods() {
        let mut app = app();
        app.status.as_mut().unwrap().resources = vec![ResourceStatus {
            group: "batch".into(),
            version: "v1".into(),
            kind: "CronJob".into(),
            namespace: "web".into(),
            name: "backup".into(),
            ..ResourceStatus::default()
        }];
        let live: Vec<LiveObject> = [
            obj("batch/v1", "CronJob", "backup", "c1", None),
            obj("batch/v1", "Job", "backup-1", "j1", Some("c1")),
            obj("v1", "Pod", "backup-1-x", "p1", Some("j1")),
        ]
        .iter()
        .filter_map(LiveObject::of)
        .collect();
        let tree = build_tree(&app, "ferry", &live);
        let cron = &tree.children[0];
        assert_eq!(cron.key.kind, "CronJob");
        assert_eq!(cron.children[0].key.kind, "Job");
        assert_eq!(cron.children[0].children[0].key.name, "backup-1-x");
    }

    #[test]
    fn ownership_cycles_end() {
        let live: Vec<LiveObject> = [
            obj("apps/v1", "Deployment", "podinfo", "d1", Some("p1")),
            obj("v1", "Pod", "p", "p1", Some("d1")),
        ]
        .iter()
        .filter_map(LiveObject::of)
        .collect();
        let tree = build_tree(&app(), "ferry", &live);
        let html = tree.to_html();
        assert!(html.matches("data-kind=\"Pod\"").count() <= MAX_DEPTH);
    }
}
