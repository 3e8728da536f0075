//! The operating-system side of the trust boundary: objects of
//! another user are refused, names cannot alias, symbolic links are never followed; and
//! hierarchical topic names work across processes.
//!
//! The other-user test creates a user with `useradd` (tests run as root) and runs roles of this
//! binary under its uid; it prints why and passes where that is not possible. The symlink and
//! other-user tests are Unix-only (see `ipc_runtime::liveness` for Windows).

mod support;

use std::time::Duration;

use ipc_runtime::domain;
use ipc_runtime::liveness::Token;
use ipc_runtime::prelude::*;
use ipc_runtime::segment::{SegmentKind, SegmentName};
use support::{finish, spawn_held_role, stdout_lines, wait_for_line};

/// Names that aliased before: a domain with a `.` could be the prefix of another domain's
/// objects (`ipc clean --domain A` removed the objects of domain `A.lock.x`; topic `t.topic.x`
/// of domain `A` was topic `x` of domain `A.topic.t`). Now domains cannot hold a `.`, and names
/// encode to objects that parse back to exactly one (domain, kind, name).
#[test]
fn names_cannot_alias() {
    let d = support::unique_domain("alias");
    for bad in [format!("{d}.lock.x"), format!("{d}.topic.t"), format!("{d}/x")] {
        let err = Publisher::<u64>::builder("t").domain(&bad).create().unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{bad}: {err}");
        let err = Subscriber::<u64>::builder("t").domain(&bad).create().unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{bad}: {err}");
        assert!(matches!(Token::acquire(&bad, "x"), Err(Error::InvalidName { .. })), "{bad}");
        assert!(SegmentName::new(&bad, SegmentKind::Topic, "t").is_err(), "{bad}");
    }
    // The topic that was domain `A.topic.t`'s topic `x`, and a topic that was a token name.
    let mut seen = std::collections::HashSet::new();
    for topic in ["x", "t.topic.x", "t/topic/x", "a", "a.p0.1", "a/p0/1", "robot/arm/joints"] {
        let name = SegmentName::new(&d, SegmentKind::Topic, topic).unwrap();
        assert!(seen.insert(name.as_str().to_owned()), "{topic} aliases another name");
        let (dom, kind, back) = domain::parse_object_name(name.as_str()).unwrap();
        assert_eq!((dom, kind, back.as_str()), (d.as_str(), "topic", topic));
        // No token, lock or socket name of another topic looks like this object.
        assert_eq!(name.as_str().matches('.').count(), 2, "{name}");
    }
    assert_eq!(
        SegmentName::new(&d, SegmentKind::Topic, "robot/arm/joints").unwrap().as_str(),
        format!("{d}.topic.robot+arm+joints")
    );
}

const HIERARCHY: &str = "hierarchical_topic_across_processes";
const JOINTS: &str = "robot/arm/joints";

