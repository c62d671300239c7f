//! The fault-injecting redb backend of `tests/common/faulty.rs` on its own: pending and durable
//! bytes, each power-cut mode, each injected fault, the counters, the size limit. The foundation
//! for simulating power loss, torn writes and I/O errors under redb and the index.

mod common;
#[path = "common/faulty.rs"]
mod faulty;
use faulty::{CutMode, Disk, Fault, FaultKind, FaultyBackend, Op, OpCounts, MAX_FILE_LEN};

use std::io;

// ---------------------------------------------------------------------------------------------
// The backend alone
// ---------------------------------------------------------------------------------------------

fn write(backend: &FaultyBackend, offset: u64, data: &[u8]) -> io::Result<()> {
    redb::StorageBackend::write(backend, offset, data)
}

fn read(backend: &FaultyBackend, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut out = vec![0; len];
    redb::StorageBackend::read(backend, offset, &mut out)?;
    Ok(out)
}

fn sync(backend: &FaultyBackend) -> io::Result<()> {
    redb::StorageBackend::sync_data(backend)
}

fn set_len(backend: &FaultyBackend, len: u64) -> io::Result<()> {
    redb::StorageBackend::set_len(backend, len)
}

fn len(backend: &FaultyBackend) -> io::Result<u64> {
    redb::StorageBackend::len(backend)
}

#[test]
fn pending_writes_are_visible_but_not_durable_until_synced() {
    let backend = FaultyBackend::new();
    let disk = backend.disk();
    set_len(&backend, 16).unwrap();
    write(&backend, 4, b"abcd").unwrap();
    assert_eq!(len(&backend).unwrap(), 16);
    assert_eq!(read(&backend, 0, 10).unwrap(), b"\0\0\0\0abcd\0\0");
    assert_eq!(disk.durable(), b"");
    assert_eq!(disk.pending_ops(), 2);

    sync(&backend).unwrap();
    assert_eq!(disk.durable(), disk.visible());
    assert_eq!(disk.pending_ops(), 0);

    // A write past the end grows the file with zeros; a shrink is pending like a write.
    write(&backend, 20, b"z").unwrap();
    assert_eq!(len(&backend).unwrap(), 21);
    assert_eq!(read(&backend, 16, 5).unwrap(), b"\0\0\0\0z");
    set_len(&backend, 6).unwrap();
    assert_eq!(disk.visible(), b"\0\0\0\0ab");
    assert_eq!(disk.durable().len(), 16);
    sync(&backend).unwrap();
    assert_eq!(disk.durable(), b"\0\0\0\0ab");
}

#[test]
fn a_read_past_the_end_is_an_error() {
    let backend = FaultyBackend::from_image(vec![7; 10]);
    assert_eq!(read(&backend, 6, 4).unwrap(), [7; 4]);
    let error = read(&backend, 6, 5).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    assert!(read(&backend, u64::MAX, 1).is_err());
}

#[test]
fn drop_all_keeps_the_synced_bytes_only() {
    let backend = FaultyBackend::from_image(vec![1; 8]);
    let disk = backend.disk();
    write(&backend, 0, &[2; 4]).unwrap();
    sync(&backend).unwrap();
    write(&backend, 4, &[3; 4]).unwrap();
    set_len(&backend, 100).unwrap();
    assert_eq!(
        disk.power_cut(CutMode::DropAll, 1),
        [2, 2, 2, 2, 1, 1, 1, 1]
    );
}

