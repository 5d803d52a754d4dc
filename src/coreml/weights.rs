//! `weights/weight.bin`: MILBlob storage version 2.
//!
//! A 64-byte header (`count`, `version = 2`), then for each blob a 64-byte metadata record
//! (sentinel `0xDEADBEEF`, blob dtype, payload size, absolute payload offset) on a 64-byte
//! boundary followed directly by the payload. Programs point at the *metadata* offset.

use bytes::Bytes;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

const ALIGNMENT: u64 = 64;
const SENTINEL: u32 = 0xDEAD_BEEF;

/// Blob element type codes (neither MIL's DataType nor ArrayDataType numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobType {
    Float16 = 1,
    Float32 = 2,
    UInt8 = 3,
    Int8 = 4,
    Int4 = 8,
    UInt1 = 9,
    UInt2 = 10,
    UInt4 = 11,
    UInt3 = 12,
    UInt6 = 13,
}

pub struct WeightWriter {
    /// `None`: only count (planning a model without writing a package).
    file: Option<BufWriter<File>>,
    position: u64,
    count: u32,
    /// Payloads appended by [`WeightWriter::append_shared`], by type code and length, with
    /// their metadata offsets.
    shared: HashMap<(u32, usize), Vec<(u64, Bytes)>>,
}

impl WeightWriter {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut file = BufWriter::with_capacity(1 << 20, File::create(path)?);
        file.write_all(&header(0))?;
        Ok(WeightWriter {
            file: Some(file),
            position: ALIGNMENT,
            count: 0,
            shared: HashMap::new(),
        })
    }

    /// A writer that lays blobs out as [`WeightWriter::create`] would but writes nothing.
    pub fn counting() -> Self {
        WeightWriter {
            file: None,
            position: ALIGNMENT,
            count: 0,
            shared: HashMap::new(),
        }
    }

    /// Append one blob; returns the offset of its metadata record.
    pub fn append(&mut self, blob_type: BlobType, payload: &[u8]) -> std::io::Result<u64> {
        let metadata_offset = self.position.next_multiple_of(ALIGNMENT);
        if let Some(file) = &mut self.file {
            file.write_all(&vec![0u8; (metadata_offset - self.position) as usize])?;
            let mut meta = [0u8; 64];
            meta[0..4].copy_from_slice(&SENTINEL.to_le_bytes());
            meta[4..8].copy_from_slice(&(blob_type as u32).to_le_bytes());
            meta[8..16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
            meta[16..24].copy_from_slice(&(metadata_offset + 64).to_le_bytes());
            file.write_all(&meta)?;
            file.write_all(payload)?;
        }
        self.position = metadata_offset + 64 + payload.len() as u64;
        self.count += 1;
        Ok(metadata_offset)
    }

    /// [`WeightWriter::append`], but a payload equal to one appended before through this method
    /// is stored once, both consts pointing at it. Within a graph `dedup_constants` has merged
    /// equal constants already; this catches the copies each body of a control-flow op holds
    /// of a weight read in several bodies. Candidates have the same type and length and are
    /// compared whole (distinct weights differ within their first bytes).
    pub fn append_shared(&mut self, blob_type: BlobType, payload: &Bytes) -> std::io::Result<u64> {
        let key = (blob_type as u32, payload.len());
        if let Some(&(offset, _)) = self
            .shared
            .get(&key)
            .and_then(|same| same.iter().find(|(_, earlier)| earlier[..] == payload[..]))
        {
            return Ok(offset);
        }
        let offset = self.append(blob_type, payload)?;
        self.shared.entry(key).or_default().push((offset, payload.clone()));
        Ok(offset)
    }

    /// Rewrite the header with the final count and flush. Returns the file size.
    pub fn finish(self) -> std::io::Result<u64> {
        if let Some(mut file) = self.file {
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&header(self.count))?;
            let file = file.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
        }
        Ok(self.position)
    }
}

fn header(count: u32) -> [u8; 64] {
    let mut h = [0u8; 64];
    h[0..4].copy_from_slice(&count.to_le_bytes());
    h[4..8].copy_from_slice(&2u32.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_shared_payloads_are_stored_once() {
        let mut w = WeightWriter::counting();
        let a = Bytes::from(vec![1u8, 2, 3, 4]);
        let first = w.append_shared(BlobType::Float16, &a).unwrap();
        assert_eq!(
            w.append_shared(BlobType::Float16, &Bytes::from(vec![1u8, 2, 3, 4]))
                .unwrap(),
            first
        );
        // Another type, or other bytes of the same length, are blobs of their own.
        assert_ne!(w.append_shared(BlobType::UInt8, &a).unwrap(), first);
        assert_ne!(
            w.append_shared(BlobType::Float16, &Bytes::from(vec![1u8, 2, 3, 5]))
                .unwrap(),
            first
        );
        assert_eq!(w.count, 3);
    }

    #[test]
    fn layout_matches_milblob_v2() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weight.bin");
        let mut w = WeightWriter::create(&path).unwrap();
        let first: Vec<u8> = (0..12u32).flat_map(|v| (v as f32).to_le_bytes()).collect();
        assert_eq!(w.append(BlobType::Float32, &first).unwrap(), 64);
        assert_eq!(w.append(BlobType::Float16, &[1, 2, 3]).unwrap(), 192);
        assert_eq!(w.finish().unwrap(), 192 + 64 + 3);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[0..8], &[2, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&bytes[64..68], &[0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(u64::from_le_bytes(bytes[72..80].try_into().unwrap()), 48);
        assert_eq!(u64::from_le_bytes(bytes[80..88].try_into().unwrap()), 128);
        assert_eq!(&bytes[128..176], &first[..]);
        assert!(bytes[176..192].iter().all(|&b| b == 0));
        assert_eq!(u32::from_le_bytes(bytes[196..200].try_into().unwrap()), 1);
        assert_eq!(&bytes[256..259], &[1, 2, 3]);
    }
}
