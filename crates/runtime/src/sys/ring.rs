//! AF_PACKET sockets: a TPACKET_V2 receive ring per interface, and a transmit socket.
//!
//! A TPACKET_V2 ring is a shared mapping cut into fixed-size frame slots, each starting with a
//! `tpacket2_hdr` whose `tp_status` word the kernel and we hand back and forth. The kernel
//! copies a frame into the next free slot and sets `TP_STATUS_USER`; poll(2) reports the
//! socket readable as soon as one slot is ready (no block has to fill or time out first, as
//! with TPACKET_V3). We read and may rewrite the frame in place, then give the slot back by
//! writing `TP_STATUS_KERNEL`. Slots are consumed in ring order, so one index says which slot
//! comes next; a worker walks every ready slot per wakeup, so batches form under load.
//!
//! A frame longer than its slot is truncated by the kernel (`tp_snaplen < tp_len`); it is
//! lent out as such, and the caller counts it ([`RxFrame::is_truncated`]).

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::{SysError, check, setsockopt, socket};

/// Offsets inside `struct tpacket2_hdr`.
mod slot {
    pub const STATUS: usize = 0;
    pub const LEN: usize = 4;
    pub const SNAPLEN: usize = 8;
    pub const MAC: usize = 12;
    pub const HEADER_LEN: usize = 32;
    /// `sll_hatype` of the `sockaddr_ll` behind the header; `sll_pkttype` is the byte at
    /// `HATYPE + 2`.
    pub const HATYPE: usize = 40;
}

/// `ETH_P_ALL` in network byte order, as `sll_protocol` wants it.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// Bytes of the kernel's allocation unit ("block") the slots are packed into, unless a slot is
/// larger (then one slot per block). Slots never straddle blocks.
const BLOCK_BYTES: u32 = 1 << 16;

/// Size of a receive ring.
///
/// The kernel puts each frame into one slot of `frame_size` bytes, behind a 66-byte header
/// (`tpacket2_hdr`, `sockaddr_ll`, alignment): with 2048-byte slots a frame of up to 1982
/// bytes (a 1500-byte MTU with Ethernet and VLAN headers) arrives whole. Longer frames (jumbo
/// MTUs, or packets a NIC's GRO/LRO merged, which is why those must be off on data interfaces)
/// are truncated and counted as `rx_truncated` drops; raise `frame_size` for jumbo MTUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per frame slot, header included: a multiple of 16, at least 128.
    pub frame_size: u32,
    /// Frame slots in the ring (rounded up to fill whole kernel blocks). The ring holds this
    /// many frames the worker has not read yet; more are dropped and counted as `ring_full`.
    pub frame_count: u32,
}

impl Default for RingConfig {
    /// 2048 slots of 2048 bytes: 4 MiB per ring.
    fn default() -> Self {
        Self {
            frame_size: 2048,
            frame_count: 2048,
        }
    }
}

/// How a [`RingConfig`] is laid out in kernel blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    block_size: u32,
    block_count: u32,
    frame_size: u32,
    frames_per_block: u32,
}

impl Layout {
    /// The layout of `config` on a machine with `page`-byte pages, or why there is none.
    fn new(config: RingConfig, page: u32) -> Result<Self, &'static str> {
        let frame_size = config.frame_size;
        if frame_size < 128 || !frame_size.is_multiple_of(16) {
            return Err("ring frame_size must be a multiple of 16 and at least 128");
        }
        if config.frame_count == 0 {
            return Err("ring frame_count must be at least 1");
        }
        let block_size = frame_size
            .max(BLOCK_BYTES)
            .checked_next_multiple_of(page.max(1))
            .ok_or("ring frame_size is too large")?;
        let frames_per_block = block_size / frame_size;
        let block_count = config.frame_count.div_ceil(frames_per_block);
        block_count
            .checked_mul(frames_per_block)
            .and_then(|_| block_count.checked_mul(block_size))
            .ok_or("ring frame_size * frame_count must stay below 4 GiB")?;
        Ok(Self {
            block_size,
            block_count,
            frame_size,
            frames_per_block,
        })
    }

    /// Slots in the ring.
    fn frame_count(self) -> usize {
        self.block_count as usize * self.frames_per_block as usize
    }

    /// Bytes of the mapping.
    fn len(self) -> usize {
        self.block_count as usize * self.block_size as usize
    }

    /// Offset of slot `i` (below [`Layout::frame_count`]) in the mapping.
    fn offset(self, i: usize) -> usize {
        let per_block = self.frames_per_block as usize;
        i / per_block * self.block_size as usize + i % per_block * self.frame_size as usize
    }
}

