//! IPv6 extension headers, and the walk from the fixed header to the transport header.

use crate::bytes::{read_u16, read_u32};
use crate::packet::Fragment;
use crate::{Layer, WireError};

/// Protocol number of the hop-by-hop options header.
pub const HOP_BY_HOP: u8 = 0;
/// Protocol number of the routing header.
pub const ROUTING: u8 = 43;
/// Protocol number of the fragment header.
pub const FRAGMENT: u8 = 44;
/// Protocol number of the authentication header.
pub const AUTH: u8 = 51;
/// Protocol number of the destination options header.
pub const DEST_OPTS: u8 = 60;

/// Longest extension chain we walk; real traffic carries two or three, and a bound keeps a
/// hostile chain from costing unbounded work.
pub const MAX_CHAIN_LEN: usize = 8;

mod field {
    use crate::bytes::Field;

    pub const NEXT_HEADER: usize = 0;
    pub const LEN: usize = 1;
    pub const FRAG_OFFSET_FLAGS: Field = 2..4;
    pub const FRAG_IDENT: Field = 4..8;
    pub const FRAGMENT_LEN: usize = 8;
    pub const MIN_LEN: usize = 8;
}

/// Whether `protocol` names an extension header this module walks over.
pub fn is_extension(protocol: u8) -> bool {
    matches!(protocol, HOP_BY_HOP | ROUTING | FRAGMENT | AUTH | DEST_OPTS)
}

/// A view of one extension header. Its kind is needed to know its length, because the
/// authentication header counts in 4-byte units and the fragment header has a fixed size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
    kind: u8,
}

impl<T: AsRef<[u8]>> Ipv6ExtHeader<T> {
    /// Wraps `buffer` as an extension header of protocol number `kind`, checking that it holds
    /// the whole header.
    pub fn new_checked(buffer: T, kind: u8) -> Result<Self, WireError> {
        let data = buffer.as_ref();
        if data.len() < field::MIN_LEN {
            return Err(WireError::Truncated(Layer::Ipv6Extension));
        }
        let header = Self { buffer, kind };
        if header.buffer.as_ref().len() < header.header_len() {
            return Err(WireError::Truncated(Layer::Ipv6Extension));
        }
        Ok(header)
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Protocol number of the header that follows.
    pub fn next_header(&self) -> u8 {
        self.data()[field::NEXT_HEADER]
    }

    /// Length of this header in bytes.
    pub fn header_len(&self) -> usize {
        let units = usize::from(self.data()[field::LEN]);
        match self.kind {
            FRAGMENT => field::FRAGMENT_LEN,
            AUTH => (units + 2) * 4,
            _ => (units + 1) * 8,
        }
    }

    /// The fragment fields, when this is a fragment header.
    pub fn fragment(&self) -> Option<Fragment> {
        (self.kind == FRAGMENT).then(|| {
            let word = read_u16(&self.data()[field::FRAG_OFFSET_FLAGS]);
            Fragment {
                id: read_u32(&self.data()[field::FRAG_IDENT]),
                offset: word >> 3,
                more: word & 1 != 0,
            }
        })
    }
}

/// Where the walk of an extension chain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainEnd {
    /// Protocol number of the header after the chain (for a non-first fragment, of the
    /// fragmented datagram's transport).
    pub protocol: u8,
    /// Offset of that header from the start of the IPv6 payload.
    pub offset: usize,
    /// The Fragment header's fields, when the packet is a fragment.
    pub fragment: Option<Fragment>,
}

