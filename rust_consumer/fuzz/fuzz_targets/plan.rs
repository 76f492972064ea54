#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tfinterop_fuzz::check_plan(data));
