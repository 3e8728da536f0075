//! Smoke tests of the benchmark binary: it runs, prints its tables, writes a well-formed SVG and
//! JSON, and leaves nothing of its domain behind. Numbers are never asserted.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

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
    ] {
        assert!(stdout.contains(needle), "output lacks {needle:?}:\n{stdout}");
    }
    assert_eq!(stdout.matches("| pass |").count() + stdout.matches("| MISS |").count(), 5);
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
    assert_eq!(json["targets"].as_array().unwrap().len(), 1, "only the floor target applies");
    assert_eq!(json["meta"]["left_behind"].as_array().unwrap().len(), 0);
    assert_svg(&svg);
    std::fs::remove_dir_all(dir).unwrap();
}