#[test]
fn keep_random_subset_keeps_each_pending_write_whole_or_not_in_order() {
    // Per write: seen dropped, seen kept.
    let mut seen = [[false; 2]; 10];
    for seed in 0..64 {
        let backend = FaultyBackend::from_image(vec![0; 64]);
        let disk = backend.disk();
        for i in 0..8u8 {
            write(&backend, 8 * u64::from(i), &[i + 1; 8]).unwrap();
        }
        // Two writes that overlap on bytes 2..4: if both are kept, the newer one's bytes win
        // there. Bytes 4..6 belong to the newer one alone, so an older write applied after it
        // would show as 100 at 2..4 next to 200 at 4..6.
        write(&backend, 0, &[100; 4]).unwrap();
        write(&backend, 2, &[200; 4]).unwrap();
        let image = disk.power_cut(CutMode::KeepRandomSubset, seed);
        assert_eq!(image.len(), 64);
        // Bytes 6..8 of each 8-byte write are written by it alone.
        for i in 0..8usize {
            let tail = &image[8 * i + 6..8 * i + 8];
            let kept = tail == [i as u8 + 1; 2];
            assert!(
                kept || tail == [0; 2],
                "seed {seed}: write {i} split: {tail:?}"
            );
            seen[i][usize::from(kept)] = true;
        }
        let newer_kept = image[4..6] == [200; 2];
        assert!(
            newer_kept || image[4..6] == [0; 2] || image[4..6] == [1; 2],
            "seed {seed}: {:?}",
            &image[..8]
        );
        if newer_kept {
            assert_eq!(
                image[2..4],
                [200; 2],
                "seed {seed}: an older write landed last"
            );
        }
        let older_kept = image[..2] == [100; 2];
        assert!(
            older_kept || image[..2] == [0; 2] || image[..2] == [1; 2],
            "seed {seed}: {:?}",
            &image[..8]
        );
        seen[8][usize::from(older_kept)] = true;
        seen[9][usize::from(newer_kept)] = true;
        // The same seed, the same survivors.
        assert_eq!(image, disk.power_cut(CutMode::KeepRandomSubset, seed));
    }
    assert!(
        seen.iter().all(|s| s[0] && s[1]),
        "every write should be kept by some seed and dropped by another: {seen:?}"
    );
}

#[test]
fn tear_keeps_a_prefix_of_sectors_of_the_last_writes() {
    for granularity in [512u64, 4096] {
        let mut prefixes = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let backend = FaultyBackend::from_image(vec![0; 40_000]);
            let disk = backend.disk();
            // Early writes, then the one most likely torn: 5 sectors and a bit, misaligned.
            write(&backend, 0, &[1; 100]).unwrap();
            write(&backend, 100, &[2; 100]).unwrap();
            write(&backend, 200, &[3; 100]).unwrap();
            write(&backend, 300, &[4; 100]).unwrap();
            let offset = granularity / 2;
            let data = vec![9; 5 * granularity as usize + 7];
            write(&backend, offset, &data).unwrap();
            let image = disk.power_cut(CutMode::Tear { granularity }, seed);
            assert_eq!(image.len(), 40_000);
            // The first write is never torn (at most the last three are).
            assert_eq!(image[..100], [1; 100]);
            // The big write: new bytes up to a sector boundary (or none), old ones after.
            let range = &image[offset as usize..offset as usize + data.len()];
            let new = range.iter().take_while(|&&b| b == 9).count();
            let survived_to = offset + new as u64;
            assert!(
                new == 0 || survived_to.is_multiple_of(granularity),
                "seed {seed}, granularity {granularity}: {new} new bytes"
            );
            assert!(
                new < data.len(),
                "the last write is always torn, seed {seed}"
            );
            assert!(range[new..].iter().all(|&b| b != 9));
            // Bytes past the write are untouched.
            assert!(image[offset as usize + data.len()..]
                .iter()
                .all(|&b| b == 0));
            prefixes.insert(new);
        }
        assert!(
            prefixes.len() >= 4,
            "granularity {granularity}: prefixes {prefixes:?}"
        );
    }
}

