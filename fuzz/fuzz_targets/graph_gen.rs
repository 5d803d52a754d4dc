//! Small valid ONNX graphs over the ops edgec imports, generated from the input by
//! `edgec_fuzz::graph`, compiled with options from the input; a graph that compiles is run
//! by the interpreter on generated inputs. Set `EDGEC_FUZZ_DUMP=DIR` to keep each generated
//! model as `DIR/<hash>.onnx` (to turn a crash into a regression model).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok((option_byte, model)) = edgec_fuzz::graph::generate(data) else {
        return;
    };
    let bytes = model.encode_to_vec();
    if let Some(dump) = std::env::var_os("EDGEC_FUZZ_DUMP") {
        let name = format!("{:016x}.onnx", edgec_fuzz::graph::fingerprint(&bytes));
        let _ = std::fs::write(std::path::Path::new(&dump).join(name), &bytes);
    }
    let dir = edgec_fuzz::scratch();
    edgec_fuzz::clear(dir);
    let model_path = dir.join("model.onnx");
    std::fs::write(&model_path, &bytes).expect("the scratch folder is writable");
    let package = dir.join("model.mlpackage");
    let result = edgec::compile(&model_path, &package, &edgec_fuzz::options(option_byte));
    edgec_fuzz::check_not_internal(&result);
    if result.is_ok() {
        edgec_fuzz::run_compiled(&package, u64::from(option_byte));
    }
});
