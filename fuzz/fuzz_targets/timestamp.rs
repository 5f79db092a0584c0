//! The timestamp layouts (`parse::timestamp`): a time read at the start of a text reads the same
//! from the bytes it took alone, on a character boundary; an ISO time reads back from its own
//! RFC 3339 rendering; epoch numbers of any value give a time at or after the epoch, or none.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwarden::event::Timestamp;
use logwarden::parse::timestamp::{from_epoch, from_json, parse_iso, parse_leading};
use logwarden_fuzz::NOW;

fuzz_target!(|data: &[u8]| {
    if let Some(bytes) = data.get(..8) {
        let n = f64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        if let Some(ts) = from_epoch(n) {
            assert!(ts.0 >= 0, "epoch {n} gives {ts:?}, before the epoch");
            let _ = ts.rfc3339();
        }
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((ts, n)) = parse_leading(s, NOW) {
        assert!(n > 0 && n <= s.len(), "read {n} bytes of {}", s.len());
        assert!(
            s.is_char_boundary(n),
            "read {n} bytes: not a character boundary"
        );
        assert_eq!(
            parse_leading(&s[..n], NOW),
            Some((ts, n)),
            "the {n} bytes read do not read the same alone"
        );
        let _ = ts.rfc3339();
    }
    if let Some((ts, _)) = parse_iso(s) {
        // Rendered at millisecond precision; years 0 to 9999 have a four-digit ISO form.
        let millis = Timestamp(ts.0 - ts.0.rem_euclid(1000));
        let rendered = ts.rfc3339();
        if ts.to_jiff().as_microsecond() == ts.0 && rendered.as_bytes()[0].is_ascii_digit() {
            assert_eq!(
                parse_iso(&rendered),
                Some((millis, rendered.len())),
                "{rendered} does not read back"
            );
        }
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(s) {
        let _ = from_json(&value);
    }
});