/// A hierarchical topic name, published and received across processes; its segment shows up in
/// the lock directory under its encoded name, and nothing is left behind.
#[test]
fn hierarchical_topic_across_processes() {
    match support::role().as_deref() {
        None => {}
        Some("sub") => {
            let subscriber = Subscriber::<u64>::new(JOINTS).unwrap();
            println!("ready");
            for i in 0..10u64 {
                let sample = subscriber.receive_timeout(Duration::from_secs(20)).unwrap();
                assert_eq!(*sample.expect("a message within the deadline"), i);
            }
            println!("received");
            support::wait_for_parent();
            return;
        }
        Some("pub") => {
            let publisher = Publisher::<u64>::new(JOINTS).unwrap();
            assert!(support::wait_until(Duration::from_secs(20), || {
                publisher.subscriber_count() == 1
            }));
            for i in 0..10u64 {
                publisher.publish(i).unwrap();
            }
            println!("published");
            support::wait_for_parent();
            return;
        }
        Some(other) => panic!("unknown role {other}"),
    }
    let d = support::unique_domain("hier");
    let mut sub = spawn_held_role(HIERARCHY, "sub", &d, &[]);
    let mut sub_out = stdout_lines(&mut sub);
    assert!(wait_for_line(&mut sub_out, "ready"), "{:?}", finish(sub, Some(sub_out)));
    let mut publ = spawn_held_role(HIERARCHY, "pub", &d, &[]);
    let mut pub_out = stdout_lines(&mut publ);
    assert!(wait_for_line(&mut sub_out, "received"), "{:?}", finish(sub, Some(sub_out)));
    assert!(wait_for_line(&mut pub_out, "published"), "{:?}", finish(publ, Some(pub_out)));
    let objects = support::leftovers(&d);
    let encoded = format!("{d}.topic.robot+arm+joints");
    if cfg!(target_os = "linux") {
        assert!(objects.contains(&encoded), "{encoded} not in {objects:?}");
    }
    let topics = ipc_runtime::inspect::topics(&d).unwrap();
    if cfg!(target_os = "linux") || cfg!(windows) {
        assert_eq!(topics, vec![JOINTS.to_owned()]);
    }
    for (child, out) in [(sub, sub_out), (publ, pub_out)] {
        let (status, stdout, stderr) = finish(child, Some(out));
        assert!(status.success(), "{status}\n{stdout}\n{stderr}");
    }
    assert!(support::wait_until(Duration::from_secs(10), || support::leftovers(&d).is_empty()));
    support::assert_clean(&d);
}

#[cfg(unix)]
mod unix {
    use super::*;
    use ipc_runtime::liveness::{self, FileLock, Probe};
    use ipc_runtime::segment::{Access, Segment};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    use std::path::{Path, PathBuf};

    /// A file or link in the lock directory, removed on drop.
    struct Planted(PathBuf);

    impl Drop for Planted {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn expect_symlink_refusal(err: Error, path: &Path) {
        match &err {
            Error::UntrustedObject { object, reason, .. } => {
                assert_eq!(object, &path.display().to_string(), "{err}");
                assert!(reason.contains("symbolic link"), "{err}");
            }
            other => panic!("expected a refused symbolic link at {}, got: {other}", path.display()),
        }
    }

    /// A symbolic link planted at a lock file's or a segment's path is refused, and nothing is
    /// created where it points.
    #[test]
    fn planted_symlinks_are_refused() {
        let d = support::unique_domain("link");
        let dir = liveness::lock_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let scratch = std::env::temp_dir().join(format!("{d}-target"));
        std::fs::create_dir_all(&scratch).unwrap();
        let target = scratch.join("created-by-victim");

        // The creation lock of topic `t`, and a liveness token.
        let lock = liveness::lock_path(&d, "topic.t").unwrap();
        let _planted = Planted(lock.clone());
        std::os::unix::fs::symlink(&target, &lock).unwrap();
        expect_symlink_refusal(FileLock::lock(&d, "topic.t").unwrap_err(), &lock);
        assert!(!target.exists(), "a lock file was created at the link's target");
        let token = liveness::lock_path(&d, "tok").unwrap();
        let _planted_token = Planted(token.clone());
        std::os::unix::fs::symlink(&target, &token).unwrap();
        expect_symlink_refusal(Token::acquire(&d, "tok").unwrap_err(), &token);
        assert!(!target.exists(), "a token was created at the link's target");
        assert_eq!(liveness::probe(&d, "tok").unwrap(), Probe::Unknown);
        assert!(matches!(liveness::is_alive(&d, "tok"), Err(Error::UntrustedObject { .. })));
        assert!(token.symlink_metadata().is_ok(), "the link was removed");

        // A segment: a link to an existing file of ours is not mapped, and creating under the
        // name creates nothing at a missing target.
        if cfg!(target_os = "linux") {
            let name = SegmentName::new(&d, SegmentKind::Raw, "seg").unwrap();
            let path = dir.join(name.as_str());
            let _planted_seg = Planted(path.clone());
            let existing = scratch.join("existing");
            std::fs::write(&existing, vec![0u8; 4096]).unwrap();
            std::os::unix::fs::symlink(&existing, &path).unwrap();
            let err = Segment::open(&name, SegmentKind::Raw, Access::ReadOnly).unwrap_err();
            expect_symlink_refusal(err, &path);
            std::fs::remove_file(&path).unwrap();
            std::os::unix::fs::symlink(&target, &path).unwrap();
            assert!(Segment::create(&name, SegmentKind::Raw, 4096).is_err());
            assert!(!target.exists(), "a segment was created at the link's target");
        }
        std::fs::remove_dir_all(&scratch).unwrap();
        drop((_planted, _planted_token));
        support::assert_clean(&d);
    }

