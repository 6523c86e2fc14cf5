"""A small Kubernetes API client for the benchmark: the admin kubeconfig's bearer token and CA,
persistent HTTPS connections (one per thread), JSON in and out. Python standard library only."""

import base64
import http.client
import json
import re
import ssl
import tempfile
import threading
import urllib.parse


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class Kube:
    """Talks to the API server of a testenv kubeconfig (token auth, CA data)."""

    def __init__(self, kubeconfig_path):
        text = open(kubeconfig_path, encoding="utf-8").read()
        self.server = re.search(r"server:\s*(\S+)", text).group(1)
        self.token = re.search(r"token:\s*(\S+)", text).group(1)
        ca = base64.b64decode(re.search(r"certificate-authority-data:\s*(\S+)", text).group(1))
        with tempfile.NamedTemporaryFile("wb", suffix=".crt", delete=False) as f:
            f.write(ca)
            self._ca_file = f.name
        self.ctx = ssl.create_default_context(cafile=self._ca_file)
        url = urllib.parse.urlsplit(self.server)
        self.host, self.port = url.hostname, url.port or 443
        self._local = threading.local()
        self._count_lock = threading.Lock()
        self.requests = 0  # requests this client made (subtracted from the API server's counts)

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
            self._local.conn = conn
        return conn

    def _send(self, method, path, data, headers):
        """One request on this thread's kept-alive connection; once more on a new connection
        when the kept one was closed (the API server drops idle ones: a long idle window)."""
        with self._count_lock:
            self.requests += 1
        for attempt in range(2):
            conn = self._conn()
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                return resp, resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 1:
                    raise

    def request(self, method, path, body=None, content_type="application/json"):
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            if isinstance(data, str):
                data = data.encode()
            headers["Content-Type"] = content_type
        resp, payload = self._send(method, path, data, headers)
        if resp.status >= 400:
            raise ApiError(resp.status, payload.decode(errors="replace"))
        return json.loads(payload) if payload else None

    def text(self, path):
        """GET a plain-text endpoint (the API server's /metrics)."""
        _, payload = self._send("GET", path, None, {"Authorization": f"Bearer {self.token}"})
        return payload.decode()

    def get(self, path):
        return self.request("GET", path)

    def get_opt(self, path):
        try:
            return self.get(path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def apply(self, path, obj, manager="bench"):
        """Server-side apply (forced) of `obj` at `path`."""
        sep = "&" if "?" in path else "?"
        return self.request(
            "PATCH",
            f"{path}{sep}fieldManager={manager}&force=true",
            body=obj,
            content_type="application/apply-patch+yaml",
        )

    def merge_patch(self, path, patch):
        return self.request("PATCH", path, body=patch, content_type="application/merge-patch+json")


def object_path(obj, namespace):
    """The REST path of a namespaced object of the kinds the benchmark generates."""
    kind = obj["kind"]
    name = obj["metadata"]["name"]
    plural = {"ConfigMap": "configmaps", "Service": "services", "Deployment": "deployments"}[kind]
    prefix = "/apis/apps/v1" if kind == "Deployment" else "/api/v1"
    return f"{prefix}/namespaces/{namespace}/{plural}/{name}"
