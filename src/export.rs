//! [`Index::export`] and [`Index::import`]: every key and vector of an index as one versioned,
//! checksummed byte stream, and a new index rebuilt from such a stream.
//!
//! # The stream, format version 2
//!
//! Every integer and float is little-endian; there is no padding.
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `b"hnswexp\0"` |
//! | 4 | format version, `u32` (2) |
//! | 4 | `dim`, `u32` |
//! | 1 | metric: 0 L2, 1 cosine, 2 dot |
//! | 1 | quantization: 0 none, 1 int8, 2 binary (0 in version 1) |
//! | 2 | zero |
//! | 4 | `m`, `u32` |
//! | 4 | `ef_construction`, `u32` |
//! | 4 | `ef_search`, `u32` |
//! | 8 | `seed`, `u64` |
//! | 8 | row count `n`, `u64` |
//! | `n × (8 + 4·dim)` | rows, keys strictly ascending: key `u64`, then `dim` × `f32` |
//! | 8 | trailer magic `b"hnswend\0"` |
//! | 8 | row count `n` again, `u64` |
//! | 4 | CRC-32 (IEEE, as zlib and `crc32fast` compute it) of every byte before it |
//!
//! The header (48 bytes) is read first and a version other than 1 or 2 is refused with
//! [`Error::Version`] before anything else is read; any later version may change everything
//! after the first 12 bytes. Version 1 streams (no quantization) are read as before. A stream ends with its trailer: bytes after it are an error.
//!
//! # What is in it, and what is not
//!
//! The stream holds the structural options (the quantization among them: the codes are
//! computed again from the vectors) and every `(key, vector)` pair, each vector exactly
//! as inserted (bit for bit). It does **not** hold the graph: [`Index::import`] rebuilds it by
//! inserting the rows in key order, so the import is a fresh build — compacted, free of the
//! history of removals and upserts. The rows are inserted one at a time, so the build is
//! deterministic: the same stream (same seed, same rows in the same order) always gives the
//! same graph, and an index built by inserting its rows one at a time in ascending key order
//! into a new index gets back exactly its own graph. The
//! durability, quick-repair and cache settings are not exported; the imported index has the
//! defaults of [`Options::new`].
//!
//! Version changes:
//! - 1: first format.
//! - 2: the quantization byte (byte 17, reserved and zero before).

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use std::sync::Arc;

use crate::claims;
use crate::error::{Error, Location, Result};
use crate::files;
use crate::graph::NodeId;
use crate::index::{claim_name, Index};
use crate::options::{Metric, Options, Quantization};
use crate::store::{self, Db, TableNames};

/// First bytes of an export stream.
const MAGIC: [u8; 8] = *b"hnswexp\0";
/// First bytes of the trailer, after the last row.
const TRAILER_MAGIC: [u8; 8] = *b"hnswend\0";
/// The stream format this build writes and reads. Bump on any change after the first 12 bytes.
const VERSION: u32 = 2;
/// Bytes before the first row.
const HEADER_LEN: usize = 48;
/// Rows per write transaction while importing: a transaction keeps its new vectors in memory
/// until it commits, so they are bounded by about this many bytes of rows.
const IMPORT_TXN_BYTES: u64 = 64 << 20;
/// Buffer size between the stream and the caller's reader or writer.
const BUFFER: usize = 1 << 16;

/// What [`Index::export`] wrote.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use hnswdb::{Index, Metric, Options};
/// let index = Index::create(dir.path().join("a.hnsw"), Options::new(4).metric(Metric::L2))?;
/// index.insert(1, &[1.0, 2.0, 3.0, 4.0])?;
/// let mut stream = Vec::new();
/// let written = index.export(&mut stream)?;
/// assert_eq!(written.rows, 1);
/// assert_eq!(written.bytes, stream.len() as u64); // 48 + (8 + 16) + 20
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Rows (key and vector) written.
    pub rows: u64,
    /// Bytes written in all.
    pub bytes: u64,
}

