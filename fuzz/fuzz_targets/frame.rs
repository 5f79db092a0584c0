//! Line framing alone (`parse::frame::Framer`), under a line cap of 4 to 67 bytes drawn from the
//! input so that long lines are split: the lines tile the input, their `lines` add up to its
//! physical lines, a line's bytes are its source bytes without the terminator, pieces respect the
//! cap, and two reads cut anywhere give the same lines as one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logwarden::parse::frame::Framer;
use logwarden_fuzz::{Plan, hash, physical_lines};

#[derive(Debug, PartialEq)]
struct Owned {
    offset: u64,
    bytes: Vec<u8>,
    len: u32,
    lines: u32,
    split: bool,
    partial: bool,
}

fn frame(data: &[u8], max_line: usize, cuts: &[usize]) -> Vec<Owned> {
    let mut framer = Framer::new(max_line);
    let mut out = Vec::new();
    let mut sink = |l: logwarden::parse::frame::Line<'_>| {
        out.push(Owned {
            offset: l.offset,
            bytes: l.bytes.to_vec(),
            len: l.len,
            lines: l.lines,
            split: l.split,
            partial: l.partial,
        })
    };
    let mut start = 0;
    for end in cuts.iter().copied().chain([data.len()]) {
        framer.feed(start as u64, &data[start..end], &mut sink);
        start = end;
    }
    framer.finish(&mut sink);
    out
}

fuzz_target!(|data: &[u8]| {
    let plan = Plan::of(data);
    let max_line = 4 + (hash(data) >> 48) as usize % 64;
    let whole = frame(data, max_line, &[]);
    let mut next = 0u64;
    let mut lines = 0u64;
    for (i, l) in whole.iter().enumerate() {
        assert_eq!(
            l.offset, next,
            "line {i} does not start where the one before ended"
        );
        assert!(l.len > 0, "line {i} takes no byte");
        assert!(l.bytes.len() <= max_line, "line {i} is longer than the cap");
        let start = l.offset as usize;
        let end = start + l.len as usize;
        assert!(end <= data.len(), "line {i} ends past the input");
        let source = &data[start..end];
        assert!(
            source.starts_with(&l.bytes),
            "line {i}: bytes are not its source bytes"
        );
        let terminator = &source[l.bytes.len()..];
        assert!(
            matches!(terminator, b"" | b"\n" | b"\r\n" | b"\r"),
            "line {i}: {terminator:?} after the content"
        );
        assert_eq!(
            l.partial,
            end == data.len() && !terminator.ends_with(b"\n"),
            "line {i}: partial flag"
        );
        lines += u64::from(l.lines);
        next = end as u64;
    }
    assert_eq!(
        next,
        data.len() as u64,
        "the lines stop before the end of the input"
    );
    assert_eq!(
        lines,
        physical_lines(data),
        "lines against the input's lines"
    );
    let cut = frame(data, max_line, &[plan.cut]);
    assert_eq!(whole, cut, "two reads cut at {} give other lines", plan.cut);
});
