//! Ingest profiles (`ingest/*.toml`): which files to read, as which service, in which format,
//! how long to keep events (`[retention]`) and where to send incident changes (`[[webhook]]`).
//!
//! Owns the user-facing structs (serde, `deny_unknown_fields`), loading and validation. Every error
//! names the file, the line and the field, and unknown names get a did-you-mean. [`Location`] is the
//! shared way to say where in a data file something is. This module must not open log files (it
//! reads a webhook's `token_file` and `ca_file`, so that a missing token or CA is a profile error
//! with its line).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::detect::{Class, Severity};
use crate::incident::ChangeKind;
use crate::parse::Format;
use crate::source::SourceSpec;

/// Where in a data file something was written: `file:line` and, when known, the field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub field: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        Ok(())
    }
}

impl Location {
    /// The location of byte `offset` of `text` (a file called `file`).
    pub fn at(file: &str, text: &str, offset: usize, field: Option<&str>) -> Location {
        let line = text
            .get(..offset.min(text.len()))
            .map_or(1, |before| before.matches('\n').count() + 1);
        Location {
            file: file.to_string(),
            line,
            field: field.map(str::to_string),
        }
    }

    /// The location of a toml parse error: its span, and the key written on that line if any.
    pub fn of_toml_error(file: &str, text: &str, err: &toml::de::Error) -> Location {
        let offset = err.span().map_or(0, |s| s.start);
        let mut loc = Location::at(file, text, offset, None);
        let line_text = text.lines().nth(loc.line.saturating_sub(1)).unwrap_or("");
        if let Some((key, _)) = line_text.split_once('=') {
            let key = key.trim();
            if !key.is_empty() && !key.starts_with('[') {
                loc.field = Some(key.to_string());
            }
        }
        loc
    }
}

/// A size as people write it: `1G`, `512M`, `100k`, `1.5GiB`, `2000` (bytes). Units are binary
/// (K = 1024); a `B`, `iB` or `b` after the unit is accepted.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("size `{text}`: expected a number and a unit, like 1G or 512M"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        other => {
            return Err(format!(
                "size `{text}`: unknown unit `{other}` (use K, M, G or T)"
            ));
        }
    };
    let bytes = value * scale as f64;
    if !(bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64) {
        return Err(format!("size `{text}` is out of range"));
    }
    Ok(bytes as u64)
}

/// The closest of `candidates` to `name`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A toml error message with a did-you-mean added for unknown fields.
pub fn toml_message(err: &toml::de::Error) -> String {
    let message = err.message().trim().to_string();
    // serde says: unknown field `formt`, expected one of `service`, `format`, `path`
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message;
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match did_you_mean(unknown, candidates) {
        Some(best) => format!("{message} (did you mean `{best}`?)"),
        None => message,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// An ingest profile: the sources to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub file: PathBuf,
    pub sources: Vec<SourceSpec>,
    /// `[retention]`: how long `run` keeps events.
    pub retention: Option<crate::store::retention::Policy>,
    /// `[[webhook]]`: where `run` sends incident changes.
    pub webhooks: Vec<Webhook>,
    /// `[clickhouse]`: where `run` and `backfill` also write events and incident changes.
    pub clickhouse: Option<ClickHouseProfile>,
    /// `[[redact]]`: the operator's own secret patterns, applied after the built-in ones.
    pub redactions: Vec<crate::parse::redact::CustomPattern>,
    /// `[[maintenance]]`: recurring windows in which matching incidents page nobody.
    pub maintenance: Vec<crate::incident::maintenance::Maintenance>,
}

/// The `[clickhouse]` table of a profile, validated (command-line flags override each part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseProfile {
    /// URL, database, credentials, batch and buffer sizes; `agent` is empty unless `host` is set.
    pub sink: crate::store::clickhouse_sink::SinkConfig,
    /// `local_index = false`: ClickHouse alone holds the events.
    pub local_index: bool,
}

/// How long a webhook waits for an answer unless its table says otherwise.
pub const WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One `[[webhook]]` of a profile, validated: where to POST which incident changes, in which shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Unique in the profile; one word of letters, digits, `-` and `_` (it names the webhook's
    /// cursor file in the data dir, and is the Alertmanager payload's `receiver`).
    pub name: String,
    /// An `http://` or `https://` URL.
    pub url: String,
    pub kind: WebhookKind,
    /// Only incidents of these classes (empty: all).
    pub classes: Vec<Class>,
    /// Only incidents of these severities (empty: all).
    pub severities: Vec<Severity>,
    /// Only incidents touching one of these services (empty: all).
    pub services: Vec<String>,
    /// Only these kinds of change (empty: all).
    pub changes: Vec<ChangeKind>,
    /// Sent as `Authorization: Bearer TOKEN` (read from `token_file`).
    pub token: Option<WebhookToken>,
    /// How long one attempt may take.
    pub timeout: std::time::Duration,
    /// `ca_file`, resolved: the extra CA certificates an https receiver's certificate may chain
    /// to, besides the system's roots.
    pub ca: Option<WebhookCa>,
}

/// A webhook's `ca_file`: where it is and the certificates it holds (DER, each checked to be
/// usable as a trust anchor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCa {
    pub path: PathBuf,
    pub certs: Vec<rustls::pki_types::CertificateDer<'static>>,
}

