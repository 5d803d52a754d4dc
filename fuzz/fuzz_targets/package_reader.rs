//! Arbitrary package files (see `edgec_fuzz::package` for the layout) through what `edgec
//! inspect` and `edgec run` do with a package: read it and print its summary, generate inputs
//! for it, and run it.
#![no_main]

use edgec_fuzz::package::PackageFiles;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = edgec_fuzz::scratch();
    edgec_fuzz::clear(dir);
    let package = PackageFiles::split(data)
        .write(dir)
        .expect("the scratch folder is writable");
    if let Ok(read) = edgec::coreml::inspect::read_package(&package) {
        let _ = edgec::coreml::inspect::summary(&read, true, true);
    }
    if let Ok(inputs) = edgec::verify::deterministic_inputs(&package, 0) {
        let options = edgec::interp::InterpOptions {
            fp16_rounding: data.len() % 2 == 1,
        };
        let _ = edgec::interp::run_package(&package, &inputs, &options);
    }
});
