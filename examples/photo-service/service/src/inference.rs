//! ================= YOUR INFERENCE CODE GOES HERE =================
//!
//! The photo service's inference, as the service runs it (the shape of the first source
//! document, seed 000): decode the photo, resize it to 224x224 and scale it to [-1, 1] with
//! the `image` crate, then run MobileNetV3 through the tensorflow crate. Made with
//! `tfinterop new-consumer rust photo-service`; only `preprocess` and its call in
//! `Model::prepare` were written for the service, the rest is the scaffold's.
//!
//! tfinterop runs every job of its plan (one model, one signature) through the three
//! functions of the `Inference` trait (`tfinterop_rust_consumer::service`), and compares the
//! first run's outputs with TensorFlow's Python reference (`Feeds` is whatever `prepare`
//! makes; here the input tensors):
//!
//! * `Model::load`    once per job, timed (`load_s`): load the model, find its tensors.
//! * `Model::prepare` once per job, not timed: the feeds. The fixture declares the photo
//!   (`photos=`) and this consumer `photo_input`, so the plan names the photo itself
//!   (`InputSource::Png`): the service's own preprocessing runs here.
//! * `Model::run`     1 + warmup + repeat times, timed (`first_run_s`, `steady_s`).

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use image::imageops::FilterType;
use tensorflow::{
    DataType, Graph, ImportGraphDefOptions, Operation, OutputName, SavedModelBundle, Session,
    SessionOptions, SessionRunArgs, Tensor,
};
use tfinterop_rust_consumer::plan::{Format, InputSource, JobSpec, Threads};
use tfinterop_rust_consumer::runner::config_proto;
use tfinterop_rust_consumer::service::Inference;
use tfinterop_rust_consumer::tensors::HostTensor;

/// The model's input size.
const SIZE: u32 = 224;

/// The service's preprocessing: any photo to float32 `[1, 224, 224, 3]` in [-1, 1], NHWC
/// (row-major: element `[0, y, x, c]` is row y, column x). The image crate's Triangle filter
/// is its bilinear resize; pillow's BILINEAR (models/classifier.py) differs slightly.
pub fn preprocess(path: &Path) -> Result<Tensor<f32>> {
    let photo = image::open(path).with_context(|| format!("cannot decode {}", path.display()))?;
    let resized = image::imageops::resize(&photo.to_rgb8(), SIZE, SIZE, FilterType::Triangle);
    let values: Vec<f32> = resized.as_raw().iter().map(|&v| f32::from(v) / 127.5 - 1.0).collect();
    Ok(Tensor::new(&[1, u64::from(SIZE), u64::from(SIZE), 3]).with_values(&values)?)
}

enum Loaded {
    Frozen(Session),
    SavedModel(SavedModelBundle),
}

/// A graph tensor: its operation, output index and dtype.
struct Port {
    op: Operation,
    index: i32,
    dtype: DataType,
}

pub struct Model {
    loaded: Loaded,
    inputs: Vec<Port>,
    outputs: Vec<Port>,
}

impl Inference for Model {
    type Feeds = Vec<HostTensor>;

    fn load(job: &JobSpec, threads: Option<Threads>) -> Result<Model> {
        let mut options = SessionOptions::new();
        let config = threads.map(config_proto).unwrap_or_default();
        if !config.is_empty() {
            options.set_config(&config)?;
        }
        let mut graph = Graph::new();
        let loaded = match job.format {
            Format::Frozen => {
                let bytes = std::fs::read(&job.model).with_context(|| format!("cannot read {}", job.model))?;
                graph.import_graph_def(&bytes, &ImportGraphDefOptions::new())?;
                Loaded::Frozen(Session::new(&options, &graph)?)
            }
            Format::SavedModel => {
                Loaded::SavedModel(SavedModelBundle::load(&options, &job.tags, &mut graph, &job.model)?)
            }
        };
        let port = |key: &str, tensor: Option<&str>, is_input: bool| -> Result<Port> {
            // A SavedModel's keys resolve through its SignatureDef; a frozen graph's tensors
            // are named by the plan.
            let name: OutputName = match &loaded {
                Loaded::SavedModel(bundle) => {
                    let signature = bundle.meta_graph_def().get_signature(&job.signature)?;
                    let info = if is_input { signature.get_input(key) } else { signature.get_output(key) };
                    info?.name().clone()
                }
                Loaded::Frozen(_) => {
                    let tensor = tensor.unwrap_or(key);
                    tensor.parse().map_err(|e| anyhow!("'{tensor}' is not a tensor name: {e}"))?
                }
            };
            let op = graph.operation_by_name_required(&name.name)?;
            let dtype = op.output_type(usize::try_from(name.index)?);
            Ok(Port { op, index: name.index, dtype })
        };
        let inputs = job.inputs.iter().map(|i| port(&i.key, i.tensor.as_deref(), true)).collect::<Result<_>>()?;
        let outputs = job.outputs.iter().map(|o| port(&o.key, o.tensor.as_deref(), false)).collect::<Result<_>>()?;
        Ok(Model { loaded, inputs, outputs })
    }

    fn prepare(&self, job: &JobSpec) -> Result<Vec<HostTensor>> {
        job.inputs
            .iter()
            .zip(&self.inputs)
            .map(|(input, port)| match &input.source {
                InputSource::Npy(file) => HostTensor::read(port.dtype, Path::new(file), &format!("input '{}'", input.key)),
                InputSource::Png(photo) => Ok(HostTensor::Float(preprocess(Path::new(photo))?)),
            })
            .collect()
    }

    fn run(&self, feeds: &Vec<HostTensor>) -> Result<Vec<HostTensor>> {
        let mut args = SessionRunArgs::new();
        for (tensor, port) in feeds.iter().zip(&self.inputs) {
            tensor.feed(&mut args, &port.op, port.index);
        }
        let tokens: Vec<_> = self.outputs.iter().map(|p| args.request_fetch(&p.op, p.index)).collect();
        let session = match &self.loaded {
            Loaded::Frozen(session) => session,
            Loaded::SavedModel(bundle) => &bundle.session,
        };
        session.run(&mut args)?;
        tokens.into_iter().enumerate().map(|(position, token)| HostTensor::fetch(&mut args, token, position)).collect()
    }
}
