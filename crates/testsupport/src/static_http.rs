//! A static HTTP/1.1 file server for chart repositories in tests (GET only, one request per
//! connection) that can be stopped and started again on the same address, for outage tests.
//! Files are read at each request, so a test breaks the repository by editing them.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running server; stops when dropped.
pub struct StaticServer {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    addr: SocketAddr,
    root: PathBuf,
    task: JoinHandle<()>,
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StaticServer {
    /// Serves the files under `root`.
    pub async fn serve(root: PathBuf) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("an address");
        StaticServer {
            url: format!("http://{addr}"),
            addr,
            task: accept_loop(listener, root.clone()),
            root,
        }
    }

    /// Stops listening: connections are refused, as with a server that is down.
    pub fn stop(&mut self) {
        self.task.abort();
    }

    /// Listens again on the same address after [`StaticServer::stop`].
    pub async fn start_again(&mut self) {
        self.task.abort();
        let listener = loop {
            // The aborted task drops its listener when it next runs: retry until it has.
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        self.task = accept_loop(listener, self.root.clone());
    }
}

fn accept_loop(listener: TcpListener, root: PathBuf) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let root = root.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut request = String::new();
                reader.read_line(&mut request).await.ok()?;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).await.ok()?;
                    if line.trim().is_empty() {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let path = path
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches('/');
                let file = (!path.split('/').any(|c| c == ".." || c.is_empty()))
                    .then(|| std::fs::read(root.join(path)).ok())
                    .flatten();
                let (status, body) = match file {
                    Some(body) if request.starts_with("GET ") => ("200 OK", body),
                    _ => ("404 Not Found", Vec::new()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let mut stream = reader.into_inner();
                stream.write_all(head.as_bytes()).await.ok()?;
                stream.write_all(&body).await.ok()?;
                stream.shutdown().await.ok()
            });
        }
    })
}
