//! Silences on disk: `silences.json` in the data dir, every silence ever made (ended ones too: the
//! file is their audit trail: who, when, why, and who expired one early).
//!
//! Owns the file: reading it, and changing it under an exclusive lock (`silences.lock`) with an
//! atomic replace, so the CLI and a running agent's API can both write it. A running pipeline
//! notices a new version by its [`Stamp`] and hands the silences to its engine; a backfill reads
//! it once, so a replay marks the incidents a live run marked. Must not: decide what a silence
//! does (`incident::silence` and the engine do), or read the clock (callers pass the time).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::Timestamp;
use crate::incident::silence::{Silence, SilenceId};

/// The file in a data dir.
pub const FILE: &str = "silences.json";
const LOCK: &str = "silences.lock";
const VERSION: u32 = 1;

#[derive(thiserror::Error, Debug)]
pub enum SilenceStoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a silences file logwarden can read: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} is version {version}; this logwarden reads version {VERSION}")]
    Version { path: PathBuf, version: u32 },
    #[error("no silence {0} (see `logwarden silence list --all`)")]
    Unknown(String),
    #[error("`{prefix}` names more than one silence: {ids}")]
    Ambiguous { prefix: String, ids: String },
    #[error("silence {id} already ended at {ends}")]
    Ended { id: SilenceId, ends: String },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Contents {
    version: u32,
    silences: Vec<Silence>,
}

/// Identifies one version of the file (a replace makes a new inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    inode: u64,
    modified_ns: i128,
    len: u64,
}

/// The silences file of one data dir.
#[derive(Debug, Clone)]
pub struct SilenceStore {
    dir: PathBuf,
}

impl SilenceStore {
    pub fn new(data_dir: &Path) -> SilenceStore {
        SilenceStore {
            dir: data_dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SilenceStoreError + use<> {
        let path = path.to_path_buf();
        move |source| SilenceStoreError::Io { path, source }
    }

    /// The current version's stamp; `None` while there is no file.
    pub fn stamp(&self) -> Option<Stamp> {
        let meta = std::fs::metadata(self.path()).ok()?;
        Some(Stamp {
            inode: meta.ino(),
            modified_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            len: meta.len(),
        })
    }

    /// Every silence, in the order they were made; none without a file.
    pub fn load(&self) -> Result<Vec<Silence>, SilenceStoreError> {
        let path = self.path();
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io(&path)(e)),
        };
        let contents: Contents =
            serde_json::from_slice(&text).map_err(|source| SilenceStoreError::Format {
                path: path.clone(),
                source,
            })?;
        if contents.version != VERSION {
            return Err(SilenceStoreError::Version {
                path,
                version: contents.version,
            });
        }
        Ok(contents.silences)
    }

