#!/usr/bin/env python3
"""Benchmark: `ferry preview` of N apps between two commits, against rendering each app once
with the tools directly.

    bench/preview/run.py [--n 100] [--changed 5] [--runs 5] [--ferry PATH] [--quick]
                         [--out-dir bench/results]

Generates a Git repository: `apps/root.yaml` (an App-of-Apps root) whose children
`apps/children/app-NNN.yaml` are N Applications of three kinds in turn: a plain directory
(a Deployment, a Service, a ConfigMap), a Kustomize overlay on a base of its own, and the shared
local chart `charts/web` with a values file per app (`values/app-NNN.yaml`). The base commit holds all of it; the head
commit changes CHANGED apps (an image tag in a plain directory, a patch in an overlay, a values
file), spread over the three kinds. Then it times, on the same machine and files:

  preview    ferry preview --base base --head HEAD apps -o json    (median of RUNS)
  baseline   each app of head rendered once, one after the other, as a user would in a loop:
             plain files read (cat), `kustomize build DIR`, `helm template NAME CHART -f VALUES`
             (median of RUNS)

and reports the ratio preview / baseline, and ferry's renders per app (from the JSON: an app
whose inputs are the same at both commits is rendered once, so renders per app is about
1 + CHANGED / N; rendering every app at both commits would be 2). Without `--quick` the result
goes to OUT_DIR/preview-<UTC date>.json. Timings are never asserted; `--quick` (what
scripts/test.sh runs, with a small N) checks that the benchmark works and that no unchanged app
was rendered twice.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
URL = "https://git.example/bench/gitops.git"


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def app(name: str, path: str, extra: str = "") -> str:
    return f"""apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
spec:
  project: default
  source:
    repoURL: {URL}
    targetRevision: main
    path: {path}
{extra}  destination:
    server: https://kubernetes.default.svc
    namespace: {name}
"""


def deployment(name: str, image: str, replicas: int = 2) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: app
          image: {image}
          ports: [{{name: http, containerPort: 8080}}]
"""


def service(name: str) -> str:
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"""


def configmap(name: str, value: str) -> str:
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-settings
data:
  mode: {value}
"""


def kind_of(i: int) -> str:
    return ("plain", "kustomize", "helm")[i % 3]


