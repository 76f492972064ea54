//! Tensor files <-> `tensorflow::Tensor`: `.npy`, the two-file string encoding
//! and PNG images.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use crate::npy;
use anyhow::{anyhow, bail, Context, Result};
use npyz::{AutoSerialize, Deserialize, WriterBuilder};
use num_complex::Complex;
use tensorflow::{DataType, FetchToken, Operation, SessionRunArgs, Tensor, TensorType};

/// Why string tensors with arbitrary bytes cannot pass through this binding.
pub const UTF8_LIMITATION: &str = concat!(
    "tensorflow crate ",
    env!("TFINTEROP_TENSORFLOW_CRATE"),
    " handles DT_STRING only as UTF-8 Rust String (tensorflow/rust#422)"
);

/// A tensor element type with its `.npy` counterpart (identical except float16 under
/// crate 0.17, whose f16 is `half` 1.x's while npyz's is `half` 2.x's; each manifest
/// depends on the `half` its crate uses, so under 0.21 both are the same type).
pub trait Elem: TensorType + Copy {
    type Npy: Deserialize + AutoSerialize + Copy;
    fn from_npy(v: Self::Npy) -> Self;
    fn to_npy(self) -> Self::Npy;
}

macro_rules! same_repr_elem {
    ($($t:ty),* $(,)?) => {$(
        impl Elem for $t {
            type Npy = $t;
            fn from_npy(v: $t) -> $t { v }
            fn to_npy(self) -> $t { self }
        }
    )*};
}
same_repr_elem!(
    f32,
    f64,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    bool,
    Complex<f32>,
    Complex<f64>
);

impl Elem for half::f16 {
    type Npy = npyz::half::f16;
    fn from_npy(v: Self::Npy) -> Self {
        half::f16::from_bits(v.to_bits())
    }
    fn to_npy(self) -> Self::Npy {
        npyz::half::f16::from_bits(self.to_bits())
    }
}

/// Every dtype the contract carries: enum variant (= `DataType` variant),
/// Rust element type, contract name.
macro_rules! host_tensor {
    ($($v:ident => $t:ty, $name:literal;)*) => {
        /// A tensor of any contract dtype, owned by the host.
        pub enum HostTensor {
            $($v(Tensor<$t>),)*
            String(Tensor<String>),
        }

        impl HostTensor {
            /// Reads `path` as a tensor of graph dtype `dtype`.
            pub fn read(dtype: DataType, path: &Path, what: &str) -> Result<Self> {
                match dtype {
                    $(DataType::$v => Ok(HostTensor::$v(read_numeric::<$t>(path, &format!("{what} ({})", $name))?)),)*
                    DataType::String => Ok(HostTensor::String(read_strings(path, what)?)),
                    other => bail!("{what} has graph dtype {other}, which the contract does not carry"),
                }
            }

            pub fn feed<'a>(&'a self, args: &mut SessionRunArgs<'a>, op: &Operation, index: i32) {
                match self {
                    $(HostTensor::$v(t) => args.add_feed(op, index, t),)*
                    HostTensor::String(t) => args.add_feed(op, index, t),
                }
            }

            /// Takes fetch number `position` out of `args`, by its runtime dtype.
            pub fn fetch(args: &mut SessionRunArgs<'_>, token: FetchToken, position: usize) -> Result<Self> {
                let dtype = args
                    .output_data_type(position)
                    .ok_or_else(|| anyhow!("output not available after the run"))?;
                Ok(match dtype {
                    $(DataType::$v => HostTensor::$v(args.fetch(token)?),)*
                    DataType::String => HostTensor::String(args.fetch(token)?),
                    other => bail!("fetched dtype {other} is not one the contract carries"),
                })
            }

            pub fn dtype_name(&self) -> &'static str {
                match self {
                    $(HostTensor::$v(_) => $name,)*
                    HostTensor::String(_) => "string",
                }
            }

            pub fn dims(&self) -> &[u64] {
                match self {
                    $(HostTensor::$v(t) => t.dims(),)*
                    HostTensor::String(t) => t.dims(),
                }
            }

            pub fn write(&self, path: &Path, what: &str) -> Result<()> {
                match self {
                    $(HostTensor::$v(t) => write_numeric(t, path),)*
                    HostTensor::String(t) => write_strings(t, path, what),
                }
            }
        }
    };
}

