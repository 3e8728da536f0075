//! A hostile peer: a subscriber of the topic, in a process of its own, that writes garbage into
//! every piece of shared memory it can write (its own port and registry entry, its completion
//! ring, the whole topic segment). It must not make another subscriber (the *victim*) receive a
//! message that was not published, lose messages silently or stop receiving, nor make the
//! publisher panic.
//!
//! Every test runs three processes (this binary re-run in roles, in a domain of its own): a
//! publisher, a victim subscriber and the hostile subscriber. The publisher publishes `N`
//! messages whose payload is a function of the sequence ([`Payload`]); once both subscribers
//! have received the first message, the hostile peer attacks in a loop until the parent tells it
//! to stop (closes its stdin), while the publisher publishes the rest. The victim checks what it receives; the
//! publisher must exit successfully, having logged the hostile peer's garbage; at the end the
//! domain must be clean.
//!
//! Unix only for now: the scenarios are timing-heavy (hundreds of thousands of messages in three
//! processes) and have not been tried under Wine, and the segment-header test names the objects
//! a Linux domain leaves in `/dev/shm`.
#![cfg(unix)]

mod support;

use std::io::{BufRead, Read, Write};
use std::process::{Child, ChildStderr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ipc_runtime::prelude::*;
use ipc_runtime::segment::{Access, Segment, SegmentKind, SegmentName};
use support::{spawn_held_role, stdout_lines};

/// The topic every test uses (each test has a domain of its own).
const TOPIC: &str = "hostile";

/// Messages published per test.
const N: u64 = if cfg!(debug_assertions) { 100_000 } else { 500_000 };

/// How long the victim waits for any one message before calling it a stall.
const RECEIVE_DEADLINE: Duration = Duration::from_secs(60);

/// A message whose every word is a function of its sequence: anything else received as
/// sequence `seq` was never published.
trait Payload: ShmMessage + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    fn of(seq: u64) -> Self;
}

/// (sequence, a function of it): small enough to travel inside a ring entry (the subscriber
/// reads a copy; nothing is returned to the publisher).
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
struct Small(u64, u64);

impl Payload for Small {
    fn of(seq: u64) -> Self {
        Small(seq, seq.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
}

/// The sequence and seven functions of it: 64 bytes, too big to travel inline, so it lives in
/// a slot of the publisher's pool, which subscribers read in place and return.
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
struct Large {
    seq: u64,
    words: [u64; 7],
}

impl Payload for Large {
    fn of(seq: u64) -> Self {
        let mix = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Large { seq, words: std::array::from_fn(|i| mix.rotate_left(9 * i as u32) ^ i as u64) }
    }
}

/// What the hostile peer does in its loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    /// `debug_scribble_port` with a new seed every round: its whole port and registry entry.
    Port,
    /// Garbage over the whole topic segment after its 64-byte segment header: the topic
    /// header (options, epoch, broadcast wake word) and every participant's registry entry.
    Topic,
    /// `debug_scribble_completion` with out-of-range and duplicate slots and a wrecked tail.
    Completion,
    /// All of the above, interleaved.
    All,
    /// Writes through a pointer to a received message (the publisher's memory).
    Crash,
    /// Garbage over the whole topic segment, its segment header included.
    Header,
    /// Not garbage but a forgery: copies the publisher's registry entry into a free publisher
    /// slot and the victim's into a free subscriber slot (everything in the topic segment is
    /// readable and writable), then makes everyone re-read the registry.
    Forge,
}

impl Attack {
    fn name(self) -> &'static str {
        match self {
            Attack::Port => "port",
            Attack::Topic => "topic",
            Attack::Completion => "completion",
            Attack::All => "all",
            Attack::Crash => "crash",
            Attack::Header => "header",
            Attack::Forge => "forge",
        }
    }

    fn parse(s: &str) -> Attack {
        [
            Attack::Port,
            Attack::Topic,
            Attack::Completion,
            Attack::All,
            Attack::Crash,
            Attack::Header,
            Attack::Forge,
        ]
        .into_iter()
        .find(|a| a.name() == s)
        .unwrap_or_else(|| panic!("unknown attack {s}"))
    }

    /// Whether the hostile peer keeps consuming messages between attacks. One whose own memory
    /// is intact must: under `Overflow::Block` a subscriber that stops reading holds the
    /// publisher up by design (until its block timeout). One that wrecks its own memory does
    /// not, so a blocking publisher has to find out and disconnect it.
    fn hostile_reads(self) -> bool {
        matches!(self, Attack::Topic | Attack::All | Attack::Header | Attack::Forge)
    }
}

/// One test's set-up, handed to every role through the environment.
#[derive(Debug, Clone, Copy)]
struct Config {
    overflow: Overflow,
    /// Messages travel inline ([`Small`]) rather than in the publisher's pool ([`Large`]).
    small: bool,
    attack: Attack,
    /// The publisher must have disconnected the hostile peer by the end (while it still runs).
    expect_disconnect: bool,
    /// The publisher must have logged "…; disconnecting it" about the hostile peer.
    expect_logged_disconnect: bool,
}

impl Config {
    fn envs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOSTILE_OVERFLOW", format!("{:?}", self.overflow)),
            ("HOSTILE_ATTACK", self.attack.name().to_owned()),
            ("HOSTILE_N", N.to_string()),
            ("HOSTILE_SMALL", self.small.to_string()),
        ]
    }

    fn from_env(expect_disconnect: bool, expect_logged_disconnect: bool) -> Config {
        let overflow = match env("HOSTILE_OVERFLOW").as_str() {
            "Block" => Overflow::Block,
            "DropOldest" => Overflow::DropOldest,
            other => panic!("unknown overflow {other}"),
        };
        assert_eq!(env("HOSTILE_N"), N.to_string(), "parent and child disagree on N");
        Config {
            overflow,
            small: env("HOSTILE_SMALL") == "true",
            attack: Attack::parse(&env("HOSTILE_ATTACK")),
            expect_disconnect,
            expect_logged_disconnect,
        }
    }

    /// Queue capacity: small under `Block` (the publisher often waits for the slowest), larger
    /// under `DropOldest` so that the victim, reading as fast as it can, rarely falls behind.
    fn capacity(&self) -> u32 {
        match self.overflow {
            Overflow::Block => 16,
            Overflow::DropOldest => 64,
        }
    }

    fn try_publisher<M: Payload>(&self) -> ipc_runtime::Result<Publisher<M>> {
        Publisher::<M>::builder(TOPIC)
            .overflow(self.overflow)
            .subscriber_capacity(self.capacity())
            .block_timeout(Duration::from_secs(30))
            .create()
    }

    fn try_subscriber<M: Payload>(&self) -> ipc_runtime::Result<Subscriber<M>> {
        Subscriber::<M>::builder(TOPIC)
            .overflow(self.overflow)
            .subscriber_capacity(self.capacity())
            .create()
    }

    fn publisher<M: Payload>(&self) -> Publisher<M> {
        self.try_publisher().expect("create the publisher")
    }

    fn subscriber<M: Payload>(&self) -> Subscriber<M> {
        self.try_subscriber().expect("create a subscriber")
    }
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} not set"))
}

