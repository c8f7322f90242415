#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzzing::file_name(data));
