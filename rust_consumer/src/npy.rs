//! `.npy` bytes -> shape and values, checked against the contract, and the
//! two-file string encoding's lengths -> element slices.
//!
//! Pure (bytes in, values or an error out) and free of TensorFlow, so the fuzz
//! crate (`fuzz/`) compiles this file on its own and libFuzzer can drive it.

use anyhow::{anyhow, bail, ensure, Result};
use npyz::{AutoSerialize, Deserialize, Endianness, NpyFile, NpyHeader, TypeStr};

/// numpy's reader refuses headers over 10 000 bytes by default; so does the C consumer above
/// 64 KiB. npyz allocates whatever length the preamble declares (up to 4 GiB) before reading.
const MAX_HEADER_LEN: u64 = 65536;

/// Bracket nesting allowed in the header dict, see `check_preamble`.
const MAX_HEADER_NESTING: usize = 8;

/// Product of dims, `None` on overflow (hostile headers).
pub fn element_count(dims: &[u64]) -> Option<u64> {
    dims.iter().try_fold(1u64, |acc, d| acc.checked_mul(*d))
}

/// Decodes a whole `.npy` file whose dtype must be exactly `N`'s (a contract
/// dtype). `name` names the file and `role` what it is for, in messages.
pub fn decode<N: Deserialize + AutoSerialize>(
    bytes: &[u8],
    name: &str,
    role: &str,
) -> Result<(Vec<u64>, Vec<N>)> {
    check_preamble(bytes, name)?;
    let mut rest: &[u8] = bytes;
    let header = NpyHeader::from_reader(&mut rest).map_err(|e| {
        anyhow!(
            "{name} is not a valid .npy file: {}",
            one_line(&e.to_string())
        )
    })?;
    let npyz::DType::Plain(want) = N::default_dtype() else {
        bail!("internal error: {role} has no plain npy dtype");
    };
    let got = match header.dtype() {
        npyz::DType::Plain(ts) => ts,
        other => bail!(
            "{name}: dtype {} is not a plain dtype",
            clip(&other.descr())
        ),
    };
    ensure!(
        same_dtype(&got, &want),
        "{name}: file has {} ({}), but {role} expects {} ({})",
        contract_name(&got),
        clip(&got.to_string()),
        contract_name(&want),
        contract_descr(&want),
    );
    ensure!(
        header.order() == npyz::Order::C,
        "{name}: fortran_order arrays are refused"
    );
    let shape = header.shape().to_vec();
    // TensorFlow dims are int64: a larger one (possible in an empty array) would reach
    // TF_AllocateTensor negative.
    ensure!(
        shape.iter().all(|d| i64::try_from(*d).is_ok()),
        "{name}: shape {} has a dimension above 2^63-1",
        shape_text(&shape)
    );
    // npyz's own element count wraps on hostile shapes; ours is checked, and the data
    // length must match before anything is allocated from the shape.
    let need = element_count(&shape)
        .and_then(|n| n.checked_mul(want.size_field()))
        .ok_or_else(|| anyhow!("{name}: shape {} overflows", shape_text(&shape)))?;
    ensure!(
        rest.len() as u64 == need,
        "{name}: data is {} bytes, shape {} needs {need}",
        rest.len(),
        shape_text(&shape)
    );
    let values = NpyFile::with_header(header, rest)
        .into_vec::<N>()
        .map_err(|e| anyhow!("{name}: bad data: {}", one_line(&e.to_string())))?;
    Ok((shape, values))
}