fn field<'a>(stdout: &'a str, key: &str) -> Option<&'a str> {
    let prefix = format!("{key}=");
    stdout.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}

/// A xorshift generator seeded from the OS's randomness (the seed is printed, for the record).
fn rng() -> (u64, impl FnMut() -> u64) {
    use std::hash::{BuildHasher, Hasher};
    let seed = std::collections::hash_map::RandomState::new().build_hasher().finish() | 1;
    let mut x = seed;
    (seed, move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    })
}

// ---------------------------------------------------------------------------------------------
// The parent's side.

/// Drains a child's stderr on a thread as it comes (a chatty child must never block on a full
/// pipe while the parent waits for something else), keeping what the checks need.
struct StderrTap(JoinHandle<Log>);

#[derive(Debug, Default)]
struct Log {
    lines: u64,
    /// The first lines, for failure messages.
    head: Vec<String>,
    /// Lines mentioning a panic.
    panics: Vec<String>,
    /// Lines reporting a subscriber disconnected for garbage.
    disconnects: Vec<String>,
    /// Lines logged at ERROR level.
    errors: u64,
}

impl StderrTap {
    fn new(child: &mut Child) -> StderrTap {
        let stderr: ChildStderr = child.stderr.take().expect("piped stderr");
        StderrTap(std::thread::spawn(move || {
            let mut log = Log::default();
            let mut reader = std::io::BufReader::new(stderr);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                log.lines += 1;
                if text.contains("ERROR") {
                    log.errors += 1;
                }
                if text.contains("panicked") {
                    log.panics.push(text.clone());
                }
                if text.contains("disconnecting it") && log.disconnects.len() < 20 {
                    log.disconnects.push(text.clone());
                }
                if log.head.len() < 60 {
                    log.head.push(text);
                }
            }
            log
        }))
    }

    fn join(self) -> Log {
        self.0.join().expect("stderr reader")
    }
}

/// A child's stdout, read line by line, keeping everything read.
struct Transcript {
    reader: std::io::BufReader<std::process::ChildStdout>,
    text: String,
}

impl Transcript {
    fn new(child: &mut Child) -> Transcript {
        Transcript { reader: stdout_lines(child), text: String::new() }
    }

    /// Reads until a line equal to `line` (true) or the end of the stream (false).
    fn wait_for(&mut self, line: &str) -> bool {
        let mut buf = String::new();
        loop {
            buf.clear();
            match self.reader.read_line(&mut buf) {
                Ok(0) | Err(_) => return false,
                Ok(_) => self.text.push_str(&buf),
            }
            if buf.trim_end() == line {
                return true;
            }
        }
    }
}

/// A child role with its stdout transcribed and its stderr tapped.
struct Running {
    role: &'static str,
    child: Child,
    out: Transcript,
    err: StderrTap,
}

