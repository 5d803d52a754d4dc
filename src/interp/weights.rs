//! Read `blobFileValue`s from MILBlob v2 weight files (docs: coreml-format.md §5).
//!
//! Everything a blob record claims is checked before it is trusted: the file header version,
//! the `0xDEADBEEF` sentinel, that the blob's dtype code is the one the program declares, that
//! the payload size matches the declared shape, and that the payload lies inside the file. A
//! package that fails any check is reported, never read out of bounds.

use super::tensor::{Buf, DType, OpResult};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

const SENTINEL: u32 = 0xDEAD_BEEF;
const HEADER_SIZE: usize = 64;
const METADATA_SIZE: usize = 64;

/// The weight files of one package, mapped on first use.
pub(crate) struct WeightStore {
    /// `@model_path`: the folder holding `model.mlmodel`.
    model_dir: PathBuf,
    files: Mutex<HashMap<String, Arc<memmap2::Mmap>>>,
}

/// MILBlob `BlobDataType` code for a MIL element type (not MIL's DataType numbering).
fn blob_code(dtype: DType) -> Option<u32> {
    Some(match dtype {
        DType::Fp16 => 1,
        DType::Fp32 => 2,
        DType::Uint8 => 3,
        DType::Int8 => 4,
        DType::Int16 => 6,
        DType::Uint16 => 7,
        DType::Int4 => 8,
        DType::UintN(1) => 9,
        DType::UintN(2) => 10,
        DType::UintN(4) => 11,
        DType::UintN(3) => 12,
        DType::UintN(6) => 13,
        DType::Int32 => 14,
        _ => return None,
    })
}

/// Bits per element of a blob dtype.
fn bits(dtype: DType) -> Option<u64> {
    Some(match dtype {
        DType::Fp16 | DType::Int16 | DType::Uint16 => 16,
        DType::Fp32 | DType::Int32 => 32,
        DType::Uint8 | DType::Int8 => 8,
        DType::Int4 => 4,
        DType::UintN(b) => u64::from(b),
        _ => return None,
    })
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl WeightStore {
    pub(crate) fn new(model_dir: PathBuf) -> WeightStore {
        WeightStore {
            model_dir,
            files: Mutex::new(HashMap::new()),
        }
    }

    /// Resolve `@model_path/...` inside the package, refusing paths that would leave it.
    fn resolve(&self, file_name: &str) -> OpResult<PathBuf> {
        let rel = file_name
            .strip_prefix("@model_path/")
            .ok_or_else(|| format!("blob file {file_name:?} does not start with @model_path/"))?;
        let rel = Path::new(rel);
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(format!("blob file {file_name:?} points outside the package"));
        }
        Ok(self.model_dir.join(rel))
    }

    fn map(&self, file_name: &str) -> OpResult<Arc<memmap2::Mmap>> {
        let mut files = self
            .files
            .lock()
            .map_err(|_| "weight file cache poisoned".to_string())?;
        if let Some(m) = files.get(file_name) {
            return Ok(m.clone());
        }
        let path = self.resolve(file_name)?;
        let file = std::fs::File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: a read-only mapping; we assume (as every mmap reader must) that nobody
        // truncates the package while it runs. Every access below is bounds-checked against
        // the mapped length.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("cannot map {}: {e}", path.display()))?;
        if map.len() < HEADER_SIZE {
            return Err(format!("{} is too short for a MILBlob header", path.display()));
        }
        let version = read_u32(&map, 4);
        if version != 2 {
            return Err(format!(
                "{} has MILBlob storage version {version}; only version 2 is supported",
                path.display()
            ));
        }
        let map = Arc::new(map);
        files.insert(file_name.to_string(), map.clone());
        Ok(map)
    }

    /// The `count` elements of the blob whose metadata record is at `offset`, as `dtype`.
    pub(crate) fn read(&self, file_name: &str, offset: u64, dtype: DType, count: usize) -> OpResult<Buf> {
        let code = blob_code(dtype).ok_or_else(|| format!("{} values cannot be stored in a blob", dtype.name()))?;
        let map = self.map(file_name)?;
        let bytes: &[u8] = &map;
        let at = usize::try_from(offset)
            .ok()
            .filter(|&o| o >= HEADER_SIZE && o.checked_add(METADATA_SIZE).is_some_and(|e| e <= bytes.len()))
            .ok_or_else(|| format!("blob offset {offset} is outside {file_name} ({} bytes)", bytes.len()))?;
        if read_u32(bytes, at) != SENTINEL {
            return Err(format!(
                "no blob at offset {offset} of {file_name}: invalid sentinel (the offset must name a metadata record)"
            ));
        }
        let stored = read_u32(bytes, at + 4);
        if stored != code {
            return Err(format!(
                "blob at offset {offset} of {file_name} has dtype code {stored}, but the program declares {} (code {code})",
                dtype.name()
            ));
        }
        let size = read_u64(bytes, at + 8);
        let data_offset = read_u64(bytes, at + 16);
        let elem_bits = bits(dtype).unwrap_or(8);
        let expected = (count as u64 * elem_bits).div_ceil(8);
        if size != expected {
            return Err(format!(
                "blob at offset {offset} of {file_name} holds {size} bytes, but {count} {} values need {expected}",
                dtype.name()
            ));
        }
        let payload = usize::try_from(data_offset)
            .ok()
            .and_then(|s| Some(s..s.checked_add(usize::try_from(size).ok()?)?))
            .filter(|r| r.end <= bytes.len())
            .map(|r| &bytes[r])
            .ok_or_else(|| format!("blob at offset {offset} of {file_name}: payload lies outside the file"))?;
        Ok(decode_le(payload, dtype, count))
    }
}

