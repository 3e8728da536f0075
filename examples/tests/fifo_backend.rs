//! The user-defined FIFO backend (`examples/src/fifo.rs`) passes the framework's public
//! conformance suite, and the `custom_backend` example runs it across two processes and leaves
//! its domain clean.
#![cfg(target_os = "linux")]

use std::process::Command;

use ipc_examples::fifo::Fifo;

#[test]
fn fifo_backend_conforms() {
    ipc_runtime::wait::conformance::run::<Fifo>();
}

#[test]
fn custom_backend_example_delivers_every_event_across_processes() {
    let domain = format!("t{}-fifo-example", std::process::id());
    let out = Command::new(env!("CARGO_BIN_EXE_custom_backend"))
        .env("IPC_DOMAIN", &domain)
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "example failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: Vec<String> = (0..10).map(|i| format!("{i}x{}", i + 1)).collect();
    assert!(
        stdout.contains(&format!(
            "listener received 55 events through FIFOs: {}",
            expected.join(" ")
        )),
        "{stdout}"
    );
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{domain}.")))
        .collect();
    assert!(left.is_empty(), "the example left {left:?}");
}
