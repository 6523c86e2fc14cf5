#!/usr/bin/env python3
"""The engine benchmark: ferry against a fresh local control plane, with kubectl and a plain
concurrent server-side-apply loop as baselines on the same files. See bench/README.md.

    python3 bench/engine/run.py --n 1 100 1000 --profile configmap

For each N: start a control plane, generate a Git repository with an App-of-Apps root and N
child apps (above 1,000, the root manages group apps of 1,000 children each; profile
`configmap`: one 2 KB ConfigMap per app, as in Argo CD's scalability tests; `deployment`: a
Deployment, a Service and a 2 KB ConfigMap per app), run the baselines, then ferry, and measure

- time from creating the root app to every app Synced and Healthy;
- commit-to-applied latency of one changed app, with a webhook and with polling;
- drift-to-reverted latency (a patch of a managed ConfigMap, or `scale` of a Deployment);
- ferry's peak RSS, CPU seconds, CPU over an idle period, API requests per app per sync;
- what one commit that changes one app costs (renders, reconciles, API requests).

Results: bench/results/<date>-<profile>-n<N>.json (or --out-dir), then bench/results/README.md
is regenerated from every result file (report.py). Only the Python 3.11 standard library.
"""

import argparse
import concurrent.futures
import datetime
import hashlib
import hmac
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402
import stats  # noqa: E402
from kube import ApiError, Kube, object_path  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FERRY_NS = "ferry"
APPS_NS = "bench-apps"
WEBHOOK_SECRET = "bench-webhook-secret"
WEBHOOK_KEY = b"bench-hmac-key"


def say(msg):
    print(f"==> [bench] {msg}", file=sys.stderr, flush=True)


def run(cmd, env=None, cwd=None, check=True, capture=True):
    r = subprocess.run(cmd, env=env, cwd=cwd, text=True, capture_output=capture, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}): {r.stderr[-2000:]}")
    return r


def wait_until(what, cond, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --- the Git repository -----------------------------------------------------------------------

PAYLOAD = ("0123456789abcdef" * 128)[:2000]  # 2 KB of data, as in Argo CD's ConfigMap tests


def app_name(i):
    return f"app-{i:05d}"


def app_objects(i, profile, revision="0"):
    """The objects of child app i, as JSON (which is YAML)."""
    name = app_name(i)
    objs = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-config", "labels": {"app.kubernetes.io/name": name}},
            "data": {"revision": revision, "payload": PAYLOAD},
        }
    ]
    if profile == "deployment":
        labels = {"app.kubernetes.io/name": name}
        objs += [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {
                                    "name": "app",
                                    "image": "registry.example.com/bench/app:1.0.0",
                                    "ports": [{"name": "http", "containerPort": 8080}],
                                    "envFrom": [{"configMapRef": {"name": f"{name}-config"}}],
                                }
                            ]
                        },
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "selector": labels,
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                },
            },
        ]
    return objs


def write_app_files(repo, i, profile, revision="0"):
    folder = repo / "manifests" / app_name(i)
    folder.mkdir(parents=True, exist_ok=True)
    for obj in app_objects(i, profile, revision):
        fname = f"{obj['kind'].lower()}.yaml"
        (folder / fname).write_text(json.dumps(obj, indent=2) + "\n")


def application(name, repo_url, path, dest_ns):
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": FERRY_NS},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "targetRevision": "main", "path": path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": dest_ns},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }


def git(repo, *args):
    env = dict(os.environ)
    env.update(
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.com",
        GIT_CONFIG_NOSYSTEM="1",
        HOME=str(repo.parent),
    )
    return run(["git", "-C", str(repo), *args], env=env).stdout.strip()


# Children per App-of-Apps: above this, the root manages group apps of this many children each
# (one Application's status lists every child; 10,000 of them would not fit in one object).
FANOUT = 1000


