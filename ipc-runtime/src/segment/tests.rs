//! The segment conformance suite: written once, run against every [`SharedMemoryOs`] backend
//! available on this platform.

use super::*;

fn backends() -> Vec<&'static dyn SharedMemoryOs> {
    #[allow(unused_mut)]
    let mut list: Vec<&'static dyn SharedMemoryOs> = vec![&memory::Memory];
    #[cfg(all(unix, not(miri)))]
    list.push(&posix::Posix);
    #[cfg(all(windows, not(miri)))]
    list.push(&windows::Windows);
    list
}

/// A domain unique to this test process and test.
fn domain(test: &str) -> String {
    format!("ut{}-{test}", std::process::id())
}

fn name(test: &str, object: &str) -> SegmentName {
    SegmentName::new(&domain(test), SegmentKind::Raw, object).unwrap()
}

/// Runs `check` once per backend with a fresh segment name, and removes the segment afterwards.
fn for_each_backend(test: &str, check: impl Fn(&'static dyn SharedMemoryOs, &SegmentName)) {
    for os in backends() {
        let name = name(test, os.name());
        check(os, &name);
        let _ = Segment::unlink_with(os, &name);
        assert!(os.list(&domain(test)).map(|l| l.is_empty()).unwrap_or(true), "leftover objects");
    }
}

fn write_bytes(segment: &Segment, offset: usize, bytes: &[u8]) {
    assert!(offset + bytes.len() <= segment.len());
    // SAFETY: in bounds (checked above) of a writable mapping this test created.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            segment.base().as_ptr().add(offset),
            bytes.len(),
        )
    };
}

#[test]
fn create_open_roundtrip() {
    for_each_backend("roundtrip", |os, name| {
        let created = Segment::create_with(os, name, SegmentKind::Raw, 8192, |seg| {
            write_bytes(seg, HEADER_SIZE, b"payload");
        })
        .unwrap();
        assert_eq!(created.len(), 8192);
        assert_eq!(created.payload_len(), 8192 - HEADER_SIZE);
        assert_eq!(created.header().creator_pid(), std::process::id());
        assert_ne!(created.id(), 0);

        let opened = Segment::open_with(os, name, SegmentKind::Raw, Access::ReadOnly).unwrap();
        assert_eq!(opened.id(), created.id());
        assert_eq!(opened.access(), Access::ReadOnly);
        // SAFETY: the payload is at least 7 bytes and was written before the segment was ready.
        let seen = unsafe { std::slice::from_raw_parts(opened.payload().as_ptr(), 7) };
        assert_eq!(seen, b"payload");
        assert_eq!(os.list(name.as_str()).unwrap(), vec![name.to_string()]);
    });
}

#[test]
fn create_twice_is_segment_exists() {
    for_each_backend("exists", |os, name| {
        let _first = Segment::create_with(os, name, SegmentKind::Raw, 4096, |_| {}).unwrap();
        let err = Segment::create_with(os, name, SegmentKind::Raw, 4096, |_| {}).unwrap_err();
        assert!(matches!(err, Error::SegmentExists { ref segment } if segment == name.as_str()));
    });
}

#[test]
fn open_missing_is_not_found() {
    for_each_backend("missing", |os, name| {
        let err = Segment::open_with(os, name, SegmentKind::Raw, Access::ReadOnly).unwrap_err();
        assert!(matches!(err, Error::SegmentNotFound { .. }), "{err}");
        assert!(err.to_string().contains(name.as_str()));
        let err = Segment::unlink_with(os, name).unwrap_err();
        assert!(matches!(err, Error::SegmentNotFound { .. }), "{err}");
    });
}

#[test]
fn unlink_keeps_existing_mappings() {
    for_each_backend("unlink", |os, name| {
        let seg = Segment::create_with(os, name, SegmentKind::Raw, 4096, |seg| {
            write_bytes(seg, HEADER_SIZE, &[42]);
        })
        .unwrap();
        Segment::unlink_with(os, name).unwrap();
        // SAFETY: the payload is at least one byte; the mapping outlives the name.
        assert_eq!(unsafe { *seg.payload().as_ptr() }, 42);
        assert!(matches!(
            Segment::open_with(os, name, SegmentKind::Raw, Access::ReadOnly),
            Err(Error::SegmentNotFound { .. })
        ));
    });
}

#[test]
fn corrupted_magic_is_wrong_magic() {
    for_each_backend("magic", |os, name| {
        let seg = Segment::create_with(os, name, SegmentKind::Raw, 4096, |_| {}).unwrap();
        write_bytes(&seg, 0, b"GARBAGE!");
        let err = Segment::open_with(os, name, SegmentKind::Raw, Access::ReadOnly).unwrap_err();
        assert!(matches!(err, Error::WrongMagic { found, .. } if &found == b"GARBAGE!"), "{err}");
        assert!(err.to_string().contains("wrong magic"), "{err}");
    });
}

