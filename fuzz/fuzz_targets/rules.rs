//! The rule loader (`detect::rules::RuleSet::from_files`): a rule file either loads into rules,
//! each at a line of the file, that a prefilter can be built from, or gives an error naming the
//! file, a line of it and (for a field error) the field. Loading is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwarden::detect::prefilter::Prefilter;
use logwarden::detect::rules::{RuleError, RuleSet};

const FILE: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A location may name the line just past the last (an error at the end of the text).
    let last_line = text.lines().count().max(1) + 1;
    let in_file = |file: &str, line: usize, what: &str| {
        assert_eq!(file, FILE, "{what}: another file");
        assert!(
            (1..=last_line).contains(&line),
            "{what}: line {line} outside a file of {} lines",
            last_line - 1
        );
    };
    let files = [(FILE.to_string(), text.to_string())];
    match RuleSet::from_files(&files) {
        Ok(set) => {
            for rule in &set.rules {
                in_file(&rule.location.file, rule.location.line, &rule.id);
            }
            assert!(
                Prefilter::new(&set).is_ok(),
                "a loaded pack gives no prefilter"
            );
            let again = RuleSet::from_files(&files).expect("loads the second time");
            let ids = |s: &RuleSet| s.rules.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
            assert_eq!(ids(&set), ids(&again), "loading twice gives other rules");
        }
        Err(e) => {
            let message = e.to_string();
            match &e {
                RuleError::Syntax { file, line, .. } => in_file(file, *line, &message),
                RuleError::UnknownField {
                    file, line, field, ..
                }
                | RuleError::Field {
                    file, line, field, ..
                } => {
                    in_file(file, *line, &message);
                    assert!(!field.is_empty(), "{message}: no field named");
                }
                RuleError::DuplicateId {
                    file, line, first, ..
                } => {
                    in_file(file, *line, &message);
                    in_file(&first.file, first.line, &message);
                }
                RuleError::UnresolvedLink { file, line, .. } => in_file(file, *line, &message),
                RuleError::Io { .. } | RuleError::Prefilter(_) => {
                    panic!("loading a text gives {message}")
                }
            }
            let again = RuleSet::from_files(&files).err().map(|e| e.to_string());
            assert_eq!(again.as_deref(), Some(message.as_str()), "loading twice");
        }
    }
});