/// Walks the extension headers in `payload`, starting with protocol `next_header`, to the
/// transport header. A non-first fragment ends the walk at its Fragment header, because
/// what follows is the middle of a datagram; an atomic fragment (offset 0, no more
/// fragments) is not reported as a fragment.
pub fn walk(next_header: u8, payload: &[u8]) -> Result<ChainEnd, WireError> {
    let mut end = ChainEnd {
        protocol: next_header,
        offset: 0,
        fragment: None,
    };
    let mut seen_fragment = false;
    for index in 0..=MAX_CHAIN_LEN {
        if !is_extension(end.protocol) {
            return Ok(end);
        }
        if index == MAX_CHAIN_LEN || (end.protocol == HOP_BY_HOP && index != 0) {
            return Err(WireError::BadExtensionHeader);
        }
        let rest = payload.get(end.offset..).unwrap_or(&[]);
        let header = Ipv6ExtHeader::new_checked(rest, end.protocol)?;
        end.protocol = header.next_header();
        end.offset += header.header_len();
        if let Some(fragment) = header.fragment() {
            if seen_fragment {
                return Err(WireError::BadExtensionHeader);
            }
            seen_fragment = true;
            if fragment.offset != 0 || fragment.more {
                end.fragment = Some(fragment);
            }
            if fragment.offset != 0 {
                return Ok(end);
            }
        }
    }
    Err(WireError::BadExtensionHeader)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hop-by-hop (8 bytes of padding options), destination options (16 bytes), then TCP.
    const HBH_DEST_TCP: [u8; 24] = [
        DEST_OPTS, 0, 1, 4, 0, 0, 0, 0, //
        6, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    /// A fragment header for UDP: offset 185 (1480 bytes), more fragments, id 0xdeadbeef.
    const MIDDLE_FRAGMENT: [u8; 8] = [17, 0, 0x05, 0xc9, 0xde, 0xad, 0xbe, 0xef];

    /// An authentication header (length 4 → 24 bytes) followed by UDP.
    const AUTH_UDP: [u8; 24] = [
        17, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn chain_of_option_headers_is_walked_to_tcp() {
        let end = walk(HOP_BY_HOP, &HBH_DEST_TCP).unwrap();
        assert_eq!(
            end,
            ChainEnd {
                protocol: 6,
                offset: 24,
                fragment: None
            }
        );
    }

    #[test]
    fn authentication_header_length_counts_four_byte_units() {
        let end = walk(AUTH, &AUTH_UDP).unwrap();
        assert_eq!(end.protocol, 17);
        assert_eq!(end.offset, 24);
    }

    #[test]
    fn non_first_fragment_stops_the_walk_at_its_fragment_header() {
        let end = walk(FRAGMENT, &MIDDLE_FRAGMENT).unwrap();
        let fragment = Fragment {
            id: 0xdead_beef,
            offset: 185,
            more: true,
        };
        assert_eq!(
            end,
            ChainEnd {
                protocol: 17,
                offset: 8,
                fragment: Some(fragment)
            }
        );
    }

    #[test]
    fn atomic_fragment_is_not_reported_as_a_fragment() {
        let atomic = [17, 0, 0, 0, 0, 0, 0, 7];
        let end = walk(FRAGMENT, &atomic).unwrap();
        assert_eq!(
            end,
            ChainEnd {
                protocol: 17,
                offset: 8,
                fragment: None
            }
        );
    }

    #[test]
    fn hop_by_hop_after_the_first_header_is_rejected() {
        let bad = [HOP_BY_HOP, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(walk(DEST_OPTS, &bad), Err(WireError::BadExtensionHeader));
    }

    #[test]
    fn chain_longer_than_the_bound_is_rejected() {
        let mut chain = [0u8; 8 * (MAX_CHAIN_LEN + 1)];
        for header in chain.chunks_mut(8) {
            header[0] = DEST_OPTS;
        }
        assert_eq!(walk(DEST_OPTS, &chain), Err(WireError::BadExtensionHeader));
    }

    #[test]
    fn header_running_past_the_payload_is_truncated() {
        assert_eq!(
            walk(HOP_BY_HOP, &HBH_DEST_TCP[..20]),
            Err(WireError::Truncated(Layer::Ipv6Extension))
        );
        assert_eq!(
            walk(HOP_BY_HOP, &HBH_DEST_TCP[..5]),
            Err(WireError::Truncated(Layer::Ipv6Extension))
        );
    }
}
