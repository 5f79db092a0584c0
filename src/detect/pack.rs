//! The default rule pack: `patterns/*.toml` and `patterns/runbook.md`, embedded at build time.
//!
//! The binary works from any directory because the pack travels inside it; a user directory
//! (`--patterns DIR`) replaces it as a whole. Embedded data is trusted only because the tests below
//! load all of it and run `rules check` against it: nothing here may panic on it.
//!
//! It must not hold rule logic: adding a rule file means adding one line to [`FILES`].

use std::path::Path;

use crate::detect::rules::{RuleError, RuleSet};

/// Every rule file of the default pack, sorted by name as `load_dir` would read them.
const FILES: [(&str, &str); 9] = [
    ("patterns/app.toml", include_str!("../../patterns/app.toml")),
    (
        "patterns/database.toml",
        include_str!("../../patterns/database.toml"),
    ),
    (
        "patterns/email.toml",
        include_str!("../../patterns/email.toml"),
    ),
    (
        "patterns/errors.toml",
        include_str!("../../patterns/errors.toml"),
    ),
    (
        "patterns/memory.toml",
        include_str!("../../patterns/memory.toml"),
    ),
    (
        "patterns/performance.toml",
        include_str!("../../patterns/performance.toml"),
    ),
    (
        "patterns/queue.toml",
        include_str!("../../patterns/queue.toml"),
    ),
    (
        "patterns/security.toml",
        include_str!("../../patterns/security.toml"),
    ),
    (
        "patterns/storage.toml",
        include_str!("../../patterns/storage.toml"),
    ),
];

const RUNBOOK: &str = include_str!("../../patterns/runbook.md");

/// The embedded pack, compiled.
pub fn default_rules() -> Result<RuleSet, RuleError> {
    let files: Vec<(String, String)> = FILES
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect();
    RuleSet::from_files(&files)
}

/// The embedded runbook's markdown.
pub fn default_runbook() -> &'static str {
    RUNBOOK
}

/// The rules of a user directory when given, else the embedded pack.
pub fn rules_from(dir: Option<&Path>) -> Result<RuleSet, RuleError> {
    match dir {
        Some(dir) => RuleSet::load_dir(dir),
        None => default_rules(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Class;

    #[test]
    fn the_embedded_pack_lists_every_file_of_patterns() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("patterns");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .map(|n| format!("patterns/{n}"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded);
        let from_dir = rules_from(Some(&dir)).unwrap();
        assert_eq!(from_dir.len(), default_rules().unwrap().len());
    }

    #[test]
    fn the_default_pack_covers_every_incident_class() {
        let rules = rules_from(None).unwrap();
        for class in Class::ALL {
            assert!(
                rules.rules.iter().any(|r| r.class == class),
                "no rule raises {class}"
            );
        }
    }
}
