//! Reading and writing vector files: `.fvecs`, `.bvecs`, `.ivecs` (TEXMEX), `.npy` and CSV.
//!
//! Every reader checks its input completely and says what is wrong and where (row, byte offset or
//! line): a truncated record, a dimension that changes between rows, a non-finite value, an
//! unsupported `.npy` dtype. No input makes a reader panic.
//!
//! Files are read whole into memory: a million 128-dimensional vectors take 512 MB.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::CliError;

/// Largest dimension accepted in a file header, so a damaged header cannot ask for gigabytes.
const MAX_DIM: usize = 1 << 20;

/// A dense row-major matrix of `f32`: `len()` vectors of `dim` components each.
#[derive(Clone, Debug, PartialEq)]
pub struct Vectors {
    dim: usize,
    data: Vec<f32>,
}

impl Vectors {
    /// Wraps `data`, which holds `data.len() / dim` rows. Invariant: `dim > 0` and
    /// `data.len() % dim == 0`.
    pub fn new(dim: usize, data: Vec<f32>) -> Vectors {
        assert!(dim > 0 && data.len().is_multiple_of(dim), "ragged matrix");
        Vectors { dim, data }
    }

    /// Components per vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Row `i`. Invariant: `i < len()`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Every row, in order.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.data.chunks_exact(self.dim)
    }

    /// Rejects NaN and infinity, naming the first offending row and column.
    fn check_finite(&self, path: &Path) -> Result<(), CliError> {
        match self.data.iter().position(|x| !x.is_finite()) {
            None => Ok(()),
            Some(at) => Err(CliError::new(format!(
                "{}: row {} column {} is {}; vectors must hold finite numbers",
                path.display(),
                at / self.dim,
                at % self.dim,
                self.data[at]
            ))),
        }
    }
}

/// The vector file formats this tool reads, chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// TEXMEX `.fvecs`: per vector a little-endian `i32` dimension, then that many `f32`.
    Fvecs,
    /// TEXMEX `.bvecs`: per vector a little-endian `i32` dimension, then that many `u8`.
    Bvecs,
    /// NumPy `.npy`: a 2-D little-endian `float32` array in C order.
    Npy,
    /// Text: one vector per line, components separated by commas.
    Csv,
}

impl Format {
    /// The format of `path`, from its extension.
    pub fn of(path: &Path) -> Result<Format, CliError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("fvecs") => Ok(Format::Fvecs),
            Some("bvecs") => Ok(Format::Bvecs),
            Some("npy") => Ok(Format::Npy),
            Some("csv") => Ok(Format::Csv),
            _ => Err(CliError::new(format!(
                "{}: unknown vector file type; use .fvecs, .bvecs, .npy (float32, 2-D) or .csv",
                path.display()
            ))),
        }
    }
}

/// Reads every vector of `path`, in the format its extension names. At least one vector must be
/// present, and every value must be finite.
pub fn read_vectors(path: &Path) -> Result<Vectors, CliError> {
    let format = Format::of(path)?;
    let bytes = fs::read(path).map_err(|e| CliError::io(path, e))?;
    let vectors = match format {
        Format::Fvecs => parse_xvecs(&bytes, 4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        Format::Bvecs => parse_xvecs(&bytes, 1, |b| f32::from(b[0])),
        Format::Npy => parse_npy(&bytes),
        Format::Csv => parse_csv(&bytes),
    }
    .map_err(|msg| CliError::new(format!("{}: {msg}", path.display())))?;
    vectors.check_finite(path)?;
    Ok(vectors)
}

/// Reads a TEXMEX `.ivecs` file (per row a little-endian `i32` length, then that many `i32`):
/// ground-truth neighbour ids. Rows may not be empty; ids may not be negative.
pub fn read_ivecs(path: &Path) -> Result<Vec<Vec<u64>>, CliError> {
    let bytes = fs::read(path).map_err(|e| CliError::io(path, e))?;
    let fail = |msg: String| CliError::new(format!("{}: {msg}", path.display()));
    let (dim, ints) =
        parse_records(&bytes, 4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).map_err(fail)?;
    ints.chunks_exact(dim)
        .enumerate()
        .map(|(row, ids)| {
            ids.iter()
                .map(|&id| {
                    u64::try_from(id)
                        .map_err(|_| fail(format!("row {row} holds a negative id ({id})")))
                })
                .collect()
        })
        .collect()
}

/// Reads a keys file: one unsigned integer per line (blank lines and `#` comments skipped).
pub fn read_keys(path: &Path) -> Result<Vec<u64>, CliError> {
    let text = fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
    let mut keys = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.parse::<u64>().map_err(|_| {
            CliError::new(format!(
                "{}: line {}: {line:?} is not an unsigned integer key",
                path.display(),
                line_no + 1
            ))
        })?;
        keys.push(key);
    }
    Ok(keys)
}

