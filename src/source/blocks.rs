//! Large reads cut at line ends, for the scan: a file read once from start to end in blocks of
//! about a fixed size, each ending with a newline (except the last, and a block holding part of a
//! line longer than the block size, which is cut there), so each block can be searched alone.
//!
//! It must not look inside lines: it only finds the last newline of each read.

use std::io::{self, Read};

/// Reads `reader` in blocks of about `size` bytes cut after a newline.
pub struct Blocks<R> {
    reader: R,
    size: usize,
    /// Bytes read past the last newline of the previous block.
    carry: Vec<u8>,
    offset: u64,
    done: bool,
    /// Buffers of blocks already used, handed back with [`Blocks::recycle`].
    spare: Vec<Vec<u8>>,
}

impl<R: Read> Blocks<R> {
    pub fn new(reader: R, size: usize) -> Blocks<R> {
        Blocks {
            reader,
            size: size.max(1),
            carry: Vec::new(),
            offset: 0,
            done: false,
            spare: Vec::new(),
        }
    }

    /// The next block and its offset; `None` at the end.
    pub fn next_block(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        if self.done {
            return Ok(None);
        }
        let mut block = self.spare.pop().unwrap_or_default();
        block.clear();
        block.append(&mut self.carry);
        block.reserve(self.size.saturating_sub(block.len()));
        while block.len() < self.size {
            let start = block.len();
            block.resize(self.size, 0);
            match self.reader.read(&mut block[start..]) {
                Ok(0) => {
                    block.truncate(start);
                    self.done = true;
                    break;
                }
                Ok(n) => block.truncate(start + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => block.truncate(start),
                Err(e) => return Err(e),
            }
        }
        if !self.done
            && let Some(nl) = memchr::memrchr(b'\n', &block)
        {
            self.carry.extend_from_slice(&block[nl + 1..]);
            block.truncate(nl + 1);
        }
        if block.is_empty() {
            return Ok(None);
        }
        let offset = self.offset;
        self.offset += block.len() as u64;
        Ok(Some((offset, block)))
    }

    /// Hand back a block's buffer once done with it: the next blocks reuse its memory.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.spare.len() < 64 && buffer.capacity() >= self.size {
            buffer.clear();
            self.spare.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], size: usize) -> Vec<(u64, Vec<u8>)> {
        let mut blocks = Blocks::new(input, size);
        let mut out = Vec::new();
        while let Some(b) = blocks.next_block().unwrap() {
            out.push(b.clone());
            // Reused buffers must not leak old bytes into later blocks.
            blocks.recycle(b.1);
        }
        out
    }

    #[test]
    fn blocks_end_at_newlines_and_cover_the_input_once() {
        let input = b"one\ntwo\nthree\nfour five six\nseven";
        for size in 1..input.len() + 3 {
            let blocks = all(input, size);
            let joined: Vec<u8> = blocks.iter().flat_map(|(_, b)| b.clone()).collect();
            assert_eq!(joined, input, "size {size}");
            let mut at = 0;
            for (i, (offset, block)) in blocks.iter().enumerate() {
                assert_eq!(*offset, at);
                at += block.len() as u64;
                let last = i + 1 == blocks.len();
                // Every block but the last ends a line, unless one line is longer than the block.
                if !last && !block.ends_with(b"\n") {
                    assert!(!block.contains(&b'\n'), "size {size}: {block:?}");
                }
            }
        }
    }
}
