//! Replays the committed seed corpora (../../c_consumer/fuzz/corpus, shared with the C
//! targets) and the crash reproducers (../regressions) through the fuzz bodies: a
//! reproducer that panics again fails `cargo test`.

use std::fs;
use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in [
        root.join("../../c_consumer/fuzz/corpus").join(target),
        root.join("regressions").join(target),
    ] {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                check(&fs::read(&path).unwrap());
                n += 1;
            }
        }
    }
    assert!(n > 0, "no {target} inputs found");
    eprintln!("{target}: replayed {n} inputs");
}

#[test]
fn plan_inputs() {
    replay("plan", tfinterop_fuzz::check_plan);
}

#[test]
fn npy_inputs() {
    replay("npy", tfinterop_fuzz::check_npy);
}
