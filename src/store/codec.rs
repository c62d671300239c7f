//! rkyv records, their validation, and the one alignment policy for reading them.
//!
//! Alignment policy: redb promises no alignment for value bytes. Records use rkyv's default
//! (aligned, little-endian) format and are read with validated `access` on the borrowed bytes;
//! only when the bytes are misaligned for the record are they copied into an aligned buffer
//! first. In practice (8-byte keys, lengths divisible by 4) that copy never happens, so reads are
//! zero-copy; they are correct always. Every read is validated: damaged bytes give
//! `Error::Corrupt`, never undefined behaviour.

use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::vec::ArchivedVec;
use rkyv::{Archive, Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::graph::NodeId;

/// Index-wide state, in the `header` row of the `meta` table.
// Format: rkyv of this struct; `metric` is the byte of `Metric::to_byte`, `durability` 0 for
// Immediate and 1 for Eventual (`index::header_of`); `entry_level` is meaningful only when
// `has_entry`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct Header {
    pub dim: u32,
    pub metric: u8,
    pub m: u32,
    pub ef_construction: u32,
    pub ef_search: u32,
    pub seed: u64,
    pub durability: u8,
    pub quick_repair: bool,
    pub cache_bytes: u64,
    /// `Quantization::to_byte`.
    pub quantization: u8,
    pub has_entry: bool,
    pub entry_id: u32,
    pub entry_level: u8,
    /// Live nodes.
    pub len: u64,
    /// Every id ever handed out is below this.
    pub next_id: u32,
    /// Inserts so far: the counter the level of the next node is drawn from.
    pub inserts: u64,
}

/// One node, in the `nodes` table.
// Format: rkyv of this struct.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NodeRecord {
    pub key: u64,
    pub level: u8,
}

/// Runs `f` on the validated archived `T` in `bytes`, copying them into an aligned buffer first
/// only when they are misaligned for `T`.
fn with_archived<T, R>(bytes: &[u8], what: &str, f: impl FnOnce(&T) -> R) -> Result<R>
where
    T: rkyv::Portable + for<'a> bytecheck_bound::Check<'a>,
{
    let corrupt = |e: rancor::Error| Error::corrupt(format!("{what} failed validation: {e}"), what);
    if (bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>()) {
        rkyv::access::<T, rancor::Error>(bytes)
            .map(f)
            .map_err(corrupt)
    } else {
        let mut aligned = AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        rkyv::access::<T, rancor::Error>(&aligned)
            .map(f)
            .map_err(corrupt)
    }
}

/// The bound rkyv's validated `access` needs, named once.
mod bytecheck_bound {
    use rkyv::api::high::HighValidator;
    use rkyv::bytecheck::CheckBytes;
    use rkyv::rancor;

    pub(crate) trait Check<'a>: CheckBytes<HighValidator<'a, rancor::Error>> {}
    impl<'a, T: CheckBytes<HighValidator<'a, rancor::Error>>> Check<'a> for T {}
}

fn encode<T>(value: &T) -> AlignedVec
where
    T: for<'a> Serialize<
        rkyv::api::high::HighSerializer<
            AlignedVec,
            rkyv::ser::allocator::ArenaHandle<'a>,
            rancor::Error,
        >,
    >,
{
    // Serialising plain structs and vectors into memory cannot fail.
    rkyv::to_bytes::<rancor::Error>(value).expect("rkyv serialisation into memory")
}

/// Encodes the header.
pub(crate) fn encode_header(header: &Header) -> AlignedVec {
    encode(header)
}

/// Decodes the header.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<Header> {
    with_archived::<ArchivedHeader, _>(bytes, "meta.header", |a| {
        rkyv::deserialize::<Header, rancor::Error>(a)
    })?
    .map_err(|e| Error::corrupt(format!("header: {e}"), "meta.header"))
}

/// Encodes a node record.
pub(crate) fn encode_node(node: &NodeRecord) -> AlignedVec {
    encode(node)
}

/// Decodes a node record.
pub(crate) fn decode_node(bytes: &[u8]) -> Result<NodeRecord> {
    with_archived::<ArchivedNodeRecord, _>(bytes, "nodes", |a| NodeRecord {
        key: a.key.to_native(),
        level: a.level,
    })
}

