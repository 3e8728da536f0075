//! A publisher that restarts is visible on its samples: a new `PublisherId`, with the sequence
//! back at 1, whether the old one left cleanly or was killed.

mod support;

use std::time::Duration;

use ipc_runtime::prelude::*;
use support::{finish, spawn_held_role, stdout_lines, wait_for_line};

const TEST: &str = "a_restarted_publisher_has_a_new_id";
const TOPIC: &str = "robot/arm/state";

#[test]
fn a_restarted_publisher_has_a_new_id() {
    if support::role().as_deref() == Some("pub") {
        let publisher = Publisher::<u64>::new(TOPIC).unwrap();
        for i in 0..3 {
            publisher.publish(i).unwrap();
        }
        println!("published");
        support::wait_for_parent();
        return;
    }
    if support::role().is_none() {
        // The subscriber runs in a child too, so that this process can check that the domain
        // ends clean once everyone is gone.
        let domain = support::unique_domain("restart");
        let out = support::run_role(TEST, "driver", &domain, &[]);
        support::assert_success("driver", &out);
        assert!(support::wait_until(Duration::from_secs(10), || {
            support::leftovers(&domain).is_empty()
        }));
        return;
    }
    let domain = support::env("IPC_DOMAIN");
    let subscriber = Subscriber::<u64>::new(TOPIC).unwrap();
    let receive_three = |what: &str| {
        let samples: Vec<_> = (0..3)
            .map(|_| {
                subscriber
                    .receive_timeout(Duration::from_secs(10))
                    .unwrap()
                    .unwrap_or_else(|| panic!("{what}: nothing arrived"))
            })
            .collect();
        let id = samples[0].publisher();
        assert!(samples.iter().all(|s| s.publisher() == id), "{what}: one publisher");
        let sequences: Vec<u64> = samples.iter().map(|s| s.sequence()).collect();
        assert_eq!(sequences, [1, 2, 3], "{what}");
        id
    };

    let mut ids = Vec::new();
    for how in ["clean exit", "SIGKILL", "restart after SIGKILL"] {
        let mut child = spawn_held_role(TEST, "pub", &domain, &[]);
        let mut out = stdout_lines(&mut child);
        assert!(wait_for_line(&mut out, "published"), "{how}");
        ids.push(receive_three(how));
        if how == "SIGKILL" {
            child.kill().unwrap();
            child.wait().unwrap();
        } else {
            let (status, stdout, stderr) = finish(child, Some(out));
            assert!(status.success(), "{status}\n{stdout}\n{stderr}");
        }
    }
    // Each run is another publisher, even where it took the slot of the one before.
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            assert_ne!(a, b, "{ids:?}");
        }
    }
    assert!(ids.windows(2).any(|w| w[0].index() == w[1].index()), "a slot was reused: {ids:?}");
}
