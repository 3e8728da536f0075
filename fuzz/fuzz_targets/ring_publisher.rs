//! An honest publisher (`ring::Producer`) against a subscriber's memory that the fuzzer writes:
//! any head, completion tail or completion entry, between any two publisher steps. Whatever it
//! finds, the publisher must not panic or loop forever, and every completion it accepts must be
//! a slot it wrote or a decline of positions it wrote.
#![no_main]

use std::sync::atomic::Ordering;

use libfuzzer_sys::fuzz_target;

#[path = "ring_shim.rs"]
mod shim;
pub(crate) use shim::atomic;

#[path = "../../ipc-runtime/src/pubsub/ring.rs"]
#[allow(dead_code)]
mod ring;

use ring::{Completion, Producer};
use shim::{Input, Pair};

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let ring_len = 1usize << (1 + input.u8() % 5); // 2..=32 entries
    let capacity = 1 + u64::from(input.u8()) % (ring_len as u64 / 2);
    let peer_light = input.u8() & 1 == 1;
    let completion_len = 1usize << (input.u8() % 5);
    let pool = 64u32;

    // The publisher's side (fuzzer-written) and the subscriber's side.
    let p = Pair::new(7, 9, ring_len, completion_len);
    let (d, r) = (p.d(), p.r());
    let mut producer = Producer::new(&d, capacity, 1, peer_light);
    let mut next_slot = 0u32;
    let mut steps = 0;
    while !input.is_empty() && steps < 512 {
        steps += 1;
        match input.u8() % 8 {
            0 => p.head.store(input.near(producer.tail), Ordering::Relaxed),
            1 => p.completion_tail.store(input.near(0), Ordering::Relaxed),
            2 => {
                let i = input.u8() as usize % p.completions.len();
                p.completions[i].store(input.u64(), Ordering::Relaxed);
            }
            3 | 4 => {
                if producer.has_room(&r, &d, capacity, true).unwrap_or(false) {
                    producer.write(&d, next_slot);
                    next_slot = (next_slot + 1) % pool;
                }
            }
            5 => {
                let written = producer.tail;
                let _ = producer.revoke(&d, &r, true, |revoked| {
                    assert!(
                        revoked.position < written,
                        "revoked {} with tail {written}",
                        revoked.position
                    );
                });
            }
            6 => {
                // A hostile subscriber may name any slot or position (the publisher's books
                // ignore what it does not hold); what must hold is that one drain reads at most
                // a ring's worth, each entry giving one completion, plus at most one return per
                // pool slot (a decline of positions the publisher overwrote while they were the
                // subscriber's last claim gives their slots back, see `Producer::write`).
                let mut seen = 0usize;
                let drained = producer.drain(&d, &r, |completion| {
                    seen += 1;
                    if let Completion::Return(slot) = completion {
                        let _ = slot;
                    }
                });
                if let Ok(read) = drained {
                    assert!(
                        read <= p.completions.len(),
                        "read {read} from a ring of {}",
                        p.completions.len()
                    );
                    assert!(seen <= read + pool as usize, "{seen} completions from {read} entries");
                }
            }
            _ => {
                let _ = producer.consumed(&r, true);
            }
        }
        assert!(producer.tail <= steps as u64, "tail moved without a write");
    }
});