impl Running {
    fn spawn(
        test: &str,
        role: &'static str,
        domain: &str,
        envs: &[(&'static str, String)],
    ) -> Running {
        let mut child = spawn_held_role(test, role, domain, envs);
        let out = Transcript::new(&mut child);
        let err = StderrTap::new(&mut child);
        Running { role, child, out, err }
    }

    /// Waits for `line`; whether it came (false: the child's stdout ended first).
    fn wait_for(&mut self, line: &str) -> bool {
        self.out.wait_for(line)
    }

    /// Kills the child (after a failure elsewhere) and returns what it said.
    fn kill(mut self) -> String {
        let _ = self.child.kill();
        let (status, stdout, log) = self.finish_ref();
        format!("--- the {} ({status}):\n{stdout}{}", self.role, log.head.join("\n"))
    }

    fn finish_ref(&mut self) -> (std::process::ExitStatus, String, Log) {
        drop(self.child.stdin.take());
        let mut text = std::mem::take(&mut self.out.text);
        let _ = self.out.reader.read_to_string(&mut text);
        let err = std::mem::replace(&mut self.err, StderrTap(std::thread::spawn(Log::default)));
        let log = err.join();
        let status = self.child.wait().expect("wait for child");
        (status, text, log)
    }

    /// Closes its stdin (its cue to finish) and waits for it.
    fn finish(mut self) -> (std::process::ExitStatus, String, Log) {
        self.finish_ref()
    }
}

/// The children of one test: when one fails, every one's output goes into the panic message.
#[derive(Default)]
struct Scene {
    children: Vec<Option<Running>>,
}

impl Scene {
    /// Starts child `role` and waits until it says `first_line` (failing the test with
    /// everything said if it ends before).
    fn spawn(
        &mut self,
        test: &str,
        role: &'static str,
        domain: &str,
        envs: &[(&'static str, String)],
        first_line: &str,
    ) -> usize {
        self.children.push(Some(Running::spawn(test, role, domain, envs)));
        let i = self.children.len() - 1;
        self.expect(i, first_line);
        i
    }

    fn get(&mut self, i: usize) -> &mut Running {
        self.children[i].as_mut().expect("a running child")
    }

    /// Waits for child `i` to say `line`; if it ends first, kills the others and fails with
    /// everything all of them said.
    fn expect(&mut self, i: usize, line: &str) {
        if !self.get(i).wait_for(line) {
            let role = self.get(i).role;
            self.fail(&format!("the {role} ended without saying `{line}`"));
        }
    }

    /// Takes child `i` out of the scene (to finish it).
    fn take(&mut self, i: usize) -> Running {
        self.children[i].take().expect("a running child")
    }

    fn fail(&mut self, what: &str) -> ! {
        let outputs: Vec<String> =
            self.children.iter_mut().filter_map(Option::take).map(Running::kill).collect();
        panic!("{what}\n{}", outputs.join("\n"));
    }
}

fn send_line(child: &mut Child, line: &str) {
    let stdin = child.stdin.as_mut().expect("piped stdin");
    writeln!(stdin, "{line}").expect("write to child");
    stdin.flush().expect("flush to child");
}

/// The three-process scenario of every scribbling test.
fn parent(test: &str, config: Config) {
    let domain = support::unique_domain(config.attack.name());
    let envs = config.envs();
    let started = Instant::now();

    let mut scene = Scene::default();
    let victim = scene.spawn(test, "victim", &domain, &envs, "ready");
    let hostile = scene.spawn(test, "hostile", &domain, &envs, "ready");
    let publisher = scene.spawn(test, "pub", &domain, &envs, "first");

    // Both subscribers have the first message (so everyone has found everyone: the registry is
    // only read to find newcomers, and garbage in it may keep participants from finding each
    // other). The hostile peer attacks from now on; only then is the rest published.
    scene.expect(victim, "first");
    scene.expect(hostile, "armed");
    send_line(&mut scene.get(hostile).child, "attack");
    scene.expect(hostile, "attacking");
    send_line(&mut scene.get(publisher).child, "go");
    scene.expect(publisher, "published");
    scene.expect(publisher, "checked");

    // The victim received everything while the hostile peer was still at it (or found
    // something wrong: it says so when it exits, after an orderly shutdown of everyone).
    scene.expect(victim, "finished");
    let (status, victim_stdout, victim_log) = scene.take(victim).finish();
    let victim_failure = (!status.success()).then(|| {
        format!("the victim failed ({status}):\n{victim_stdout}{}", victim_log.head.join("\n"))
    });
    let (hostile, publisher) = (scene.take(hostile), scene.take(publisher));

    // Stop the hostile peer, then let the publisher go.
    let (status, hostile_stdout, hostile_log) = hostile.finish();
    assert!(
        status.success(),
        "the hostile peer failed ({status}):\n{hostile_stdout}\n{:#?}",
        hostile_log.head
    );
    let (status, pub_stdout, pub_log) = publisher.finish();
    assert!(
        status.success() && pub_log.panics.is_empty(),
        "the publisher failed ({status}):\n{pub_stdout}\npanics: {:#?}\n{:#?}",
        pub_log.panics,
        pub_log.head
    );
    if let Some(failure) = victim_failure {
        support::assert_clean(&domain);
        panic!(
            "{failure}\n--- the hostile peer:\n{hostile_stdout}\n--- the publisher:\n{pub_stdout}"
        );
    }
    let joiner = (config.attack == Attack::Header).then(|| {
        // The segment header is garbage now and nobody alive uses the topic: a new joiner
        // replaces it (a corrupt topic still in use is refused: see tests/trust_topics.rs).
        let joiner = support::run_role(test, "joiner", &domain, &envs);
        support::assert_success("a new joiner", &joiner);
        String::from_utf8_lossy(&joiner.stdout).into_owned()
    });
    if config.expect_logged_disconnect {
        assert!(
            !pub_log.disconnects.is_empty(),
            "the publisher did not log disconnecting the hostile peer: {:#?}",
            pub_log.head
        );
    }

    println!(
        "{test}: victim received {} of {N} ({} gaps) in {} ms; hostile peer made {} rounds \
         (seed {}); publisher: {} ms to publish (longest publish {}), {} subscriber(s) still \
         connected at the end, {} log lines ({} errors, {} disconnects); total {:.1} s",
        field(&victim_stdout, "received").unwrap_or("?"),
        field(&victim_stdout, "gaps").unwrap_or("?"),
        field(&victim_stdout, "elapsed_ms").unwrap_or("?"),
        field(&hostile_stdout, "rounds").unwrap_or("?"),
        field(&hostile_stdout, "seed").unwrap_or("?"),
        field(&pub_stdout, "publish_ms").unwrap_or("?"),
        field(&pub_stdout, "longest_publish").unwrap_or("?"),
        field(&pub_stdout, "connected").unwrap_or("?"),
        pub_log.lines,
        pub_log.errors,
        pub_log.disconnects.len(),
        started.elapsed().as_secs_f64(),
    );
    if let Some(first) = pub_log.disconnects.first() {
        println!("  first disconnect logged: {first}");
    }
    if let Some(forged) = field(&hostile_stdout, "forged") {
        println!("  forgery: {forged}");
    }
    if let Some(joiner) = joiner {
        println!(
            "  the wrecked topic, which nobody alive used, was replaced by a new joiner: {}",
            field(&joiner, "joined").expect("the joiner's report")
        );
    }
    support::assert_clean(&domain);
}

// ---------------------------------------------------------------------------------------------
// The roles.

fn publisher_role<M: Payload>(config: Config) {
    support::log_to_stderr();
    let publisher = config.publisher::<M>();
    assert!(
        support::wait_until(Duration::from_secs(30), || publisher.subscriber_count() >= 2),
        "the subscribers did not connect"
    );
    publisher.publish(M::of(1)).unwrap();
    println!("first");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    assert_eq!(go.trim_end(), "go");
    let start = Instant::now();
    let mut longest = (Duration::ZERO, 0);
    for seq in 2..=N {
        let publishing = Instant::now();
        publisher.publish(M::of(seq)).unwrap_or_else(|err| panic!("publishing {seq}: {err}"));
        longest = longest.max((publishing.elapsed(), seq));
        if config.overflow == Overflow::DropOldest {
            // Never waiting for anyone, we would outrun the victim by far: let it read.
            std::thread::yield_now();
        }
    }
    println!("publish_ms={}", start.elapsed().as_millis());
    println!("longest_publish={:?} (message {})", longest.0, longest.1);
    println!("published");
    // Both subscribers are still running (the parent holds them): the victim must still be
    // connected, and a hostile peer that wrecked its own memory must not be.
    if config.expect_disconnect {
        assert!(
            support::wait_until(Duration::from_secs(30), || {
                publisher.cleanup().unwrap();
                publisher.subscriber_count() <= 1
            }),
            "the hostile peer is still connected"
        );
    }
    publisher.cleanup().unwrap();
    let connected = publisher.subscriber_count();
    println!("connected={connected}");
    assert!(connected >= 1, "the victim was disconnected");
    println!("checked");
    support::wait_for_parent();
}

/// How long the victim sleeps in one `receive_timeout`: long enough that a message found queued
/// right after was not just arriving (the publisher publishes without pause).
const WAKE_SLICE: Duration = Duration::from_secs(5);

/// [`WAKE_SLICE`], or `HOSTILE_WAKE_SLICE_MS` (longer, to look at a stalled victim with a
/// debugger).
fn wake_slice() -> Duration {
    std::env::var("HOSTILE_WAKE_SLICE_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(WAKE_SLICE, Duration::from_millis)
}

/// The victim's next message (after `last`), waiting up to [`RECEIVE_DEADLINE`] in slices of
/// [`WAKE_SLICE`]: a message found queued after a whole slice asleep is a wake-up that never
/// came, recorded in `lost` (and received, so the test goes on and reports all of them).
fn receive_or_report<'a, M: Payload>(
    subscriber: &'a Subscriber<M>,
    last: u64,
    lost: &mut Vec<u64>,
) -> ipc_runtime::Result<Sample<'a, M>> {
    let deadline = Instant::now() + RECEIVE_DEADLINE;
    loop {
        let slept = Instant::now();
        let sample = subscriber.receive_timeout(wake_slice())?;
        // At its deadline, `receive_timeout` looks once more: a message found then (or right
        // after) was queued while we slept through the whole slice.
        let sample = match sample {
            Some(sample) if slept.elapsed() < wake_slice() => return Ok(sample),
            Some(sample) => Some(sample),
            None => subscriber.try_receive()?,
        };
        if let Some(sample) = sample {
            eprintln!(
                "lost wake-up: message {} was queued all along (this process's longest \
                 scheduling gap so far: {:?})",
                sample.sequence(),
                Heartbeat::longest_gap()
            );
            lost.push(sample.sequence());
            return Ok(sample);
        }
        assert!(Instant::now() < deadline, "the victim stalled after message {last}");
    }
}

/// A thread that wakes every 10 ms and records the longest gap between its wake-ups: a lost
/// wake-up is only one if the process was running meanwhile (on a loaded machine a process may
/// simply not be scheduled for a while).
struct Heartbeat;

static LONGEST_GAP_US: AtomicU64 = AtomicU64::new(0);

impl Heartbeat {
    fn start() {
        std::thread::spawn(|| {
            let mut last = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(10));
                let now = Instant::now();
                let gap = (now - last).as_micros() as u64;
                LONGEST_GAP_US.fetch_max(gap, Ordering::Relaxed);
                last = now;
            }
        });
    }

    fn longest_gap() -> Duration {
        Duration::from_micros(LONGEST_GAP_US.load(Ordering::Relaxed))
    }
}

/// What the victim saw that it should not have.
#[derive(Debug, Default)]
struct Anomalies {
    count: u64,
    /// The first few, described.
    first: Vec<String>,
}

impl Anomalies {
    fn note(&mut self, what: String) {
        self.count += 1;
        if self.first.len() < 12 {
            self.first.push(what);
        }
    }
}

/// Receives until the last message of the publisher it first heard from, checking every one;
/// records anything wrong and fails at the end with all of it.
fn victim_role<M: Payload>(config: Config) {
    Heartbeat::start();
    let subscriber = config.subscriber::<M>();
    println!("ready");
    let start = Instant::now();
    let mut anomalies = Anomalies::default();
    // Messages found queued after a whole `WAKE_SLICE` asleep: wake-ups that never came.
    let mut lost_wakeups = Vec::new();
    let (mut received, mut gaps, mut last, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut main = None;
    let mut check = |sample: &Sample<'_, M>, last: u64, anomalies: &mut Anomalies| -> bool {
        let (seq, from) = (sample.sequence(), sample.publisher_index());
        if **sample != M::of(seq) {
            anomalies.note(format!("message {seq} (publisher slot {from}) holds {:?}", **sample));
        }
        let main = *main.get_or_insert(from);
        if from != main {
            anomalies.note(format!("message {seq} from publisher slot {from} (after {last})"));
            return false;
        }
        true
    };
    while last < N {
        let sample = match receive_or_report(&subscriber, last, &mut lost_wakeups) {
            Ok(sample) => sample,
            Err(err) => {
                errors += 1;
                anomalies.note(format!("receive failed after message {last}: {err}"));
                assert!(errors < 100, "the victim's receives keep failing: {anomalies:#?}");
                continue;
            }
        };
        if !check(&sample, last, &mut anomalies) {
            continue;
        }
        let seq = sample.sequence();
        match config.overflow {
            // Nothing lost, duplicated or reordered.
            Overflow::Block if seq != last + 1 => {
                anomalies.note(format!("message {seq} after {last} under Overflow::Block"));
            }
            // Gaps are the policy, going back is not.
            Overflow::DropOldest if seq <= last => {
                anomalies.note(format!("message {seq} after {last}"));
            }
            _ => {}
        }
        gaps += u64::from(seq > last + 1);
        last = last.max(seq);
        received += 1;
        if received == 1 {
            println!("first");
        }
    }
    let elapsed = start.elapsed();
    // The publisher sent exactly N: anything more would not have been published.
    for _ in 0..10_000 {
        match subscriber.try_receive() {
            Ok(Some(extra)) => {
                check(&extra, last, &mut anomalies);
                anomalies.note(format!("message {} delivered after all {N}", extra.sequence()));
            }
            Ok(None) => break,
            Err(err) => anomalies.note(format!("receive failed after all {N}: {err}")),
        }
    }
    println!("received={received}");
    println!("gaps={gaps}");
    println!("elapsed_ms={}", elapsed.as_millis());
    println!("finished");
    assert!(
        anomalies.count == 0,
        "the victim saw {} anomalies (after receiving {received} messages up to {last}), first \
         ones: {:#?}",
        anomalies.count,
        anomalies.first
    );
    assert!(
        lost_wakeups.is_empty(),
        "the victim slept {WAKE_SLICE:?} with a message queued (a lost wake-up) {} time(s), at \
         messages {lost_wakeups:?}",
        lost_wakeups.len()
    );
    support::wait_for_parent();
}

/// A flag raised when the parent closes our stdin.
fn stop_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let raised = Arc::clone(&stop);
    std::thread::spawn(move || {
        support::wait_for_parent();
        raised.store(true, Ordering::SeqCst);
    });
    stop
}

