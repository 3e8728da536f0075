//! Compile-pass and compile-fail cases for `#[derive(ShmMessage)]`, grouped by category like
//! serde's: `tests/ui/<category>/pass_*.rs` must compile and run; every other case must fail
//! to compile with exactly the diagnostics in its `.stderr` file (regenerate with
//! `TRYBUILD=overwrite cargo test -p ipc-ui-tests`, then review every changed file).

const CATEGORIES: &[&str] = &["repr", "fields", "generics", "enums", "attrs", "hygiene", "usage"];

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    for category in CATEGORIES {
        t.pass(format!("tests/ui/{category}/pass_*.rs"));
        t.compile_fail(format!("tests/ui/{category}/fail_*.rs"));
    }
}
