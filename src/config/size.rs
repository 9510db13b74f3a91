//! Sizes as people write them in the config: `256MiB`, `1GiB`, `500MB`,
//! `64KiB`, or a plain number of bytes.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A size in bytes read from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigSize(pub u64);

/// Parses `256MiB`, `1GiB`, `500MB`, `64KiB`, `1000` (bytes).
pub fn parse(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("invalid size '{text}' (use e.g. 256MiB, 1GiB, 500MB)"));
    }
    let n: u64 = t[..digits].parse().map_err(|_| format!("size '{text}' is too large"))?;
    let unit: u64 = match t[digits..].trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit '{other}' in size '{text}' (use B, KB, MB, GB, KiB, MiB or GiB)")),
    };
    n.checked_mul(unit).ok_or_else(|| format!("size '{text}' is too large"))
}

/// Formats a size for `config-check`.
pub fn format(n: u64) -> String {
    for (unit, len) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= len && n % len == 0 {
            return format!("{}{unit}", n / len);
        }
    }
    format!("{n}B")
}

impl<'de> Deserialize<'de> for ConfigSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ConfigSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as 256MiB")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConfigSize, E> {
                positive(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConfigSize, E> {
                positive(u64::try_from(v).map_err(|_| E::custom("a size cannot be negative"))?).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfigSize, E> {
                positive(parse(v).map_err(E::custom)?).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

fn positive(n: u64) -> Result<ConfigSize, String> {
    if n == 0 {
        return Err("a size must be greater than 0".into());
    }
    Ok(ConfigSize(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_format() {
        assert_eq!(parse("256MiB"), Ok(256 << 20));
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("500MB"), Ok(500_000_000));
        assert_eq!(parse("4096"), Ok(4096));
        assert!(parse("12 parsecs").is_err());
        assert!(parse("MiB").is_err());
        assert_eq!(format(256 << 20), "256MiB");
        assert_eq!(format(1000), "1000B");
    }
}
