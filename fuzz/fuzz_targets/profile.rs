//! The profile loader (`config::parse_profile`): a profile either loads, or gives an error naming
//! the file and a line of it. Loading is deterministic.
//!
//! A profile may name files to read (a webhook's `token_file` and `ca_file`, ClickHouse's
//! `password_file`); a fuzzed path could name a device that never ends, so inputs naming such a
//! key (or hiding one behind a TOML `\u` escape) are skipped: the loader's reading of those files
//! is tested in `config.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwarden::config::{ConfigError, parse_profile};

const FILE: &str = "fuzz.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains("_file") || text.contains("\\u") || text.contains("\\U") {
        return;
    }
    let base = std::path::Path::new("/nonexistent/logwarden-fuzz");
    let last_line = text.lines().count().max(1) + 1;
    match parse_profile(FILE, text, base) {
        Ok(profile) => {
            assert!(
                !profile.sources.is_empty(),
                "a profile without sources loads"
            );
            let again = parse_profile(FILE, text, base).expect("loads the second time");
            assert_eq!(profile.sources, again.sources, "loading twice");
        }
        Err(e) => {
            let message = e.to_string();
            match &e {
                ConfigError::Invalid { location, .. } => {
                    assert_eq!(location.file, FILE, "{message}: another file");
                    assert!(
                        (1..=last_line).contains(&location.line),
                        "{message}: line {} outside a file of {} lines",
                        location.line,
                        last_line - 1
                    );
                    if let Some(field) = &location.field {
                        assert!(!field.is_empty(), "{message}: an empty field name");
                    }
                }
                ConfigError::Io { .. } => panic!("parsing a text gives {message}"),
            }
            let again = parse_profile(FILE, text, base).err().map(|e| e.to_string());
            assert_eq!(again.as_deref(), Some(message.as_str()), "loading twice");
        }
    }
});
