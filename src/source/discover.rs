//! Paths and globs → the files to read, oldest first.
//!
//! A source's path may be a plain path or a glob (`/var/log/postgresql/postgresql-*.log`). Files are
//! ordered by modification time, then name, so rotated generations (`app.log.2.gz`, `app.log.1`,
//! `app.log`) come oldest first. This module only lists; it must not open or read files.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// True when the path has glob metacharacters.
pub fn is_glob(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?', '['])
}

/// The files a path or glob names now, oldest first. A plain path that does not exist gives an
/// empty list (it may appear later); other I/O errors are returned.
pub fn expand(path: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found: Vec<(SystemTime, PathBuf)> = Vec::new();
    if is_glob(path) {
        let pattern = path.to_string_lossy();
        let paths = glob::glob(&pattern).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("glob `{pattern}`: {e}"),
            )
        })?;
        for entry in paths {
            let p = entry.map_err(io::Error::from)?;
            match std::fs::metadata(&p) {
                Ok(meta) if meta.is_file() => {
                    found.push((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), p));
                }
                Ok(_) => {}
                // Rotated away between listing and stat: not there any more.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    } else {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => found.push((
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                path.to_path_buf(),
            )),
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is not a regular file", path.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_list_files_oldest_first_and_missing_paths_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("pg-1.log");
        let new = dir.path().join("pg-2.log");
        std::fs::write(&new, "b\n").unwrap();
        std::fs::write(&old, "a\n").unwrap();
        let t0 = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(t0)
            .unwrap();
        let got = expand(&dir.path().join("pg-*.log")).unwrap();
        assert_eq!(got, vec![old, new]);
        assert!(expand(&dir.path().join("absent.log")).unwrap().is_empty());
        assert!(expand(dir.path()).is_err());
    }
}