    /// A user made for the test, removed on drop.
    struct OtherUser {
        name: String,
        uid: u32,
        gid: u32,
    }

    impl OtherUser {
        fn create() -> Option<OtherUser> {
            let name = format!("ipct12{}", std::process::id());
            let made = std::process::Command::new("useradd")
                .args(["-M", "-N", "-s", "/bin/false", &name])
                .output();
            match made {
                Ok(out) if out.status.success() => {}
                Ok(out) => {
                    eprintln!(
                        "SKIPPED: cannot create a second user with useradd: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                    return None;
                }
                Err(err) => {
                    eprintln!("SKIPPED: cannot run useradd to create a second user: {err}");
                    return None;
                }
            }
            let id = |flag: &str| -> Option<u32> {
                let out = std::process::Command::new("id").args([flag, &name]).output().ok()?;
                String::from_utf8_lossy(&out.stdout).trim().parse().ok()
            };
            let user = OtherUser { uid: id("-u")?, gid: id("-g")?, name };
            Some(user)
        }
    }

    impl Drop for OtherUser {
        fn drop(&mut self) {
            let _ = std::process::Command::new("userdel").arg(&self.name).output();
        }
    }

    const OTHER: &str = "unix::another_users_objects_are_refused";

    fn expect_foreign(err: &Error, owner: u32) {
        match err {
            Error::UntrustedObject { owner: Some(found), object, .. } => {
                assert_eq!(*found, owner, "{err}");
                let text = err.to_string();
                assert!(text.contains(object.as_str()), "{text}");
                assert!(text.contains(&format!("owner uid {owner}")), "{text}");
                assert!(text.contains("another domain"), "{text}");
                println!("refused as expected: {text}");
            }
            other => panic!("expected a refusal naming owner uid {owner}, got: {other}"),
        }
    }

    /// Another user creates a topic first (as a squatter would) and makes its files
    /// world-writable: root refuses to join it, names the object and its owner, and treats
    /// the other user's liveness token as unknown, not alive. The other way round, the other
    /// user refuses root's objects, which it may not even open.
    #[test]
    fn another_users_objects_are_refused() {
        match support::role().as_deref() {
            None => {}
            Some("squatter") => {
                let publisher = Publisher::<u64>::new("t").unwrap();
                let token = Token::acquire(domain::current(), "peer").unwrap();
                let chmod_all = |mode: u32| {
                    for name in support::leftovers(domain::current()) {
                        let path = liveness::lock_dir().join(name);
                        let _ = std::fs::set_permissions(path, PermissionsExt::from_mode(mode));
                    }
                };
                chmod_all(0o666);
                println!("ready");
                support::wait_for_parent();
                // Back to private, or we could not leave our own topic either.
                chmod_all(0o600);
                drop((publisher, token));
                return;
            }
            Some("owner") => {
                let publisher = Publisher::<u64>::new("t").unwrap();
                let token = Token::acquire(domain::current(), "peer").unwrap();
                println!("ready");
                support::wait_for_parent();
                drop((publisher, token));
                return;
            }
            Some("intruded") => {
                let other: u32 = std::env::var("OTHER_UID").unwrap().parse().unwrap();
                let d = domain::current();
                let err = Subscriber::<u64>::new("t").unwrap_err();
                expect_foreign(&err, other);
                let err = Publisher::<u64>::new("t").unwrap_err();
                expect_foreign(&err, other);
                let name = SegmentName::new(d, SegmentKind::Topic, "t").unwrap();
                let err = Segment::open(&name, SegmentKind::Topic, Access::ReadWrite).unwrap_err();
                expect_foreign(&err, other);
                // Its token (held, world-writable): unknown, not alive; and left where it is.
                assert_eq!(liveness::probe(d, "peer").unwrap(), Probe::Unknown);
                assert!(matches!(
                    liveness::is_alive(d, "peer"),
                    Err(Error::UntrustedObject { .. })
                ));
                assert!(liveness::lock_path(d, "peer").unwrap().exists());
                // `clean` does not touch another user's objects.
                let before = support::leftovers(d);
                let _ = ipc_runtime::inspect::clean(d);
                assert_eq!(support::leftovers(d), before);
                println!("refused");
                return;
            }
            Some("victim") => {
                let err = Subscriber::<u64>::new("t").unwrap_err();
                expect_foreign(&err, 0);
                assert_eq!(liveness::probe(domain::current(), "peer").unwrap(), Probe::Unknown);
                let name = SegmentName::new(domain::current(), SegmentKind::Topic, "t").unwrap();
                let err = Segment::open(&name, SegmentKind::Topic, Access::ReadOnly).unwrap_err();
                expect_foreign(&err, 0);
                println!("refused");
                return;
            }
            Some(other) => panic!("unknown role {other}"),
        }
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED: needs root to run a process as another user");
            return;
        }
        let Some(user) = OtherUser::create() else { return };
        let as_user = |mut cmd: std::process::Command| {
            cmd.uid(user.uid).gid(user.gid);
            cmd
        };

