//! The tantivy schema of the event index: field names, field options and the one tokenizer.
//!
//! Owns: the names every reader and writer of the index uses ([`TS`], [`SERVICE`], …), the schema
//! builder ([`build`]), the resolved [`Fields`] handles and the `logwarden` tokenizer.
//! Must not: know about queries or the pipeline; the query planner relies on the tokenizer contract
//! documented below, so change it only together with `query::plan`.
//!
//! # The tokenizer (`logwarden`), and why
//!
//! `raw`, `message` and the text values of `fields` are tokenized the same way:
//! tantivy's `SimpleTokenizer` (maximal runs of `char::is_alphanumeric`), then [`FoldFilter`]:
//!
//! * each character is lowercased on its own (`char::to_lowercase`, no context rules such as
//!   the final sigma), and the two non-ASCII letters whose case folds to ASCII (`ſ` → `s`, the
//!   Kelvin sign → `k`) are mapped to their ASCII letter;
//! * a token longer than [`MAX_TOKEN_BYTES`] (measured before folding) is not dropped but replaced
//!   by [`LONG_TOKEN_MARK`], a term no ordinary token can produce.
//!
//! This keeps one promise the planner builds on: if a text contains a literal as a substring
//! (case-sensitively, or ASCII-case-insensitively), the folded inner tokens of the literal are
//! terms of the text, its first token is a suffix and its last a prefix of terms of the text, or
//! else the text carries [`LONG_TOKEN_MARK`]. The index can therefore narrow candidates without
//! ever losing one; the substring itself is verified on the stored text. Unlike tantivy's
//! `default` analyzer there is no stop-word list and no silent removal of long tokens, both of
//! which would break that promise.

use tantivy::Index;
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, INDEXED, IndexRecordOption, JsonObjectOptions,
    STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    SimpleTokenizer, TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
};

/// Event time (DateTime, microsecond precision; indexed, fast, stored).
pub const TS: &str = "ts";
/// Service name, untokenized (`raw` tokenizer), fast and stored.
pub const SERVICE: &str = "service";
/// Level name as [`crate::event::Level::as_str`] spells it; untokenized, fast and stored.
pub const LEVEL: &str = "level";
/// The human message, tokenized with [`TOKENIZER`], stored.
pub const MESSAGE: &str = "message";
/// The event as it stood in the file; tokenized with [`TOKENIZER`], stored.
pub const RAW: &str = "raw";
/// Structured attributes as one JSON object: indexed with [`TOKENIZER`], stored and fast (numeric
/// comparisons such as `duration_ms:>1000` run on the fast columns).
pub const FIELDS: &str = "fields";
/// Flag names (`partial`, `malformed`, …), one untokenized term each, stored.
pub const FLAGS: &str = "flags";
/// Ids of the rules that matched the event, one untokenized term each, stored (filled by the
/// pipeline from the detect stage's matches; empty for events no rule matched).
pub const RULES: &str = "rules";
/// Incident classes of those rules (`db_connection`, …), one untokenized term each, stored.
pub const CLASSES: &str = "classes";
/// The incident groups the event's matches went to (`rule-id service=app ip=…`, as
/// `incident::group::GroupKey::render` writes them and `Incident::group` stores them), one
/// untokenized term each, stored: `incident:ID` finds exactly its group's events by it.
pub const GROUPS: &str = "groups";
/// The event id as text (`FINGERPRINT:OFFSET`), stored.
pub const EVENT_ID: &str = "event_id";
/// Source fingerprint (u64; indexed for deletes by source, fast for ordering).
pub const FINGERPRINT: &str = "fingerprint";
/// Byte offset of the event in its source (u64, fast for ordering).
pub const OFFSET: &str = "offset";

/// Name of the tokenizer registered on every index for `raw`, `message` and `fields`.
pub const TOKENIZER: &str = "logwarden";
/// Tokens longer than this many bytes are indexed as [`LONG_TOKEN_MARK`].
pub const MAX_TOKEN_BYTES: usize = 255;
/// The term standing for "this text has a token longer than [`MAX_TOKEN_BYTES`]".
pub const LONG_TOKEN_MARK: &str = "\u{1}long";

/// The resolved field handles of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub ts: Field,
    pub service: Field,
    pub level: Field,
    pub message: Field,
    pub raw: Field,
    pub fields: Field,
    pub flags: Field,
    pub rules: Field,
    pub classes: Field,
    pub groups: Field,
    pub event_id: Field,
    pub fingerprint: Field,
    pub offset: Field,
}

impl Fields {
    /// Look every field up in `schema`; `None` when the schema is not ours (or an older version of
    /// it: an index written before `rules`/`classes`/`groups` existed must be rebuilt).
    pub fn resolve(schema: &Schema) -> Option<Fields> {
        Some(Fields {
            ts: schema.get_field(TS).ok()?,
            service: schema.get_field(SERVICE).ok()?,
            level: schema.get_field(LEVEL).ok()?,
            message: schema.get_field(MESSAGE).ok()?,
            raw: schema.get_field(RAW).ok()?,
            fields: schema.get_field(FIELDS).ok()?,
            flags: schema.get_field(FLAGS).ok()?,
            rules: schema.get_field(RULES).ok()?,
            classes: schema.get_field(CLASSES).ok()?,
            groups: schema.get_field(GROUPS).ok()?,
            event_id: schema.get_field(EVENT_ID).ok()?,
            fingerprint: schema.get_field(FINGERPRINT).ok()?,
            offset: schema.get_field(OFFSET).ok()?,
        })
    }
}

