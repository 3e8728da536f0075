//! Request/response across real processes: several clients and servers, checksummed payloads
//! both ways, crashes of either side, type mismatches and streams. Each test re-runs this
//! binary in roles, in its own `IPC_DOMAIN`, and checks the domain is clean afterwards.

mod support;

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ipc_runtime::prelude::*;
use support::{env, finish, spawn_held_role, stdout_lines, wait_for_line};

const SERVICE: &str = "jobs";

/// A request: who sent it, its number, and a payload in the client's memory.
#[derive(ShmMessage)]
#[repr(C)]
struct Job {
    client: u32,
    _reserved: u32,
    seq: u64,
    data: ShmVec<u8>,
}

/// A response: the request's identity, which server answered, a checksum of the request's
/// payload and the payload reversed (in the server's memory).
#[derive(ShmMessage, Default, Debug)]
#[repr(C)]
struct Done {
    client: u32,
    server: u32,
    seq: u64,
    checksum: u64,
    data: ShmVec<u8>,
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn payload(client: u32, seq: u64) -> Vec<u8> {
    let mut x = (seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(client)) | 1;
    let len = (x >> 7) as usize % 2048;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn job(client: u32, seq: u64) -> Job {
    Job { client, _reserved: 0, seq, data: ShmVec::from_slice(&payload(client, seq)) }
}

fn answer(server: u32, job: &Job) -> Done {
    let mut data: Vec<u8> = job.data.to_vec();
    data.reverse();
    Done {
        client: job.client,
        server,
        seq: job.seq,
        checksum: fnv(&job.data),
        data: ShmVec::from_slice(&data),
    }
}

fn check(client: u32, seq: u64, done: &Done) {
    let expected = payload(client, seq);
    assert_eq!((done.client, done.seq), (client, seq), "response to another request");
    assert_eq!(done.checksum, fnv(&expected), "checksum of request {seq}");
    assert!(done.data.iter().eq(expected.iter().rev()), "payload of response {seq}");
}

/// Requests per client: 10 000 (about 2.5 s in a debug build); `IPC_STRESS_REQUESTS`
/// overrides.
fn requests_per_client() -> u64 {
    std::env::var("IPC_STRESS_REQUESTS").map_or(10_000, |n| n.parse().expect("IPC_STRESS_REQUESTS"))
}

/// A server role: answers every request until the parent closes stdin; prints what it served.
fn serve_until_told(id: u32) {
    let server = Server::<Job, Done>::builder(SERVICE).max_clients(8).create().unwrap();
    println!("ready");
    let stop = support::parent_gone_flag();
    let mut served = 0u64;
    while !stop.load(Ordering::Acquire) {
        if let Some(request) = server.receive_timeout(Duration::from_millis(50)).unwrap() {
            let done = answer(id, &request);
            request.respond(done).unwrap();
            served += 1;
        }
    }
    println!("served={served}");
}

#[test]
fn three_clients_two_servers_every_response_matches() {
    let test = "three_clients_two_servers_every_response_matches";
    let n = requests_per_client();
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("rr-many");
            let mut servers: Vec<_> = (0..2)
                .map(|i| spawn_held_role(test, "server", &domain, &[("SERVER_ID", i.to_string())]))
                .collect();
            let mut server_out: Vec<_> = servers.iter_mut().map(stdout_lines).collect();
            for out in &mut server_out {
                assert!(wait_for_line(out, "ready"), "server did not start");
            }
            let envs =
                |i: u32| [("CLIENT_ID", i.to_string()), ("IPC_STRESS_REQUESTS", n.to_string())];
            let clients: Vec<_> =
                (0..3).map(|i| support::spawn_role(test, "client", &domain, &envs(i))).collect();
            let start = Instant::now();
            let mut by_server = [0u64; 2];
            for client in clients {
                let out = client.wait_with_output().unwrap();
                support::assert_success("client", &out);
                assert_eq!(support::field(&out, "received"), Some(n.to_string()));
                for (k, count) in support::field(&out, "by_server").unwrap().split(',').enumerate()
                {
                    by_server[k] += count.parse::<u64>().unwrap();
                }
            }
            let elapsed = start.elapsed();
            let mut served = 0;
            for (server, out) in servers.into_iter().zip(server_out) {
                let (status, stdout, stderr) = finish(server, Some(out));
                assert!(status.success(), "server failed: {stdout}\n{stderr}");
                let count: u64 = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("served="))
                    .expect("served=")
                    .parse()
                    .unwrap();
                assert!(count > 0, "a server got no requests: {stdout}");
                served += count;
            }
            // Every request was served exactly once (a request delivered twice would be served
            // twice) and every response reached its client (counted there).
            assert_eq!(served, 3 * n, "requests served vs sent");
            assert_eq!(by_server.iter().sum::<u64>(), 3 * n);
            println!(
                "request/response: 3 clients x {n} requests to 2 servers in {:.2} s ({:?} per server)",
                elapsed.as_secs_f64(),
                by_server
            );
            support::assert_clean(&domain);
        }
        Some("server") => serve_until_told(env("SERVER_ID").parse().unwrap()),
        Some("client") => {
            let me: u32 = env("CLIENT_ID").parse().unwrap();
            let n: u64 = env("IPC_STRESS_REQUESTS").parse().unwrap();
            let client = Client::<Job, Done>::builder(SERVICE).max_clients(8).create().unwrap();
            assert!(
                support::wait_until(Duration::from_secs(30), || client.servers() >= 2),
                "servers not found"
            );
            let mut by_server = [0u64; 2];
            let mut check_one = |(seq, pending): (u64, PendingResponse<'_, Done>)| {
                let done = pending
                    .receive_timeout(Duration::from_secs(60))
                    .unwrap()
                    .unwrap_or_else(|| panic!("no response to request {seq}"));
                check(me, seq, &done);
                assert_eq!(done.sequence(), 1, "first response of its stream");
                by_server[done.server as usize] += 1;
                drop(done);
                assert!(pending.is_finished(), "one response ends the stream");
                assert!(pending.try_receive().unwrap().is_none(), "a second response to {seq}");
            };
            // Up to 8 requests in flight: responses of several requests interleave.
            let mut in_flight = VecDeque::new();
            for seq in 1..=n {
                in_flight.push_back((seq, client.request(job(me, seq)).unwrap()));
                if in_flight.len() == 8 {
                    check_one(in_flight.pop_front().unwrap());
                }
            }
            while let Some(next) = in_flight.pop_front() {
                check_one(next);
            }
            println!("received={n}");
            println!("by_server={},{}", by_server[0], by_server[1]);
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn killed_server_fails_pending_requests_and_a_restarted_one_serves() {
    let test = "killed_server_fails_pending_requests_and_a_restarted_one_serves";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("rr-killserver");
            let mut stalling = spawn_held_role(test, "stalling-server", &domain, &[]);
            let mut stalling_out = stdout_lines(&mut stalling);
            assert!(wait_for_line(&mut stalling_out, "ready"), "server did not start");
            let mut client = spawn_held_role(test, "client", &domain, &[]);
            let mut client_out = stdout_lines(&mut client);
            assert!(wait_for_line(&mut client_out, "streaming"), "no first response");
            stalling.kill().unwrap();
            let _ = stalling.wait();
            assert!(wait_for_line(&mut client_out, "no-server"), "the client did not notice");
            let restarted = spawn_held_role(test, "server", &domain, &[("SERVER_ID", "1".into())]);
            assert!(
                wait_for_line(&mut client_out, "restarted-ok"),
                "the restarted server was not used"
            );
            let (status, stdout, stderr) = finish(client, Some(client_out));
            assert!(status.success(), "client failed: {stdout}\n{stderr}");
            let (status, stdout, stderr) = finish(restarted, None);
            assert!(status.success(), "server failed: {stdout}\n{stderr}");
            support::assert_clean(&domain);
        }
        Some("stalling-server") => {
            let server = Server::<Job, Done>::new(SERVICE).unwrap();
            println!("ready");
            let request = server.receive().unwrap();
            // The first response of a stream, then nothing: the parent kills us mid-stream.
            request.send(answer(0, &request)).unwrap();
            support::wait_for_parent();
            unreachable!("killed");
        }
        Some("server") => serve_until_told(env("SERVER_ID").parse().unwrap()),
        Some("client") => {
            let client = Client::<Job, Done>::new(SERVICE).unwrap();
            assert!(support::wait_until(Duration::from_secs(30), || client.servers() >= 1));
            let pending = client.request(job(0, 1)).unwrap();
            let first = pending.receive_timeout(Duration::from_secs(30)).unwrap().expect("first");
            check(0, 1, &first);
            drop(first);
            println!("streaming");
            // The server is killed now; the next receive must fail, not hang.
            let start = Instant::now();
            let err = loop {
                match pending.receive_timeout(Duration::from_secs(30)) {
                    Err(err) => break err,
                    Ok(Some(_)) => panic!("a response from a killed server"),
                    Ok(None) => assert!(start.elapsed() < Duration::from_secs(30), "hangs"),
                }
            };
            let waited = start.elapsed();
            assert!(matches!(err, Error::NoServer { .. }), "{err}");
            assert!(err.to_string().contains(SERVICE), "{err}");
            // Generous bound: the liveness interval is 100 ms.
            assert!(waited < Duration::from_secs(10), "noticed after {waited:?}");
            eprintln!("pending request failed after {waited:?}: {err}");
            drop(pending);
            println!("no-server");
            // The restarted server is picked up for new requests.
            assert!(
                support::wait_until(Duration::from_secs(30), || client.servers() >= 1),
                "no restarted server"
            );
            for seq in 2..=101 {
                let pending = client.request(job(0, seq)).unwrap();
                let done =
                    pending.receive_timeout(Duration::from_secs(30)).unwrap().expect("response");
                check(0, seq, &done);
                assert_eq!(done.server, 1, "answered by the restarted server");
            }
            println!("restarted-ok");
            support::wait_for_parent();
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn killed_client_gives_the_server_its_memory_back() {
    let test = "killed_client_gives_the_server_its_memory_back";
    const SENT: u64 = 8;
    const ANSWERED: u64 = 5;
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("rr-killclient");
            let mut server = spawn_held_role(test, "server", &domain, &[]);
            let mut server_out = stdout_lines(&mut server);
            assert!(wait_for_line(&mut server_out, "ready"), "server did not start");
            let mut client = spawn_held_role(test, "client", &domain, &[]);
            let mut client_out = stdout_lines(&mut client);
            assert!(wait_for_line(&mut client_out, "sent"), "client did not send");
            assert!(wait_for_line(&mut server_out, "answered"), "server did not answer");
            client.kill().unwrap();
            let _ = client.wait();
            assert!(wait_for_line(&mut server_out, "back-to-baseline"), "server memory not back");
            let (status, stdout, stderr) = finish(server, Some(server_out));
            assert!(status.success(), "server failed: {stdout}\n{stderr}");
            support::assert_clean(&domain);
        }
        Some("server") => {
            let server = Server::<Job, Done>::new(SERVICE).unwrap();
            let baseline = ipc_runtime::heap_stats().bytes_in_use();
            println!("ready");
            // Answer the first requests with 64 KiB each; the client reads none of them, and
            // the rest of its requests stay queued here.
            for _ in 0..ANSWERED {
                let request =
                    server.receive_timeout(Duration::from_secs(30)).unwrap().expect("request");
                let mut done = answer(0, &request);
                done.data.extend_from_slice(&[7; 64 * 1024]);
                request.respond(done).unwrap();
            }
            let held = ipc_runtime::heap_stats().bytes_in_use();
            assert!(held > baseline + ANSWERED * 64 * 1024, "{held} vs {baseline}");
            assert_eq!(server.clients(), 1);
            println!("answered");
            // The client is killed now: its queued requests are dropped, not handed out, and
            // everything we queued for it comes back.
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(request) = server.receive_timeout(Duration::from_millis(20)).unwrap() {
                    // Taken before the client was found dead: allowed, but only while it lived.
                    assert!(Instant::now() < deadline, "request {} of a dead client", request.seq);
                    continue;
                }
                let now = ipc_runtime::heap_stats().bytes_in_use();
                if now == baseline && server.clients() == 0 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "heap {now} bytes, baseline {baseline}; clients {}",
                    server.clients()
                );
            }
            // Nothing of the dead client's is handed out any more.
            assert!(server.receive_timeout(Duration::from_millis(200)).unwrap().is_none());
            println!("back-to-baseline");
            support::wait_for_parent();
        }
        Some("client") => {
            let client = Client::<Job, Done>::new(SERVICE).unwrap();
            assert!(support::wait_until(Duration::from_secs(30), || client.servers() >= 1));
            let pending: Vec<_> =
                (1..=SENT).map(|seq| client.request(job(0, seq)).unwrap()).collect();
            println!("sent");
            support::wait_for_parent();
            drop(pending);
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn mismatched_types_are_refused_naming_service_and_types() {
    let test = "mismatched_types_are_refused_naming_service_and_types";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("rr-mismatch");
            let mut server = spawn_held_role(test, "server", &domain, &[]);
            let mut server_out = stdout_lines(&mut server);
            assert!(wait_for_line(&mut server_out, "ready"), "server did not start");
            let out = support::run_role(test, "client", &domain, &[]);
            support::assert_success("client", &out);
            let (status, stdout, stderr) = finish(server, Some(server_out));
            assert!(status.success(), "server failed: {stdout}\n{stderr}");
            support::assert_clean(&domain);
        }
        Some("server") => {
            let _server = Server::<Job, Done>::new(SERVICE).unwrap();
            println!("ready");
            support::wait_for_parent();
        }
        Some("client") => {
            // Same request type, another response type.
            let err = Client::<Job, u64>::new(SERVICE).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::ServiceMismatch { .. }), "{text}");
            assert_eq!(
                text,
                "service `jobs` serves `Job -> Done`; this participant uses `Job -> u64`"
            );
            // And a server with other types.
            let err = Server::<u32, Done>::new(SERVICE).unwrap_err();
            assert_eq!(
                err.to_string(),
                "service `jobs` serves `Job -> Done`; this participant uses `u32 -> Done`"
            );
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn streams_arrive_in_order_and_end() {
    let test = "streams_arrive_in_order_and_end";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("rr-stream");
            let mut server = spawn_held_role(test, "server", &domain, &[]);
            let mut server_out = stdout_lines(&mut server);
            assert!(wait_for_line(&mut server_out, "ready"), "server did not start");
            let out = support::run_role(test, "client", &domain, &[]);
            support::assert_success("client", &out);
            let (status, stdout, stderr) = finish(server, Some(server_out));
            assert!(status.success(), "server failed: {stdout}\n{stderr}");
            support::assert_clean(&domain);
        }
        Some("server") => {
            // Request n asks for n responses; odd n end with `respond`, even n by dropping the
            // request after the n-th `send`; n = 0 gets none at all.
            let server = Server::<u32, Done>::new("stream").unwrap();
            println!("ready");
            let stop = support::parent_gone_flag();
            while !stop.load(Ordering::Acquire) {
                let Some(request) = server.receive_timeout(Duration::from_millis(50)).unwrap()
                else {
                    continue;
                };
                let n = *request;
                let part = |k: u32| answer(7, &job(n, u64::from(k)));
                if n % 2 == 1 {
                    for k in 1..n {
                        request.send(part(k)).unwrap();
                    }
                    // The last one built in place.
                    let done = part(n);
                    let mut response = request.loan().unwrap();
                    *response = done;
                    response.respond().unwrap();
                } else {
                    for k in 1..=n {
                        request.send(part(k)).unwrap();
                    }
                    drop(request);
                }
            }
        }
        Some("client") => {
            let client = Client::<u32, Done>::new("stream").unwrap();
            assert!(support::wait_until(Duration::from_secs(30), || client.servers() >= 1));
            // Several streams in flight at once, read in reverse order: the responses of the
            // others are kept aside meanwhile (21 in all: within the response queue's 16 plus
            // the 16 samples a client may hold).
            let pending: Vec<_> = (0..=6).map(|n| (n, client.request(n).unwrap())).collect();
            for (n, pending) in pending.into_iter().rev() {
                for k in 1..=n {
                    let part = pending
                        .receive_timeout(Duration::from_secs(30))
                        .unwrap()
                        .unwrap_or_else(|| panic!("part {k} of stream {n}"));
                    assert_eq!(part.sequence(), u64::from(k));
                    check(n, u64::from(k), &part);
                }
                // Ended, whether by `respond` or by dropping the request.
                assert!(pending.receive_timeout(Duration::from_secs(30)).unwrap().is_none());
                assert!(pending.is_finished(), "stream {n} not finished");
                let err = pending.receive().unwrap_err();
                assert!(matches!(err, Error::ResponsesEnded { .. }), "{err}");
            }
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn a_waitset_serves_requests_and_notices_a_dead_server() {
    let test = "a_waitset_serves_requests_and_notices_a_dead_server";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("rr-waitset");
            let mut server = spawn_held_role(test, "ws-server", &domain, &[]);
            let mut server_out = stdout_lines(&mut server);
            assert!(wait_for_line(&mut server_out, "ready"), "server did not start");
            let mut client = spawn_held_role(test, "ws-client", &domain, &[]);
            let mut client_out = stdout_lines(&mut client);
            assert!(wait_for_line(&mut client_out, "served"), "requests were not served");
            server.kill().unwrap();
            let _ = server.wait();
            let (status, stdout, stderr) = finish(client, Some(client_out));
            assert!(status.success(), "client failed: {stdout}\n{stderr}");
            assert!(stdout.contains("no-server"), "{stdout}");
            support::assert_clean(&domain);
        }
        Some("ws-server") => {
            // Serves from a WaitSet; the last request gets one response and then nothing
            // (the parent kills us mid-stream).
            let server = Server::<Job, Done>::new(SERVICE).unwrap();
            let waitset = WaitSet::new();
            let requests = waitset.attach(&server);
            println!("ready");
            let mut served = 0;
            loop {
                let ready = waitset.wait_timeout(Duration::from_secs(30)).unwrap();
                assert!(ready.contains(&requests.id()), "woke with nothing ready");
                while let Some(request) = server.try_receive().unwrap() {
                    served += 1;
                    let done = answer(0, &request);
                    if served <= 20 {
                        request.respond(done).unwrap();
                    } else {
                        request.send(done).unwrap();
                        support::wait_for_parent();
                        unreachable!("killed");
                    }
                }
            }
        }
        Some("ws-client") => {
            let client = Client::<Job, Done>::new(SERVICE).unwrap();
            assert!(support::wait_until(Duration::from_secs(30), || client.servers() >= 1));
            for seq in 1..=20 {
                let pending = client.request(job(0, seq)).unwrap();
                let waitset = WaitSet::new();
                let attached = waitset.attach(&pending);
                let done = loop {
                    let ready = waitset.wait_timeout(Duration::from_secs(30)).unwrap();
                    assert!(ready.contains(&attached.id()), "woke with nothing ready");
                    if let Some(done) = pending.try_receive().unwrap() {
                        break done;
                    }
                };
                check(0, seq, &done);
            }
            let pending = client.request(job(0, 21)).unwrap();
            let waitset = WaitSet::new();
            let attached = waitset.attach(&pending);
            let first = loop {
                waitset.wait_timeout(Duration::from_secs(30)).unwrap();
                if let Some(first) = pending.try_receive().unwrap() {
                    break first;
                }
            };
            check(0, 21, &first);
            drop(first);
            println!("served");
            // The server is killed now: the wait set wakes for the probe and try_receive
            // reports it.
            let start = Instant::now();
            let err = loop {
                let ready = waitset.wait_timeout(Duration::from_secs(30)).unwrap();
                assert!(start.elapsed() < Duration::from_secs(10), "not noticed");
                if ready.contains(&attached.id()) {
                    match pending.try_receive() {
                        Err(err) => break err,
                        Ok(Some(_)) => panic!("a response from a killed server"),
                        Ok(None) => {}
                    }
                }
            };
            assert!(matches!(err, Error::NoServer { .. }), "{err}");
            println!("no-server");
            drop(attached);
            support::wait_for_parent();
        }
        Some(other) => panic!("unknown role {other}"),
    }
}
