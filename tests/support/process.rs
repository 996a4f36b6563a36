//! The real `llmtap` binary as a child process, for what only a process can show: exit
//! codes, the startup banner, signals, and everything it writes to stdout and stderr.

use std::{
    io::{BufRead as _, BufReader, Read as _},
    net::SocketAddr,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_llmtap");

/// A command for the binary with a clean environment: only PATH, and HOME set to `home`
/// (this machine exports SSL_CERT_FILE and friends to every process; tests must not inherit
/// them by accident).
pub fn command(home: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home);
    cmd
}

/// Runs the binary to completion with stdin closed; returns (exit code, stdout, stderr).
pub fn run(home: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = command(home)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run llmtap");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

pub struct Llmtap {
    pub child: Child,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

fn pump(mut r: impl std::io::Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .expect("lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
}

impl Llmtap {
    /// Spawns `llmtap run ARGS` on ephemeral ports and waits for its banner.
    pub fn spawn(home: &std::path::Path, args: &[&str]) -> Llmtap {
        let mut child = command(home)
            .args(["run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn llmtap");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        pump(child.stdout.take().expect("stdout"), stdout.clone());
        let err = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(err);
            let (mut proxy, mut admin) = (None, None);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                sink.lock().expect("lock").push_str(&line);
                let addr = |prefix: &str| {
                    let rest = line
                        .trim()
                        .strip_prefix(prefix)?
                        .trim()
                        .strip_prefix("http://")?;
                    rest.trim_end_matches("/metrics").parse::<SocketAddr>().ok()
                };
                proxy = proxy.or_else(|| addr("proxy"));
                admin = admin.or_else(|| addr("metrics"));
                // The banner's last line: everything before it is in `sink` by now.
                if line.contains("export CODEX_CA_CERTIFICATE=")
                    && let (Some(p), Some(a)) = (proxy, admin)
                {
                    let _ = tx.send((p, a));
                    proxy = None;
                    admin = None;
                }
                line.clear();
            }
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
            sink.lock().expect("lock").push_str(&rest);
        });
        let (proxy, admin) = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "no banner from llmtap; stderr:\n{}",
                    stderr.lock().expect("lock")
                );
            });
        Llmtap {
            child,
            proxy,
            admin,
            stdout,
            stderr,
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Let the pump threads drain the pipes.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("llmtap did not exit within 10 s of SIGTERM");
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("lock").clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }
}

impl Drop for Llmtap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The interpreter that has `module`, as an absolute path (the tests clear the env, and
/// pyenv shims need theirs): `LLMTAP_PYTHON`, else the local e2e venv, else `python3`.
#[allow(clippy::disallowed_methods, reason = "LLMTAP_PYTHON names CI's venv")]
pub fn python(module: &str) -> Option<String> {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e-venv/bin/python");
    let python = std::env::var("LLMTAP_PYTHON").unwrap_or_else(|_| {
        if venv.exists() {
            venv.to_string_lossy().into_owned()
        } else {
            "python3".to_owned()
        }
    });
    let out = Command::new(python)
        .args([
            "-c",
            &format!("import {module}, sys; print(sys.executable)"),
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