/// Writes `vectors` as `.fvecs`.
pub fn write_fvecs(path: &Path, vectors: &Vectors) -> io::Result<()> {
    let mut out = io::BufWriter::new(fs::File::create(path)?);
    let dim = i32::try_from(vectors.dim()).map_err(io::Error::other)?;
    for row in vectors.rows() {
        out.write_all(&dim.to_le_bytes())?;
        for x in row {
            out.write_all(&x.to_le_bytes())?;
        }
    }
    out.flush()
}

/// Writes `rows` as `.ivecs`.
pub fn write_ivecs(path: &Path, rows: &[Vec<u64>]) -> io::Result<()> {
    let mut out = io::BufWriter::new(fs::File::create(path)?);
    for row in rows {
        let len = i32::try_from(row.len()).map_err(io::Error::other)?;
        out.write_all(&len.to_le_bytes())?;
        for &id in row {
            let id = i32::try_from(id).map_err(io::Error::other)?;
            out.write_all(&id.to_le_bytes())?;
        }
    }
    out.flush()
}

/// Parses `.fvecs`/`.bvecs`: records of an `i32` dimension and `dim` components of `width`
/// bytes each, converted by `decode`.
fn parse_xvecs(
    bytes: &[u8],
    width: usize,
    decode: impl Fn(&[u8]) -> f32,
) -> Result<Vectors, String> {
    let (dim, data) = parse_records(bytes, width, decode)?;
    Ok(Vectors::new(dim, data))
}

/// Parses TEXMEX records: per record a little-endian `i32` count, then `count` items of `width`
/// bytes. Every record must have the count of the first. Returns the count and all items.
fn parse_records<T>(
    bytes: &[u8],
    width: usize,
    decode: impl Fn(&[u8]) -> T,
) -> Result<(usize, Vec<T>), String> {
    if bytes.is_empty() {
        return Err("the file is empty; it holds no vectors".into());
    }
    let header = |at: usize| -> Result<usize, String> {
        let Some(b) = bytes.get(at..at + 4) else {
            return Err(format!(
                "truncated at byte {at}: a record header needs 4 bytes, {} left",
                bytes.len() - at
            ));
        };
        let dim = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        match usize::try_from(dim) {
            Ok(d) if (1..=MAX_DIM).contains(&d) => Ok(d),
            _ => Err(format!(
                "record at byte {at} declares dimension {dim}; expected 1 to {MAX_DIM} \
                 (is this really a TEXMEX vector file?)"
            )),
        }
    };
    let dim = header(0)?;
    let record = 4 + dim * width;
    let rows = bytes.len() / record;
    if !bytes.len().is_multiple_of(record) {
        return Err(format!(
            "truncated or malformed: {} bytes is not a whole number of {record}-byte records \
             (dimension {dim}); the last record is cut off after row {rows}",
            bytes.len()
        ));
    }
    let mut items = Vec::with_capacity(rows * dim);
    for (row, rec) in bytes.chunks_exact(record).enumerate() {
        let d = header(row * record)?;
        if d != dim {
            return Err(format!(
                "row {row} (byte {}) has dimension {d}, but row 0 has {dim}",
                row * record
            ));
        }
        items.extend(rec[4..].chunks_exact(width).map(&decode));
    }
    Ok((dim, items))
}

/// Parses a `.npy` file holding a 2-D little-endian `float32` array in C order.
fn parse_npy(bytes: &[u8]) -> Result<Vectors, String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a NumPy .npy file (bad magic)".into());
    }
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            let b = bytes.get(8..12).ok_or("truncated .npy header")?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    let header = bytes
        .get(header_start..header_start + header_len)
        .ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| ".npy header is not text")?;
    let descr = npy_field(header, "descr").ok_or(".npy header has no 'descr'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    if descr != "<f4" && descr != "=f4" {
        return Err(format!(
            ".npy dtype {descr:?} is not supported; save a little-endian float32 array \
             (e.g. np.save(path, a.astype('<f4')))"
        ));
    }
    let fortran = npy_field(header, "fortran_order").ok_or(".npy header has no 'fortran_order'")?;
    if fortran != "False" {
        return Err(".npy array is in Fortran order; save it in C order \
                    (e.g. np.save(path, np.ascontiguousarray(a)))"
            .into());
    }
    let shape = npy_field(header, "shape").ok_or(".npy header has no 'shape'")?;
    let dims: Vec<usize> = shape
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!(".npy shape {shape} is not a tuple of sizes"))?;
    let [rows, dim] = dims[..] else {
        return Err(format!(
            ".npy array has shape {shape}; a 2-D array (vectors × dimensions) is needed"
        ));
    };
    if rows == 0 || dim == 0 || dim > MAX_DIM {
        return Err(format!(
            ".npy array has shape {shape}; it needs at least one vector of 1 to {MAX_DIM} dimensions"
        ));
    }
    let data = &bytes[header_start + header_len..];
    let expected = rows
        .checked_mul(dim)
        .and_then(|n| n.checked_mul(4))
        .ok_or_else(|| format!(".npy shape {shape} is too large"))?;
    if data.len() != expected {
        return Err(format!(
            ".npy data is {} bytes but shape {shape} of float32 needs {expected} (truncated?)",
            data.len()
        ));
    }
    let floats = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Vectors::new(dim, floats))
}