/// Magic, version and header length, checked before npyz allocates the header buffer (found by
/// fuzzing: a 2.0 preamble declaring a 4 GiB header made npyz allocate 4 GiB;
/// rust_consumer/fuzz/regressions/npy/oom-*).
fn check_preamble(bytes: &[u8], name: &str) -> Result<()> {
    let Some(rest) = bytes.strip_prefix(b"\x93NUMPY") else {
        bail!("{name} is not a valid .npy file (bad magic)");
    };
    let (len, preamble) = match rest {
        [1, 0, a, b, ..] => (u64::from(u16::from_le_bytes([*a, *b])), 10),
        [2 | 3, 0, a, b, c, d, ..] => (u64::from(u32::from_le_bytes([*a, *b, *c, *d])), 12),
        [1..=3, 0, ..] | [] | [_] => bail!("{name}: truncated npy file (no header length)"),
        [major, minor, ..] => bail!("{name}: unsupported npy format version {major}.{minor}"),
    };
    ensure!(
        len <= MAX_HEADER_LEN,
        "{name}: npy header length {len} exceeds the {MAX_HEADER_LEN}-byte limit"
    );
    let follow = bytes.len().saturating_sub(preamble) as u64;
    ensure!(
        len <= follow,
        "{name}: truncated npy file: header length {len} but only {follow} bytes follow"
    );
    // npyz parses the dict with a backtracking (pest) grammar that takes exponential time in
    // the nesting depth: 37 '[' in a 170-byte file ran for minutes (found by fuzzing;
    // rust_consumer/fuzz/regressions/npy/timeout-*). A contract header nests 2 deep
    // (`{'shape': (..)}`); structured dtypes, refused anyway, a few more.
    let header = bytes.get(preamble..).unwrap_or_default();
    let header = header.get(..len as usize).unwrap_or(header);
    let mut depth = 0usize;
    for b in header {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        ensure!(
            depth <= MAX_HEADER_NESTING,
            "{name}: npy header nests brackets deeper than {MAX_HEADER_NESTING}"
        );
    }
    check_shape_product(header, name)
}

/// npyz multiplies the header's shape unchecked while parsing it: a product beyond u64 wraps
/// in release builds (our own checked count refuses it afterwards) and panics where overflow
/// checks are on (found by fuzzing: `(34294967296, 9223372036854775807)`;
/// rust_consumer/fuzz/regressions/npy/crash-9e6b61ae…). So an overflowing shape is refused
/// here, before npyz sees it; a shape this scan cannot read is left to npyz's parser.
fn check_shape_product(header: &[u8], name: &str) -> Result<()> {
    let text = String::from_utf8_lossy(header);
    let Some(after) = text.split("'shape'").nth(1) else {
        return Ok(());
    };
    let Some(open) = after.find('(') else {
        return Ok(());
    };
    let Some(close) = after[open..].find(')') else {
        return Ok(());
    };
    let mut product = 1u64;
    for field in after[open + 1..open + close].split(',') {
        let field = field.trim().trim_end_matches('L');
        if field.is_empty() {
            continue;
        }
        let Ok(dim) = field.parse::<u64>() else {
            if field.bytes().all(|b| b.is_ascii_digit()) {
                bail!(
                    "{name}: shape ({}) overflows",
                    after[open + 1..open + close].trim()
                );
            }
            return Ok(()); // not a number: npyz reports the malformed header
        };
        product = product.checked_mul(dim).ok_or_else(|| {
            anyhow!(
                "{name}: shape ({}) overflows",
                after[open + 1..open + close].trim()
            )
        })?;
    }
    Ok(())
}

/// Splits `data` (the `.bytes` file) into elements by `lengths` (the `.npy`
/// file): every length non-negative, their sum exactly `data.len()`.
pub fn string_slices<'a>(lengths: &[i64], data: &'a [u8]) -> Result<Vec<&'a [u8]>, String> {
    let mut out = Vec::with_capacity(lengths.len());
    let mut offset = 0usize;
    for (i, &len) in lengths.iter().enumerate() {
        let len =
            usize::try_from(len).map_err(|_| format!("element {i} has negative length {len}"))?;
        let end = offset
            .checked_add(len)
            .filter(|e| *e <= data.len())
            .ok_or_else(|| format!("lengths exceed the {} data bytes", data.len()))?;
        out.push(&data[offset..end]);
        offset = end;
    }
    if offset != data.len() {
        return Err(format!(
            "lengths sum to {offset} but there are {} data bytes",
            data.len()
        ));
    }
    Ok(out)
}

/// Same kind and size; multi-byte types must be little-endian.
fn same_dtype(got: &TypeStr, want: &TypeStr) -> bool {
    got.type_char() == want.type_char()
        && got.size_field() == want.size_field()
        && got.time_units().is_none()
        && match got.endianness() {
            Endianness::Little => true,
            Endianness::Irrelevant => got.size_field() == 1,
            Endianness::Big => false,
        }
}

/// The contract's dtype name (`float32`, `int64`, ...) for messages; the descr otherwise.
fn contract_name(ts: &TypeStr) -> String {
    // The size comes from the file: keep the arithmetic total.
    let bits = ts.size_field().saturating_mul(8);
    match ts.type_char() {
        npyz::TypeChar::Float => format!("float{bits}"),
        npyz::TypeChar::Int => format!("int{bits}"),
        npyz::TypeChar::Uint => format!("uint{bits}"),
        npyz::TypeChar::Complex => format!("complex{bits}"),
        npyz::TypeChar::Bool => "bool".to_string(),
        _ => clip(&ts.to_string()),
    }
}