/// The payload shape of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    /// Alertmanager's webhook payload (version 4): anything that takes Alertmanager's webhooks.
    Alertmanager,
    /// The change object of the live feed (`seq`, `kind`, `at`, `incident`).
    Json,
}

impl WebhookKind {
    pub const NAMES: [&'static str; 2] = ["alertmanager", "json"];
}

/// A webhook's bearer token; `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookToken(pub String);

impl fmt::Debug for WebhookToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookToken(…)")
    }
}

impl Webhook {
    /// Whether this webhook wants `change` (its filters; each empty one admits everything). A
    /// change of an incident under a silence is never sent: silenced means nobody is paged.
    pub fn admits(&self, change: &crate::incident::Change) -> bool {
        let incident = &change.incident;
        incident.silenced_by.is_none()
            && (self.changes.is_empty() || self.changes.contains(&change.kind))
            && (self.classes.is_empty() || self.classes.contains(&incident.class))
            && (self.severities.is_empty() || self.severities.contains(&incident.severity))
            && (self.services.is_empty()
                || incident.services.iter().any(|s| self.services.contains(s)))
    }
}

/// One `[[webhook]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookEntry {
    name: Spanned<String>,
    url: Spanned<String>,
    /// `alertmanager` or `json`.
    kind: Spanned<String>,
    /// A class or a list of classes.
    #[serde(default)]
    class: Option<Spanned<toml::Value>>,
    /// A severity or a list of them.
    #[serde(default)]
    severity: Option<Spanned<toml::Value>>,
    /// A service or a list of them.
    #[serde(default)]
    service: Option<Spanned<toml::Value>>,
    /// Change kinds: `opened`, `updated`, `escalated`, `resolved`, `reopened`.
    #[serde(default)]
    changes: Option<Spanned<toml::Value>>,
    /// A file holding the bearer token; relative to the profile's folder.
    #[serde(default)]
    token_file: Option<Spanned<String>>,
    /// How long one attempt may take (`10s`, `1m`).
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    /// PEM file of extra CA certificates trusted for an https receiver; relative to the
    /// profile's folder.
    #[serde(default)]
    ca_file: Option<Spanned<String>>,
}

/// The `[clickhouse]` table of a profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClickHouseEntry {
    /// `http://host:8123/database` (or `clickhouse://…`).
    url: Spanned<String>,
    #[serde(default)]
    user: Option<Spanned<String>>,
    /// A file holding the password; relative to the profile's folder.
    #[serde(default)]
    password_file: Option<Spanned<String>>,
    /// This agent's name in the `agent` (and default `host`) column; default: the host name.
    #[serde(default)]
    host: Option<Spanned<String>>,
    /// Rows per batch.
    #[serde(default)]
    batch_rows: Option<Spanned<i64>>,
    /// Spool size on disk before ingestion waits (`1G`, `200M`).
    #[serde(default)]
    buffer: Option<Spanned<String>>,
    /// Also keep the events in the local index (default true).
    #[serde(default)]
    local_index: Option<bool>,
}

/// One `[[redact]]` table of a profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactEntry {
    /// Names the pattern in errors.
    name: Spanned<String>,
    /// A regex (Rust syntax); its match, or its `secret` group, becomes `***`.
    pattern: Spanned<String>,
    /// Text every match contains; lines without any never run the regex.
    #[serde(default)]
    literals: Option<Spanned<Vec<String>>>,
}

/// One `[[maintenance]]` table of a profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceEntry {
    /// One word, unique in the profile (it names each window: `mnt-NAME-20261201T0300Z`).
    name: Spanned<String>,
    /// When each window starts: five cron fields in UTC (`0 3 1 * *`) or `@weekly`, ….
    cron: Spanned<String>,
    /// How long each window lasts (`1h`, `30m`).
    #[serde(rename = "for")]
    for_: Spanned<String>,
    /// What it silences, as `silence add --match` takes it (`class=db-down service=postgres`).
    #[serde(rename = "match")]
    matchers: Spanned<String>,
    /// Why (shown with each silenced incident's window); default: the window's name.
    #[serde(default)]
    reason: Option<String>,
}

/// The `[retention]` table of a profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionEntry {
    /// Delete events older than this (`730d`, `90d`, `12h`).
    older_than: Spanned<String>,
    /// How often `run` applies it (default 1h).
    #[serde(default)]
    every: Option<Spanned<String>>,
}

/// One `[[source]]` table of a profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceEntry {
    /// Service name the events carry (`app`, `worker`, `postgres`, …).
    service: Spanned<String>,
    /// One of the formats (`pino`, `postgres`, …); `auto` when absent.
    #[serde(default)]
    format: Option<Spanned<String>>,
    /// A path or glob; relative paths are relative to the profile's folder.
    path: Spanned<String>,
    /// PostgreSQL `log_line_prefix` for the `postgres` format (detected when absent).
    #[serde(default)]
    prefix: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    /// What the profile is for (shown by `status`).
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    source: Vec<SourceEntry>,
    #[serde(default)]
    retention: Option<RetentionEntry>,
    #[serde(default)]
    webhook: Vec<WebhookEntry>,
    #[serde(default)]
    clickhouse: Option<ClickHouseEntry>,
    #[serde(default)]
    redact: Vec<RedactEntry>,
    #[serde(default)]
    maintenance: Vec<MaintenanceEntry>,
}

