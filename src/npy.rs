//! NumPy `.npy` and `.npz` files: the exchange format for model inputs and reference outputs.
//!
//! `.npy` (format versions 1, 2 and 3) holds one C-order, little-endian array of one of the
//! dtypes of [`ArrayData`]; `.npz` is a zip archive of `.npy` members, keyed by the member name
//! without its `.npy` suffix. Reading accepts stored and deflated members (`np.savez` and
//! `np.savez_compressed`); writing always stores, so the files stay mmap- and diff-friendly.
//!
//! Fortran-order and big-endian arrays are refused with a clear error rather than silently
//! transposed or byte-swapped: no producer edgec cares about writes them, and guessing would
//! turn a format mistake into wrong numbers.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::path::Path;

/// An n-dimensional array in C (row-major) order.
#[derive(Clone, Debug, PartialEq)]
pub struct NdArray {
    pub shape: Vec<usize>,
    pub data: ArrayData,
}

/// The element storage of an [`NdArray`]; one variant per supported `.npy` dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum ArrayData {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    U8(Vec<u8>),
    I8(Vec<i8>),
    F64(Vec<f64>),
}

impl ArrayData {
    pub fn len(&self) -> usize {
        match self {
            ArrayData::F32(v) => v.len(),
            ArrayData::F16(v) => v.len(),
            ArrayData::I32(v) => v.len(),
            ArrayData::I64(v) => v.len(),
            ArrayData::Bool(v) => v.len(),
            ArrayData::U8(v) => v.len(),
            ArrayData::I8(v) => v.len(),
            ArrayData::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The NumPy dtype name (`float32`, `int64`, ...).
    pub fn dtype_name(&self) -> &'static str {
        match self {
            ArrayData::F32(_) => "float32",
            ArrayData::F16(_) => "float16",
            ArrayData::I32(_) => "int32",
            ArrayData::I64(_) => "int64",
            ArrayData::Bool(_) => "bool",
            ArrayData::U8(_) => "uint8",
            ArrayData::I8(_) => "int8",
            ArrayData::F64(_) => "float64",
        }
    }

    /// The `.npy` `descr` string.
    fn descr(&self) -> &'static str {
        match self {
            ArrayData::F32(_) => "<f4",
            ArrayData::F16(_) => "<f2",
            ArrayData::I32(_) => "<i4",
            ArrayData::I64(_) => "<i8",
            ArrayData::Bool(_) => "|b1",
            ArrayData::U8(_) => "|u1",
            ArrayData::I8(_) => "|i1",
            ArrayData::F64(_) => "<f8",
        }
    }

    /// Every element as `f64` (exact for every variant but the widest int64 values).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            ArrayData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            ArrayData::F16(v) => v.iter().map(|&x| f64::from(x.to_f32())).collect(),
            ArrayData::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            ArrayData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
            ArrayData::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            ArrayData::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            ArrayData::F64(v) => v.clone(),
        }
    }

    fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            ArrayData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ArrayData::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ArrayData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ArrayData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ArrayData::Bool(v) => v.iter().map(|&x| u8::from(x)).collect(),
            ArrayData::U8(v) => v.clone(),
            ArrayData::I8(v) => v.iter().map(|&x| x as u8).collect(),
            ArrayData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

impl NdArray {
    /// An array, checking that `data` holds exactly `product(shape)` elements.
    pub fn new(shape: Vec<usize>, data: ArrayData) -> std::result::Result<Self, String> {
        let expected = element_count(&shape).ok_or_else(|| format!("shape {shape:?} is too large"))?;
        if expected != data.len() {
            return Err(format!(
                "shape {shape:?} needs {expected} elements, but {} were given",
                data.len()
            ));
        }
        Ok(NdArray { shape, data })
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

const MAGIC: &[u8] = b"\x93NUMPY";

fn format_error(path: &Path, message: String) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, message),
    }
}

/// Read one `.npy` file.
pub fn read_npy(path: &Path) -> Result<NdArray> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_npy(&bytes).map_err(|m| format_error(path, m))
}

