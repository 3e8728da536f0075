//! Message validity across a trust boundary: a subscriber never hands out a value with an
//! invalid bit pattern, whatever its publisher wrote.
//!
//! The hostile publisher is a real process of its own that needs no test seam: it publishes a
//! *lookalike* type, plain integers where the real type has enums, `bool`s and `char`s, that
//! claims the real type's fingerprint and name (one `unsafe impl`, as any program could write).
//! It publishes invalid values between valid ones; the subscriber must get
//! [`Error::InvalidMessage`] naming the topic, the publisher, the field and the value for each
//! invalid one, then the next valid one, without crashing; and the rejected samples must go
//! back to the publisher (its pool would run dry otherwise: the test publishes many times more
//! invalid samples than the pool has slots, under `Overflow::Block`).
//!
//! Both ways a message travels are covered: in a slot of the publisher's pool (a type with
//! enums, which has padding) and inside the ring entry (a small type without padding).
//!
//! The rest of the file tests the derived check itself on random bytes (proptest): it accepts
//! exactly the valid values, and reports the first invalid field with its path.

mod support;

use std::time::Duration;

use ipc_runtime::prelude::*;
use proptest::prelude::*;
use support::{finish, spawn_held_role, stdout_lines, wait_for_line};

/// A status with a gap in its discriminants.
#[allow(dead_code)] // built by the hostile publisher, as raw bytes
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Status {
    Idle = 0,
    Busy = 1,
    Failed = 7,
}

/// A command with fields, `repr(C, u8)`: tag at 0, the variants' fields from offset 4.
#[allow(dead_code)] // built by the hostile publisher, as raw bytes
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C, u8)]
enum Command {
    Stop,
    Go { speed: f32, reverse: bool },
    Say(char),
}

/// The real message, which travels in a pool slot (it has padding, so it is not inline).
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Reading {
    seq: u64,
    status: Status,
    cmd: Command,
}

/// What a hostile program publishes as a `Reading`: the same bytes, as plain integers.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct RawReading {
    seq: u64,
    status: u32,
    cmd_tag: u8,
    pad: [u8; 3],
    /// `Go.speed` or `Say.0`.
    cmd_a: u32,
    /// `Go.reverse` (its first byte).
    cmd_b: u32,
}

// SAFETY: plain integers; every bit pattern is valid; no interior mutability.
unsafe impl ShmSafe for RawReading {
    const LAYOUT_FINGERPRINT: u64 = Reading::FINGERPRINT;
}

/// The lie: "I am a `Reading`".
impl ShmMessage for RawReading {
    const FINGERPRINT: u64 = Reading::FINGERPRINT;
    const TYPE_NAME: &'static str = "Reading";
}

const _: () = {
    assert!(size_of::<Reading>() == size_of::<RawReading>());
    assert!(align_of::<Reading>() == align_of::<RawReading>());
    assert!(!<Reading as ShmSafe>::NO_UNINIT);
};

/// The small message, which travels inside the ring entry (no padding, 16 bytes).
#[derive(ShmMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Small {
    seq: u64,
    ok: bool,
    flags: [bool; 3],
    letter: char,
}

#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct RawSmall {
    seq: u64,
    ok: u8,
    flags: [u8; 3],
    letter: u32,
}

// SAFETY: plain integers without padding; every bit pattern is valid.
unsafe impl ShmSafe for RawSmall {
    const LAYOUT_FINGERPRINT: u64 = Small::FINGERPRINT;
    const NO_UNINIT: bool = true;
}

impl ShmMessage for RawSmall {
    const FINGERPRINT: u64 = Small::FINGERPRINT;
    const TYPE_NAME: &'static str = "Small";
}

const _: () = {
    assert!(size_of::<Small>() == size_of::<RawSmall>());
    assert!(<Small as ShmSafe>::NO_UNINIT);
};

/// Rounds of the script: each round has one invalid message of every kind and valid ones
/// between them. 20 rounds of 5 invalid messages are many times the pool of the topic's
/// options below (1 subscriber, capacity 4, 2 borrowed).
const ROUNDS: u64 = 20;

/// One step of a script: the raw message, and what the subscriber must see: `None` for a
/// valid message, or the failing field's path and the value found.
type Step<R> = (R, Option<(&'static str, &'static str)>);

