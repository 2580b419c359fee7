//! AF_PACKET sockets: a TPACKET_V3 receive ring per interface, and a transmit socket.
//!
//! A TPACKET_V3 ring is a shared mapping cut into blocks. The kernel fills a block with
//! frames, then hands it to user space by setting `TP_STATUS_USER` in the block header (when
//! the block is full or its retire timeout expires). We walk the frames in place, may rewrite
//! them, and give the block back by writing `TP_STATUS_KERNEL`. Blocks are consumed in ring
//! order, so one index says which block comes next.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::{SysError, check, setsockopt, socket};

/// Offsets inside `struct tpacket_block_desc` (version 1 header).
mod block {
    pub const STATUS: usize = 8;
    pub const NUM_PKTS: usize = 12;
    pub const FIRST_PKT: usize = 16;
}

/// Offsets inside `struct tpacket3_hdr`.
mod frame {
    pub const NEXT_OFFSET: usize = 0;
    pub const SNAPLEN: usize = 12;
    pub const LEN: usize = 16;
    pub const STATUS: usize = 20;
    pub const MAC: usize = 24;
    pub const HEADER_LEN: usize = 32;
}

/// `ETH_P_ALL` in network byte order, as `sll_protocol` wants it.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// Size and latency of a receive ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per block (a multiple of the page size; larger than the largest frame).
    pub block_size: u32,
    /// Blocks in the ring.
    pub block_count: u32,
    /// Milliseconds after which the kernel hands over a block that is not full.
    pub retire_timeout_ms: u32,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            block_size: 1 << 18,
            block_count: 16,
            retire_timeout_ms: 2,
        }
    }
}

/// The shared mapping of a receive ring.
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    block_size: usize,
    block_count: usize,
}

