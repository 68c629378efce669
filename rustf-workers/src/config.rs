//! Application settings handed to workers through their context.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Error, Result};

/// Application settings every worker can read through [`WorkerContext::config`].
///
/// An `AppConfig` is a JSON document. The application hands it to the registry once, before
/// or after first use ([`WORKER::set_config`]); runs started afterwards see the new value.
/// Values are read by dotted path: `"api.base_url"` is `root["api"]["base_url"]`, and a
/// numeric segment indexes an array (`"servers.0.host"`).
///
/// [`WorkerContext::config`]: crate::WorkerContext::config
/// [`WORKER::set_config`]: crate::WORKER::set_config
///
/// # Examples
///
/// ```
/// use rustf_workers::prelude::*;
///
/// let config = AppConfig::new(json!({ "api": { "base_url": "https://api.example", "retries": 3 } }));
/// assert_eq!(config.get::<String>("api.base_url").as_deref(), Some("https://api.example"));
/// assert_eq!(config.get::<u32>("api.retries"), Some(3));
/// assert_eq!(config.get::<u32>("api.missing"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppConfig {
    root: Value,
}

impl AppConfig {
    /// Settings from a JSON value, usually an object.
    pub fn new(root: Value) -> Self {
        Self { root }
    }

    /// Settings parsed from JSON text.
    ///
    /// # Errors
    ///
    /// [`Error::Json`] when the text is not valid JSON.
    pub fn from_json_str(text: &str) -> Result<Self> {
        Ok(Self::new(serde_json::from_str(text)?))
    }

    /// The value at a dotted path, converted to `T`; `None` when the path is missing or the
    /// value does not convert. Use [`AppConfig::try_get`] to tell those two apart.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Option<T> {
        self.try_get(path).ok().flatten()
    }

    /// The value at a dotted path, converted to `T`; `Ok(None)` when the path is missing.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] naming the path when the value is there but is not a `T`.
    pub fn try_get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
        match self.value_at(path) {
            None => Ok(None),
            Some(value) => T::deserialize(value).map(Some).map_err(|err| {
                Error::validation(format!(
                    "config value at `{path}` has the wrong type: {err}"
                ))
            }),
        }
    }

    /// The raw JSON value at a dotted path; the empty path is the whole document.
    pub fn value_at(&self, path: &str) -> Option<&Value> {
        if path.is_empty() {
            return Some(&self.root);
        }
        path.split('.')
            .try_fold(&self.root, |node, segment| match node {
                Value::Object(map) => map.get(segment),
                Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            })
    }

    /// The whole document.
    pub fn as_value(&self) -> &Value {
        &self.root
    }
}

impl From<Value> for AppConfig {
    fn from(root: Value) -> Self {
        Self::new(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_walk_objects_and_arrays() {
        let config = AppConfig::new(json!({
            "api": { "base_url": "http://x", "limits": [10, 20] },
            "flag": true
        }));
        assert_eq!(config.get::<String>("api.base_url").unwrap(), "http://x");
        assert_eq!(config.get::<u32>("api.limits.1"), Some(20));
        assert_eq!(config.get::<bool>("flag"), Some(true));
        assert_eq!(config.get::<u32>("api.limits.7"), None);
        assert_eq!(config.get::<u32>("flag.deeper"), None);
        assert_eq!(config.value_at(""), Some(config.as_value()));
    }

    #[test]
    fn wrong_types_are_errors_that_name_the_path() {
        let config = AppConfig::new(json!({ "api": { "port": "eighty" } }));
        assert_eq!(config.get::<u16>("api.port"), None);
        let err = config.try_get::<u16>("api.port").unwrap_err();
        assert!(err.is_validation());
        assert!(err.to_string().contains("`api.port`"), "{err}");
        assert!(config.try_get::<u16>("api.host").unwrap().is_none());
    }

    #[test]
    fn parses_json_text() {
        assert_eq!(
            AppConfig::from_json_str(r#"{"a":{"b":1}}"#)
                .unwrap()
                .get::<i64>("a.b"),
            Some(1)
        );
        assert!(matches!(AppConfig::from_json_str("{"), Err(Error::Json(_))));
    }
}
