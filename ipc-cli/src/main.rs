//! `ipc`: look at and tidy up a domain's shared-memory objects.
//!
//! ```text
//! ipc list  [--domain D] [--json]        topics, heaps, event channels
//! ipc show  TOPIC [--domain D] [--json]  one topic: options and every participant
//! ipc clean [--domain D] [--json]        remove what belongs to dead processes
//! ```
//!
//! The domain defaults to `IPC_DOMAIN`, else `ipc`. `list` and `show` change nothing; `clean`
//! prints every object it removed and every object it could not handle (with the reason, on
//! stderr), goes on with the rest of the domain after a failure, and exits with status 1 if
//! anything failed.

use std::fmt::Write as _;
use std::process::ExitCode;

use ipc_runtime::inspect::{self, CleanReport, DomainInfo, HeapInfo, ParticipantInfo, TopicInfo};
use serde_json::{Value, json};

const USAGE: &str = "\
usage: ipc <command> [options]

commands:
  list           topics (type, participants alive/dead, queue fill), heaps, event channels
  show TOPIC     one topic's options and participants
  clean          remove what belongs to dead processes and print what was removed

options:
  --domain D     the domain to look at (default: $IPC_DOMAIN, else `ipc`)
  --json         machine-readable output
";

struct Args {
    command: String,
    topic: Option<String>,
    domain: String,
    json: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut command = None;
    let mut topic = None;
    let mut domain = None;
    let mut json = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--domain" => domain = Some(args.next().ok_or("--domain needs a value")?),
            "-h" | "--help" | "help" => command = Some("help".to_owned()),
            flag if flag.starts_with('-') => return Err(format!("unknown option `{flag}`")),
            word if command.is_none() => command = Some(word.to_owned()),
            word if command.as_deref() == Some("show") && topic.is_none() => {
                topic = Some(word.to_owned())
            }
            word => return Err(format!("unexpected argument `{word}`")),
        }
    }
    let command = command.ok_or("no command given")?;
    if command == "show" && topic.is_none() {
        return Err("`show` needs a topic name".into());
    }
    let domain = domain.unwrap_or_else(|| ipc_runtime::domain::current().to_owned());
    Ok(Args { command, topic, domain, json })
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("ipc: {err}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match args.command.as_str() {
        "help" => {
            print!("{USAGE}");
            Ok(String::new())
        }
        "list" => inspect::domain(&args.domain)
            .map(|d| if args.json { json_domain(&d).to_string() } else { table_domain(&d) })
            .map_err(|err| format!("domain `{}`: {err}", args.domain)),
        "show" => {
            let name = args.topic.as_deref().unwrap_or_default();
            inspect::topic(&args.domain, name)
                .map(|t| if args.json { json_topic(&t).to_string() } else { table_topic(&t) })
                .map_err(|err| format!("topic `{name}` in domain `{}`: {err}", args.domain))
        }
        "clean" => match inspect::clean(&args.domain) {
            Ok(report) => return clean_output(&args, &report),
            Err(err) => Err(format!("domain `{}`: {err}", args.domain)),
        },
        other => {
            eprintln!("ipc: unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(out) => {
            print!("{out}");
            if args.json {
                println!();
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("ipc: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Prints what `clean` did: removed objects on stdout, failures on stderr (both in the JSON
/// document with `--json`); failure if anything could not be cleaned.
fn clean_output(args: &Args, report: &CleanReport) -> ExitCode {
    if args.json {
        let failed: Vec<Value> = report
            .failed
            .iter()
            .map(|(object, reason)| json!({ "object": object, "reason": reason }))
            .collect();
        println!(
            "{}",
            json!({ "domain": args.domain, "removed": report.removed, "failed": failed })
        );
    } else {
        if report.removed.is_empty() && report.failed.is_empty() {
            println!("domain `{}`: nothing to clean", args.domain);
        } else if !report.removed.is_empty() {
            println!("domain `{}`: removed {} object(s)", args.domain, report.removed.len());
            for line in &report.removed {
                println!("  {line}");
            }
        }
        if !report.failed.is_empty() {
            eprintln!(
                "ipc: domain `{}`: could not clean {} object(s)",
                args.domain,
                report.failed.len()
            );
            for (object, reason) in &report.failed {
                eprintln!("  {object}: {reason}");
            }
        }
    }
    if report.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn count(participants: &[ParticipantInfo]) -> (usize, usize) {
    let alive = participants.iter().filter(|p| p.alive).count();
    (alive, participants.len() - alive)
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// Renders rows as an aligned text table.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<&str>| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "  {}", padded.join("  ").trim_end());
    };
    line(&mut out, header.to_vec());
    for row in rows {
        line(&mut out, row.iter().map(String::as_str).collect());
    }
    out
}

fn table_domain(d: &DomainInfo) -> String {
    let mut out = format!("domain `{}`\n\ntopics:\n", d.domain);
    if d.topics.is_empty() && d.unreadable.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let mut rows: Vec<Vec<String>> = d
            .topics
            .iter()
            .map(|t| {
                let (pa, pd) = count(&t.publishers);
                let (sa, sd) = count(&t.subscribers);
                let queued: u64 = t.subscribers.iter().map(|s| s.queued).sum();
                let fill = t.subscribers.len() as u64 * t.subscriber_capacity as u64;
                vec![
                    t.name.clone(),
                    t.type_name.clone(),
                    format!("{pa} alive, {pd} dead"),
                    format!("{sa} alive, {sd} dead"),
                    format!("{queued}/{fill}"),
                    t.backend.clone(),
                ]
            })
            .collect();
        rows.extend(d.unreadable.iter().map(|(name, err)| {
            vec![
                name.clone(),
                format!("unreadable: {err}"),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]
        }));
        out.push_str(&table(
            &["TOPIC", "TYPE", "PUBLISHERS", "SUBSCRIBERS", "QUEUED", "BACKEND"],
            &rows,
        ));
    }
    out.push_str("\nheaps:\n");
    if d.heaps.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = d.heaps.iter().map(heap_row).collect();
        out.push_str(&table(&["SEGMENT", "OWNER", "IN USE", "HIGH WATER", "CAPACITY"], &rows));
    }
    out.push_str("\nevent channels:\n");
    if d.events.is_empty() && d.unreadable_events.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let mut rows: Vec<Vec<String>> = d
            .events
            .iter()
            .map(|e| vec![e.name.clone(), format!("{} alive, {} dead", e.alive, e.dead)])
            .collect();
        rows.extend(
            d.unreadable_events
                .iter()
                .map(|(name, err)| vec![name.clone(), format!("unreadable: {err}")]),
        );
        out.push_str(&table(&["CHANNEL", "PARTICIPANTS"], &rows));
    }
    out
}

fn heap_row(h: &HeapInfo) -> Vec<String> {
    vec![
        h.segment.clone(),
        format!("pid {} ({})", h.owner_pid, if h.alive { "alive" } else { "dead" }),
        bytes(h.stats.bytes_in_use()),
        bytes(h.stats.high_water()),
        bytes(h.stats.capacity()),
    ]
}

fn participant_rows(list: &[ParticipantInfo], publisher: bool) -> Vec<Vec<String>> {
    list.iter()
        .map(|p| {
            let mut row = vec![
                p.slot.to_string(),
                p.pid.to_string(),
                if p.alive { "alive".into() } else { "dead".into() },
                p.state.to_owned(),
                p.generation.to_string(),
                p.count.to_string(),
            ];
            if publisher {
                row.push(p.heap.as_ref().map_or_else(String::new, |h| {
                    format!("{} / {}", bytes(h.stats.bytes_in_use()), bytes(h.stats.capacity()))
                }));
            } else {
                row.push(p.queued.to_string());
            }
            row
        })
        .collect()
}

fn table_topic(t: &TopicInfo) -> String {
    let mut out = format!(
        "topic `{}`\n  type {} ({} bytes, fingerprint {:016x}), backend {}\n  \
         capacity {}, history {}, max subscribers {}, max publishers {}, overflow {}, max borrowed {}\n",
        t.name,
        t.type_name,
        t.message_size,
        t.fingerprint,
        t.backend,
        t.subscriber_capacity,
        t.history,
        t.max_subscribers,
        t.max_publishers,
        t.overflow,
        t.max_borrowed
    );
    out.push_str("\npublishers:\n");
    if t.publishers.is_empty() {
        out.push_str("  (none)\n");
    } else {
        out.push_str(&table(
            &["SLOT", "PID", "LIVENESS", "STATE", "GEN", "SEQUENCE", "HEAP"],
            &participant_rows(&t.publishers, true),
        ));
    }
    out.push_str("\nsubscribers:\n");
    if t.subscribers.is_empty() {
        out.push_str("  (none)\n");
    } else {
        out.push_str(&table(
            &["SLOT", "PID", "LIVENESS", "STATE", "GEN", "RECEIVED", "QUEUED"],
            &participant_rows(&t.subscribers, false),
        ));
    }
    out
}

fn json_heap(h: &HeapInfo) -> Value {
    json!({
        "segment": h.segment,
        "owner_pid": h.owner_pid,
        "alive": h.alive,
        "bytes_in_use": h.stats.bytes_in_use(),
        "high_water": h.stats.high_water(),
        "capacity": h.stats.capacity(),
    })
}

fn json_participant(p: &ParticipantInfo) -> Value {
    json!({
        "slot": p.slot,
        "pid": p.pid,
        "alive": p.alive,
        "state": p.state,
        "generation": p.generation,
        "count": p.count,
        "queued": p.queued,
        "heap": p.heap.as_ref().map(json_heap),
    })
}

fn json_topic(t: &TopicInfo) -> Value {
    json!({
        "name": t.name,
        "type": t.type_name,
        "fingerprint": format!("{:016x}", t.fingerprint),
        "message_size": t.message_size,
        "backend": t.backend,
        "options": {
            "subscriber_capacity": t.subscriber_capacity,
            "history": t.history,
            "max_subscribers": t.max_subscribers,
            "max_publishers": t.max_publishers,
            "overflow": t.overflow,
            "max_borrowed": t.max_borrowed,
        },
        "publishers": t.publishers.iter().map(json_participant).collect::<Vec<_>>(),
        "subscribers": t.subscribers.iter().map(json_participant).collect::<Vec<_>>(),
    })
}

fn json_domain(d: &DomainInfo) -> Value {
    json!({
        "domain": d.domain,
        "topics": d.topics.iter().map(json_topic).collect::<Vec<_>>(),
        "unreadable_topics": d.unreadable.iter().map(|(n, e)| json!({"name": n, "error": e})).collect::<Vec<_>>(),
        "heaps": d.heaps.iter().map(json_heap).collect::<Vec<_>>(),
        "events": d.events.iter().map(|e| json!({"name": e.name, "alive": e.alive, "dead": e.dead})).collect::<Vec<_>>(),
        "unreadable_events": d.unreadable_events.iter().map(|(n, e)| json!({"name": n, "error": e})).collect::<Vec<_>>(),
    })
}