#[test]
fn a_torn_write_past_the_end_grows_the_file_by_the_sectors_it_kept_only() {
    let mut lengths = std::collections::BTreeSet::new();
    for seed in 0..32 {
        let backend = FaultyBackend::from_image(vec![0; 512]);
        write(&backend, 512, &[1; 2048]).unwrap();
        let image = backend
            .disk()
            .power_cut(CutMode::Tear { granularity: 512 }, seed);
        // The only write is the last one: torn, 0 to 3 of its 4 sectors kept.
        assert!(
            image.len().is_multiple_of(512) && image.len() < 2560,
            "seed {seed}: {} bytes",
            image.len()
        );
        assert!(image[512..].iter().all(|&b| b == 1), "seed {seed}");
        lengths.insert(image.len());
    }
    assert_eq!(
        lengths.into_iter().collect::<Vec<_>>(),
        [512, 1024, 1536, 2048]
    );
}

#[test]
fn a_file_past_the_largest_size_is_an_error_not_an_allocation() {
    let backend = FaultyBackend::new();
    let disk = backend.disk();
    for error in [
        set_len(&backend, u64::MAX).unwrap_err(),
        set_len(&backend, MAX_FILE_LEN + 1).unwrap_err(),
        write(&backend, u64::MAX, b"a").unwrap_err(),
        write(&backend, MAX_FILE_LEN, b"a").unwrap_err(),
    ] {
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge, "{error}");
    }
    assert_eq!(disk.visible(), b"");
    assert_eq!(disk.pending_ops(), 0);
    // Not injected faults.
    assert!(disk.fired().is_empty());
}

#[test]
fn after_a_power_cut_every_operation_fails_and_the_image_stays() {
    let backend = FaultyBackend::from_image(vec![5; 16]);
    let disk = backend.disk();
    write(&backend, 0, &[6; 4]).unwrap();
    let image = disk.power_cut(CutMode::KeepRandomSubset, 3);
    assert!(disk.is_powered_off());
    let counts = disk.counts();
    for result in [
        write(&backend, 0, &[7; 16]),
        sync(&backend),
        set_len(&backend, 0),
        read(&backend, 0, 1).map(|_| ()),
        len(&backend).map(|_| ()),
    ] {
        let error = result.unwrap_err();
        assert!(error.to_string().contains("power cut"), "{error}");
    }
    assert_eq!(disk.counts(), counts, "refused calls are not counted");
    assert_eq!(disk.power_cut(CutMode::KeepRandomSubset, 3), image);
    assert_eq!(disk.power_cut(CutMode::DropAll, 3), vec![5; 16]);
    // Another backend on the same disk is refused too.
    assert!(len(&disk.backend()).is_err());
}

#[test]
fn cut_at_op_cuts_after_that_many_writes_syncs_and_set_lens() {
    let backend = FaultyBackend::new();
    let disk = backend.disk();
    disk.cut_at_op(3);
    set_len(&backend, 8).unwrap();
    write(&backend, 0, b"ab").unwrap();
    // Reads and lens do not count.
    read(&backend, 0, 2).unwrap();
    len(&backend).unwrap();
    sync(&backend).unwrap();
    assert!(!disk.is_powered_off());
    assert!(write(&backend, 2, b"cd").is_err());
    assert!(disk.is_powered_off());
    assert!(read(&backend, 0, 2).is_err());
    assert_eq!(
        disk.power_cut(CutMode::KeepRandomSubset, 1),
        b"ab\0\0\0\0\0\0"
    );

    let disk = Disk::new();
    disk.cut_at_op(0);
    assert!(set_len(&disk.backend(), 8).is_err());
    assert_eq!(disk.power_cut(CutMode::DropAll, 0), b"");
}

