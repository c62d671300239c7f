//! The names of an index's redb tables, the format version and the magic bytes.
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
/// - 2: the `codes` table, and `quantization` in the header.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// First bytes of the `format` row of the `meta` table: marks a redb file as an hnswdb index.
pub(crate) const MAGIC: [u8; 8] = *b"hnswdb\0\0";

/// Key of the row holding [`MAGIC`] and [`FORMAT_VERSION`] (12 raw little-endian bytes, a layout
/// that never changes, so that any later version is recognised and refused before anything else
/// is read).
pub(crate) const FORMAT_KEY: &str = "format";
/// Key of the row holding the rkyv [`Header`](super::codec::Header).
pub(crate) const HEADER_KEY: &str = "header";

/// The names of an index's eight tables. An index that owns its file uses `hnswdb.<table>`
/// (the names of format 1); an index named `<name>` inside an app's database uses
/// `hnswdb/<name>/<table>`. Every hnswdb table name starts with `hnswdb`, and hnswdb opens no
/// other table.
///
/// The tables:
/// - `meta` (`&str` → bytes): index-wide records, `format` and `header`.
/// - `keys` (`u64` → `u64`): user key → node id, for every live node.
/// - `nodes` (`u64` → rkyv [`NodeRecord`](super::codec::NodeRecord)): user key and level.
/// - `vectors` (`u64` → rkyv `Vec<f32>`): the vector exactly as inserted. Written once per node.
/// - `links` ([`link_key`] → rkyv `Vec<u32>`): the node's neighbours on that layer (absent when
///   empty).
/// - `reverse` ([`link_key`] → rkyv `Vec<u32>`): the nodes whose list on that layer holds this
///   node, kept exactly in step with `links` (absent when empty). Makes removal exact.
/// - `free_ids` (`u64` → `()`): node ids free for reuse (below the header's `next_id`, held by
///   no live node).
/// - `codes` (`u64` → bytes): node id → the code of its vector, the little-endian words of the
///   index's quantizer (`crate::quant`); written with the vector, empty without quantization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableNames {
    names: [String; 8],
}

/// The start of every hnswdb table name.
pub(crate) const PREFIX: &str = "hnswdb";

/// What follows [`PREFIX`] and a separator in each table's name, in [`TableNames`] order.
const TABLES: [&str; 8] = [
    "meta", "keys", "nodes", "vectors", "links", "reverse", "free_ids", "codes",
];

/// The longest index name, in bytes.
pub(crate) const MAX_NAME_LEN: usize = 64;

impl TableNames {
    /// The tables of an index that owns its file: `hnswdb.meta`, `hnswdb.keys`, ...
    pub(crate) fn whole_file() -> TableNames {
        TableNames {
            names: TABLES.map(|table| format!("{PREFIX}.{table}")),
        }
    }

    /// The tables of the index `name` in an app's database: `hnswdb/<name>/meta`, ... The
    /// name must have passed [`check_name`].
    pub(crate) fn named(name: &str) -> TableNames {
        TableNames {
            names: TABLES.map(|table| format!("{PREFIX}/{name}/{table}")),
        }
    }

    /// Where [`Index::import_in`](crate::Index::import_in) builds the index `name` before it
    /// renames the tables to [`named`](TableNames::named) ones: `hnswdb/<name>~import/...`
    /// (`~` is in no index name, so these are never listed or opened as an index).
    pub(crate) fn staging(name: &str) -> TableNames {
        TableNames::named(&format!("{name}~import"))
    }

    /// The index name whose `meta` table is called `table`, if it is one.
    pub(crate) fn index_of_meta_table(table: &str) -> Option<&str> {
        let name = table
            .strip_prefix(PREFIX)?
            .strip_prefix('/')?
            .strip_suffix("/meta")?;
        check_name(name).is_ok().then_some(name)
    }

    /// Every table name, `meta` first.
    pub(crate) fn all(&self) -> &[String; 8] {
        &self.names
    }

    pub(crate) fn meta(&self) -> TableDefinition<'_, &'static str, &'static [u8]> {
        TableDefinition::new(&self.names[0])
    }
    pub(crate) fn keys(&self) -> TableDefinition<'_, u64, u64> {
        TableDefinition::new(&self.names[1])
    }
    pub(crate) fn nodes(&self) -> TableDefinition<'_, u64, &'static [u8]> {
        TableDefinition::new(&self.names[2])
    }
    pub(crate) fn vectors(&self) -> TableDefinition<'_, u64, &'static [u8]> {
        TableDefinition::new(&self.names[3])
    }
    pub(crate) fn links(&self) -> TableDefinition<'_, u64, &'static [u8]> {
        TableDefinition::new(&self.names[4])
    }
    pub(crate) fn reverse(&self) -> TableDefinition<'_, u64, &'static [u8]> {
        TableDefinition::new(&self.names[5])
    }
    pub(crate) fn free_ids(&self) -> TableDefinition<'_, u64, ()> {
        TableDefinition::new(&self.names[6])
    }
    pub(crate) fn codes(&self) -> TableDefinition<'_, u64, &'static [u8]> {
        TableDefinition::new(&self.names[7])
    }
}

/// Checks an index name: 1 to [`MAX_NAME_LEN`] bytes of ASCII letters, digits, `_`, `-` and
/// `.` (a name is part of table names, so `/` and everything else stay reserved). The error
/// says what is wrong.
pub(crate) fn check_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("an index name cannot be empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("an index name has at most 64 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err("an index name holds only ASCII letters, digits, '_', '-' and '.'");
    }
    Ok(())
}

/// The key of node `id`'s list on `layer` in the `links` and `reverse` tables: `id << 8 | layer`, so a
/// node's lists are adjacent and in layer order.
pub(crate) fn link_key(id: NodeId, layer: u8) -> u64 {
    (u64::from(id) << 8) | u64::from(layer)
}

/// The node id and layer of a [`link_key`].
pub(crate) fn split_link_key(key: u64) -> (u64, u8) {
    (key >> 8, (key & 0xff) as u8)
}
