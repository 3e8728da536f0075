//! Helpers for the bridge's cross-process tests, copied (and trimmed) from ipc-runtime's
//! `tests/support`: the test binary re-executes itself in a *role*, each "host" in its own
//! `IPC_DOMAIN`, and each test checks that its domains left nothing behind.
#![allow(dead_code)]

use std::io::{BufRead, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Environment variable that tells a re-executed test binary which role to play.
pub const ROLE_ENV: &str = "IPC_TEST_ROLE";

/// The role this process was started in, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// A domain no other test (or test run) uses.
pub fn unique_domain(tag: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    static RUN: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let run = *RUN.get_or_init(|| {
        std::collections::hash_map::RandomState::new().build_hasher().finish() as u32
    });
    format!("t{}x{run:08x}-{tag}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (the system picks it).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A command that re-runs test `test` of this binary in `role`, in `domain`.
pub fn role_command(test: &str, role: &str, domain: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE_ENV, role)
        .env("IPC_DOMAIN", domain)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null());
    cmd
}

/// Polls `cond` until it holds or `deadline` passes; returns whether it held.
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Names of the shared-memory objects (and other files) that belong to `domain`.
pub fn leftovers(domain: &str) -> Vec<String> {
    let prefix = format!("{domain}.");
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(ipc_runtime::liveness::lock_dir()).into_iter().flatten().flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) {
            found.push(name);
        }
    }
    found
}

/// Asserts that `domain` left nothing behind (see [`leftovers`]).
pub fn assert_clean(domain: &str) {
    let left = leftovers(domain);
    assert!(left.is_empty(), "domain {domain} left objects behind: {left:?}");
}

/// The value of environment variable `key`, which the parent set for this role.
pub fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} not set"))
}

/// The value of environment variable `key`, if set.
pub fn env_opt(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// A child process with line access to its stdout (read on a thread of its own, so waits
/// have deadlines) and a pipe to its stdin.
pub struct Proc {
    what: String,
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// How long any one expected line may take.
pub const LINE_DEADLINE: Duration = Duration::from_secs(60);

impl Proc {
    pub fn spawn(test: &str, role: &str, domain: &str, envs: &[(&str, String)]) -> Proc {
        let mut cmd = role_command(test, role, domain);
        cmd.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn child");
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Proc {
            what: format!("{role} ({envs:?})"),
            child,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// The next line, waiting up to `deadline`; `None` at its end or if the stream ended.
    pub fn next_line(&mut self, deadline: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(deadline).ok()?;
        self.seen.push(line.clone());
        Some(line)
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let err = self.stderr.take().map(|t| t.join().unwrap_or_default()).unwrap_or_default();
        panic!("{}: {why}\n--- stdout\n{}\n--- stderr\n{err}", self.what, self.seen.join("\n"));
    }

    /// Reads lines until one equal to `line`.
    pub fn expect(&mut self, line: &str) {
        self.expect_with(|l| l == line, line);
    }

    /// Reads lines until one equal to `line`, for up to `deadline`.
    pub fn expect_within(&mut self, line: &str, deadline: Duration) {
        self.expect_with_within(|l| l == line, line, deadline);
    }

    /// Reads lines until one for which `pred` holds; returns it.
    pub fn expect_with(&mut self, pred: impl Fn(&str) -> bool, what: &str) -> String {
        self.expect_with_within(pred, what, LINE_DEADLINE)
    }

    /// Reads lines until one for which `pred` holds, for up to `deadline`; returns it.
    pub fn expect_with_within(
        &mut self,
        pred: impl Fn(&str) -> bool,
        what: &str,
        deadline: Duration,
    ) -> String {
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Some(l) if pred(&l) => return l,
                Some(_) => {}
                None => self.fail(&format!("no line `{what}` within {deadline:?}")),
            }
        }
    }

    pub fn say(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process (SIGKILL on Unix) and reaps it.
    pub fn kill(mut self) {
        self.child.kill().expect("kill child");
        let _ = self.child.wait();
    }

    /// Closes stdin, reads the rest of stdout, checks the exit status; returns `key=value`
    /// lines.
    pub fn finish(mut self) -> std::collections::BTreeMap<String, String> {
        drop(self.child.stdin.take());
        let end = Instant::now() + LINE_DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    self.fail("did not exit after its stdin closed")
                }
            }
        }
        let status = self.child.wait().unwrap();
        if !status.success() {
            self.fail(&format!("failed with {status}"));
        }
        self.seen
            .iter()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect()
    }
}

/// One line the parent wrote to this role's stdin; `None` once it closed it.
pub fn line_from_parent() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end().to_owned()),
    }
}
