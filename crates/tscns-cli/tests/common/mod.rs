//! The one way the CLI integration tests run the built `tscns` binary: bounded (the child is
//! killed when the timeout passes and whenever the runner is dropped, e.g. by a failed
//! assertion), with stdout and stderr captured to temporary files so a chatty child can never
//! block on a full pipe.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Default bound on one run of the binary (a debug build makes RSA keys for the simulated card).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// What one run of the binary left behind.
pub struct Run {
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    /// Standard output, decoded lossily as UTF-8.
    pub stdout: String,
    /// Standard output exactly as written.
    pub stdout_bytes: Vec<u8>,
    /// Standard error, decoded lossily as UTF-8.
    pub stderr: String,
}

impl Run {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Both streams, for assertion messages.
    pub fn both(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Kills the child on drop (a failed assertion never leaves it running).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One invocation of `tscns`, built up and then [`run`](Tscns::run).
pub struct Tscns {
    args: Vec<OsString>,
    stdin: Option<String>,
    envs: Vec<(OsString, OsString)>,
    timeout: Duration,
    stdout_to: Option<File>,
}

impl Tscns {
    /// `tscns ARGS` with an empty standard input, the default [`RUN_TIMEOUT`].
    pub fn new<S: AsRef<OsStr>>(args: &[S]) -> Self {
        Tscns {
            args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
            stdin: None,
            envs: Vec::new(),
            timeout: RUN_TIMEOUT,
            stdout_to: None,
        }
    }

    /// Feeds `text` on standard input (then end of file).
    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.to_owned());
        self
    }

    /// Sets one environment variable for the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Sets several environment variables for the child.
    pub fn envs(mut self, vars: &[(&str, &str)]) -> Self {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// Waits at most `timeout` instead of [`RUN_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends standard output to `file` instead of capturing it (`stdout` is then empty).
    pub fn stdout_to(mut self, file: File) -> Self {
        self.stdout_to = Some(file);
        self
    }

    /// Runs the binary; panics (after killing it) when it is still running after the timeout.
    pub fn run(self) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let in_path = dir.path().join("stdin");
        let out_path = dir.path().join("stdout");
        let err_path = dir.path().join("stderr");
        let stdin = match &self.stdin {
            Some(text) => {
                std::fs::write(&in_path, text).unwrap();
                Stdio::from(File::open(&in_path).unwrap())
            }
            None => Stdio::null(),
        };
        let captured = self.stdout_to.is_none();
        let stdout = match self.stdout_to {
            Some(f) => f,
            None => File::create(&out_path).unwrap(),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_tscns"))
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(stdin)
            .stdout(stdout)
            .stderr(File::create(&err_path).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tscns: {e}"));
        let mut running = Running(child);
        let start = Instant::now();
        let status = loop {
            if let Some(s) = running.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < self.timeout,
                "tscns {:?} still running after {:?}",
                self.args,
                self.timeout
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout_bytes = if captured {
            std::fs::read(&out_path).unwrap()
        } else {
            Vec::new()
        };
        let stderr = std::fs::read(&err_path).unwrap();
        Run {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
            stdout_bytes,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}