impl Index {
    /// Writes every key and vector of the index to `writer` as one stream (the format is in
    /// this module's documentation), in ascending key order; returns the rows and bytes
    /// written. [`Index::import`] reads it back.
    ///
    /// The stream shows one committed state: the one current when `export` starts, read
    /// through a single read transaction. Writers are not held up: they commit meanwhile, and
    /// their changes are simply not in the stream. `writer` is buffered here, and flushed at
    /// the end. On an error the stream is incomplete (it lacks its trailer), so an import of it
    /// fails.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use hnswdb::{Index, Metric, Options};
    /// let index = Index::create(dir.path().join("a.hnsw"), Options::new(2).metric(Metric::L2))?;
    /// index.insert_batch([(1, [1.0, 0.0]), (2, [0.0, 1.0])])?;
    /// let file = std::fs::File::create(dir.path().join("a.export"))?;
    /// assert_eq!(index.export(file)?.rows, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn export(&self, writer: impl Write) -> Result<ExportStats> {
        let snap = self.engine().snapshot();
        let options = self.options();
        let dim = options.dim;
        let mut out = HashWriter {
            inner: BufWriter::with_capacity(BUFFER, writer),
            crc: crc32fast::Hasher::new(),
            bytes: 0,
        };
        out.write_all(&encode_header(options, snap.counters.len))?;
        let mut row = Vec::with_capacity(8 + 4 * dim);
        let mut rows = 0u64;
        store::guarded("export", || {
            snap.tables.scan_keys(|key, id| {
                let at = || format!("keys[{key}]");
                let id = NodeId::try_from(id)
                    .map_err(|_| Error::corrupt(format!("node id {id} out of range"), at()))?;
                row.clear();
                row.extend_from_slice(&key.to_le_bytes());
                snap.tables.vector_with(id, |v| {
                    for x in v {
                        row.extend_from_slice(&x.to_le_bytes());
                    }
                })?;
                out.write_all(&row)?;
                rows += 1;
                Ok(())
            })
        })?;
        if rows != snap.counters.len {
            return Err(Error::corrupt(
                format!(
                    "{rows} keys stored, but the header counts {}",
                    snap.counters.len
                ),
                "keys",
            ));
        }
        out.write_all(&TRAILER_MAGIC)?;
        out.write_all(&rows.to_le_bytes())?;
        let crc = out.crc.clone().finalize();
        out.write_all(&crc.to_le_bytes())?;
        out.inner.flush()?;
        Ok(ExportStats {
            rows,
            bytes: out.bytes,
        })
    }

    /// Creates a new index at `path` from a stream written by [`Index::export`], rebuilding
    /// the graph by inserting the rows in key order (a few large transactions), and returns it
    /// open. Reads `reader` to its end.
    ///
    /// Fails with [`Error::AlreadyExists`] if anything is at `path` (checked before reading),
    /// [`Error::Version`] for a stream of a newer format, and [`Error::InvalidStream`] (saying what
    /// and at which byte) for anything else wrong with the stream: another magic, invalid
    /// options, a truncated stream, keys out of order or repeated, a NaN, infinite or (under
    /// cosine) zero vector, a row count or checksum that does not match, bytes after the
    /// trailer. A failed import leaves nothing at `path`: the index is built under a temporary
    /// name beside it (`<file name>.hnswdb-import-…`, removed on failure) and moved into place only
    /// once the whole stream has checked out.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use hnswdb::{Index, Metric, Options};
    /// let index = Index::create(dir.path().join("a.hnsw"), Options::new(2).metric(Metric::L2))?;
    /// index.insert_batch([(1, [1.0, 0.0]), (2, [0.0, 1.0])])?;
    /// let mut stream = Vec::new();
    /// index.export(&mut stream)?;
    ///
    /// let copy = Index::import(dir.path().join("b.hnsw"), stream.as_slice())?;
    /// assert_eq!(copy.keys()?, vec![1, 2]);
    /// assert_eq!(copy.get(2)?, Some(vec![0.0, 1.0]));
    /// assert_eq!(copy.search(&[0.9, 0.1], 1)?[0].key, 1);
    ///
    /// stream.truncate(stream.len() - 1);
    /// assert!(Index::import(dir.path().join("c.hnsw"), stream.as_slice()).is_err());
    /// assert!(!dir.path().join("c.hnsw").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn import(path: impl AsRef<Path>, reader: impl Read) -> Result<Index> {
        let path = path.as_ref();
        if path.exists() {
            return Err(Error::AlreadyExists {
                index: Location::File(path.to_owned()),
            });
        }
        let mut input = Stream {
            inner: BufReader::with_capacity(BUFFER, reader),
            crc: crc32fast::Hasher::new(),
            offset: 0,
        };
        let (options, rows) = input.header()?;
        let (index, temp) = Index::create_temporary(path, options)?;
        fill(&index, &mut input, rows)?;
        // Closed before it is moved into place and opened again under its own name; on any
        // error the temporary file is removed as `temp` drops.
        index.close()?;
        files::place_new(temp, path)?;
        Index::open(path)
    }
}