def groups(n):
    """The number of group apps between the root and N children (0: the root has them all)."""
    return 0 if n <= FANOUT else -(-n // FANOUT)


def apps_total(n):
    """Every app the benchmark creates: the children, the groups and the root."""
    return n + groups(n) + 1


def generate_repo(repo, n, profile):
    repo_url = f"file://{repo}"
    (repo / "apps" / "children").mkdir(parents=True)
    for i in range(n):
        write_app_files(repo, i, profile)
        child = application(app_name(i), repo_url, f"manifests/{app_name(i)}", APPS_NS)
        folder = repo / "apps" / "children"
        if groups(n):
            folder = folder / f"group-{i // FANOUT:03d}"
            folder.mkdir(exist_ok=True)
        (folder / f"{app_name(i)}.yaml").write_text(json.dumps(child, indent=2) + "\n")
    if groups(n):
        (repo / "apps" / "groups").mkdir()
        for g in range(groups(n)):
            group = application(f"bench-group-{g:03d}", repo_url, f"apps/children/group-{g:03d}", FERRY_NS)
            (repo / "apps" / "groups" / f"group-{g:03d}.yaml").write_text(json.dumps(group, indent=2) + "\n")
        root = application("bench-root", repo_url, "apps/groups", FERRY_NS)
    else:
        root = application("bench-root", repo_url, "apps/children", FERRY_NS)
    (repo / "apps" / "root.yaml").write_text(json.dumps(root, indent=2) + "\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"bench: {n} apps ({profile})")
    return repo_url, root


def commit_change(repo, i, profile, revision):
    write_app_files(repo, i, profile, revision)
    git(repo, "commit", "-q", "-am", f"bench: {app_name(i)} revision {revision}")
    return git(repo, "rev-parse", "HEAD")


# --- baselines ----------------------------------------------------------------------------------


def ensure_namespace(kube, ns):
    try:
        kube.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    except ApiError as e:
        if e.status != 409:
            raise


def delete_namespace(kube, ns, timeout=600):
    try:
        kube.request("DELETE", f"/api/v1/namespaces/{ns}")
    except ApiError as e:
        if e.status != 404:
            raise
    wait_until(f"namespace {ns} to be deleted", lambda: kube.get_opt(f"/api/v1/namespaces/{ns}") is None, timeout, 0.5)


def baselines(kube, kubeconfig, repo, n, profile, threads, kubectl_per_app=True, cp=None,
              kubectl_all=True):
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    out = {}
    manifests = repo / "manifests"

    if kubectl_per_app:
        ns = "bench-kubectl-each"
        ensure_namespace(kube, ns)
        say(f"baseline: kubectl apply --server-side, one invocation per app ({n})")
        t = time.monotonic()
        for i in range(n):
            run(["kubectl", "apply", "--server-side", "-n", ns, "-f", str(manifests / app_name(i))], env=env)
        out["kubectl_per_app_s"] = round(time.monotonic() - t, 3)
        delete_namespace(kube, ns)
    else:
        say(f"baseline: kubectl apply per app skipped (--no-kubectl-per-app; {n} kubectl processes)")
        out["kubectl_per_app_s"] = None

    if kubectl_all:
        ns = "bench-kubectl-all"
        ensure_namespace(kube, ns)
        say("baseline: kubectl apply --server-side, one invocation for all")
        t = time.monotonic()
        run(["kubectl", "apply", "--server-side", "-n", ns, "-R", "-f", str(manifests)], env=env)
        out["kubectl_all_s"] = round(time.monotonic() - t, 3)
        delete_namespace(kube, ns)
    else:
        say("baseline: one kubectl apply for all skipped (--no-kubectl-all)")
        out["kubectl_all_s"] = None

    ns = "bench-ssa-loop"
    ensure_namespace(kube, ns)
    objs = [o for i in range(n) for o in app_objects(i, profile)]
    say(f"baseline: concurrent server-side apply loop ({len(objs)} objects, {threads} threads)")

    def apply_one(obj):
        kube.apply(object_path(obj, ns), obj)

    t = time.monotonic()
    cpu0 = cp.cpu_seconds() if cp else None
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(apply_one, objs))
    out["ssa_loop_s"] = round(time.monotonic() - t, 3)
    # What the API server (and etcd, the controllers) spent on the loop's requests.
    out["ssa_loop_control_plane_cpu_s"] = None if cpu0 is None else round(cp.cpu_seconds() - cpu0, 2)
    out["ssa_loop_threads"] = threads
    out["objects"] = len(objs)
    delete_namespace(kube, ns)
    return out


WRITES_NS = "bench-writes-loop"


def writes_loop(kube, repo, n, profile, threads, status, cp=None):
    """What ferry's initial sync writes, with no engine between the writes: for each child app,
    server-side apply its Application (the parent's write), apply its objects, replace its status
    with the one ferry wrote for a real child (a JSON patch, as ferry does) and create its sync
    Event. The time it takes, on the same control plane, is the API server's own limit for
    ferry's requests; the SSA loop above is the limit for the app's objects alone."""
    ensure_namespace(kube, WRITES_NS)
    children = sorted((repo / "apps" / "children").rglob("app-*.yaml"))[:n]
    status_text = json.dumps(status)
    say(f"baseline: ferry's writes with no engine ({len(children)} apps, 4+ requests each, {threads} threads)")

    def one(path):
        app = json.loads(path.read_text())
        name = app["metadata"]["name"]
        app["metadata"]["namespace"] = WRITES_NS
        base = f"/apis/argoproj.io/v1alpha1/namespaces/{WRITES_NS}/applications/{name}"
        written = kube.apply(base, app, manager="bench-parent")
        i = int(name.split("-")[1])
        for obj in app_objects(i, profile):
            kube.apply(object_path(obj, WRITES_NS), obj)
        kube.request("PATCH", base, [{"op": "add", "path": "/status",
                                      "value": json.loads(status_text.replace("app-00000", name))}],
                     content_type="application/json-patch+json")
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        kube.request("POST", f"/apis/events.k8s.io/v1/namespaces/{WRITES_NS}/events", {
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": f"{name}.{os.urandom(8).hex()}"},
            "eventTime": now, "reportingController": "bench", "reportingInstance": "bench",
            "action": "Sync", "reason": "OperationCompleted", "type": "Normal",
            "note": "Sync operation to 0000000 succeeded: successfully synced (all tasks run)",
            "regarding": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "name": name,
                          "namespace": WRITES_NS, "uid": written["metadata"]["uid"]},
        })

    t = time.monotonic()
    cpu0 = cp.cpu_seconds() if cp else None
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, children))
    seconds = round(time.monotonic() - t, 3)
    # The namespace is left: the cluster is torn down next.
    return {
        "writes_loop_s": seconds,
        "writes_loop_control_plane_cpu_s": None if cpu0 is None else round(cp.cpu_seconds() - cpu0, 2),
        "writes_loop_apps": len(children),
    }


