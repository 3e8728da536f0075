//! A user-defined wait backend in action: events between two processes through named pipes
//! ([`ipc_examples::fifo::Fifo`]), with the framework's public `Notifier` / `Listener` API.
//!
//! The program starts a listener process (itself, re-executed with `listener`), waits until it
//! has joined, notifies ids 0..10 — id `i` `i + 1` times, 55 events — and prints what the
//! listener received.
//!
//! Run: `cargo run -p ipc-examples --bin custom_backend` (Linux).

#[cfg(target_os = "linux")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use ipc_examples::fifo::Fifo;
    use ipc_runtime::event::{EventId, Listener, Notifier};

    const CHANNEL: &str = "custom-backend-demo";
    const EVENTS: u64 = 55;

    if std::env::args().nth(1).as_deref() == Some("listener") {
        let listener = Listener::<Fifo>::with_backend(CHANNEL)?;
        println!("ready");
        let (mut received, mut batch) = (0, Vec::new());
        let mut counts = std::collections::BTreeMap::<u64, u64>::new();
        while received < EVENTS {
            batch.clear();
            listener.wait_all(&mut batch)?;
            for &(id, n) in &batch {
                received += n;
                *counts.entry(id.value()).or_default() += n;
            }
        }
        let counts: Vec<String> = counts.iter().map(|(id, n)| format!("{id}x{n}")).collect();
        println!("listener received {received} events through FIFOs: {}", counts.join(" "));
        return Ok(());
    }

    let mut child =
        Command::new(std::env::current_exe()?).arg("listener").stdout(Stdio::piped()).spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    match lines.next() {
        Some(Ok(line)) if line == "ready" => {}
        other => return Err(format!("listener did not start: {other:?}").into()),
    }
    let notifier = Notifier::<Fifo>::with_backend(CHANNEL)?;
    for id in 0..10u64 {
        for _ in 0..=id {
            notifier.notify(EventId::new(id))?;
        }
    }
    println!("notifier sent {EVENTS} events with the `fifo` backend");
    for line in lines {
        println!("{}", line?);
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(format!("listener failed: {status}").into());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("the FIFO example backend is Linux-only (see examples/src/fifo.rs)");
}
