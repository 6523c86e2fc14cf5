#!/usr/bin/env python3
"""The scale-out benchmark: one `ferry controller` against two replicas (`--replicas 2`) over
three destination clusters, in the same run, on the same control planes. See bench/README.md.

    python3 bench/engine/scale_out.py --n 300

Starts three local control planes: ferry's own (also the first destination, as
`https://kubernetes.default.svc`) and two more registered as cluster Secrets. N Applications
(one 2 KB ConfigMap each) are spread evenly over the three clusters. For each setup (1 replica,
then 2 replicas, each in a fresh ferry namespace and fresh destination namespaces; the first
setup's namespaces are deleted before the second starts) it measures

- the time from creating the N Applications to all Synced and Healthy (the replicas are started
  and, for 2 replicas, past their Lease warm-up before the apps are created);
- drift-to-reverted latency, a merge patch of a managed ConfigMap, spread over the clusters;
- each process's peak RSS and CPU seconds, and which clusters each replica owned.

and reports 2 replicas ÷ 1 replica. The two replicas' identities are chosen so that the
rendezvous hash splits the three clusters 2 : 1 (with random cluster ports, a pair of fixed
names would sometimes give one replica all three). Results:
bench/results/<date>-scaleout-n<N>.json, and bench/results/README.md is regenerated.
"""

import argparse
import base64
import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402
import stats  # noqa: E402
from kube import ApiError, Kube  # noqa: E402
from run import PAYLOAD, REPO, git, machine, run, say, wait_until  # noqa: E402

IN_CLUSTER = "https://kubernetes.default.svc"
MASK = (1 << 64) - 1


def stable_hash(parts):
    """crates/controller/src/shard.rs's `stable_hash` (FNV-1a, splitmix64 finish)."""
    h = 0xCBF29CE484222325
    for part in parts:
        for b in part.encode() + b"\0":
            h ^= b
            h = (h * 0x00000100000001B3) & MASK
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & MASK
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & MASK
    return h ^ (h >> 31)


def owner_of(cluster, members):
    return max(members, key=lambda m: (stable_hash([m, cluster]), [-ord(c) for c in m]))


def balanced_ids(clusters):
    """Two replica identities that split `clusters` as evenly as the rendezvous hash allows."""
    for k in range(1000):
        ids = [f"bench-{k}-a", f"bench-{k}-b"]
        counts = [sum(owner_of(c, ids) == m for c in clusters) for m in ids]
        if min(counts) >= len(clusters) // 2:
            return ids
    raise RuntimeError("no balanced pair of replica identities found")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak_rss_kib = pid, 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.25):
            try:
                rss, _ = stats.proc_memory_kib(self.pid)
            except OSError:
                return
            self.peak_rss_kib = max(self.peak_rss_kib, rss or 0)


class Controller:
    """One `ferry controller` process."""

    def __init__(self, binary, kubeconfig, work, ns, args, name):
        self.port = free_port()
        env = dict(os.environ, KUBECONFIG=str(kubeconfig), FERRY_LOG="info")
        env["PATH"] = f"{REPO / 'target/tools/bin'}:{env['PATH']}"
        self.log_path = work / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(binary), "controller", "--namespace", ns, "--allow-file-repos",
             "--metrics-listen", f"127.0.0.1:{self.port}", "--cache-dir", str(work / f"{name}-cache"), *args],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.sampler = Sampler(self.proc.pid)
        self.sampler.start()
        wait_until(f"{name}'s /metrics", self._up, 60, 0.1)

    def _up(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"ferry controller exited ({self.proc.returncode}); see {self.log_path}")
        try:
            self.metrics()
            return True
        except OSError:
            return False

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as r:
            return stats.parse_metrics(r.read().decode())

    def value(self, name, **match):
        return stats.metric_sum(self.metrics(), name, **match) or 0.0

    def report(self):
        rss, hwm = stats.proc_memory_kib(self.proc.pid)
        samples = self.metrics()
        owned = sorted(
            labels["cluster"] for n, labels, v in samples if n == "ferry_shard_reconciles_total" and v > 0
        )
        return {
            "peak_rss_mib": round(max(hwm, self.sampler.peak_rss_kib) / 1024, 1),
            "cpu_seconds": round(stats.proc_cpu_seconds(self.proc.pid), 2),
            "kube_requests": stats.metric_sum(samples, "ferry_kube_requests_total"),
            "syncs": stats.metric_sum(samples, "ferry_app_sync_total"),
            "clusters_reconciled": owned,
        }

    def stop(self):
        self.sampler.stop.set()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def register_cluster(kube, ns, name, kubeconfig):
    remote = Kube(kubeconfig)
    config = {"bearerToken": remote.token, "tlsClientConfig": {"caData": base64.b64encode(open(remote._ca_file, "rb").read()).decode()}}
    kube.request("POST", f"/api/v1/namespaces/{ns}/secrets", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": f"cluster-{name}", "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
        "stringData": {"name": name, "server": remote.server, "config": json.dumps(config)},
    })
    return remote.server


