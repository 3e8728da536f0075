//! The `waitset` example with async/await: one tokio task waits on a topic, a shutdown event
//! and a 1 s tick with `tokio::select!`. A second process (this program, started with
//! `--feeder`) publishes a reading every 200 ms for about three seconds, then sends the
//! shutdown event.
//!
//! `cargo run -p ipc-examples --bin async_select`

use std::process::{Command, Stdio};
use std::time::Duration;

use ipc_runtime::prelude::*;

const TOPIC: &str = "readings";
const SHUTDOWN: &str = "shutdown";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("--feeder") {
        return feeder();
    }
    let domain = format!("async-select-{}", std::process::id());
    ipc_runtime::domain::set_current(&domain)?;
    let readings = Subscriber::<u64>::new(TOPIC)?;
    let shutdown = Listener::new(SHUTDOWN)?;
    let mut feeder = Command::new(std::env::current_exe()?)
        .arg("--feeder")
        .env("IPC_DOMAIN", &domain)
        .stdin(Stdio::null())
        .spawn()?;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    runtime.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await; // the first tick is immediate
        let (mut received, mut ticks) = (0u64, 0u64);
        loop {
            tokio::select! {
                // Readings first: a reading sent before the shutdown is printed before it.
                biased;
                sample = readings.receive_async() => {
                    let sample = sample?;
                    received += 1;
                    println!("reading #{}: {}", sample.sequence(), *sample);
                }
                _ = tick.tick() => {
                    ticks += 1;
                    println!("tick {ticks}: {received} readings so far");
                }
                event = shutdown.wait_async() => {
                    println!("shutdown ({}) after {received} readings and {ticks} ticks", event?);
                    return Ok::<(), Error>(());
                }
            }
        }
    })?;
    feeder.wait()?;
    Ok(())
}

/// Publishes 16 readings, one every 200 ms, then asks the waiter to stop.
fn feeder() -> Result<(), Box<dyn std::error::Error>> {
    let publisher = Publisher::<u64>::new(TOPIC)?;
    let notifier = Notifier::new(SHUTDOWN)?;
    for reading in 0..16 {
        publisher.publish(20 + reading % 5)?;
        std::thread::sleep(Duration::from_millis(200));
    }
    notifier.notify(EventId::new(0))?;
    Ok(())
}
