//! tfinterop consumer on the `tensorflow` crate: plan parsing, tensor files and
//! job execution. The binary (`src/main.rs`) only wires these to the CLI; `service` wires
//! them around the inference code of consumers made by `tfinterop new-consumer rust`.

pub mod npy;
pub mod panics;
pub mod plan;
pub mod results;
pub mod runner;
pub mod service;
pub mod tensors;
