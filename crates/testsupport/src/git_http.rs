//! A tiny HTTP/1.1 server that serves git repositories with `git http-backend` (CGI) behind
//! Basic authentication: enough for git's smart HTTP protocol, one request per connection.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running server; stops when dropped.
pub struct GitHttpServer {
    /// `http://127.0.0.1:<port>`
    pub base_url: String,
    task: JoinHandle<()>,
    addr: std::net::SocketAddr,
    project_root: PathBuf,
    expected_auth: String,
    fault: Arc<AtomicU8>,
}

/// How the server misbehaves, for outage tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// Serves normally.
    None = 0,
    /// Answers every request with 500 Internal Server Error.
    ServerError = 1,
    /// Accepts connections and never answers.
    Hang = 2,
    /// Reads the request, answers `200 OK` with headers that promise a body, and then sends
    /// nothing more while holding the connection open (a server that stalls mid-answer).
    Stall = 3,
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GitHttpServer {
    /// Makes the server misbehave (or behave again) from the next request on.
    pub fn set_fault(&self, fault: Fault) {
        self.fault.store(fault as u8, Ordering::SeqCst);
    }

    /// Stops listening: connections are refused, as with a server that is down.
    pub fn stop(&mut self) {
        self.task.abort();
    }

    /// Listens again on the same address after [`GitHttpServer::stop`].
    pub async fn start_again(&mut self) {
        self.task.abort();
        let listener = loop {
            // The aborted task drops its listener when it next runs: retry until it has.
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        self.task = accept_loop(
            listener,
            self.project_root.clone(),
            self.expected_auth.clone(),
            self.fault.clone(),
        );
    }
}

/// Serves the repositories under `project_root` to clients that authenticate as
/// `username`/`password` (to anyone when both are empty, as a public repository is).
pub async fn serve(project_root: PathBuf, username: &str, password: &str) -> GitHttpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base_url = format!("http://{addr}");
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    );
    let fault = Arc::new(AtomicU8::new(Fault::None as u8));
    let task = accept_loop(
        listener,
        project_root.clone(),
        expected_auth.clone(),
        fault.clone(),
    );
    GitHttpServer {
        base_url,
        task,
        addr,
        project_root,
        expected_auth,
        fault,
    }
}

fn accept_loop(
    listener: TcpListener,
    project_root: PathBuf,
    expected: String,
    fault: Arc<AtomicU8>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let root = project_root.clone();
            let expected = expected.clone();
            let fault = fault.load(Ordering::SeqCst);
            tokio::spawn(async move {
                if fault == Fault::ServerError as u8 {
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                    return;
                }
                if fault == Fault::Stall as u8 {
                    let _ = stall(stream).await;
                    return;
                }
                if fault == Fault::Hang as u8 {
                    // Hold the connection open without a word until the client gives up.
                    let mut sink = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut sink).await {
                        if n == 0 {
                            return;
                        }
                    }
                    return;
                }
                let _ = handle(stream, root, expected).await;
            });
        }
    })
}

/// Reads a request's head, promises a body in a `200 OK`, then waits for the client to leave.
async fn stall(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let mut stream = reader.into_inner();
    stream
        .write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\n\
              Cache-Control: no-cache\r\nContent-Length: 65536\r\n\r\n",
        )
        .await?;
    stream.flush().await?;
    let mut sink = [0u8; 1024];
    while stream.read(&mut sink).await? > 0 {}
    Ok(())
}

async fn handle(stream: TcpStream, root: PathBuf, expected_auth: String) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let body = read_body(&mut reader, &headers).await?;
    let mut stream = reader.into_inner();

    let public = expected_auth == "Basic Og=="; // ":" — no username, no password
    if !public && headers.get("authorization") != Some(&expected_auth) {
        let response = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"ferry-test\"\r\n\
                        Content-Length: 0\r\nConnection: close\r\n\r\n";
        stream.write_all(response.as_bytes()).await?;
        return stream.shutdown().await;
    }

    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let header = |name: &str| headers.get(name).cloned().unwrap_or_default();
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_PROJECT_ROOT", &root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_USER", "ferry")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let output = child.wait_with_output().await?;
    let _ = writer.await;

    // CGI output: headers, a blank line, the body.
    let out = output.stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (head, body) = match split {
        Some((i, n)) => (
            String::from_utf8_lossy(&out[..i]).into_owned(),
            &out[i + n..],
        ),
        None => (String::new(), &out[..]),
    };
    let mut status = "200 OK".to_owned();
    let mut response = String::new();
    for line in head.lines() {
        match line.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_owned(),
            Some(_) => {
                response.push_str(line.trim_end());
                response.push_str("\r\n");
            }
            None => {}
        }
    }
    let head = format!(
        "HTTP/1.1 {status}\r\n{response}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

async fn read_body(
    reader: &mut BufReader<TcpStream>,
    headers: &HashMap<String, String>,
) -> std::io::Result<Vec<u8>> {
    if let Some(len) = headers.get("content-length") {
        let mut body = vec![0; len.parse().unwrap_or(0)];
        reader.read_exact(&mut body).await?;
        return Ok(body);
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).await?;
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2]; // data and its CRLF
            reader.read_exact(&mut chunk).await?;
            if size == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    Ok(body)
}
