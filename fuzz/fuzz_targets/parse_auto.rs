//! auto (the format and a PostgreSQL prefix sniffed from the first lines, then read): byte accounting and determinism, see `logwarden_fuzz::check_format`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwarden::parse::Format;

fuzz_target!(|data: &[u8]| {
    logwarden_fuzz::check_format(&Format::Auto, data);
});
