//! `ipc`: look at and tidy up a domain's shared-memory objects.
//!
//! ```text
//! ipc list  [--watch] [--interval SECS]   topics, heaps, event channels
//! ipc show  TOPIC                         one topic: options and every participant
//! ipc hz    TOPIC [--window SECS]         message rate and subscriber queue fill
//! ipc clean                               remove what belongs to dead processes
//! ```
//!
//! Every command takes `--domain D` (default: `IPC_DOMAIN`, else `ipc`) and `--json`. `list`,
//! `show` and `hz` change nothing and join no topic: they map its memory read-only. `clean`
//! prints every object it removed and every object it could not handle (with the reason, on
//! stderr), goes on with the rest of the domain after a failure, and exits with status 1 if
//! anything failed. Usage errors exit with status 2.

mod hz;
mod report;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ipc_runtime::inspect::{self, CleanReport};

/// Look at and tidy up the shared-memory objects of an ipc-runtime domain.
#[derive(Debug, Parser)]
#[command(name = "ipc", version, propagate_version = true)]
struct Cli {
    /// The domain to look at [default: $IPC_DOMAIN, else `ipc`]
    #[arg(long, global = true, value_name = "D")]
    domain: Option<String>,
    /// Machine-readable output: one JSON document (per refresh with --watch, per window for hz)
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Topics (type, participants alive/dead, queue fill), heaps and event channels
    List {
        /// Refresh until interrupted (or --count refreshes)
        #[arg(long)]
        watch: bool,
        /// Seconds between refreshes with --watch
        #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = seconds)]
        interval: f64,
        /// Stop after this many refreshes (with --watch)
        #[arg(long, value_name = "N", requires = "watch")]
        count: Option<u64>,
    },
    /// One topic's options and participants
    Show {
        /// The topic's name, as the program spells it (`robot/arm/joints`)
        topic: String,
    },
    /// A topic's message rate and its subscribers' queue fill, from the sequence counters
    /// (joins nothing: the topic's memory is only read)
    Hz {
        /// The topic's name, as the program spells it (`robot/arm/joints`)
        topic: String,
        /// Seconds per measurement window
        #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = seconds)]
        window: f64,
        /// Stop after this many windows [default: until interrupted]
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Remove what belongs to dead processes and print what was removed
    Clean,
}

/// Parses a positive number of seconds (at most a day).
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(s),
        Ok(_) => Err("must be more than 0 and at most 86400 seconds".into()),
        Err(e) => Err(format!("not a number of seconds: {e}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let domain = cli.domain.clone().unwrap_or_else(|| ipc_runtime::domain::current().to_owned());
    if let Err(err) = ipc_runtime::domain::validate_domain(&domain) {
        eprintln!("ipc: {err}");
        return ExitCode::from(2);
    }
    let result = match &cli.command {
        Command::List { watch, interval, count } => {
            let refreshes = if *watch { *count } else { Some(1) };
            list(&domain, cli.json, *watch, Duration::from_secs_f64(*interval), refreshes)
        }
        Command::Show { topic } => show(&domain, topic, cli.json),
        Command::Hz { topic, window, count } => known_topic(&domain, topic).and_then(|()| {
            hz::run(&domain, topic, Duration::from_secs_f64(*window), *count, cli.json)
        }),
        Command::Clean => match inspect::clean(&domain) {
            Ok(report) => return clean_output(&domain, cli.json, &report),
            Err(err) => Err(format!("domain `{domain}`: {err}")),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ipc: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `ipc list`, once or every `interval` (`refreshes`: `None` = until interrupted).
fn list(
    domain: &str,
    json: bool,
    watch: bool,
    interval: Duration,
    refreshes: Option<u64>,
) -> Result<(), String> {
    let mut done = 0u64;
    loop {
        let info = inspect::domain(domain).map_err(|err| format!("domain `{domain}`: {err}"))?;
        if json {
            println!("{}", report::json(&report::Domain::from(&info)));
        } else {
            if watch {
                // Clear the screen between refreshes on a terminal; a blank line otherwise.
                use std::io::IsTerminal as _;
                if std::io::stdout().is_terminal() {
                    print!("\x1b[2J\x1b[H");
                } else if done > 0 {
                    println!();
                }
            }
            print!("{}", report::table_domain(&info));
        }
        if done == 0 && report::is_empty(&info) {
            eprintln!("ipc: {}", empty_domain(domain));
        }
        done += 1;
        if refreshes.is_some_and(|n| done >= n) {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

fn show(domain: &str, topic: &str, json: bool) -> Result<(), String> {
    known_topic(domain, topic)?;
    let info = inspect::topic(domain, topic)
        .map_err(|err| format!("topic `{topic}` in domain `{domain}`: {err}"))?;
    if json {
        println!("{}", report::json(&report::Topic::from(&info)));
    } else {
        print!("{}", report::table_topic(&info));
    }
    Ok(())
}

/// `Ok` if `topic` exists in `domain`; otherwise an error in the user's words: which topics
/// there are, or that the domain has nothing at all (and which domains do).
fn known_topic(domain: &str, topic: &str) -> Result<(), String> {
    let topics = inspect::topics(domain).map_err(|err| format!("domain `{domain}`: {err}"))?;
    if topics.iter().any(|t| t == topic) {
        return Ok(());
    }
    if topics.is_empty() {
        return Err(format!("no topic `{topic}`: {}", empty_domain(domain)));
    }
    const SHOWN: usize = 10;
    let mut names: Vec<String> = topics.iter().take(SHOWN).map(|t| format!("`{t}`")).collect();
    if topics.len() > SHOWN {
        names.push(format!("and {} more (`ipc list`)", topics.len() - SHOWN));
    }
    Err(format!("no topic `{topic}` in domain `{domain}`; its topics: {}", names.join(", ")))
}

/// "domain `x` has no topics …": says which domains do have objects, for a mistyped `--domain`.
fn empty_domain(domain: &str) -> String {
    let others: Vec<String> = inspect::domains()
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d != domain)
        .map(|d| format!("`{d}`"))
        .collect();
    if others.is_empty() {
        format!(
            "domain `{domain}` has no topics, heaps or event channels, and no other domain has any"
        )
    } else {
        format!(
            "domain `{domain}` has no topics, heaps or event channels (domains that have: {}; \
             choose one with --domain or IPC_DOMAIN)",
            others.join(", ")
        )
    }
}

/// Prints what `clean` did: removed objects on stdout, failures on stderr (both in the JSON
/// document with `--json`); failure if anything could not be cleaned.
fn clean_output(domain: &str, json: bool, report: &CleanReport) -> ExitCode {
    if json {
        println!("{}", report::json(&report::Clean::new(domain, report)));
    } else {
        if report.removed.is_empty() && report.failed.is_empty() {
            println!("domain `{domain}`: nothing to clean");
        } else if !report.removed.is_empty() {
            println!("domain `{domain}`: removed {} object(s)", report.removed.len());
            for line in &report.removed {
                println!("  {line}");
            }
        }
        if !report.failed.is_empty() {
            eprintln!("ipc: domain `{domain}`: could not clean {} object(s)", report.failed.len());
            for (object, reason) in &report.failed {
                eprintln!("  {object}: {reason}");
            }
        }
    }
    if report.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn options_go_before_or_after_the_command() {
        let a = Cli::try_parse_from(["ipc", "--domain", "d", "show", "x"]).unwrap();
        let b = Cli::try_parse_from(["ipc", "show", "x", "--domain", "d", "--json"]).unwrap();
        assert_eq!(a.domain.as_deref(), Some("d"));
        assert_eq!(b.domain.as_deref(), Some("d"));
        assert!(b.json);
        assert!(Cli::try_parse_from(["ipc", "hz", "x", "--window", "0"]).is_err());
        assert!(Cli::try_parse_from(["ipc", "list", "--count", "2"]).is_err(), "needs --watch");
    }
}