/// Our own dtypes' descr as the contract's table writes it (`|u1`, `<f4`).
fn contract_descr(ts: &TypeStr) -> String {
    let s = ts.to_string();
    match s.get(1..) {
        Some(rest) if ts.size_field() == 1 => format!("|{rest}"),
        _ => s,
    }
}

fn shape_text(shape: &[u64]) -> String {
    clip(&format!("{shape:?}"))
}

/// npyz's header errors come from pest and span several lines (position, the header text,
/// a caret line, "= expected ..."): keep the first line and the expectation. Found by fuzzing
/// (rust_consumer/fuzz/regressions/npy/); a job error must stay one line.
fn one_line(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("").to_string();
    let expected: Vec<&str> = lines
        .filter_map(|l| l.strip_prefix('=').map(str::trim))
        .collect();
    let joined = if expected.is_empty() {
        first
    } else {
        format!("{first}; {}", expected.join("; "))
    };
    clip(&joined)
}

/// Keeps messages one short line whatever the file holds.
fn clip(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 1.0 file with `dict` as header (padded like numpy) and `data`.
    fn npy(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn decodes_contract_dtypes() {
        let f = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
            &[0, 0, 128, 63, 0, 0, 0, 64],
        );
        let (shape, values) = decode::<f32>(&f, "x.npy", "input").unwrap();
        assert_eq!((shape, values), (vec![2], vec![1.0, 2.0]));
        let b = npy(
            "{'descr': '|b1', 'fortran_order': False, 'shape': (), }",
            &[1],
        );
        assert_eq!(decode::<bool>(&b, "b", "r").unwrap(), (vec![], vec![true]));
    }

    #[test]
    fn refuses_bad_headers_with_one_line() {
        let cases: &[(Vec<u8>, &str)] = &[
            (b"".to_vec(), "bad magic"),
            (
                b"\x93NUMPY\x09\x00".to_vec(),
                "unsupported npy format version 9.0",
            ),
            (b"\x93NUMPY\x01\x00\x01".to_vec(), "no header length"),
            (
                b"\x93NUMPY\x01\x00\x40\x00{".to_vec(),
                "header length 64 but only 1 bytes",
            ),
            // Found by fuzzing: a 4 GiB header length must be refused, not allocated.
            (
                b"\x93NUMPY\x02\x00\x74\x00\xfa\xff{'descr': '<f4'".to_vec(),
                "exceeds the 65536-byte limit",
            ),
            (
                npy(
                    "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
                    &[0; 4],
                ),
                "float32",
            ),
            (
                npy(
                    "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }",
                    &[0; 4],
                ),
                "fortran_order",
            ),
            (
                npy(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                    &[0; 4],
                ),
                "needs 12",
            ),
            (
                npy(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
                    &[],
                ),
                "overflows",
            ),
            (
                npy(
                    "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
                    &[0; 8],
                ),
                "but input expects float32",
            ),
            (
                npy(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 9223372036854775808), }",
                    &[],
                ),
                "dimension above 2^63-1",
            ),
            // Found by fuzzing: deep nesting made npyz's parser run for minutes.
            (
                npy(
                    "{'descr': [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[, 'shape': (1,), }",
                    &[0; 4],
                ),
                "nests brackets deeper than 8",
            ),
            // Found by fuzzing: pest's multi-line syntax error must become one line.
            (
                npy(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }  '>f4'",
                    &[0; 4],
                ),
                "expected EOI",
            ),
            (
                npy(
                    "{'descr': '<f2305843009213693952', 'fortran_order': False, 'shape': (1,), }",
                    &[],
                ),
                "",
            ),
        ];
        for (bytes, want) in cases {
            let e = decode::<f32>(bytes, "x.npy", "input").unwrap_err();
            let msg = format!("{e:#}");
            assert!(msg.contains(want), "{msg:?} lacks {want:?}");
            assert!(!msg.contains('\n'), "{msg:?}");
        }
    }

    #[test]
    fn string_lengths() {
        assert_eq!(
            string_slices(&[1, 0, 2], b"abc").unwrap(),
            vec![&b"a"[..], b"", b"bc"]
        );
        assert!(string_slices(&[-1], b"").is_err());
        assert!(string_slices(&[2], b"a").is_err());
        assert!(string_slices(&[1], b"ab").is_err());
        assert!(string_slices(&[i64::MAX, i64::MAX], b"").is_err());
    }
}