/// Importing into an app's database.
impl Index {
    /// Builds the index `name` inside the app's redb database `db` from an export stream, as
    /// [`import`](Index::import) builds a file: the index appears whole or not at all. It is
    /// built under staging tables (`hnswdb/<name>~import/...`), committed every few megabytes
    /// of rows, and renamed into place in one commit at the end; a crash or an error leaves no
    /// index `name` (the next import of that name removes what a crash left).
    /// [`Error::AlreadyExists`] if there is an index of that name.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use hnswdb::{redb, Index, Metric, Options};
    /// # let dir = tempfile::tempdir()?;
    /// let source = Index::in_memory(Options::new(2).metric(Metric::L2))?;
    /// source.insert_batch([(1, [1.0, 0.0]), (2, [0.0, 1.0])])?;
    /// let mut stream = Vec::new();
    /// source.export(&mut stream)?;
    ///
    /// let db = Arc::new(redb::Database::create(dir.path().join("app.redb"))?);
    /// let index = Index::import_in(db, "copy", stream.as_slice())?;
    /// assert_eq!(index.keys()?, [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn import_in(db: Arc<redb::Database>, name: &str, reader: impl Read) -> Result<Index> {
        let claim = claim_name(&db, name)?;
        let names = TableNames::named(name);
        let staging = TableNames::staging(name);
        let location = Location::Named(name.to_owned());
        let exists = store::guarded("import", || {
            store::index_exists(&store::begin_read(&db)?, &names)
        })?;
        if exists {
            return Err(Error::AlreadyExists { index: location });
        }
        drop_staging(&db, &staging)?;
        let mut input = Stream {
            inner: BufReader::with_capacity(BUFFER, reader),
            crc: crc32fast::Hasher::new(),
            offset: 0,
        };
        let built = input.header().and_then(|(options, rows)| {
            let index = Index::create_over(
                location.clone(),
                Db::shared(Arc::clone(&db), staging.clone()),
                options,
            )?;
            fill(&index, &mut input, rows)?;
            index.close()
        });
        if let Err(e) = built {
            let _ = drop_staging(&db, &staging);
            return Err(e);
        }
        let (txn, _writer) = claims::begin_write(&db)?;
        store::guarded("import", || {
            store::rename_tables(&txn, &staging, &names)?;
            txn.commit()?;
            Ok(())
        })?;
        Index::open_imported(db, name, claim)
    }
}

/// Deletes the staging tables an import left behind, if any.
fn drop_staging(db: &redb::Database, staging: &TableNames) -> Result<()> {
    let (txn, _writer) = claims::begin_write(db)?;
    store::guarded("import", || {
        if store::delete_tables(&txn, staging)? {
            txn.commit()?;
        }
        Ok(())
    })
}