/// Read and validate a profile file.
pub fn load_profile(path: &Path) -> Result<Profile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_profile(&path.display().to_string(), &text, base)
}

/// Validate a profile's text; `file` names it in errors, `base` anchors relative paths.
pub fn parse_profile(file: &str, text: &str, base: &Path) -> Result<Profile, ConfigError> {
    let parsed: ProfileFile = toml::from_str(text).map_err(|e| ConfigError::Invalid {
        location: Location::of_toml_error(file, text, &e),
        message: toml_message(&e),
    })?;
    let invalid =
        |span: std::ops::Range<usize>, field: &str, message: String| ConfigError::Invalid {
            location: Location::at(file, text, span.start, Some(field)),
            message,
        };
    if parsed.source.is_empty() {
        return Err(ConfigError::Invalid {
            location: Location {
                file: file.to_string(),
                line: 1,
                field: Some("source".into()),
            },
            message: "the profile names no [[source]]".into(),
        });
    }
    let mut sources = Vec::with_capacity(parsed.source.len());
    for entry in parsed.source {
        let service = entry.service.get_ref().trim().to_string();
        if service.is_empty() || service.contains(char::is_whitespace) {
            return Err(invalid(
                entry.service.span(),
                "service",
                format!("service name `{service}` must be one word"),
            ));
        }
        let mut format = match &entry.format {
            None => Format::Auto,
            Some(f) => f.get_ref().parse::<Format>().map_err(|message| {
                let message = match did_you_mean(f.get_ref(), Format::NAMES) {
                    Some(best) => format!("{message}; did you mean `{best}`?"),
                    None => message,
                };
                invalid(f.span(), "format", message)
            })?,
        };
        if let Some(prefix) = &entry.prefix {
            match &mut format {
                Format::Postgres { prefix: p } => *p = Some(prefix.get_ref().clone()),
                other => {
                    return Err(invalid(
                        prefix.span(),
                        "prefix",
                        format!("`prefix` applies to the postgres format, not `{other}`"),
                    ));
                }
            }
        }
        let raw_path = entry.path.get_ref();
        if raw_path.trim().is_empty() {
            return Err(invalid(entry.path.span(), "path", "path is empty".into()));
        }
        let path = PathBuf::from(raw_path);
        let path = if path.is_absolute() {
            path
        } else {
            base.join(path)
        };
        sources.push(SourceSpec {
            service,
            format,
            path,
        });
    }
    let retention = match &parsed.retention {
        None => None,
        Some(r) => {
            let duration = |value: &Spanned<String>, field: &str| {
                crate::detect::rules::parse_duration(value.get_ref())
                    .map_err(|message| invalid(value.span(), field, message))
            };
            let older_than_secs = duration(&r.older_than, "older_than")?;
            let every = match &r.every {
                Some(e) => std::time::Duration::from_secs(duration(e, "every")?.unsigned_abs()),
                None => crate::store::retention::DEFAULT_EVERY,
            };
            Some(crate::store::retention::Policy {
                older_than_secs,
                every,
            })
        }
    };
    let webhooks = webhooks(&parsed.webhook, base, &invalid)?;
    let clickhouse = match &parsed.clickhouse {
        Some(entry) => {
            let retention_days = retention.map(|r| {
                u32::try_from(r.older_than_secs.div_euclid(86_400).max(1)).unwrap_or(u32::MAX)
            });
            Some(clickhouse(entry, base, retention_days, &invalid)?)
        }
        None => None,
    };
    let mut redactions = Vec::with_capacity(parsed.redact.len());
    for entry in &parsed.redact {
        let name = entry.name.get_ref().trim();
        if name.is_empty() {
            return Err(invalid(entry.name.span(), "name", "name is empty".into()));
        }
        if redactions
            .iter()
            .any(|p: &crate::parse::redact::CustomPattern| p.name == name)
        {
            return Err(invalid(
                entry.name.span(),
                "name",
                format!("a second [[redact]] named `{name}`: names must be unique"),
            ));
        }
        let literals = entry
            .literals
            .as_ref()
            .map(|l| l.get_ref().clone())
            .unwrap_or_default();
        let pattern =
            crate::parse::redact::CustomPattern::new(name, entry.pattern.get_ref(), literals)
                .map_err(|(field, message)| {
                    let span = match (field, &entry.literals) {
                        ("literals", Some(l)) => l.span(),
                        _ => entry.pattern.span(),
                    };
                    invalid(span, field, format!("[[redact]] `{name}`: {message}"))
                })?;
        redactions.push(pattern);
    }
    if redactions.len() > crate::parse::redact::MAX_CUSTOM_PATTERNS {
        let span = parsed.redact[crate::parse::redact::MAX_CUSTOM_PATTERNS]
            .name
            .span();
        return Err(invalid(
            span,
            "redact",
            format!(
                "at most {} [[redact]] patterns",
                crate::parse::redact::MAX_CUSTOM_PATTERNS
            ),
        ));
    }
    let maintenance = maintenance(&parsed.maintenance, &invalid)?;
    Ok(Profile {
        file: PathBuf::from(file),
        sources,
        retention,
        webhooks,
        clickhouse,
        redactions,
        maintenance,
    })
}

