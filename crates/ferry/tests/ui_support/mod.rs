//! Shared pieces of the web UI's tests: a `ferry server` process of the test's own, a small
//! HTTP client, and the Git fixture the UI scenarios use (an App-of-Apps whose child has a
//! Deployment, a Service and a Secret).

// Each test binary uses a different part of this module, and its items are `pub` for the
// binaries that include it rather than for other crates.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_testsupport::{GitRepo, Probe, wait_until};

use crate::common::{STEP, World, application, ferry_bin};

/// How long [`UiServer::login`] waits between attempts: longer than the server's 1 s pause between
/// forced re-reads of the accounts.
const LOGIN_RETRY: Duration = Duration::from_millis(1_500);
/// How often [`UiServer::login`] tries: fewer than the 5 failures that lock an account out, and
/// together longer than the server's 3 s account cache.
const LOGIN_ATTEMPTS: u32 = 4;

/// The value of the fixture Secret's `password`: no page may show it.
pub const SECRET_VALUE: &str = "hunter2-from-git";

/// A `ferry server` for the test's namespace, stopped (and its log printed if the test
/// failed) on drop.
pub struct UiServer {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl UiServer {
    /// Starts `ferry server` for `namespace` on a free port and waits until `/healthz` answers.
    pub async fn start(kubeconfig: &std::path::Path, namespace: &str, insecure: bool) -> UiServer {
        let dir = tempfile::Builder::new()
            .prefix("ferry-ui-")
            .tempdir()
            .unwrap();
        let log = dir.path().join("server.log");
        // A free port: bind port 0, note it, let it go (the server binds it right after).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let out = std::fs::File::create(&log).unwrap();
        let mut args = vec![
            "server".to_string(),
            "--namespace".into(),
            namespace.into(),
            "--listen".into(),
            addr.to_string(),
        ];
        if insecure {
            args.push("--insecure-no-auth".into());
        }
        let child = Command::new(ferry_bin())
            .args(&args)
            .env("KUBECONFIG", kubeconfig)
            .env("FERRY_LOG", "info")
            .env("FERRY_ALLOW_FILE_REPOS", "true")
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("starting ferry server");
        let server = UiServer {
            child: Some(child),
            addr,
            log,
            _dir: dir,
        };
        wait_until("ferry server answers /healthz", STEP, || async {
            match try_request(addr, "GET", "/healthz", &[], b"") {
                Ok(r) if r.status == 200 => Probe::Done(()),
                Ok(r) => Probe::pending(format!("status {}", r.status)),
                Err(e) => Probe::pending(e),
            }
        })
        .await;
        server
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// GET `path`.
    pub fn get(&self, path: &str) -> Reply {
        request(self.addr, "GET", path, &[], b"")
    }

    /// POST a form to `path`.
    pub fn post_form(&self, path: &str, form: &str, headers: &[(&str, &str)]) -> Reply {
        let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        request(self.addr, "POST", path, &all, form.as_bytes())
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- the ferry server's log ---\n{}", self.log());
        }
    }
}

pub use ferry_testsupport::http::{Reply, request, try_request};

/// A stream of server-sent events from `GET /events`, read with a deadline.
pub struct EventStream {
    stream: TcpStream,
    buffer: String,
}

impl EventStream {
    /// Opens `/events` (with `headers`) and waits for its `ready` event.
    pub fn open(addr: SocketAddr, headers: &[(&str, &str)]) -> EventStream {
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut head = format!(
            // HTTP/1.0: the stream comes without chunked framing, ended by closing.
            "GET /events HTTP/1.0\r\nHost: {addr}\r\nAccept: text/event-stream\r\n"
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let mut events = EventStream {
            stream,
            buffer: String::new(),
        };
        let head = events.read_until("\r\n\r\n", STEP);
        assert!(
            head.lines().next().unwrap_or_default().contains(" 200")
                && head.to_ascii_lowercase().contains("text/event-stream"),
            "GET /events answered:\n{head}"
        );
        events.next_event("ready", |_| true, STEP);
        events
    }

    /// Reads until `marker` has arrived; returns everything before it (and drops it from the
    /// buffer).
    fn read_until(&mut self, marker: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.buffer.find(marker) {
                let out = self.buffer[..i].to_string();
                self.buffer.drain(..i + marker.len());
                return out;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {marker:?} from /events within {within:?}; got:\n{}",
                self.buffer
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("/events closed; got:\n{}", self.buffer),
                Ok(n) => self.buffer.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("reading /events: {e}"),
            }
        }
    }

    /// Waits for an event named `name` whose data satisfies `check`; returns the data.
    pub fn next_event(
        &mut self,
        name: &str,
        check: impl Fn(&str) -> bool,
        within: Duration,
    ) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no matching {name:?} event within {within:?}"
            );
            let block = self.read_until("\n\n", left);
            let event = block
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim);
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .collect();
            if event == Some(name) && check(&data) {
                return data;
            }
        }
    }
}

