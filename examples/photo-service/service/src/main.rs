//! photo-service: a tfinterop consumer, made by `tfinterop new-consumer rust photo-service`.
//!
//! The contract's wiring (docs/consumer-contract.md: the command line, the plan, the result
//! records, the timers) is the contract code shipped with tfinterop
//! (`tfinterop_rust_consumer::service`). Your inference code goes in `src/inference.rs`.

mod inference;

use std::process::ExitCode;

fn main() -> ExitCode {
    tfinterop_rust_consumer::service::main::<inference::Model>(env!("CARGO_PKG_NAME"))
}