/// Validate the `[[maintenance]]` tables.
fn maintenance(
    entries: &[MaintenanceEntry],
    invalid: &dyn Fn(std::ops::Range<usize>, &str, String) -> ConfigError,
) -> Result<Vec<crate::incident::maintenance::Maintenance>, ConfigError> {
    use crate::incident::maintenance::{Cron, Maintenance};
    let mut windows: Vec<Maintenance> = Vec::with_capacity(entries.len());
    for entry in entries {
        let name = entry.name.get_ref().trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                entry.name.span(),
                "name",
                format!(
                    "maintenance name `{name}` must be one word of letters, digits, `-` and `_`"
                ),
            ));
        }
        if windows.iter().any(|w| w.name == name) {
            return Err(invalid(
                entry.name.span(),
                "name",
                format!("a second [[maintenance]] named `{name}`: names must be unique"),
            ));
        }
        let cron = Cron::parse(entry.cron.get_ref())
            .map_err(|message| invalid(entry.cron.span(), "cron", message))?;
        let for_secs = crate::detect::rules::parse_duration(entry.for_.get_ref())
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                invalid(
                    entry.for_.span(),
                    "for",
                    format!(
                        "`{}` is not a positive duration (1h, 30m)",
                        entry.for_.get_ref()
                    ),
                )
            })?;
        let matchers = crate::incident::silence::parse_matchers(entry.matchers.get_ref())
            .map_err(|e| invalid(entry.matchers.span(), "match", e.to_string()))?;
        windows.push(Maintenance {
            name: name.to_string(),
            cron,
            for_secs,
            matchers,
            reason: entry
                .reason
                .clone()
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| format!("maintenance window {name}")),
        });
    }
    Ok(windows)
}

/// Validate the `[clickhouse]` table.
fn clickhouse(
    entry: &ClickHouseEntry,
    base: &Path,
    retention_days: Option<u32>,
    invalid: &dyn Fn(std::ops::Range<usize>, &str, String) -> ConfigError,
) -> Result<ClickHouseProfile, ConfigError> {
    use crate::store::clickhouse_sink::SinkConfig;
    let agent = match &entry.host {
        Some(host) => {
            let name = host.get_ref().trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(invalid(
                    host.span(),
                    "host",
                    format!("host `{name}` must be one word"),
                ));
            }
            name.to_string()
        }
        None => String::new(),
    };
    let mut sink = SinkConfig::new(entry.url.get_ref().trim(), agent)
        .map_err(|e| invalid(entry.url.span(), "url", e.to_string()))?;
    sink.retention_days = retention_days;
    sink.user = entry.user.as_ref().map(|u| u.get_ref().clone());
    if let Some(file) = &entry.password_file {
        let path = base.join(file.get_ref());
        let text = std::fs::read_to_string(&path).map_err(|e| {
            invalid(
                file.span(),
                "password_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        sink.password = Some(text.trim_end_matches(['\r', '\n']).to_string());
    }
    if let Some(rows) = &entry.batch_rows {
        sink.batch_rows = usize::try_from(*rows.get_ref())
            .ok()
            .filter(|n| (1..=10_000_000).contains(n))
            .ok_or_else(|| {
                invalid(
                    rows.span(),
                    "batch_rows",
                    "batch_rows must be from 1 to 10000000".into(),
                )
            })?;
    }
    if let Some(buffer) = &entry.buffer {
        sink.buffer_max = parse_size(buffer.get_ref())
            .map_err(|message| invalid(buffer.span(), "buffer", message))?;
    }
    Ok(ClickHouseProfile {
        sink,
        local_index: entry.local_index.unwrap_or(true),
    })
}

/// Read the `[[webhook]]` tables of a file (a profile, whose other tables are checked but not
/// needed, or a file of webhooks alone): what `logwarden demo --webhooks FILE` sends to.
pub fn load_webhooks(path: &Path) -> Result<Vec<Webhook>, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: file.clone(),
        source,
    })?;
    let parsed: ProfileFile = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
        location: Location::of_toml_error(&file, &text, &e),
        message: toml_message(&e),
    })?;
    let invalid =
        |span: std::ops::Range<usize>, field: &str, message: String| ConfigError::Invalid {
            location: Location::at(&file, &text, span.start, Some(field)),
            message,
        };
    let base = path.parent().unwrap_or(Path::new("."));
    webhooks(&parsed.webhook, base, &invalid)
}

/// Validate the `[[webhook]]` tables; names are unique.
fn webhooks(
    entries: &[WebhookEntry],
    base: &Path,
    invalid: &dyn Fn(std::ops::Range<usize>, &str, String) -> ConfigError,
) -> Result<Vec<Webhook>, ConfigError> {
    let mut hooks: Vec<Webhook> = Vec::with_capacity(entries.len());
    for entry in entries {
        let hook = webhook(entry, base, invalid)?;
        if hooks.iter().any(|w| w.name == hook.name) {
            return Err(invalid(
                entry.name.span(),
                "name",
                format!(
                    "a second webhook named `{}`: names must be unique",
                    hook.name
                ),
            ));
        }
        hooks.push(hook);
    }
    Ok(hooks)
}

