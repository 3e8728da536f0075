//! The memory layer across real processes: a parent builds nested shared containers, a child
//! maps the parent's heap (read-only, at a different address) and reads them through a pointer;
//! a child that writes through its read-only mapping dies without corrupting the parent.

mod support;

use std::mem::{align_of, size_of};

use ipc_runtime::prelude::*;
use ipc_runtime::ptr::RelPtr;

#[derive(ShmMessage)]
#[repr(C)]
struct Root {
    strings: ShmVec<ShmString>,
    blob: ShmBox<ShmVec<u8>>,
}

const STRINGS: usize = 1500;
const BLOB: usize = 1 << 20;

fn text(i: usize) -> String {
    format!("string #{i}: {}", "ab".repeat(i % 37))
}

fn checksum(root: &Root) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    };
    for s in root.strings.iter() {
        eat(s.as_bytes());
    }
    eat(&root.blob);
    h
}

fn build() -> ShmBox<Root> {
    let strings: ShmVec<ShmString> =
        (0..STRINGS).map(|i| ShmString::from(text(i).as_str())).collect();
    let blob: ShmVec<u8> = (0..BLOB).map(|i| (i * 31 % 251) as u8).collect();
    ShmBox::new(Root { strings, blob: ShmBox::new(blob) })
}

fn env_u64(key: &str) -> u64 {
    std::env::var(key).unwrap().parse().unwrap()
}

/// Resolves the root the parent passed in the environment.
fn root_from_env() -> (&'static Root, usize) {
    let p = RelPtr::new(env_u64("ROOT_SEGMENT"), env_u64("ROOT_OFFSET"));
    let addr = p.resolve(size_of::<Root>(), align_of::<Root>()).expect("root resolves");
    // SAFETY: the parent keeps the `Root` alive at this pointer until we exit; the segment table
    // checked bounds and alignment, and keeps the mapping for the life of the process.
    (unsafe { addr.cast::<Root>().as_ref() }, addr.as_ptr() as usize)
}

#[test]
fn nested_value_is_read_by_another_process() {
    let test = "nested_value_is_read_by_another_process";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("nested");
            let out = support::run_role(test, "parent", &domain, &[]);
            support::assert_success("parent", &out);
            assert_eq!(support::field(&out, "reader").as_deref(), Some("ok"));
            assert_eq!(support::field(&out, "writer").as_deref(), Some("killed"));
            support::assert_clean(&domain);
        }
        Some("parent") => {
            ipc_runtime::init_heap(32 << 20).unwrap();
            let root = build();
            let expected = checksum(&root);
            let p = root.rel_ptr();
            let parent_addr = &*root as *const Root as usize;
            let envs = [
                ("ROOT_SEGMENT", p.segment().to_string()),
                ("ROOT_OFFSET", p.offset().to_string()),
                ("PARENT_ADDR", parent_addr.to_string()),
                ("EXPECTED", expected.to_string()),
            ];
            let reader =
                support::run_role(test, "reader", &std::env::var("IPC_DOMAIN").unwrap(), &envs);
            support::assert_success("reader", &reader);
            println!("reader={}", support::field(&reader, "reader").unwrap_or_default());

            let writer =
                support::run_role(test, "writer", &std::env::var("IPC_DOMAIN").unwrap(), &envs);
            assert!(!writer.status.success(), "writing through a read-only mapping succeeded");
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(
                    writer.status.signal(),
                    Some(11),
                    "expected SIGSEGV: {:?}",
                    writer.status
                );
            }
            #[cfg(windows)]
            {
                // STATUS_ACCESS_VIOLATION; under Wine, whose crash handler hands the process to
                // `winedbg --auto`, STATUS_DEBUGGER_INACTIVE.
                let code = writer.status.code().map(|c| c as u32);
                assert!(
                    matches!(code, Some(0xC000_0005 | 0xC000_0354)),
                    "expected an access violation: {:?}",
                    writer.status
                );
            }
            assert_eq!(checksum(&root), expected, "the child corrupted the parent's data");
            assert_eq!(root.strings[7], text(7).as_str());
            println!("writer=killed");
        }
        Some("reader") => {
            // A heap of our own first: it takes the place where the parent's heap would
            // otherwise land where address-space layout is deterministic (Wine, Windows without
            // ASLR), so the parent's heap is surely read at another address than the parent's.
            ipc_runtime::init_heap(8 << 20).unwrap();
            let (root, addr) = root_from_env();
            assert_ne!(addr as u64, env_u64("PARENT_ADDR"), "heap mapped at the parent's address");
            assert_eq!(root.strings.len(), STRINGS);
            assert_eq!(root.blob.len(), BLOB);
            for (i, s) in root.strings.iter().enumerate() {
                assert_eq!(s.as_str(), text(i));
            }
            assert!(root.blob.iter().enumerate().all(|(i, &b)| b == (i * 31 % 251) as u8));
            assert_eq!(checksum(root), env_u64("EXPECTED"));
            // The mapping is read-only here: asking for write access is refused.
            let p = RelPtr::new(env_u64("ROOT_SEGMENT"), env_u64("ROOT_OFFSET"));
            let err = p.resolve_mut(size_of::<Root>(), align_of::<Root>()).unwrap_err();
            assert!(err.to_string().contains("read-only"), "{err}");
            // A clone lands in this process's own heap and is independent.
            let copy = root.strings.clone();
            assert_ne!(copy.rel_ptr().segment(), root.strings.rel_ptr().segment());
            assert_eq!(copy, root.strings);
            println!("reader=ok");
        }
        Some("writer") => {
            let (_root, addr) = root_from_env();
            // Deliberately bypass the API: the OS must stop this write.
            // SAFETY: not safe — the point of the test is that the page is read-only and the
            // process is killed by SIGSEGV before anything changes.
            unsafe { std::ptr::write_volatile(addr as *mut u64, 0xdead_beef) };
            std::process::exit(3);
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

#[test]
fn bad_pointer_from_another_process_is_reported() {
    let test = "bad_pointer_from_another_process_is_reported";
    match support::role().as_deref() {
        None => {
            let domain = support::unique_domain("badptr");
            let out = support::run_role(test, "parent", &domain, &[]);
            support::assert_success("parent", &out);
            support::assert_clean(&domain);
        }
        Some("parent") => {
            let v = ShmVec::from_slice(&[1u64, 2, 3]);
            let seg = v.rel_ptr().segment();
            let domain = std::env::var("IPC_DOMAIN").unwrap();
            let child = |offset: u64| {
                let envs = [("ROOT_SEGMENT", seg.to_string()), ("ROOT_OFFSET", offset.to_string())];
                support::run_role(test, "child", &domain, &envs)
            };
            let past_end = child(1 << 40);
            support::assert_success("child", &past_end);
            let line = support::field(&past_end, "error").unwrap();
            assert!(line.contains("is outside segment") && line.contains(&domain), "{line}");
            let unknown = support::run_role(
                test,
                "child",
                &domain,
                &[("ROOT_SEGMENT", "4660".into()), ("ROOT_OFFSET", "64".into())],
            );
            let line = support::field(&unknown, "error").unwrap();
            assert!(line.contains("does not exist"), "{line}");
        }
        Some("child") => {
            let p = RelPtr::new(env_u64("ROOT_SEGMENT"), env_u64("ROOT_OFFSET"));
            let err = p.resolve(8, 8).unwrap_err();
            println!("error={err}");
        }
        Some(other) => panic!("unknown role {other}"),
    }
}
