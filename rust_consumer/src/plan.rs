//! Plan file parser (consumer contract version 1).
//!
//! Pure: bytes in, [`Plan`] or [`PlanError`] out, no I/O, so it can be fuzzed.
//! A [`PlanError`] means the whole plan is invalid (exit status 2). Problems that
//! only concern one well-delimited job (missing `model`, `tags` on a frozen graph,
//! ...) are kept in [`JobEntry::spec`] so that job alone fails with stage `plan`.

use std::collections::HashSet;
use std::fmt;

/// The exact first line of every plan.
pub const PLAN_HEADER: &str = "tfinterop-plan\t1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub threads: Option<Threads>,
    pub jobs: Vec<JobEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threads {
    pub intra: u32,
    pub inter: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEntry {
    pub id: String,
    /// `Err` holds the message of a job-level plan error (stage `plan`).
    pub spec: Result<JobSpec, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Frozen,
    SavedModel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    pub model: String,
    pub format: Format,
    pub tags: Vec<String>,
    pub signature: String,
    pub inputs: Vec<InputSpec>,
    pub outputs: Vec<OutputSpec>,
    pub warmup: u32,
    pub repeat: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// `.npy` file (or the two-file string encoding, chosen by graph dtype).
    Npy(String),
    /// PNG image fed as float32 `[1, H, W, 3]` (extension record `image`).
    Png(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    pub key: String,
    /// `None` when the plan says `-`.
    pub tensor: Option<String>,
    pub source: InputSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    pub key: String,
    pub tensor: Option<String>,
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// 1-based line number; 0 for problems not tied to a line.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "invalid plan: {}", self.message)
        } else {
            write!(f, "invalid plan, line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for PlanError {}

pub const DEFAULT_TAGS: &str = "serve";
pub const DEFAULT_SIGNATURE: &str = "serving_default";

/// Records of one job as written, validated together at `end`.
#[derive(Default)]
struct JobDraft {
    id: String,
    model: Vec<String>,
    format: Vec<Format>,
    tags: Vec<Vec<String>>,
    signature: Vec<String>,
    warmup: Vec<u32>,
    repeat: Vec<u32>,
    inputs: Vec<InputSpec>,
    outputs: Vec<OutputSpec>,
}

pub fn parse_plan(bytes: &[u8]) -> Result<Plan, PlanError> {
    let text = std::str::from_utf8(bytes).map_err(|e| PlanError {
        line: 0,
        message: format!("not UTF-8 ({e})"),
    })?;
    let mut lines = text.split('\n').enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, first)) if first == PLAN_HEADER => {}
        Some((_, first)) => {
            return Err(err(
                1,
                format!(
                    "first line must be exactly {:?}, got {:?}",
                    PLAN_HEADER,
                    truncate(first)
                ),
            ))
        }
        None => unreachable!("split always yields one item"),
    }

    let mut threads = None;
    let mut jobs: Vec<JobEntry> = Vec::new();
    let mut ids = HashSet::new();
    let mut current: Option<(usize, JobDraft)> = None;

    for (n, line) in lines {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let (kind, args) = (fields[0], &fields[1..]);
        match kind {
            "threads" => {
                let [intra, inter] = arity::<2>(n, kind, args)?;
                if current.is_some() || !jobs.is_empty() {
                    return Err(err(n, "'threads' must come before the first job".into()));
                }
                if threads.is_some() {
                    return Err(err(n, "'threads' given twice".into()));
                }
                threads = Some(Threads {
                    intra: count(n, "intra-op threads", intra, i32::MAX as u32)?,
                    inter: count(n, "inter-op threads", inter, i32::MAX as u32)?,
                });
            }
            "job" => {
                let [id] = arity::<1>(n, kind, args)?;
                if let Some((start, _)) = &current {
                    return Err(err(
                        n,
                        format!("'job' inside the job opened on line {start} (missing 'end')"),
                    ));
                }
                if !ids.insert(id.to_string()) {
                    return Err(err(n, format!("duplicate job id {:?}", truncate(id))));
                }
                current = Some((
                    n,
                    JobDraft {
                        id: id.to_string(),
                        ..JobDraft::default()
                    },
                ));
            }
            "end" => {
                arity::<0>(n, kind, args)?;
                let (_, draft) = current
                    .take()
                    .ok_or_else(|| err(n, "'end' without a job".into()))?;
                let id = draft.id.clone();
                jobs.push(JobEntry {
                    id,
                    spec: finish(draft),
                });
            }
            "model" | "format" | "tags" | "signature" | "input" | "image" | "output" | "warmup"
            | "repeat" => {
                let Some((_, job)) = current.as_mut() else {
                    return Err(err(n, format!("'{kind}' outside a job")));
                };
                job_record(n, kind, args, job)?;
            }
            other => {
                return Err(err(n, format!("unknown record type {:?}", truncate(other))));
            }
        }
    }
    if let Some((start, _)) = current {
        return Err(err(0, format!("job opened on line {start} has no 'end'")));
    }
    Ok(Plan { threads, jobs })
}

fn job_record(n: usize, kind: &str, args: &[&str], job: &mut JobDraft) -> Result<(), PlanError> {
    match kind {
        "model" => {
            let [path] = arity::<1>(n, kind, args)?;
            job.model.push(path.to_string());
        }
        "format" => {
            let [f] = arity::<1>(n, kind, args)?;
            job.format.push(match f {
                "frozen" => Format::Frozen,
                "saved_model" => Format::SavedModel,
                _ => {
                    return Err(err(
                        n,
                        format!(
                            "format must be frozen or saved_model, got {:?}",
                            truncate(f)
                        ),
                    ))
                }
            });
        }
        "tags" => {
            let [t] = arity::<1>(n, kind, args)?;
            job.tags.push(parse_tags(t).map_err(|m| err(n, m))?);
        }
        "signature" => {
            let [s] = arity::<1>(n, kind, args)?;
            job.signature.push(s.to_string());
        }
        "warmup" => {
            let [v] = arity::<1>(n, kind, args)?;
            job.warmup.push(count(n, "warmup", v, u32::MAX)?);
        }
        "repeat" => {
            let [v] = arity::<1>(n, kind, args)?;
            let r = count(n, "repeat", v, u32::MAX)?;
            if r == 0 {
                return Err(err(n, "repeat must be >= 1".into()));
            }
            job.repeat.push(r);
        }
        "input" | "image" => {
            let [key, tensor, file] = arity::<3>(n, kind, args)?;
            let file = file.to_string();
            job.inputs.push(InputSpec {
                key: key.to_string(),
                tensor: tensor_field(tensor),
                source: if kind == "image" {
                    InputSource::Png(file)
                } else {
                    InputSource::Npy(file)
                },
            });
        }
        "output" => {
            let [key, tensor, file] = arity::<3>(n, kind, args)?;
            job.outputs.push(OutputSpec {
                key: key.to_string(),
                tensor: tensor_field(tensor),
                file: file.to_string(),
            });
        }
        _ => unreachable!("caller only passes job records"),
    }
    Ok(())
}

/// Cross-record checks of one job; an error here fails only this job.
fn finish(d: JobDraft) -> Result<JobSpec, String> {
    let model = single("model", d.model)?.ok_or("job has no 'model' record")?;
    let format = single("format", d.format)?.ok_or("job has no 'format' record")?;
    let tags = single("tags", d.tags)?;
    let signature = single("signature", d.signature)?;
    let warmup = single("warmup", d.warmup)?.unwrap_or(0);
    let repeat = single("repeat", d.repeat)?.unwrap_or(1);
    if format == Format::Frozen {
        if tags.is_some() {
            return Err("'tags' is for saved_model only, this job is frozen".into());
        }
        if signature.is_some() {
            return Err("'signature' is for saved_model only, this job is frozen".into());
        }
    }
    if d.outputs.is_empty() {
        return Err("job has no 'output' record".into());
    }
    // Keys name inputs and outputs in results; inputs and outputs are separate namespaces.
    let mut seen = HashSet::new();
    for key in d.inputs.iter().map(|i| ("input", &i.key)) {
        if !seen.insert(key) {
            return Err(format!("input {:?} is given twice", key.1));
        }
    }
    for key in d.outputs.iter().map(|o| ("output", &o.key)) {
        if !seen.insert(key) {
            return Err(format!("output {:?} is given twice", key.1));
        }
    }
    Ok(JobSpec {
        model,
        format,
        tags: tags.unwrap_or_else(|| vec![DEFAULT_TAGS.to_string()]),
        signature: signature.unwrap_or_else(|| DEFAULT_SIGNATURE.to_string()),
        inputs: d.inputs,
        outputs: d.outputs,
        warmup,
        repeat,
    })
}

/// `op` and `op:0` name the same tensor.
pub fn canonical_tensor_name(name: &str) -> String {
    if name.contains(':') {
        name.to_string()
    } else {
        format!("{name}:0")
    }
}

pub fn parse_tags(t: &str) -> Result<Vec<String>, String> {
    let tags: Vec<String> = t.split(',').map(str::to_string).collect();
    if tags.iter().any(String::is_empty) {
        return Err(format!("empty tag in tag set {:?}", truncate(t)));
    }
    Ok(tags)
}

fn tensor_field(t: &str) -> Option<String> {
    (t != "-").then(|| t.to_string())
}

fn single<T>(what: &str, mut v: Vec<T>) -> Result<Option<T>, String> {
    match v.len() {
        0 | 1 => Ok(v.pop()),
        k => Err(format!("'{what}' given {k} times")),
    }
}

/// Exactly `N` non-empty fields after the record type.
fn arity<'a, const N: usize>(
    n: usize,
    kind: &str,
    args: &[&'a str],
) -> Result<[&'a str; N], PlanError> {
    let arr: [&str; N] = args.try_into().map_err(|_| {
        err(
            n,
            format!("'{kind}' takes {N} field(s), got {}", args.len()),
        )
    })?;
    if arr.iter().any(|f| f.is_empty()) {
        return Err(err(n, format!("'{kind}' has an empty field")));
    }
    Ok(arr)
}

/// Non-negative decimal integer (digits only: no sign, no spaces) up to `max`.
fn count(n: usize, what: &str, v: &str, max: u32) -> Result<u32, PlanError> {
    let bad = || {
        err(
            n,
            format!(
                "{what} must be an integer in 0..={max}, got {:?}",
                truncate(v)
            ),
        )
    };
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    v.parse::<u32>().ok().filter(|x| *x <= max).ok_or_else(bad)
}

fn err(line: usize, message: String) -> PlanError {
    PlanError { line, message }
}

/// Keeps error messages one short line even for hostile input.
fn truncate(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(body: &str) -> Result<Plan, PlanError> {
        parse_plan(format!("{PLAN_HEADER}\n{body}").as_bytes())
    }

    const JOB: &str =
        "job\tj\nmodel\tm.pb\nformat\tfrozen\ninput\tx:0\t-\tx.npy\noutput\ty\ty:0\ty.npy\nend\n";

    #[test]
    fn parses_minimal_job() {
        let p = plan(&format!("# comment\n\nthreads\t1\t2\n{JOB}")).unwrap();
        assert_eq!(p.threads, Some(Threads { intra: 1, inter: 2 }));
        let spec = p.jobs[0].spec.as_ref().unwrap();
        assert_eq!(spec.format, Format::Frozen);
        assert_eq!(spec.repeat, 1);
        assert_eq!(spec.warmup, 0);
        assert_eq!(spec.inputs[0].tensor, None);
        assert_eq!(spec.outputs[0].tensor.as_deref(), Some("y:0"));
    }

    #[test]
    fn saved_model_defaults_and_image() {
        let p = plan("job\ts\nmodel\tdir\nformat\tsaved_model\nimage\timg\t-\ta.png\noutput\ty\t-\ty.npy\nwarmup\t3\nrepeat\t2\nend").unwrap();
        let s = p.jobs[0].spec.as_ref().unwrap();
        assert_eq!(s.tags, vec!["serve"]);
        assert_eq!(s.signature, "serving_default");
        assert_eq!(s.inputs[0].source, InputSource::Png("a.png".into()));
        assert_eq!((s.warmup, s.repeat), (3, 2));
    }

    #[test]
    fn plan_level_errors() {
        for bad in [
            "bogus\t1\n",
            "model\tm\n",
            "job\ta\n",
            "job\ta\njob\tb\n",
            "job\ta\nend\tx\n",
            "end\n",
            "threads\t1\n",
            "threads\t-1\t0\n",
            "threads\t+1\t0\n",
            &format!("{JOB}threads\t1\t1\n"),
            &format!("{JOB}{JOB}"),
            "job\ta\nrepeat\t0\nend\n",
            "job\ta\nformat\tonnx\nend\n",
            "job\ta\ninput\tx\tx.npy\nend\n",
            "job\t\nend\n",
            "job\ta\ntags\tserve,,gpu\nend\n",
        ] {
            assert!(plan(bad).is_err(), "accepted: {bad:?}");
        }
        assert!(parse_plan(b"tfinterop-plan\t2\n").is_err());
        assert!(parse_plan(b"\xff").is_err());
        assert!(parse_plan(b"").is_err());
    }

    #[test]
    fn job_level_errors() {
        for bad in [
            "job\ta\nformat\tfrozen\noutput\ty\t-\ty.npy\nend\n",
            "job\ta\nmodel\tm\noutput\ty\t-\ty.npy\nend\n",
            "job\ta\nmodel\tm\nformat\tfrozen\nend\n",
            "job\ta\nmodel\tm\nformat\tfrozen\ntags\tserve\noutput\ty\t-\ty.npy\nend\n",
            "job\ta\nmodel\tm\nformat\tfrozen\noutput\ty\t-\ty.npy\noutput\ty\tz\tz.npy\nend\n",
            "job\ta\nmodel\tm\nformat\tfrozen\ninput\tx\t-\tx.npy\ninput\tx\t-\tx.npy\noutput\ty\t-\ty.npy\nend\n",
            "job\ta\nmodel\tm\nmodel\tm\nformat\tfrozen\noutput\ty\t-\ty.npy\nend\n",
        ] {
            let p = plan(bad).unwrap();
            assert!(p.jobs[0].spec.is_err(), "accepted: {bad:?}");
        }
    }
}
