//! Shared helpers for cross-process tests: the test binary re-executes itself in a *role*, each
//! test in its own `IPC_DOMAIN`, and checks that the domain left nothing behind.
#![allow(dead_code)]

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Environment variable that tells a re-executed test binary which role to play.
pub const ROLE_ENV: &str = "IPC_TEST_ROLE";

/// The role this process was started in, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// A domain no other test (or test run) uses.
///
/// The pid alone is not enough: Wine numbers processes from the same start every time its
/// server restarts, so a run could meet what an earlier, failed run left under its pid.
pub fn unique_domain(tag: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    static RUN: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    // RandomState is seeded from the OS's randomness.
    let run = *RUN.get_or_init(|| {
        std::collections::hash_map::RandomState::new().build_hasher().finish() as u32
    });
    format!("t{}x{run:08x}-{tag}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
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

/// Spawns a role with piped stdout/stderr.
pub fn spawn_role(test: &str, role: &str, domain: &str, envs: &[(&str, String)]) -> Child {
    let mut cmd = role_command(test, role, domain);
    cmd.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("spawn test role")
}

/// Runs a role to completion and returns its output.
pub fn run_role(test: &str, role: &str, domain: &str, envs: &[(&str, String)]) -> Output {
    spawn_role(test, role, domain, envs).wait_with_output().expect("wait for test role")
}

/// Panics with the child's output unless it succeeded.
pub fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
        std::thread::yield_now();
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Names of the shared-memory objects (and other files) that belong to `domain`.
///
/// Everything a domain puts into the OS by name is listed in one directory,
/// [`ipc_runtime::liveness::lock_dir`]: on Linux that is `/dev/shm` (segments, lock files,
/// wait sockets); on Windows it holds the segment registry (`<name>.seg`, see
/// `ipc_runtime::segment::windows`) and the lock files, while the kernel objects behind the
/// registry disappear by themselves with their last handle; on macOS, lock files and sockets
/// (POSIX shared-memory objects cannot be listed there).
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

/// Sends `tracing` output of this (child) process to stderr, so the parent can check for
/// logged errors.
pub fn log_to_stderr() {
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).try_init();
}

/// CPU time this process has used so far (all threads).
#[cfg(unix)]
pub fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time this process has used so far (all threads): kernel plus user time.
#[cfg(windows)]
pub fn cpu_time() -> Duration {
    use windows_sys::Win32::Foundation::FILETIME;
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessTimes};
    let zero = FILETIME { dwLowDateTime: 0, dwHighDateTime: 0 };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: the pseudo-handle of the current process is always valid; the four out-pointers
    // are valid FILETIMEs.
    let ok = unsafe {
        GetProcessTimes(GetCurrentProcess(), &mut created, &mut exited, &mut kernel, &mut user)
    };
    assert!(ok != 0, "GetProcessTimes: {}", std::io::Error::last_os_error());
    let ticks = |t: FILETIME| (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    // FILETIME counts 100 ns intervals.
    Duration::from_nanos((ticks(kernel) + ticks(user)) * 100)
}

/// Whether this Windows program runs under Wine (whose `ntdll` exports `wine_get_version`).
/// Lets a test relax a bound that measures Wine's emulation rather than the project; each use
/// says which and why.
#[cfg(windows)]
pub fn under_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
    // SAFETY: both calls take NUL-terminated ASCII names and only look things up; ntdll is
    // loaded in every Windows process.
    unsafe {
        let ntdll = GetModuleHandleA(c"ntdll.dll".as_ptr().cast());
        !ntdll.is_null() && GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()).is_some()
    }
}

/// Whether this program runs under Wine: never, off Windows.
#[cfg(not(windows))]
pub fn under_wine() -> bool {
    false
}

/// Blocks until the parent closes this process's stdin (a simple "you may go now").
pub fn wait_for_parent() {
    let mut sink = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut sink);
}