// SAFETY: the mapping is owned by exactly one `PacketSocket`; nothing in it is tied to the
// thread that created it, and all access goes through `&mut PacketSocket`.
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` and the length are those mmap(2) returned, and no `Block` borrows the
        // mapping any more (they borrow the socket mutably, which is being dropped).
        unsafe {
            libc::munmap(
                self.base.as_ptr().cast(),
                self.block_size * self.block_count,
            );
        }
    }
}

/// An AF_PACKET socket bound to one interface, receiving every frame into a TPACKET_V3 ring.
/// Frames this host sends out of the interface are ignored (`PACKET_IGNORE_OUTGOING`).
#[derive(Debug)]
pub struct PacketSocket {
    // Field order matters: the mapping is unmapped before the socket is closed.
    ring: Mapping,
    next_block: usize,
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens a ring on interface `ifindex` (`name` is for error messages); with `fanout`, the
    /// socket joins that `PACKET_FANOUT` hash group so several workers share the interface.
    pub fn open(
        ifindex: u32,
        name: &str,
        config: RingConfig,
        fanout: Option<u16>,
    ) -> Result<Self, SysError> {
        // Protocol 0 until bound, so no frame of another interface reaches the ring.
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, 0, name)?;
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        let sol = libc::SOL_PACKET;
        setsockopt(
            fd.as_fd(),
            sol,
            libc::PACKET_VERSION,
            &version,
            "setsockopt(PACKET_VERSION=TPACKET_V3)",
            name,
        )?;
        let on: libc::c_int = 1;
        setsockopt(
            fd.as_fd(),
            sol,
            libc::PACKET_IGNORE_OUTGOING,
            &on,
            "setsockopt(PACKET_IGNORE_OUTGOING)",
            name,
        )?;
        let req = libc::tpacket_req3 {
            tp_block_size: config.block_size,
            tp_block_nr: config.block_count,
            tp_frame_size: 2048,
            tp_frame_nr: config.block_size / 2048 * config.block_count,
            tp_retire_blk_tov: config.retire_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(
            fd.as_fd(),
            sol,
            libc::PACKET_RX_RING,
            &req,
            "setsockopt(PACKET_RX_RING)",
            name,
        )?;
        let len = config.block_size as usize * config.block_count as usize;
        // SAFETY: a fresh shared mapping of the ring the kernel just allocated for `fd`; no
        // existing memory is affected, and the result is checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(SysError::last("mmap(PACKET_RX_RING)", name));
        }
        let ring = Mapping {
            base: NonNull::new(base.cast()).ok_or_else(|| SysError::last("mmap", name))?,
            block_size: config.block_size as usize,
            block_count: config.block_count as usize,
        };
        let addr = sockaddr_ll(ifindex, ETH_P_ALL_BE, None);
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed is its size.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                core::ptr::from_ref(&addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        check(ret, "bind(AF_PACKET)", name)?;
        if let Some(group) = fanout {
            let arg = libc::c_int::from(group) | (libc::PACKET_FANOUT_HASH.cast_signed() << 16);
            setsockopt(
                fd.as_fd(),
                sol,
                libc::PACKET_FANOUT,
                &arg,
                "setsockopt(PACKET_FANOUT)",
                name,
            )?;
        }
        Ok(Self {
            ring,
            next_block: 0,
            fd,
        })
    }

    /// The next block the kernel has handed over, if any. Dropping it returns it to the kernel.
    pub fn next_block(&mut self) -> Option<Block<'_>> {
        let start = self.next_block * self.ring.block_size;
        // SAFETY: `start` is the offset of a block inside the mapping (next_block < count).
        let base = unsafe { self.ring.base.add(start) };
        // SAFETY: `base` is the start of a block of the live mapping.
        let status = unsafe { block_status(base) };
        if status.load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return None;
        }
        // SAFETY: `base` starts a block of `block_size` bytes inside the live mapping.
        let read = |at| unsafe { read_u32(base, self.ring.block_size, at) };
        let remaining = read(block::NUM_PKTS);
        let offset = read(block::FIRST_PKT) as usize;
        self.next_block = (self.next_block + 1) % self.ring.block_count;
        Some(Block {
            base,
            size: self.ring.block_size,
            remaining,
            offset,
            _ring: core::marker::PhantomData,
        })
    }

    /// Frames the kernel dropped because the ring was full, since the last call.
    pub fn take_drops(&self) -> u64 {
        let mut stats = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: the pointers describe our own `stats` and `len`, sized as the kernel expects.
        let ret = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                core::ptr::from_mut(&mut stats).cast(),
                &raw mut len,
            )
        };
        if ret < 0 {
            0
        } else {
            u64::from(stats.tp_drops)
        }
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The status word of the block at `base`, which the kernel and we hand back and forth.
#[expect(
    clippy::cast_ptr_alignment,
    reason = "blocks are page aligned and the status word sits at offset 8"
)]
///
/// # Safety
///
/// `base` must be the start of a block of a ring mapping that outlives `'a`.
unsafe fn block_status<'a>(base: NonNull<u8>) -> &'a AtomicU32 {
    // SAFETY: every block starts with a 4-byte-aligned `tpacket_block_desc` (blocks are page
    // aligned); its status word lives as long as the mapping, which outlives the caller's use.
    unsafe { &*base.add(block::STATUS).as_ptr().cast::<AtomicU32>() }
}

/// Reads a native-endian u32 at `at` inside a block of `size` bytes; 0 when out of bounds.
///
/// # Safety
///
/// `base` must be the start of a block of `size` bytes inside a live ring mapping.
unsafe fn read_u32(base: NonNull<u8>, size: usize, at: usize) -> u32 {
    if at + 4 > size {
        return 0;
    }
    // SAFETY: `at..at + 4` lies inside the block, which lies inside the mapping.
    unsafe { base.add(at).as_ptr().cast::<u32>().read_unaligned() }
}

/// A block of received frames, lent by [`PacketSocket::next_block`].
#[derive(Debug)]
pub struct Block<'a> {
    base: NonNull<u8>,
    size: usize,
    remaining: u32,
    offset: usize,
    _ring: core::marker::PhantomData<&'a mut PacketSocket>,
}

