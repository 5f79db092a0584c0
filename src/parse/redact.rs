//! Secrets scrubbed from an event (raw, message, string fields) before it leaves the parse stage.
//!
//! Replaced by `***`, keeping the key name and the value's quotes: passwords in connection URIs
//! (`postgres://user:***@host`, `redis://:***@host`), `Bearer`/`Basic` credentials,
//! `password=`, `token=`, `RESEND_API_KEY=`, `R2_SECRET_ACCESS_KEY=`, `secretAccessKey:` and
//! other `KEY=value` / `key: value` pairs with a secret-sounding key (snake, kebab or camel case;
//! bare, `"quoted"` or `'quoted'` values; in query strings too), JSON string values under such
//! keys (`"apiKey":"***"`), Resend keys (`re_…`), OpenAI keys (`sk-…`, `sk-proj-…`), AWS access
//! key ids (`AKIA…`, `ASIA…`) and a 40-character secret key beside one, presigned-URL
//! signatures (`X-Amz-Signature=`) and JWTs (`eyJ….eyJ….sig`). One aho-corasick automaton over
//! literals that every secret contains runs first, and only the rules whose literals it found run
//! their regexes, so clean lines cost one scan. Must not touch ordinary text.
//!
//! To add a pattern: a regex in `build`'s table, an index constant for it, and in [`LITERALS`]
//! a literal every match contains, naming the new index (so lines without it never run the
//! regex); then a case in the tests below and in `tests/support/secrets.rs`'s catalogue.

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};

use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Captures, Regex};
use serde_json::Value;

use crate::event::Event;