/// Validate one `[[webhook]]` table.
fn webhook(
    entry: &WebhookEntry,
    base: &Path,
    invalid: &dyn Fn(std::ops::Range<usize>, &str, String) -> ConfigError,
) -> Result<Webhook, ConfigError> {
    let name = entry.name.get_ref().trim().to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(
            entry.name.span(),
            "name",
            format!("webhook name `{name}` must be one word of letters, digits, `-` and `_`"),
        ));
    }
    let url = entry.url.get_ref().trim().to_string();
    let parsed_url = reqwest::Url::parse(&url).map_err(|e| {
        invalid(
            entry.url.span(),
            "url",
            format!("`{url}` is not a URL: {e}"),
        )
    })?;
    if !matches!(parsed_url.scheme(), "http" | "https") || parsed_url.host_str().is_none() {
        return Err(invalid(
            entry.url.span(),
            "url",
            format!("`{url}` must be an http:// or https:// URL with a host"),
        ));
    }
    let kind = match entry.kind.get_ref().trim() {
        "alertmanager" => WebhookKind::Alertmanager,
        "json" => WebhookKind::Json,
        other => {
            let hint = did_you_mean(other, WebhookKind::NAMES)
                .map(|best| format!("; did you mean `{best}`?"))
                .unwrap_or_default();
            return Err(invalid(
                entry.kind.span(),
                "kind",
                format!("unknown webhook kind `{other}` (alertmanager or json){hint}"),
            ));
        }
    };
    let classes = names(entry.class.as_ref(), "class", invalid, |n| {
        n.parse::<Class>()
            .map_err(|_| known(n, Class::ALL.iter().map(|c| c.as_str())))
    })?;
    let severities = names(entry.severity.as_ref(), "severity", invalid, |n| {
        n.parse::<Severity>()
            .map_err(|_| known(n, Severity::ALL.iter().map(|s| s.as_str())))
    })?;
    let services = names(entry.service.as_ref(), "service", invalid, |n| {
        if n.contains(char::is_whitespace) {
            Err(format!("service name `{n}` must be one word"))
        } else {
            Ok(n.to_string())
        }
    })?;
    let changes = names(entry.changes.as_ref(), "changes", invalid, |n| {
        ChangeKind::ALL
            .into_iter()
            .find(|k| k.as_str() == n)
            .ok_or_else(|| known(n, ChangeKind::ALL.iter().map(|k| k.as_str())))
    })?;
    let token = match &entry.token_file {
        None => None,
        Some(f) => {
            let path = base.join(f.get_ref());
            let text = std::fs::read_to_string(&path)
                .map_err(|e| invalid(f.span(), "token_file", format!("{}: {e}", path.display())))?;
            let token = text.trim();
            if token.is_empty() || token.contains(['\r', '\n']) {
                return Err(invalid(
                    f.span(),
                    "token_file",
                    format!("{} must hold one token on one line", path.display()),
                ));
            }
            Some(WebhookToken(token.to_string()))
        }
    };
    let timeout = match &entry.timeout {
        None => WEBHOOK_TIMEOUT,
        Some(t) => {
            let secs = crate::detect::rules::parse_duration(t.get_ref())
                .map_err(|message| invalid(t.span(), "timeout", message))?;
            std::time::Duration::from_secs(secs.unsigned_abs())
        }
    };
    let ca = match &entry.ca_file {
        None => None,
        Some(f) => {
            let path = base.join(f.get_ref());
            let certs =
                read_ca_file(&path).map_err(|message| invalid(f.span(), "ca_file", message))?;
            Some(WebhookCa { path, certs })
        }
    };
    Ok(Webhook {
        name,
        url,
        kind,
        classes,
        severities,
        services,
        changes,
        token,
        timeout,
        ca,
    })
}

/// The CA certificates of a PEM file: at least one, each usable as a trust anchor.
fn read_ca_file(path: &Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM file of certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    for (n, cert) in certs.iter().enumerate() {
        rustls::RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| {
                format!(
                    "{}: certificate {} of {} is not usable as a CA: {e}",
                    path.display(),
                    n + 1,
                    certs.len()
                )
            })?;
    }
    Ok(certs)
}

/// "unknown `x` (known: a, b, c); did you mean `y`?"
fn known<'a>(name: &str, all: impl Iterator<Item = &'a str> + Clone) -> String {
    let hint = did_you_mean(name, all.clone())
        .map(|best| format!("; did you mean `{best}`?"))
        .unwrap_or_default();
    let list: Vec<&str> = all.collect();
    format!("unknown `{name}` (known: {}){hint}", list.join(", "))
}

