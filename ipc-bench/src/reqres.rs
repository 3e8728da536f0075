//! Request/response round trip over `ipc_runtime::service`, measured like the pub/sub
//! ping-pong next to it ([`crate::ours`]): the parent is the client, a peer is the server; an
//! 8-byte request (`[u8; 8]` carrying the sequence number, in an envelope of 24 bytes) and an
//! [`Ack`] response, busy-poll (`try_receive` in a loop on both sides) or blocking
//! (`receive_timeout`). Recorded as one-way = round trip / 2, like the ping-pong, so the two
//! compare directly: what request/response adds is the envelope, the routing of the response
//! to its request and the client's bookkeeping.

use std::hint::black_box;
use std::time::Instant;

use hdrhistogram::Histogram;
use ipc_runtime::prelude::*;

use crate::Result;
use crate::messages::{Ack, Fixed, STOP};
use crate::ours::{Mode, TIMEOUT};
use crate::peer::{Args, Launcher, ready};

type Request = Fixed<8>;

fn service_name(mode: Mode, round: u32) -> String {
    format!("rr.{}.r{round}", mode.key())
}

fn timed_out(what: &str) -> crate::Error {
    format!("no {what} within {TIMEOUT:?}").into()
}

/// Waits for the response in `mode`.
#[inline]
fn response<'a>(pending: &PendingResponse<'a, Ack>, mode: Mode) -> Result<Sample<'a, Ack>> {
    match mode {
        Mode::Busy => {
            let mut deadline = None;
            let mut polls = 0u32;
            loop {
                if let Some(sample) = pending.try_receive()? {
                    return Ok(sample);
                }
                polls = polls.wrapping_add(1);
                if polls.is_multiple_of(4096) {
                    let now = Instant::now();
                    if now >= *deadline.get_or_insert(now + TIMEOUT) {
                        return Err(timed_out("response"));
                    }
                }
                std::hint::spin_loop();
            }
        }
        Mode::Blocking => pending.receive_timeout(TIMEOUT)?.ok_or_else(|| timed_out("response")),
    }
}

/// One chunk of request/response round trips in `mode`: `warmup` untimed, then `iterations`
/// recorded (one-way = round trip / 2).
pub fn round_trip(
    launcher: &Launcher,
    mode: Mode,
    round: u32,
    warmup: u64,
    iterations: u64,
    hist: &mut Histogram<u64>,
) -> Result<()> {
    let service = service_name(mode, round);
    let client =
        Client::<Request, Ack>::builder(&service).max_servers(1).max_clients(1).create()?;
    let peer = launcher.spawn(
        0,
        "rr-server",
        &[("mode", mode.key().to_owned()), ("service", service.clone())],
    )?;
    let deadline = Instant::now() + TIMEOUT;
    while client.servers() == 0 {
        if Instant::now() >= deadline {
            return Err(format!("no server for `{service}`").into());
        }
        std::thread::yield_now();
    }
    for i in 0..warmup + iterations {
        let seq = i + 1;
        let request = Fixed(seq.to_le_bytes());
        let start = Instant::now();
        let pending = client.request(request)?;
        let ack = response(&pending, mode)?;
        let rtt = start.elapsed();
        if ack.seq != seq {
            return Err(format!("response {} to request {seq}", ack.seq).into());
        }
        drop(ack);
        drop(pending);
        if i >= warmup {
            hist.saturating_record((rtt.as_nanos() as u64 / 2).max(1));
        }
    }
    let pending = client.request(Fixed(STOP.to_le_bytes()))?;
    drop(response(&pending, Mode::Blocking)?);
    drop(pending);
    drop(client);
    peer.finish()
}

/// The server peer: answers every request with an [`Ack`] until the stop request, then waits
/// for the client to leave (so that its last response is read and nothing lingers).
pub fn server_peer(args: &Args) -> Result<()> {
    let mode = Mode::parse(args.get("mode")?)?;
    let server = Server::<Request, Ack>::builder(args.get("service")?)
        .max_servers(1)
        .max_clients(1)
        .create()?;
    ready()?;
    loop {
        let request = match mode {
            Mode::Busy => {
                let mut deadline = None;
                let mut polls = 0u32;
                loop {
                    if let Some(request) = server.try_receive()? {
                        break request;
                    }
                    polls = polls.wrapping_add(1);
                    if polls.is_multiple_of(4096) {
                        let now = Instant::now();
                        if now >= *deadline.get_or_insert(now + TIMEOUT) {
                            return Err(timed_out("request"));
                        }
                    }
                    std::hint::spin_loop();
                }
            }
            Mode::Blocking => {
                server.receive_timeout(TIMEOUT)?.ok_or_else(|| timed_out("request"))?
            }
        };
        let seq = u64::from_le_bytes(request.0);
        let received = ipc_runtime::timestamp();
        black_box(&request.0);
        request.respond(Ack { seq, received })?;
        if seq == STOP {
            break;
        }
    }
    let deadline = Instant::now() + TIMEOUT;
    while server.clients() > 0 {
        if Instant::now() >= deadline {
            return Err("the client did not leave".into());
        }
        let _ = server.receive_timeout(std::time::Duration::from_millis(1))?;
    }
    Ok(())
}