/// The fixture: `apps/{child}.yaml` (an Application, automated without selfHeal) and
/// `{child}/` with a Deployment (2 replicas), a Service and a Secret; committed.
pub fn write_fixture(repo: &GitRepo, child: &str, dest_ns: &str) {
    let automated_no_self_heal = "  syncPolicy:\n    automated:\n      prune: true\n";
    repo.write(
        &format!("apps/{child}.yaml"),
        &application(
            child,
            &repo.url(),
            child,
            dest_ns,
            automated_no_self_heal,
        ),
    )
    .write(
        &format!("{child}/deploy.yaml"),
        &crate::common::deployment(child, "registry.example/web:1.0", 2),
    )
    .write(
        &format!("{child}/service.yaml"),
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {child}\nspec:\n  selector: {{app: {child}}}\n  ports:\n  - port: 80\n"
        ),
    )
    .write(
        &format!("{child}/secret.yaml"),
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {child}-secret\nstringData:\n  password: {SECRET_VALUE}\n"
        ),
    );
    repo.commit(&format!("{child} 1.0 with a Secret"));
}

/// Starts the scenario in `w`: the root app (App-of-Apps, automated with selfHeal) managing
/// `child`, both Synced and Healthy, and the child's pods running.
pub async fn start_fixture(w: &World, repo: &GitRepo, root: &str, child: &str) {
    let ns = w.ns.name();
    write_fixture(repo, child, ns);
    w.apply(&application(
        root,
        &repo.url(),
        "apps",
        ns,
        crate::common::AUTOMATED,
    ));
    w.wait_synced_healthy(root).await;
    w.wait_synced_healthy(child).await;
    w.wait_object(
        &[&format!("deployment/{child}")],
        "the child's deployment has 2 ready replicas",
        |d| {
            d.and_then(|d| d.pointer("/status/readyReplicas"))
                .and_then(serde_json::Value::as_i64)
                == Some(2)
        },
    )
    .await;
}

/// Creates account `name` with `role` (and `extra` arguments of `ferry account create`, e.g.
/// `--projects`) and `password` with `ferry account`, as a user would.
pub fn create_account(w: &World, name: &str, role: &str, extra: &[&str], password: &str) {
    let mut args = vec!["account", "create", name, "--role", role];
    args.extend_from_slice(extra);
    let out = w.ferry(&args);
    assert!(out.status.success(), "ferry account create: {out:?}");
    let mut child = Command::new(ferry_bin())
        .args([
            "account",
            "update-password",
            name,
            "--namespace",
            w.ns.name(),
        ])
        .env("KUBECONFIG", w.kubeconfig())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ferry account update-password: {out:?}"
    );
}

/// The admin's initial password, from Secret `ferry-initial-admin-secret` (the server creates
/// it at its first start).
pub async fn initial_admin_password(w: &World) -> String {
    wait_until("the initial admin password Secret", STEP, || async {
        match w.kubectl().try_run(&[
            "get",
            "secret",
            "ferry-initial-admin-secret",
            "-o",
            "jsonpath={.data.password}",
        ]) {
            Ok(b64) if !b64.trim().is_empty() => {
                use base64::Engine as _;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .unwrap();
                Probe::Done(String::from_utf8(raw).unwrap())
            }
            Ok(_) => Probe::pending("empty"),
            Err(e) => Probe::pending(e),
        }
    })
    .await
}

/// A logged-in browser-like session: the cookie and the CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl UiServer {
    /// Logs in with the login form (retrying until the account is known: account changes take
    /// a few seconds to reach the server); reads the CSRF token from a page.
    pub async fn login(&self, user: &str, password: &str) -> Session {
        let form = format!(
            "username={}&password={}&next=%2F",
            urlencode(user),
            urlencode(password)
        );
        // An account created a moment ago may not be in the server's account cache yet (it is
        // kept for 3 s). A failed login re-reads the accounts, for a name the server does not know
        // yet at most once a second, and every failure counts towards the lock-out (5 in 5
        // minutes). So: at most LOGIN_ATTEMPTS tries, LOGIN_RETRY apart, never in a tight loop.
        let mut seen = Vec::new();
        let mut cookie = None;
        for attempt in 0..LOGIN_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(LOGIN_RETRY).await;
            }
            let r = self.post_form("/login", &form, &[]);
            let session = r
                .headers
                .iter()
                .filter(|(n, _)| n == "set-cookie")
                .find_map(|(_, v)| {
                    v.split(';')
                        .next()
                        .filter(|c| c.starts_with("ferry_session=") && c.len() > 14)
                })
                .map(str::to_string);
            match session {
                Some(c) if r.status == 303 => {
                    cookie = Some(c);
                    break;
                }
                _ => seen.push(format!("{} {:?}", r.status, r.header("location"))),
            }
        }
        let Some(cookie) = cookie else {
            panic!("logging in as {user} failed {LOGIN_ATTEMPTS} times: {seen:?}");
        };
        let page = request(self.addr, "GET", "/", &[("Cookie", &cookie)], b"");
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = page
            .body
            .split("<meta name=\"csrf-token\" content=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .to_string();
        assert!(
            !csrf.is_empty(),
            "no CSRF token in the page:\n{}",
            page.body
        );
        Session { cookie, csrf }
    }

    /// GET `path` in `session`.
    pub fn get_as(&self, session: &Session, path: &str) -> Reply {
        request(self.addr, "GET", path, &[("Cookie", &session.cookie)], b"")
    }
}

/// Percent-encodes a form value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