/// The shared mapping of a receive ring.
#[derive(Debug)]
struct Mapping {
    base: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the mapping is owned by exactly one `PacketSocket`; nothing in it is tied to the
// thread that created it, and all access goes through `&mut PacketSocket`.
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` and the length are those mmap(2) returned, and no `RxFrame` borrows
        // the mapping any more (they borrow the socket mutably, which is being dropped).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.layout.len());
        }
    }
}

/// An AF_PACKET socket bound to one interface, receiving every frame into a TPACKET_V2 ring.
/// Frames this host sends out of the interface are ignored (`PACKET_IGNORE_OUTGOING`).
#[derive(Debug)]
pub struct PacketSocket {
    // Field order matters: the mapping is unmapped before the socket is closed.
    ring: Mapping,
    next_slot: usize,
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
        // SAFETY: sysconf(3) takes no pointers.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let layout =
            Layout::new(config, u32::try_from(page).unwrap_or(4096)).map_err(|why| SysError {
                call: "setsockopt(PACKET_RX_RING)",
                subject: name.to_owned(),
                source: io::Error::new(io::ErrorKind::InvalidInput, why),
            })?;
        // Protocol 0 until bound, so no frame of another interface reaches the ring.
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW, 0, name)?;
        let version = libc::tpacket_versions::TPACKET_V2 as libc::c_int;
        let sol = libc::SOL_PACKET;
        setsockopt(
            fd.as_fd(),
            sol,
            libc::PACKET_VERSION,
            &version,
            "setsockopt(PACKET_VERSION=TPACKET_V2)",
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
        let req = libc::tpacket_req {
            tp_block_size: layout.block_size,
            tp_block_nr: layout.block_count,
            tp_frame_size: layout.frame_size,
            tp_frame_nr: layout.block_count * layout.frames_per_block,
        };
        setsockopt(
            fd.as_fd(),
            sol,
            libc::PACKET_RX_RING,
            &req,
            "setsockopt(PACKET_RX_RING)",
            name,
        )?;
        // SAFETY: a fresh shared mapping of the ring the kernel just allocated for `fd`; no
        // existing memory is affected, and the result is checked against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                layout.len(),
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
            layout,
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
            // The kernel takes "ignore outgoing" for a fanout group from the group's flag, not
            // from each member's PACKET_IGNORE_OUTGOING: without it a worker receives the
            // frames the node sends (in DSR mode, forwarded frames still addressed to the VIP,
            // which it would forward again, in a loop).
            let mode = libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
            let arg = libc::c_int::from(group) | (mode.cast_signed() << 16);
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
            next_slot: 0,
            fd,
        })
    }

    /// Frame slots in the ring: the most frames one walk of the ready frames can yield.
    pub fn capacity(&self) -> usize {
        self.ring.layout.frame_count()
    }

    /// The next frame the kernel has handed over, in ring order, if any. Dropping it returns
    /// its slot to the kernel.
    pub fn next_frame(&mut self) -> Option<RxFrame<'_>> {
        let layout = self.ring.layout;
        let start = layout.offset(self.next_slot);
        // SAFETY: `start` is the offset of a slot inside the mapping (next_slot < count).
        let base = unsafe { self.ring.base.add(start) };
        // SAFETY: `base` is the start of a slot of the live mapping, which outlives `'_`.
        let status_word = unsafe { slot_status(base) };
        let status = status_word.load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return None;
        }
        let size = layout.frame_size as usize;
        // SAFETY: `base` starts a slot of `size` bytes inside the live mapping.
        let read = |at| unsafe { read_u32(base, size, at) };
        let wire_len = read(slot::LEN);
        let snaplen = read(slot::SNAPLEN) as usize;
        // tp_mac is the first u16 of the word, sll_pkttype the third byte of its word, in
        // memory order whatever the machine's byte order.
        let [m0, m1, ..] = read(slot::MAC).to_ne_bytes();
        let mac = usize::from(u16::from_ne_bytes([m0, m1]));
        let outgoing = read(slot::HATYPE).to_ne_bytes()[2] == libc::PACKET_OUTGOING;
        let end = mac.saturating_add(snaplen);
        let len = if mac < slot::HEADER_LEN || end > size {
            // A header we do not understand: lend the frame out empty, so the caller counts
            // it and the slot still goes back to the kernel.
            0
        } else {
            snaplen
        };
        let at = if len == 0 { slot::HEADER_LEN } else { mac };
        // SAFETY: `at..at + len` lies inside this slot, after its header (so the slice never
        // overlaps the status word), and user space owns the slot until the `RxFrame` is
        // dropped (TP_STATUS_USER); the slice borrows `self` mutably, so no two frames alias
        // and none outlives the socket or its mapping.
        let data = unsafe { core::slice::from_raw_parts_mut(base.add(at).as_ptr(), len) };
        Some(RxFrame {
            data,
            outgoing,
            wire_len,
            status,
            status_word,
            next_slot: &mut self.next_slot,
            slots: layout.frame_count(),
        })
    }

    /// Frames the kernel dropped because the ring was full, since the last call.
    pub fn take_drops(&self) -> u64 {
        let mut stats = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: the pointers describe our own `stats` and `len`, sized as the kernel expects
        // for a TPACKET_V2 socket.
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

/// The status word of the slot at `base`, which the kernel and we hand back and forth.
#[expect(
    clippy::cast_ptr_alignment,
    reason = "slots are 16-byte aligned and the status word sits at offset 0"
)]
///
/// # Safety
///
/// `base` must be the start of a slot of a ring mapping that outlives `'a`.
unsafe fn slot_status<'a>(base: NonNull<u8>) -> &'a AtomicU32 {
    // SAFETY: every slot starts with a `tpacket2_hdr` at a 16-byte aligned offset (blocks are
    // page aligned, slot sizes multiples of 16); its status word lives as long as the mapping,
    // which outlives the caller's use.
    unsafe { &*base.add(slot::STATUS).as_ptr().cast::<AtomicU32>() }
}

