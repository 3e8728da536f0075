//! The example programs, run as real processes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// What the domain left in the directory that lists everything a domain names in the OS
/// (`/dev/shm` on Linux; on Windows the segment registry and lock files).
fn leftovers(domain: &str) -> Vec<String> {
    let prefix = format!("{domain}.");
    std::fs::read_dir(ipc_runtime::liveness::lock_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

#[test]
fn broadcaster_lines_reach_the_client_and_exit_ends_both() {
    let domain = format!("ex-pair-{}", std::process::id());
    let mut client = Command::new(env!("CARGO_BIN_EXE_client"))
        .env("IPC_DOMAIN", &domain)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client_out = BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    client_out.read_line(&mut line).unwrap();
    assert!(line.starts_with("waiting for messages"), "{line}");

    let mut broadcaster = Command::new(env!("CARGO_BIN_EXE_broadcaster"))
        .env("IPC_DOMAIN", &domain)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    broadcaster.stdin.take().unwrap().write_all(b"hello\nzero-copy world\nexit\n").unwrap();
    let status = broadcaster.wait().unwrap();
    assert!(status.success());

    let rest: Vec<String> = client_out.lines().map_while(Result::ok).collect();
    assert!(client.wait().unwrap().success());
    assert_eq!(rest.len(), 3, "{rest:?}");
    assert!(rest[0].starts_with("latency: ") && rest[0].ends_with(" ns - hello"), "{rest:?}");
    assert!(rest[1].ends_with(" ns - zero-copy world"), "{rest:?}");
    assert_eq!(rest[2], "received exit message");
    assert!(leftovers(&domain).is_empty(), "{:?}", leftovers(&domain));
}

#[test]
fn quickstart_delivers_everything_to_both_subscribers() {
    let child = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .arg("3000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let domain = format!("quickstart-{}", child.id());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("| 1 | 3000 |"), "{stdout}");
    assert!(stdout.contains("| 2 | 3000 |"), "{stdout}");
    assert!(leftovers(&domain).is_empty(), "{:?}", leftovers(&domain));
}
