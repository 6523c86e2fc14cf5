//! A real Prometheus for tests: Debian's `prometheus` started on 127.0.0.1 with its own storage
//! directory, scraping every second a target the test serves, whose series the test sets.
//!
//! ```no_run
//! # async fn example() {
//! let prom = ferry_testsupport::prometheus::Prometheus::start().await;
//! prom.set("http_error_ratio{service=\"web\"}", 0.01);
//! prom.wait_for_value("http_error_ratio{service=\"web\"}", 0.01).await;
//! // prom.url() is the address an AnalysisTemplate's provider.prometheus.address names.
//! # }
//! ```
//!
//! When `prometheus` is not installed, [`Prometheus::start`] panics with a message saying how
//! to install it: a test that needs Prometheus fails rather than passing without it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{Probe, wait_until};

/// A running Prometheus and the target it scrapes; both stop when dropped.
pub struct Prometheus {
    url: String,
    addr: SocketAddr,
    child: Child,
    series: Arc<Mutex<BTreeMap<String, f64>>>,
    target: JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.target.abort();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus (scrape interval 1 s) and the target it scrapes, and waits until
    /// Prometheus is ready.
    pub async fn start() -> Prometheus {
        Self::start_program("prometheus").await
    }

    async fn start_program(program: &str) -> Prometheus {
        let series: Arc<Mutex<BTreeMap<String, f64>>> = Arc::default();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port for the scrape target");
        let target_addr = listener.local_addr().expect("an address");
        let target = tokio::spawn(serve_target(listener, series.clone()));

        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: test\n    static_configs:\n      - targets: ['{target_addr}']\n"
            ),
        )
        .expect("writing prometheus.yml");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("a log file");
        let child = Command::new(program)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start Debian's prometheus ({program}: {e}): the analysis tests need it; \
                     install it with `apt-get install prometheus` (.ci/run does)"
                )
            });
        let mut prom = Prometheus {
            url: format!("http://{addr}"),
            addr,
            child,
            series,
            target,
            dir,
        };
        let log_path = prom.dir.path().join("prometheus.log");
        wait_until("Prometheus to be ready", Duration::from_secs(60), || {
            let exited = prom.child.try_wait().ok().flatten();
            let log_path = log_path.clone();
            let addr = prom.addr;
            async move {
                if let Some(status) = exited {
                    panic!(
                        "prometheus exited ({status}): {}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
                match crate::http::try_request(addr, "GET", "/-/ready", &[], b"") {
                    Ok(r) if r.status == 200 => Probe::Done(()),
                    Ok(r) => Probe::pending(format!("HTTP {}: {}", r.status, r.body)),
                    Err(e) => Probe::pending(e),
                }
            }
        })
        .await;
        prom
    }

    /// Prometheus' URL (`http://127.0.0.1:PORT`), for `provider.prometheus.address`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sets `series` (`name{label="value"}`) on the target; Prometheus scrapes it within a
    /// second. Use [`Prometheus::wait_for_value`] to know it has.
    pub fn set(&self, series: &str, value: f64) {
        self.series
            .lock()
            .expect("the series")
            .insert(series.to_string(), value);
    }

    /// Waits until an instant query of `series` gives `value` (NaN matches NaN).
    pub async fn wait_for_value(&self, series: &str, value: f64) {
        let addr = self.addr;
        let path = format!("/api/v1/query?query={}", percent_encode(series));
        wait_until(
            &format!("Prometheus to have scraped {series} = {value}"),
            Duration::from_secs(60),
            || {
                let path = path.clone();
                async move {
                    let reply = match crate::http::try_request(addr, "GET", &path, &[], b"") {
                        Ok(r) => r,
                        Err(e) => return Probe::pending(e),
                    };
                    let json: serde_json::Value = match serde_json::from_str(&reply.body) {
                        Ok(j) => j,
                        Err(_) => return Probe::pending(reply.body),
                    };
                    let got =
                        json["data"]["result"][0]["value"][1]
                            .as_str()
                            .and_then(|s| match s {
                                "NaN" => Some(f64::NAN),
                                "+Inf" => Some(f64::INFINITY),
                                "-Inf" => Some(f64::NEG_INFINITY),
                                _ => s.parse::<f64>().ok(),
                            });
                    match got {
                        Some(g) if g == value || (g.is_nan() && value.is_nan()) => Probe::Done(()),
                        _ => Probe::pending(json),
                    }
                }
            },
        )
        .await;
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn exposition(series: &BTreeMap<String, f64>) -> String {
    let mut out = String::new();
    for (name, value) in series {
        let v = if value.is_nan() {
            "NaN".to_string()
        } else if *value == f64::INFINITY {
            "+Inf".to_string()
        } else if *value == f64::NEG_INFINITY {
            "-Inf".to_string()
        } else {
            value.to_string()
        };
        out.push_str(&format!("{name} {v}\n"));
    }
    out
}

/// Answers every request with the series in Prometheus' text format.
async fn serve_target(listener: TcpListener, series: Arc<Mutex<BTreeMap<String, f64>>>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let series = series.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut read = 0;
            // Read the request head; the body (none for a scrape) is not needed.
            while read < buf.len() {
                match sock.read(&mut buf[read..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
                if buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let body = exposition(&series.lock().expect("the series"));
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(answer.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_written_in_the_text_format() {
        let series = BTreeMap::from([
            ("a{x=\"1\"}".to_string(), 0.5),
            ("b".to_string(), f64::NAN),
            ("c".to_string(), f64::INFINITY),
        ]);
        assert_eq!(exposition(&series), "a{x=\"1\"} 0.5\nb NaN\nc +Inf\n");
        assert_eq!(percent_encode("a{x=\"1\"}"), "a%7Bx%3D%221%22%7D");
    }

    #[tokio::test]
    #[should_panic(expected = "install it with `apt-get install prometheus`")]
    async fn a_missing_prometheus_fails_the_test_and_says_how_to_install_it() {
        Prometheus::start_program("prometheus-is-not-installed-here").await;
    }
}