def generate(root: Path, n: int) -> list:
    """The base commit's files; returns [(name, kind)]."""
    write(root, "apps/root.yaml", app("root", "apps/children"))
    write(root, "charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
    write(root, "charts/web/values.yaml", "image: example/web:1.0.0\nreplicas: 1\nmode: fast\n")
    write(
        root,
        "charts/web/templates/all.yaml",
        deployment("{{ .Release.Name }}", "{{ .Values.image }}", 1).replace(
            "replicas: 1", "replicas: {{ .Values.replicas }}"
        )
        + "---\n"
        + service("{{ .Release.Name }}")
        + "---\n"
        + configmap("{{ .Release.Name }}", "{{ .Values.mode }}"),
    )
    apps = []
    for i in range(n):
        name = f"app-{i:03d}"
        kind = kind_of(i)
        if kind == "plain":
            write(root, f"apps/children/{name}.yaml", app(name, f"manifests/{name}"))
            write(root, f"manifests/{name}/deployment.yaml", deployment(name, f"example/{name}:1.0.0"))
            write(root, f"manifests/{name}/service.yaml", service(name))
            write(root, f"manifests/{name}/configmap.yaml", configmap(name, "fast"))
        elif kind == "kustomize":
            write(root, f"apps/children/{name}.yaml", app(name, f"kustomize/{name}/overlay"))
            write(
                root,
                f"kustomize/{name}/base/kustomization.yaml",
                "resources: [deployment.yaml, service.yaml, configmap.yaml]\n",
            )
            write(root, f"kustomize/{name}/base/deployment.yaml", deployment(name, f"example/{name}:1.0.0"))
            write(root, f"kustomize/{name}/base/service.yaml", service(name))
            write(root, f"kustomize/{name}/base/configmap.yaml", configmap(name, "fast"))
            write(
                root,
                f"kustomize/{name}/overlay/kustomization.yaml",
                "resources: [../base]\npatches:\n  - path: replicas.yaml\n",
            )
            write(
                root,
                f"kustomize/{name}/overlay/replicas.yaml",
                f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 3\n",
            )
        else:
            write(
                root,
                f"apps/children/{name}.yaml",
                app(name, "charts/web", f"    helm:\n      valueFiles: [../../values/{name}.yaml]\n"),
            )
            write(root, f"values/{name}.yaml", f"image: example/{name}:1.0.0\n")
        apps.append((name, kind))
    return apps


def change(root: Path, apps: list, changed: int) -> None:
    """The head commit: CHANGED apps changed, spread over the kinds."""
    step = max(1, len(apps) // max(changed, 1))
    for name, kind in apps[::step][:changed]:
        if kind == "plain":
            write(root, f"manifests/{name}/deployment.yaml", deployment(name, f"example/{name}:1.1.0"))
        elif kind == "kustomize":
            write(
                root,
                f"kustomize/{name}/overlay/replicas.yaml",
                f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 4\n",
            )
        else:
            write(root, f"values/{name}.yaml", f"image: example/{name}:1.1.0\n")


def git(root: Path, *args: str) -> str:
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
    env.update(
        GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.test",
        GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.test",
    )
    return subprocess.run(
        ["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True
    ).stdout


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_preview(ferry: str, root: Path, cache: Path) -> dict:
    # A fresh cache each run: nothing carried over between runs.
    shutil.rmtree(cache, ignore_errors=True)
    out = subprocess.run(
        [ferry, "preview", "--base", "base", "--head", "HEAD", "--repo-url", URL,
         "--cache-dir", str(cache), "-o", "json", "apps"],
        cwd=root, capture_output=True, text=True, env=dict(os.environ, FERRY_LOG="warn"),
    )
    if out.returncode not in (0, 1):
        sys.exit(f"bench: ferry preview failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout)


def render_directly(root: Path, apps: list) -> None:
    """Each app of the checkout rendered once with the tools, one after the other."""
    for name, kind in apps:
        if kind == "plain":
            for f in sorted((root / "manifests" / name).iterdir()):
                f.read_bytes()
        elif kind == "kustomize":
            subprocess.run(["kustomize", "build", str(root / "kustomize" / name / "overlay")],
                           check=True, capture_output=True)
        else:
            subprocess.run(["helm", "template", name, str(root / "charts/web"), "--namespace", name,
                            "-f", str(root / "values" / f"{name}.yaml")],
                           check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="apps (default 100)")
    parser.add_argument("--changed", type=int, default=5, help="apps changed by the head commit")
    parser.add_argument("--runs", type=int, default=5, help="runs of each measurement (median)")
    parser.add_argument("--ferry", default=os.environ.get("BENCH_FERRY"), help="ferry binary (default: build release)")
    parser.add_argument("--quick", action="store_true", help="1 run, no result file unless --out-dir")
    parser.add_argument("--out-dir", type=Path, default=None, help="where the JSON goes (default bench/results)")
    args = parser.parse_args()
    for tool in ("git", "helm", "kustomize"):
        if not shutil.which(tool):
            sys.exit(f"bench: '{tool}' is not on PATH (scripts/install-tools.sh puts helm and kustomize in target/tools/bin)")
    ferry = args.ferry
    if not ferry:
        print("==> [bench] building ferry (release)", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "ferry", "--quiet"], cwd=REPO, check=True)
        ferry = str(REPO / "target/release/ferry")
    ferry = str(Path(ferry).resolve())
    runs = 1 if args.quick else args.runs

    with tempfile.TemporaryDirectory(prefix="ferry-bench-preview-") as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        git(root, "init", "--quiet", "--initial-branch=main")
        apps = generate(root, args.n)
        git(root, "add", "--all")
        git(root, "commit", "--quiet", "-m", "base")
        git(root, "tag", "base")
        change(root, apps, args.changed)
        git(root, "commit", "--quiet", "--all", "-m", "head")

        cache = Path(tmp) / "cache"
        preview_times, doc = [], None
        for _ in range(runs):
            start = time.perf_counter()
            doc = run_preview(ferry, root, cache)
            preview_times.append(time.perf_counter() - start)
        baseline_times = [timed(lambda: render_directly(root, apps)) for _ in range(runs)]

    statuses = [a["status"] for a in doc["apps"]]
    total_apps = len(doc["apps"])  # the N children and the root
    changed_apps = statuses.count("changed")
    renders = doc["renders"]
    preview_s = statistics.median(preview_times)
    baseline_s = statistics.median(baseline_times)
    result = {
        "benchmark": "preview",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"os": platform.platform(), "cores": os.cpu_count()},
        "settings": {"apps": args.n, "changed": args.changed, "runs": runs,
                     "kinds": "plain, kustomize, helm in turn"},
        "results": {
            "preview": {"command": "ferry preview --base base --head HEAD apps -o json",
                        "median_seconds": round(preview_s, 4), "samples": [round(t, 4) for t in preview_times]},
            "baseline": {"command": "each app at head once: cat | kustomize build | helm template",
                         "median_seconds": round(baseline_s, 4), "samples": [round(t, 4) for t in baseline_times]},
            "ratio_preview_to_baseline": round(preview_s / baseline_s, 2),
            "apps_previewed": total_apps,
            "apps_changed": changed_apps,
            "renders": renders,
            "renders_per_app": round(renders / total_apps, 3),
        },
    }
    print(f"{'':28} {'seconds':>9}")
    print(f"{'ferry preview':28} {preview_s:9.3f}   ({renders} renders for {total_apps} apps: {renders / total_apps:.2f} per app; {changed_apps} changed)")
    print(f"{'baseline (each app once)':28} {baseline_s:9.3f}")
    print(f"ratio preview / baseline: {preview_s / baseline_s:.2f} (rendering both commits would be 2 renders per app)")
    # Each app is rendered once, and again only when its inputs changed.
    if changed_apps != min(args.changed, args.n) or renders != total_apps + changed_apps:
        sys.exit(f"bench: expected {args.changed} changed apps and {total_apps + args.changed} renders, got {changed_apps} and {renders}")
    out_dir = args.out_dir or (None if args.quick else REPO / "bench/results")
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"preview-{result['date'].replace(':', '')}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
