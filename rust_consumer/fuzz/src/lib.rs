//! The consumer's pure parsers, compiled from its sources, and the properties the fuzz
//! targets check. `tests/regressions.rs` replays the committed corpora and crash
//! reproducers through the same functions without libFuzzer.

#[path = "../../src/npy.rs"]
pub mod npy;
#[path = "../../src/plan.rs"]
pub mod plan;

use num_complex::Complex;

/// Fuzz body for `plan`: parse; on success check what the runner relies on.
pub fn check_plan(data: &[u8]) {
    let Ok(p) = plan::parse_plan(data) else {
        return;
    };
    let mut ids = std::collections::HashSet::new();
    for job in &p.jobs {
        assert!(!job.id.is_empty(), "empty job id accepted");
        assert!(ids.insert(job.id.as_str()), "duplicate job id accepted");
        if let Ok(spec) = &job.spec {
            assert!(!spec.model.is_empty() && !spec.outputs.is_empty());
            assert!(spec.repeat >= 1);
            assert!(!spec.tags.is_empty() && spec.tags.iter().all(|t| !t.is_empty()));
            assert!(spec.inputs.iter().all(|i| !i.key.is_empty()));
        }
    }
}

/// Decodes as one dtype: on success the values match the shape, on failure the message is
/// one line.
fn decode_as<N: npyz::Deserialize + npyz::AutoSerialize>(data: &[u8]) {
    match npy::decode::<N>(data, "fuzz.npy", "fuzz") {
        Ok((shape, values)) => {
            assert_eq!(npy::element_count(&shape), Some(values.len() as u64));
        }
        Err(e) => {
            let m = format!("{e:#}");
            assert!(!m.contains('\n'), "multi-line error: {m:?}");
        }
    }
}

/// Fuzz body for `npy`. Decoding parses the header with pest (slow under ASan), so each input
/// is decoded once, as the dtype its length selects: every dtype's path gets exercised, and
/// libFuzzer reaches a file's own dtype by growing or shrinking it. Selector 0 reads the
/// input as the string encoding's lengths and splits the input itself by them.
pub fn check_npy(data: &[u8]) {
    match data.len() % 15 {
        0 => {
            if let Ok((_, lengths)) = npy::decode::<i64>(data, "fuzz.npy", "fuzz") {
                if let Ok(parts) = npy::string_slices(&lengths, data) {
                    assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), data.len());
                }
            }
        }
        1 => decode_as::<npyz::half::f16>(data),
        2 => decode_as::<f32>(data),
        3 => decode_as::<f64>(data),
        4 => decode_as::<i8>(data),
        5 => decode_as::<i16>(data),
        6 => decode_as::<i32>(data),
        7 => decode_as::<i64>(data),
        8 => decode_as::<u8>(data),
        9 => decode_as::<u16>(data),
        10 => decode_as::<u32>(data),
        11 => decode_as::<u64>(data),
        12 => decode_as::<bool>(data),
        13 => decode_as::<Complex<f32>>(data),
        _ => decode_as::<Complex<f64>>(data),
    }
}
