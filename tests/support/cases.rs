//! Proptest runs with a fixed case count, and a check that the generator hit every input
//! class a test is about, so a change to the strategies cannot quietly stop exercising one.

use std::cell::Cell;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseResult, TestRunner};

/// Runs `check` on `cases` generated values; a failure panics with the shrunk case.
pub(crate) fn run<S: Strategy>(
    cases: u32,
    source_file: &'static str,
    strategy: &S,
    check: impl Fn(S::Value) -> TestCaseResult,
) {
    let config = Config {
        cases,
        source_file: Some(source_file),
        ..Config::default()
    };
    if let Err(error) = TestRunner::new(config).run(strategy, check) {
        panic!("{error}");
    }
}

/// Counts one more hit of an input class when `hit`.
pub(crate) fn bump(counter: &Cell<u32>, hit: bool) {
    counter.set(counter.get() + u32::from(hit));
}

/// Asserts every class was hit in at least 2 % of `cases`: plenty at 10,000 cases.
pub(crate) fn assert_covered(cases: u32, classes: &[(&str, &Cell<u32>)]) {
    let minimum = cases / 50;
    for (name, count) in classes {
        assert!(
            count.get() >= minimum,
            "only {} of {cases} cases covered {name}",
            count.get()
        );
    }
}

/// Cuts `bytes` into chunks at `cuts` (each an index into `0..=len`) and, if
/// `at_every_crlf`, between every CR and its LF. With `keep_empty`, cuts at the same place
/// give empty chunks, as a source may send them.
pub(crate) fn cut<'a>(
    bytes: &'a [u8],
    cuts: &[proptest::sample::Index],
    at_every_crlf: bool,
    keep_empty: bool,
) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
    if at_every_crlf {
        at.extend(
            bytes
                .windows(2)
                .enumerate()
                .filter_map(|(i, pair)| (pair == b"\r\n").then_some(i + 1)),
        );
    }
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    if !keep_empty {
        at.dedup();
    }
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}
