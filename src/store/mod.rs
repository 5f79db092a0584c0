//! Durable state: the tantivy event index (with checkpoints in the same commit) and the incident log.
pub mod incidents;
pub mod index;
pub mod schema;

pub use index::{EventIndex, IndexError, IndexSink};
