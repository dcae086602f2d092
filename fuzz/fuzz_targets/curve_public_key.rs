#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| textsecure_fuzz::targets::curve_public_key::run(data));