    /// Change the silences under the lock: `change` gets them all and returns what to give back.
    fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<Silence>) -> Result<T, SilenceStoreError>,
    ) -> Result<T, SilenceStoreError> {
        std::fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        let lock_path = self.dir.join(LOCK);
        let lock = File::create(&lock_path).map_err(Self::io(&lock_path))?;
        lock.lock().map_err(Self::io(&lock_path))?;
        let mut silences = self.load()?;
        let out = change(&mut silences)?;
        let path = self.path();
        let tmp = path.with_extension("tmp");
        let file = File::create(&tmp).map_err(Self::io(&tmp))?;
        let mut writer = BufWriter::new(file);
        serde_json::to_writer_pretty(
            &mut writer,
            &Contents {
                version: VERSION,
                silences: std::mem::take(&mut silences),
            },
        )
        .map_err(|source| SilenceStoreError::Format {
            path: tmp.clone(),
            source,
        })?;
        writer.write_all(b"\n").map_err(Self::io(&tmp))?;
        writer.flush().map_err(Self::io(&tmp))?;
        writer.get_ref().sync_all().map_err(Self::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(Self::io(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(Self::io(&self.dir))?;
        Ok(out)
    }

    /// Add `silence`; the same silence made twice (same id) is kept once. Returns it as stored.
    pub fn add(&self, silence: Silence) -> Result<Silence, SilenceStoreError> {
        self.update(|silences| {
            if let Some(known) = silences.iter().find(|s| s.id == silence.id) {
                return Ok(known.clone());
            }
            silences.push(silence.clone());
            Ok(silence)
        })
    }

    /// End the silence `id` (or the only one whose id starts so) at `now`: it stops holding from
    /// then. One that already ended is refused.
    pub fn expire(&self, id: &str, now: Timestamp) -> Result<Silence, SilenceStoreError> {
        self.update(|silences| {
            let found = find(silences, id)?;
            let silence = &mut silences[found];
            if silence.ends <= now {
                return Err(SilenceStoreError::Ended {
                    id: silence.id.clone(),
                    ends: silence.ends.rfc3339(),
                });
            }
            silence.ends = now.max(silence.starts);
            silence.expired = Some(now);
            Ok(silence.clone())
        })
    }
}

/// The index of the silence `id` names (whole, or a prefix naming exactly one).
fn find(silences: &[Silence], id: &str) -> Result<usize, SilenceStoreError> {
    if let Some(exact) = silences.iter().position(|s| s.id.0 == id) {
        return Ok(exact);
    }
    let matching: Vec<usize> = (0..silences.len())
        .filter(|&i| !id.is_empty() && silences[i].id.0.starts_with(id))
        .collect();
    match matching[..] {
        [one] => Ok(one),
        [] => Err(SilenceStoreError::Unknown(id.to_string())),
        _ => Err(SilenceStoreError::Ambiguous {
            prefix: id.to_string(),
            ids: matching
                .iter()
                .map(|&i| silences[i].id.0.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::silence::parse_matchers;

    fn silence(matchers: &str, reason: &str) -> Silence {
        Silence::new(
            parse_matchers(matchers).unwrap(),
            Timestamp::from_secs(1_000),
            Timestamp::from_secs(2_800),
            reason.into(),
            "ops".into(),
            Timestamp::from_secs(1_000),
        )
    }

    #[test]
    fn silences_are_added_once_expired_by_prefix_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = SilenceStore::new(dir.path());
        assert!(store.load().unwrap().is_empty());
        assert_eq!(store.stamp(), None);
        let vacuum = store
            .add(silence("class=db-down", "monthly VACUUM FULL"))
            .unwrap();
        let first = store.stamp().unwrap();
        store
            .add(silence("class=db-down", "monthly VACUUM FULL"))
            .unwrap();
        store
            .add(silence("service=redis", "redis restart"))
            .unwrap();
        assert_ne!(store.stamp(), Some(first));
        assert_eq!(store.load().unwrap().len(), 2);

        let ended = store.expire("sil-", Timestamp::from_secs(1_500));
        assert!(
            matches!(ended, Err(SilenceStoreError::Ambiguous { .. })),
            "{ended:?}"
        );
        let ended = store
            .expire(&vacuum.id.0[..12], Timestamp::from_secs(1_500))
            .unwrap();
        assert_eq!(ended.ends, Timestamp::from_secs(1_500));
        assert_eq!(ended.expired, Some(Timestamp::from_secs(1_500)));
        let again = store.expire(&vacuum.id.0, Timestamp::from_secs(1_600));
        assert!(
            matches!(again, Err(SilenceStoreError::Ended { .. })),
            "{again:?}"
        );
        assert!(matches!(
            store.expire("sil-nope", Timestamp::from_secs(1_600)),
            Err(SilenceStoreError::Unknown(_))
        ));
        let back = store.load().unwrap();
        assert_eq!(back[0], ended);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SilenceStore::new(dir.path());
        std::fs::write(store.path(), "{not json").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("silences.json"), "{e}");
        std::fs::write(store.path(), r#"{"version":9,"silences":[]}"#).unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("version 9"), "{e}");
    }
}
