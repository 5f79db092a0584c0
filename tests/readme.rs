//! The README's loggrep examples run against the demo's logs and each finds something.

use std::path::Path;

use logwarden::demo::{DemoConfig, Timeline, write_all};
use logwarden::event::Timestamp;

use crate::support::{backfill_demo, repo, run, stderr, stdout};

/// The `loggrep …` lines of the README's query-language block, comments removed.
fn readme_examples() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("## loggrep's query language")
        .nth(1)
        .expect("README has a query language section");
    let block = section.split("```").nth(1).expect("a code block");
    block
        .lines()
        .filter(|l| l.starts_with("loggrep "))
        .map(|l| match l.find(" # ") {
            Some(i) => l[..i].trim_end().to_string(),
            None => l.to_string(),
        })
        .collect()
}

#[test]
fn every_readme_query_example_finds_something() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // A timeline that ends now, so that `--since 2h` examples see it.
    let span = Timeline::generate(&DemoConfig {
        seed: 3,
        start: Timestamp(0),
    });
    let start = Timestamp(Timestamp::now().0 - (span.end.0 - span.start.0));
    write_all(&logs, &Timeline::generate(&DemoConfig { seed: 3, start })).unwrap();
    backfill_demo(dir.path(), &logs);

    let examples = readme_examples();
    assert!(examples.len() >= 5, "{examples:?}");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_loggrep")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for example in examples {
        let out = run(std::process::Command::new("sh")
            .arg("-c")
            .arg(&example)
            .env("PATH", &path)
            .env("LOGWARDEN_DATA", dir.path()));
        assert_eq!(
            out.status.code(),
            Some(0),
            "`{example}` found nothing or failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}
