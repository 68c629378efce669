//! Compile-time checks of `#[worker]`: each file under `ui/fail` must fail with the error
//! in its `.stderr` (the review reads those), each under `ui/pass` must build and run.
//! Refresh the expected output with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/fail/*.rs");
    cases.pass("ui/pass/*.rs");
}
