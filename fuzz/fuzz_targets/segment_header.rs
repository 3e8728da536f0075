//! Segment header validation: whatever bytes (and however many) a segment holds, opening it
//! returns the segment or an error naming the problem; it never panics or reads past the end.
//! Uses the in-memory backing, so every input costs no system call.
#![no_main]

use ipc_runtime::segment::memory::Memory;
use ipc_runtime::segment::{
    Access, HEADER_SIZE, Segment, SegmentKind, SegmentName, SharedMemoryOs,
};
use libfuzzer_sys::fuzz_target;

const KINDS: [SegmentKind; 5] = [
    SegmentKind::Heap,
    SegmentKind::Topic,
    SegmentKind::Event,
    SegmentKind::Raw,
    SegmentKind::Bell,
];

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else { return };
    let kind = KINDS[usize::from(kind) % KINDS.len()];
    let name = SegmentName::new("fuzz", SegmentKind::Raw, "segment").expect("valid name");
    let _ = Memory.unlink(name.as_str());
    let map = Memory.create(name.as_str(), bytes.len()).expect("in-memory object");
    if !bytes.is_empty() {
        // SAFETY: the mapping is `bytes.len()` writable bytes, and nothing else uses it.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.ptr().as_ptr(), bytes.len()) };
    }
    match Segment::open_with(&Memory, &name, kind, Access::ReadOnly) {
        Ok(segment) => {
            // Accepted: it must be what it claims to be.
            assert!(segment.len() >= HEADER_SIZE);
            assert_eq!(segment.header().size(), bytes.len() as u64);
            assert_ne!(segment.id(), 0);
        }
        Err(err) => {
            let message = err.to_string();
            assert!(
                message.contains("fuzz.raw.segment"),
                "error does not name the segment: {message}"
            );
        }
    }
    drop(map);
    let _ = Memory.unlink(name.as_str());
});