# --- ferry --------------------------------------------------------------------------------------


def mib(kib):
    return None if kib is None else round(kib / 1024, 1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sampler(threading.Thread):
    """Samples ferry's RSS and the machine's CPU while the benchmark runs."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_rss_kib = 0
        # At the sample of the peak: how much was ferry's own (anonymous) memory, and how much
        # the mapped pages of its binary.
        self.peak_parts_kib = (None, None)
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.25):
            try:
                rss, _ = stats.proc_memory_kib(self.pid)
                parts = stats.proc_memory_parts_kib(self.pid)
            except OSError:
                return
            if (rss or 0) > self.peak_rss_kib:
                self.peak_rss_kib = rss
                self.peak_parts_kib = parts


class ControlPlaneSampler(threading.Thread):
    """Samples the RSS of the local control plane's processes (DIR/*.pid: etcd, kube-apiserver,
    the controllers), so a run states what the cluster itself needed next to ferry."""

    def __init__(self, cluster_dir):
        super().__init__(daemon=True)
        self.pids = {}
        for f in sorted(Path(cluster_dir).glob("*.pid")):
            try:
                self.pids[f.stem] = int(f.read_text().strip())
            except ValueError:
                pass
        self.peak_total_kib = 0
        self.peak_kib = dict.fromkeys(self.pids, 0)
        self.stop = threading.Event()

    def sample(self):
        total = 0
        for name, pid in self.pids.items():
            try:
                rss, _ = stats.proc_memory_kib(pid)
            except OSError:
                continue
            total += rss or 0
            self.peak_kib[name] = max(self.peak_kib[name], rss or 0)
        self.peak_total_kib = max(self.peak_total_kib, total)

    def run(self):
        while not self.stop.wait(1.0):
            self.sample()

    def cpu_seconds(self):
        """CPU time (user + system) the control plane's processes have used so far."""
        total = 0.0
        for pid in self.pids.values():
            try:
                total += stats.proc_cpu_seconds(pid)
            except OSError:
                continue
        return total

    def summary(self):
        self.sample()
        return {
            "peak_rss_mib": round(self.peak_total_kib / 1024, 1),
            "peak_rss_mib_by_process": {k: round(v / 1024, 1) for k, v in self.peak_kib.items()},
        }