/// Reads the rows and the trailer of `input` into `index`, committing every
/// [`IMPORT_TXN_BYTES`] of rows.
fn fill<R: Read>(index: &Index, input: &mut Stream<R>, rows: u64) -> Result<()> {
    let options = index.options();
    let dim = options.dim;
    let row_bytes = 8 + 4 * dim;
    let per_txn = (IMPORT_TXN_BYTES / row_bytes as u64).max(1);
    let mut row = vec![0u8; row_bytes];
    let mut vector = vec![0f32; dim];
    let mut last: Option<u64> = None;
    let mut tx = None;
    for i in 0..rows {
        let at = input.offset;
        input.read(&mut row, "a row")?;
        let (key, values) = row.split_at(8);
        let key = u64::from_le_bytes(key.try_into().unwrap_or_default());
        for (x, bytes) in vector.iter_mut().zip(values.chunks_exact(4)) {
            *x = f32::from_le_bytes(bytes.try_into().unwrap_or_default());
        }
        let location = || format!("export stream row {i} at byte {at}");
        if let Some(last) = last.filter(|&last| key <= last) {
            return Err(bad_stream(
                format!("key {key} follows key {last}: keys must be strictly ascending"),
                location(),
            ));
        }
        last = Some(key);
        options.metric.validate(dim, &vector).map_err(|e| {
            bad_stream(
                format!("the vector of key {key} is invalid ({e})"),
                location(),
            )
        })?;
        let txn = match &mut tx {
            Some(txn) => txn,
            None => tx.insert(index.write()?),
        };
        txn.insert(key, &vector)?;
        if (i + 1) % per_txn == 0 {
            if let Some(txn) = tx.take() {
                txn.commit()?;
            }
        }
    }
    input.trailer(rows)?;
    if let Some(txn) = tx {
        txn.commit()?;
    }
    Ok(())
}

/// The 48-byte header of a stream of `rows` rows under `options`.
fn encode_header(options: &Options, rows: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(options.dim as u32).to_le_bytes());
    h[16] = options.metric.to_byte();
    h[17] = options.quantization.to_byte();
    h[20..24].copy_from_slice(&(options.m as u32).to_le_bytes());
    h[24..28].copy_from_slice(&(options.ef_construction as u32).to_le_bytes());
    h[28..32].copy_from_slice(&(options.ef_search as u32).to_le_bytes());
    h[32..40].copy_from_slice(&options.seed.to_le_bytes());
    h[40..48].copy_from_slice(&rows.to_le_bytes());
    h
}

