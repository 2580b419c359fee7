//! Big-endian field access shared by the views.
//!
//! Callers pass ranges that a view's length check has already proved in bounds.

/// A byte range of a header field.
pub(crate) type Field = core::ops::Range<usize>;

/// Reads a big-endian `u16` from the first two bytes of `data`.
pub(crate) fn read_u16(data: &[u8]) -> u16 {
    u16::from_be_bytes([data[0], data[1]])
}

/// Reads a big-endian `u32` from the first four bytes of `data`.
pub(crate) fn read_u32(data: &[u8]) -> u32 {
    u32::from_be_bytes([data[0], data[1], data[2], data[3]])
}

/// Writes `value` big-endian into the first two bytes of `data`.
pub(crate) fn write_u16(data: &mut [u8], value: u16) {
    data[..2].copy_from_slice(&value.to_be_bytes());
}

/// Writes `value` big-endian into the first four bytes of `data`.
pub(crate) fn write_u32(data: &mut [u8], value: u32) {
    data[..4].copy_from_slice(&value.to_be_bytes());
}

/// Copies a fixed-size field out of `data`.
pub(crate) fn read_array<const N: usize>(data: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&data[..N]);
    out
}