/// Opens the topic segment read-write, as anyone may.
fn open_topic_segment() -> Segment {
    let domain = ipc_runtime::domain::current().to_owned();
    let name = SegmentName::new(&domain, SegmentKind::Topic, TOPIC).unwrap();
    Segment::open(&name, SegmentKind::Topic, Access::ReadWrite).expect("open the topic segment")
}

/// The topic segment's words from byte `from` on, as atomics (other processes use them).
fn words(segment: &Segment, from: usize) -> &[AtomicU64] {
    assert!(from.is_multiple_of(64) && from <= segment.len());
    // SAFETY: the mapping is `segment.len()` bytes, page-aligned and writable, lives as long as
    // `segment`, and every bit pattern is a valid `AtomicU64`; other processes only access it
    // atomically or through volatile copies.
    unsafe {
        std::slice::from_raw_parts(
            segment.base().as_ptr().add(from).cast::<AtomicU64>(),
            (segment.len() - from) / 8,
        )
    }
}

/// One round of garbage over the topic segment from byte `from`: random bits, zeros, ones or
/// small numbers (states and generations that look plausible), by `round`. With `header`, the
/// segment header (first 64 bytes) gets random bits every round.
fn scribble_topic(segment: &Segment, header: bool, round: u64, next: &mut impl FnMut() -> u64) {
    if header {
        for word in words(segment, 0).iter().take(8) {
            word.store(next() | 1, Ordering::Relaxed);
        }
    }
    let small = |x: u64| (x & 0x0000_0003_0000_0003) | ((x >> 7) & 0x0000_0001_0000_0001);
    for word in words(segment, 64) {
        let value = match round % 4 {
            0 => next(),
            1 => 0,
            2 => u64::MAX,
            _ => small(next()),
        };
        word.store(value, Ordering::Relaxed);
    }
}