/// Decode little-endian element bytes (the layout of blobs and of `bytes` immediates).
/// Sub-byte elements are packed LSB-first (coreml-format.md §6). `payload` must be long enough.
pub(crate) fn decode_le(payload: &[u8], dtype: DType, count: usize) -> Buf {
    let pairs = || payload.chunks_exact(2).take(count).map(|c| [c[0], c[1]]);
    match dtype {
        DType::Fp16 => Buf::F(Arc::new(
            pairs().map(|b| half::f16::from_le_bytes(b).to_f32()).collect(),
        )),
        DType::Fp32 => Buf::F(Arc::new(
            payload
                .chunks_exact(4)
                .take(count)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )),
        DType::Int32 => Buf::I(Arc::new(
            payload
                .chunks_exact(4)
                .take(count)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )),
        DType::Int16 => Buf::I(Arc::new(pairs().map(|b| i32::from(i16::from_le_bytes(b))).collect())),
        DType::Uint16 => Buf::I(Arc::new(pairs().map(|b| i32::from(u16::from_le_bytes(b))).collect())),
        DType::Int8 => Buf::I(Arc::new(
            payload.iter().take(count).map(|&b| i32::from(b as i8)).collect(),
        )),
        DType::Uint8 => Buf::I(Arc::new(payload.iter().take(count).map(|&b| i32::from(b)).collect())),
        DType::Bool => Buf::B(Arc::new(payload.iter().take(count).map(|&b| b != 0).collect())),
        DType::UintN(n) => Buf::I(Arc::new(unpack_bits(payload, n, count, false))),
        DType::Int4 => Buf::I(Arc::new(unpack_bits(payload, 4, count, true))),
        DType::Str => Buf::S(Arc::new(Vec::new())),
    }
}

/// Unpack `count` `n`-bit elements from an LSB-first bit stream.
fn unpack_bits(payload: &[u8], n: u8, count: usize, signed: bool) -> Vec<i32> {
    let n = usize::from(n);
    (0..count)
        .map(|i| {
            let mut v = 0u32;
            for b in 0..n {
                let bit = i * n + b;
                let byte = payload.get(bit / 8).copied().unwrap_or(0);
                v |= u32::from((byte >> (bit % 8)) & 1) << b;
            }
            if signed && v & (1 << (n - 1)) != 0 {
                v as i32 - (1 << n)
            } else {
                v as i32
            }
        })
        .collect()
}

/// Bytes needed for `count` elements of `dtype` in packed little-endian form.
pub(crate) fn packed_size(dtype: DType, count: usize) -> Option<usize> {
    let b = usize::try_from(bits(dtype).or(match dtype {
        DType::Bool => Some(8),
        _ => None,
    })?)
    .ok()?;
    count.checked_mul(b).map(|x| x.div_ceil(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacks_sub_byte_values_lsb_first() {
        // Values from coreml-format.md §5: uint3 [1,2,3,4,5] = d1 58; int4 [-1,7,-8] = 7f 08.
        assert_eq!(unpack_bits(&[0xd1, 0x58], 3, 5, false), vec![1, 2, 3, 4, 5]);
        assert_eq!(unpack_bits(&[0x7f, 0x08], 4, 3, true), vec![-1, 7, -8]);
        assert_eq!(unpack_bits(&[0xc1, 0x5f, 0x00], 6, 3, false), vec![1, 63, 5]);
    }

    #[test]
    fn checks_blob_records() {
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join("weights");
        std::fs::create_dir_all(&weights).unwrap();
        let mut w = crate::coreml::weights::WeightWriter::create(&weights.join("weight.bin")).unwrap();
        let payload: Vec<u8> = (0..12u32).flat_map(|v| (v as f32).to_le_bytes()).collect();
        let offset = w.append(crate::coreml::weights::BlobType::Float32, &payload).unwrap();
        w.append(crate::coreml::weights::BlobType::Float32, &payload).unwrap();
        w.finish().unwrap();
        let store = WeightStore::new(dir.path().to_path_buf());
        let file = "@model_path/weights/weight.bin";
        match store.read(file, offset, DType::Fp32, 12).unwrap() {
            Buf::F(v) => assert_eq!(v[11], 11.0),
            other => panic!("{other:?}"),
        }
        let e = store.read(file, offset, DType::Fp16, 12).unwrap_err();
        assert!(e.contains("dtype code 2"), "{e}");
        let e = store.read(file, offset, DType::Fp32, 13).unwrap_err();
        assert!(e.contains("48 bytes"), "{e}");
        let e = store.read(file, offset + 64, DType::Fp32, 12).unwrap_err();
        assert!(e.contains("sentinel"), "{e}");
        let e = store.read(file, 1 << 40, DType::Fp32, 12).unwrap_err();
        assert!(e.contains("outside"), "{e}");
        let e = store
            .read("@model_path/../weights/weight.bin", offset, DType::Fp32, 12)
            .unwrap_err();
        assert!(e.contains("outside the package"), "{e}");
    }
}