/// Reads a native-endian u32 at `at` inside a slot of `size` bytes; 0 when out of bounds.
///
/// # Safety
///
/// `base` must be the start of a slot of `size` bytes inside a live ring mapping.
unsafe fn read_u32(base: NonNull<u8>, size: usize, at: usize) -> u32 {
    if at + 4 > size {
        return 0;
    }
    // SAFETY: `at..at + 4` lies inside the slot, which lies inside the mapping.
    unsafe { base.add(at).as_ptr().cast::<u32>().read_unaligned() }
}

/// One received frame, writable in place, lent by [`PacketSocket::next_frame`]. Dropping it
/// gives its slot back to the kernel.
#[derive(Debug)]
pub struct RxFrame<'a> {
    /// The frame from its Ethernet header on (as much as fitted into the slot). Private, and
    /// lent only for as long as the frame is borrowed: the slot goes back to the kernel when
    /// the frame is dropped, so no slice of it may outlive the frame.
    data: &'a mut [u8],
    /// Whether this host sent the frame (`PACKET_OUTGOING`).
    outgoing: bool,
    /// Its length on the wire (more than `data.len()` only if truncated).
    pub wire_len: u32,
    /// The kernel's `tp_status` bits (`TP_STATUS_CSUMNOTREADY` and so on).
    pub status: u32,
    status_word: &'a AtomicU32,
    next_slot: &'a mut usize,
    slots: usize,
}

