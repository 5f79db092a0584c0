//! The HTTP ingest body (`POST /api/v1/ingest?source=NAME&format=FMT`): the input's first line is
//! `NAME FORMAT` (the two query parameters; the format as the handler reads it), the rest the body.
//! The body goes through the handler's [`Push`] into a pipeline channel and through a [`Parser`]
//! as the pipeline reads a pushed stream (its chunks, then `Idle`, which flushes). Checked: a bad
//! name is refused and nothing is sent; otherwise the counts answered are the body's (a missing
//! last newline added), the chunks are the body in order at contiguous offsets from where the
//! stream stood, and the events of each batch tile it, all of them out by its `Idle` (but for
//! blank lines while the format is still to be sniffed: held until a line to sniff, or the end).
#![no_main]

use std::sync::mpsc::sync_channel;

use libfuzzer_sys::fuzz_target;
use logwarden::parse::Format;
use logwarden::source::Input;
use logwarden::source::push::{Push, PushError};
use logwarden_fuzz::{NOW, assert_accounts_for, physical_lines};

fuzz_target!(|data: &[u8]| {
    let (first, body) = match data.iter().position(|b| *b == b'\n') {
        Some(nl) => (&data[..nl], &data[nl + 1..]),
        None => (data, &data[data.len()..]),
    };
    let first = String::from_utf8_lossy(first);
    let (name, format) = first.split_once(' ').unwrap_or((&first, "auto"));
    let Ok(format) = format.parse::<Format>() else {
        return;
    };
    let push = Push::new();
    let (tx, rx) = sync_channel(1 << 16);
    push.connect(tx);
    let mut expected = body.to_vec();
    if expected.last().is_some_and(|b| *b != b'\n') {
        expected.push(b'\n');
    }
    let mut parser = None;
    let mut offset = 0u64;
    let mut all = Vec::new();
    let mut held = false;
    // The same body twice: the second batch continues the stream where the first ended.
    for batch in 0..2 {
        let accepted = match push.push(name, format.clone(), body) {
            Err(PushError::BadName(_)) => {
                assert!(rx.try_recv().is_err(), "a refused push sent something");
                return;
            }
            Err(e) => panic!("push: {e}"),
            Ok(a) => a,
        };
        assert_eq!(accepted.bytes, expected.len() as u64, "bytes answered");
        assert_eq!(accepted.lines, physical_lines(&expected), "lines answered");
        let mut got = Vec::new();
        let mut events = Vec::new();
        let mut idle = false;
        let start = offset;
        for input in rx.try_iter() {
            assert!(!idle, "batch {batch}: input after Idle");
            match input {
                Input::Pushed { spec, .. } => {
                    assert_eq!(batch, 0, "the stream opened twice");
                    assert_eq!(spec.service, name);
                    assert_eq!(spec.format, format);
                    parser = Some(
                        logwarden::parse::Parser::new(name, format.clone(), 1)
                            .expect("a named format builds")
                            .with_reference_time(NOW),
                    );
                }
                Input::Chunk(chunk) => {
                    assert_eq!(chunk.offset, offset, "batch {batch}: chunks not contiguous");
                    offset += chunk.bytes.len() as u64;
                    got.extend_from_slice(&chunk.bytes);
                    let p = parser.as_mut().expect("a chunk before the stream opened");
                    events.extend(p.parse(&chunk).events);
                }
                Input::Idle { .. } => {
                    idle = true;
                    if let Some(p) = parser.as_mut() {
                        events.extend(p.flush().events);
                    }
                }
                other => panic!("a push sent {other:?}"),
            }
        }
        assert!(idle || expected.is_empty(), "batch {batch}: no Idle");
        assert_eq!(got, expected, "batch {batch}: the chunks are not the body");
        // Everything of this batch is out by its Idle: its events end where it ends. Except while
        // the format is still to be sniffed and the stream holds blank lines only: the parser
        // keeps them until a line to sniff comes (or the end), and nothing is lost (counted below).
        let sniffing = matches!(format, Format::Auto | Format::Postgres { prefix: None });
        if sniffing && expected.iter().all(u8::is_ascii_whitespace) {
            held = true;
            all.extend(events);
            continue;
        }
        let end = events.last().map_or(start, |e| e.end_offset());
        assert!(
            events.is_empty() || events[0].id.offset == start,
            "batch {batch}: first event"
        );
        assert_eq!(end, offset, "batch {batch}: events held past Idle");
        all.extend(events);
    }
    // Both batches as one stream: every byte in exactly one event.
    if let Some(p) = parser.as_mut() {
        let rest = p.finish().events;
        assert!(held || rest.is_empty(), "events held past the last Idle");
        all.extend(rest);
        let stream = [expected.as_slice(), expected.as_slice()].concat();
        assert_accounts_for(&stream, &all, p.stats(), p.checkpoint());
    }
});
