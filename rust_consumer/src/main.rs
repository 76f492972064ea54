//! tfinterop Rust consumer: `--plan PLAN.tsv --results RESULTS.jsonl`,
//! `--version`, or the one-job CLI shorthand (see docs/consumer-contract.md).

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

use tfinterop_rust_consumer::panics;
use tfinterop_rust_consumer::plan::{parse_plan, PLAN_HEADER};
use tfinterop_rust_consumer::results::ResultsWriter;
use tfinterop_rust_consumer::runner::run_job;
use tfinterop_rust_consumer::service::{self, run_plan};

/// Runs TensorFlow models through the tensorflow crate for tfinterop.
#[derive(Parser, Debug)]
#[command(name = env!("CARGO_BIN_NAME"), disable_version_flag = true)]
struct Cli {
    /// Print the consumer record and exit.
    #[arg(long)]
    version: bool,
    /// Plan file to run.
    #[arg(long, value_name = "PLAN.tsv")]
    plan: Option<PathBuf>,
    /// JSON Lines results file (default: standard output).
    #[arg(long, value_name = "RESULTS.jsonl")]
    results: Option<PathBuf>,
    /// Shorthand: model path (SavedModel directory or GraphDef .pb).
    #[arg(long)]
    model: Option<String>,
    #[arg(long, value_parser = ["frozen", "saved_model"])]
    format: Option<String>,
    /// Comma-separated tag set (saved_model only).
    #[arg(long)]
    tags: Option<String>,
    /// Signature key (saved_model only).
    #[arg(long)]
    signature: Option<String>,
    #[arg(long = "input", value_name = "KEY[@TENSOR]=FILE.npy")]
    inputs: Vec<String>,
    /// PNG fed as float32 [1, H, W, 3] (NHWC, 0..255).
    #[arg(long = "image", value_name = "KEY[@TENSOR]=FILE.png")]
    images: Vec<String>,
    #[arg(long = "output", value_name = "KEY[@TENSOR]=FILE.npy")]
    outputs: Vec<String>,
    #[arg(long)]
    repeat: Option<String>,
    #[arg(long)]
    warmup: Option<String>,
    #[arg(long, value_name = "INTRA,INTER")]
    threads: Option<String>,
}

/// Exit status 2 with one line on stderr.
fn usage(msg: impl std::fmt::Display) -> ExitCode {
    service::usage(env!("CARGO_BIN_NAME"), msg)
}

fn main() -> ExitCode {
    panics::install_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.kind() == ErrorKind::DisplayHelp => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage(e.to_string().trim_start_matches("error: ")),
    };
    let tf_version = tensorflow::version().unwrap_or_else(|_| "unknown".into());

    let shorthand_given = cli.model.is_some()
        || cli.format.is_some()
        || cli.tags.is_some()
        || cli.signature.is_some()
        || !cli.inputs.is_empty()
        || !cli.images.is_empty()
        || !cli.outputs.is_empty()
        || cli.repeat.is_some()
        || cli.warmup.is_some()
        || cli.threads.is_some();

    if cli.version {
        if cli.plan.is_some() || cli.results.is_some() || shorthand_given {
            return usage("--version takes no other option");
        }
        let mut out = ResultsWriter::new(Box::new(io::stdout()));
        return match out.consumer(&tf_version) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => usage(format!("cannot write to standard output: {e}")),
        };
    }

    let plan_bytes = match (&cli.plan, shorthand_given) {
        (Some(_), true) => return usage("--plan cannot be combined with the shorthand options"),
        (Some(path), false) => match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => return usage(format!("cannot read plan {}: {e}", path.display())),
        },
        (None, true) => match shorthand_plan(&cli) {
            Ok(text) => text.into_bytes(),
            Err(msg) => return usage(msg),
        },
        (None, false) => return usage("give --plan, --version or --model (see --help)"),
    };
    let plan = match parse_plan(&plan_bytes) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };

    let out: Box<dyn io::Write> = match &cli.results {
        Some(path) => match File::create(path) {
            Ok(f) => Box::new(BufWriter::new(f)),
            Err(e) => return usage(format!("cannot create {}: {e}", path.display())),
        },
        None => Box::new(io::stdout()),
    };
    let mut out = ResultsWriter::new(out);
    let ran = out
        .consumer(&tf_version)
        .and_then(|()| run_plan(&plan, &mut out, run_job));
    match ran {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => usage(format!("cannot write results: {e}")),
    }
}

/// The shorthand is a one-job plan: render it as plan text so that it goes
/// through the very same parser and checks.
fn shorthand_plan(cli: &Cli) -> Result<String, String> {
    let mut lines = vec![PLAN_HEADER.to_string()];
    if let Some(t) = &cli.threads {
        let (intra, inter) = t
            .split_once(',')
            .ok_or_else(|| format!("--threads wants INTRA,INTER, got {t:?}"))?;
        lines.push(format!("threads\t{intra}\t{inter}"));
    }
    lines.push("job\tcli".into());
    let model = cli.model.as_deref().ok_or("--model is required")?;
    lines.push(format!("model\t{model}"));
    let format = cli.format.as_deref().ok_or("--format is required")?;
    lines.push(format!("format\t{format}"));
    for (name, value) in [
        ("tags", &cli.tags),
        ("signature", &cli.signature),
        ("warmup", &cli.warmup),
        ("repeat", &cli.repeat),
    ] {
        if let Some(v) = value {
            lines.push(format!("{name}\t{v}"));
        }
    }
    for (record, specs) in [
        ("input", &cli.inputs),
        ("image", &cli.images),
        ("output", &cli.outputs),
    ] {
        for s in specs {
            let (lhs, file) = s
                .split_once('=')
                .ok_or_else(|| format!("--{record} wants KEY[@TENSOR]=FILE, got {s:?}"))?;
            let (key, tensor) = lhs.split_once('@').unwrap_or((lhs, "-"));
            lines.push(format!("{record}\t{key}\t{tensor}\t{file}"));
        }
    }
    lines.push("end".into());
    // A TAB or newline inside a value would change the plan's structure.
    for line in &lines {
        if line.contains('\n') {
            return Err("option values cannot contain a newline".into());
        }
    }
    let expected_fields = |l: &str| match l.split('\t').next() {
        Some("input" | "image" | "output") => 4,
        Some("threads") => 3,
        Some("end") => 1,
        _ => 2,
    };
    if lines
        .iter()
        .skip(1)
        .any(|l| l.split('\t').count() != expected_fields(l))
    {
        return Err("option values cannot contain a TAB".into());
    }
    Ok(lines.join("\n") + "\n")
}
