#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| textsecure_fuzz::targets::group_decrypt::run(data));