impl RxFrame<'_> {
    /// The frame from its Ethernet header on (as much as fitted into the slot).
    pub fn data(&self) -> &[u8] {
        self.data
    }

    /// The frame, writable in place.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.data
    }

    /// Whether this host sent the frame (`sll_pkttype` is `PACKET_OUTGOING`). Sockets ignore
    /// outgoing frames (`PACKET_IGNORE_OUTGOING`, and for a fanout group its flag), but a
    /// kernel older than 6.2 ignores the fanout flag without an error.
    pub fn is_outgoing(&self) -> bool {
        self.outgoing
    }

    /// Whether the transport checksum is still to be computed (the packet came from a local
    /// sender or a veth peer with checksum offload, `TP_STATUS_CSUMNOTREADY`).
    pub fn checksum_pending(&self) -> bool {
        self.status & libc::TP_STATUS_CSUMNOTREADY != 0
    }

    /// Whether the frame was longer than its slot, so `data` holds only its beginning.
    pub fn is_truncated(&self) -> bool {
        self.data.len() < self.wire_len as usize
    }
}

impl Drop for RxFrame<'_> {
    fn drop(&mut self) {
        // Release: our reads and in-place writes of the frame happen before the kernel may
        // reuse the slot.
        self.status_word
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        *self.next_slot = (*self.next_slot + 1) % self.slots;
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
    pub fn send(&self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        let (Some(dst), Some(ethertype)) = (frame.get(..6), frame.get(12..14)) else {
            return Err(io::ErrorKind::InvalidInput.into());
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
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Layout, RingConfig};

    #[test]
    fn the_default_ring_is_four_mib_of_2048_byte_slots() {
        let layout = Layout::new(RingConfig::default(), 4096).unwrap();
        assert_eq!(
            layout,
            Layout {
                block_size: 1 << 16,
                block_count: 64,
                frame_size: 2048,
                frames_per_block: 32,
            }
        );
        assert_eq!((layout.frame_count(), layout.len()), (2048, 4 << 20));
        assert_eq!(layout.offset(33), (1 << 16) + 2048);
    }

    #[test]
    fn slots_that_do_not_divide_a_block_leave_its_tail_unused() {
        let config = RingConfig {
            frame_size: 9216,
            frame_count: 10,
        };
        let layout = Layout::new(config, 4096).unwrap();
        assert_eq!((layout.block_size, layout.frames_per_block), (1 << 16, 7));
        // Rounded up to whole blocks.
        assert_eq!((layout.block_count, layout.frame_count()), (2, 14));
        assert_eq!(layout.offset(6), 6 * 9216);
        assert_eq!(layout.offset(7), 1 << 16);
        // A slot larger than the default block gets a block of its own, page aligned.
        let big = RingConfig {
            frame_size: 70_000,
            frame_count: 3,
        };
        let layout = Layout::new(big, 4096).unwrap();
        assert_eq!((layout.block_size, layout.frames_per_block), (73_728, 1));
        assert_eq!(layout.offset(2), 2 * 73_728);
    }

    #[test]
    fn impossible_rings_are_refused_before_the_kernel_sees_them() {
        for (frame_size, frame_count) in [(0, 10), (100, 10), (2050, 10), (2048, 0)] {
            let config = RingConfig {
                frame_size,
                frame_count,
            };
            assert!(Layout::new(config, 4096).is_err(), "{config:?}");
        }
        let huge = RingConfig {
            frame_size: 1 << 20,
            frame_count: 1 << 13,
        };
        assert!(Layout::new(huge, 4096).is_err());
    }
}
