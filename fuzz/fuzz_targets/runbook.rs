//! The runbook parser (`runbook::Runbook::parse`): any markdown gives a runbook (it never fails);
//! every procedure starts at a line of the text, has a key that finds it, and parsing is
//! deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwarden::runbook::Runbook;

fuzz_target!(|data: &[u8]| {
    let Ok(markdown) = std::str::from_utf8(data) else {
        return;
    };
    let runbook = Runbook::parse(markdown);
    assert_eq!(runbook, Runbook::parse(markdown), "parsing twice");
    let last_line = markdown.lines().count().max(1) + 1;
    for p in &runbook.procedures {
        assert!(
            (1..=last_line).contains(&p.line),
            "procedure `{}` at line {} of {}",
            p.key,
            p.line,
            last_line - 1
        );
        let found = runbook.find(&p.key);
        assert!(
            found.is_some(),
            "procedure key `{}` does not find a procedure",
            p.key
        );
    }
});