/// Write one `.npy` file (format version 1, or 2 when the header needs it).
pub fn write_npy(path: &Path, array: &NdArray) -> Result<()> {
    let bytes = encode_npy(array).map_err(|m| format_error(path, m))?;
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Read every member of a `.npz` archive, in archive order; keys lose their `.npy` suffix.
pub fn read_npz(path: &Path) -> Result<Vec<(String, NdArray)>> {
    let io = |source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| format_error(path, format!("not a valid .npz (zip) archive: {e}")))?;
    let mut out = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format_error(path, format!("member {i}: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_string();
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format_error(path, format!("member {name:?}: {e}")))?;
        let array = parse_npy(&bytes).map_err(|m| format_error(path, format!("member {name:?}: {m}")))?;
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        out.push((key, array));
    }
    Ok(out)
}

/// Write a `.npz` archive with one stored (uncompressed) `<key>.npy` member per array.
pub fn write_npz(path: &Path, arrays: &[(String, NdArray)]) -> Result<()> {
    let io = |source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let zip_err = |e: zip::result::ZipError| format_error(path, format!("writing the archive: {e}"));
    let file = std::fs::File::create(path).map_err(io)?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    for (key, array) in arrays {
        let bytes = encode_npy(array).map_err(|m| format_error(path, format!("{key:?}: {m}")))?;
        // Zip64 only when a member needs it, so small archives stay readable by anything.
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(bytes.len() as u64 >= u64::from(u32::MAX));
        zip.start_file(format!("{key}.npy"), options).map_err(zip_err)?;
        zip.write_all(&bytes).map_err(io)?;
    }
    let mut inner = zip.finish().map_err(zip_err)?;
    inner.flush().map_err(io)?;
    Ok(())
}

/// Decode a `.npy` byte buffer.
pub fn parse_npy(bytes: &[u8]) -> std::result::Result<NdArray, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (bad magic)".into());
    }
    let major = bytes[6];
    let (header_len, header_start): (usize, usize) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated .npy header".into());
            }
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (usize::try_from(len).map_err(|_| "header too large")?, 12)
        }
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let header_end = header_start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(&bytes[header_start..header_end]).map_err(|_| "the .npy header is not text")?;
    let header = parse_header(header)?;
    if header.fortran_order {
        return Err("Fortran-order arrays are not supported (save with np.ascontiguousarray)".into());
    }
    let count = element_count(&header.shape).ok_or_else(|| format!("shape {:?} is too large", header.shape))?;
    let payload = &bytes[header_end..];
    let (elem_type, size) = dtype_from_descr(&header.descr)?;
    let needed = count.checked_mul(size).ok_or("array too large")?;
    if payload.len() < needed {
        return Err(format!(
            "payload has {} bytes, but shape {:?} of {} needs {needed}",
            payload.len(),
            header.shape,
            header.descr
        ));
    }
    let payload = &payload[..needed];
    let data = match elem_type {
        Elem::F32 => ArrayData::F32(chunks::<4, _>(payload, f32::from_le_bytes)),
        Elem::F16 => ArrayData::F16(chunks::<2, _>(payload, half::f16::from_le_bytes)),
        Elem::I32 => ArrayData::I32(chunks::<4, _>(payload, i32::from_le_bytes)),
        Elem::I64 => ArrayData::I64(chunks::<8, _>(payload, i64::from_le_bytes)),
        Elem::F64 => ArrayData::F64(chunks::<8, _>(payload, f64::from_le_bytes)),
        Elem::Bool => ArrayData::Bool(payload.iter().map(|&b| b != 0).collect()),
        Elem::U8 => ArrayData::U8(payload.to_vec()),
        Elem::I8 => ArrayData::I8(payload.iter().map(|&b| b as i8).collect()),
    };
    Ok(NdArray {
        shape: header.shape,
        data,
    })
}

fn chunks<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Elem {
    F32,
    F16,
    I32,
    I64,
    F64,
    Bool,
    U8,
    I8,
}

