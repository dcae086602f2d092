#![no_main]
libfuzzer_sys::fuzz_target!(
    |data: &[u8]| textsecure_fuzz::targets::prekey_signal_message::run(data)
);
