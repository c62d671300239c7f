//! Every redb table of an index file, the format version and the magic bytes.
//!
//! Every key is a `u64` on purpose: with 8-byte keys and value lengths divisible by 4, redb's
//! value bytes come back 4-aligned in practice, so rkyv records are read in place (see codec.rs
//! for what happens when they are not).

use redb::TableDefinition;

use crate::graph::NodeId;

/// The format this build reads and writes. Bump on any change to a table or record.
///
/// Version changes:
/// - 1: first format.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// First bytes of the `format` row of [`META`]: marks a redb file as an hnswdb index.
pub(crate) const MAGIC: [u8; 8] = *b"hnswdb\0\0";

/// Key of the row holding [`MAGIC`] and [`FORMAT_VERSION`] (12 raw little-endian bytes, a layout
/// that never changes, so that any later version is recognised and refused before anything else
/// is read).
pub(crate) const FORMAT_KEY: &str = "format";
/// Key of the row holding the rkyv [`Header`](super::codec::Header).
pub(crate) const HEADER_KEY: &str = "header";

/// Index-wide records: `format`, `header`.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("hnswdb.meta");
/// User key → node id, for every live node.
pub(crate) const KEYS: TableDefinition<u64, u64> = TableDefinition::new("hnswdb.keys");
/// Node id → rkyv [`NodeRecord`](super::codec::NodeRecord): user key and level.
pub(crate) const NODES: TableDefinition<u64, &[u8]> = TableDefinition::new("hnswdb.nodes");
/// Node id → rkyv `Vec<f32>`: the vector exactly as inserted. Written once per node.
pub(crate) const VECTORS: TableDefinition<u64, &[u8]> = TableDefinition::new("hnswdb.vectors");
/// [`link_key`] → rkyv `Vec<u32>`: the node's neighbours on that layer (absent when empty).
pub(crate) const LINKS: TableDefinition<u64, &[u8]> = TableDefinition::new("hnswdb.links");
/// [`link_key`] → rkyv `Vec<u32>`: the nodes whose list on that layer holds this node, kept
/// exactly in step with [`LINKS`] (absent when empty). Makes removal exact.
pub(crate) const REVERSE: TableDefinition<u64, &[u8]> = TableDefinition::new("hnswdb.reverse");
/// Node ids free for reuse (below the header's `next_id`, held by no live node).
pub(crate) const FREE_IDS: TableDefinition<u64, ()> = TableDefinition::new("hnswdb.free_ids");

/// The key of node `id`'s list on `layer` in [`LINKS`] and [`REVERSE`]: `id << 8 | layer`, so a
/// node's lists are adjacent and in layer order.
pub(crate) fn link_key(id: NodeId, layer: u8) -> u64 {
    (u64::from(id) << 8) | u64::from(layer)
}

/// The node id and layer of a [`link_key`].
pub(crate) fn split_link_key(key: u64) -> (u64, u8) {
    (key >> 8, (key & 0xff) as u8)
}
