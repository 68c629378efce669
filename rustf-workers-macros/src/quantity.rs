//! A whole number followed by a unit, as attribute options write durations and sizes.

/// What a quantity is called and the units it takes, smallest first.
pub(crate) struct Quantity {
    pub(crate) kind: &'static str,
    pub(crate) units: &'static [(&'static str, u64)],
    pub(crate) example: &'static str,
}

impl Quantity {
    /// `text` in the smallest unit, or what is wrong with it.
    pub(crate) fn parse(&self, text: &str) -> Result<u64, String> {
        let Self {
            kind,
            units,
            example,
        } = self;
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits_end);
        let scale = units
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .filter(|_| !number.is_empty())
            .ok_or_else(|| {
                format!(
                    "invalid {kind} `{text}`: expected a whole number followed by {}, e.g. `\"{example}\"`",
                    self.unit_list()
                )
            })?;
        let value = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .ok_or_else(|| format!("{kind} `{text}` is too large"))?;
        if value == 0 {
            return Err(format!("{kind} `{text}` must be greater than zero"));
        }
        Ok(value)
    }

    /// "`ms`, `s`, `m` or `h`".
    fn unit_list(&self) -> String {
        let names: Vec<String> = self
            .units
            .iter()
            .map(|(name, _)| format!("`{name}`"))
            .collect();
        match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}
