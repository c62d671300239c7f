//! Open table handles over one read or write transaction, and reads of single records.

use redb::{ReadOnlyTable, ReadableTable, Table};

use super::codec;
use super::schema::{link_key, TableNames};
use crate::error::{Error, Result};
use crate::graph::NodeId;
use crate::quant::Codec;

/// The tables a graph walk reads, over any transaction.
pub(crate) struct Tables<K, B> {
    /// The index's dimension: a stored vector of another length is damage.
    pub dim: usize,
    pub keys: K,
    pub nodes: B,
    pub vectors: B,
    pub links: B,
    pub reverse: B,
    /// Node id → the code of its vector (empty without quantization).
    pub codes: B,
}

/// Tables of a committed state, owned (each holds its own read-transaction guard).
pub(crate) type ReadTables = Tables<ReadOnlyTable<u64, u64>, ReadOnlyTable<u64, &'static [u8]>>;

/// Tables of an open write transaction.
pub(crate) type WriteTables<'t> = Tables<Table<'t, u64, u64>, Table<'t, u64, &'static [u8]>>;

impl ReadTables {
    pub(crate) fn open(
        txn: &redb::ReadTransaction,
        names: &TableNames,
        dim: usize,
    ) -> Result<ReadTables> {
        Ok(Tables {
            dim,
            keys: txn.open_table(names.keys())?,
            nodes: txn.open_table(names.nodes())?,
            vectors: txn.open_table(names.vectors())?,
            links: txn.open_table(names.links())?,
            reverse: txn.open_table(names.reverse())?,
            codes: txn.open_table(names.codes())?,
        })
    }
}

impl<'t> WriteTables<'t> {
    pub(crate) fn open(
        txn: &'t redb::WriteTransaction,
        names: &TableNames,
        dim: usize,
    ) -> Result<WriteTables<'t>> {
        Ok(Tables {
            dim,
            keys: txn.open_table(names.keys())?,
            nodes: txn.open_table(names.nodes())?,
            vectors: txn.open_table(names.vectors())?,
            links: txn.open_table(names.links())?,
            reverse: txn.open_table(names.reverse())?,
            codes: txn.open_table(names.codes())?,
        })
    }
}

impl<K, B> Tables<K, B>
where
    K: ReadableTable<u64, u64>,
    B: ReadableTable<u64, &'static [u8]>,
{
    /// The node id of user key `key`.
    pub(crate) fn node_id(&self, key: u64) -> Result<Option<NodeId>> {
        match self.keys.get(key)? {
            None => Ok(None),
            Some(id) => {
                let id = id.value();
                NodeId::try_from(id).map(Some).map_err(|_| {
                    Error::corrupt(format!("node id {id} out of range"), format!("keys[{key}]"))
                })
            }
        }
    }

    /// Rows in the keys table and in the nodes table: redb keeps both counts, O(1).
    pub(crate) fn row_counts(&self) -> Result<(u64, u64)> {
        Ok((self.keys.len()?, self.nodes.len()?))
    }

    /// The highest node id that has a row, O(log n).
    pub(crate) fn last_node_id(&self) -> Result<Option<u64>> {
        Ok(self.nodes.last()?.map(|(id, _)| id.value()))
    }

    /// The record of node `id`, `None` when there is no such node.
    pub(crate) fn node_record(&self, id: NodeId) -> Result<Option<codec::NodeRecord>> {
        match self.nodes.get(u64::from(id))? {
            None => Ok(None),
            Some(bytes) => codec::decode_node(bytes.value()).map(Some),
        }
    }

    /// Runs `f` on the stored vector of node `id`, in place.
    pub(crate) fn vector_with<R>(&self, id: NodeId, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        match self.vectors.get(u64::from(id))? {
            None => Err(Error::corrupt(
                "a live node has no vector",
                format!("vectors[{id}]"),
            )),
            Some(bytes) => codec::with_vector(bytes.value(), self.dim, id, f),
        }
    }

    /// Replaces `out` with the code row of node `id` as `codec` reads it.
    pub(crate) fn code_into(&self, codec: &Codec, id: NodeId, out: &mut Vec<u64>) -> Result<()> {
        match self.codes.get(u64::from(id))? {
            None => Err(Error::corrupt(
                "a live node has no code",
                format!("codes[{id}]"),
            )),
            Some(bytes) => codec.read_row(bytes.value(), id, out),
        }
    }

    /// Replaces `out` with the list of `id` on `layer` (empty when absent).
    pub(crate) fn links_into(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
        read_ids(&self.links, "links", id, layer, out)
    }

    /// Replaces `out` with the nodes linking to `id` on `layer` (empty when absent).
    pub(crate) fn reverse_into(&self, id: NodeId, layer: u8, out: &mut Vec<NodeId>) -> Result<()> {
        read_ids(&self.reverse, "reverse", id, layer, out)
    }
}

