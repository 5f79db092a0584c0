//! The README's loggrep examples (query language; time and output options) run against the
//! demo's logs and each finds something.

use std::path::Path;

use logwarden::demo::{DemoConfig, Timeline, write_all};
use logwarden::event::Timestamp;

use crate::support::{backfill_demo, repo, run, stderr, stdout};

/// The `loggrep …` lines of the README's loggrep blocks (the query language; the time and output
/// options), comments removed.
fn readme_examples() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut examples = Vec::new();
    for heading in [
        "## loggrep's query language",
        "## loggrep's time and output options",
    ] {
        let section = readme
            .split(heading)
            .nth(1)
            .unwrap_or_else(|| panic!("README has a `{heading}` section"));
        let block = section.split("```").nth(1).expect("a code block");
        examples.extend(
            block
                .lines()
                .filter(|l| l.starts_with("loggrep "))
                .map(|l| match l.find(" # ") {
                    Some(i) => l[..i].trim_end().to_string(),
                    None => l.to_string(),
                }),
        );
    }
    examples
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
