//! PostgreSQL stderr under a `log_line_prefix`: the input's first line is the prefix, the rest the
//! log. A prefix the reader cannot compile is an error (an answer); any other gets the checks of
//! `logwarden_fuzz::check_format` (byte accounting, determinism).
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwarden::parse::{Format, ParseError, Parser};

fuzz_target!(|data: &[u8]| {
    let (first, log) = match data.iter().position(|b| *b == b'\n') {
        Some(nl) => (&data[..nl], &data[nl + 1..]),
        None => (data, &data[data.len()..]),
    };
    let Ok(prefix) = std::str::from_utf8(first) else {
        return;
    };
    let format = Format::Postgres {
        prefix: Some(prefix.to_string()),
    };
    match Parser::new("fuzz", format.clone(), 7) {
        Err(ParseError::PgPrefix {
            prefix: named,
            reason,
        }) => {
            assert_eq!(named, prefix, "the error names another prefix");
            assert!(!reason.is_empty(), "an invalid prefix without a reason");
        }
        Ok(_) => logwarden_fuzz::check_format(&format, log),
    }
});
