#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gossamer_fuzz::store_recovery(data));
