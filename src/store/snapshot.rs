//! Numbered state snapshots beside the index: `<data dir>/state/<seq>.json`, one per commit.
//!
//! The incident engine's state belongs to the index commit it was taken with (exactly-once rests
//! on the two agreeing), but it is hundreds of kilobytes on a busy stack, and tantivy re-parses the
//! commit payload in `meta.json` each time anyone opens the index — every `loggrep` run paid for
//! it. So a commit writes the state here first (fsynced, file and directory), then commits only
//! its sequence number in the payload; once that commit is durable, older snapshots are pruned.
//! A crash between the two leaves the previous commit naming the previous snapshot, which still
//! exists: a snapshot is removed only after a later commit names another.
//!
//! Owns: the directory, file names and durability of snapshots. Must not: know what a snapshot
//! holds (any serde type) or decide when to commit (the pipeline does).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The directory of snapshots in a data dir.
pub const DIR: &str = "state";

/// Why a snapshot could not be written or read.
#[derive(thiserror::Error, Debug)]
pub enum SnapshotError {
    #[error("state snapshot {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "state snapshot {path}, named by the index's last commit, is missing: the data dir is incomplete (restore it whole, or start over with an empty one)"
    )]
    Missing { path: PathBuf },
    #[error("state snapshot {path}: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The snapshots of one data dir.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    pub fn new(data_dir: &Path) -> Snapshots {
        Snapshots {
            dir: data_dir.join(DIR),
        }
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:012}.json"))
    }

    /// Write snapshot `seq` durably (the file and its directory entry are synced before this
    /// returns, so a commit naming it may follow).
    pub fn write<T: Serialize>(&self, seq: u64, value: &T) -> Result<(), SnapshotError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SnapshotError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.path(seq);
        let tmp = path.with_extension("tmp");
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let mut out = BufWriter::new(file);
        serde_json::to_writer(&mut out, value).map_err(|source| SnapshotError::Format {
            path: tmp.clone(),
            source,
        })?;
        out.flush().map_err(io(&tmp))?;
        out.get_ref().sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        Ok(())
    }

    /// Read snapshot `seq`.
    pub fn read<T: DeserializeOwned>(&self, seq: u64) -> Result<T, SnapshotError> {
        let path = self.path(seq);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SnapshotError::Missing { path });
            }
            Err(source) => return Err(SnapshotError::Io { path, source }),
        };
        serde_json::from_reader(BufReader::new(file))
            .map_err(|source| SnapshotError::Format { path, source })
    }

    /// Remove every snapshot but `keep` (and leftover temporary files). Best effort: a snapshot
    /// that cannot be removed now is removed by a later prune.
    pub fn prune(&self, keep: u64) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let kept = self.path(keep);
        for entry in entries.flatten() {
            let path = entry.path();
            if path != kept
                && let Err(error) = std::fs::remove_file(&path)
            {
                tracing::debug!(path = %path.display(), %error, "old state snapshot not removed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_back_and_pruning_keeps_only_the_named_one() {
        let dir = tempfile::TempDir::new().unwrap();
        let snaps = Snapshots::new(dir.path());
        snaps.write(1, &vec![1, 2, 3]).unwrap();
        snaps.write(2, &vec![4, 5]).unwrap();
        assert_eq!(snaps.read::<Vec<u32>>(1).unwrap(), vec![1, 2, 3]);
        snaps.prune(2);
        assert_eq!(snaps.read::<Vec<u32>>(2).unwrap(), vec![4, 5]);
        let err = snaps.read::<Vec<u32>>(1).unwrap_err();
        assert!(matches!(err, SnapshotError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("000000000001.json"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path().join(DIR)).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn a_damaged_snapshot_is_a_located_error() {
        let dir = tempfile::TempDir::new().unwrap();
        let snaps = Snapshots::new(dir.path());
        snaps.write(7, &"state").unwrap();
        std::fs::write(dir.path().join(DIR).join("000000000007.json"), b"{tru").unwrap();
        let err = snaps.read::<String>(7).unwrap_err();
        assert!(err.to_string().contains("000000000007.json"), "{err}");
    }
}
