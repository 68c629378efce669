//! Memory sizes as people write them: `"512KB"`, `"64MB"`, `"1GB"` (binary units).

/// Bytes in `text`, or what is wrong with it.
pub(crate) fn parse_bytes(text: &str) -> Result<u64, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let expected = "expected a whole number followed by `B`, `KB`, `MB` or `GB`, e.g. `\"64MB\"`";
    let scale: u64 = match unit {
        "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        _ => return Err(format!("invalid size `{text}`: {expected}")),
    };
    if number.is_empty() {
        return Err(format!("invalid size `{text}`: {expected}"));
    }
    let bytes = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("size `{text}` is too large"))?;
    if bytes == 0 {
        return Err(format!("size `{text}` must be greater than zero"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn reads_binary_units() {
        assert_eq!(parse_bytes("512B"), Ok(512));
        assert_eq!(parse_bytes("2KB"), Ok(2048));
        assert_eq!(parse_bytes("64MB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1GB"), Ok(1 << 30));
        for bad in ["", "MB", "64", "64mb", "6.4MB", "64 MB"] {
            assert!(
                parse_bytes(bad).unwrap_err().starts_with("invalid size"),
                "{bad}"
            );
        }
        assert!(parse_bytes("0MB")
            .unwrap_err()
            .contains("greater than zero"));
    }
}