#[test]
fn corrupted_version_is_wrong_version() {
    for_each_backend("version", |os, name| {
        let seg = Segment::create_with(os, name, SegmentKind::Raw, 4096, |_| {}).unwrap();
        write_bytes(&seg, 8, &99u32.to_ne_bytes());
        let err = Segment::open_with(os, name, SegmentKind::Raw, Access::ReadOnly).unwrap_err();
        assert!(
            matches!(err, Error::WrongVersion { found: 99, expected: FORMAT_VERSION, .. }),
            "{err}"
        );
    });
}

#[test]
fn other_kind_is_wrong_kind() {
    for_each_backend("kind", |os, name| {
        let _seg = Segment::create_with(os, name, SegmentKind::Raw, 4096, |_| {}).unwrap();
        let err = Segment::open_with(os, name, SegmentKind::Heap, Access::ReadOnly).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("shared-memory segment `{name}` is a raw segment, expected a heap segment")
        );
    });
}

#[test]
fn corrupted_size_field_is_truncated() {
    for_each_backend("sizefield", |os, name| {
        let seg = Segment::create_with(os, name, SegmentKind::Raw, 4096, |_| {}).unwrap();
        write_bytes(&seg, 16, &(1u64 << 40).to_ne_bytes());
        let err = Segment::open_with(os, name, SegmentKind::Raw, Access::ReadOnly).unwrap_err();
        assert!(
            matches!(err, Error::Truncated { expected, actual: 4096, .. } if expected == 1 << 40),
            "{err}"
        );
    });
}

#[test]
fn unfinished_creation_is_not_ready() {
    for_each_backend("notready", |os, name| {
        let mut seen = None;
        let _seg = Segment::create_with(os, name, SegmentKind::Raw, 4096, |_| {
            seen = Some(Segment::open_with(os, name, SegmentKind::Raw, Access::ReadOnly));
        })
        .unwrap();
        let err = seen.unwrap().unwrap_err();
        assert!(
            matches!(err, Error::NotReady { creator_pid, .. } if creator_pid == std::process::id())
        );
    });
}

#[test]
fn size_below_header_is_refused() {
    for_each_backend("tiny", |os, name| {
        let err = Segment::create_with(os, name, SegmentKind::Raw, 10, |_| {}).unwrap_err();
        assert!(matches!(err, Error::TooSmall { size: 10, min: 64, .. }), "{err}");
    });
}

/// Truncating the object behind the framework's back is only possible with a real file.
#[cfg(all(target_os = "linux", not(miri)))]
mod posix_files {
    use super::*;

    fn shm_path(name: &SegmentName) -> std::path::PathBuf {
        std::path::Path::new("/dev/shm").join(name.as_str())
    }

    #[test]
    fn truncated_file_is_truncated() {
        let name = name("truncfile", "posix");
        let _seg = Segment::create(&name, SegmentKind::Raw, 16384).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(shm_path(&name))
            .unwrap()
            .set_len(4096)
            .unwrap();
        let err = Segment::open(&name, SegmentKind::Raw, Access::ReadOnly).unwrap_err();
        Segment::unlink(&name).unwrap();
        assert!(matches!(err, Error::Truncated { expected: 16384, actual: 4096, .. }), "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn file_shorter_than_header_is_too_small() {
        let name = name("shortfile", "posix");
        std::fs::write(shm_path(&name), b"IPCRSEG").unwrap();
        let err = Segment::open(&name, SegmentKind::Raw, Access::ReadOnly).unwrap_err();
        Segment::unlink(&name).unwrap();
        assert!(matches!(err, Error::TooSmall { size: 7, min: 64, .. }), "{err}");
    }

    #[test]
    fn empty_file_is_too_small() {
        let name = name("emptyfile", "posix");
        std::fs::write(shm_path(&name), b"").unwrap();
        let err = Segment::open(&name, SegmentKind::Raw, Access::ReadOnly).unwrap_err();
        Segment::unlink(&name).unwrap();
        assert!(matches!(err, Error::TooSmall { size: 0, .. }), "{err}");
    }

    #[test]
    fn created_with_owner_only_mode() {
        use std::os::unix::fs::PermissionsExt;
        let name = name("mode", "posix");
        let _seg = Segment::create(&name, SegmentKind::Raw, 4096).unwrap();
        let mode = std::fs::metadata(shm_path(&name)).unwrap().permissions().mode();
        Segment::unlink(&name).unwrap();
        assert_eq!(mode & 0o777, 0o600);
    }
}
