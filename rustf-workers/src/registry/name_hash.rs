//! The hash of worker names that every call's lookup pays for.

use std::hash::Hasher;

/// An FxHash-style hash of a worker's name, a word at a time: names are short and chosen
/// by the application, so a keyed hash buys nothing, and a call pays for the hash on every
/// lookup.
#[derive(Default)]
pub(super) struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Whole words, then the tail read as one (overlapping) word or two half words: no
        // loop over single bytes. The length goes in, so overlapping reads of different
        // names do not meet.
        let len = bytes.len();
        let tail = if len >= 8 {
            let mut chunks = bytes[..len - 1].chunks_exact(8);
            for chunk in &mut chunks {
                self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
            }
            u64::from_le_bytes(bytes[len - 8..].try_into().expect("8 bytes"))
        } else if len >= 4 {
            let low = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
            let high = u32::from_le_bytes(bytes[len - 4..].try_into().expect("4 bytes"));
            u64::from(low) | u64::from(high) << 32
        } else {
            bytes
                .iter()
                .fold(0, |word, &byte| word << 8 | u64::from(byte))
        };
        self.add(tail ^ (len as u64).rotate_right(8));
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }
}

impl NameHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::NameHasher;

    fn hash(name: &str) -> u64 {
        BuildHasherDefault::<NameHasher>::default().hash_one(name)
    }

    #[test]
    fn every_byte_of_a_name_moves_its_hash() {
        for len in 1..=24 {
            let base = "a".repeat(len);
            for at in 0..len {
                let mut other = base.clone().into_bytes();
                other[at] = b'b';
                let other = String::from_utf8(other).unwrap();
                assert_ne!(hash(&base), hash(&other), "{base} vs {other}");
            }
            // Names that overlapping reads could confuse: a prefix and a longer name.
            assert_ne!(hash(&base), hash(&format!("{base}a")), "length {len}");
        }
    }
}
