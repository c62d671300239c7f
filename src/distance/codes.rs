//! Kernels over quantized codes: exact integer results, scalar loops (SIMD versions next).

/// Σ a·b.
pub(crate) fn dot_u8_i8(a: &[u8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum()
}

/// popcounts of code ∧ each of four planes.
pub(crate) fn plane_popcounts(code: &[u64], planes: &[u64]) -> [u32; 4] {
    let w = code.len();
    let mut out = [0; 4];
    for (j, o) in out.iter_mut().enumerate() {
        *o = code
            .iter()
            .zip(&planes[j * w..(j + 1) * w])
            .map(|(a, b)| (a & b).count_ones())
            .sum();
    }
    out
}
