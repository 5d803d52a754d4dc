//! Parameters of MIL's recurrent ops (`lstm`, `gru`, `rnn`; coremltools iOS15 `recurrent.py`):
//! the IR op's operands bound in order, then every optional parameter explicit. MIL's `clip` is
//! never set: it bounds the cell state, which no ONNX layer asks for.

use super::Lowerer;
use crate::coreml::mil::{arg, Immediate};
use crate::proto::coreml::mil_spec::Argument;
use edgec_passes::op::recurrent::{Direction, GruAttrs, LstmAttrs, RnnAttrs};

impl Lowerer<'_> {
    /// `lstm`'s inputs: `x`, the initial states, the weights (and peepholes) of each direction.
    pub(super) fn lstm_inputs(&mut self, n: &str, operands: &[String], a: &LstmAttrs) -> Vec<(String, Argument)> {
        let mut keys = vec!["x", "initial_h", "initial_c", "weight_ih", "weight_hh", "bias"];
        if a.peephole {
            keys.push("peephole");
        }
        if a.direction == Direction::Bidirectional {
            keys.extend(["weight_ih_back", "weight_hh_back", "bias_back"]);
            if a.peephole {
                keys.push("peephole_back");
            }
        }
        let mut inputs = bind(&keys, operands);
        inputs.push(self.param(n, "direction", Immediate::Str(a.direction.name().into())));
        inputs.push(self.param(n, "output_sequence", Immediate::Bool(a.output_sequence)));
        for (key, activation) in [
            ("recurrent_activation", a.recurrent_activation),
            ("cell_activation", a.cell_activation),
            ("activation", a.activation),
        ] {
            inputs.push(self.param(n, key, Immediate::Str(activation.name().into())));
        }
        inputs
    }

    pub(super) fn gru_inputs(&mut self, n: &str, operands: &[String], a: &GruAttrs) -> Vec<(String, Argument)> {
        let keys = ["x", "initial_h", "weight_ih", "weight_hh", "bias"];
        let mut inputs = bind(&keys, operands);
        inputs.push(self.param(n, "direction", Immediate::Str(a.direction.name().into())));
        inputs.push(self.param(n, "output_sequence", Immediate::Bool(a.output_sequence)));
        let recurrent = Immediate::Str(a.recurrent_activation.name().into());
        inputs.push(self.param(n, "recurrent_activation", recurrent));
        inputs.push(self.param(n, "activation", Immediate::Str(a.activation.name().into())));
        inputs
    }

    pub(super) fn rnn_inputs(&mut self, n: &str, operands: &[String], a: &RnnAttrs) -> Vec<(String, Argument)> {
        let keys = ["x", "initial_h", "weight_ih", "weight_hh", "bias"];
        let mut inputs = bind(&keys, operands);
        inputs.push(self.param(n, "direction", Immediate::Str(a.direction.name().into())));
        inputs.push(self.param(n, "output_sequence", Immediate::Bool(a.output_sequence)));
        inputs.push(self.param(n, "activation", Immediate::Str(a.activation.name().into())));
        inputs
    }
}

fn bind(keys: &[&str], operands: &[String]) -> Vec<(String, Argument)> {
    keys.iter()
        .zip(operands)
        .map(|(k, v)| (k.to_string(), arg(v)))
        .collect()
}
