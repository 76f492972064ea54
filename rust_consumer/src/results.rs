//! JSON Lines result records, flushed one by one so a crash keeps finished jobs.

use std::io::{self, Write};

use serde::Serialize;

use crate::runner::{JobError, JobSuccess, OutputRecord, Stage};

/// The registry name, `[package.metadata.tfinterop] consumer` of the building manifest.
pub const CONSUMER_NAME: &str = env!("TFINTEROP_CONSUMER_NAME");
pub const CONTRACT_VERSION: u32 = 1;
/// The `tensorflow` crate version this binary was compiled with: build.rs reads it from the
/// building manifest's Cargo.lock (0.17.0 for ../Cargo.toml, 0.21.0 for ../crate-0.21).
pub const TENSORFLOW_CRATE: &str = env!("TFINTEROP_TENSORFLOW_CRATE");
pub const BINDING: &str = concat!("tensorflow crate ", env!("TFINTEROP_TENSORFLOW_CRATE"));

#[derive(Serialize)]
struct ConsumerRecord<'a> {
    record: &'static str,
    name: &'a str,
    contract: u32,
    tf_version: &'a str,
    binding: &'static str,
}

#[derive(Serialize)]
struct JobOkRecord<'a> {
    record: &'static str,
    id: &'a str,
    status: &'static str,
    load_s: f64,
    first_run_s: f64,
    steady_s: &'a [f64],
    outputs: &'a [OutputRecord],
}

#[derive(Serialize)]
struct JobErrorRecord<'a> {
    record: &'static str,
    id: &'a str,
    status: &'static str,
    stage: Stage,
    error: &'a str,
}

#[derive(Serialize)]
struct DoneRecord {
    record: &'static str,
    jobs: usize,
    failed: usize,
    max_rss_kb: i64,
}

pub struct ResultsWriter {
    out: Box<dyn Write>,
}

impl ResultsWriter {
    pub fn new(out: Box<dyn Write>) -> Self {
        ResultsWriter { out }
    }

    fn write<T: Serialize>(&mut self, record: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// The consumer record of this build (the registry's name for it).
    pub fn consumer(&mut self, tf_version: &str) -> io::Result<()> {
        self.consumer_named(CONSUMER_NAME, tf_version)
    }

    /// The consumer record of a program that reuses this contract code under its own name.
    pub fn consumer_named(&mut self, name: &str, tf_version: &str) -> io::Result<()> {
        self.write(&ConsumerRecord {
            record: "consumer",
            name,
            contract: CONTRACT_VERSION,
            tf_version,
            binding: BINDING,
        })
    }

    pub fn job(&mut self, id: &str, result: &Result<JobSuccess, JobError>) -> io::Result<()> {
        match result {
            Ok(ok) => self.write(&JobOkRecord {
                record: "job",
                id,
                status: "ok",
                load_s: ok.load_s,
                first_run_s: ok.first_run_s,
                steady_s: &ok.steady_s,
                outputs: &ok.outputs,
            }),
            Err(e) => self.write(&JobErrorRecord {
                record: "job",
                id,
                status: "error",
                stage: e.stage,
                error: &clip(&e.message),
            }),
        }
    }

    pub fn done(&mut self, jobs: usize, failed: usize) -> io::Result<()> {
        self.write(&DoneRecord {
            record: "done",
            jobs,
            failed,
            max_rss_kb: max_rss_kb(),
        })
    }
}

/// Keeps records readable when a library quotes a whole hostile input back.
fn clip(message: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 4096;
    if message.len() <= MAX {
        return message.into();
    }
    let mut end = MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes cut)", &message[..end], message.len() - end).into()
}

/// Peak resident set size in KiB of this process image. `ru_maxrss` survives execve, so a
/// consumer started by a big parent would report the parent's peak; VmHWM is our own.
pub fn max_rss_kb() -> i64 {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        });
    if let Some(kb) = from_proc {
        return kb;
    }
    // SAFETY: getrusage only writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
        usage.ru_maxrss
    } else {
        -1
    }
}