/// What a rule's match becomes.
enum Replace {
    /// A template with `${k}` (the kept key name).
    Template(&'static str),
    /// `***` when the match contains a digit (tells an `re_…` key from an identifier).
    MaskIfDigit,
    /// `${k}` then the value `v` masked, its quotes kept (`"***"`, `'***'`, `\"***\"`).
    KeepQuotes,
    /// Only the `secret` group masked when the regex has one, else the whole match (an
    /// operator's `[[redact]]` pattern).
    SecretGroup,
}

struct Rule {
    regex: Regex,
    replace: Replace,
}

struct Redactor {
    /// The literals, leftmost-first: `is_match` runs packed (Teddy) and answers most lines.
    any: AhoCorasick,
    /// The literals, standard semantics: every occurrence, overlapping ones included.
    prefilter: AhoCorasick,
    /// For each prefilter pattern, the rules it enables.
    pattern_rules: Vec<&'static [usize]>,
    rules: Vec<Rule>,
}

const JSON_KEY: usize = 0;
const URI: usize = 1;
const BEARER: usize = 2;
const AMZ: usize = 3;
const KEY_VALUE: usize = 4;
const RESEND: usize = 5;
const OPENAI: usize = 6;
const AWS: usize = 7;
const JWT: usize = 8;
const AWS_SECRET: usize = 9;

const SECRET_WORDS: &str = r"password|passwd|pwd|secret|api[_\-]?key|access[_\-]?key|secret[_\-]?key|token|auth[_\-]?token|access[_\-]?token|refresh[_\-]?token|client[_\-]?secret|private[_\-]?key";

/// Literals and the rules they enable. Every secret a rule matches contains one of its literals.
/// Every field name [`secret_key`] calls secret contains one of the key literals below in its
/// lowercase, UPPERCASE or camelCase spelling (`privatekey`, `PRIVATE_KEY`, `privateKey`,
/// `private-key`), so its value is redacted too (a fuzzer found `privatekey` missing).
const LITERALS: [(&str, &[usize]); 40] = [
    ("://", &[URI]),
    ("earer", &[BEARER]),
    ("EARER", &[BEARER]),
    ("asic ", &[BEARER]),
    ("re_", &[RESEND]),
    ("sk-", &[OPENAI]),
    ("AKIA", &[AWS, AWS_SECRET]),
    ("ASIA", &[AWS, AWS_SECRET]),
    // A JWT's header and payload are base64url JSON objects: both start `eyJ` (`{"`).
    ("eyJ", &[JWT]),
    ("Amz-", &[AMZ]),
    ("assw", &[KEY_VALUE, JSON_KEY]),
    ("ASSW", &[KEY_VALUE, JSON_KEY]),
    ("pwd", &[KEY_VALUE, JSON_KEY]),
    ("PWD", &[KEY_VALUE, JSON_KEY]),
    ("ecret", &[KEY_VALUE, JSON_KEY]),
    ("ECRET", &[KEY_VALUE, JSON_KEY]),
    ("oken", &[KEY_VALUE, JSON_KEY]),
    ("OKEN", &[KEY_VALUE, JSON_KEY]),
    ("pi_key", &[KEY_VALUE, JSON_KEY]),
    ("pi-key", &[KEY_VALUE, JSON_KEY]),
    ("piKey", &[KEY_VALUE, JSON_KEY]),
    ("pikey", &[KEY_VALUE, JSON_KEY]),
    ("PI_KEY", &[KEY_VALUE, JSON_KEY]),
    ("PIKEY", &[KEY_VALUE, JSON_KEY]),
    ("ccess_key", &[KEY_VALUE, JSON_KEY]),
    ("ccess-key", &[KEY_VALUE, JSON_KEY]),
    ("ccessKey", &[KEY_VALUE, JSON_KEY]),
    ("ccesskey", &[KEY_VALUE, JSON_KEY]),
    ("CCESS_KEY", &[KEY_VALUE, JSON_KEY]),
    ("CCESSKEY", &[KEY_VALUE, JSON_KEY]),
    ("rivate_key", &[KEY_VALUE, JSON_KEY]),
    ("rivate-key", &[KEY_VALUE, JSON_KEY]),
    ("rivateKey", &[KEY_VALUE, JSON_KEY]),
    ("rivatekey", &[KEY_VALUE, JSON_KEY]),
    ("RIVATE_KEY", &[KEY_VALUE, JSON_KEY]),
    ("RIVATEKEY", &[KEY_VALUE, JSON_KEY]),
    ("RIVATE-KEY", &[KEY_VALUE, JSON_KEY]),
    ("PI-KEY", &[KEY_VALUE, JSON_KEY]),
    ("uthorization", &[JSON_KEY]),
    ("UTHORIZATION", &[JSON_KEY]),
];

static REDACTOR: LazyLock<Option<Redactor>> = LazyLock::new(build);

fn build() -> Option<Redactor> {
    let json_key = format!(
        r#"(?P<k>"(?i:[a-z0-9_\-]*(?:{SECRET_WORDS}|authorization)[a-z0-9_\-]*)"\s*:\s*")(?:[^"\\]|\\.)*""#
    );
    // The key may be snake_case, kebab-case or camelCase (`secretAccessKey: …`). The value may
    // be quoted (`password="a b"`, `password='x'`), or quoted inside a JSON string's raw text
    // (`\"x\"`), or bare up to a delimiter; an unclosed quote masks the bare rest.
    let key_value = format!(
        r#"(?P<k>(?i:\b[a-z0-9_\-]*(?:{SECRET_WORDS}))\b\s*[=:]\s*)(?P<v>\\"(?:[^\\"]|\\[^"])*\\"|"(?:[^"\\]|\\.)*"|'[^']*'|["']?[^\s&,;"'<>*)\]}}][^\s&,;"'<>)\]}}]*)"#
    );
    let specs: [(String, Replace); 10] = [
        (json_key, Replace::Template("${k}***\"")),
        (
            r#"(?P<k>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@"']*:)[^\s@/"']+@"#.to_string(),
            Replace::Template("${k}***@"),
        ),
        (
            r"(?P<k>\b(?i:bearer|basic)\s+)[A-Za-z0-9._~+/=\-]{6,}".to_string(),
            Replace::Template("${k}***"),
        ),
        (
            r#"(?P<k>X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s"']+"#.to_string(),
            Replace::Template("${k}***"),
        ),
        (key_value, Replace::KeepQuotes),
        (r"\bre_[A-Za-z0-9_]{10,}".to_string(), Replace::MaskIfDigit),
        (
            r"\bsk-(?:proj-|live-|test-|ant-)?[A-Za-z0-9_\-]{6,}".to_string(),
            Replace::Template("***"),
        ),
        (
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b".to_string(),
            Replace::Template("***"),
        ),
        (
            r"\beyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*".to_string(),
            Replace::Template("***"),
        ),
        // An AWS (or R2, S3-compatible) secret access key is 40 characters of base64 with no
        // prefix of its own: masked bare only in text that also holds an access key id, where
        // it comes as the id's partner (`AKIA… wJalrXUtnFEMI/K7MDENG/…`).
        (
            r"(?P<pre>^|[^A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?P<post>$|[^A-Za-z0-9/+=])".to_string(),
            Replace::Template("${pre}***${post}"),
        ),
    ];
    let mut rules = Vec::with_capacity(specs.len());
    for (pattern, replace) in specs {
        match Regex::new(&pattern) {
            Ok(regex) => rules.push(Rule { regex, replace }),
            Err(e) => {
                tracing::error!(error = %e, "redact: a built-in pattern does not compile");
                return None;
            }
        }
    }
    let literals = LITERALS.iter().map(|(lit, _)| *lit);
    let prefilter = AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .build(literals.clone())
        .ok()?;
    let any = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(literals)
        .ok()?;
    Some(Redactor {
        any,
        prefilter,
        pattern_rules: LITERALS.iter().map(|(_, r)| *r).collect(),
        rules,
    })
}

impl Redactor {
    /// The rules worth running on `text` (a bit set), 0 when it holds no candidate.
    fn candidates(&self, text: &str) -> u32 {
        // An overlapping search cannot skip ahead with the packed searcher; most text holds no
        // literal at all, which the leftmost-first automaton tells several times faster.
        if !self.any.is_match(text) {
            return 0;
        }
        let mut set = 0u32;
        for m in self.prefilter.find_overlapping_iter(text) {
            for &r in self.pattern_rules[m.pattern().as_usize()] {
                set |= 1 << r;
            }
        }
        set
    }

