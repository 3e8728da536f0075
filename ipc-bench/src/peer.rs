//! Peer processes: this binary re-executed in a role (`ipc-bench __child ROLE key=value…`).
//!
//! The parent spawns a peer with `IPC_DOMAIN` set to the run's domain and, with `--pin`, the CPU
//! to pin itself to; the peer sets up its end, prints `ready` on stdout and then talks over the
//! transport being measured (or, for the pipe baseline, over stdin/stdout themselves). The
//! handshake line is read byte by byte so that nothing after it is buffered away from the pipe
//! baseline. A [`Peer`] that is dropped without [`Peer::finish`] (the parent failed half-way)
//! kills its process, so no error leaves children behind; a peer whose parent dies gives up
//! after its receive timeout.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::Result;

/// First argument that selects a peer role.
pub const CHILD_FLAG: &str = "__child";
/// Environment variable carrying the CPU a peer pins itself to.
const CPU_ENV: &str = "IPC_BENCH_CPU";

/// How peers are started in this run.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// The run's domain (every peer's `IPC_DOMAIN`).
    pub domain: String,
    /// `--pin`: the parent's CPU first, then the peers' CPUs (round robin).
    pub cpus: Option<Vec<usize>>,
}

impl Launcher {
    /// The CPU for peer number `k`: the pin list after the parent's entry, round robin.
    fn cpu_for(&self, k: usize) -> Option<usize> {
        let cpus = self.cpus.as_ref()?;
        match cpus.len() {
            0 => None,
            1 => Some(cpus[0]),
            n => Some(cpus[1 + k % (n - 1)]),
        }
    }

    /// Starts peer number `k` in `role` with `args`, and waits for its `ready`.
    pub fn spawn(&self, k: usize, role: &str, args: &[(&str, String)]) -> Result<Peer> {
        let mut command = Command::new(std::env::current_exe()?);
        command.arg(CHILD_FLAG).arg(role);
        for (key, value) in args {
            command.arg(format!("{key}={value}"));
        }
        command.env("IPC_DOMAIN", &self.domain).stdin(Stdio::piped()).stdout(Stdio::piped());
        match self.cpu_for(k) {
            Some(cpu) => command.env(CPU_ENV, cpu.to_string()),
            None => command.env_remove(CPU_ENV),
        };
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().ok_or("peer stdout not captured")?;
        let stdin = child.stdin.take();
        let mut peer = Peer { child, stdout, stdin, finished: false };
        let line = peer.read_line()?;
        if line != "ready" {
            return Err(format!("peer `{role}` did not start (said {line:?})").into());
        }
        Ok(peer)
    }
}

/// A running peer process.
#[derive(Debug)]
pub struct Peer {
    child: Child,
    stdout: ChildStdout,
    stdin: Option<ChildStdin>,
    finished: bool,
}

impl Peer {
    /// Reads one line from the peer's stdout (unbuffered). End of file is an error naming the
    /// peer's exit status.
    pub fn read_line(&mut self) -> Result<String> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match self.stdout.read(&mut byte) {
                Ok(0) => {
                    let status = self.child.wait()?;
                    self.finished = true;
                    return Err(format!("peer exited ({status}) before saying a line").into());
                }
                Ok(_) if byte[0] == b'\n' => return Ok(String::from_utf8(line)?),
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The peer's stdin (the pipe baseline's ping direction).
    pub fn stdin(&mut self) -> &mut ChildStdin {
        self.stdin.as_mut().expect("stdin is piped")
    }

    /// The peer's stdout (the pipe baseline's pong direction).
    pub fn stdout(&mut self) -> &mut ChildStdout {
        &mut self.stdout
    }

    /// Waits for the peer to exit (it has been told to stop) and checks it succeeded.
    pub fn finish(mut self) -> Result<()> {
        drop(self.stdin.take());
        let status = self.child.wait()?;
        self.finished = true;
        if !status.success() {
            return Err(format!("peer failed: {status}").into());
        }
        Ok(())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if !self.finished {
            // Only on the error path: end the process we started, by its handle.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A peer's view of its command line: `key=value` pairs.
#[derive(Debug)]
pub struct Args(HashMap<String, String>);

impl Args {
    /// Parses `key=value` arguments.
    pub fn parse(args: &[String]) -> Result<Args> {
        let mut map = HashMap::new();
        for arg in args {
            let (key, value) = arg.split_once('=').ok_or_else(|| format!("bad argument {arg}"))?;
            map.insert(key.to_owned(), value.to_owned());
        }
        Ok(Args(map))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Result<&str> {
        self.0.get(key).map(String::as_str).ok_or_else(|| format!("missing {key}=").into())
    }

    /// The value of `key`, parsed.
    pub fn parse_of<T: std::str::FromStr>(&self, key: &str) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        self.get(key)?.parse().map_err(|e| format!("{key}: {e}").into())
    }
}

/// Tells the parent this peer is set up.
pub fn ready() -> Result<()> {
    say("ready")
}

/// Prints one line for the parent and flushes it.
pub fn say(line: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Pins the calling thread (and the threads it starts later) to `cpu`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn pin(cpu: usize) -> Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set)
        .map_err(|e| format!("pinning to CPU {cpu}: {e}").into())
}

/// Pinning needs `sched_setaffinity`, which this platform lacks (macOS only has affinity
/// hints): `--pin` is refused with an error saying so.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn pin(cpu: usize) -> Result<()> {
    Err(format!("--pin (CPU {cpu}): pinning is supported on Linux only").into())
}

/// In a peer: pins it if the parent said so.
pub fn pin_from_env() -> Result<()> {
    match std::env::var(CPU_ENV) {
        Ok(cpu) => pin(cpu.parse().map_err(|e| format!("{CPU_ENV}={cpu}: {e}"))?),
        Err(_) => Ok(()),
    }
}
