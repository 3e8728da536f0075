//! Topic options whatever the start order: a participant that sets no option adopts the
//! topic's, a history the creator left unset is adopted from the first that asks, an explicit
//! conflict is an error naming the option, both values and the creator, and options given in
//! `#[shm(...)]` apply to `Type::publisher()` / `Type::subscriber()`. Real processes.

mod support;

use std::time::Duration;

use ipc_runtime::prelude::*;
use ipc_runtime::pubsub::Overflow;
use support::{finish, spawn_held_role, stdout_lines, wait_for_line};

const TEST: &str = "options_do_not_depend_on_start_order";
const TOPIC: &str = "opts/order";

#[derive(ShmMessage)]
#[shm(topic = "opts/attr", history = 3, capacity = 8, overflow = "block")]
#[repr(C)]
struct Joints {
    angles: [f32; 4],
}

fn receive_values(subscriber: &Subscriber<u64>, n: usize) -> Vec<u64> {
    (0..n)
        .map(|_| *subscriber.receive_timeout(Duration::from_secs(10)).unwrap().expect("a message"))
        .collect()
}

#[test]
fn options_do_not_depend_on_start_order() {
    match support::role().as_deref() {
        None => parent(),
        Some("early") => {
            // Defaults: creates the topic without choosing anything.
            let subscriber = Subscriber::<u64>::new(TOPIC).unwrap();
            println!("ready");
            println!("got={:?}", receive_values(&subscriber, 6));
        }
        Some("publisher") => {
            let publisher = Publisher::<u64>::builder(TOPIC).history(4).create().unwrap();
            assert!(support::wait_until(Duration::from_secs(10), || {
                publisher.subscriber_count() == 1
            }));
            for i in 1..=6 {
                publisher.publish(i).unwrap();
            }
            println!("published");
            support::wait_for_parent();
        }
        Some("late") => {
            let subscriber = Subscriber::<u64>::new(TOPIC).unwrap();
            println!("got={:?}", receive_values(&subscriber, 4));
        }
        Some("conflict") => {
            let err = Publisher::<u64>::builder(TOPIC).history(2).create().unwrap_err();
            println!("error={err}");
            let err =
                Subscriber::<u64>::builder(TOPIC).subscriber_capacity(64).create().unwrap_err();
            println!("error={err}");
        }
        Some("attr-sub") => {
            let subscriber = Joints::subscriber().unwrap();
            println!("ready");
            let sample = subscriber.receive_timeout(Duration::from_secs(10)).unwrap().unwrap();
            println!("got={:?}", sample.angles);
        }
        Some("attr-pub") => {
            let publisher = Joints::publisher().unwrap();
            assert!(support::wait_until(Duration::from_secs(10), || {
                publisher.subscriber_count() == 1
            }));
            publisher.publish(Joints { angles: [1.0, 2.0, 3.0, 4.0] }).unwrap();
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

fn parent() {
    let domain = support::unique_domain("options");
    // Subscriber with defaults first, then a publisher asking for a history.
    let mut early = spawn_held_role(TEST, "early", &domain, &[]);
    let mut early_out = stdout_lines(&mut early);
    assert!(wait_for_line(&mut early_out, "ready"));
    let creator = early.id();
    let mut publisher = spawn_held_role(TEST, "publisher", &domain, &[]);
    let mut publisher_out = stdout_lines(&mut publisher);
    assert!(wait_for_line(&mut publisher_out, "published"));
    let (status, stdout, stderr) = finish(early, Some(early_out));
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("got=[1, 2, 3, 4, 5, 6]"), "{stdout}");
    // A late joiner gets the adopted history.
    let late = support::run_role(TEST, "late", &domain, &[]);
    support::assert_success("late subscriber", &late);
    assert_eq!(support::field(&late, "got").as_deref(), Some("[3, 4, 5, 6]"));
    let info = ipc_runtime::inspect::topic(&domain, TOPIC).unwrap();
    assert_eq!(info.history, 4);
    // An explicit conflict names the option, both values and who created the topic.
    let conflict = support::run_role(TEST, "conflict", &domain, &[]);
    support::assert_success("conflicting participant", &conflict);
    let text = String::from_utf8_lossy(&conflict.stdout);
    let hint = "(a topic's options are fixed by the participant that creates it: give every \
                participant the same options, or none to adopt the topic's)";
    assert!(
        text.contains(&format!(
            "error=topic `{TOPIC}` was created by pid {creator} with history = 4; this \
             participant asked for 2 {hint}"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "error=topic `{TOPIC}` was created by pid {creator} with subscriber_capacity = 16 \
             (the default); this participant asked for 64 {hint}"
        )),
        "{text}"
    );
    let (status, _, stderr) = finish(publisher, Some(publisher_out));
    assert!(status.success(), "{stderr}");

    // Options in the attribute: whoever starts first, both sides ask for the same.
    let mut sub = spawn_held_role(TEST, "attr-sub", &domain, &[]);
    let mut sub_out = stdout_lines(&mut sub);
    assert!(wait_for_line(&mut sub_out, "ready"));
    let info = ipc_runtime::inspect::topic(&domain, "opts/attr").unwrap();
    assert_eq!((info.history, info.subscriber_capacity), (3, 8));
    assert_eq!(info.overflow, Overflow::Block.to_string());
    let attr_pub = support::run_role(TEST, "attr-pub", &domain, &[]);
    support::assert_success("attribute publisher", &attr_pub);
    let (status, stdout, stderr) = finish(sub, Some(sub_out));
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("got=[1.0, 2.0, 3.0, 4.0]"), "{stdout}");
    assert!(support::wait_until(Duration::from_secs(10), || {
        support::leftovers(&domain).is_empty()
    }));
}