    fn apply<'t>(&self, text: &'t str, set: u32) -> Cow<'t, str> {
        apply_rules(&self.rules, text, u64::from(set))
    }
}

/// The rules of `rules` whose bit is set in `set`, in order, over `text`.
fn apply_rules<'t>(rules: &[Rule], text: &'t str, set: u64) -> Cow<'t, str> {
    let mut out = Cow::Borrowed(text);
    for (i, rule) in rules.iter().enumerate() {
        if set & (1 << i) == 0 {
            continue;
        }
        let replaced = match rule.replace {
            Replace::Template(t) => rule.regex.replace_all(&out, t),
            Replace::MaskIfDigit => rule.regex.replace_all(&out, |c: &Captures<'_>| {
                let m = &c[0];
                if m.bytes().any(|b| b.is_ascii_digit()) {
                    "***".to_string()
                } else {
                    m.to_string()
                }
            }),
            Replace::KeepQuotes => rule.regex.replace_all(&out, |c: &Captures<'_>| {
                let v = &c["v"];
                let quote = ["\\\"", "\"", "'"]
                    .into_iter()
                    .find(|q| v.len() >= 2 * q.len() && v.starts_with(q) && v.ends_with(q))
                    .unwrap_or("");
                format!("{}{quote}***{quote}", &c["k"])
            }),
            Replace::SecretGroup => rule.regex.replace_all(&out, |c: &Captures<'_>| {
                let whole = c.get(0).map_or("", |m| m.as_str());
                match (c.get(0), c.name("secret")) {
                    (Some(m), Some(g)) => format!(
                        "{}***{}",
                        &whole[..g.start() - m.start()],
                        &whole[g.end() - m.start()..]
                    ),
                    _ => "***".to_string(),
                }
            }),
        };
        if let Cow::Owned(s) = replaced {
            out = Cow::Owned(s);
        }
    }
    out
}

/// `text` with its secrets replaced; borrowed when there were none.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    let builtin = REDACTOR.as_ref().map_or(0, |r| r.candidates(text));
    let custom = CUSTOM.get().map_or(0, |c| c.candidates(text));
    apply_all(text, builtin, custom)
}

