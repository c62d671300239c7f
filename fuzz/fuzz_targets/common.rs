//! What the fuzz targets share.
#![allow(dead_code)]

/// A directory in memory when there is one: commits fsync, and tmpfs makes that free.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

#[path = "../../tests/common/rng.rs"]
mod rng;
// For `tests/common/faulty.rs` in the power_cut target; the other targets do not use it.
#[allow(unused_imports)]
pub use rng::Rng;
