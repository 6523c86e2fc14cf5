//! Scale-out: three `ferry controller` replicas against one control plane share three
//! destination clusters (the control plane itself and two more, registered as cluster Secrets)
//! through Leases. Each cluster's apps are reconciled by exactly one replica; when the owner of
//! a cluster is killed with SIGKILL, another takes the cluster over once the dead one's Lease
//! has lapsed, and reverts a drift made after the kill.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use base64::Engine as _;
use common::*;
use ferry_testsupport::{Cluster, GitRepo, Probe, wait_until};
use serde_json::Value;

const IN_CLUSTER: &str = "https://kubernetes.default.svc";
/// Short, so that the test waits seconds, not the default 15 s, for a takeover.
const LEASE_DURATION: &str = "4s";

/// Registers `remote` as the cluster `name` in the namespace of `ns_kubectl`; returns its URL.
fn register(w_ns: &ferry_testsupport::TestNamespace, remote: &Cluster, name: &str) -> String {
    let view = remote
        .kubectl()
        .run(&["config", "view", "--raw", "-o", "json"]);
    let kc: Value = serde_json::from_str(&view).unwrap();
    let at = |p: &str| kc.pointer(p).and_then(Value::as_str).unwrap().to_string();
    let server = at("/clusters/0/cluster/server");
    let config = serde_json::json!({
        "bearerToken": at("/users/0/user/token"),
        "tlsClientConfig": {"caData": at("/clusters/0/cluster/certificate-authority-data")}
    })
    .to_string();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    w_ns.kubectl().apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cluster-{name}\n  labels:\n    \
         argocd.argoproj.io/secret-type: cluster\ndata:\n  name: {}\n  server: {}\n  config: {}\n",
        b64(name),
        b64(&server),
        b64(&config)
    ));
    server
}

/// One replica: its process and where its /metrics are.
struct Replica {
    id: String,
    process: Controller,
    metrics: String,
}

impl Replica {
    fn start(kubeconfig: &std::path::Path, ns: &str, id: &str) -> Replica {
        let process = Controller::start_command(
            kubeconfig,
            &[
                "controller",
                "--namespace",
                ns,
                "--poll-interval",
                "2s",
                "--replicas",
                "3",
                "--replica-id",
                id,
                "--lease-duration",
                LEASE_DURATION,
                "--metrics-listen",
                "127.0.0.1:0",
            ],
        );
        let metrics = process.logged_address("serving /metrics");
        Replica {
            id: id.to_owned(),
            process,
            metrics,
        }
    }

    /// The replica's metrics: each sample line's name and labels, and its value.
    fn scrape(&self) -> BTreeMap<String, f64> {
        let reply = ferry_testsupport::http::request(
            self.metrics.parse().unwrap(),
            "GET",
            "/metrics",
            &[],
            b"",
        );
        reply
            .body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect()
    }

    fn value(&self, key: &str) -> f64 {
        self.scrape().get(key).copied().unwrap_or(0.0)
    }

    /// How many reconciles of `cluster`'s apps this replica did.
    fn reconciles(&self, cluster: &str) -> f64 {
        self.value(&format!(
            "ferry_shard_reconciles_total{{cluster=\"{cluster}\"}}"
        ))
    }

    /// How many syncs of `app` this replica finished.
    fn syncs(&self, app: &str) -> f64 {
        self.scrape()
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("ferry_app_sync_total{{name=\"{app}\",")))
            .map(|(_, v)| v)
            .sum()
    }
}

