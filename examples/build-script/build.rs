//! Compiles models/tiny_cnn.onnx into OUT_DIR/tiny_cnn.mlpackage; the crate finds it through
//! `EDGEC_TINY_CNN_MLPACKAGE`. A change to the model reruns this; warnings show in `cargo build`.

fn main() {
    edgec::Build::new("models/tiny_cnn.onnx")
        .deployment_target(edgec::DeploymentTarget::Ios16)
        .precision(edgec::Precision::Fp16)
        .compute_units(edgec::ComputeUnits::All)
        .compile();
}
