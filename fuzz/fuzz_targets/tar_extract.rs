#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pacquet_fuzz::tar_extract::check(data));
