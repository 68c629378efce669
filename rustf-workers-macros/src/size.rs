//! Memory sizes as people write them: `"512KB"`, `"64MB"`, `"1GB"` (binary units).

use crate::quantity::Quantity;

const SIZE: Quantity = Quantity {
    kind: "size",
    units: &[("B", 1), ("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30)],
    example: "64MB",
};

/// Bytes in `text`, or what is wrong with it.
pub(crate) fn parse_bytes(text: &str) -> Result<u64, String> {
    SIZE.parse(text)
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