/// Encodes a vector (stored form).
pub(crate) fn encode_vector(vector: &[f32]) -> AlignedVec {
    encode(&vector.to_vec())
}

/// Runs `f` on the stored vector in `bytes`, in place when it is aligned (the usual case),
/// whatever its length.
pub(crate) fn with_any_vector<R>(bytes: &[u8], f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    with_archived::<ArchivedVec<rkyv::rend::f32_le>, _>(bytes, "vectors", |a| {
        f(native_f32s(a.as_slice()))
    })
}

/// [`with_any_vector`] for the vector of node `id`, which must have `dim` components: one of
/// another length is damage (`Error::Corrupt`).
pub(crate) fn with_vector<R>(
    bytes: &[u8],
    dim: usize,
    id: impl std::fmt::Display,
    f: impl FnOnce(&[f32]) -> R,
) -> Result<R> {
    with_any_vector(bytes, |v| {
        if v.len() != dim {
            return Err(Error::corrupt(
                format!("vector has {} dimensions, the index {dim}", v.len()),
                format!("vectors[{id}]"),
            ));
        }
        Ok(f(v))
    })?
}

#[cfg(target_endian = "little")]
fn native_f32s(values: &[rkyv::rend::f32_le]) -> &[f32] {
    // SAFETY: `f32_le` is `#[repr(C, align(4))]` around one `f32` (rend 0.5), so it has the size,
    // alignment and validity of `f32`; on a little-endian target its bytes are the native `f32`.
    // The slice is reborrowed for the same lifetime and length. This keeps vector reads from
    // the file zero-copy on the search path when the layer-0 cache is off.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<f32>(), values.len()) }
}

#[cfg(not(target_endian = "little"))]
compile_error!("hnswdb reads vectors in place and supports little-endian targets only");

/// Encodes a neighbour list.
pub(crate) fn encode_ids(ids: &[NodeId]) -> AlignedVec {
    encode(&ids.to_vec())
}

/// Replaces `out` with the ids in `bytes` (a neighbour or reverse list).
pub(crate) fn decode_ids_into(bytes: &[u8], what: &str, out: &mut Vec<NodeId>) -> Result<()> {
    with_archived::<ArchivedVec<rkyv::rend::u32_le>, _>(bytes, what, |a| {
        out.clear();
        out.extend(a.iter().map(|id| id.to_native()));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let node = NodeRecord {
            key: u64::MAX - 3,
            level: 7,
        };
        assert_eq!(decode_node(&encode_node(&node)).unwrap(), node);
        let ids = [1, 2, u32::MAX];
        let mut out = vec![9];
        decode_ids_into(&encode_ids(&ids), "links", &mut out).unwrap();
        assert_eq!(out, ids);
        let v = [1.5f32, -0.0, f32::MIN_POSITIVE];
        let back = with_vector(&encode_vector(&v), 3, 0, |s| s.to_vec()).unwrap();
        assert!(matches!(
            with_vector(&encode_vector(&v), 4, 0, |s| s.to_vec()),
            Err(Error::Corrupt { .. })
        ));
        assert_eq!(
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            v.map(f32::to_bits)
        );
    }

    #[test]
    fn misaligned_bytes_are_read_correctly() {
        let encoded = encode_ids(&[5, 6, 7]);
        let mut shifted = vec![0u8; encoded.len() + 1];
        shifted[1..].copy_from_slice(&encoded);
        let mut out = Vec::new();
        decode_ids_into(&shifted[1..], "links", &mut out).unwrap();
        assert_eq!(out, [5, 6, 7]);
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let encoded = encode_ids(&[5, 6, 7]);
        let mut out = Vec::new();
        for cut in 0..encoded.len() {
            let _ = decode_ids_into(&encoded[..cut], "links", &mut out);
        }
        let mut bad = encoded.to_vec();
        let n = bad.len();
        bad[n - 1] = 0xff; // length field far past the buffer
        assert!(matches!(
            decode_ids_into(&bad, "links", &mut out),
            Err(Error::Corrupt { .. })
        ));
        assert!(decode_header(b"not a header").is_err());
    }
}