/// One received frame, writable in place.
#[derive(Debug)]
pub struct RxFrame<'a> {
    /// The frame from its Ethernet header on (as much as was captured).
    pub data: &'a mut [u8],
    /// Its length on the wire (more than `data.len()` only if truncated).
    pub wire_len: u32,
    /// The kernel's `tp_status` bits (`TP_STATUS_CSUMNOTREADY` and so on).
    pub status: u32,
}

impl RxFrame<'_> {
    /// Whether the transport checksum is still to be computed (the packet came from a local
    /// sender or a veth peer with checksum offload, `TP_STATUS_CSUMNOTREADY`).
    pub fn checksum_pending(&self) -> bool {
        self.status & libc::TP_STATUS_CSUMNOTREADY != 0
    }
}

impl Block<'_> {
    /// The next frame of the block. Malformed offsets end the block rather than read outside it.
    pub fn next_frame(&mut self) -> Option<RxFrame<'_>> {
        if self.remaining == 0 || self.offset + frame::HEADER_LEN > self.size {
            return None;
        }
        self.remaining -= 1;
        let hdr = self.offset;
        // SAFETY: a `Block` always describes a block of the live mapping it borrows.
        let read = |at| unsafe { read_u32(self.base, self.size, hdr + at) };
        let snaplen = read(frame::SNAPLEN) as usize;
        let wire_len = read(frame::LEN);
        let status = read(frame::STATUS);
        let mac = (read(frame::MAC) & 0xFFFF) as usize;
        let next = read(frame::NEXT_OFFSET) as usize;
        self.offset = if next == 0 { self.size } else { hdr + next };
        let start = hdr + mac;
        if mac < frame::HEADER_LEN || start + snaplen > self.size {
            self.remaining = 0;
            return None;
        }
        // SAFETY: `start..start + snaplen` lies inside this block, which user space owns until
        // the block is dropped (TP_STATUS_USER); the slice borrows `self` mutably, so no two
        // frames alias and none outlives the block.
        let data =
            unsafe { core::slice::from_raw_parts_mut(self.base.add(start).as_ptr(), snaplen) };
        Some(RxFrame {
            data,
            wire_len,
            status,
        })
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        // SAFETY: a `Block` always starts a block of the live mapping it borrows.
        let status = unsafe { block_status(self.base) };
        status.store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }
}

/// Builds a `sockaddr_ll` for `ifindex`, with a destination MAC when sending.
pub(super) fn sockaddr_ll(
    ifindex: u32,
    protocol_be: u16,
    dst: Option<[u8; 6]>,
) -> libc::sockaddr_ll {
    let mut addr = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol_be,
        sll_ifindex: ifindex.cast_signed(),
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    if let Some(mac) = dst {
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&mac);
    }
    addr
}

/// An AF_PACKET socket that receives nothing and sends complete Ethernet frames out of any
/// interface.
#[derive(Debug)]
pub struct TxSocket {
    pub(super) fd: OwnedFd,
}

impl TxSocket {
    /// Opens the socket.
    pub fn open() -> Result<Self, SysError> {
        Ok(Self {
            fd: socket(libc::AF_PACKET, libc::SOCK_RAW, 0, "the transmit socket")?,
        })
    }

    /// Sends `frame` (Ethernet header included) out of interface `ifindex` without blocking.
    pub fn send(&self, ifindex: u32, frame: &[u8]) -> std::io::Result<()> {
        let (Some(dst), Some(ethertype)) = (frame.get(..6), frame.get(12..14)) else {
            return Err(std::io::ErrorKind::InvalidInput.into());
        };
        let mut mac = [0; 6];
        mac.copy_from_slice(dst);
        let protocol = u16::from_ne_bytes([ethertype[0], ethertype[1]]);
        let addr = sockaddr_ll(ifindex, protocol, Some(mac));
        // SAFETY: `frame` and `addr` are live for the call, with their exact lengths passed;
        // the kernel copies the frame before returning.
        let ret = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT,
                core::ptr::from_ref(&addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if ret < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}