/// A writer that counts and checksums what passes through it.
struct HashWriter<W: Write> {
    inner: W,
    /// CRC-32 (IEEE, as zlib computes it) of every byte so far.
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> HashWriter<W> {
    fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.inner.write_all(bytes)?;
        self.crc.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

/// An [`Error::InvalidStream`].
fn bad_stream(what: impl Into<String>, location: impl Into<String>) -> Error {
    Error::InvalidStream {
        what: what.into(),
        location: location.into(),
    }
}

/// The reading side: exact reads that checksum what they read and know their offset.
struct Stream<R: Read> {
    inner: BufReader<R>,
    /// CRC-32 (IEEE, as zlib computes it) of every byte so far.
    crc: crc32fast::Hasher,
    offset: u64,
}

impl<R: Read> Stream<R> {
    /// Fills `buf`; an early end is `Error::InvalidStream` naming `what` was being read.
    fn read(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.crc.update(buf);
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(bad_stream(
                format!("the stream ends in the middle of {what}: it is truncated"),
                format!("export stream byte {}", self.offset),
            )),
            Err(e) => Err(Error::Io(e)),
        }
    }

    /// Reads and checks the header: the options to build with and the row count.
    fn header(&mut self) -> Result<(Options, u64)> {
        let mut h = [0u8; HEADER_LEN];
        self.read(&mut h[..12], "the header")?;
        let bad =
            |what: String, at: usize| bad_stream(what, format!("export stream header, byte {at}"));
        if h[..8] != MAGIC {
            return Err(bad(
                "this is not an hnswdb export stream (wrong magic bytes)".into(),
                0,
            ));
        }
        let u32_at = |h: &[u8; HEADER_LEN], at: usize| {
            u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]])
        };
        let u64_at = |h: &[u8; HEADER_LEN], at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let version = u32_at(&h, 8);
        if version != VERSION && version != 1 {
            return Err(Error::Version {
                found: version,
                supported: VERSION,
            });
        }
        self.read(&mut h[12..], "the header")?;
        let metric =
            Metric::from_byte(h[16]).ok_or_else(|| bad(format!("unknown metric {}", h[16]), 16))?;
        let quantization = match version {
            1 => (h[17] == 0).then_some(Quantization::None),
            _ => Quantization::from_byte(h[17]),
        }
        .ok_or_else(|| bad(format!("unknown quantization {}", h[17]), 17))?;
        if h[18..20] != [0; 2] {
            return Err(bad("reserved bytes are not zero".into(), 18));
        }
        let options = Options::new(u32_at(&h, 12) as usize)
            .metric(metric)
            .m(u32_at(&h, 20) as usize)
            .ef_construction(u32_at(&h, 24) as usize)
            .ef_search(u32_at(&h, 28) as usize)
            .seed(u64_at(&h, 32))
            .quantization(quantization);
        options
            .validate()
            .map_err(|e| bad(format!("the stream's options are invalid: {e}"), 12))?;
        Ok((options, u64_at(&h, 40)))
    }

    /// Reads and checks the trailer after `rows` rows, and that nothing follows it.
    fn trailer(&mut self, rows: u64) -> Result<()> {
        let at = self.offset;
        let mut t = [0u8; 16];
        self.read(&mut t, "the trailer")?;
        let bad = |what: String| bad_stream(what, format!("export stream trailer, byte {at}"));
        if t[..8] != TRAILER_MAGIC {
            return Err(bad(format!(
                "no trailer after the {rows} rows the header announces"
            )));
        }
        let mut count = [0u8; 8];
        count.copy_from_slice(&t[8..]);
        let count = u64::from_le_bytes(count);
        if count != rows {
            return Err(bad(format!(
                "the trailer counts {count} rows, the header {rows}"
            )));
        }
        let computed = self.crc.clone().finalize();
        let mut stored = [0u8; 4];
        self.read(&mut stored, "the checksum")?;
        let stored = u32::from_le_bytes(stored);
        if stored != computed {
            return Err(bad(format!(
                "checksum mismatch: the stream says {stored:08x}, its content gives {computed:08x}"
            )));
        }
        let mut extra = [0u8; 1];
        loop {
            match self.inner.read(&mut extra) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(bad_stream(
                        "unexpected bytes after the end of the stream",
                        format!("export stream byte {}", self.offset),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream's checksum of `bytes`, fed as `HashWriter` and `Stream` feed it.
    fn crc(bytes: &[u8]) -> u32 {
        let mut c = crc32fast::Hasher::new();
        c.update(bytes);
        c.finalize()
    }

    #[test]
    fn crc32_matches_the_standard_check_values() {
        assert_eq!(crc(b""), 0);
        assert_eq!(crc(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            crc(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
        // Fed in uneven pieces, as the stream feeds it, the same.
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut c = crc32fast::Hasher::new();
        for piece in data.chunks(7) {
            c.update(piece);
        }
        assert_eq!(c.finalize(), crc(&data));
    }

    #[test]
    fn the_header_is_48_bytes_and_starts_with_magic_and_version() {
        let options = Options::new(7).metric(Metric::Dot).seed(9);
        let h = encode_header(&options.quantization(Quantization::Binary), 3);
        assert_eq!(&h[..8], b"hnswexp\0");
        assert_eq!(h[8..12], 2u32.to_le_bytes());
        assert_eq!(h[12..16], 7u32.to_le_bytes());
        assert_eq!(h[16], 2);
        assert_eq!(h[17], 2);
        assert_eq!(h[32..40], 9u64.to_le_bytes());
        assert_eq!(h[40..48], 3u64.to_le_bytes());
    }
}