#[test]
fn counters_count_every_call_even_failed_ones() {
    let backend = FaultyBackend::new();
    let disk = backend.disk();
    disk.inject(Fault::once(Op::Write, 1, FaultKind::Eio));
    set_len(&backend, 4).unwrap();
    write(&backend, 0, b"a").unwrap();
    write(&backend, 1, b"b").unwrap_err();
    write(&backend, 2, b"c").unwrap();
    read(&backend, 0, 1).unwrap();
    read(&backend, 0, 1).unwrap();
    len(&backend).unwrap();
    sync(&backend).unwrap();
    let counts = disk.counts();
    assert_eq!(
        counts,
        OpCounts {
            lens: 1,
            reads: 2,
            writes: 3,
            syncs: 1,
            set_lens: 1
        }
    );
    assert_eq!(counts.mutations(), 5);
}

#[test]
fn injected_eio_fails_the_nth_call_once_or_from_then_on() {
    for op in [Op::Len, Op::Read, Op::Write, Op::SyncData, Op::SetLen] {
        for sticky in [false, true] {
            let backend = FaultyBackend::from_image(vec![0; 8]);
            let disk = backend.disk();
            let fault = if sticky {
                Fault::sticky(op, 2, FaultKind::Eio)
            } else {
                Fault::once(op, 2, FaultKind::Eio)
            };
            disk.inject(fault);
            let call = |i: u8| match op {
                Op::Len => len(&backend).map(|_| ()),
                Op::Read => read(&backend, 0, 1).map(|_| ()),
                Op::Write => write(&backend, 0, &[i]),
                Op::SyncData => sync(&backend),
                Op::SetLen => set_len(&backend, 8 + u64::from(i)),
            };
            let results: Vec<bool> = (0..5).map(|i| call(i).is_ok()).collect();
            let expected = if sticky {
                [true, true, false, false, false]
            } else {
                [true, true, false, true, true]
            };
            assert_eq!(results, expected, "{op:?}, sticky {sticky}");
            let fired = disk.fired();
            assert_eq!(fired.len(), if sticky { 3 } else { 1 });
            assert!(fired[0].starts_with("injected EIO"), "{}", fired[0]);
        }
    }
    // A failed write changes nothing; a failed sync leaves the writes pending.
    let backend = FaultyBackend::from_image(vec![0; 4]);
    let disk = backend.disk();
    disk.inject(Fault::once(Op::Write, 0, FaultKind::Eio));
    disk.inject(Fault::once(Op::SyncData, 0, FaultKind::Eio));
    let error = write(&backend, 0, b"x").unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::Other);
    assert!(error.to_string().contains("injected EIO"), "{error}");
    assert!(error.to_string().contains("write at offset 0"), "{error}");
    assert_eq!(disk.visible(), [0; 4]);
    write(&backend, 0, b"y").unwrap();
    sync(&backend).unwrap_err();
    assert_eq!(disk.durable(), [0; 4]);
    assert_eq!(disk.pending_ops(), 1);
    sync(&backend).unwrap();
    assert_eq!(disk.durable(), b"y\0\0\0");
}

#[test]
fn enospc_when_the_disk_is_full_or_as_planned() {
    let backend = FaultyBackend::from_image(vec![0; 100]);
    let disk = backend.disk();
    disk.set_capacity(Some(120));
    set_len(&backend, 120).unwrap();
    let error = set_len(&backend, 121).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    assert!(error.to_string().contains("injected ENOSPC"), "{error}");
    let error = write(&backend, 110, &[1; 11]).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    assert_eq!(disk.visible().len(), 120);
    // Overwrites and shrinks still work, and so does growing once space is freed.
    write(&backend, 110, &[1; 10]).unwrap();
    set_len(&backend, 50).unwrap();
    set_len(&backend, 120).unwrap();
    disk.clear_faults();
    set_len(&backend, 1000).unwrap();
    assert_eq!(disk.fired().len(), 2);

    // Calls are counted since the disk was made: the next write is #2.
    assert_eq!(disk.counts().writes, 2);
    disk.inject(Fault::once(Op::Write, 2, FaultKind::Enospc));
    let error = write(&backend, 0, b"a").unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::StorageFull);
    write(&backend, 0, b"a").unwrap();
}