        // Another user squats topic `t` with world-writable files.
        let d = support::unique_domain("squat");
        let mut cmd = as_user(support::role_command(OTHER, "squatter", &d));
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut squatter = cmd.spawn().unwrap();
        let mut out = stdout_lines(&mut squatter);
        assert!(wait_for_line(&mut out, "ready"), "{:?}", finish(squatter, Some(out)));

        // Root, in a process of its own (joining makes a heap in the process's domain).
        let uid = ("OTHER_UID", user.uid.to_string());
        let intruded = support::run_role(OTHER, "intruded", &d, &[uid]);
        support::assert_success("root joining the squatted topic", &intruded);
        let said = String::from_utf8_lossy(&intruded.stdout);
        assert!(said.contains("refused"), "{said}");
        println!("{said}");
        // Root's refused attempts left nothing of their own in the domain.
        let owners: Vec<u32> = support::leftovers(&d)
            .iter()
            .map(|n| {
                std::os::unix::fs::MetadataExt::uid(
                    &liveness::lock_dir().join(n).symlink_metadata().unwrap(),
                )
            })
            .collect();
        assert!(owners.iter().all(|&o| o == user.uid), "{owners:?}");

        let (status, stdout, stderr) = finish(squatter, Some(out));
        assert!(status.success(), "squatter: {status}\n{stdout}\n{stderr}");
        assert!(support::wait_until(Duration::from_secs(10), || support::leftovers(&d).is_empty()));
        support::assert_clean(&d);

        // The other way round: root's objects (mode 0600) cannot even be opened by the other
        // user, who gets the same clear refusal rather than an I/O error.
        let d = support::unique_domain("owned");
        let mut owner = spawn_held_role(OTHER, "owner", &d, &[]);
        let mut owner_out = stdout_lines(&mut owner);
        assert!(wait_for_line(&mut owner_out, "ready"), "{:?}", finish(owner, Some(owner_out)));
        let victim = as_user(support::role_command(OTHER, "victim", &d)).output().unwrap();
        support::assert_success("victim", &victim);
        assert!(String::from_utf8_lossy(&victim.stdout).contains("refused"));
        let (status, stdout, stderr) = finish(owner, Some(owner_out));
        assert!(status.success(), "owner: {status}\n{stdout}\n{stderr}");
        assert!(support::wait_until(Duration::from_secs(10), || support::leftovers(&d).is_empty()));
        support::assert_clean(&d);
        drop(user);
    }
}