fn dtype_from_descr(descr: &str) -> std::result::Result<(Elem, usize), String> {
    let (order, code) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    let (elem, size) = match code {
        "f4" => (Elem::F32, 4),
        "f2" => (Elem::F16, 2),
        "i4" => (Elem::I32, 4),
        "i8" => (Elem::I64, 8),
        "f8" => (Elem::F64, 8),
        "b1" => (Elem::Bool, 1),
        "u1" => (Elem::U8, 1),
        "i1" => (Elem::I8, 1),
        _ => {
            return Err(format!(
                "unsupported dtype {descr:?} (supported: <f4 <f2 <i4 <i8 <f8 |b1 |u1 |i1)"
            ))
        }
    };
    // Byte order only matters for multi-byte elements; '=' is native, and edgec only runs on
    // little-endian hosts.
    if size > 1 && order == '>' {
        return Err(format!(
            "big-endian dtype {descr:?} is not supported (save as little-endian)"
        ));
    }
    Ok((elem, size))
}

struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Parse the Python dict literal of a `.npy` header, e.g.
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }`.
fn parse_header(text: &str) -> std::result::Result<Header, String> {
    let value_after = |key: &str| -> std::result::Result<&str, String> {
        let pos = text
            .find(&format!("'{key}'"))
            .or_else(|| text.find(&format!("\"{key}\"")))
            .ok_or_else(|| format!("the .npy header has no {key:?}: {text:?}"))?;
        let rest = &text[pos + key.len() + 2..];
        let colon = rest
            .find(':')
            .ok_or_else(|| format!("malformed .npy header: {text:?}"))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr_text = value_after("descr")?;
    let quote = descr_text
        .chars()
        .next()
        .filter(|c| *c == '\'' || *c == '"')
        .ok_or_else(|| format!("structured dtypes are not supported: {text:?}"))?;
    let descr_end = descr_text[1..]
        .find(quote)
        .ok_or_else(|| format!("malformed descr in .npy header: {text:?}"))?;
    let descr = descr_text[1..1 + descr_end].to_string();

    let fortran_text = value_after("fortran_order")?;
    let fortran_order = if fortran_text.starts_with("True") {
        true
    } else if fortran_text.starts_with("False") {
        false
    } else {
        return Err(format!("malformed fortran_order in .npy header: {text:?}"));
    };

    let shape_text = value_after("shape")?;
    let shape_body = shape_text
        .strip_prefix('(')
        .and_then(|s| s.find(')').map(|e| &s[..e]))
        .ok_or_else(|| format!("malformed shape in .npy header: {text:?}"))?;
    let shape = shape_body
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| format!("bad dimension {s:?} in .npy header"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Header {
        descr,
        fortran_order,
        shape,
    })
}

/// Encode an array as `.npy` bytes, with the header padded so the data is 64-byte aligned
/// (as NumPy does, so readers can mmap it).
pub fn encode_npy(array: &NdArray) -> std::result::Result<Vec<u8>, String> {
    let expected = element_count(&array.shape).ok_or("shape too large")?;
    if expected != array.data.len() {
        return Err(format!(
            "shape {:?} needs {expected} elements, but the array holds {}",
            array.shape,
            array.data.len()
        ));
    }
    let shape = match array.shape.len() {
        1 => format!("({},)", array.shape[0]),
        _ => format!(
            "({})",
            array.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        array.data.descr()
    );
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    let pad_to = |prefix: usize| {
        let unpadded = prefix + dict.len() + 1;
        let total = unpadded.next_multiple_of(64);
        let mut header = dict.clone();
        header.push_str(&" ".repeat(total - unpadded));
        header.push('\n');
        header
    };
    let header = pad_to(10);
    if let Ok(len) = u16::try_from(header.len()) {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(header.as_bytes());
    } else {
        let header = pad_to(12);
        let len = u32::try_from(header.len()).map_err(|_| "header too large")?;
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(header.as_bytes());
    }
    out.extend_from_slice(&array.data.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_dtypes() -> Vec<NdArray> {
        vec![
            NdArray::new(vec![2, 3], ArrayData::F32(vec![0.5, -1.0, 2.0, 3.25, f32::MAX, -0.0])).unwrap(),
            NdArray::new(
                vec![3],
                ArrayData::F16([1.0f32, -2.5, 65504.0].map(half::f16::from_f32).to_vec()),
            )
            .unwrap(),
            NdArray::new(vec![2, 1], ArrayData::I32(vec![-7, i32::MAX])).unwrap(),
            NdArray::new(vec![2], ArrayData::I64(vec![i64::MIN, 5])).unwrap(),
            NdArray::new(vec![4], ArrayData::Bool(vec![true, false, false, true])).unwrap(),
            NdArray::new(vec![2, 2], ArrayData::U8(vec![0, 1, 254, 255])).unwrap(),
            NdArray::new(vec![2], ArrayData::I8(vec![-128, 127])).unwrap(),
            NdArray::new(vec![], ArrayData::F64(vec![std::f64::consts::PI])).unwrap(),
            NdArray::new(vec![0, 3], ArrayData::F32(vec![])).unwrap(),
        ]
    }

    #[test]
    fn npy_round_trips_every_dtype() {
        for a in all_dtypes() {
            let bytes = encode_npy(&a).unwrap();
            let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
            assert_eq!((10 + header_len) % 64, 0, "data is 64-byte aligned");
            assert_eq!(parse_npy(&bytes).unwrap(), a);
        }
    }

    #[test]
    fn reads_numpy_style_headers() {
        // Version 2 header, double quotes, no trailing comma, extra spaces.
        let dict = "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": ( 2 , ) }\n";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[2, 0]);
        bytes.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        bytes.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0]);
        let a = parse_npy(&bytes).unwrap();
        assert_eq!(a.shape, vec![2]);
        assert_eq!(a.data, ArrayData::I32(vec![1, 2]));
    }

    #[test]
    fn refuses_fortran_order_and_big_endian() {
        let make = |dict: &str| {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&[1, 0]);
            bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
            bytes.extend_from_slice(dict.as_bytes());
            bytes.extend_from_slice(&[0; 16]);
            bytes
        };
        let e = parse_npy(&make("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }")).unwrap_err();
        assert!(e.contains("Fortran"), "{e}");
        let e = parse_npy(&make("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }")).unwrap_err();
        assert!(e.contains("big-endian"), "{e}");
        let e = parse_npy(&make("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }")).unwrap_err();
        assert!(e.contains("unsupported dtype"), "{e}");
        let e = parse_npy(&make("{'descr': '<f4', 'fortran_order': False, 'shape': (9,), }")).unwrap_err();
        assert!(e.contains("payload"), "{e}");
        assert!(parse_npy(b"PK\x03\x04 not npy").is_err());
    }

    #[test]
    fn npz_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npz");
        let arrays: Vec<(String, NdArray)> = all_dtypes()
            .into_iter()
            .enumerate()
            .map(|(i, a)| (format!("input:x.{i}/y"), a))
            .collect();
        write_npz(&path, &arrays).unwrap();
        assert_eq!(read_npz(&path).unwrap(), arrays);
        let one = dir.path().join("one.npy");
        write_npy(&one, &arrays[0].1).unwrap();
        assert_eq!(read_npy(&one).unwrap(), arrays[0].1);
    }

    #[test]
    fn reads_deflated_npz() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.npz");
        let a = NdArray::new(vec![64], ArrayData::F32((0..64).map(|i| i as f32).collect())).unwrap();
        {
            let file = std::fs::File::create(&path).unwrap();
            let mut zip = zip::ZipWriter::new(file);
            let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            zip.start_file("w.npy", options).unwrap();
            zip.write_all(&encode_npy(&a).unwrap()).unwrap();
            zip.finish().unwrap();
        }
        assert_eq!(read_npz(&path).unwrap(), vec![("w".to_string(), a)]);
    }

    #[test]
    fn reads_the_reference_files_of_the_test_models() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/models/tiny_cnn.npz");
        let arrays = read_npz(&path).unwrap();
        let keys: Vec<&str> = arrays.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"input:input"), "{keys:?}");
        assert!(keys.contains(&"output:logits"), "{keys:?}");
        let (_, input) = arrays.iter().find(|(k, _)| k == "input:input").unwrap();
        assert_eq!(input.shape, vec![1, 3, 32, 32]);
        assert!(matches!(input.data, ArrayData::F32(_)));
        // Keys keep the ONNX names verbatim, dots and all.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/models/weird_names.npz");
        let keys: Vec<String> = read_npz(&path).unwrap().into_iter().map(|(k, _)| k).collect();
        assert!(keys.iter().any(|k| k == "input:input.1"), "{keys:?}");
    }
}
