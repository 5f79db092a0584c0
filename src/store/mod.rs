//! Durable state: the tantivy event index (with checkpoints in the same commit), the incident log,
//! the engine's state snapshots the commits name, and the per-segment vocabularies the query
//! planner searches.
pub mod clickhouse;
pub mod clickhouse_sink;
pub mod incidents;
pub mod index;
pub mod retention;
pub mod schema;
pub mod silences;
pub mod snapshot;
pub mod vocab;

pub use index::{EventIndex, IndexError, IndexSink};
