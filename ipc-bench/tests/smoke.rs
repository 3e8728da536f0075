//! Smoke tests of the benchmark binary: it runs, prints its tables, writes a well-formed SVG and
//! JSON, and leaves nothing of its domain behind (iceoryx2's files carry the domain too). Numbers
//! are never asserted. With `--features iceoryx2` the iceoryx2 cases, their table and targets are
//! checked as well.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the binary under test has the iceoryx2 comparison compiled in.
const ICEORYX2: bool = cfg!(feature = "iceoryx2");

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ipc-bench-test-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Entries named after `domain` in the places the framework and the benchmark put things.
fn left_behind(domain: &str) -> Vec<String> {
    let prefix = format!("{domain}.");
    [PathBuf::from("/dev/shm"), ipc_runtime::liveness::lock_dir(), std::env::temp_dir()]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

fn run(domain: &str, svg: &Path, extra: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ipc-bench"))
        .args(["--quick", "--iterations", "60", "--warmup", "10", "--domain", domain, "--svg"])
        .arg(svg)
        .args(extra)
        .output()
        .expect("run ipc-bench");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "ipc-bench failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let left = left_behind(domain);
    assert!(left.is_empty(), "left behind: {left:?}");
    stdout
}

fn assert_svg(path: &Path) {
    let svg = std::fs::read_to_string(path).expect("SVG written");
    assert!(svg.starts_with("<svg"), "not an SVG: {}", &svg[..svg.len().min(80)]);
    assert!(svg.trim_end().ends_with("</svg>"), "SVG not closed");
    assert_eq!(svg.matches("<svg").count(), 1);
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    assert!(svg.contains("<polyline") || svg.contains("<path"), "no curves drawn");
    assert!(svg.contains("busy-poll [u8; 8 B]"), "legend lacks the 8 B busy-poll curve");
}

#[test]
fn full_quick_run_prints_tables_and_plot_and_cleans_up() {
    let dir = scratch("full");
    let domain = format!("ipcbench-test-{}", std::process::id());
    let svg = dir.join("latency.svg");
    let stdout = run(&domain, &svg, &[]);
    for needle in [
        "| case | samples | p50 | p90 | p99 | p99.9 | max |",
        "| metric | ours | baseline | ratio |",
        "| target | measured | limit | result |",
        "raw atomic flag (floor)",
        "Unix socket ping-pong",
        "pipe ping-pong",
        "blocking ShmVec<u8> 4 MiB",
        "fan-out 1→16",
        "throughput [u8; 64 KiB]",
        "per message in batches of 100 (no clock read per message)",
    ] {
        assert!(stdout.contains(needle), "output lacks {needle:?}:\n{stdout}");
    }
    // Issue 7's five, ≤ 2 × floor, ≥ 10 × Unix datagrams, the one-thread cost, request/response
    // against ping-pong (busy-poll and blocking), WaitSet-16 and async against a blocking
    // receive; with iceoryx2 also its four (busy p50, busy p99, throughput, blocking p50).
    let targets = stdout.matches("| pass |").count() + stdout.matches("| MISS |").count();
    assert_eq!(targets, if ICEORYX2 { 16 } else { 12 }, "{stdout}");
    assert_eq!(stdout.contains("### ours vs iceoryx2 (same run)"), ICEORYX2, "{stdout}");
    if ICEORYX2 {
        for row in ["busy-poll 8 B", "busy-poll 64 KiB", "blocking 8 B", "blocking 64 KiB"] {
            assert!(stdout.contains(&format!("| {row} | ")), "no row {row:?}:\n{stdout}");
        }
        assert!(stdout.contains("| throughput 8 B, busy-poll receiver | "), "{stdout}");
        assert!(stdout.contains("| iceoryx2 blocking [u8; 64 KiB] | "), "{stdout}");
    } else {
        assert!(!stdout.contains("iceoryx2"), "{stdout}");
    }
    assert_svg(&svg);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn json_output_is_machine_readable() {
    let dir = scratch("json");
    let domain = format!("ipcbench-json-{}", std::process::id());
    let svg = dir.join("plot.svg");
    let stdout = run(
        &domain,
        &svg,
        &["--json", "--only", "baseline/raw,busy/fixed-8,tput/busy/fixed-8,tput/uds-dgram/8"],
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    let keys: Vec<&str> =
        json["latency"].as_array().unwrap().iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["baseline/raw-atomic", "busy/fixed-8"]);
    assert!(json["latency"][1]["p50_ns"].as_u64().unwrap() > 0);
    assert_eq!(json["throughput"].as_array().unwrap().len(), 2);
    let targets: Vec<&str> =
        json["targets"].as_array().unwrap().iter().map(|t| t["target"].as_str().unwrap()).collect();
    assert_eq!(targets.len(), 3, "the two floor targets and the datagram one apply: {targets:?}");
    assert!(json["versus_iceoryx2"].as_array().unwrap().is_empty());
    assert_eq!(json["meta"]["left_behind"].as_array().unwrap().len(), 0);
    assert_svg(&svg);
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(feature = "iceoryx2")]
#[test]
fn iceoryx2_json_has_the_comparison_and_its_targets() {
    let dir = scratch("iox2");
    let domain = format!("ipcbench-iox2-{}", std::process::id());
    let svg = dir.join("plot.svg");
    let stdout = run(
        &domain,
        &svg,
        &["--json", "--only", "busy/fixed-8,iceoryx2/busy/fixed-8,iceoryx2/tput"],
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    let keys: Vec<&str> =
        json["latency"].as_array().unwrap().iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["busy/fixed-8", "iceoryx2/busy/fixed-8"]);
    let versus = json["versus_iceoryx2"].as_array().unwrap();
    assert_eq!(versus.len(), 1, "only busy-poll 8 B has both sides: {versus:?}");
    assert_eq!(versus[0]["case"], "busy-poll 8 B");
    assert!(versus[0]["ratio_p50"].as_f64().unwrap() > 0.0);
    assert!(versus[0]["ratio_p99"].as_f64().unwrap() > 0.0);
    assert_eq!(json["throughput"][0]["key"], "iceoryx2/tput/busy/fixed-8");
    let targets: Vec<&str> =
        json["targets"].as_array().unwrap().iter().map(|t| t["target"].as_str().unwrap()).collect();
    assert_eq!(targets.len(), 2, "busy p50 and p99 against iceoryx2: {targets:?}");
    assert_eq!(json["meta"]["left_behind"].as_array().unwrap().len(), 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn scale_quick_run_prints_its_tables_and_cleans_up() {
    let output = Command::new(env!("CARGO_BIN_EXE_ipc-bench"))
        .args(["scale", "--quick"])
        .output()
        .expect("run ipc-bench scale");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "ipc-bench scale failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for needle in [
        "| pairs created | 200 of 200 | all | pass |",
        "| threads beyond the program's own |",
        "| open fds |",
        "| RSS per pair |",
        "| idle CPU over ",
        "| OS objects per pair (/dev/shm) |",
        "| with 200 idle pairs |",
        "| with none |",
        "| latency ratio p50 (idle pairs / none) |",
        "| ipc list (inspect::domain) |",
        "| left in the domain | 0 objects | 0 | pass |",
        "left behind: nothing",
    ] {
        assert!(stdout.contains(needle), "output lacks {needle:?}:\n{stdout}");
    }
}
