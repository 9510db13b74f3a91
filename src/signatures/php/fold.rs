//! The PHP functions the analysis runs on literal values: the string
//! functions and decoders web shells build names and payloads with. Each is
//! bounded: no result longer than [`MAX_VALUE`] bytes.

use std::io::Read;

/// Bytes of one folded value at most.
pub const MAX_VALUE: usize = 8 << 20;

/// Is `name` a function that decodes (its result is a payload layer)?
pub fn is_decoder(name: &[u8]) -> bool {
    matches!(
        name,
        b"base64_decode"
            | b"gzinflate"
            | b"gzuncompress"
            | b"gzdecode"
            | b"str_rot13"
            | b"strrev"
            | b"hex2bin"
            | b"pack"
            | b"urldecode"
            | b"rawurldecode"
            | b"convert_uudecode"
            | b"base_convert"
            | b"bin2hex"
            | b"stripcslashes"
            | b"html_entity_decode"
            | b"htmlspecialchars_decode"
    )
}

/// `name(args)` on literal arguments; `None`: not a function folded here,
/// or arguments it cannot take.
pub fn call(name: &[u8], args: &[&[u8]]) -> Option<Vec<u8>> {
    if args.iter().map(|a| a.len()).sum::<usize>() > MAX_VALUE {
        return None;
    }
    let a = |k: usize| args.get(k).copied();
    let num = |k: usize| a(k).and_then(|v| std::str::from_utf8(v).ok()).and_then(|s| parse_int(s.trim()));
    let out = match name {
        b"chr" => vec![(num(0)?.rem_euclid(256)) as u8],
        b"ord" => a(0)?.first().map(|b| b.to_string().into_bytes()).unwrap_or_else(|| b"0".to_vec()),
        b"strrev" => a(0)?.iter().rev().copied().collect(),
        b"str_rot13" => a(0)?.iter().map(|&b| rot13(b)).collect(),
        b"strtolower" => a(0)?.to_ascii_lowercase(),
        b"strtoupper" => a(0)?.to_ascii_uppercase(),
        b"ucfirst" | b"ucwords" | b"lcfirst" => {
            let mut v = a(0)?.to_vec();
            if let Some(b) = v.first_mut() {
                *b = if name == b"lcfirst" { b.to_ascii_lowercase() } else { b.to_ascii_uppercase() };
            }
            v
        }
        b"trim" | b"ltrim" | b"rtrim" if args.len() == 1 => {
            let v = a(0)?;
            let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0 | 0x0b);
            let start = if name == b"rtrim" { 0 } else { v.iter().position(|b| !ws(b)).unwrap_or(v.len()) };
            let end =
                if name == b"ltrim" { v.len() } else { v.iter().rposition(|b| !ws(b)).map(|k| k + 1).unwrap_or(start) };
            v[start..end.max(start)].to_vec()
        }
        b"base64_decode" => base64(a(0)?),
        b"gzinflate" => inflate(flate2::read::DeflateDecoder::new(a(0)?))?,
        b"gzuncompress" => inflate(flate2::read::ZlibDecoder::new(a(0)?))?,
        b"gzdecode" => inflate(flate2::read::GzDecoder::new(a(0)?))?,
        b"hex2bin" => hex(a(0)?)?,
        b"pack" if a(0).is_some_and(|f| f.eq_ignore_ascii_case(b"H*")) => hex(a(1)?)?,
        b"urldecode" | b"rawurldecode" => urldecode(a(0)?, name == b"urldecode"),
        b"str_replace" | b"str_ireplace" if args.len() == 3 => replace(a(2)?, a(0)?, a(1)?)?,
        b"substr" => {
            let v = a(0)?;
            let len = v.len() as i64;
            let mut start = num(1)?;
            if start < 0 {
                start = (len + start).max(0);
            }
            let start = start.min(len);
            let end = match num(2) {
                None => len,
                Some(l) if l < 0 => (len + l).max(start),
                Some(l) => (start + l).min(len),
            };
            v[start as usize..end as usize].to_vec()
        }
        b"str_repeat" => {
            let n = num(1)?.clamp(0, 1 << 20) as usize;
            let v = a(0)?;
            if v.len().saturating_mul(n) > MAX_VALUE {
                return None;
            }
            v.repeat(n)
        }
        b"strtr" if args.len() == 3 => {
            let (from, to) = (a(1)?, a(2)?);
            a(0)?
                .iter()
                .map(|b| from.iter().position(|f| f == b).and_then(|k| to.get(k).copied()).unwrap_or(*b))
                .collect()
        }
        b"sprintf" => {
            let mut out = Vec::new();
            let mut k = 1;
            let f = a(0)?;
            let mut i = 0;
            while i < f.len() {
                if f[i] == b'%' && f.get(i + 1) == Some(&b's') {
                    out.extend_from_slice(a(k)?);
                    k += 1;
                    i += 2;
                } else if f[i] == b'%' && f.get(i + 1) == Some(&b'%') {
                    out.push(b'%');
                    i += 2;
                } else if f[i] == b'%' {
                    return None;
                } else {
                    out.push(f[i]);
                    i += 1;
                }
            }
            out
        }
        b"stripslashes" => {
            let v = a(0)?;
            let mut out = Vec::with_capacity(v.len());
            let mut i = 0;
            while i < v.len() {
                if v[i] == b'\\' && i + 1 < v.len() {
                    i += 1;
                }
                out.push(v[i]);
                i += 1;
            }
            out
        }
        b"convert_uudecode" => uudecode(a(0)?),
        _ => return None,
    };
    (out.len() <= MAX_VALUE).then_some(out)
}

