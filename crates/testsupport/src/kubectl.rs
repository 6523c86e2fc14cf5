use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the real `kubectl` with a fixed kubeconfig and, optionally, a namespace.
#[derive(Debug, Clone)]
pub struct Kubectl {
    kubeconfig: PathBuf,
    namespace: Option<String>,
}

impl Kubectl {
    /// A kubectl bound to `kubeconfig`.
    pub fn new(kubeconfig: &Path) -> Self {
        Kubectl {
            kubeconfig: kubeconfig.to_path_buf(),
            namespace: None,
        }
    }

    /// The same kubectl, with `-n namespace` on every call.
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        if let Some(ns) = &self.namespace {
            cmd.args(["--namespace", ns]);
        }
        cmd.args(args).env_remove("KUBECONFIG");
        cmd
    }

    /// Runs kubectl and returns its exit status and output as they are, for commands whose exit
    /// code is an answer (`auth can-i`, `diff`).
    pub fn output(&self, args: &[&str]) -> std::process::Output {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("starting kubectl {args:?}: {e}"))
    }

    /// Runs kubectl; on success returns stdout, on failure a message with the command and stderr.
    pub fn try_run(&self, args: &[&str]) -> Result<String, String> {
        self.try_run_with_stdin(args, None)
    }

    /// Runs kubectl and panics with its stderr when it fails.
    pub fn run(&self, args: &[&str]) -> String {
        self.try_run(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `kubectl apply -f -` with `manifest` on standard input; panics on failure.
    pub fn apply(&self, manifest: &str) -> String {
        self.try_run_with_stdin(&["apply", "-f", "-"], Some(manifest))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs kubectl with `stdin` fed to it.
    pub fn try_run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        use std::io::Write;
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting kubectl {args:?}: {e}"))?;
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(input.as_bytes())
                .map_err(|e| format!("writing to kubectl: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for kubectl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "kubectl {} failed ({}):\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}
