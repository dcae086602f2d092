#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| textsecure_fuzz::targets::sender_key_record::run(data));
