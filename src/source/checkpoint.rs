//! Offsets reached per file fingerprint: the half of "exactly once" that lives beside the index.
//!
//! The pipeline stores [`Checkpoints`] as JSON in the payload of the same tantivy commit that makes
//! the events durable, so after a crash the index and the offsets agree. Sources resume from
//! [`Checkpoints::offset`]; [`Checkpoints::check`] refuses a chunk that starts before the stored
//! offset (it would duplicate events) and reports one that starts after it (bytes were lost).
//!
//! This module must not read files or the index; it is plain data with a text form.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::event::Timestamp;

/// What is known of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    /// The path the file was last read under.
    pub path: PathBuf,
    pub service: String,
    /// Every byte before this offset is in a committed event.
    pub offset: u64,
    /// The file's size when last looked at.
    pub size: u64,
    /// Time of the last committed event of the file.
    pub last_event: Option<Timestamp>,
}

/// Offsets reached, by fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoints {
    /// Keyed by fingerprint in hex (JSON keys are strings).
    pub files: BTreeMap<String, FileState>,
}

/// How a chunk relates to what is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// Starts exactly where the stored offset is (or the file is new and it starts at 0).
    Contiguous,
    /// Starts before the stored offset: `overlap` bytes would be ingested twice.
    Duplicate { overlap: u64 },
    /// Starts after the stored offset: `missing` bytes were never read.
    Gap { missing: u64 },
}

#[derive(Debug, thiserror::Error)]
#[error("checkpoint payload is not valid: {0}")]
pub struct DecodeError(#[from] serde_json::Error);

/// Fingerprint → the key used in [`Checkpoints::files`].
pub fn key(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

impl Checkpoints {
    pub fn encode(&self) -> String {
        // Serialising plain maps of strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"files\":{}}"))
    }

    pub fn decode(payload: &str) -> Result<Checkpoints, DecodeError> {
        if payload.trim().is_empty() {
            return Ok(Checkpoints::default());
        }
        Ok(serde_json::from_str(payload)?)
    }

    pub fn get(&self, fingerprint: u64) -> Option<&FileState> {
        self.files.get(&key(fingerprint))
    }

    /// The offset to resume a file from (0 for a file never seen).
    pub fn offset(&self, fingerprint: u64) -> u64 {
        self.get(fingerprint).map_or(0, |f| f.offset)
    }

    /// How a chunk starting at `start` of file `fingerprint` relates to the stored offset.
    pub fn check(&self, fingerprint: u64, start: u64) -> Continuity {
        let stored = self.offset(fingerprint);
        match start.cmp(&stored) {
            std::cmp::Ordering::Equal => Continuity::Contiguous,
            std::cmp::Ordering::Less => Continuity::Duplicate {
                overlap: stored - start,
            },
            std::cmp::Ordering::Greater => Continuity::Gap {
                missing: start - stored,
            },
        }
    }

    /// Record that every byte of `fingerprint` before `offset` is durable.
    pub fn advance(
        &mut self,
        fingerprint: u64,
        path: PathBuf,
        service: &str,
        offset: u64,
        size: u64,
        last_event: Option<Timestamp>,
    ) {
        let entry = self
            .files
            .entry(key(fingerprint))
            .or_insert_with(|| FileState {
                path: path.clone(),
                service: service.to_string(),
                offset: 0,
                size: 0,
                last_event: None,
            });
        debug_assert!(offset >= entry.offset, "checkpoints never move backwards");
        entry.path = path;
        entry.offset = entry.offset.max(offset);
        entry.size = entry.size.max(size);
        if last_event.is_some() {
            entry.last_event = last_event.max(entry.last_event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_through_the_commit_payload() {
        let mut cp = Checkpoints::default();
        cp.advance(
            0xabc,
            PathBuf::from("/var/log/app.log"),
            "app",
            4096,
            5000,
            Some(Timestamp(7)),
        );
        let back = Checkpoints::decode(&cp.encode()).unwrap();
        assert_eq!(back, cp);
        assert_eq!(back.offset(0xabc), 4096);
        assert_eq!(back.offset(0xdef), 0);
        assert!(Checkpoints::decode("not json").is_err());
        assert_eq!(Checkpoints::decode("").unwrap(), Checkpoints::default());
    }

    #[test]
    fn chunks_before_the_offset_are_duplicates_and_after_it_gaps() {
        let mut cp = Checkpoints::default();
        cp.advance(1, PathBuf::from("a"), "app", 100, 100, None);
        assert_eq!(cp.check(1, 100), Continuity::Contiguous);
        assert_eq!(cp.check(1, 40), Continuity::Duplicate { overlap: 60 });
        assert_eq!(cp.check(1, 150), Continuity::Gap { missing: 50 });
        assert_eq!(cp.check(2, 0), Continuity::Contiguous);
    }
}