/// The built-in rules of `builtin` and then the operator's patterns of `custom` over `text`.
fn apply_all(text: &str, builtin: u32, custom: u64) -> Cow<'_, str> {
    let mut out = match (REDACTOR.as_ref(), builtin) {
        (Some(r), set) if set != 0 => r.apply(text, set),
        _ => Cow::Borrowed(text),
    };
    if custom != 0
        && let Some(c) = CUSTOM.get()
        && let Cow::Owned(s) = c.apply(&out, custom)
    {
        out = Cow::Owned(s);
    }
    out
}

/// A pattern of the operator's own: a profile's `[[redact]]` table. Its match becomes `***`,
/// or only its `secret` group when it has one (`token=(?P<secret>\w+)` keeps `token=`).
#[derive(Debug, Clone)]
pub struct CustomPattern {
    pub name: String,
    pub regex: Regex,
    /// Text every match contains: lines without any of them never run the regex (empty: the
    /// regex runs on every line, which costs a regex scan per line).
    pub literals: Vec<String>,
}

impl PartialEq for CustomPattern {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.regex.as_str() == other.regex.as_str()
            && self.literals == other.literals
    }
}

impl Eq for CustomPattern {}

impl CustomPattern {
    /// Check and compile one pattern: the regex compiles within the size bound, matches no
    /// empty text (it would mask everywhere), names no group other than `secret`, and the
    /// literals are not empty strings. The error is the field at fault and why.
    pub fn new(
        name: &str,
        pattern: &str,
        literals: Vec<String>,
    ) -> Result<CustomPattern, (&'static str, String)> {
        let regex = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| ("pattern", format!("the pattern does not compile: {e}")))?;
        if regex.is_match("") {
            return Err((
                "pattern",
                "the pattern matches empty text, so it would mask everywhere".into(),
            ));
        }
        if let Some(other) = regex.capture_names().flatten().find(|n| *n != "secret") {
            return Err((
                "pattern",
                format!("the only named group a pattern may have is `secret` (found `{other}`)"),
            ));
        }
        if literals.iter().any(String::is_empty) {
            return Err(("literals", "a literal is empty".into()));
        }
        Ok(CustomPattern {
            name: name.to_string(),
            regex,
            literals,
        })
    }
}

/// Why the operator's patterns could not be installed.
#[derive(thiserror::Error, Debug)]
pub enum RedactError {
    #[error("at most {max} [[redact]] patterns (got {got})")]
    TooMany { max: usize, got: usize },
    #[error("the redaction patterns were installed already; they are set once, at start")]
    AlreadyInstalled,
    #[error("the [[redact]] literals do not build an automaton: {0}")]
    Literals(String),
}

/// The operator's patterns, with one automaton over their literals.
struct Custom {
    rules: Vec<Rule>,
    literals: Option<AhoCorasick>,
    /// For each literal, the pattern it belongs to.
    literal_pattern: Vec<usize>,
    /// The patterns with no literal: candidates on every text.
    always: u64,
}

/// At most this many `[[redact]]` patterns (one bit each in a candidate set).
pub const MAX_CUSTOM_PATTERNS: usize = 64;

static CUSTOM: OnceLock<Custom> = OnceLock::new();

/// Install the operator's patterns for this process; they apply after the built-in ones,
/// everywhere redaction applies. Call it once, before anything is parsed (the binary does, from
/// the profile); a second call is an error.
pub fn install(patterns: Vec<CustomPattern>) -> Result<(), RedactError> {
    if patterns.len() > MAX_CUSTOM_PATTERNS {
        return Err(RedactError::TooMany {
            max: MAX_CUSTOM_PATTERNS,
            got: patterns.len(),
        });
    }
    let mut words = Vec::new();
    let mut literal_pattern = Vec::new();
    let mut always = 0u64;
    for (i, p) in patterns.iter().enumerate() {
        if p.literals.is_empty() {
            always |= 1 << i;
        }
        for l in &p.literals {
            words.push(l.as_str());
            literal_pattern.push(i);
        }
    }
    let literals = if words.is_empty() {
        None
    } else {
        Some(
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&words)
                .map_err(|e| RedactError::Literals(e.to_string()))?,
        )
    };
    CUSTOM
        .set(Custom {
            rules: patterns
                .into_iter()
                .map(|p| Rule {
                    regex: p.regex,
                    replace: Replace::SecretGroup,
                })
                .collect(),
            literals,
            literal_pattern,
            always,
        })
        .map_err(|_| RedactError::AlreadyInstalled)
}