#[tokio::test]
async fn replicas_share_clusters_and_take_over_a_killed_owners_clusters() {
    let started = Instant::now();
    let cluster = Cluster::shared();
    let ns = cluster.namespace("scale-out").await;
    ferry_ok(cluster.kubeconfig(), &["install", "--namespace", ns.name()]);
    let remotes = [Cluster::start_own("shard-a"), Cluster::start_own("shard-b")];
    let mut servers = vec![IN_CLUSTER.to_string()];
    for (i, remote) in remotes.iter().enumerate() {
        servers.push(register(&ns, remote, &format!("shard-{i}")));
        remote.kubectl().run(&["create", "namespace", "shop"]);
    }

    let mut replicas: Vec<Replica> = ["r0", "r1", "r2"]
        .iter()
        .map(|id| Replica::start(cluster.kubeconfig(), ns.name(), id))
        .collect();
    // All three know each other and are past their warm-up before any app exists.
    wait_until("three live, active replicas", STEP, || async {
        let seen: Vec<(f64, f64)> = replicas
            .iter()
            .map(|r| {
                (
                    r.value("ferry_shard_live_replicas"),
                    r.value("ferry_shard_active"),
                )
            })
            .collect();
        if seen.iter().all(|s| *s == (3.0, 1.0)) {
            Probe::Done(())
        } else {
            Probe::Pending(format!("(live, active) per replica: {seen:?}"))
        }
    })
    .await;

    // Two apps per cluster, each with one ConfigMap.
    let repo = GitRepo::new();
    let mut apps: Vec<(String, usize)> = Vec::new();
    for c in 0..servers.len() {
        for i in 0..2 {
            let app = format!("c{c}-app{i}");
            repo.write(&format!("{app}/cm.yaml"), &configmap(&app, "1"));
            apps.push((app, c));
        }
    }
    repo.commit("apps");
    for (app, c) in &apps {
        let dest_ns = if *c == 0 { ns.name() } else { "shop" };
        ns.kubectl().apply(
            &application(app, &repo.url(), app, dest_ns, AUTOMATED)
                .replace(IN_CLUSTER, &servers[*c]),
        );
    }
    let app_of = |name: &str| -> Option<Value> {
        ns.kubectl()
            .try_run(&["get", "application", name, "-o", "json"])
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
    };
    for (app, _) in &apps {
        wait_until(&format!("{app} Synced and Healthy"), STEP, || async {
            match app_of(app) {
                Some(a) if sync_status(&a) == "Synced" && health_status(&a) == "Healthy" => {
                    Probe::Done(())
                }
                other => Probe::Pending(other.as_ref().map(summary).unwrap_or_default()),
            }
        })
        .await;
    }
    let synced_at = started.elapsed();

    // Exactly one replica reconciled each cluster's apps, and only it synced them.
    let mut owner_of_cluster = Vec::new();
    for server in &servers {
        let counts: Vec<f64> = replicas.iter().map(|r| r.reconciles(server)).collect();
        let owners: Vec<usize> = (0..3).filter(|i| counts[*i] > 0.0).collect();
        assert_eq!(
            owners.len(),
            1,
            "one replica reconciles {server}; reconciles per replica: {counts:?}"
        );
        owner_of_cluster.push(owners[0]);
    }
    for (app, c) in &apps {
        let syncs: Vec<f64> = replicas.iter().map(|r| r.syncs(app)).collect();
        let owner = owner_of_cluster[*c];
        assert!(
            syncs[owner] >= 1.0 && (0..3).all(|i| i == owner || syncs[i] == 0.0),
            "{app} is synced by its cluster's owner {} alone; syncs per replica: {syncs:?}",
            replicas[owner].id
        );
    }

    // Kill the owner of the first remote cluster, then drift one of that cluster's objects.
    let victim = owner_of_cluster[1];
    let victim_clusters: Vec<usize> = (0..servers.len())
        .filter(|c| owner_of_cluster[*c] == victim)
        .collect();
    let before: Vec<Vec<f64>> = servers
        .iter()
        .map(|s| replicas.iter().map(|r| r.reconciles(s)).collect())
        .collect();
    replicas[victim].process.kill();
    let killed = Instant::now();
    let remote = &remotes[0];
    remote.kubectl().run(&[
        "patch",
        "configmap",
        "c1-app0",
        "-n",
        "shop",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"value":"drifted"}}"#,
    ]);
    let survivors: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
    let new_owner = wait_until(
        "a survivor takes over the killed replica's cluster",
        STEP,
        || async {
            let counts: Vec<f64> = survivors
                .iter()
                .map(|i| replicas[*i].reconciles(&servers[1]))
                .collect();
            match survivors.iter().zip(&counts).find(|(_, n)| **n > 0.0) {
                Some((i, _)) => Probe::Done(*i),
                None => Probe::Pending(format!(
                    "survivors' reconciles of {}: {counts:?}",
                    servers[1]
                )),
            }
        },
    )
    .await;
    let takeover = killed.elapsed();
    wait_until(
        "the drift on the taken-over cluster reverted",
        STEP,
        || async {
            match remote.kubectl().try_run(&[
                "get",
                "configmap",
                "c1-app0",
                "-n",
                "shop",
                "-o",
                "jsonpath={.data.value}",
            ]) {
                Ok(v) if v == "1" => Probe::Done(()),
                other => Probe::Pending(format!("{other:?}")),
            }
        },
    )
    .await;
    let reverted = killed.elapsed();

    // Every cluster the victim had went to exactly one survivor; the others stayed put.
    for (c, server) in servers.iter().enumerate() {
        let moved: Vec<usize> = survivors
            .iter()
            .copied()
            .filter(|i| replicas[*i].reconciles(server) > before[c][*i])
            .collect();
        if victim_clusters.contains(&c) {
            wait_until(&format!("a survivor reconciles {server}"), STEP, || async {
                let n = survivors
                    .iter()
                    .filter(|i| replicas[**i].reconciles(server) > 0.0)
                    .count();
                if n >= 1 {
                    Probe::Done(())
                } else {
                    Probe::Pending(format!("{n} survivors reconcile it"))
                }
            })
            .await;
            let takers: Vec<&str> = survivors
                .iter()
                .filter(|i| replicas[**i].reconciles(server) > 0.0)
                .map(|i| replicas[*i].id.as_str())
                .collect();
            assert_eq!(takers.len(), 1, "one survivor took {server}: {takers:?}");
        } else {
            assert!(
                moved.iter().all(|i| *i == owner_of_cluster[c]),
                "{server} stays with {}: reconciled since the kill by {moved:?}",
                replicas[owner_of_cluster[c]].id
            );
        }
    }
    assert!(survivors.contains(&new_owner));
    for i in &survivors {
        // A survivor that gained none of the victim's clusters may notice the death a renewal
        // later than the one that took them: wait for it rather than read it once.
        wait_until(
            &format!("{} counts two live replicas", replicas[*i].id),
            STEP,
            || async {
                let n = replicas[*i].value("ferry_shard_live_replicas");
                if n == 2.0 {
                    Probe::Done(())
                } else {
                    Probe::Pending(format!("{n} live replicas"))
                }
            },
        )
        .await;
        assert!(
            replicas[*i].value("ferry_shard_ownership_changes_total") >= 1.0 || *i != new_owner
        );
    }

    // The killed replica comes back: it takes its clusters back after its warm-up, and the
    // survivor that held them lets go first (a drift afterwards is reverted by it alone).
    let rejoined = Instant::now();
    replicas[victim].process.restart();
    replicas[victim].metrics = wait_until("the restarted replica's /metrics", STEP, || async {
        let log = replicas[victim].process.log();
        let addresses: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("serving /metrics"))
            .filter_map(|l| l.split("address=").nth(1)?.split_whitespace().next())
            .collect();
        match addresses.as_slice() {
            [_, .., last] => Probe::Done(last.to_string()),
            _ => Probe::Pending("not serving yet".into()),
        }
    })
    .await;
    wait_until(
        "the restarted replica owns its cluster again",
        STEP,
        || async {
            let n = replicas[victim].reconciles(&servers[1]);
            if n > 0.0 {
                Probe::Done(())
            } else {
                Probe::Pending(format!("{n} reconciles of {}", servers[1]))
            }
        },
    )
    .await;
    let handed_back = rejoined.elapsed();
    let held: f64 = replicas[new_owner].reconciles(&servers[1]);
    remote.kubectl().run(&[
        "patch",
        "configmap",
        "c1-app1",
        "-n",
        "shop",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"value":"drifted-again"}}"#,
    ]);
    wait_until("the second drift reverted", STEP, || async {
        match remote.kubectl().try_run(&[
            "get",
            "configmap",
            "c1-app1",
            "-n",
            "shop",
            "-o",
            "jsonpath={.data.value}",
        ]) {
            Ok(v) if v == "1" => Probe::Done(()),
            other => Probe::Pending(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        replicas[new_owner].reconciles(&servers[1]),
        held,
        "{} gave {} back before the restarted replica took it",
        replicas[new_owner].id,
        servers[1]
    );
    eprintln!(
        "scale-out: the restarted replica had its cluster back {:.1}s after its restart",
        handed_back.as_secs_f64()
    );
    eprintln!(
        "scale-out: all {} apps synced {:.1}s after the start; takeover {:.1}s and drift reverted \
         {:.1}s after the kill (lease duration {LEASE_DURATION}); test wall time {:.1}s",
        apps.len(),
        synced_at.as_secs_f64(),
        takeover.as_secs_f64(),
        reverted.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
