//! photo-service: a tfinterop consumer, made by `tfinterop new-consumer rust photo-service`.
//!
//! This file is the contract's wiring (docs/consumer-contract.md): the command line, the
//! plan, the result records, the timers, all from the contract code shipped with tfinterop.
//! Your inference code goes in `src/inference.rs`; you should not need to edit this file.

mod inference;

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use tfinterop_rust_consumer::panics;
use tfinterop_rust_consumer::plan::{parse_plan, JobSpec, Threads};
use tfinterop_rust_consumer::results::{ResultsWriter, BINDING, CONTRACT_VERSION};
use tfinterop_rust_consumer::runner::{JobError, JobSuccess, OutputRecord, Stage};

const NAME: &str = env!("CARGO_PKG_NAME");

/// Exit status 2 with one line on stderr (the contract's usage error).
fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("{NAME}: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    panics::install_hook();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let tf_version = tensorflow::version().unwrap_or_else(|_| "unknown".into());
    match args.as_slice() {
        ["--version"] => match consumer_record(&mut io::stdout(), &tf_version) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => usage(format!("cannot write to standard output: {e}")),
        },
        ["--plan", plan, "--results", results] | ["--results", results, "--plan", plan] => {
            run_plan(Path::new(plan), Path::new(results), &tf_version)
        }
        _ => usage("usage: --plan PLAN.tsv --results RESULTS.jsonl, or --version"),
    }
}

/// Who this consumer is: its own name, the contract code's TensorFlow binding.
fn consumer_record(out: &mut dyn Write, tf_version: &str) -> io::Result<()> {
    let record = serde_json::json!({
        "record": "consumer", "name": NAME, "contract": CONTRACT_VERSION,
        "tf_version": tf_version, "binding": BINDING,
    });
    writeln!(out, "{record}")?;
    out.flush()
}

fn run_plan(plan_path: &Path, results: &Path, tf_version: &str) -> ExitCode {
    let bytes = match std::fs::read(plan_path) {
        Ok(b) => b,
        Err(e) => return usage(format!("cannot read plan {}: {e}", plan_path.display())),
    };
    let plan = match parse_plan(&bytes) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    let mut file = match File::create(results) {
        Ok(f) => f,
        Err(e) => return usage(format!("cannot create {}: {e}", results.display())),
    };
    if let Err(e) = consumer_record(&mut file, tf_version) {
        return usage(format!("cannot write results: {e}"));
    }
    let mut out = ResultsWriter::new(Box::new(BufWriter::new(file)));
    let mut failed = 0;
    for job in &plan.jobs {
        let result = match &job.spec {
            Err(message) => Err(JobError { stage: Stage::Plan, message: message.clone() }),
            Ok(spec) => {
                let stage = Cell::new(Stage::Load);
                // A panic in a job becomes that job's error at the stage it happened in.
                panics::catch(|| run_job(spec, plan.threads, &stage)).unwrap_or_else(|m| {
                    Err(JobError { stage: stage.get(), message: format!("internal panic: {m}") })
                })
            }
        };
        failed += usize::from(result.is_err());
        if let Err(e) = out.job(&job.id, &result) {
            return usage(format!("cannot write results: {e}"));
        }
    }
    match out.done(plan.jobs.len(), failed) {
        Ok(()) if failed == 0 => ExitCode::SUCCESS,
        Ok(()) => ExitCode::from(1),
        Err(e) => usage(format!("cannot write results: {e}")),
    }
}

/// Any error as the job's error at `stage`, with its context chain on one line.
fn at<T>(result: anyhow::Result<T>, stage: Stage) -> Result<T, JobError> {
    result.map_err(|e| JobError { stage, message: format!("{e:#}") })
}

/// One job: load (timed), prepare the feeds, the first run (timed, its outputs written),
/// warm-up runs, timed runs. `stage` is kept current so a panic can be attributed.
fn run_job(job: &JobSpec, threads: Option<Threads>, stage: &Cell<Stage>) -> Result<JobSuccess, JobError> {
    stage.set(Stage::Load);
    let started = Instant::now();
    let model = at(inference::Model::load(job, threads), Stage::Load)?;
    let load_s = started.elapsed().as_secs_f64();

    stage.set(Stage::ReadInput);
    let feeds = at(model.prepare(job), Stage::ReadInput)?;

    stage.set(Stage::Run);
    let started = Instant::now();
    let fetched = at(model.run(&feeds), Stage::Run)?;
    let first_run_s = started.elapsed().as_secs_f64();

    stage.set(Stage::WriteOutput);
    if fetched.len() != job.outputs.len() {
        return Err(JobError {
            stage: Stage::WriteOutput,
            message: format!("run returned {} outputs, the job asks for {}", fetched.len(), job.outputs.len()),
        });
    }
    let mut outputs = Vec::with_capacity(fetched.len());
    for (wanted, tensor) in job.outputs.iter().zip(&fetched) {
        let what = format!("output '{}'", wanted.key);
        at(tensor.write(Path::new(&wanted.file), &what), Stage::WriteOutput)?;
        outputs.push(OutputRecord {
            key: wanted.key.clone(),
            tensor: wanted.tensor.clone().unwrap_or_else(|| wanted.key.clone()),
            dtype: tensor.dtype_name(),
            shape: tensor.dims().to_vec(),
            file: wanted.file.clone(),
        });
    }
    drop(fetched);

    stage.set(Stage::Run);
    for _ in 0..job.warmup {
        at(model.run(&feeds), Stage::Run)?;
    }
    let mut steady_s = Vec::with_capacity(job.repeat.min(1 << 16) as usize);
    for _ in 0..job.repeat {
        let started = Instant::now();
        let fetched = at(model.run(&feeds), Stage::Run)?;
        steady_s.push(started.elapsed().as_secs_f64());
        drop(fetched); // released outside the timer
    }
    Ok(JobSuccess { load_s, first_run_s, steady_s, outputs })
}
