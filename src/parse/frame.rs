//! Line framing: chunk bytes → physical lines, with memchr, without copying complete lines.
//!
//! A [`Framer`] is fed the chunks of one file in order and hands each line to a sink as a [`Line`]
//! borrowing the chunk (or, for the one line that straddles two chunks, the framer's carry buffer).
//! It owns three edge cases so the formats never see them: the partial last line (held until its
//! newline arrives, or emitted flagged partial at the end of input), CRLF terminators (stripped from
//! the content, counted in the length), and over-long lines (cut into pieces of at most `max_line`
//! bytes at a UTF-8 character boundary as soon as the cap is reached, so a 50 MB line is never
//! buffered whole). The framer must not decode or interpret the bytes: that is the parser's job.
//!
//! Counting: every physical line has `lines == 1` on its first (or only) piece; the later pieces of a
//! split line have `lines == 0`, so summing `lines` over everything emitted gives the number of
//! physical lines read.

use memchr::{memchr, memchr_iter};

/// Default cap on a line's length; longer lines are split into several pieces.
pub const MAX_LINE: usize = 1 << 20;

/// One physical line, or one piece of an over-long line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// File offset of the first byte.
    pub offset: u64,
    /// The content, without its terminator (`\n` or `\r\n`).
    pub bytes: &'a [u8],
    /// Bytes taken in the source, terminator included.
    pub len: u32,
    /// 1 for a line (or the first piece of a split line), 0 for the later pieces of a split line.
    pub lines: u32,
    /// A piece of a line longer than the cap.
    pub split: bool,
    /// The input ended before this line's terminator.
    pub partial: bool,
}

/// Frames the chunks of one file; see the module doc.
#[derive(Debug)]
pub struct Framer {
    max_line: usize,
    /// The start of a line whose terminator has not arrived yet.
    carry: Vec<u8>,
    carry_offset: u64,
    /// Pieces of the carried line were already emitted (it was split).
    in_split: bool,
}

impl Framer {
    /// `max_line` is clamped to at least 4 bytes (a whole UTF-8 character must fit in a piece).
    pub fn new(max_line: usize) -> Self {
        Framer {
            max_line: max_line.max(4),
            carry: Vec::new(),
            carry_offset: 0,
            in_split: false,
        }
    }

    /// Bytes held back (the partial last line).
    pub fn held(&self) -> usize {
        self.carry.len()
    }

    /// Offset of the first held byte (meaningful when `held() > 0`).
    pub fn held_offset(&self) -> u64 {
        self.carry_offset
    }

