//! Bridges the quickstart's topic (`quickstart`, message `Frame`) between machines over zenoh.
//!
//! On host A (its address 192.0.2.10), export the local topic, with a demo publisher:
//!
//! ```sh
//! cargo run --release -p ipc-zenoh --example bridge -- --listen tcp/0.0.0.0:7447 --export --publish 1000
//! ```
//!
//! On host B, import it, with a demo subscriber that prints what arrives:
//!
//! ```sh
//! cargo run --release -p ipc-zenoh --example bridge -- --connect tcp/192.0.2.10:7447 --import --print
//! ```
//!
//! Any program of either host's domain may publish or subscribe on `quickstart` instead of the
//! demo publisher and subscriber. `--config FILE` takes a zenoh JSON5 configuration instead of
//! `--listen`/`--connect` (the flags then add to it).

use std::time::Duration;

use clap::Parser;
use ipc_runtime::prelude::*;
use ipc_zenoh::Bridge;
use serde::{Deserialize, Serialize};

/// The quickstart's message (the same name, fields and topic as `ipc_examples::Frame`, so the
/// same fingerprint): a sequence number, a send timestamp and a payload.
#[derive(ShmMessage, Serialize, Deserialize, Debug)]
#[shm(topic = "quickstart")]
#[repr(C)]
pub struct Frame {
    /// 1, 2, 3, …
    pub seq: u64,
    /// Send time ([`ipc_runtime::timestamp`]).
    pub sent: i64,
    /// Payload of varying size; its bytes are `seq as u8`. Encoded as a byte string (one
    /// copy; the same postcard bytes as a sequence of `u8`).
    #[serde(with = "ipc_runtime::wire::bytes")]
    pub payload: ShmVec<u8>,
}

#[derive(Parser, Debug)]
#[command(about = "Bridge the quickstart topic to zenoh (and back)")]
struct Args {
    /// A zenoh JSON5 configuration file (default: peer mode, multicast scouting off).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Endpoint to listen on, e.g. tcp/0.0.0.0:7447 (repeatable).
    #[arg(long)]
    listen: Vec<String>,
    /// Endpoint of another bridge, e.g. tcp/192.0.2.10:7447 (repeatable).
    #[arg(long)]
    connect: Vec<String>,
    /// Export the local topic to the key expression.
    #[arg(long)]
    export: bool,
    /// Import the key expression into the local topic.
    #[arg(long)]
    import: bool,
    /// The zenoh key expression.
    #[arg(long, default_value = "ipc/quickstart")]
    key: String,
    /// Demo: publish this many frames on the local topic (1 ms apart), then keep bridging.
    #[arg(long)]
    publish: Option<u64>,
    /// Demo: print the frames that arrive on the local topic.
    #[arg(long)]
    print: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = Args::parse();
    if !args.export && !args.import {
        return Err("nothing to do: give --export and/or --import".into());
    }
    let mut config = match &args.config {
        Some(path) => ipc_zenoh::zenoh::Config::from_file(path)?,
        None => Bridge::peer_config(&[], &[])?,
    };
    let json = |items: &[String]| format!("{items:?}");
    if !args.listen.is_empty() {
        config.insert_json5("listen/endpoints", &json(&args.listen))?;
    }
    if !args.connect.is_empty() {
        config.insert_json5("connect/endpoints", &json(&args.connect))?;
    }
    let topic = <Frame as Topic>::NAME;
    let bridge = Bridge::new(config)?;
    // Created before the bridge joins: the demo subscriber fixes the topic's options.
    let subscriber = if args.print { Some(Frame::subscriber()?) } else { None };
    if args.export {
        bridge.export::<Frame>(topic, &args.key)?;
    }
    if args.import {
        bridge.import::<Frame>(&args.key, topic)?;
    }
    println!(
        "bridge {:016x} (zenoh {}): topic `{topic}` {} key `{}`",
        bridge.id(),
        bridge.session().zid(),
        match (args.export, args.import) {
            (true, true) => "<->",
            (true, false) => "->",
            _ => "<-",
        },
        args.key
    );
    if let Some(count) = args.publish {
        let publisher = Frame::publisher()?;
        if args.export && !bridge.wait_matched(topic, Duration::from_secs(60))? {
            eprintln!("no remote subscriber after 60 s; publishing anyway");
        }
        for seq in 1..=count {
            let len = 64 + (seq as usize * 7919) % (4096 - 64);
            let mut payload = ShmVec::with_capacity(len);
            payload.resize(len, seq as u8);
            publisher.publish(Frame { seq, sent: ipc_runtime::timestamp(), payload })?;
            std::thread::sleep(Duration::from_millis(1));
        }
        println!("published {count} frames");
    }
    loop {
        if let Some(err) = bridge.try_error() {
            eprintln!("bridge: {err}");
        }
        match &subscriber {
            Some(subscriber) => {
                if let Some(frame) = subscriber.receive_timeout(Duration::from_millis(200))? {
                    let micros = (ipc_runtime::timestamp() - frame.sent) as f64 / 1e3;
                    println!(
                        "#{} {} bytes, {micros:.0} µs after it was sent (clocks of two hosts differ)",
                        frame.seq,
                        frame.payload.len()
                    );
                }
            }
            None => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}
