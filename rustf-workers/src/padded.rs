//! Cache-line padding.

/// Keeps a value on its own cache line, so two cores writing neighbouring values do not
/// contend. 128 bytes: adjacent-line prefetching pairs 64-byte lines on x86.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);