    /// Frame `data`, whose first byte is at file offset `offset` (right after the previous data).
    pub fn feed(&mut self, offset: u64, data: &[u8], sink: &mut impl FnMut(Line<'_>)) {
        let mut start = 0;
        if !self.carry.is_empty() {
            match memchr(b'\n', data) {
                None => {
                    self.carry.extend_from_slice(data);
                    self.cut_carry(sink);
                    return;
                }
                Some(i) => {
                    self.carry.extend_from_slice(&data[..=i]);
                    let carried = std::mem::take(&mut self.carry);
                    emit_line(
                        self.max_line,
                        self.carry_offset,
                        &carried,
                        self.in_split,
                        false,
                        sink,
                    );
                    self.carry = carried;
                    self.carry.clear();
                    self.in_split = false;
                    start = i + 1;
                }
            }
        }
        let rest = &data[start..];
        let mut line_start = 0;
        for nl in memchr_iter(b'\n', rest) {
            let line_offset = offset + (start + line_start) as u64;
            emit_line(
                self.max_line,
                line_offset,
                &rest[line_start..=nl],
                false,
                false,
                sink,
            );
            line_start = nl + 1;
        }
        if line_start < rest.len() {
            self.carry_offset = offset + (start + line_start) as u64;
            self.carry.extend_from_slice(&rest[line_start..]);
            self.cut_carry(sink);
        }
    }

    /// End of input: emit the held partial line (flagged partial), if any.
    pub fn finish(&mut self, sink: &mut impl FnMut(Line<'_>)) {
        if self.carry.is_empty() {
            return;
        }
        let carried = std::mem::take(&mut self.carry);
        emit_line(
            self.max_line,
            self.carry_offset,
            &carried,
            self.in_split,
            true,
            sink,
        );
        self.carry_offset += carried.len() as u64;
        self.carry = carried;
        self.carry.clear();
        self.in_split = false;
    }

    /// Emit pieces of the carried line while it is certainly longer than the cap. The carry may end
    /// in the `\r` of a CRLF, hence `+ 2`: pieces are cut exactly where [`emit_line`] would cut them
    /// had the whole line arrived at once.
    fn cut_carry(&mut self, sink: &mut impl FnMut(Line<'_>)) {
        let mut consumed = 0;
        while self.carry.len() - consumed >= self.max_line + 2 {
            let piece = &self.carry[consumed..];
            let cut = char_boundary(piece, self.max_line);
            sink(Line {
                offset: self.carry_offset,
                bytes: &piece[..cut],
                len: len_u32(cut),
                lines: u32::from(!self.in_split),
                split: true,
                partial: false,
            });
            self.in_split = true;
            self.carry_offset += cut as u64;
            consumed += cut;
        }
        if consumed > 0 {
            self.carry.drain(..consumed);
        }
    }
}

/// Emit one line (terminator included in `raw` unless `partial`), cut into pieces if too long.
fn emit_line(
    max_line: usize,
    offset: u64,
    raw: &[u8],
    continued: bool,
    partial: bool,
    sink: &mut impl FnMut(Line<'_>),
) {
    let mut content = raw;
    if content.last() == Some(&b'\n') {
        content = &content[..content.len() - 1];
    }
    if content.last() == Some(&b'\r') {
        content = &content[..content.len() - 1];
    }
    let terminator = raw.len() - content.len();
    let mut rest = content;
    let mut off = offset;
    let mut cont = continued;
    while rest.len() > max_line {
        let cut = char_boundary(rest, max_line);
        sink(Line {
            offset: off,
            bytes: &rest[..cut],
            len: len_u32(cut),
            lines: u32::from(!cont),
            split: true,
            partial: false,
        });
        cont = true;
        off += cut as u64;
        rest = &rest[cut..];
    }
    sink(Line {
        offset: off,
        bytes: rest,
        len: len_u32(rest.len() + terminator),
        lines: u32::from(!cont),
        split: cont,
        partial,
    });
}

/// The largest cut point `<= max` (and `> 0`) that does not fall inside a UTF-8 sequence; `max`
/// when the bytes there are not UTF-8 anyway. `buf.len() > max`.
fn char_boundary(buf: &[u8], max: usize) -> usize {
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&i| i > 0 && buf.get(i).is_some_and(|b| b & 0xC0 != 0x80))
        .unwrap_or(max)
}

/// Lengths are bounded by the line cap plus a terminator; saturate rather than wrap.
fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Owned {
        offset: u64,
        bytes: Vec<u8>,
        len: u32,
        lines: u32,
        split: bool,
        partial: bool,
    }

    fn frame(max: usize, chunks: &[&[u8]]) -> Vec<Owned> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        let mut sink = |l: Line<'_>| {
            out.push(Owned {
                offset: l.offset,
                bytes: l.bytes.to_vec(),
                len: l.len,
                lines: l.lines,
                split: l.split,
                partial: l.partial,
            })
        };
        let mut off = 0;
        for c in chunks {
            f.feed(off, c, &mut sink);
            off += c.len() as u64;
        }
        f.finish(&mut sink);
        out
    }

    #[test]
    fn lines_crlf_and_partial_last_line() {
        let out = frame(MAX_LINE, &[b"ab\r\ncd\n", b"e", b"f"]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].bytes, b"ab");
        assert_eq!(out[0].len, 4);
        assert_eq!(out[1].offset, 4);
        assert_eq!(out[1].bytes, b"cd");
        assert_eq!(out[2].offset, 7);
        assert_eq!(out[2].bytes, b"ef");
        assert!(out[2].partial);
        assert_eq!(out[2].len, 2);
    }

    #[test]
    fn long_lines_are_split_without_waiting_for_their_end() {
        let mut f = Framer::new(10);
        let mut seen = Vec::new();
        f.feed(0, &[b'x'; 25], &mut |l: Line<'_>| {
            seen.push((l.offset, l.bytes.len(), l.lines, l.split))
        });
        // Two full pieces are out before any newline; the rest is held.
        assert_eq!(seen, vec![(0, 10, 1, true), (10, 10, 0, true)]);
        assert!(f.held() <= 11);
        f.feed(25, b"yy\nz\n", &mut |l: Line<'_>| {
            seen.push((l.offset, l.bytes.len(), l.lines, l.split))
        });
        assert_eq!(seen[2], (20, 7, 0, true));
        assert_eq!(seen[3], (28, 1, 1, false));
        let total: u32 = seen.iter().map(|s| s.2).sum();
        assert_eq!(total, 2);
    }

    #[test]
    fn splitting_keeps_utf8_characters_whole() {
        let line = "ééééééé\n".as_bytes(); // 14 bytes of content
        let out = frame(5, &[line]);
        for piece in &out {
            assert!(std::str::from_utf8(&piece.bytes).is_ok());
        }
        let joined: Vec<u8> = out.iter().flat_map(|p| p.bytes.clone()).collect();
        assert_eq!(joined, "ééééééé".as_bytes());
    }

    #[test]
    fn chunk_boundaries_do_not_change_the_framing() {
        let input = b"one\r\ntwo long line here\n\nthree\r\nfour is longer than ten\r\nx";
        let whole = frame(10, &[input]);
        for cut1 in 0..input.len() {
            for cut2 in cut1..input.len() {
                let parts = [&input[..cut1], &input[cut1..cut2], &input[cut2..]];
                assert_eq!(frame(10, &parts), whole, "cuts at {cut1}, {cut2}");
            }
        }
    }
}