fn parse_int(s: &str) -> Option<i64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok();
    }
    if s.len() > 1 && s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()) {
        return i64::from_str_radix(&s[1..], 8).ok();
    }
    s.parse().ok()
}

fn rot13(b: u8) -> u8 {
    match b {
        b'a'..=b'z' => (b - b'a' + 13) % 26 + b'a',
        b'A'..=b'Z' => (b - b'A' + 13) % 26 + b'A',
        _ => b,
    }
}

/// PHP's lenient base64: bytes outside the alphabet are skipped.
pub fn base64(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &b in v {
        let d = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | d as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn inflate(r: impl Read) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    // A bomb stops at the limit; what came out before is kept.
    let _ = r.take(MAX_VALUE as u64 + 1).read_to_end(&mut out);
    (!out.is_empty() && out.len() <= MAX_VALUE).then_some(out)
}

fn hex(v: &[u8]) -> Option<Vec<u8>> {
    let v: Vec<u8> = v.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    if v.len() % 2 != 0 {
        return None;
    }
    v.chunks(2).map(|c| std::str::from_utf8(c).ok().and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

fn urldecode(v: &[u8], plus: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'%' if i + 3 <= v.len() && hex(&v[i + 1..i + 3]).is_some() => {
                out.extend(hex(&v[i + 1..i + 3]).unwrap_or_default());
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// `None`: the result would pass [`MAX_VALUE`].
fn replace(subject: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    if from.is_empty() {
        return Some(subject.to_vec());
    }
    let mut out = Vec::with_capacity(subject.len());
    let mut i = 0;
    while let Some(k) = memchr::memmem::find(&subject[i..], from) {
        if out.len() + k + to.len() > MAX_VALUE {
            return None;
        }
        out.extend_from_slice(&subject[i..i + k]);
        out.extend_from_slice(to);
        i += k + from.len();
    }
    out.extend_from_slice(&subject[i..]);
    Some(out)
}

fn uudecode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in v.split(|&b| b == b'\n') {
        let Some((&n, rest)) = line.split_first() else { continue };
        let n = (n.wrapping_sub(32) & 63) as usize;
        let mut got = Vec::new();
        for c in rest.chunks(4) {
            let d: Vec<u32> = c.iter().map(|&b| (b.wrapping_sub(32) & 63) as u32).collect();
            let w = d.iter().chain(std::iter::repeat(&0)).take(4).fold(0u32, |acc, &x| (acc << 6) | x);
            got.extend_from_slice(&[(w >> 16) as u8, (w >> 8) as u8, w as u8]);
        }
        got.truncate(n);
        out.extend(got);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_what_shells_assemble_names_with() {
        assert_eq!(call(b"chr", &[b"115"]).unwrap(), b"s");
        assert_eq!(call(b"strrev", &[b"tressa"]).unwrap(), b"assert");
        assert_eq!(call(b"str_rot13", &[b"flfgrz"]).unwrap(), b"system");
        assert_eq!(call(b"base64_decode", &[b"c3lz\ndGVt"]).unwrap(), b"system");
        assert_eq!(call(b"substr", &[b"xxassertyy", b"2", b"-2"]).unwrap(), b"assert");
        assert_eq!(call(b"str_replace", &[b"#", b"", b"s#y#stem"]).unwrap(), b"system");
        assert_eq!(call(b"hex2bin", &[b"73797374656d"]).unwrap(), b"system");
        assert_eq!(call(b"sprintf", &[b"%s%s", b"sys", b"tem"]).unwrap(), b"system");
        let deflated = {
            use std::io::Write;
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b"eval($_POST[1]);").unwrap();
            e.finish().unwrap()
        };
        assert_eq!(call(b"gzinflate", &[&deflated]).unwrap(), b"eval($_POST[1]);");
        assert!(call(b"gzinflate", &[b"not deflate"]).is_none());
        assert!(call(b"str_repeat", &[b"xxxxxxxxxx", b"99999999999"]).is_none());
        let big = vec![b'B'; 1 << 20];
        assert!(call(b"str_replace", &[b"A", &big, &[b'A'; 64]]).is_none());
    }
}
