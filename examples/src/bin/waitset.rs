//! One thread waits on a topic, a shutdown event and a 1 s tick in one `WaitSet`: a second
//! process (this program, started with `--feeder`) publishes a reading every 200 ms for about
//! three seconds, then sends the shutdown event.
//!
//! `cargo run -p ipc-examples --bin waitset`

use std::ops::ControlFlow;
use std::process::{Command, Stdio};
use std::time::Duration;

use ipc_runtime::prelude::*;

const TOPIC: &str = "readings";
const SHUTDOWN: &str = "shutdown";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().nth(1).as_deref() == Some("--feeder") {
        return feeder();
    }
    // A private domain, so several runs (and other programs) never meet.
    let domain = format!("waitset-{}", std::process::id());
    ipc_runtime::domain::set_current(&domain)?;
    let readings = Subscriber::<u64>::new(TOPIC)?;
    let shutdown = Listener::new(SHUTDOWN)?;

    let waitset = WaitSet::new();
    let data = waitset.attach(&readings);
    let stop = waitset.attach(&shutdown);
    let tick = waitset.attach_interval(Duration::from_secs(1));

    let mut feeder = Command::new(std::env::current_exe()?)
        .arg("--feeder")
        .env("IPC_DOMAIN", &domain)
        .stdin(Stdio::null())
        .spawn()?;
    let (mut received, mut ticks) = (0u64, 0u64);
    waitset.run(|ready| {
        if ready == data.id() {
            for sample in readings.try_iter() {
                let sample = sample?;
                received += 1;
                println!("reading #{}: {}", sample.sequence(), *sample);
            }
        } else if ready == tick.id() {
            ticks += 1;
            println!("tick {ticks}: {received} readings so far");
        } else if ready == stop.id()
            && let Some(event) = shutdown.try_wait()?
        {
            println!("shutdown ({event}) after {received} readings and {ticks} ticks");
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
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