host_tensor! {
    Half => half::f16, "float16";
    Float => f32, "float32";
    Double => f64, "float64";
    Int8 => i8, "int8";
    Int16 => i16, "int16";
    Int32 => i32, "int32";
    Int64 => i64, "int64";
    UInt8 => u8, "uint8";
    UInt16 => u16, "uint16";
    UInt32 => u32, "uint32";
    UInt64 => u64, "uint64";
    Bool => bool, "bool";
    Complex64 => Complex<f32>, "complex64";
    Complex128 => Complex<f64>, "complex128";
}

pub use crate::npy::element_count;

/// Reads an `.npy` file whose dtype must be exactly `T`'s contract dtype;
/// `role` names what the file is for in error messages.
fn read_npy<T: Elem>(path: &Path, role: &str) -> Result<(Vec<u64>, Vec<T>)> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (shape, values) = npy::decode::<T::Npy>(&bytes, &path.display().to_string(), role)?;
    Ok((shape, values.into_iter().map(T::from_npy).collect()))
}

fn read_numeric<T: Elem>(path: &Path, role: &str) -> Result<Tensor<T>> {
    let (shape, values) = read_npy::<T>(path, role)?;
    let mut t = Tensor::<T>::new(&shape);
    // Zero-element tensors may have a null data pointer: never deref them.
    if !values.is_empty() {
        t.copy_from_slice(&values);
    }
    Ok(t)
}

/// `FILE` -> `FILE.bytes`
pub fn bytes_path(path: &Path) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(".bytes");
    PathBuf::from(s)
}

fn read_strings(path: &Path, what: &str) -> Result<Tensor<String>> {
    let (shape, lengths) = read_npy::<i64>(path, &format!("the lengths of {what} (string)"))?;
    let bpath = bytes_path(path);
    let data = fs::read(&bpath).with_context(|| format!("cannot read {}", bpath.display()))?;
    let slices = npy::string_slices(&lengths, &data)
        .map_err(|e| anyhow!("{} and {}: {e}", path.display(), bpath.display()))?;
    let mut strings = Vec::with_capacity(slices.len());
    for (i, bytes) in slices.into_iter().enumerate() {
        let s = String::from_utf8(bytes.to_vec()).map_err(|_| {
            anyhow!("string {what} element {i} is not valid UTF-8: {UTF8_LIMITATION}")
        })?;
        strings.push(s);
    }
    let mut t = Tensor::<String>::new(&shape);
    for (slot, s) in t.iter_mut().zip(strings) {
        *slot = s;
    }
    Ok(t)
}

/// Decodes a PNG into float32 `[1, H, W, 3]`, NHWC, values 0..255.
pub fn read_png(path: &Path) -> Result<HostTensor> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .with_context(|| format!("{} is not a valid PNG", path.display()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    // RgbImage's buffer is row-major interleaved RGB: index ((y*W)+x)*3+c.
    let values: Vec<f32> = img.as_raw().iter().map(|&v| f32::from(v)).collect();
    let mut t = Tensor::<f32>::new(&[1, u64::from(h), u64::from(w), 3]);
    if !values.is_empty() {
        t.copy_from_slice(&values);
    }
    Ok(HostTensor::Float(t))
}

fn write_npy<N: AutoSerialize + Copy>(
    path: &Path,
    dims: &[u64],
    values: impl IntoIterator<Item = N>,
) -> Result<()> {
    let mut buf = Vec::new();
    let mut w = npyz::WriteOptions::<N>::new()
        .default_dtype()
        .shape(dims)
        .writer(&mut buf)
        .begin_nd()?;
    w.extend(values)?;
    w.finish()?;
    fs::write(path, &buf).with_context(|| format!("cannot write {}", path.display()))
}

fn write_numeric<T: Elem>(t: &Tensor<T>, path: &Path) -> Result<()> {
    let values: &[T] = if element_count(t.dims()) == Some(0) {
        &[]
    } else {
        t
    };
    write_npy(path, t.dims(), values.iter().map(|v| v.to_npy()))
}

fn write_strings(t: &Tensor<String>, path: &Path, what: &str) -> Result<()> {
    let values: &[String] = if element_count(t.dims()) == Some(0) {
        &[]
    } else {
        // The crate decodes every element with from_utf8(..).unwrap() on first
        // access and panics on other bytes; turn that into this job's error.
        crate::panics::catch(|| {
            let _: &[String] = t;
        })
        .map_err(|_| {
            anyhow!("{what} is not valid UTF-8 (the crate does not say which element): {UTF8_LIMITATION}")
        })?;
        t
    };
    let lengths: Vec<i64> = values.iter().map(|s| s.len() as i64).collect();
    write_npy(path, t.dims(), lengths)?;
    let bpath = bytes_path(path);
    fs::write(&bpath, values.concat()).with_context(|| format!("cannot write {}", bpath.display()))
}