fn reading_script(round: u64) -> Vec<Step<RawReading>> {
    let valid = |seq: u64, status: u32| RawReading {
        seq,
        status,
        cmd_tag: 1,
        cmd_a: 1.5f32.to_bits(),
        cmd_b: 1,
        ..RawReading::default()
    };
    let s = round * 100;
    vec![
        (valid(s + 1, 1), None),
        (
            RawReading { status: 0xdead_beef, ..valid(s + 2, 0) },
            Some(("Reading.status", "0xdeadbeef")),
        ),
        (valid(s + 3, 7), None),
        (RawReading { cmd_tag: 9, ..valid(s + 4, 0) }, Some(("Reading.cmd", "9"))),
        (RawReading { cmd_b: 7, ..valid(s + 5, 0) }, Some(("Reading.cmd::Go.reverse", "7"))),
        (
            RawReading { cmd_tag: 2, cmd_a: 0xd800, ..valid(s + 6, 0) },
            Some(("Reading.cmd::Say.0", "0xd800")),
        ),
        (RawReading { cmd_tag: 2, cmd_a: 'é' as u32, ..valid(s + 7, 1) }, None),
        (
            RawReading { cmd_tag: 2, cmd_a: 0x11_0000, ..valid(s + 8, 0) },
            Some(("Reading.cmd::Say.0", "0x110000")),
        ),
        (
            RawReading { cmd_tag: 0, cmd_a: 0xffff_ffff, cmd_b: 0xffff_ffff, ..valid(s + 9, 0) },
            None,
        ),
    ]
}

fn small_script(round: u64) -> Vec<Step<RawSmall>> {
    let valid = |seq: u64| RawSmall { seq, ok: 1, flags: [0, 1, 0], letter: 'x' as u32 };
    let s = round * 100;
    vec![
        (valid(s + 1), None),
        (RawSmall { ok: 7, ..valid(s + 2) }, Some(("Small.ok", "7"))),
        (valid(s + 3), None),
        (RawSmall { flags: [0, 0, 2], ..valid(s + 4) }, Some(("Small.flags[2]", "2"))),
        (RawSmall { letter: 0xd800, ..valid(s + 5) }, Some(("Small.letter", "0xd800"))),
        (RawSmall { letter: 0x11_0000, ..valid(s + 6) }, Some(("Small.letter", "0x110000"))),
        (RawSmall { letter: 0xdfff, ..valid(s + 7) }, Some(("Small.letter", "0xdfff"))),
        (valid(s + 8), None),
    ]
}

/// Topic options shared by every participant (small, so that a leak exhausts the pool).
macro_rules! options {
    ($builder:expr) => {
        $builder.overflow(Overflow::Block).subscriber_capacity(4).max_subscribers(1).max_borrowed(2)
    };
}

fn hostile_publisher<R: ShmMessage + Send + Copy>(topic: &str, script: fn(u64) -> Vec<Step<R>>) {
    let publisher = options!(Publisher::<R>::builder(topic))
        .block_timeout(Duration::from_secs(60))
        .create()
        .unwrap();
    assert!(
        support::wait_until(Duration::from_secs(30), || publisher.subscriber_count() == 1),
        "the subscriber did not connect"
    );
    for round in 0..ROUNDS {
        for (raw, _) in script(round) {
            // A leaked slot per rejected sample would run the pool dry here
            // (`OutOfSamples`), or block until the timeout.
            publisher.publish(raw).unwrap();
        }
    }
    // Everything is consumed (the subscriber still runs): every slot came back.
    assert!(
        support::wait_until(Duration::from_secs(30), || {
            publisher.cleanup().unwrap();
            publisher.samples_in_use() == 0
        }),
        "{} samples still in use after the subscriber read everything",
        publisher.samples_in_use()
    );
    println!("pool=empty");
}

fn victim_subscriber<M: ShmMessage + Sync, R>(
    topic: &str,
    script: fn(u64) -> Vec<Step<R>>,
    seq_of: fn(&M) -> u64,
    raw_seq: fn(&R) -> u64,
) {
    let subscriber = options!(Subscriber::<M>::builder(topic)).create().unwrap();
    println!("ready");
    let (mut valid, mut invalid) = (0, 0);
    let per_round = script(0).len() as u64;
    for round in 0..ROUNDS {
        for (raw, expected) in script(round) {
            let got = subscriber.receive_timeout(Duration::from_secs(60));
            match (got, expected) {
                (Ok(Some(sample)), None) => {
                    assert_eq!(seq_of(&sample), raw_seq(&raw));
                    assert_eq!(sample.sequence(), raw_seq(&raw) - round * 100 + round * per_round);
                    valid += 1;
                }
                (Err(err), Some((path, value))) => {
                    let Error::InvalidMessage {
                        topic: t,
                        publisher,
                        pid,
                        sequence,
                        field,
                        found,
                        ..
                    } = &err
                    else {
                        panic!("expected an invalid message at {path}, got {err}");
                    };
                    assert_eq!((t.as_str(), field.as_str(), found.as_str()), (topic, path, value));
                    assert_eq!(*publisher, 0);
                    assert_ne!(*pid, 0);
                    assert!(*sequence > 0);
                    let text = err.to_string();
                    assert!(
                        text.starts_with(&format!("topic `{topic}`: publisher 0 (pid {pid})"))
                            && text.contains(&format!("`{path}` holds {value}, which is not")),
                        "{text}"
                    );
                    if round == 0 {
                        println!("error={text}");
                    }
                    invalid += 1;
                }
                (got, expected) => panic!(
                    "step seq {}: expected {expected:?}, got {:?}",
                    raw_seq(&raw),
                    got.map(|s| s.map(|s| s.sequence()))
                ),
            }
        }
    }
    assert_eq!(subscriber.borrowed(), 0);
    assert!(subscriber.try_receive().unwrap().is_none());
    println!("valid={valid} invalid={invalid}");
    println!("done");
    support::wait_for_parent();
}

