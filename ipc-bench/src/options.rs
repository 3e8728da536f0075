//! Command-line options.

use std::path::PathBuf;

/// `--help` text.
pub const USAGE: &str = "\
ipc-bench: cross-process latency and throughput of ipc-runtime, with baselines in the same run

usage: cargo run --release -p ipc-bench [--features iceoryx2] -- [options]

Built with the `iceoryx2` feature it also measures iceoryx2 0.9 (keys iceoryx2/...) in the same
run and prints ours / iceoryx2.

  --quick            smoke run (seconds): 1 round, 100 warm-up, 1000 iterations
  --iterations N     recorded round trips per case, over all rounds (default 10000)
  --warmup N         untimed round trips per case and round (default 1000)
  --rounds N         rounds; cases are interleaved, a fresh peer each time (default 5)
  --pin A,B,...      pin the parent to CPU A and peers to B,... (round robin)
  --only K1,K2,...   run only cases whose key starts with one of these
                     (e.g. busy/fixed-8,baseline,iceoryx2)
  --json             print the results as JSON on stdout instead of markdown
  --svg PATH         where to write the latency plot (default target/ipc-bench/latency.svg)
  --domain NAME      IPC domain of the run (default ipcbench-<pid>)
  -h, --help         this text
";

/// Parsed options.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--quick`.
    pub quick: bool,
    /// `--iterations`.
    pub iterations: u64,
    /// `--warmup`.
    pub warmup: u64,
    /// `--rounds`.
    pub rounds: u32,
    /// `--pin`.
    pub pin: Option<Vec<usize>>,
    /// `--only`.
    pub only: Option<Vec<String>>,
    /// `--json`.
    pub json: bool,
    /// `--svg`.
    pub svg: PathBuf,
    /// `--domain`.
    pub domain: Option<String>,
    /// `--help`.
    pub help: bool,
}

/// The default plot path: `<workspace>/target/ipc-bench/latency.svg` (or under
/// `$CARGO_TARGET_DIR`).
fn default_svg() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map_or("target".into(), |w| w.join("target"))
    });
    target.join("ipc-bench").join("latency.svg")
}

impl Options {
    /// Parses the arguments (without the program name).
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut quick = false;
        let (mut iterations, mut warmup, mut rounds) = (None, None, None);
        let mut options = Options {
            quick: false,
            iterations: 0,
            warmup: 0,
            rounds: 0,
            pin: None,
            only: None,
            json: false,
            svg: default_svg(),
            domain: None,
            help: false,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value =
                |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
            let number = |name: &str, text: String| {
                text.parse::<u64>().map_err(|e| format!("{name} {text}: {e}"))
            };
            match arg.as_str() {
                "--quick" => quick = true,
                "--json" => options.json = true,
                "-h" | "--help" => options.help = true,
                "--iterations" => iterations = Some(number(arg, value(arg)?)?.max(1)),
                "--warmup" => warmup = Some(number(arg, value(arg)?)?),
                "--rounds" => rounds = Some(number(arg, value(arg)?)?.clamp(1, 100) as u32),
                "--svg" => options.svg = PathBuf::from(value(arg)?),
                "--domain" => options.domain = Some(value(arg)?),
                "--pin" => {
                    let list = value(arg)?;
                    let cpus = list
                        .split(',')
                        .map(|c| c.trim().parse::<usize>().map_err(|e| format!("--pin {c}: {e}")))
                        .collect::<Result<Vec<_>, _>>()?;
                    options.pin = Some(cpus);
                }
                "--only" => {
                    options.only = Some(value(arg)?.split(',').map(str::to_owned).collect());
                }
                // `cargo bench` passes this to harness-less targets; harmless here.
                "--bench" => {}
                other => return Err(format!("unknown option {other}\n\n{USAGE}")),
            }
        }
        options.quick = quick;
        options.iterations = iterations.unwrap_or(if quick { 1_000 } else { 10_000 });
        options.warmup = warmup.unwrap_or(if quick { 100 } else { 1_000 });
        options.rounds = rounds.unwrap_or(if quick { 1 } else { 5 });
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn quick_sets_defaults_that_explicit_values_override() {
        let o = parse(&["--quick", "--iterations", "50", "--pin", "0,1"]).unwrap();
        assert!(o.quick);
        assert_eq!((o.iterations, o.warmup, o.rounds), (50, 100, 1));
        assert_eq!(o.pin, Some(vec![0, 1]));
        let o = parse(&[]).unwrap();
        assert_eq!((o.iterations, o.warmup, o.rounds), (10_000, 1_000, 5));
        assert_eq!(o.svg, default_svg());
        assert!(o.svg.ends_with("ipc-bench/latency.svg"), "{}", o.svg.display());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--iterations"]).is_err());
    }
}
