//! Questions over the store: loggrep.