class Ferry:
    def __init__(self, binary, kubeconfig, work, workers, poll_interval):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, KUBECONFIG=str(kubeconfig), RUST_LOG=os.environ.get("BENCH_RUST_LOG", "info"))
        env["PATH"] = f"{REPO / 'target/tools/bin'}:{env['PATH']}"
        self.log_path = work / "ferry.log"
        self.log = open(self.log_path, "w")
        # BENCH_FERRY_WRAPPER runs ferry under a profiler, e.g. "heaptrack -o /tmp/ferry".
        wrapper = os.environ.get("BENCH_FERRY_WRAPPER", "").split()
        self.proc = subprocess.Popen(
            [
                *wrapper,
                str(binary), "run", "--namespace", FERRY_NS,
                "--poll-interval", f"{poll_interval}s",
                "--listen", f"127.0.0.1:{self.port}",
                "--insecure-no-auth",
                "--allow-file-repos",  # the benchmark's repository is local (file://)
                "--webhook-secret", WEBHOOK_SECRET,
                "--cache-dir", str(work / "ferry-cache"),
                "--workers", str(workers),
            ],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
            # Its own process group: stopping it stops a profiler's ferry too.
            start_new_session=True,
        )
        self.sampler = Sampler(self.proc.pid)
        self.sampler.start()
        wait_until("ferry's /readyz", self._ready, 60, 0.1)

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"ferry exited ({self.proc.returncode}); see {self.log_path}")
        try:
            with urllib.request.urlopen(f"{self.base}/readyz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def metrics(self):
        with urllib.request.urlopen(f"{self.base}/metrics", timeout=30) as r:
            return stats.parse_metrics(r.read().decode())

    def cpu_seconds(self):
        return stats.proc_cpu_seconds(self.proc.pid)

    def memory(self):
        return stats.proc_memory_kib(self.proc.pid)

    def webhook(self, repo_url, branch="main"):
        body = json.dumps({
            "ref": f"refs/heads/{branch}",
            "repository": {"clone_url": repo_url, "html_url": repo_url, "default_branch": branch},
        }).encode()
        sig = hmac.new(WEBHOOK_KEY, body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(
            f"{self.base}/api/webhook", data=body, method="POST",
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": "push",
                "X-Hub-Signature-256": f"sha256={sig}",
            },
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            if r.status >= 300:
                raise RuntimeError(f"webhook answered {r.status}")

    def stop(self):
        self.sampler.stop.set()
        # The whole group: with BENCH_FERRY_WRAPPER, ferry is the wrapper's child, and signalling
        # only the wrapper left ferry running (and polling) after the run.
        def signal_group(sig):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            signal_group(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                signal_group(signal.SIGKILL)
                self.proc.wait()
        signal_group(signal.SIGKILL)
        self.log.close()


COUNTERS = {
    "kube_requests": ("ferry_kube_requests_total", {}),
    "renders": ("ferry_render_seconds_count", {}),
    "reconciles": ("ferry_app_reconcile_seconds_count", {}),
    "syncs": ("ferry_app_sync_total", {}),
    "git": ("ferry_git_seconds_count", {}),
    "untouched": ("ferry_app_untouched_total", {}),
}


def counters(ferry, kube):
    samples = ferry.metrics()
    out = {k: stats.metric_sum(samples, name, **match) for k, (name, match) in COUNTERS.items()}
    # ferry labels verbs as the API server names them, in upper case (APPLY is a server-side
    # apply); the report's columns keep their lower-case names.
    for verb in ("get", "list", "watch", "create", "patch", "apply", "update", "delete"):
        out[f"kube_requests_{verb}"] = stats.metric_sum(
            samples, "ferry_kube_requests_total", verb=verb.upper()
        )
    # The same by verb and resource (builds that label the resource), flat so that
    # counter_delta subtracts them like the rest: "kube_requests_by GET configmaps".
    for group, value in stats.sums_by(samples, "ferry_kube_requests_total", "verb", "resource").items():
        out[f"kube_requests_by {group}"] = value
    out["cpu_s"] = ferry.cpu_seconds()
    # ferry's requests as the API server counts them, minus this harness's own: an estimate
    # that works whether or not the ferry build counts its requests.
    harness = kube.requests + 1
    out["apiserver_requests_est"] = stats.apiserver_requests(stats.parse_metrics(kube.text("/metrics"))) - harness
    return out


def counter_delta(after, before):
    out = {}
    for k in after:
        d = stats.delta(after[k], before.get(k))
        out[k] = None if d is None else round(d, 3)
    return out


def list_apps(kube, page=500):
    """Every Application, in pages: one LIST of 10,000 Applications is about 50 MB that the API
    server builds at once, and the harness asks every half second while it waits."""
    base = f"/apis/argoproj.io/v1alpha1/namespaces/{FERRY_NS}/applications?limit={page}"
    items, cont = [], None
    while True:
        got = kube.get(base + (f"&continue={urllib.parse.quote(cont)}" if cont else ""))
        items.extend(got["items"])
        cont = (got.get("metadata") or {}).get("continue")
        if not cont:
            return items


def app_state(app):
    st = app.get("status") or {}
    return (
        (st.get("sync") or {}).get("status"),
        (st.get("health") or {}).get("status"),
        (st.get("sync") or {}).get("revision"),
    )


def all_settled(kube, expected, revision=None, changed=None, apps=None):
    """Every one of `expected` apps is Synced and Healthy, and none carries a refresh request;
    when `revision` is given, the apps named in `changed` (every app when None) are at it. Apps
    whose inputs a commit did not change stay at the commit that last changed them. `apps`: a
    listing already made."""
    if apps is None:
        apps = list_apps(kube)
    if len(apps) < expected:
        return False
    for a in apps:
        sync, health, rev = app_state(a)
        if sync != "Synced" or health != "Healthy":
            return False
        in_changed = changed is None or a["metadata"]["name"] in changed
        if revision and in_changed and rev != revision:
            return False
        if "argocd.argoproj.io/refresh" in ((a["metadata"].get("annotations")) or {}):
            return False
    return True


# --- one N ----------------------------------------------------------------------------------------


def measure_latencies(kube, ferry, repo, repo_url, n, profile, count, mode, settle_timeout):
    """`count` commits, each changing one app; the time from the commit to the changed ConfigMap
    in the cluster, with a webhook (`mode` = webhook) or waiting for the poll."""
    latencies = []
    first_cost = None
    for k in range(count):
        i = (k * 37 + 1) % n
        value = f"{mode}-{k}"
        before = counters(ferry, kube) if k == 0 else None
        untouched0 = stats.metric_sum(ferry.metrics(), "ferry_app_untouched_total")
        t0 = time.monotonic()
        sha = commit_change(repo, i, profile, value)
        if mode == "webhook":
            ferry.webhook(repo_url)
        path = object_path(app_objects(i, profile)[0], APPS_NS)
        wait_until(
            f"{app_name(i)} to apply {value}",
            lambda: ((kube.get_opt(path) or {}).get("data") or {}).get("revision") == value,
            settle_timeout, 0.02,
        )
        latencies.append(time.monotonic() - t0)
        # Settle: every app looked at since the commit and nothing left to do. A build that
        # refreshes only the apps a commit changed (it has ferry_app_untouched_total) leaves the
        # apps it did not touch at their revision and counts each once: every one of the N + 1
        # apps is then either at the new commit or counted. An older build moves every app to
        # the new commit.
        if untouched0 is None:
            settled = lambda: all_settled(kube, apps_total(n), sha)
        else:
            def settled():
                apps = list_apps(kube)
                at_sha = sum(1 for a in apps if app_state(a)[2] == sha)
                looked = stats.metric_sum(ferry.metrics(), "ferry_app_untouched_total") - untouched0
                return all_settled(kube, apps_total(n), sha, {app_name(i)}, apps) and at_sha + looked >= apps_total(n)
        wait_until("every app to settle at the new commit", settled, settle_timeout, 0.5)
        if k == 0:
            time.sleep(1.0)
            first_cost = counter_delta(counters(ferry, kube), before)
    return stats.summarize(latencies), first_cost


def measure_drift(kube, n, profile, count, timeout):
    latencies = []
    for k in range(count):
        i = (k * 53 + 2) % n
        name = app_name(i)
        if profile == "deployment":
            path = f"/apis/apps/v1/namespaces/{APPS_NS}/deployments/{name}"
            t0 = time.monotonic()
            kube.merge_patch(f"{path}/scale", {"spec": {"replicas": 3}})
            wait_until(f"{name} to be scaled back", lambda: kube.get(path)["spec"]["replicas"] == 1, timeout, 0.02)
        else:
            path = f"/api/v1/namespaces/{APPS_NS}/configmaps/{name}-config"
            want = kube.get(path)["data"]["revision"]
            t0 = time.monotonic()
            kube.merge_patch(path, {"data": {"revision": f"drift-{k}"}})
            wait_until(f"{name} drift to be reverted", lambda: kube.get(path)["data"]["revision"] == want, timeout, 0.02)
        latencies.append(time.monotonic() - t0)
        time.sleep(0.3)
    return stats.summarize(latencies)


def bench_one(args, n, work):
    say(f"N = {n}, profile {args.profile}: starting a control plane")
    cluster = work / "cluster"
    env = dict(os.environ, TESTENV_OWNER_PID=str(os.getpid()))
    run([str(REPO / "scripts/local-cluster.sh"), "up", str(cluster)], env=env)
    kubeconfig = cluster / "kubeconfig"
    kube = Kube(kubeconfig)
    cp = ControlPlaneSampler(cluster)
    cp.start()
    ferry = None
    load_start = os.getloadavg()
    busy0 = stats.system_cpu_busy()
    try:
        repo = work / "repo"
        repo.mkdir()
        repo_url, root = generate_repo(repo, n, args.profile)
        result = {
            "benchmark": "engine",
            "n": n,
            "profile": args.profile,
            "objects_per_app": len(app_objects(0, args.profile)),
            "quick": args.quick,
            "kubernetes_version": kube.get("/version").get("gitVersion"),
        }
        if args.sync_only:
            result["baselines"] = {"kubectl_per_app_s": None, "kubectl_all_s": None, "ssa_loop_s": None}
        else:
            result["baselines"] = baselines(kube, kubeconfig, repo, n, args.profile, args.ssa_threads,
                                            kubectl_per_app=not args.no_kubectl_per_app, cp=cp,
                                            kubectl_all=not args.no_kubectl_all)

        kenv = dict(os.environ, KUBECONFIG=str(kubeconfig))
        run([str(args.ferry), "install", "--namespace", FERRY_NS], env=kenv)
        ensure_namespace(kube, APPS_NS)
        kube.request("POST", f"/api/v1/namespaces/{FERRY_NS}/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": WEBHOOK_SECRET},
            "stringData": {"webhook.github.secret": WEBHOOK_KEY.decode()},
        })

        say(f"starting ferry ({args.workers} workers, poll every {args.poll_interval}s)")
        ferry = Ferry(args.ferry, kubeconfig, work, args.workers, args.poll_interval)
        start_counters = counters(ferry, kube)
        say(f"creating the root app; waiting for {apps_total(n)} apps Synced and Healthy")
        t0 = time.monotonic()
        cp_cpu0 = cp.cpu_seconds()
        kube.request("POST", f"/apis/argoproj.io/v1alpha1/namespaces/{FERRY_NS}/applications", root)
        interval = max(0.1, min(1.0, n / 1000))
        wait_until("every app Synced and Healthy", lambda: all_settled(kube, apps_total(n)), args.sync_timeout, interval)
        sync_s = time.monotonic() - t0
        cp_cpu = round(cp.cpu_seconds() - cp_cpu0, 2)
        initial = counter_delta(counters(ferry, kube), start_counters)
        say(f"all {apps_total(n)} apps Synced and Healthy in {sync_s:.2f}s")
        rss_after_sync, _ = ferry.memory()
        b = result["baselines"]
        reqs = initial["kube_requests"]
        est = initial["apiserver_requests_est"]
        result["initial_sync"] = {
            "seconds": round(sync_s, 3),
            "apps": apps_total(n),
            "group_apps": groups(n),
            "apps_per_second": round(apps_total(n) / sync_s, 1),
            "rss_mib_after": round(rss_after_sync / 1024, 1),
            # The control plane's CPU while ferry synced (the harness's polling included):
            # with the loop's, it says how much of the time the API server was the limit.
            "control_plane_cpu_s": cp_cpu,
            "counters": initial,
            "kube_requests_per_app": stats.ratio(reqs, apps_total(n)),
            "kube_requests_per_sync": stats.ratio(reqs, initial["syncs"]),
            "apiserver_requests_per_app_est": stats.ratio(est, apps_total(n), 1),
            "ratio_to_ssa_loop": stats.ratio(sync_s, b["ssa_loop_s"]),
            "ratio_to_kubectl_all": stats.ratio(sync_s, b["kubectl_all_s"]),
            "ratio_to_kubectl_per_app": stats.ratio(sync_s, b["kubectl_per_app_s"]),
        }

        # The status ferry wrote for one child: the writes loop writes it to its apps.
        child_status = kube.get(f"/apis/argoproj.io/v1alpha1/namespaces/{FERRY_NS}/applications/{app_name(0)}")["status"]
        if args.keep:
            (work / "child-status.json").write_text(json.dumps(child_status, indent=2) + "\n")

        def run_writes_loop():
            nonlocal ferry
            ferry.stop()
            if args.keep:
                say(f"ferry's log: {ferry.log_path}")
            ferry = None
            if args.no_writes_loop:
                return
            b.update(writes_loop(kube, repo, n, args.profile, args.ssa_threads, child_status, cp=cp))
            result["initial_sync"]["ratio_to_writes_loop"] = stats.ratio(sync_s, b["writes_loop_s"])

        if args.sync_only:
            time.sleep(5)
            _, hwm = ferry.memory()
            result["initial_sync"]["peak_rss_mib"] = mib(max(hwm, ferry.sampler.peak_rss_kib))
            result["initial_sync"]["peak_rss_anon_mib"] = mib(ferry.sampler.peak_parts_kib[0])
            run_writes_loop()
            return result, kubeconfig
        time.sleep(min(args.poll_interval, 5))

        def rss_mib():
            """ferry's resident size now: with the one after the sync, it shows which phase grew."""
            return mib(ferry.memory()[0])

        say(f"commit-to-applied with a webhook ({args.commits} commits)")
        lat, cost = measure_latencies(kube, ferry, repo, repo_url, n, args.profile, args.commits, "webhook", args.sync_timeout)
        result["commit_to_applied_webhook"] = lat | {"first_commit_cost": cost, "rss_mib_after": rss_mib()}
        say(f"  p50 {lat['p50_s']}s p95 {lat['p95_s']}s")
        say(f"commit-to-applied by polling every {args.poll_interval}s ({args.commits} commits)")
        lat, cost = measure_latencies(kube, ferry, repo, repo_url, n, args.profile, args.commits, "poll", args.sync_timeout)
        result["commit_to_applied_poll"] = lat | {"first_commit_cost": cost, "poll_interval_s": args.poll_interval,
                                                  "rss_mib_after": rss_mib()}
        say(f"  p50 {lat['p50_s']}s p95 {lat['p95_s']}s")
        say(f"drift-to-reverted ({args.drifts} changes)")
        lat = measure_drift(kube, n, args.profile, args.drifts, 120)
        result["drift_to_reverted"] = lat | {"rss_mib_after": rss_mib()}
        say(f"  p50 {lat['p50_s']}s p95 {lat['p95_s']}s")

        say(f"idle for {args.idle}s")
        wait_until("every app to settle", lambda: all_settled(kube, apps_total(n)), args.sync_timeout, 0.5)
        time.sleep(2)
        before = counters(ferry, kube)
        time.sleep(args.idle)
        idle = counter_delta(counters(ferry, kube), before)
        result["idle"] = {
            "seconds": args.idle,
            "poll_interval_s": args.poll_interval,
            "cpu_seconds": idle["cpu_s"],
            "cpu_percent_of_one_core": round(100 * idle["cpu_s"] / args.idle, 2),
            # Idle work grows with N / poll interval: the cost of one look at an unchanged app.
            "cpu_ms_per_reconcile": stats.ratio(1000 * idle["cpu_s"], idle["reconciles"], 3),
            "apiserver_requests_per_reconcile_est": stats.ratio(idle["apiserver_requests_est"], idle["reconciles"], 2),
            "counters": idle,
            "rss_mib_after": rss_mib(),
        }
        say(f"  {result['idle']['cpu_percent_of_one_core']}% of one core")

        rss, hwm = ferry.memory()
        result["ferry"] = {
            "peak_rss_mib": round(max(hwm, ferry.sampler.peak_rss_kib) / 1024, 1),
            "rss_mib_at_end": round(rss / 1024, 1),
            "peak_rss_anon_mib": mib(ferry.sampler.peak_parts_kib[0]),
            "peak_rss_file_mib": mib(ferry.sampler.peak_parts_kib[1]),
            "cpu_seconds_total": round(ferry.cpu_seconds(), 2),
            "workers": args.workers,
            "kube_requests_total": counters(ferry, kube)["kube_requests"],
        }
        run_writes_loop()
        # What the local control plane itself needed over the whole run (baselines included).
        result["control_plane"] = cp.summary()
        busy1 = stats.system_cpu_busy()
        result["machine_load"] = {
            "loadavg_at_start": [round(x, 2) for x in load_start],
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            "machine_cpu_busy_percent": round(100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 1),
        }
        return result, kubeconfig
    finally:
        if ferry:
            ferry.stop()
            if args.keep:
                say(f"ferry's log: {ferry.log_path}")
        run([str(REPO / "scripts/local-cluster.sh"), "down", str(cluster)], check=False)


def machine(ferry_bin):
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    for line in open("/proc/meminfo", encoding="ascii"):
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])

    def version(cmd):
        r = run(cmd, check=False)
        return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else None

    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_mib": mem_kib // 1024,
        "kernel": platform.release(),
        "os": platform.platform(),
        "versions": {
            "ferry": version([str(ferry_bin), "--version"]),
            "kubectl": version(["kubectl", "version", "--client"]),
            "git": version(["git", "--version"]),
            "python": platform.python_version(),
        },
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[1, 100, 1000], help="numbers of child apps")
    p.add_argument("--profile", choices=["configmap", "deployment"], default="configmap")
    p.add_argument("--ferry", type=Path, default=REPO / "target/release/ferry")
    p.add_argument("--workers", type=int, default=8, help="ferry run --workers")
    p.add_argument("--poll-interval", type=int, default=5, help="ferry run --poll-interval, seconds")
    p.add_argument("--commits", type=int, default=20, help="commits per latency series")
    p.add_argument("--drifts", type=int, default=20, help="drift changes")
    p.add_argument("--idle", type=int, default=60, help="seconds of idling measured")
    p.add_argument("--ssa-threads", type=int, default=16, help="threads of the server-side-apply loop")
    p.add_argument("--sync-timeout", type=int, default=1800)
    p.add_argument("--quick", action="store_true", help="few samples (3 commits, 3 drifts, 10 s idle): checks that it runs")
    p.add_argument("--out-dir", type=Path, default=REPO / "bench/results")
    p.add_argument("--note", default="", help="a remark stored with the results (e.g. what else ran)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--no-kubectl-per-app", action="store_true",
                   help="skip the one-kubectl-per-app baseline (N processes; 20+ min at N = 10,000)")
    p.add_argument("--no-kubectl-all", action="store_true",
                   help="skip the one-kubectl-for-everything baseline (about 15 min at N = 10,000 here)")
    p.add_argument("--no-writes-loop", action="store_true",
                   help="skip the baseline of ferry's own writes with no engine (run after ferry stops)")
    p.add_argument("--sync-only", action="store_true",
                   help="no baselines, stop after the initial sync (for profiling; results not written)")
    args = p.parse_args()
    if args.quick:
        args.commits, args.drifts, args.idle = min(args.commits, 3), min(args.drifts, 3), min(args.idle, 10)
    if not args.ferry.exists():
        sys.exit(f"bench: {args.ferry} does not exist (cargo build --release -p ferry)")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for n in args.n:
        work = Path(tempfile.mkdtemp(prefix=f"ferry-bench-n{n}-"))
        date = datetime.datetime.now(datetime.timezone.utc)
        result, kubeconfig = bench_one(args, n, work)
        if args.sync_only:
            say(f"initial sync only: {json.dumps(result['initial_sync'])}")
            say(f"baselines: {json.dumps(result['baselines'])}")
            continue
        result["date"] = date.strftime("%Y-%m-%dT%H:%M:%SZ")
        result["note"] = args.note
        result["settings"] = {
            "workers": args.workers, "poll_interval_s": args.poll_interval, "commits": args.commits,
            "drifts": args.drifts, "idle_s": args.idle, "ssa_threads": args.ssa_threads,
        }
        result["machine"] = machine(args.ferry)
        out = args.out_dir / f"{date.strftime('%Y-%m-%dT%H%M%SZ')}-{args.profile}-n{n}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        say(f"wrote {out}")
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=False)
    table = report.write(args.out_dir)
    say(f"wrote {table}")


if __name__ == "__main__":
    main()
