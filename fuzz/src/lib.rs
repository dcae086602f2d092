//! textsecure's fuzz targets. The logic of each lives in [`targets`] as a plain `fn(&[u8])`,
//! shared with the core's integration tests; the libFuzzer binaries are in `fuzz_targets/`.
#![forbid(unsafe_code)]

pub mod targets;
