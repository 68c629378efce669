//! Durations as people write them: `"500ms"`, `"30s"`, `"5m"`, `"1h"`.

/// Milliseconds in `text`, or what is wrong with it.
pub(crate) fn parse_millis(text: &str) -> Result<u64, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let expected = "expected a whole number followed by `ms`, `s`, `m` or `h`, e.g. `\"30s\"`";
    if number.is_empty() {
        return Err(format!("invalid duration `{text}`: {expected}"));
    }
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("invalid duration `{text}`: {expected}")),
    };
    let millis = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("duration `{text}` is too large"))?;
    if millis == 0 {
        return Err(format!("duration `{text}` must be greater than zero"));
    }
    Ok(millis)
}

#[cfg(test)]
mod tests {
    use super::parse_millis;

    #[test]
    fn reads_the_four_units() {
        assert_eq!(parse_millis("500ms"), Ok(500));
        assert_eq!(parse_millis("30s"), Ok(30_000));
        assert_eq!(parse_millis("5m"), Ok(300_000));
        assert_eq!(parse_millis("1h"), Ok(3_600_000));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in ["", "s", "30", "30x", "1.5s", "-1s", " 30s", "30 s", "30S"] {
            let err = parse_millis(bad).unwrap_err();
            assert!(err.starts_with("invalid duration"), "{bad}: {err}");
        }
        assert!(parse_millis("0s")
            .unwrap_err()
            .contains("greater than zero"));
        assert!(parse_millis("99999999999999999999h")
            .unwrap_err()
            .contains("too large"));
    }
}