/// The parent: a subscriber (held until the publisher is done), then the hostile publisher.
fn run_parent(test: &str, tag: &str) -> (String, String) {
    let domain = support::unique_domain(tag);
    let mut sub = spawn_held_role(test, "sub", &domain, &[]);
    let mut sub_out = stdout_lines(&mut sub);
    assert!(wait_for_line(&mut sub_out, "ready"), "the subscriber did not start");
    let publisher = support::spawn_role(test, "pub", &domain, &[]);
    let out = publisher.wait_with_output().unwrap();
    support::assert_success("hostile publisher", &out);
    assert_eq!(support::field(&out, "pool").as_deref(), Some("empty"));
    let (status, stdout, stderr) = finish(sub, Some(sub_out));
    assert!(status.success(), "subscriber failed ({status}):\n{stdout}\n{stderr}");
    assert!(stdout.contains("done"), "{stdout}\n{stderr}");
    support::assert_clean(&domain);
    (stdout, stderr)
}

#[test]
fn invalid_values_in_pool_samples_are_errors_and_go_back() {
    let test = "invalid_values_in_pool_samples_are_errors_and_go_back";
    match support::role().as_deref() {
        None => {
            let (stdout, stderr) = run_parent(test, "valid-pool");
            assert!(stdout.contains(&format!("valid={} invalid={}", 4 * ROUNDS, 5 * ROUNDS)));
            assert!(
                stdout.contains("which is not a discriminant of `Status` (0, 1, 7)"),
                "{stdout}"
            );
            assert!(stdout.contains("which is not a `bool` (0 or 1)"), "{stdout}");
            // Logged once per rejected sample, through `tracing`.
            let logged = stderr.matches("sent an invalid message").count() as u64;
            assert_eq!(logged, 5 * ROUNDS, "{stderr}");
        }
        Some("pub") => hostile_publisher::<RawReading>("readings", reading_script),
        Some("sub") => {
            support::log_to_stderr();
            victim_subscriber::<Reading, RawReading>(
                "readings",
                reading_script,
                |r| r.seq,
                |r| r.seq,
            );
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn invalid_values_in_inline_samples_are_errors() {
    let test = "invalid_values_in_inline_samples_are_errors";
    match support::role().as_deref() {
        None => {
            let (stdout, _) = run_parent(test, "valid-inline");
            assert!(stdout.contains(&format!("valid={} invalid={}", 3 * ROUNDS, 5 * ROUNDS)));
            assert!(stdout.contains("which is not a `char`"), "{stdout}");
        }
        Some("pub") => hostile_publisher::<RawSmall>("small", small_script),
        Some("sub") => {
            support::log_to_stderr();
            victim_subscriber::<Small, RawSmall>("small", small_script, |s| s.seq, |r| r.seq);
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

// --- The derived check on its own -------------------------------------------------------------

/// Runs the derived check on `bytes` (at least `size_of::<T>()` of them, 16-aligned).
fn check<T: ShmSafe>(bytes: &Aligned) -> Result<(), ipc_runtime::message::InvalidValue> {
    assert!(size_of::<T>() <= bytes.0.len() && align_of::<T>() <= 16);
    // SAFETY: `size_of::<T>()` initialised bytes, aligned.
    unsafe { T::check_bits(bytes.0.as_ptr().cast()) }
}

#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
struct Aligned([u8; 32]);

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

/// The validity of a `Reading`, decided independently of the derive: `Some(path)` of the first
/// invalid field, `None` if valid.
fn reading_oracle(b: &[u8]) -> Option<&'static str> {
    if ![0, 1, 7].contains(&u32_at(b, 8)) {
        return Some("Reading.status");
    }
    match b[12] {
        0 => None,
        1 => (b[20] > 1).then_some("Reading.cmd::Go.reverse"),
        2 => char::from_u32(u32_at(b, 16)).is_none().then_some("Reading.cmd::Say.0"),
        _ => Some("Reading.cmd"),
    }
}

fn small_oracle(b: &[u8]) -> Option<String> {
    if b[8] > 1 {
        return Some("Small.ok".into());
    }
    if let Some(i) = (0..3).find(|&i| b[9 + i] > 1) {
        return Some(format!("Small.flags[{i}]"));
    }
    char::from_u32(u32_at(b, 12)).is_none().then(|| "Small.letter".into())
}

/// Bytes biased towards the interesting values (0, 1, a few more), so that valid values are
/// common, and sometimes anything.
fn biased_bytes() -> impl Strategy<Value = Aligned> {
    proptest::collection::vec(prop_oneof![3 => 0u8..3, 1 => any::<u8>()], 32).prop_map(|v| {
        let mut a = Aligned([0; 32]);
        a.0.copy_from_slice(&v);
        a
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn reading_check_passes_iff_valid(mut bytes in biased_bytes(), char_bits in any::<u32>(), use_char in any::<bool>()) {
        if use_char {
            bytes.0[16..20].copy_from_slice(&char_bits.to_ne_bytes());
        }
        let got = check::<Reading>(&bytes);
        prop_assert_eq!(got.as_ref().err().map(|e| e.path("Reading")), reading_oracle(&bytes.0).map(str::to_owned));
        if got.is_ok() {
            // Valid: it may be read as a `Reading`, and reads back as these bytes.
            // SAFETY: the check passed.
            let r: Reading = unsafe { std::ptr::read(bytes.0.as_ptr().cast()) };
            let status = match r.status { Status::Idle => 0, Status::Busy => 1, Status::Failed => 7 };
            prop_assert_eq!(status, u32_at(&bytes.0, 8));
            match r.cmd {
                Command::Stop => prop_assert_eq!(bytes.0[12], 0),
                Command::Go { speed, reverse } => {
                    prop_assert_eq!(speed.to_bits(), u32_at(&bytes.0, 16));
                    prop_assert_eq!(reverse as u8, bytes.0[20]);
                }
                Command::Say(c) => prop_assert_eq!(c as u32, u32_at(&bytes.0, 16)),
            }
        }
    }

    #[test]
    fn small_check_passes_iff_valid(mut bytes in biased_bytes(), char_bits in any::<u32>(), use_char in any::<bool>()) {
        if use_char {
            bytes.0[12..16].copy_from_slice(&char_bits.to_ne_bytes());
        }
        let got = check::<Small>(&bytes);
        prop_assert_eq!(got.as_ref().err().map(|e| e.path("Small")), small_oracle(&bytes.0));
    }

    #[test]
    fn char_check_is_char_from_u32(bits in any::<u32>()) {
        let mut bytes = Aligned([0; 32]);
        bytes.0[..4].copy_from_slice(&bits.to_ne_bytes());
        prop_assert_eq!(check::<char>(&bytes).is_ok(), char::from_u32(bits).is_some());
        prop_assert_eq!(check::<[char; 2]>(&bytes).is_ok(), char::from_u32(bits).is_some());
    }
}

/// Variant fields are checked where rustc puts them, for every representation the derive
/// accepts on enums: the offsets come from the representation's rules (offsets of variant
/// fields cannot be taken on stable Rust), so compare them with real values.
#[test]
#[allow(dead_code)]
fn variant_fields_are_checked_where_rustc_puts_them() {
    #[derive(ShmMessage, Clone, Copy)]
    #[repr(u8)]
    enum Prim {
        A(u8, bool),
        B(u16, char, bool),
    }
    #[derive(ShmMessage, Clone, Copy)]
    #[repr(C)]
    enum CTag {
        A(u8, bool),
        B { x: u64, ok: bool },
    }
    #[derive(ShmMessage, Clone, Copy)]
    #[repr(C, u16)]
    enum CPrim {
        A(bool),
        B(u8, u64, bool),
    }

    /// Writes `value` into a zeroed buffer, sets the byte at `field`'s offset to 7 and checks.
    fn corrupt<T: ShmSafe + Copy>(value: &T, field: &bool, path: &str, name: &str) {
        let mut bytes = Aligned([0; 32]);
        // SAFETY: `T` fits the buffer, which is aligned enough.
        unsafe { bytes.0.as_mut_ptr().cast::<T>().write(*value) };
        assert!(check::<T>(&bytes).is_ok(), "{path}: a real value fails its check");
        let at = std::ptr::from_ref(field) as usize - std::ptr::from_ref(value) as usize;
        bytes.0[at] = 7;
        let err = check::<T>(&bytes).unwrap_err();
        assert_eq!(err.path(name), path);
        assert_eq!(err.found(), "7");
    }

    let v = Prim::A(3, true);
    let Prim::A(_, f) = &v else { unreachable!() };
    corrupt(&v, f, "Prim::A.1", "Prim");
    let v = Prim::B(3, 'x', true);
    let Prim::B(_, _, f) = &v else { unreachable!() };
    corrupt(&v, f, "Prim::B.2", "Prim");
    let v = CTag::A(3, true);
    let CTag::A(_, f) = &v else { unreachable!() };
    corrupt(&v, f, "CTag::A.1", "CTag");
    let v = CTag::B { x: 9, ok: true };
    let CTag::B { ok, .. } = &v else { unreachable!() };
    corrupt(&v, ok, "CTag::B.ok", "CTag");
    let v = CPrim::A(true);
    let CPrim::A(f) = &v else { unreachable!() };
    corrupt(&v, f, "CPrim::A.0", "CPrim");
    let v = CPrim::B(1, 2, true);
    let CPrim::B(_, _, f) = &v else { unreachable!() };
    corrupt(&v, f, "CPrim::B.2", "CPrim");

    // And a tag that is no discriminant.
    let mut bytes = Aligned([0; 32]);
    bytes.0[0] = 2;
    let err = check::<Prim>(&bytes).unwrap_err();
    assert_eq!(err.to_string(), "`` holds 2, which is not a discriminant of `Prim` (0, 1)");
}

/// Types without invalid bit patterns skip the check at compile time. Containers always have
/// one: their pointer must resolve (and a string's bytes be UTF-8).
#[test]
fn types_without_invalid_patterns_are_not_checked() {
    #[derive(ShmMessage)]
    #[repr(C)]
    struct Plain {
        a: u64,
        b: [f32; 4],
        c: (u8, i16),
        e: Option<std::num::NonZeroU32>,
    }
    #[derive(ShmMessage)]
    #[repr(C)]
    struct Nested {
        plain: Plain,
        items: ShmVec<u32>,
    }
    const {
        assert!(!<Plain as ShmSafe>::MAY_BE_INVALID);
        assert!(<Nested as ShmSafe>::MAY_BE_INVALID);
        assert!(<ShmVec<u32> as ShmSafe>::MAY_BE_INVALID);
        assert!(<ShmVec<bool> as ShmSafe>::MAY_BE_INVALID);
        assert!(<ShmString as ShmSafe>::MAY_BE_INVALID);
        assert!(<std::num::NonZeroU8 as ShmSafe>::MAY_BE_INVALID);
        assert!(!<Option<std::num::NonZeroU8> as ShmSafe>::MAY_BE_INVALID);
    }
}

/// Elements of a `ShmVec` and the value of a `ShmBox` are checked too, through the pointer.
#[test]
fn container_elements_are_checked() {
    #[derive(ShmMessage)]
    #[repr(C)]
    struct Batch {
        flags: ShmVec<bool>,
        boxed: ShmBox<Status>,
    }
    let mut batch = Batch {
        flags: ShmVec::from_slice(&[true, false, true]),
        boxed: ShmBox::new(Status::Failed),
    };
    // SAFETY: a real, valid value.
    assert!(unsafe { Batch::check_bits(&batch) }.is_ok());
    // Corrupt element 2 and the boxed status through raw pointers, as a writer could.
    let flag = batch.flags.as_mut_ptr().wrapping_add(2).cast::<u8>();
    let status = std::ptr::from_mut::<Status>(&mut batch.boxed).cast::<u32>();
    // SAFETY: the element is ours, in our heap, and written as the `u8` a `bool` is.
    unsafe { flag.write(5) };
    // SAFETY: a value whose bytes are initialised (one of them is not a valid `bool`).
    let err = unsafe { Batch::check_bits(&raw const batch) }.unwrap_err();
    assert_eq!(err.path("Batch"), "Batch.flags[2]");
    // SAFETY: as above, for element 2 and then the box's value (written as a `u32`).
    unsafe {
        flag.write(1);
        status.write(3);
    }
    // SAFETY: as above.
    let err = unsafe { Batch::check_bits(&raw const batch) }.unwrap_err();
    assert_eq!((err.path("Batch").as_str(), err.found()), ("Batch.boxed", "3"));
    // Make it valid again before it is dropped.
    // SAFETY: as above.
    unsafe { status.write(0) };
}