impl Custom {
    fn candidates(&self, text: &str) -> u64 {
        let mut set = self.always;
        if let Some(ac) = &self.literals {
            for m in ac.find_overlapping_iter(text) {
                set |= 1 << self.literal_pattern[m.pattern().as_usize()];
            }
        }
        set
    }

    fn apply<'t>(&self, text: &'t str, set: u64) -> Cow<'t, str> {
        apply_rules(&self.rules, text, set)
    }
}

/// True for a field name whose string value is a secret whatever it looks like.
pub fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_FIELD_WORDS.iter().any(|w| k.contains(w)) && !k.ends_with("tokens")
}

/// What makes a field name secret (lowercased). Every one has prefilter [`LITERALS`] in its
/// lowercase, UPPERCASE and camelCase spellings (a test checks), so such a field's line is
/// always looked at.
const SECRET_FIELD_WORDS: [&str; 12] = [
    "password",
    "passwd",
    "secret",
    "apikey",
    "api_key",
    "api-key",
    "token",
    "authorization",
    "accesskey",
    "access_key",
    "privatekey",
    "private_key",
];

/// Redact raw, message and string fields of `event` in place. True when anything changed. Fields
/// come from the raw text, so a raw text without a candidate literal is clean throughout, once
/// its JSON escapes are decoded (`s\u006b-…` is an OpenAI key to every JSON reader): a raw text
/// whose decoded form holds a secret is replaced by that form, redacted.
pub fn redact_event(event: &mut Event) -> bool {
    let decoded = decode_json_escapes(&event.raw);
    let raw = decoded.as_deref().unwrap_or(&event.raw);
    let builtin = REDACTOR.as_ref().map_or(0, |r| r.candidates(raw));
    let custom = CUSTOM.get().map_or(0, |c| c.candidates(raw));
    if builtin == 0 && custom == 0 {
        return false;
    }
    let mut changed = false;
    if let Cow::Owned(s) = apply_all(raw, builtin, custom) {
        event.raw = s;
        changed = true;
    }
    if let Cow::Owned(s) = redact_text(&event.message) {
        event.message = s;
        changed = true;
    }
    for (key, value) in event.fields.iter_mut() {
        changed |= redact_value(key, value);
    }
    changed
}

/// `text` with the JSON escapes that can hide a secret decoded: `\/`, and `\uXXXX` of any
/// character but a quote, a backslash, a control character or half a surrogate pair (those stay
/// escaped, so a JSON text stays valid JSON). `None` when there is nothing to decode.
fn decode_json_escapes(text: &str) -> Option<String> {
    // One pass over the backslashes (most raw texts have none or only `\"`, `\n`), not one
    // substring search per escape kind: this runs on every event.
    let bytes = text.as_bytes();
    if !memchr::memchr_iter(b'\\', bytes).any(|i| matches!(bytes.get(i + 1), Some(b'u' | b'/'))) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let hex = tail.get(2..6).filter(|h| {
            tail.as_bytes().get(1) == Some(&b'u') && h.bytes().all(|b| b.is_ascii_hexdigit())
        });
        let decoded = hex
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32)
            .filter(|c| !c.is_control() && *c != '"' && *c != '\\');
        if let Some(c) = decoded {
            out.push(c);
            rest = &tail[6..];
        } else if tail.as_bytes().get(1) == Some(&b'/') {
            out.push('/');
            rest = &tail[2..];
        } else {
            // Another escape (`\"`, `\\`, `\n`, …): kept whole, its second character included.
            let keep = tail.chars().take(2).map(char::len_utf8).sum::<usize>();
            out.push_str(&tail[..keep]);
            rest = &tail[keep..];
        }
    }
    out.push_str(rest);
    Some(out)
}

