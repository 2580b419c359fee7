//! The deterministic byte sequence both ends of a stream send, and its verifier.
//!
//! Byte `i` of a sequence depends only on `(seed, i)`, so a receiver can check any stretch
//! without having seen the rest, and report the exact offset of the first wrong byte.

/// Turns the client's seed into the one for its own direction, so the two directions differ.
pub(crate) const CLIENT_SALT: u64 = 0x636c_6965_6e74_5f5f;

/// One 64-bit word of the sequence: SplitMix64 of the seed and the word's index.
fn word(seed: u64, index: u64) -> u64 {
    let mut z =
        (seed ^ index.wrapping_mul(0xd6e8_feb8_6659_fd93)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Writes the sequence for `seed` from stream offset `offset` into `buf`.
pub(crate) fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut done = 0;
    while done < buf.len() {
        let bytes = word(seed, pos / 8).to_le_bytes();
        let start = (pos % 8) as usize;
        let n = (8 - start).min(buf.len() - done);
        buf[done..done + n].copy_from_slice(&bytes[start..start + n]);
        done += n;
        pos += n as u64;
    }
}

/// Checks received bytes against the sequence, in order.
#[derive(Debug)]
pub(crate) struct Verifier {
    seed: u64,
    offset: u64,
    expected: Vec<u8>,
}

impl Verifier {
    /// A verifier expecting the sequence for `seed` from offset 0.
    pub(crate) fn new(seed: u64) -> Verifier {
        Verifier {
            seed,
            offset: 0,
            expected: Vec::new(),
        }
    }

    /// How many bytes have been verified.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Checks the next bytes; on a mismatch returns the stream offset of the first wrong byte
    /// and counts the good bytes before it as verified.
    pub(crate) fn check(&mut self, data: &[u8]) -> Result<(), u64> {
        self.expected.resize(data.len(), 0);
        fill(self.seed, self.offset, &mut self.expected);
        match data
            .iter()
            .zip(&self.expected)
            .position(|(got, want)| got != want)
        {
            None => {
                self.offset += data.len() as u64;
                Ok(())
            }
            Some(i) => {
                self.offset += i as u64;
                Err(self.offset)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequence(seed: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        fill(seed, 0, &mut buf);
        buf
    }

    #[test]
    fn any_stretch_matches_the_whole_sequence() {
        let whole = sequence(7, 100);
        for start in 0..20 {
            for len in [0, 1, 7, 8, 9, 33] {
                let mut part = vec![0; len];
                fill(7, start as u64, &mut part);
                assert_eq!(part, whole[start..start + len]);
            }
        }
    }

    #[test]
    fn seeds_and_directions_give_different_sequences() {
        assert_ne!(sequence(1, 64), sequence(2, 64));
        assert_ne!(sequence(1, 64), sequence(1 ^ CLIENT_SALT, 64));
    }

    #[test]
    fn the_sequence_verifies_in_any_chunking() {
        let data = sequence(42, 10_000);
        let mut verifier = Verifier::new(42);
        for chunk in data.chunks(37) {
            assert_eq!(verifier.check(chunk), Ok(()));
        }
        assert_eq!(verifier.offset(), 10_000);
    }

    #[test]
    fn corruption_is_reported_at_its_offset() {
        let mut data = sequence(42, 10_000);
        data[6_543] ^= 0x20;
        let mut verifier = Verifier::new(42);
        let first = verifier.check(&data[..4_096]);
        assert_eq!(first, Ok(()));
        assert_eq!(verifier.check(&data[4_096..]), Err(6_543));
        assert_eq!(verifier.offset(), 6_543);
    }

    #[test]
    fn bytes_of_another_stream_are_caught_at_once() {
        let other = sequence(43, 100);
        assert_eq!(Verifier::new(42).check(&other), Err(0));
    }
}
