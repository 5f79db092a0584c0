//! logwarden turns the logs of a running stack into classified incidents that point at the runbook
//! procedure which fixes them, and keeps every event searchable for the post-mortem.
//!
//! ```text
//! files | stdin → source (Chunk) → parse (Events) → detect (Match) → incident (Change)
//!       → store (tantivy + offsets in the same commit, incident log)
//!       → query (loggrep, forensic) · serve (API, feed)
//! ```
//!
//! Every event goes from parse to the store; matches only add incidents on top. Rules come from
//! `patterns/*.toml`, procedures from a runbook in markdown. `event`, `config` and `runbook` are the
//! shared vocabulary; each stage depends only on them and the stage directly upstream; only
//! [`pipeline`] knows every stage.

pub mod config;
pub mod event;
pub mod runbook;

pub mod detect;
pub mod incident;
pub mod parse;
pub mod query;
pub mod serve;
pub mod source;
pub mod store;

pub mod demo;
pub mod pipeline;