/// A flag set once the parent closes this process's stdin ([`wait_for_parent`] on a thread of
/// its own), for roles that work in a loop until told to stop.
pub fn parent_gone_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    std::thread::spawn(move || {
        wait_for_parent();
        flag.store(true, Ordering::Release);
    });
    stop
}

/// The value of environment variable `key`, which the parent set for this role.
pub fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} not set"))
}

/// Spawns a role whose stdin stays open until the returned child's stdin is dropped.
pub fn spawn_held_role(test: &str, role: &str, domain: &str, envs: &[(&str, String)]) -> Child {
    let mut cmd = role_command(test, role, domain);
    cmd.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("spawn test role")
}

/// A line reader over a child's stdout (take it once, keep using it).
pub fn stdout_lines(child: &mut Child) -> std::io::BufReader<std::process::ChildStdout> {
    std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
}

/// Reads the child's stdout until a line equal to `line` appears (or the stream ends).
pub fn wait_for_line(
    reader: &mut std::io::BufReader<std::process::ChildStdout>,
    line: &str,
) -> bool {
    use std::io::BufRead;
    let mut buf = String::new();
    loop {
        buf.clear();
        match reader.read_line(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(_) if buf.trim_end() == line => return true,
            Ok(_) => {}
        }
    }
}

/// Waits for a child whose stdout was taken, returning its status and stderr, and the rest of
/// its stdout read from `reader`.
pub fn finish(
    mut child: Child,
    reader: Option<std::io::BufReader<std::process::ChildStdout>>,
) -> (std::process::ExitStatus, String, String) {
    use std::io::Read;
    drop(child.stdin.take());
    // Drain stderr on its own thread so a chatty child cannot block on a full pipe.
    let stderr = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err);
            err
        })
    });
    let mut out = String::new();
    if let Some(mut reader) = reader {
        let _ = reader.read_to_string(&mut out);
    } else if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let err = stderr.map(|t| t.join().unwrap_or_default()).unwrap_or_default();
    let status = child.wait().expect("wait for child");
    (status, out, err)
}

/// Reads `KEY=value` lines a child printed on stdout.
pub fn field(out: &Output, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
}

/// A child process with line access to its stdout and a pipe to its stdin.
pub struct Proc {
    what: String,
    child: Child,
    out: std::io::BufReader<std::process::ChildStdout>,
    seen: Vec<String>,
}

impl Proc {
    pub fn spawn(test: &str, role: &str, domain: &str, envs: &[(&str, String)]) -> Proc {
        let mut cmd = role_command(test, role, domain);
        cmd.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn child");
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        Proc { what: format!("{role} ({envs:?})"), child, out, seen: Vec::new() }
    }

    pub fn expect(&mut self, line: &str) {
        use std::io::{BufRead, Read};
        loop {
            let mut buf = String::new();
            if self.out.read_line(&mut buf).unwrap() == 0 {
                let mut err = String::new();
                let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
                panic!(
                    "{} exited before printing `{line}`\n--- stdout\n{}\n--- stderr\n{err}",
                    self.what,
                    self.seen.join("\n")
                );
            }
            let got = buf.trim_end().to_owned();
            self.seen.push(got.clone());
            if got == line {
                return;
            }
        }
    }

    pub fn say(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn finish(mut self) -> std::collections::BTreeMap<String, String> {
        use std::io::Read;
        drop(self.child.stdin.take());
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        self.seen.extend(rest.lines().map(str::to_owned));
        let mut err = String::new();
        let _ = self.child.stderr.take().unwrap().read_to_string(&mut err);
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "{} failed with {status}\n--- stdout\n{}\n--- stderr\n{err}",
            self.what,
            self.seen.join("\n")
        );
        self.seen
            .iter()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect()
    }
}

/// One line the parent wrote to this role's stdin (see [`Proc::say`]).
pub fn line_from_parent() -> String {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}
