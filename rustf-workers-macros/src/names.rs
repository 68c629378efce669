//! The worker naming rule, the same one the runtime applies to `WORKER::register`.

/// Why `name` is not a valid worker name, if it is not.
pub(crate) fn invalid_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > 100 {
        Some("must be at most 100 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        Some("must be kebab or snake case: lowercase ASCII letters, digits, `-` and `_`")
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        Some("must start and end with a letter or digit")
    } else {
        None
    }
}