/// The registry entries (offsets) that name a heap in `domain`: a `HeapRef` (heap id, domain
/// length, padding, domain bytes) 16 bytes into an entry, after the `Member` and its padding.
/// Entries are 192 bytes apart (`PublisherEntry` and `SubscriberEntry`, layout version 3).
fn registry_entries(segment: &Segment, domain: &str) -> Vec<usize> {
    const DOMAIN_AT: usize = 32;
    let bytes: Vec<u8> =
        words(segment, 0).iter().flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes()).collect();
    (64..segment.len() - DOMAIN_AT - domain.len())
        .step_by(64)
        .filter(|&at| {
            let len = u32::from_le_bytes(bytes[at + 24..at + 28].try_into().unwrap());
            len as usize == domain.len()
                && &bytes[at + DOMAIN_AT..at + DOMAIN_AT + domain.len()] == domain.as_bytes()
        })
        .collect()
}

const ENTRY_SIZE: usize = 192;

/// The forgery: the publisher's entry copied into the next (free) publisher slot, the victim's
/// into a free subscriber slot. Returns what it did, for the record.
fn forge(segment: &Segment) -> String {
    let domain = ipc_runtime::domain::current().to_owned();
    let entries = registry_entries(segment, &domain);
    let pid_of = |at: usize| (words(segment, at)[1].load(Ordering::Relaxed) & 0xffff_ffff) as u32;
    let me = std::process::id();
    assert_eq!(entries.len(), 3, "expected the entries of 3 participants, found {entries:?}");
    // Publisher entries come first; then the subscribers' (the victim's and ours).
    let publisher = entries[0];
    let victim = *entries[1..].iter().find(|&&at| pid_of(at) != me).expect("the victim's entry");
    let first_sub = entries[1].min(entries[2]);
    let forged_pub = publisher + ENTRY_SIZE;
    assert!(forged_pub + ENTRY_SIZE <= first_sub, "no second publisher slot");
    let forged_sub = entries[1].max(entries[2]) + ENTRY_SIZE;
    assert!(forged_sub + ENTRY_SIZE <= segment.len(), "no free subscriber slot");
    let all = words(segment, 0);
    for (from, to) in [(publisher, forged_pub), (victim, forged_sub)] {
        for w in 0..ENTRY_SIZE / 8 {
            let to = &all[to / 8 + w];
            assert!(w > 2 || to.load(Ordering::Relaxed) == 0, "slot at {to:p} is not free");
            to.store(all[from / 8 + w].load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
    format!(
        "copied publisher entry {publisher:#x} to {forged_pub:#x}, victim entry {victim:#x} to {forged_sub:#x}"
    )
}

fn hostile_role<M: Payload>(config: Config) {
    let subscriber = config.subscriber::<M>();
    println!("ready");
    let first = subscriber
        .receive_timeout(RECEIVE_DEADLINE)
        .expect("the hostile peer's first receive")
        .expect("the first message");
    let publisher = first.publisher_index();
    drop(first);
    println!("armed");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(line.trim_end(), "attack");
    let segment = open_topic_segment();
    let (seed, mut next) = rng();
    println!("seed={seed}");
    if config.attack == Attack::Forge {
        println!("forged: {}", forge(&segment));
        // Make everyone re-read the registry: join and leave (each bumps the epoch).
        drop(config.subscriber::<M>());
    }
    let stop = stop_signal();
    println!("attacking");
    let mut rounds = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let attack = match config.attack {
            Attack::All => [Attack::Completion, Attack::Topic, Attack::Port][rounds as usize % 3],
            other => other,
        };
        match attack {
            Attack::Port => subscriber.debug_scribble_port(next()),
            Attack::Topic => scribble_topic(&segment, false, rounds / 3, &mut next),
            Attack::Header => scribble_topic(&segment, true, rounds, &mut next),
            Attack::Completion => {
                let r = next() as u32;
                let values = [u32::MAX, 1_000_000, 0x00ff_ffff, r % 64, r % 64, r % 64, r, 0, 1];
                subscriber.debug_scribble_completion(publisher, &values, true);
                // Completions the publisher no longer takes pile up in our process: pace them.
                std::thread::sleep(Duration::from_micros(50));
            }
            Attack::Forge => {}
            Attack::All | Attack::Crash => unreachable!(),
        }
        if config.attack.hostile_reads() {
            for _ in 0..64 {
                match subscriber.try_receive() {
                    Ok(Some(sample)) => drop(sample),
                    _ => break,
                }
            }
        }
        rounds += 1;
        std::thread::yield_now();
    }
    println!("rounds={rounds}");
}

/// A process that joins the topic after its segment header was scribbled and every participant
/// left: the topic is replaced (nobody alive holds one of its tokens), and works.
fn joiner_role<M: Payload>(config: Config) {
    let subscriber = config.try_subscriber::<M>().expect("join the wrecked topic");
    let publisher = config.try_publisher::<M>().expect("join the wrecked topic");
    publisher.publish(M::of(1)).unwrap();
    let sample = subscriber.receive_timeout(RECEIVE_DEADLINE).unwrap().expect("a message");
    assert_eq!(*sample, M::of(1));
    println!("joined=a subscriber and a publisher, one message through");
}

/// A subscriber that, after a while, writes through a pointer to a received message: the
/// publisher's heap is mapped read-only, so this must kill it (and only it) with SIGSEGV.
fn crasher_role<M: Payload>(config: Config) {
    let subscriber = config.subscriber::<M>();
    println!("ready");
    loop {
        let sample = subscriber
            .receive_timeout(RECEIVE_DEADLINE)
            .expect("the crasher's receive")
            .expect("a message for the crasher");
        if sample.sequence() < CRASH_AT {
            continue;
        }
        {
            use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
            // No core file for this deliberate crash.
            let maximum = getrlimit(Resource::Core).maximum;
            setrlimit(Resource::Core, Rlimit { current: Some(0), maximum }).expect("setrlimit");
        }
        println!("writing at {}", sample.sequence());
        std::io::stdout().flush().unwrap();
        // The address of the message, from `&*sample`, as a pointer to write through.
        let address = std::ptr::from_ref::<M>(&sample).expose_provenance();
        let target = std::ptr::with_exposed_provenance_mut::<M>(address);
        // SAFETY: none; this write into another process's read-only memory is the hostile act
        // under test, and must fault.
        unsafe { std::ptr::write_volatile(target, M::of(0)) };
        println!("survived");
        return;
    }
}

/// The crasher writes once it received this message (the publisher is then still publishing).
const CRASH_AT: u64 = N / 4;

/// Dispatches this process's role for a scribbling test.
fn scenario(test: &str, config: Config) {
    match support::role().as_deref() {
        None => parent(test, config),
        Some(role) => {
            println!("pid={}", std::process::id());
            let config =
                Config::from_env(config.expect_disconnect, config.expect_logged_disconnect);
            match role {
                "pub" if config.small => publisher_role::<Small>(config),
                "pub" => publisher_role::<Large>(config),
                "victim" if config.small => victim_role::<Small>(config),
                "victim" => victim_role::<Large>(config),
                "hostile" if config.small => hostile_role::<Small>(config),
                "hostile" => hostile_role::<Large>(config),
                "joiner" if config.small => joiner_role::<Small>(config),
                "joiner" => joiner_role::<Large>(config),
                "crasher" if config.small => crasher_role::<Small>(config),
                "crasher" => crasher_role::<Large>(config),
                other => panic!("unknown role {other}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Overflow::Block: the victim receives every message exactly once, in order.

#[test]
fn block_peer_scribbling_its_port() {
    scenario(
        "block_peer_scribbling_its_port",
        Config {
            overflow: Overflow::Block,
            small: false,
            attack: Attack::Port,
            expect_disconnect: true,
            expect_logged_disconnect: false,
        },
    );
}

#[test]
fn block_peer_scribbling_the_topic_segment() {
    scenario(
        "block_peer_scribbling_the_topic_segment",
        Config {
            overflow: Overflow::Block,
            small: false,
            attack: Attack::Topic,
            expect_disconnect: false,
            expect_logged_disconnect: false,
        },
    );
}

#[test]
fn block_peer_scribbling_its_completions() {
    scenario(
        "block_peer_scribbling_its_completions",
        Config {
            overflow: Overflow::Block,
            small: false,
            attack: Attack::Completion,
            expect_disconnect: true,
            expect_logged_disconnect: true,
        },
    );
}

#[test]
fn block_peer_scribbling_everything() {
    scenario(
        "block_peer_scribbling_everything",
        Config {
            overflow: Overflow::Block,
            small: false,
            attack: Attack::All,
            expect_disconnect: true,
            expect_logged_disconnect: false,
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Overflow::DropOldest: the victim receives only published messages, in increasing order, up to
// the last one.

#[test]
fn drop_oldest_peer_scribbling_its_port() {
    scenario(
        "drop_oldest_peer_scribbling_its_port",
        Config {
            overflow: Overflow::DropOldest,
            small: false,
            attack: Attack::Port,
            expect_disconnect: false,
            expect_logged_disconnect: false,
        },
    );
}

#[test]
fn drop_oldest_peer_scribbling_the_topic_segment() {
    scenario(
        "drop_oldest_peer_scribbling_the_topic_segment",
        Config {
            overflow: Overflow::DropOldest,
            small: false,
            attack: Attack::Topic,
            expect_disconnect: false,
            expect_logged_disconnect: false,
        },
    );
}

#[test]
fn drop_oldest_peer_scribbling_its_completions() {
    scenario(
        "drop_oldest_peer_scribbling_its_completions",
        Config {
            overflow: Overflow::DropOldest,
            small: false,
            attack: Attack::Completion,
            expect_disconnect: true,
            expect_logged_disconnect: true,
        },
    );
}

#[test]
fn drop_oldest_peer_scribbling_everything() {
    scenario(
        "drop_oldest_peer_scribbling_everything",
        Config {
            overflow: Overflow::DropOldest,
            small: false,
            attack: Attack::All,
            expect_disconnect: true,
            expect_logged_disconnect: false,
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Small messages, which travel inside the ring entries (nothing is returned to the publisher).

#[test]
fn block_small_messages_peer_scribbling_everything() {
    scenario(
        "block_small_messages_peer_scribbling_everything",
        Config {
            overflow: Overflow::Block,
            small: true,
            attack: Attack::All,
            expect_disconnect: true,
            expect_logged_disconnect: false,
        },
    );
}

#[test]
fn drop_oldest_small_messages_peer_scribbling_everything() {
    scenario(
        "drop_oldest_small_messages_peer_scribbling_everything",
        Config {
            overflow: Overflow::DropOldest,
            small: true,
            attack: Attack::All,
            expect_disconnect: false,
            expect_logged_disconnect: false,
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Beyond garbage.

/// Garbage over the topic segment's own header too: the participants already in keep working
/// (the victim gets everything, exactly once, in order), new joiners are refused with an error.
/// See [`expect_header_leftovers`] for what is left once everyone has left.
#[cfg(target_os = "linux")]
#[test]
fn block_peer_scribbling_the_segment_header_too() {
    scenario(
        "block_peer_scribbling_the_segment_header_too",
        Config {
            overflow: Overflow::Block,
            small: false,
            attack: Attack::Header,
            expect_disconnect: false,
            expect_logged_disconnect: false,
        },
    );
}

/// A forgery rather than garbage: the hostile peer copies the publisher's registry entry into
/// a free publisher slot (and the victim's into a free subscriber slot), so the registry names
/// the real publisher twice. The victim must still get every message exactly once, from one
/// publisher slot.
#[test]
fn block_peer_forging_registry_entries() {
    scenario(
        "block_peer_forging_registry_entries",
        Config {
            overflow: Overflow::Block,
            small: false,
            attack: Attack::Forge,
            expect_disconnect: false,
            expect_logged_disconnect: false,
        },
    );
}

/// A subscriber cannot write the publisher's memory: it maps the publisher's heap read-only,
/// so writing through a pointer to a received message kills it with SIGSEGV, while the
/// publisher (which reclaims what it held) and the victim carry on. The message is a
/// [`Large`] one: a small one travels inside the ring entry, and the sample is a copy.
#[test]
fn writing_the_publishers_memory_kills_only_the_writer() {
    use std::os::unix::process::ExitStatusExt;
    let test = "writing_the_publishers_memory_kills_only_the_writer";
    let config = Config {
        overflow: Overflow::Block,
        small: false,
        attack: Attack::Crash,
        expect_disconnect: true,
        expect_logged_disconnect: false,
    };
    if support::role().is_some() {
        return scenario(test, config);
    }
    const SIGBUS: i32 = if cfg!(target_os = "linux") { 7 } else { 10 };
    const SIGSEGV: i32 = 11;
    let domain = support::unique_domain("crash");
    let envs = config.envs();
    let mut scene = Scene::default();
    let victim = scene.spawn(test, "victim", &domain, &envs, "ready");
    let crasher = scene.spawn(test, "crasher", &domain, &envs, "ready");
    let publisher = scene.spawn(test, "pub", &domain, &envs, "first");
    send_line(&mut scene.get(publisher).child, "go");
    let (status, stdout, log) = scene.take(crasher).finish();
    // Linux reports a write to a read-only shared mapping as SIGSEGV; macOS may say SIGBUS.
    let expected: &[i32] = if cfg!(target_os = "linux") { &[SIGSEGV] } else { &[SIGSEGV, SIGBUS] };
    if !stdout.contains("writing at") || !status.signal().is_some_and(|s| expected.contains(&s)) {
        scene.fail(&format!(
            "the crasher was not killed by SIGSEGV when writing ({status}):\n{stdout}{}",
            log.head.join("\n")
        ));
    }
    scene.expect(publisher, "published");
    scene.expect(publisher, "checked");
    scene.expect(victim, "finished");
    let (status, victim_stdout, log) = scene.take(victim).finish();
    if !status.success() {
        scene.fail(&format!(
            "the victim failed ({status}):\n{victim_stdout}{}",
            log.head.join("\n")
        ));
    }
    let (status, pub_stdout, log) = scene.take(publisher).finish();
    assert!(
        status.success() && log.panics.is_empty(),
        "the publisher failed ({status}):\n{pub_stdout}\n{:#?}",
        log.head
    );
    println!(
        "{test}: crasher {status_c}; victim received {} of {N}; publisher {} ms to publish",
        field(&victim_stdout, "received").unwrap_or("?"),
        field(&pub_stdout, "publish_ms").unwrap_or("?"),
        status_c = stdout.lines().find(|l| l.starts_with("writing")).unwrap_or("?"),
    );
    support::assert_clean(&domain);
}

// ---------------------------------------------------------------------------------------------
// Wake-ups.

/// Round trips of the wake-up test.
const ROUND_TRIPS: u64 = if cfg!(debug_assertions) { 100_000 } else { 300_000 };

/// Lost wake-ups after which the victim of the wake-up test stops sleeping and polls (each costs
/// a [`WAKE_SLICE`]).
const MAX_LOST_WAKEUPS: usize = 3;

/// Every message finds the victim asleep: the publisher publishes the next one only once the
/// victim acknowledged the last (on another topic), while the hostile peer zeroes the topic's
/// header (connect epoch, the word every subscriber sleeps on) in a tight loop. Each message
/// must wake the victim: a message it finds only after sleeping a whole [`WAKE_SLICE`] is a
/// lost wake-up (with a plain `receive()` it would wait for the next publish, forever if the
/// publisher waits for it).
#[test]
fn victim_is_woken_while_peer_zeroes_the_topic_header() {
    let test = "victim_is_woken_while_peer_zeroes_the_topic_header";
    let config = Config {
        overflow: Overflow::DropOldest,
        small: false,
        attack: Attack::Topic,
        expect_disconnect: false,
        expect_logged_disconnect: false,
    };
    match support::role().as_deref() {
        None => {}
        Some("pub") => return ping_pong_publisher(config),
        Some("victim") => return ping_pong_victim(config),
        Some("hostile") => return header_zeroer(config),
        Some(other) => panic!("unknown role {other}"),
    }
    let domain = support::unique_domain("wake");
    let envs = config.envs();
    let mut scene = Scene::default();
    let victim = scene.spawn(test, "victim", &domain, &envs, "ready");
    let hostile = scene.spawn(test, "hostile", &domain, &envs, "ready");
    let publisher = scene.spawn(test, "pub", &domain, &envs, "first");
    scene.expect(victim, "first");
    send_line(&mut scene.get(hostile).child, "attack");
    scene.expect(hostile, "attacking");
    send_line(&mut scene.get(publisher).child, "go");
    // The victim went through every round trip (a failing one says so when it exits, after an
    // orderly shutdown of everyone).
    scene.expect(victim, "finished");
    let (status, victim_stdout, log) = scene.take(victim).finish();
    let victim_failure = (!status.success())
        .then(|| format!("the victim failed ({status}):\n{victim_stdout}{}", log.head.join("\n")));
    let (status, hostile_stdout, log) = scene.take(hostile).finish();
    assert!(
        status.success(),
        "the hostile peer failed ({status}):\n{hostile_stdout}\n{:#?}",
        log.head
    );
    let (status, pub_stdout, log) = scene.take(publisher).finish();
    assert!(
        status.success() && log.panics.is_empty(),
        "the publisher failed ({status}):\n{pub_stdout}\n{:#?}",
        log.head
    );
    if let Some(failure) = victim_failure {
        support::assert_clean(&domain);
        panic!("{failure}");
    }
    println!(
        "{test}: {} round trips in {} ms; the hostile peer zeroed the header {} times",
        field(&victim_stdout, "received").unwrap_or("?"),
        field(&victim_stdout, "elapsed_ms").unwrap_or("?"),
        field(&hostile_stdout, "rounds").unwrap_or("?"),
    );
    support::assert_clean(&domain);
}

/// The acknowledgement topic (not attacked).
const ACK: &str = "ack";

fn ping_pong_publisher(config: Config) {
    support::log_to_stderr();
    let publisher = config.publisher::<Large>();
    let acks = Subscriber::<u64>::new(ACK).unwrap();
    assert!(
        support::wait_until(Duration::from_secs(30), || publisher.subscriber_count() >= 2),
        "the subscribers did not connect"
    );
    let ack = |seq: u64| {
        let got = acks.receive_timeout(RECEIVE_DEADLINE).unwrap().expect("no acknowledgement");
        assert_eq!(*got, seq, "acknowledgement");
    };
    publisher.publish(Large::of(1)).unwrap();
    ack(1);
    println!("first");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    for seq in 2..=ROUND_TRIPS {
        publisher.publish(Large::of(seq)).unwrap();
        ack(seq);
    }
    println!("published");
    support::wait_for_parent();
}

fn ping_pong_victim(config: Config) {
    Heartbeat::start();
    let subscriber = config.subscriber::<Large>();
    let acks = Publisher::<u64>::new(ACK).unwrap();
    println!("ready");
    let mut lost = Vec::new();
    let start = Instant::now();
    for seq in 1..=ROUND_TRIPS {
        let sample = if lost.len() < MAX_LOST_WAKEUPS {
            receive_or_report(&subscriber, seq - 1, &mut lost).unwrap()
        } else {
            // Evidence enough: poll for the rest, so that the test ends soon.
            poll(&subscriber, seq - 1)
        };
        assert_eq!((sample.sequence(), *sample), (seq, Large::of(seq)));
        drop(sample);
        acks.publish(seq).unwrap();
        if seq == 1 {
            println!("first");
        }
    }
    println!("received={ROUND_TRIPS}");
    println!("elapsed_ms={}", start.elapsed().as_millis());
    println!("finished");
    assert!(
        lost.is_empty(),
        "the victim slept {WAKE_SLICE:?} with a message queued (a lost wake-up) {} time(s), at \
         messages {lost:?}",
        lost.len()
    );
    support::wait_for_parent();
}

/// The next message, polled for without sleeping (up to [`RECEIVE_DEADLINE`]).
fn poll<M: Payload>(subscriber: &Subscriber<M>, last: u64) -> Sample<'_, M> {
    let deadline = Instant::now() + RECEIVE_DEADLINE;
    loop {
        if let Some(sample) = subscriber.try_receive().unwrap() {
            return sample;
        }
        assert!(Instant::now() < deadline, "the victim stalled after message {last}");
        std::thread::yield_now();
    }
}

/// Zeroes the topic header (everything between the segment header and the first registry
/// entry) as fast as it can, until told to stop.
fn header_zeroer(config: Config) {
    let _subscriber = config.subscriber::<Large>();
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let segment = open_topic_segment();
    let domain = ipc_runtime::domain::current().to_owned();
    // The registry starts with the first entry naming a heap.
    let registry = *registry_entries(&segment, &domain).first().expect("a registry entry");
    let header = &words(&segment, 64)[..(registry - 64) / 8];
    let stop = stop_signal();
    println!("attacking");
    // Two threads: with every CPU of a small machine busy, the victim is now and then preempted
    // between looking at the word and going to sleep, which is when a wake-up can be lost.
    let rounds = std::thread::scope(|scope| {
        let zero = || {
            let mut rounds = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for word in header {
                    word.store(0, Ordering::Relaxed);
                }
                rounds += 1;
            }
            rounds
        };
        let other = scope.spawn(zero);
        zero() + other.join().unwrap()
    });
    println!("rounds={rounds}");
}
