//! Joining a topic whose segment a crashed, buggy or hostile same-user process changed: a real
//! topic segment (made once by a real subscriber) with fuzzer-chosen bytes patched anywhere in
//! it after the segment header (topic header, options, type name, registry). `inspect::topic`
//! (what `ipc show` reads) and `Subscriber::new` (a joiner, which validates the topic, joins it
//! or replaces it if no live process uses it) must return a value or an error; nothing may
//! panic, hang or read out of bounds.
#![no_main]

use std::sync::OnceLock;

use ipc_runtime::prelude::*;
use ipc_runtime::segment::{Access, HEADER_SIZE, SegmentKind, SegmentName, platform};
use libfuzzer_sys::fuzz_target;

const TOPIC: &str = "t";

/// The bytes of a real topic segment of `u64` messages with one (departed) subscriber.
fn real_topic() -> &'static [u8] {
    static REAL: OnceLock<Vec<u8>> = OnceLock::new();
    REAL.get_or_init(|| {
        let domain = ipc_runtime::domain::current();
        let name = SegmentName::new(domain, SegmentKind::Topic, "seed").expect("valid name");
        let subscriber = Subscriber::<u64>::new("seed").expect("a real topic");
        let map = platform().open(name.as_str(), Access::ReadOnly).expect("its segment");
        // SAFETY: the mapping is `map.len()` readable bytes while `map` lives.
        let bytes = unsafe { std::slice::from_raw_parts(map.ptr().as_ptr(), map.len()) }.to_vec();
        drop(map);
        drop(subscriber);
        bytes
    })
}

fuzz_target!(|data: &[u8]| {
    let domain = ipc_runtime::domain::current();
    let real = real_topic();
    let mut bytes = real.to_vec();
    // The input is a list of patches: a 16-bit offset into the segment after its header, then
    // the byte to put there.
    for patch in data.chunks_exact(3) {
        let at = HEADER_SIZE
            + usize::from(u16::from_le_bytes([patch[0], patch[1]])) % (bytes.len() - HEADER_SIZE);
        bytes[at] = patch[2];
    }
    let name = SegmentName::new(domain, SegmentKind::Topic, TOPIC).expect("valid name");
    let _ = platform().unlink(name.as_str());
    let Ok(map) = platform().create(name.as_str(), bytes.len()) else { return };
    // SAFETY: the mapping is `bytes.len()` writable bytes that nobody else uses yet.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.ptr().as_ptr(), bytes.len()) };
    drop(map);
    let _ = ipc_runtime::inspect::topic(domain, TOPIC);
    if let Ok(subscriber) = Subscriber::<u64>::new(TOPIC) {
        let _ = subscriber.try_receive();
        let _ = subscriber.publishers_alive();
    }
    let _ = ipc_runtime::inspect::clean(domain);
});
