//! Durations as people write them: `"500ms"`, `"30s"`, `"5m"`, `"1h"`.

use crate::quantity::Quantity;

const DURATION: Quantity = Quantity {
    kind: "duration",
    units: &[("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)],
    example: "30s",
};

/// Milliseconds in `text`, or what is wrong with it.
pub(crate) fn parse_millis(text: &str) -> Result<u64, String> {
    DURATION.parse(text)
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