/// The raw value of `key` in a `.npy` header dict, e.g. `'<f4'`, `False` or `(10, 3)`.
fn npy_field<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let start = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = header[start + key.len() + 2..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

/// Parses CSV: one vector per line, comma-separated numbers. Blank lines and lines starting with
/// `#` are skipped; a first line that holds no number at all is taken as a header.
fn parse_csv(bytes: &[u8]) -> Result<Vectors, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (byte {}); CSV files hold one vector per line",
            e.valid_up_to()
        )
    })?;
    let mut dim = 0;
    let mut data = Vec::new();
    let mut seen_row = false;
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed: Vec<Result<f32, _>> = fields.iter().map(|f| f.parse::<f32>()).collect();
        if !seen_row && parsed.iter().all(Result::is_err) {
            seen_row = true; // a header line
            continue;
        }
        seen_row = true;
        if dim == 0 {
            dim = fields.len();
        } else if fields.len() != dim {
            return Err(format!(
                "line {} has {} values, but the first row has {dim}",
                line_no + 1,
                fields.len()
            ));
        }
        for (col, value) in parsed.into_iter().enumerate() {
            let value = value.map_err(|_| {
                let mut msg = String::new();
                let _ = write!(
                    msg,
                    "line {} column {}: {:?} is not a number",
                    line_no + 1,
                    col + 1,
                    fields[col]
                );
                msg
            })?;
            data.push(value);
        }
    }
    if dim == 0 {
        return Err("holds no vectors".into());
    }
    Ok(Vectors::new(dim, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    fn sample() -> Vectors {
        Vectors::new(3, vec![1.0, 2.0, 3.0, -4.0, 5.5, 6.25])
    }

    fn fvecs_bytes(v: &Vectors) -> Vec<u8> {
        let mut out = Vec::new();
        for row in v.rows() {
            out.extend_from_slice(&(v.dim() as i32).to_le_bytes());
            for x in row {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    fn npy_bytes(descr: &str, fortran: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn err(path: &Path) -> String {
        read_vectors(path).unwrap_err().to_string()
    }

    #[test]
    fn fvecs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.fvecs");
        write_fvecs(&path, &sample()).unwrap();
        assert_eq!(read_vectors(&path).unwrap(), sample());
    }

    #[test]
    fn fvecs_truncated_is_an_error() {
        let mut bytes = fvecs_bytes(&sample());
        bytes.truncate(bytes.len() - 3);
        let (_d, path) = temp("t.fvecs", &bytes);
        assert!(err(&path).contains("truncated"), "{}", err(&path));
    }

    #[test]
    fn fvecs_changing_dimension_is_an_error() {
        let mut bytes = fvecs_bytes(&sample());
        bytes.extend_from_slice(&fvecs_bytes(&Vectors::new(2, vec![1.0, 2.0])));
        // 2 × 16 bytes + 12 bytes: not whole records of 16.
        let (_d, path) = temp("t.fvecs", &bytes);
        assert!(err(&path).contains("truncated"));
        let mut bytes = fvecs_bytes(&Vectors::new(1, vec![1.0, 2.0]));
        bytes.extend_from_slice(&2i32.to_le_bytes()); // 8 more bytes: 24 = 3 records of 8
        bytes.extend_from_slice(&1f32.to_le_bytes());
        let (_d, path) = temp("t.fvecs", &bytes);
        assert!(err(&path).contains("row 2"), "{}", err(&path));
    }

    #[test]
    fn fvecs_bad_header_empty_and_nan() {
        let (_d, path) = temp("t.fvecs", &(-5i32).to_le_bytes());
        assert!(err(&path).contains("dimension -5"));
        let (_d, path) = temp("t.fvecs", b"");
        assert!(err(&path).contains("empty"));
        let bytes = fvecs_bytes(&Vectors::new(2, vec![1.0, f32::NAN]));
        let (_d, path) = temp("t.fvecs", &bytes);
        assert!(
            err(&path).contains("row 0 column 1 is NaN"),
            "{}",
            err(&path)
        );
    }

    #[test]
    fn bvecs_reads_bytes_as_floats() {
        let mut bytes = 2i32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0, 255]);
        bytes.extend_from_slice(&2i32.to_le_bytes());
        bytes.extend_from_slice(&[7, 8]);
        let (_d, path) = temp("a.bvecs", &bytes);
        let v = read_vectors(&path).unwrap();
        assert_eq!(v, Vectors::new(2, vec![0.0, 255.0, 7.0, 8.0]));
        let (_d, path) = temp("a.bvecs", &bytes[..7]);
        assert!(err(&path).contains("truncated"));
    }

    #[test]
    fn ivecs_round_trip_and_negative_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gt.ivecs");
        let rows = vec![vec![3, 1, 2], vec![0, 5, 9]];
        write_ivecs(&path, &rows).unwrap();
        assert_eq!(read_ivecs(&path).unwrap(), rows);
        let mut bytes = 1i32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&(-1i32).to_le_bytes());
        fs::write(&path, bytes).unwrap();
        assert!(read_ivecs(&path)
            .unwrap_err()
            .to_string()
            .contains("negative"));
    }

    #[test]
    fn npy_float32_reads() {
        let data: Vec<u8> = sample()
            .rows()
            .flatten()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let (_d, path) = temp("a.npy", &npy_bytes("<f4", "False", "(2, 3)", &data));
        assert_eq!(read_vectors(&path).unwrap(), sample());
    }

    #[test]
    fn npy_rejects_other_arrays() {
        let data = [0u8; 48];
        let cases = [
            (npy_bytes("<f8", "False", "(2, 3)", &data), "dtype \"<f8\""),
            (npy_bytes("<f4", "True", "(2, 3)", &data[..24]), "Fortran"),
            (npy_bytes("<f4", "False", "(6,)", &data[..24]), "2-D"),
            (npy_bytes("<f4", "False", "(2, 3, 1)", &data[..24]), "2-D"),
            (
                npy_bytes("<f4", "False", "(2, 3)", &data[..20]),
                "truncated",
            ),
            (npy_bytes("<f4", "False", "(0, 3)", &[]), "at least one"),
            (b"\x93NUMPY\x01\x00\xff\x00{".to_vec(), "truncated"),
            (b"PK\x03\x04 not numpy".to_vec(), "bad magic"),
        ];
        for (bytes, expected) in cases {
            let (_d, path) = temp("a.npy", &bytes);
            let msg = err(&path);
            assert!(msg.contains(expected), "{msg:?} should say {expected:?}");
        }
    }

    #[test]
    fn csv_reads_with_header_and_comments() {
        let text = "x,y,z\n# a comment\n1, 2, 3\n\n-4,5.5,6.25\n";
        let (_d, path) = temp("a.csv", text.as_bytes());
        assert_eq!(read_vectors(&path).unwrap(), sample());
    }

    #[test]
    fn csv_errors_name_the_line() {
        let (_d, path) = temp("a.csv", b"1,2,3\n4,5\n");
        assert!(err(&path).contains("line 2 has 2 values"));
        let (_d, path) = temp("a.csv", b"1,2,3\n4,five,6\n");
        assert!(err(&path).contains("line 2 column 2"));
        let (_d, path) = temp("a.csv", b"\n# nothing\n");
        assert!(err(&path).contains("no vectors"));
        let (_d, path) = temp("a.csv", b"1,inf,3\n");
        assert!(err(&path).contains("is inf"));
    }

    #[test]
    fn unknown_extension_and_missing_file() {
        let (_d, path) = temp("a.txt", b"1,2\n");
        assert!(err(&path).contains("unknown vector file type"));
        let msg = err(Path::new("/nonexistent/x.fvecs"));
        assert!(msg.contains("/nonexistent/x.fvecs"), "{msg}");
    }

    #[test]
    fn keys_file() {
        let (_d, path) = temp("k.txt", b"# keys\n10\n 20 \n\n30\n");
        assert_eq!(read_keys(&path).unwrap(), vec![10, 20, 30]);
        let (_d, path) = temp("k.txt", b"10\n-1\n");
        assert!(read_keys(&path).unwrap_err().to_string().contains("line 2"));
    }
}
