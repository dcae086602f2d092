#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| textsecure_fuzz::targets::conversation_uow::run(data));