def ensure_namespace(kube, ns):
    try:
        kube.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    except ApiError as e:
        if e.status != 409:
            raise


def delete_namespace(kube, ns):
    try:
        kube.request("DELETE", f"/api/v1/namespaces/{ns}")
    except ApiError as e:
        if e.status != 404:
            raise
    wait_until(f"namespace {ns} deleted", lambda: kube.get_opt(f"/api/v1/namespaces/{ns}") is None, 600, 0.5)


def application(i, repo_url, server, dest_ns, ns):
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": f"app-{i:05d}", "namespace": ns},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "targetRevision": "main", "path": f"manifests/app-{i:05d}"},
            "destination": {"server": server, "namespace": dest_ns},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }


def all_synced(kube, ns, n):
    apps = kube.get(f"/apis/argoproj.io/v1alpha1/namespaces/{ns}/applications")["items"]
    if len(apps) < n:
        return False
    for a in apps:
        st = a.get("status") or {}
        if (st.get("sync") or {}).get("status") != "Synced" or (st.get("health") or {}).get("status") != "Healthy":
            return False
    return True


def one_setup(args, setup, replicas, kubes, kubeconfigs, servers, repo_url, work):
    ns, dest_ns = f"ferry-{setup}", f"bench-{setup}"
    main = kubes[0]
    kenv = dict(os.environ, KUBECONFIG=str(kubeconfigs[0]))
    run([str(args.ferry), "install", "--namespace", ns], env=kenv)
    for k, kube in enumerate(kubes):
        ensure_namespace(kube, dest_ns)
        if k > 0:
            register_cluster(main, ns, f"shard-{k}", kubeconfigs[k])
    procs = []
    ids = balanced_ids(servers) if replicas > 1 else [None]
    try:
        for rid in ids:
            extra = ["--workers", str(args.workers), "--poll-interval", f"{args.poll_interval}s"]
            if rid:
                extra += ["--replicas", str(replicas), "--replica-id", rid]
            procs.append(Controller(args.ferry, kubeconfigs[0], work, ns, extra, rid or f"single-{setup}"))
        if replicas > 1:
            say(f"{setup}: waiting for {replicas} replicas past their Lease warm-up")
            wait_until("replicas active", lambda: all(
                p.value("ferry_shard_active") == 1 and p.value("ferry_shard_live_replicas") == replicas for p in procs
            ), 120, 0.2)
        say(f"{setup}: creating {args.n} Applications over {len(servers)} clusters")
        t0 = time.monotonic()
        for i in range(args.n):
            main.request("POST", f"/apis/argoproj.io/v1alpha1/namespaces/{ns}/applications",
                         application(i, repo_url, servers[i % len(servers)], dest_ns, ns))
        wait_until("all apps Synced and Healthy", lambda: all_synced(main, ns, args.n), args.sync_timeout, 0.5)
        sync_s = time.monotonic() - t0
        say(f"{setup}: all {args.n} apps Synced and Healthy in {sync_s:.2f}s")
        time.sleep(2)
        drift = []
        for k in range(args.drifts):
            i = (k * 53 + 2) % args.n
            kube = kubes[i % len(kubes)]
            path = f"/api/v1/namespaces/{dest_ns}/configmaps/app-{i:05d}-config"
            t = time.monotonic()
            kube.merge_patch(path, {"data": {"revision": f"drift-{k}"}})
            wait_until(f"app-{i:05d} drift reverted", lambda: kube.get(path)["data"]["revision"] == "0", 120, 0.02)
            drift.append(time.monotonic() - t)
            time.sleep(0.3)
        lat = stats.summarize(drift)
        say(f"{setup}: drift-to-reverted p50 {lat['p50_s']}s p95 {lat['p95_s']}s")
        per_process = {(rid or "single"): p.report() for rid, p in zip(ids, procs)}
        return {
            "replicas": replicas,
            "initial_sync_s": round(sync_s, 3),
            "drift_to_reverted": lat,
            "processes": per_process,
            "peak_rss_mib_max": max(p["peak_rss_mib"] for p in per_process.values()),
            "cpu_seconds_total": round(sum(p["cpu_seconds"] for p in per_process.values()), 2),
        }
    finally:
        for p in procs:
            p.stop()
        for kube in kubes:
            delete_namespace(kube, dest_ns)
        delete_namespace(main, ns)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=300, help="Applications, spread over the three clusters")
    p.add_argument("--ferry", type=Path, default=REPO / "target/release/ferry")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--poll-interval", type=int, default=30)
    p.add_argument("--drifts", type=int, default=15)
    p.add_argument("--sync-timeout", type=int, default=1800)
    p.add_argument("--out-dir", type=Path, default=REPO / "bench/results")
    p.add_argument("--note", default="")
    p.add_argument("--quick", action="store_true", help="3 drifts: checks that it runs")
    args = p.parse_args()
    if args.quick:
        args.drifts = min(args.drifts, 3)
    if not args.ferry.exists():
        sys.exit(f"bench: {args.ferry} does not exist (cargo build --release -p ferry)")
    work = Path(tempfile.mkdtemp(prefix="ferry-bench-scaleout-"))
    date = datetime.datetime.now(datetime.timezone.utc)
    clusters = [work / f"cluster-{k}" for k in range(3)]
    env = dict(os.environ, TESTENV_OWNER_PID=str(os.getpid()))
    try:
        for c in clusters:
            say(f"starting a control plane in {c}")
            run([str(REPO / "scripts/local-cluster.sh"), "up", str(c)], env=env)
        kubeconfigs = [c / "kubeconfig" for c in clusters]
        kubes = [Kube(k) for k in kubeconfigs]
        servers = [IN_CLUSTER] + [k.server for k in kubes[1:]]
        repo = work / "repo"
        repo.mkdir()
        for i in range(args.n):
            folder = repo / "manifests" / f"app-{i:05d}"
            folder.mkdir(parents=True)
            cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"app-{i:05d}-config"},
                  "data": {"revision": "0", "payload": PAYLOAD}}
            (folder / "configmap.yaml").write_text(json.dumps(cm, indent=2) + "\n")
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"bench: {args.n} apps")
        repo_url = f"file://{repo}"
        one = one_setup(args, "one", 1, kubes, kubeconfigs, servers, repo_url, work)
        two = one_setup(args, "two", 2, kubes, kubeconfigs, servers, repo_url, work)
    finally:
        for c in clusters:
            run([str(REPO / "scripts/local-cluster.sh"), "down", str(c)], check=False)
    ratio = lambda a, b: stats.ratio(a, b, 2)  # noqa: E731
    result = {
        "benchmark": "scale-out",
        "date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "n": args.n,
        "clusters": 3,
        "profile": "configmap",
        "note": args.note,
        "settings": {"workers": args.workers, "poll_interval_s": args.poll_interval, "drifts": args.drifts,
                     "lease_duration_s": 15},
        "one_replica": one,
        "two_replicas": two,
        "ratios_two_to_one": {
            "initial_sync": ratio(two["initial_sync_s"], one["initial_sync_s"]),
            "drift_p50": ratio(two["drift_to_reverted"]["p50_s"], one["drift_to_reverted"]["p50_s"]),
            "drift_p95": ratio(two["drift_to_reverted"]["p95_s"], one["drift_to_reverted"]["p95_s"]),
            "peak_rss_per_process": ratio(two["peak_rss_mib_max"], one["peak_rss_mib_max"]),
            "cpu_seconds_total": ratio(two["cpu_seconds_total"], one["cpu_seconds_total"]),
        },
        "machine": machine(args.ferry),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"{date.strftime('%Y-%m-%dT%H%M%SZ')}-scaleout-n{args.n}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    say(f"wrote {out}: {json.dumps(result['ratios_two_to_one'])}")
    subprocess.run(["rm", "-rf", str(work)], check=False)
    say(f"wrote {report.write(args.out_dir)}")


if __name__ == "__main__":
    main()
