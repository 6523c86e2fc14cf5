"""Pure helpers of the engine benchmark: percentiles, Prometheus text parsing, /proc readings."""

import os
import re

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def percentile(values, p):
    """The p-th percentile (0..100) with linear interpolation between closest ranks; None when
    there are no values."""
    if not values:
        return None
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    rank = (len(s) - 1) * p / 100.0
    lo = int(rank)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (rank - lo)


def summarize(latencies):
    """p50, p95, max and count of a list of seconds, rounded to milliseconds."""
    r = lambda v: None if v is None else round(v, 3)  # noqa: E731
    return {
        "count": len(latencies),
        "p50_s": r(percentile(latencies, 50)),
        "p95_s": r(percentile(latencies, 95)),
        "max_s": r(max(latencies) if latencies else None),
        "samples_s": [round(v, 3) for v in latencies],
    }


def parse_metrics(text):
    """Prometheus text format → list of (name, {labels}, value)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(3) or ""))
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out.append((m.group(1), labels, value))
    return out


def metric_sum(samples, name, **match):
    """The sum of every sample named `name` whose labels include `match`; None when there is no
    such series at all (the metric does not exist in this build)."""
    found = False
    total = 0.0
    for n, labels, value in samples:
        if n != name:
            continue
        if all(labels.get(k) == v for k, v in match.items()):
            found = True
            total += value
    return total if found else None


def sums_by(samples, name, *keys):
    """{"<label values joined by a space>": sum} over the samples named `name`, grouped by the
    labels `keys` (a label a sample lacks counts as empty)."""
    out = {}
    for n, labels, value in samples:
        if n != name:
            continue
        group = " ".join(labels.get(k, "") for k in keys).strip()
        out[group] = out.get(group, 0.0) + value
    return out


def delta(after, before):
    """after - before; a series that did not exist before counts from 0; None when it does not
    exist after either."""
    if after is None:
        return None
    return after - (before or 0)


# Requests to these resources come from the control plane's own components (leases, node
# heartbeats, the controllers of workloads), never from ferry.
NOT_FERRY = {"leases", "nodes", "pods", "replicasets", "endpoints", "endpointslices",
             "serviceaccounts", "tokenreviews", "subjectaccessreviews", "controllerrevisions",
             "jobs", "cronjobs", "daemonsets", "statefulsets", "resourcequotas", "limitranges",
             "podtemplates", "persistentvolumeclaims", "persistentvolumes", "csinodes",
             "runtimeclasses", "flowschemas", "prioritylevelconfigurations"}


def apiserver_requests(samples):
    """Requests the API server counted (apiserver_request_total), leaving out the resources only
    the control plane's own components use and workload status updates."""
    total = 0.0
    for name, labels, value in samples:
        if name != "apiserver_request_total":
            continue
        if labels.get("resource") in NOT_FERRY:
            continue
        if labels.get("subresource") == "status" and labels.get("resource") != "applications":
            continue
        total += value
    return total


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return None
    return round(a / b, digits)


def proc_cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_status_kib(pid, *names):
    """The fields `names` (e.g. "VmRSS") of a process's /proc/PID/status, in KiB; None for a
    field the kernel does not show."""
    found = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in names:
                found[name] = int(rest.split()[0])
    return tuple(found.get(n) for n in names)


def proc_memory_kib(pid):
    """(VmRSS, VmHWM) of a process, in KiB."""
    return proc_status_kib(pid, "VmRSS", "VmHWM")


def proc_memory_parts_kib(pid):
    """(RssAnon, RssFile) of a process, in KiB: its own memory, and the pages of files it maps
    (its binary's code, shared with the page cache)."""
    return proc_status_kib(pid, "RssAnon", "RssFile")


def system_cpu_busy():
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return total - idle, total
