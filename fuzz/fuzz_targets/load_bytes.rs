//! Raw bytes as an ONNX model file: load, import, run the passes and write the package, as
//! `edgec compile` does; a package that compiles is then run by the interpreter. The first byte
//! picks the compile options (precision, deployment target, weight compression).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&option_byte, model)) = data.split_first() else {
        return;
    };
    let dir = edgec_fuzz::scratch();
    edgec_fuzz::clear(dir);
    let model_path = dir.join("model.onnx");
    std::fs::write(&model_path, model).expect("the scratch folder is writable");
    let package = dir.join("model.mlpackage");
    let result = edgec::compile(&model_path, &package, &edgec_fuzz::options(option_byte));
    edgec_fuzz::check_not_internal(&result);
    if result.is_ok() {
        edgec_fuzz::run_compiled(&package, u64::from(option_byte));
    }
});
