//! logwarden's one integration test binary: topic modules over the real binaries and library.
#![allow(clippy::unwrap_used)]

mod support;

mod bad_input;
mod board;
mod clickhouse;
mod clickhouse_sink;
mod compose;
mod corpora;
mod demo;
mod disk_full;
mod forensic;
mod loggrep;
mod memory;
mod operator;
mod postgres;
mod readme;
mod rotation;
mod rules;
mod run_live;
mod scan;
mod secrets;
mod serve;
mod storm;
mod webhooks;
