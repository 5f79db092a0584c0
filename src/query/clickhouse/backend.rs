//! The backend URL (`clickhouse://HOST[:PORT]/DB`, `http://…`) and the errors of asking it.

/// A ClickHouse database to ask: `clickhouse://HOST[:PORT]/DB` or `http://HOST[:PORT]/DB`.
#[derive(Clone)]
pub struct Backend {
    /// The URL as the user gave it (for messages).
    pub shown: String,
    /// `http://HOST:PORT`.
    url: String,
    pub(super) database: String,
    user: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("url", &self.shown)
            .field("user", &self.user)
            .finish()
    }
}

/// The HTTP port a ClickHouse server listens on by default.
pub const DEFAULT_PORT: u16 = 8123;

#[derive(thiserror::Error, Debug)]
pub enum BackendError {
    #[error(
        "--backend `{0}`: expected clickhouse://HOST[:PORT]/DATABASE or http://HOST[:PORT]/DATABASE"
    )]
    Url(String),
    #[error("cannot reach ClickHouse at {url}: {source}")]
    Unreachable {
        url: String,
        source: clickhouse::error::Error,
    },
    #[error(
        "ClickHouse at {url} has no table `events` in database `{database}` (a wrong database name, or no agent has written there yet)"
    )]
    NoEvents { url: String, database: String },
    #[error("ClickHouse at {url} says its version is `{text}`, which is not MAJOR.MINOR[.…]")]
    Version { url: String, text: String },
    #[error("ClickHouse at {url}: {source}")]
    Query {
        url: String,
        source: clickhouse::error::Error,
    },
    #[error("{0} reads the local index; leave out --backend")]
    LocalOnly(&'static str),
    #[error("starting the ClickHouse client: {0}")]
    Runtime(std::io::Error),
}

impl Backend {
    /// Read `url`; `user` and `password` as given by their flags.
    pub fn parse(
        url: &str,
        user: Option<String>,
        password: Option<String>,
    ) -> Result<Backend, BackendError> {
        let bad = || BackendError::Url(url.to_string());
        let rest = url
            .strip_prefix("clickhouse://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(bad)?;
        let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
        let database = path.trim_end_matches('/');
        let host_ok = !authority.is_empty()
            && !authority.contains(['@', '?', '#'])
            && !database.is_empty()
            && !database.contains(['/', '?', '#']);
        if !host_ok {
            return Err(bad());
        }
        let authority = match authority.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                authority.to_string()
            }
            Some(_) => return Err(bad()),
            None => format!("{authority}:{DEFAULT_PORT}"),
        };
        Ok(Backend {
            shown: url.to_string(),
            url: format!("http://{authority}"),
            database: database.to_string(),
            user,
            password,
        })
    }

    pub(super) fn client(&self) -> clickhouse::Client {
        // Validation off: 18.16 has no RowBinaryWithNamesAndTypes (CLICKHOUSE.md).
        let mut client = clickhouse::Client::default()
            .with_url(&self.url)
            .with_database(&self.database)
            .with_validation(false);
        if let Some(user) = &self.user {
            client = client.with_user(user);
        }
        if let Some(password) = &self.password {
            client = client.with_password(password);
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_urls() {
        let b = Backend::parse("clickhouse://ch.internal:8123/logs", None, None).unwrap();
        assert_eq!(b.url, "http://ch.internal:8123");
        assert_eq!(b.database, "logs");
        let b = Backend::parse("http://127.0.0.1/logs/", None, None).unwrap();
        assert_eq!(b.url, "http://127.0.0.1:8123");
        assert_eq!(b.database, "logs");
        for bad in [
            "ch:8123/logs",
            "clickhouse://ch:8123",
            "clickhouse://ch:8123/",
            "clickhouse://ch:port/logs",
            "https://ch:8443/logs",
            "clickhouse://u:p@ch:8123/logs",
        ] {
            assert!(Backend::parse(bad, None, None).is_err(), "{bad}");
        }
    }
}
