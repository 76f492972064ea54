//! The contract's wiring around inference code that is not ours: the command line, the plan,
//! the result records and the timers, for consumers made by `tfinterop new-consumer rust`
//! (docs/consumer-contract.md). Such a program implements [`Inference`] and its `main` is one
//! call to [`main`]; the built-in consumer shares [`run_plan`].

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use crate::panics;
use crate::plan::{parse_plan, JobSpec, Plan, Threads};
use crate::results::ResultsWriter;
use crate::runner::{write_output, At, JobError, JobSuccess, Stage};
use crate::tensors::HostTensor;

/// A consumer's own inference: the three steps tfinterop times and checks for every job.
pub trait Inference: Sized {
    /// What `prepare` makes of the job's inputs, fed to every `run`.
    type Feeds;
    /// Once per job, timed (`load_s`): load the model, find its tensors.
    fn load(job: &JobSpec, threads: Option<Threads>) -> anyhow::Result<Self>;
    /// Once per job, not timed: the feeds, from the job's input files.
    fn prepare(&self, job: &JobSpec) -> anyhow::Result<Self::Feeds>;
    /// 1 + warmup + repeat times, timed: one inference, the job's outputs in its order.
    fn run(&self, feeds: &Self::Feeds) -> anyhow::Result<Vec<HostTensor>>;
}

/// Runs every job of `plan` through `run_job` (a panic becomes that job's error at the stage
/// it happened in), writing each record as it goes, then the done record; returns the number
/// of failed jobs. The consumer record is the caller's, written before.
pub fn run_plan(
    plan: &Plan,
    out: &mut ResultsWriter,
    mut run_job: impl FnMut(&JobSpec, Option<Threads>, &Cell<Stage>) -> Result<JobSuccess, JobError>,
) -> io::Result<usize> {
    let mut failed = 0;
    for job in &plan.jobs {
        let result = match &job.spec {
            Err(message) => Err(JobError {
                stage: Stage::Plan,
                message: message.clone(),
            }),
            Ok(spec) => {
                let stage = Cell::new(Stage::Load);
                panics::catch(|| run_job(spec, plan.threads, &stage)).unwrap_or_else(|message| {
                    Err(JobError {
                        stage: stage.get(),
                        message: format!("internal panic: {message}"),
                    })
                })
            }
        };
        failed += usize::from(result.is_err());
        out.job(&job.id, &result)?;
    }
    out.done(plan.jobs.len(), failed)?;
    Ok(failed)
}

/// Exit status 2 with one line on stderr (the contract's usage error).
pub fn usage(name: &str, message: impl std::fmt::Display) -> ExitCode {
    let message = message.to_string();
    eprintln!("{name}: {}", message.lines().next().unwrap_or(""));
    ExitCode::from(2)
}

const USAGE: &str = "usage: --plan PLAN.tsv --results RESULTS.jsonl, or --version";

/// The whole program of a consumer named `name` running `M`: `--version` (the consumer
/// record), `--plan PLAN --results RESULTS`, `--help`.
pub fn main<M: Inference>(name: &str) -> ExitCode {
    panics::install_hook();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let tf_version = tensorflow::version().unwrap_or_else(|_| "unknown".into());
    match args.as_slice() {
        ["--help" | "-h"] => {
            println!("{name}: a tfinterop consumer (docs/consumer-contract.md)\n{USAGE}");
            ExitCode::SUCCESS
        }
        ["--version"] => {
            let mut out = ResultsWriter::new(Box::new(io::stdout()));
            match out.consumer_named(name, &tf_version) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => usage(name, format!("cannot write to standard output: {e}")),
            }
        }
        ["--plan", plan, "--results", results] | ["--results", results, "--plan", plan] => {
            run_plan_file::<M>(name, Path::new(plan), Path::new(results), &tf_version)
        }
        _ => usage(name, USAGE),
    }
}

fn run_plan_file<M: Inference>(
    name: &str,
    plan_path: &Path,
    results: &Path,
    tf_version: &str,
) -> ExitCode {
    let bytes = match std::fs::read(plan_path) {
        Ok(b) => b,
        Err(e) => {
            return usage(
                name,
                format!("cannot read plan {}: {e}", plan_path.display()),
            )
        }
    };
    let plan = match parse_plan(&bytes) {
        Ok(p) => p,
        Err(e) => return usage(name, e),
    };
    let file = match File::create(results) {
        Ok(f) => f,
        Err(e) => return usage(name, format!("cannot create {}: {e}", results.display())),
    };
    let mut out = ResultsWriter::new(Box::new(BufWriter::new(file)));
    let ran = out
        .consumer_named(name, tf_version)
        .and_then(|()| run_plan(&plan, &mut out, run_job::<M>));
    match ran {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => usage(name, format!("cannot write results: {e}")),
    }
}

/// One job: load (timed), prepare the feeds, the first run (timed, its outputs written),
/// warm-up runs, timed runs (each run's outputs released outside the timer).
fn run_job<M: Inference>(
    job: &JobSpec,
    threads: Option<Threads>,
    stage: &Cell<Stage>,
) -> Result<JobSuccess, JobError> {
    stage.set(Stage::Load);
    let started = Instant::now();
    let model = M::load(job, threads).at(Stage::Load)?;
    let load_s = started.elapsed().as_secs_f64();

    stage.set(Stage::ReadInput);
    let feeds = model.prepare(job).at(Stage::ReadInput)?;

    stage.set(Stage::Run);
    let started = Instant::now();
    let fetched = model.run(&feeds).at(Stage::Run)?;
    let first_run_s = started.elapsed().as_secs_f64();

    stage.set(Stage::WriteOutput);
    if fetched.len() != job.outputs.len() {
        return Err(JobError {
            stage: Stage::WriteOutput,
            message: format!(
                "run returned {} outputs, the job asks for {}",
                fetched.len(),
                job.outputs.len()
            ),
        });
    }
    let outputs = job
        .outputs
        .iter()
        .zip(&fetched)
        .map(|(wanted, value)| {
            let tensor = wanted.tensor.clone().unwrap_or_else(|| wanted.key.clone());
            write_output(wanted, tensor, value, &format!("output '{}'", wanted.key))
        })
        .collect::<Result<Vec<_>, _>>()?;
    drop(fetched);

    stage.set(Stage::Run);
    for _ in 0..job.warmup {
        model.run(&feeds).at(Stage::Run)?;
    }
    // `repeat` comes from the plan (up to u32::MAX): grow as the runs happen.
    let mut steady_s = Vec::with_capacity(job.repeat.min(1 << 16) as usize);
    for _ in 0..job.repeat {
        let started = Instant::now();
        let fetched = model.run(&feeds).at(Stage::Run)?;
        steady_s.push(started.elapsed().as_secs_f64());
        drop(fetched);
    }
    Ok(JobSuccess {
        load_s,
        first_run_s,
        steady_s,
        outputs,
    })
}
