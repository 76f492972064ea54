//! Runs one job: load, resolve, read inputs, run, write outputs, time.

use std::cell::Cell;
use std::fmt::Display;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context};
use serde::Serialize;
use tensorflow::{
    DataType, FetchToken, Graph, ImportGraphDefOptions, Operation, OutputName, SavedModelBundle,
    Session, SessionOptions, SessionRunArgs,
};

use crate::plan::{canonical_tensor_name, Format, InputSource, JobSpec, OutputSpec, Threads};
use crate::tensors::{read_png, HostTensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Plan,
    Load,
    Resolve,
    ReadInput,
    Run,
    WriteOutput,
}

#[derive(Debug)]
pub struct JobError {
    pub stage: Stage,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct OutputRecord {
    pub key: String,
    pub tensor: String,
    pub dtype: &'static str,
    pub shape: Vec<u64>,
    pub file: String,
}

#[derive(Debug)]
pub struct JobSuccess {
    pub load_s: f64,
    pub first_run_s: f64,
    pub steady_s: Vec<f64>,
    pub outputs: Vec<OutputRecord>,
}

/// Attaches the stage (the one `run_job` is in) to any error.
pub(crate) trait At<T> {
    fn at(self, stage: Stage) -> Result<T, JobError>;
}

impl<T, E: Display> At<T> for Result<T, E> {
    fn at(self, stage: Stage) -> Result<T, JobError> {
        // `{:#}` prints an anyhow error with its context chain on one line.
        self.map_err(|e| JobError {
            stage,
            message: format!("{e:#}"),
        })
    }
}

/// Serialized `ConfigProto`: intra_op_parallelism_threads (field 2) and
/// inter_op_parallelism_threads (field 5) as varints; 0 is proto3's default
/// and is left out.
pub fn config_proto(t: Threads) -> Vec<u8> {
    let mut buf = Vec::new();
    for (field, value) in [(2u8, t.intra), (5u8, t.inter)] {
        if value != 0 {
            buf.push(field << 3); // wire type 0 = varint
            let mut v = u64::from(value);
            while v >= 0x80 {
                buf.push((v as u8) | 0x80);
                v >>= 7;
            }
            buf.push(v as u8);
        }
    }
    buf
}

/// A graph tensor, resolved.
struct Endpoint {
    op: Operation,
    index: i32,
    name: String,
    dtype: DataType,
}

enum Loaded {
    Frozen(Session),
    SavedModel(SavedModelBundle),
}

impl Loaded {
    fn session(&self) -> &Session {
        match self {
            Loaded::Frozen(s) => s,
            Loaded::SavedModel(b) => &b.session,
        }
    }
}

/// Runs a job. `stage` is kept current so that a caught panic can be attributed.
pub fn run_job(
    spec: &JobSpec,
    threads: Option<Threads>,
    stage: &Cell<Stage>,
) -> Result<JobSuccess, JobError> {
    stage.set(Stage::Load);
    let mut options = SessionOptions::new();
    // Like C: no TF_SetConfig at all when the plan sets no thread count.
    let config = threads.map(config_proto).unwrap_or_default();
    if !config.is_empty() {
        options.set_config(&config).at(Stage::Load)?;
    }
    let mut graph = Graph::new();
    let t0 = Instant::now();
    let loaded = match spec.format {
        Format::Frozen => {
            // A serialized proto cannot exceed 2 GiB (protobuf's limit): refuse before reading.
            let size = std::fs::metadata(&spec.model)
                .map_err(|e| anyhow!("cannot read {}: {e}", spec.model))
                .at(Stage::Load)?
                .len();
            if size > i32::MAX as u64 {
                return Err(anyhow!(
                    "cannot read frozen graph {}: {size} bytes, larger than the 2 GiB protobuf limit",
                    spec.model
                ))
                .at(Stage::Load);
            }
            let bytes = std::fs::read(&spec.model)
                .map_err(|e| anyhow!("cannot read {}: {e}", spec.model))
                .at(Stage::Load)?;
            graph
                .import_graph_def(&bytes, &ImportGraphDefOptions::new())
                .at(Stage::Load)?;
            Loaded::Frozen(Session::new(&options, &graph).at(Stage::Load)?)
        }
        Format::SavedModel => Loaded::SavedModel(
            SavedModelBundle::load(&options, &spec.tags, &mut graph, &spec.model)
                .at(Stage::Load)?,
        ),
    };
    let load_s = t0.elapsed().as_secs_f64();

    stage.set(Stage::Resolve);
    let inputs = spec
        .inputs
        .iter()
        .map(|i| resolve(&loaded, &graph, spec, &i.key, i.tensor.as_deref(), true))
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = spec
        .outputs
        .iter()
        .map(|o| resolve(&loaded, &graph, spec, &o.key, o.tensor.as_deref(), false))
        .collect::<Result<Vec<_>, _>>()?;

    stage.set(Stage::ReadInput);
    let mut feeds = Vec::with_capacity(inputs.len());
    for (input, ep) in spec.inputs.iter().zip(&inputs) {
        let what = format!("input '{}'", input.key);
        let tensor = match &input.source {
            InputSource::Npy(file) => HostTensor::read(ep.dtype, Path::new(file), &what),
            InputSource::Png(file) if ep.dtype == DataType::Float => read_png(Path::new(file)),
            InputSource::Png(_) => Err(anyhow!(
                "{what}: an image feeds float32 but the graph's dtype is {}",
                ep.dtype
            )),
        }
        .at(Stage::ReadInput)?;
        let file = match &input.source {
            InputSource::Npy(file) | InputSource::Png(file) => file,
        };
        check_shape(&graph, ep, tensor.dims(), &what, file).at(Stage::ReadInput)?;
        feeds.push(tensor);
    }

    // As in the C consumer, feeds and fetches are set up once and a timed run is the session
    // run alone; each run's outputs are taken out of `args` and released after the timer
    // stopped (left in, `Session::run` would free them inside the next timed run).
    let session = loaded.session();
    let mut args = SessionRunArgs::new();
    for (t, ep) in feeds.iter().zip(&inputs) {
        t.feed(&mut args, &ep.op, ep.index);
    }
    let tokens: Vec<FetchToken> = outputs
        .iter()
        .map(|ep| args.request_fetch(&ep.op, ep.index))
        .collect();

    stage.set(Stage::Run);
    let first_run_s = timed_run(session, &mut args)?;
    let fetched = take_outputs(&mut args, &tokens, spec)?;

    stage.set(Stage::WriteOutput);
    let records = spec
        .outputs
        .iter()
        .zip(&outputs)
        .zip(&fetched)
        .map(|((wanted, ep), t)| {
            let what = format!("string output '{}'", wanted.key);
            write_output(wanted, ep.name.clone(), t, &what)
        })
        .collect::<Result<Vec<_>, _>>()?;
    drop(fetched);

    stage.set(Stage::Run);
    for _ in 0..spec.warmup {
        timed_run(session, &mut args)?;
        drop(take_outputs(&mut args, &tokens, spec)?);
    }
    // `repeat` comes from the plan (up to u32::MAX): reserving it all up front would abort
    // the process on allocation failure instead of running; grow as the runs happen.
    let mut steady_s = Vec::with_capacity(spec.repeat.min(1 << 16) as usize);
    for _ in 0..spec.repeat {
        steady_s.push(timed_run(session, &mut args)?);
        drop(take_outputs(&mut args, &tokens, spec)?);
    }
    Ok(JobSuccess {
        load_s,
        first_run_s,
        steady_s,
        outputs: records,
    })
}

/// Writes one output where the plan asks and makes its record; `tensor` is the graph tensor it
/// was fetched from, `what` names it in an error.
pub(crate) fn write_output(
    wanted: &OutputSpec,
    tensor: String,
    value: &HostTensor,
    what: &str,
) -> Result<OutputRecord, JobError> {
    value
        .write(Path::new(&wanted.file), what)
        .at(Stage::WriteOutput)?;
    Ok(OutputRecord {
        key: wanted.key.clone(),
        tensor,
        dtype: value.dtype_name(),
        shape: value.dims().to_vec(),
        file: wanted.file.clone(),
    })
}

/// One session run, timed; nothing else is inside the timer.
fn timed_run(session: &Session, args: &mut SessionRunArgs<'_>) -> Result<f64, JobError> {
    let t0 = Instant::now();
    let ran = session.run(args);
    let elapsed = t0.elapsed().as_secs_f64();
    ran.at(Stage::Run)?;
    Ok(elapsed)
}

/// Takes every output of the last run out of `args`, by its runtime dtype.
fn take_outputs(
    args: &mut SessionRunArgs<'_>,
    tokens: &[FetchToken],
    spec: &JobSpec,
) -> Result<Vec<HostTensor>, JobError> {
    tokens
        .iter()
        .enumerate()
        .map(|(pos, token)| {
            // TF ran fine; an output the contract cannot carry is an output problem.
            HostTensor::fetch(args, *token, pos)
                .with_context(|| format!("output '{}'", spec.outputs[pos].key))
                .at(Stage::WriteOutput)
        })
        .collect()
}

/// KEY -> graph tensor. SavedModel: through the SignatureDef, checked against the
/// plan's TENSOR. Frozen: the plan's TENSOR (or KEY when it is `-`).
fn resolve(
    loaded: &Loaded,
    graph: &Graph,
    spec: &JobSpec,
    key: &str,
    plan_tensor: Option<&str>,
    is_input: bool,
) -> Result<Endpoint, JobError> {
    let kind = if is_input { "input" } else { "output" };
    let name: OutputName = match loaded {
        Loaded::SavedModel(bundle) => {
            let sig = bundle
                .meta_graph_def()
                .get_signature(&spec.signature)
                .at(Stage::Resolve)?;
            let info = if is_input {
                sig.get_input(key)
            } else {
                sig.get_output(key)
            }
            .map_err(|e| anyhow!("signature '{}': {e}", spec.signature))
            .at(Stage::Resolve)?;
            let name = info.name().clone();
            if let Some(t) = plan_tensor {
                if canonical_tensor_name(t) != name.to_string() {
                    return Err(anyhow!(
                        "signature '{}' {kind} '{key}' resolves to '{name}', the plan says '{t}'",
                        spec.signature
                    ))
                    .at(Stage::Resolve);
                }
            }
            name
        }
        // Frozen: KEY is only a label; TENSOR is fed/fetched, `-` meaning KEY.
        Loaded::Frozen(_) => {
            let t = plan_tensor.unwrap_or(key);
            t.parse()
                .map_err(|e| anyhow!("{kind} '{key}': '{t}' is not a tensor name: {e}"))
                .at(Stage::Resolve)?
        }
    };
    let op = graph
        .operation_by_name_required(&name.name)
        .map_err(|e| anyhow!("{kind} '{key}' ({name}): {e}"))
        .at(Stage::Resolve)?;
    // output_type() on an index the op does not have is undefined behaviour in TF.
    let index = usize::try_from(name.index)
        .ok()
        .filter(|i| *i < op.num_outputs())
        .ok_or_else(|| {
            anyhow!(
                "{kind} '{key}': operation '{}' has {} output(s), no output {}",
                name.name,
                op.num_outputs(),
                name.index
            )
        })
        .at(Stage::Resolve)?;
    Ok(Endpoint {
        dtype: op.output_type(index),
        op,
        index: name.index,
        name: name.to_string(),
    })
}

/// The graph's static shape, where it knows it, must admit the file's: the same rank and every
/// known dimension equal; an unknown dimension (a dynamic batch) takes any size, an unknown rank
/// any shape. The rule and the message are the C consumer's (runner.c, check_shape).
fn check_shape(
    graph: &Graph,
    ep: &Endpoint,
    dims: &[u64],
    what: &str,
    file: &str,
) -> anyhow::Result<()> {
    let shape = graph
        .tensor_shape(tensorflow::Output {
            operation: ep.op.clone(),
            index: ep.index,
        })
        .map_err(|e| anyhow!("{what}: cannot get the graph shape of '{}': {e}", ep.name))?;
    let shape: Option<Vec<Option<i64>>> = shape.into();
    match shape {
        Some(known) if !admits(&known, dims) => Err(anyhow!(
            "{what}: file has shape {dims:?}, graph expects {} ({file})",
            graph_shape_text(&known)
        )),
        _ => Ok(()),
    }
}

/// Whether a graph shape of known rank (`None`: unknown dimension) admits a file's shape.
fn admits(graph: &[Option<i64>], file: &[u64]) -> bool {
    graph.len() == file.len()
        && graph
            .iter()
            .zip(file)
            .all(|(g, f)| g.is_none_or(|g| u64::try_from(g) == Ok(*f)))
}

/// `[?, 4]`: unknown dimensions as `?`, as the C consumer prints them.
fn graph_shape_text(graph: &[Option<i64>]) -> String {
    let dims: Vec<String> = graph
        .iter()
        .map(|d| d.map_or_else(|| "?".to_string(), |d| d.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_proto_encoding() {
        assert_eq!(
            config_proto(Threads { intra: 0, inter: 0 }),
            Vec::<u8>::new()
        );
        assert_eq!(
            config_proto(Threads { intra: 2, inter: 1 }),
            vec![0x10, 2, 0x28, 1]
        );
        assert_eq!(
            config_proto(Threads {
                intra: 300,
                inter: 0
            }),
            vec![0x10, 0xac, 0x02]
        );
    }

    #[test]
    fn shape_rule_checks_rank_and_known_dimensions_only() {
        // Graph [?, 4] (dynamic batch): any batch, but rank 2 and 4 columns.
        let batch = [None, Some(4)];
        assert!(admits(&batch, &[1, 4]));
        assert!(admits(&batch, &[0, 4]));
        assert!(admits(&batch, &[7, 4]));
        assert!(!admits(&batch, &[7, 5]));
        assert!(!admits(&batch, &[28]));
        assert!(!admits(&batch, &[7, 4, 1]));
        // Fully known [1, 24, 40, 3]: a transposed file with the same element count fails.
        let image = [Some(1), Some(24), Some(40), Some(3)];
        assert!(admits(&image, &[1, 24, 40, 3]));
        assert!(!admits(&image, &[1, 40, 24, 3]));
        // Scalars: rank 0 only.
        assert!(admits(&[], &[]));
        assert!(!admits(&[], &[1]));
        assert_eq!(graph_shape_text(&batch), "[?, 4]");
        assert_eq!(graph_shape_text(&[]), "[]");
    }
}