/// The event index schema.
/// An event time as tantivy holds it (nanoseconds), clamped to what every store can hold so
/// that no bound, however far, overflows.
pub fn date(ts: crate::event::Timestamp) -> tantivy::DateTime {
    tantivy::DateTime::from_timestamp_micros(ts.clamp_storable().as_micros())
}

pub fn build() -> Schema {
    let text_indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER)
        .set_index_option(IndexRecordOption::Basic);
    let text = TextOptions::default()
        .set_indexing_options(text_indexing.clone())
        .set_stored();
    let ts = DateOptions::default()
        .set_indexed()
        .set_fast()
        .set_stored()
        .set_precision(DateTimePrecision::Microseconds);
    let json = JsonObjectOptions::default()
        .set_indexing_options(text_indexing)
        .set_stored()
        .set_fast("raw")
        .set_expand_dots_enabled();

    let mut builder = Schema::builder();
    builder.add_date_field(TS, ts);
    builder.add_text_field(SERVICE, STRING | FAST | STORED);
    builder.add_text_field(LEVEL, STRING | FAST | STORED);
    builder.add_text_field(MESSAGE, text.clone());
    builder.add_text_field(RAW, text);
    builder.add_json_field(FIELDS, json);
    builder.add_text_field(FLAGS, STRING | STORED);
    builder.add_text_field(RULES, STRING | STORED);
    builder.add_text_field(CLASSES, STRING | STORED);
    builder.add_text_field(GROUPS, STRING | STORED);
    builder.add_text_field(EVENT_ID, STORED);
    builder.add_u64_field(FINGERPRINT, INDEXED | FAST);
    builder.add_u64_field(OFFSET, FAST);
    builder.build()
}

/// Register [`TOKENIZER`] on `index` (needed after every create and open).
pub fn register_tokenizers(index: &Index) {
    index.tokenizers().register(TOKENIZER, analyzer());
}

/// The analyzer behind [`TOKENIZER`].
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(FoldFilter)
        .build()
}

/// Fold one token's text the way the index does (see the module doc). Used by the planner on
/// query tokens, so index and query always agree.
pub fn fold_token(text: &str) -> String {
    if text.len() > MAX_TOKEN_BYTES {
        return LONG_TOKEN_MARK.to_string();
    }
    let mut out = String::with_capacity(text.len());
    fold_chars_into(text, &mut out);
    out
}

/// Lowercase `text` char by char (no context rules), mapping `ſ` and the Kelvin sign to ASCII.
pub fn fold_chars_into(text: &str, out: &mut String) {
    if text.is_ascii() {
        out.push_str(text);
        out.make_ascii_lowercase();
        return;
    }
    for c in text.chars() {
        match c {
            '\u{17F}' => out.push('s'),
            '\u{212A}' => out.push('k'),
            _ => out.extend(c.to_lowercase()),
        }
    }
}

/// Token filter of [`TOKENIZER`]: per-char lowercase folding and long-token marking.
#[derive(Clone, Copy, Debug)]
pub struct FoldFilter;

impl TokenFilter for FoldFilter {
    type Tokenizer<T: Tokenizer> = FoldTokenizer<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> FoldTokenizer<T> {
        FoldTokenizer { inner: tokenizer }
    }
}

#[derive(Clone)]
pub struct FoldTokenizer<T> {
    inner: T,
}

impl<T: Tokenizer> Tokenizer for FoldTokenizer<T> {
    type TokenStream<'a> = FoldTokenStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        FoldTokenStream {
            tail: self.inner.token_stream(text),
            buffer: String::new(),
        }
    }
}

pub struct FoldTokenStream<T> {
    tail: T,
    buffer: String,
}

impl<T: TokenStream> TokenStream for FoldTokenStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        if token.text.len() > MAX_TOKEN_BYTES {
            token.text.clear();
            token.text.push_str(LONG_TOKEN_MARK);
        } else if token.text.is_ascii() {
            token.text.make_ascii_lowercase();
        } else {
            self.buffer.clear();
            fold_chars_into(&token.text, &mut self.buffer);
            std::mem::swap(&mut token.text, &mut self.buffer);
        }
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<String> {
        let mut analyzer = analyzer();
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn tokens_are_folded_per_char_and_long_ones_marked() {
        assert_eq!(
            tokens("FATAL:  sorry, too many Clients"),
            ["fatal", "sorry", "too", "many", "clients"]
        );
        assert_eq!(tokens("ΟΔΟΣ ſKIP"), ["οδοσ", "skip"]);
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(tokens(&format!("x {long} y")), ["x", LONG_TOKEN_MARK, "y"]);
        assert_eq!(fold_token(&long), LONG_TOKEN_MARK);
    }

    #[test]
    fn schema_resolves_every_field() {
        assert!(Fields::resolve(&build()).is_some());
    }
}