fn redact_value(key: &str, value: &mut Value) -> bool {
    match value {
        Value::String(s) => {
            if secret_key(key) && !s.is_empty() && s != "***" {
                *s = "***".to_string();
                return true;
            }
            if let Cow::Owned(new) = redact_text(s) {
                *s = new;
                return true;
            }
            false
        }
        Value::Object(map) => {
            let mut changed = false;
            for (k, v) in map.iter_mut() {
                changed |= redact_value(k, v);
            }
            changed
        }
        Value::Array(items) => {
            let mut changed = false;
            for v in items.iter_mut() {
                changed |= redact_value(key, v);
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        redact_text(s).into_owned()
    }

    /// An event of the app with this message, raw text and fields (as read, not yet redacted).
    fn event(message: &str, raw: &str, fields: serde_json::Map<String, Value>) -> Event {
        Event {
            id: crate::event::EventId {
                fingerprint: 1,
                offset: 0,
            },
            ts: crate::event::Timestamp(0),
            service: "app".into(),
            level: crate::event::Level::Error,
            message: message.into(),
            raw: raw.into(),
            fields,
            flags: Default::default(),
            len: 0,
            lines: 1,
        }
    }

    #[test]
    fn connection_uri_passwords() {
        assert_eq!(
            r("connect failed: postgres://newsletter:S3cretPw@db:5432/newsletter"),
            "connect failed: postgres://newsletter:***@db:5432/newsletter"
        );
        assert_eq!(r("redis://:hunter2@redis:6379"), "redis://:***@redis:6379");
        assert_eq!(
            r("see https://example.com/a:b"),
            "see https://example.com/a:b"
        );
    }

    #[test]
    fn bearer_tokens_and_api_keys() {
        assert_eq!(
            r("Authorization: Bearer re_live_8f3k2j1h4g5f6d7s8a9"),
            "Authorization: Bearer ***"
        );
        assert_eq!(
            r("RESEND_API_KEY=re_live_8f3k2j1h4g5f6d7s8a9 started"),
            "RESEND_API_KEY=*** started"
        );
        assert_eq!(r("key re_live_8f3k2j1h4g5f6d7s8a9 used"), "key *** used");
        assert_eq!(
            r(r#"{"apiKey":"sk-proj-abc123def456"}"#),
            r#"{"apiKey":"***"}"#
        );
        assert_eq!(r("using sk-proj-abc123def456 now"), "using *** now");
        assert_eq!(r("id AKIAIOSFODNN7EXAMPLE here"), "id *** here");
        assert_eq!(
            r("GET /img.png?X-Amz-Algorithm=AWS4&X-Amz-Signature=abcdef0123&x=1"),
            "GET /img.png?X-Amz-Algorithm=AWS4&X-Amz-Signature=***&x=1"
        );
        assert_eq!(r("password=hunter2 user=bob"), "password=*** user=bob");
        // A JWT anywhere (a session cookie, a query string), signed or not.
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert_eq!(r(&format!("session={jwt}; Path=/")), "session=***; Path=/");
        assert_eq!(
            r(&format!("GET /unsubscribe?t={jwt}&x=1")),
            "GET /unsubscribe?t=***&x=1"
        );
        assert_eq!(r(&format!("jwt {jwt} expired")), "jwt *** expired");
        assert_eq!(r("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."), "***");
        assert_eq!(r("DB_PASSWORD: hunter2"), "DB_PASSWORD: ***");
    }

    #[test]
    fn quoted_values_camel_case_keys_and_query_strings() {
        assert_eq!(
            r(r#"login failed password="hunter 2" user=bob"#),
            r#"login failed password="***" user=bob"#
        );
        assert_eq!(r("password='x y' ok"), "password='***' ok");
        // The raw text of a JSON line: the quotes around the value are escaped.
        assert_eq!(
            r(r#"{"msg":"retry with password=\"hunter2\" now"}"#),
            r#"{"msg":"retry with password=\"***\" now"}"#
        );
        // An unclosed quote: the rest of the word goes.
        assert_eq!(r(r#"password="hunter2"#), "password=***");
        assert_eq!(
            r("{region: auto, secretAccessKey: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY}"),
            "{region: auto, secretAccessKey: ***}"
        );
        assert_eq!(
            r("R2_SECRET_ACCESS_KEY=3f7c9a2b1d4e5f60718293a4b5c6d7e8f9012345 set"),
            "R2_SECRET_ACCESS_KEY=*** set"
        );
        assert_eq!(
            r("POST /login?email=a%40b.c&password=hunter2&next=%2F"),
            "POST /login?email=a%40b.c&password=***&next=%2F"
        );
    }

    #[test]
    fn an_aws_secret_key_beside_its_access_key_id() {
        assert_eq!(
            r("s3 creds AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY rejected"),
            "s3 creds *** *** rejected"
        );
        assert_eq!(
            r("AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            "***:***"
        );
        // Without an access key id on the line, 40 characters of hex (a commit, a digest) stay.
        let digest = "deploy 3f7c9a2b1d4e5f60718293a4b5c6d7e8f9012345 live";
        assert_eq!(r(digest), digest);
    }

    /// The only test that installs patterns (they are once per process): an operator's pattern
    /// masks its match, or only its `secret` group, in text and in events, after the built-in
    /// rules; a second install is refused.
    #[test]
    fn the_operators_own_patterns_apply_after_the_built_in_ones() {
        let patterns = vec![
            CustomPattern::new("internal", "nlint_[0-9a-f]{16}", vec!["nlint_".to_string()])
                .unwrap(),
            CustomPattern::new("header", r"X-Internal-Auth: (?P<secret>\S+)", Vec::new()).unwrap(),
        ];
        install(patterns).unwrap();
        assert_eq!(
            r("call with nlint_0123456789abcdef failed"),
            "call with *** failed"
        );
        assert_eq!(
            r("sent X-Internal-Auth: abc.def and password=hunter2"),
            "sent X-Internal-Auth: *** and password=***"
        );
        let mut ev = event(
            "token nlint_0123456789abcdef",
            r#"{"msg":"token nlint_0123456789abcdef","k":"nlint_fedcba9876543210"}"#,
            serde_json::from_str(r#"{"k":"nlint_fedcba9876543210"}"#).unwrap(),
        );
        assert!(redact_event(&mut ev));
        assert!(
            !ev.raw.contains("nlint_0") && !ev.raw.contains("nlint_f"),
            "{}",
            ev.raw
        );
        assert_eq!(ev.message, "token ***");
        assert_eq!(ev.fields["k"], "***");
        assert!(matches!(
            install(Vec::new()),
            Err(RedactError::AlreadyInstalled)
        ));
    }

    /// The prefilter and `secret_key` agree: a field named by any secret word, in any of the
    /// spellings loggers use, makes its line a candidate.
    #[test]
    fn every_secret_field_word_has_a_prefilter_literal() {
        let Some(r) = REDACTOR.as_ref() else {
            panic!("the built-in redactor does not build")
        };
        for w in SECRET_FIELD_WORDS {
            let camel: String = w
                .split(['_', '-'])
                .enumerate()
                .map(|(i, part)| {
                    let mut c = part.chars();
                    match (i, c.next()) {
                        (0, Some(f)) => f.to_string() + c.as_str(),
                        (_, Some(f)) => f.to_ascii_uppercase().to_string() + c.as_str(),
                        _ => String::new(),
                    }
                })
                .collect();
            for spelling in [w.to_string(), w.to_ascii_uppercase(), camel] {
                let line = format!(r#"{{"{spelling}":"x"}}"#);
                assert_ne!(r.candidates(&line), 0, "{spelling}");
            }
        }
    }

    /// Found by the parse_jsonlog fuzz target: a field whose name holds `privatekey` (lowercase)
    /// is secret to `secret_key`, but no prefilter literal saw it, so its value stayed.
    #[test]
    fn every_spelling_of_a_secret_field_name_is_seen() {
        for key in [
            "sesprivatekeysion_start",
            "privatekey",
            "PRIVATEKEY",
            "PRIVATE_KEY",
            "accesskey",
            "ACCESSKEY",
            "r2_accesskey",
        ] {
            assert!(secret_key(key), "{key}");
            let raw = format!(r#"{{"msg":"x","{key}":"v4lue"}}"#);
            let fields = serde_json::from_str(&format!(r#"{{"{key}":"v4lue"}}"#)).unwrap();
            let mut ev = event("x", &raw, fields);
            assert!(redact_event(&mut ev), "{key}");
            assert_eq!(ev.fields[key], "***", "{key}");
            assert!(!ev.raw.contains("v4lue"), "{key}: {}", ev.raw);
        }
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for s in [
            r#"{"level":30,"time":1796220000123,"queue":"ai-insights","jobId":"77","model":"gpt-4o-mini","tokens":812,"msg":"OpenAI completion finished"}"#,
            "FATAL:  password authentication failed for user \"newsletter\"",
            "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
            "store_result before_insert are_equal",
            "2026-11-28 14:00:01.123 UTC [4242] newsletter@newsletter LOG:  duration: 12.345 ms  statement: SELECT * FROM campaigns WHERE tenant_id = $1",
            "visit https://example.com/docs for details",
            "the desk-lamp is on",
        ] {
            assert_eq!(r(s), s);
        }
    }

    #[test]
    fn events_are_redacted_everywhere_and_flaggable() {
        let mut fields = serde_json::Map::new();
        fields.insert("apiKey".into(), Value::from("sk-proj-abc123def456"));
        fields.insert(
            "err".into(),
            serde_json::json!({"message": "connect postgres://u:pw123@db/x failed"}),
        );
        fields.insert("tokens".into(), Value::from(812));
        let mut ev = event(
            "Database query failed: connect postgres://u:pw123@db/x failed",
            r#"{"apiKey":"sk-proj-abc123def456","err":{"message":"connect postgres://u:pw123@db/x failed"},"tokens":812}"#,
            fields,
        );
        assert!(redact_event(&mut ev));
        assert!(!ev.raw.contains("pw123") && !ev.raw.contains("abc123"));
        assert!(!ev.message.contains("pw123"));
        assert_eq!(ev.fields["apiKey"], "***");
        assert_eq!(
            ev.fields["err"]["message"],
            "connect postgres://u:***@db/x failed"
        );
        assert_eq!(ev.fields["tokens"], 812);
    }

    /// Caught by the `parse_pino` fuzz target's invariant (no secret left in a message or a
    /// field): a key, a password field or a URI password written with JSON escapes has no literal
    /// the automaton knows in the raw text, but is a secret once the JSON is read (message,
    /// fields) and to anyone who reads the raw text as JSON.
    #[test]
    fn secrets_hidden_behind_json_escapes_are_redacted_everywhere() {
        let lines = [
            r#"{"level":30,"msg":"key s\u006b-proj-abc123def456ghi789"}"#,
            r#"{"level":30,"msg":"x","pass\u0077ord":"hunter2"}"#,
            r#"{"level":30,"msg":"connect postgres:\/\/u:S3cretPw@db:5432\/x"}"#,
        ];
        for line in lines {
            let events =
                crate::parse::parse_all("app", crate::parse::Format::Pino, 1, line.as_bytes())
                    .unwrap()
                    .events;
            let ev = &events[0];
            assert!(ev.flags.contains(crate::event::Flags::REDACTED), "{line}");
            for secret in ["abc123def456", "hunter2", "S3cretPw"] {
                assert!(!ev.raw.contains(secret), "{line}: raw {}", ev.raw);
                assert!(
                    !ev.message.contains(secret),
                    "{line}: message {}",
                    ev.message
                );
                let fields = serde_json::to_string(&ev.fields).unwrap();
                assert!(!fields.contains(secret), "{line}: fields {fields}");
            }
            // Still JSON, and still the same entry.
            let reread: serde_json::Value = serde_json::from_str(&ev.raw).unwrap();
            assert_eq!(reread["level"], 30, "{line}");
        }
    }

    #[test]
    fn json_escapes_that_hide_nothing_are_left_alone() {
        assert_eq!(decode_json_escapes("plain"), None);
        assert_eq!(
            decode_json_escapes(r#"a\u0022b\\u0041\/c\u00e9\ud83d\n"#).as_deref(),
            Some(r#"a\u0022b\\u0041/cé\ud83d\n"#)
        );
        let line = "{\"level\":30,\"msg\":\"caf\\u00e9 \\/health ok\"}";
        let events = crate::parse::parse_all("app", crate::parse::Format::Pino, 1, line.as_bytes())
            .unwrap()
            .events;
        assert_eq!(
            events[0].raw, line,
            "no secret: the raw text stays as written"
        );
    }
}
