//! An honest subscriber (`ring::Consumer`) against a publisher's memory that the fuzzer writes:
//! any entry, floor, tail, key or completion head, between any two subscriber steps. Whatever
//! it finds, the subscriber must not panic or loop forever, must hand out only slots inside the
//! pool, positions in increasing order, and never move its own head backwards.
#![no_main]

use std::sync::atomic::Ordering;

use libfuzzer_sys::fuzz_target;

#[path = "ring_shim.rs"]
mod shim;
pub(crate) use shim::atomic;

#[path = "../../ipc-runtime/src/pubsub/ring.rs"]
#[allow(dead_code)]
mod ring;

use ring::{Completion, Consumer, INLINE_STRIDE, INLINE_WORDS, Take};
use shim::{Input, Pair};

const SUB_KEY: u64 = 7;
const PUB_KEY: u64 = 9;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let ring_len = 1usize << (input.u8() % 6); // 1..=32 entries
    let inline = input.u8() & 1 == 1;
    let stride = if inline { INLINE_STRIDE } else { 1 };
    let capacity = 1 + u64::from(input.u8()) % ring_len as u64;
    let drop_oldest = input.u8() & 1 == 1;
    let pool_len = 1 + u32::from(input.u8() % 64);
    let completion_len = 1usize << (input.u8() % 5);

    // The publisher's side (fuzzer-written) and the subscriber's side.
    let p = Pair::new(SUB_KEY, PUB_KEY, ring_len * stride, completion_len);
    let (d, r) = (p.d(), p.r());
    let mut consumer =
        Consumer::new(&r, PUB_KEY, ring_len, stride, capacity, drop_oldest, pool_len);

    let mut last: Option<u64> = None;
    let mut held: Vec<u32> = Vec::new();
    let mut steps = 0;
    while !input.is_empty() && steps < 512 {
        steps += 1;
        let before = consumer.head;
        match input.u8() % 10 {
            0 => {
                let i = input.u8() as usize % p.entries.len();
                let value = if input.u8() & 1 == 0 {
                    // A well-formed entry at a position near the subscriber's.
                    let position = input.near(consumer.head);
                    ring::entry(position, u32::from(input.u8()) % (pool_len + 2))
                } else {
                    input.u64()
                };
                p.entries[i].store(value, Ordering::Relaxed);
            }
            1 => p.floor.store(input.near(consumer.head), Ordering::Relaxed),
            2 => p.tail.store(input.near(consumer.head), Ordering::Relaxed),
            3 => p.completion_head.store(input.u64() % 64, Ordering::Relaxed),
            4 => {
                let key = if input.u8() & 1 == 0 { PUB_KEY } else { input.u64() };
                p.pub_key.store(key, Ordering::Relaxed);
            }
            5 | 6 => {
                let take = if inline {
                    let mut out = [0u64; INLINE_WORDS + 1];
                    consumer.take_inline(&d, &r, SUB_KEY, &mut out)
                } else {
                    consumer.take(&d, &r, SUB_KEY)
                };
                let position = match take {
                    Take::Message { position, slot } => {
                        assert!(slot < pool_len, "slot {slot} outside a pool of {pool_len}");
                        held.push(slot);
                        Some(position)
                    }
                    Take::Inline { position } => Some(position),
                    Take::Empty | Take::Disconnected | Take::Corrupt(_) => None,
                };
                if let Some(position) = position {
                    assert!(
                        last.is_none_or(|l| position > l),
                        "position {position} after {last:?}"
                    );
                    assert!(position < consumer.head, "took {position}, head {}", consumer.head);
                    last = Some(position);
                }
            }
            7 => {
                if let Some(slot) = held.pop() {
                    consumer.give_back(&d, &r, Completion::Return(slot));
                }
            }
            8 => {
                consumer.flush(&d, &r);
            }
            _ => {
                consumer.ready(&d, SUB_KEY);
            }
        }
        assert!(consumer.head >= before, "head went back from {before} to {}", consumer.head);
    }
});
