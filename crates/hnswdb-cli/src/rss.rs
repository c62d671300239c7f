//! The process's resident memory, where the OS reports it (Linux: `/proc/self/status`).

use std::fs;

/// Resident memory now (`VmRSS`).
pub fn current() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// Peak resident memory (`VmHWM`).
pub fn peak() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// The size in the `/proc/self/status` line starting with `field` (given there in KiB).
fn status_bytes(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