/// A filter field: a string or an array of strings, each read by `read`.
fn names<T>(
    value: Option<&Spanned<toml::Value>>,
    field: &str,
    invalid: &dyn Fn(std::ops::Range<usize>, &str, String) -> ConfigError,
    read: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let wrong = || {
        invalid(
            value.span(),
            field,
            "expected a string or an array of strings".into(),
        )
    };
    let texts: Vec<&str> = match value.get_ref() {
        toml::Value::String(s) => vec![s.as_str()],
        toml::Value::Array(items) => {
            let mut texts = Vec::with_capacity(items.len());
            for item in items {
                texts.push(item.as_str().ok_or_else(wrong)?);
            }
            texts
        }
        _ => return Err(wrong()),
    };
    let mut out = Vec::with_capacity(texts.len());
    for text in texts {
        out.push(read(text.trim()).map_err(|message| invalid(value.span(), field, message))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
description = "test"

[[source]]
service = "app"
format = "pino"
path = "/var/log/app.log"

[[source]]
service = "postgres"
format = "postgres"
prefix = "%m [%p] %q%u@%d "
path = "pg/*.log"
"#;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("100k"), Ok(102_400));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2000"), Ok(2000));
        assert_eq!(parse_size("64 MB"), Ok(64 << 20));
        assert!(parse_size("1X").unwrap_err().contains("unknown unit `x`"));
        assert!(parse_size("G").unwrap_err().contains("expected a number"));
        assert!(parse_size("").is_err());
    }

    #[test]
    fn a_profile_sets_retention_and_says_where_it_is_wrong() {
        assert_eq!(
            parse_profile("p.toml", GOOD, Path::new("/"))
                .unwrap()
                .retention,
            None
        );
        let text = format!("{GOOD}\n[retention]\nolder_than = \"730d\"\n");
        let p = parse_profile("p.toml", &text, Path::new("/")).unwrap();
        assert_eq!(
            p.retention,
            Some(crate::store::retention::Policy {
                older_than_secs: 730 * 86_400,
                every: crate::store::retention::DEFAULT_EVERY,
            })
        );
        let text = format!("{GOOD}\n[retention]\nolder_than = \"2 years\"\n");
        let err = parse_profile("p.toml", &text, Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("field `older_than`"), "{err}");
        let text = format!("{GOOD}\n[retention]\nolder = \"730d\"\n");
        let err = parse_profile("p.toml", &text, Path::new("/")).unwrap_err();
        assert!(err.to_string().contains("older_than"), "{err}");
    }

    #[test]
    fn a_clickhouse_table_sets_the_sink_and_says_where_it_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ch.pass"), "pa55\n").unwrap();
        let text = format!(
            "{GOOD}\n[retention]\nolder_than = \"730d\"\n\n[clickhouse]\nurl = \"clickhouse://ch:8123/logs\"\n\
             user = \"lw\"\npassword_file = \"ch.pass\"\nhost = \"app-1\"\nbatch_rows = 1000\n\
             buffer = \"200M\"\nlocal_index = false\n"
        );
        let p = parse_profile("p.toml", &text, dir.path()).unwrap();
        let ch = p.clickhouse.unwrap();
        assert!(!ch.local_index);
        let sink = ch.sink;
        assert_eq!(
            (sink.url.as_str(), sink.database.as_str()),
            ("http://ch:8123", "logs")
        );
        assert_eq!(sink.user.as_deref(), Some("lw"));
        assert_eq!(sink.password.as_deref(), Some("pa55"));
        assert_eq!(sink.agent, "app-1");
        assert_eq!((sink.batch_rows, sink.buffer_max), (1000, 200 << 20));
        assert_eq!(sink.retention_days, Some(730));
        assert!(
            parse_profile("p.toml", GOOD, dir.path())
                .unwrap()
                .clickhouse
                .is_none()
        );

        let wrong = |table: &str| {
            let text = format!("{GOOD}\n[clickhouse]\n{table}");
            parse_profile("p.toml", &text, dir.path())
                .unwrap_err()
                .to_string()
        };
        let line = GOOD.lines().count() + 3;
        let msg = wrong("url = \"ch:8123/logs\"\n");
        assert!(
            msg.starts_with(&format!("p.toml:{line}: field `url`")),
            "{msg}"
        );
        let msg = wrong("url = \"http://ch:8123/logs\"\nbatch_rows = 0\n");
        assert!(msg.contains("field `batch_rows`"), "{msg}");
        let msg = wrong("url = \"http://ch:8123/logs\"\nbuffer = \"lots\"\n");
        assert!(msg.contains("field `buffer`"), "{msg}");
        let msg = wrong("url = \"http://ch:8123/logs\"\npassword_file = \"nope\"\n");
        assert!(msg.contains("field `password_file`"), "{msg}");
        let msg = wrong("url = \"http://ch:8123/logs\"\nbatch = 10\n");
        assert!(msg.contains("did you mean `batch_rows`"), "{msg}");
    }

    #[test]
    fn a_profile_reads_services_formats_and_paths() {
        let p = parse_profile("p.toml", GOOD, Path::new("/etc/lw")).unwrap();
        assert_eq!(p.sources.len(), 2);
        assert_eq!(p.sources[0].format, Format::Pino);
        assert_eq!(
            p.sources[1].format,
            Format::Postgres {
                prefix: Some("%m [%p] %q%u@%d ".into())
            }
        );
        assert_eq!(p.sources[1].path, PathBuf::from("/etc/lw/pg/*.log"));
    }

    #[test]
    fn a_wrong_key_names_file_line_field_and_suggests() {
        let text = "[[source]]\nservice = \"app\"\nformt = \"pino\"\npath = \"/x\"\n";
        let err = parse_profile("ingest/x.toml", text, Path::new(".")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("ingest/x.toml:3"), "{msg}");
        assert!(msg.contains("did you mean `format`"), "{msg}");
    }

    #[test]
    fn a_wrong_format_names_its_line_and_field() {
        let text = "[[source]]\nservice = \"app\"\npath = \"/x\"\nformat = \"pinoo\"\n";
        let msg = parse_profile("f.toml", text, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("f.toml:4: field `format`"), "{msg}");
        assert!(msg.contains("did you mean `pino`"), "{msg}");
    }

    #[test]
    fn a_prefix_on_a_non_postgres_source_is_refused() {
        let text =
            "[[source]]\nservice = \"app\"\nformat = \"pino\"\nprefix = \"%m\"\npath = \"/x\"\n";
        let msg = parse_profile("f.toml", text, Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("f.toml:4: field `prefix`"), "{msg}");
    }

    #[test]
    fn webhooks_read_their_filters_token_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pager.token"), "s3cret\n").unwrap();
        let text = format!(
            "{GOOD}\n[[webhook]]\nname = \"pager\"\nurl = \"http://127.0.0.1:9093/hook\"\n\
             kind = \"alertmanager\"\nseverity = [\"critical\", \"error\"]\n\
             changes = [\"opened\", \"resolved\"]\nservice = \"postgres\"\n\
             token_file = \"pager.token\"\ntimeout = \"3s\"\n\n\
             [[webhook]]\nname = \"bot\"\nurl = \"http://localhost/x\"\nkind = \"json\"\n"
        );
        let p = parse_profile("p.toml", &text, dir.path()).unwrap();
        assert_eq!(p.webhooks.len(), 2);
        let pager = &p.webhooks[0];
        assert_eq!(pager.kind, WebhookKind::Alertmanager);
        assert_eq!(pager.severities, [Severity::Critical, Severity::Error]);
        assert_eq!(pager.changes, [ChangeKind::Opened, ChangeKind::Resolved]);
        assert_eq!(pager.services, ["postgres"]);
        assert_eq!(pager.token, Some(WebhookToken("s3cret".into())));
        assert_eq!(pager.timeout, std::time::Duration::from_secs(3));
        assert!(!format!("{pager:?}").contains("s3cret"));
        let bot = &p.webhooks[1];
        assert_eq!(bot.kind, WebhookKind::Json);
        assert!(bot.classes.is_empty() && bot.changes.is_empty() && bot.token.is_none());
        assert_eq!(bot.timeout, WEBHOOK_TIMEOUT);
    }

    #[test]
    fn maintenance_tables_are_checked_and_named_at_their_line_and_field() {
        let profile = |body: &str| format!("{GOOD}\n[[maintenance]]\nname = \"vacuum\"\n{body}");
        let ok = parse_profile(
            "p.toml",
            &profile("cron = \"0 3 1 * *\"\nfor = \"1h\"\nmatch = \"class=db-down service=postgres\"\nreason = \"monthly VACUUM FULL\"\n"),
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(ok.maintenance.len(), 1);
        assert_eq!(ok.maintenance[0].for_secs, 3600);
        assert_eq!(ok.maintenance[0].reason, "monthly VACUUM FULL");
        let err = |body: &str| {
            parse_profile("p.toml", &profile(body), Path::new("/"))
                .unwrap_err()
                .to_string()
        };
        // GOOD has 13 lines; the table starts on line 15, its name on 16.
        let msg = err("cron = \"0 3 1 *\"\nfor = \"1h\"\nmatch = \"class=db-down\"\n");
        assert!(msg.starts_with("p.toml:17: field `cron`"), "{msg}");
        assert!(msg.contains("five"), "{msg}");
        let msg = err("cron = \"@monthly\"\nfor = \"soon\"\nmatch = \"class=db-down\"\n");
        assert!(msg.starts_with("p.toml:18: field `for`"), "{msg}");
        let msg = err("cron = \"@monthly\"\nfor = \"1h\"\nmatch = \"class=db-dwn\"\n");
        assert!(msg.starts_with("p.toml:19: field `match`"), "{msg}");
        assert!(msg.contains("unknown class `db-dwn`"), "{msg}");
        let msg = err("cron = \"@monthly\"\nfor = \"1h\"\nmatch = \"host=db1\"\n");
        assert!(msg.contains("unknown field `host`"), "{msg}");
        let msg = err(
            "cron = \"@monthly\"\nfor = \"1h\"\nmatch = \"class=db-down\"\n\n[[maintenance]]\nname = \"vacuum\"\ncron = \"@daily\"\nfor = \"1h\"\nmatch = \"class=redis\"\n",
        );
        assert!(msg.starts_with("p.toml:22: field `name`"), "{msg}");
        assert!(msg.contains("unique"), "{msg}");
    }

    #[test]
    fn redact_tables_are_checked_and_named_at_their_line_and_field() {
        let profile = |body: &str| format!("{GOOD}\n[[redact]]\nname = \"internal\"\n{body}");
        let ok = parse_profile(
            "p.toml",
            &profile("pattern = 'nlint_[0-9a-f]{16}'\nliterals = [\"nlint_\"]\n"),
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(ok.redactions.len(), 1);
        assert_eq!(ok.redactions[0].literals, ["nlint_"]);
        let err = |body: &str| {
            parse_profile("p.toml", &profile(body), Path::new("/"))
                .unwrap_err()
                .to_string()
        };
        // GOOD has 13 lines; the table starts on line 15, its name on 16.
        let msg = err("pattern = 'nlint_[0-9a-f'\n");
        assert!(msg.starts_with("p.toml:17: field `pattern`"), "{msg}");
        assert!(msg.contains("does not compile"), "{msg}");
        let msg = err("pattern = 'x*'\n");
        assert!(msg.starts_with("p.toml:17: field `pattern`"), "{msg}");
        assert!(msg.contains("empty text"), "{msg}");
        let msg = err("pattern = '(?P<tok>x+)'\n");
        assert!(msg.contains("`secret`"), "{msg}");
        let msg = err("pattern = 'x+'\nliterals = [\"\"]\n");
        assert!(msg.starts_with("p.toml:18: field `literals`"), "{msg}");
        let msg = err("pattern = 'x+'\nliteral = [\"x\"]\n");
        assert!(msg.starts_with("p.toml:18"), "{msg}");
        assert!(msg.contains("did you mean `literals`"), "{msg}");
    }

    #[test]
    fn a_wrong_webhook_names_file_line_and_field() {
        let hook = |body: &str| format!("{GOOD}\n[[webhook]]\nname = \"pager\"\n{body}");
        let err = |body: &str| {
            parse_profile("p.toml", &hook(body), Path::new("/nonexistent"))
                .unwrap_err()
                .to_string()
        };
        // GOOD has 13 lines; the table starts on line 15, its name on 16.
        let msg = err("url = \"http://x/\"\nkind = \"alertmanger\"\n");
        assert!(msg.starts_with("p.toml:18: field `kind`"), "{msg}");
        assert!(msg.contains("did you mean `alertmanager`"), "{msg}");
        let msg = err("url = \"http://x/\"\nkind = \"json\"\nseverity = \"critcal\"\n");
        assert!(msg.starts_with("p.toml:19: field `severity`"), "{msg}");
        assert!(msg.contains("did you mean `critical`"), "{msg}");
        let msg = err("url = \"http://x/\"\nkind = \"json\"\nchanges = [\"opened\", 3]\n");
        assert!(msg.starts_with("p.toml:19: field `changes`"), "{msg}");
        let msg = err("url = \"ftp://x/\"\nkind = \"json\"\n");
        assert!(msg.starts_with("p.toml:17: field `url`"), "{msg}");
        let msg = err("url = \"http://x/\"\nkind = \"json\"\nca_file = \"none.pem\"\n");
        assert!(msg.starts_with("p.toml:19: field `ca_file`"), "{msg}");
        assert!(msg.contains("none.pem"), "{msg}");
        let msg = err("url = \"http://x/\"\nkind = \"json\"\ntoken_file = \"none\"\n");
        assert!(msg.starts_with("p.toml:19: field `token_file`"), "{msg}");
        let msg = err("url = \"http://x/\"\nkind = \"json\"\ntimout = \"5s\"\n");
        assert!(msg.starts_with("p.toml:19"), "{msg}");
        assert!(msg.contains("did you mean `timeout`"), "{msg}");
        let msg = err("url = \"http://x/\"\nkind = \"json\"\ntimeout = \"5 s\"\n");
        assert!(msg.starts_with("p.toml:19: field `timeout`"), "{msg}");
        let twice = format!(
            "{}\n[[webhook]]\nname = \"pager\"\nurl = \"http://y/\"\nkind = \"json\"\n",
            hook("url = \"http://x/\"\nkind = \"json\"\n")
        );
        let msg = parse_profile("p.toml", &twice, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("p.toml:21: field `name`"), "{msg}");
    }

    #[test]
    fn an_https_webhook_reads_its_ca_file_and_a_wrong_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("empty.pem"), "no certificate here\n").unwrap();
        std::fs::write(
            dir.path().join("broken.pem"),
            "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("junk.pem"),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let hook = |ca: &str| {
            format!(
                "{GOOD}\n[[webhook]]\nname = \"pager\"\nurl = \"https://pager.example/hook\"\n\
                 kind = \"json\"\n{ca}"
            )
        };
        let p = parse_profile("p.toml", &hook(""), dir.path()).unwrap();
        assert_eq!(p.webhooks[0].url, "https://pager.example/hook");
        assert_eq!(p.webhooks[0].ca, None);
        let p = parse_profile("p.toml", &hook("ca_file = \"ca.pem\"\n"), dir.path()).unwrap();
        let got = p.webhooks[0].ca.as_ref().unwrap();
        assert_eq!(got.path, dir.path().join("ca.pem"));
        assert_eq!(got.certs, [ca.der().clone()]);
        for (file, says) in [
            ("missing.pem", "missing.pem"),
            ("empty.pem", "no PEM certificate"),
            ("broken.pem", "not a PEM file"),
            ("junk.pem", "not usable as a CA"),
        ] {
            let msg = parse_profile(
                "p.toml",
                &hook(&format!("ca_file = \"{file}\"\n")),
                dir.path(),
            )
            .unwrap_err()
            .to_string();
            assert!(msg.starts_with("p.toml:19: field `ca_file`"), "{msg}");
            assert!(msg.contains(file) && msg.contains(says), "{says}: {msg}");
        }
    }

    #[test]
    fn the_shipped_profile_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ingest");
        let p = load_profile(&dir.join("newsletter.toml")).unwrap();
        let services: Vec<&str> = p.sources.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(services, ["app", "worker", "postgres", "redis", "kernel"]);
    }
}
