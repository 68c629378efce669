//! How to connect a [`PostgresQueue`].

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::Host;
use tokio_postgres::NoTls;

use super::{blocking, describe, store_error, Inner, PostgresQueue};
use crate::Result;

/// Settings for [`PostgresQueue`], connected with [`PostgresOptions::connect`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use rustf_workers::queue::PostgresOptions;
///
/// # async fn run() -> rustf_workers::Result<()> {
/// let queue = PostgresOptions::new("postgres://app:secret@db.internal/app")
///     .pool_size(32)
///     .schema("jobs")
///     .connect_timeout(Duration::from_secs(5))
///     .connect()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresOptions {
    url: String,
    pool_size: usize,
    schema: Option<String>,
    connect_timeout: Duration,
}

impl PostgresOptions {
    /// The default number of connections a queue keeps at most.
    pub const DEFAULT_POOL_SIZE: usize = 16;

    /// The default time allowed to open one connection, when the URL sets none.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Options for the database at `url` (a `postgres://` URL or a `key=value`
    /// connection string, as libpq takes them), with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: Self::DEFAULT_POOL_SIZE,
            schema: None,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// At most this many connections (at least 1). Default
    /// [`PostgresOptions::DEFAULT_POOL_SIZE`]. Every operation holds one for its
    /// statement or transaction; callers beyond the pool wait for one to come back.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Keeps the tables in schema `name` (created if missing) instead of `public`, so
    /// the queue can share an application's database, or several queues one database.
    /// The name is lower-case ASCII letters, digits and `_`, not starting with a digit;
    /// another is refused by [`connect`](Self::connect).
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = Some(name.into());
        self
    }

    /// How long opening one connection may take, when the URL does not say
    /// (`connect_timeout`). Default [`PostgresOptions::DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects, and creates or migrates the schema as needed.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store), naming the database by its URL without the
    /// password, when the URL cannot be parsed, the schema name is refused, the server
    /// cannot be reached or refuses the login, a migration fails, or the database was
    /// migrated by a newer release.
    pub async fn connect(self) -> Result<PostgresQueue> {
        let queue = self.connect_lazy()?;
        queue.ready().await?;
        Ok(queue)
    }

    /// A queue that connects (and migrates) on its first operation: no I/O now, so it
    /// can be built outside a runtime or in synchronous code. Errors of the connection
    /// come from that first operation instead.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the URL cannot be parsed or the
    /// schema name is refused.
    pub fn connect_lazy(self) -> Result<PostgresQueue> {
        let mut config = tokio_postgres::Config::from_str(&self.url)
            .map_err(|err| store_error("connecting to", &redact(&self.url), describe(&err)))?;
        let target = target_of(&config);
        if let Some(schema) = &self.schema {
            if !valid_schema(schema) {
                return Err(store_error(
                    "connecting to",
                    &target,
                    format!(
                        "schema name `{schema}` is refused: use lower-case ASCII letters, \
                         digits and `_`, not starting with a digit"
                    ),
                ));
            }
            // Every connection starts in the schema; the statements name no schema.
            let options = match config.get_options() {
                Some(given) => format!("{given} -c search_path={schema}"),
                None => format!("-c search_path={schema}"),
            };
            config.options(options);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.connect_timeout);
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                // `Fast`: a connection whose task saw the socket close is dropped, not
                // handed out; no test query per checkout.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(self.connect_timeout))
            .build()
            .map_err(|err| store_error("connecting to", &target, err.to_string()))?;
        let target: Arc<str> = target.into();
        let migrated = Arc::new(tokio::sync::OnceCell::new());
        let blocking = blocking::Blocking::new(
            config.clone(),
            target.clone(),
            self.schema.clone(),
            migrated.clone(),
        );
        Ok(PostgresQueue {
            inner: Arc::new(Inner {
                pool,
                config,
                target,
                schema: self.schema,
                migrated,
                blocking,
            }),
        })
    }
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redact(&self.url))
            .field("pool_size", &self.pool_size)
            .field("schema", &self.schema)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// The database named by `config`, as a URL without the password.
fn target_of(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]"),
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    let user = config
        .get_user()
        .map(|user| format!("{user}@"))
        .unwrap_or_default();
    let dbname = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{}/{dbname}", hosts.join(","))
}

/// `url` with any password taken out, for an error about a URL that did not parse.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
                format!("{user}@{hosts}")
            }
            None => authority.to_owned(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| !pair.starts_with("password="))
                    .collect();
                if kept.is_empty() {
                    path.to_owned()
                } else {
                    format!("{path}?{}", kept.join("&"))
                }
            }
            None => tail.to_owned(),
        };
        return format!("{scheme}://{authority}{tail}");
    }
    url.split_whitespace()
        .filter(|pair| !pair.starts_with("password="))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_taken_out_of_urls() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/app?sslmode=disable&password=x"),
            "postgres://app@db:5432/app?sslmode=disable"
        );
        assert_eq!(redact("postgresql://db/app"), "postgresql://db/app");
        assert_eq!(
            redact("host=db user=app password=s3cret dbname=app"),
            "host=db user=app dbname=app"
        );
    }
}