fn read_ids<B: ReadableTable<u64, &'static [u8]>>(
    table: &B,
    what: &str,
    id: NodeId,
    layer: u8,
    out: &mut Vec<NodeId>,
) -> Result<()> {
    match table.get(link_key(id, layer))? {
        None => {
            out.clear();
            Ok(())
        }
        Some(bytes) => codec::decode_ids_into(bytes.value(), what, out),
    }
}

impl<K, B> Tables<K, B>
where
    K: ReadableTable<u64, u64>,
    B: ReadableTable<u64, &'static [u8]>,
{
    /// Calls `f` with every node record, ascending by id.
    pub(crate) fn scan_nodes(
        &self,
        mut f: impl FnMut(u64, codec::NodeRecord) -> Result<()>,
    ) -> Result<()> {
        for row in self.nodes.range::<u64>(..)? {
            let (id, bytes) = row?;
            f(id.value(), codec::decode_node(bytes.value())?)?;
        }
        Ok(())
    }

    /// Calls `f` with every stored vector of an id below `end`, ascending by id, whatever its
    /// length (`verify` reports a wrong one; the cache load refuses it).
    pub(crate) fn scan_vectors(
        &self,
        end: u64,
        mut f: impl FnMut(u64, &[f32]) -> Result<()>,
    ) -> Result<()> {
        for row in self.vectors.range::<u64>(..end)? {
            let (id, bytes) = row?;
            codec::with_any_vector(bytes.value(), |v| f(id.value(), v))??;
        }
        Ok(())
    }

    /// Calls `f` with every stored code row of an id below `end`, ascending by id, as raw
    /// bytes (the caller checks the length).
    pub(crate) fn scan_codes(
        &self,
        end: u64,
        mut f: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        for row in self.codes.range::<u64>(..end)? {
            let (id, bytes) = row?;
            f(id.value(), bytes.value())?;
        }
        Ok(())
    }

    /// Calls `f` with every forward (`reverse == false`) or reverse list, ascending by node and
    /// layer.
    pub(crate) fn scan_lists(
        &self,
        reverse: bool,
        mut f: impl FnMut(u64, u8, &[NodeId]) -> Result<()>,
    ) -> Result<()> {
        let (table, what) = if reverse {
            (&self.reverse, "reverse")
        } else {
            (&self.links, "links")
        };
        let mut ids = Vec::new();
        for row in table.range::<u64>(..)? {
            let (key, bytes) = row?;
            codec::decode_ids_into(bytes.value(), what, &mut ids)?;
            let (id, layer) = super::schema::split_link_key(key.value());
            f(id, layer, &ids)?;
        }
        Ok(())
    }

    /// Calls `f` with every (user key, node id) pair, ascending by key.
    pub(crate) fn scan_keys(&self, mut f: impl FnMut(u64, u64) -> Result<()>) -> Result<()> {
        for row in self.keys.range::<u64>(..)? {
            let (key, id) = row?;
            f(key.value(), id.value())?;
        }
        Ok(())
    }
}

impl WriteTables<'_> {
    /// Writes (or replaces) node `id`'s record.
    pub(crate) fn put_node(&mut self, id: NodeId, record: &codec::NodeRecord) -> Result<()> {
        self.nodes
            .insert(u64::from(id), codec::encode_node(record).as_slice())?;
        Ok(())
    }

    /// Deletes node `id`'s record, vector and code.
    pub(crate) fn delete_node(&mut self, id: NodeId) -> Result<()> {
        self.nodes.remove(u64::from(id))?;
        self.vectors.remove(u64::from(id))?;
        self.codes.remove(u64::from(id))?;
        Ok(())
    }

    /// Writes node `id`'s code row.
    pub(crate) fn put_code(&mut self, id: NodeId, row: &[u64]) -> Result<()> {
        self.codes
            .insert(u64::from(id), crate::quant::row_to_bytes(row).as_slice())?;
        Ok(())
    }

    /// Writes node `id`'s vector (stored form).
    pub(crate) fn put_vector(&mut self, id: NodeId, vector: &[f32]) -> Result<()> {
        self.vectors
            .insert(u64::from(id), codec::encode_vector(vector).as_slice())?;
        Ok(())
    }

    /// Maps user key `key` to node `id`, or unmaps it.
    pub(crate) fn put_key(&mut self, key: u64, id: Option<NodeId>) -> Result<()> {
        match id {
            Some(id) => self.keys.insert(key, u64::from(id))?,
            None => self.keys.remove(key)?,
        };
        Ok(())
    }

    /// Writes the forward (`reverse == false`) or reverse list of `id` on `layer`; an empty list
    /// deletes the row.
    pub(crate) fn put_list(
        &mut self,
        reverse: bool,
        id: NodeId,
        layer: u8,
        ids: &[NodeId],
    ) -> Result<()> {
        let table = if reverse {
            &mut self.reverse
        } else {
            &mut self.links
        };
        let key = link_key(id, layer);
        if ids.is_empty() {
            table.remove(key)?;
        } else {
            table.insert(key, codec::encode_ids(ids).as_slice())?;
        }
        Ok(())
    }
}
