//! Batched transmit: frames are copied into one reusable buffer and leave with one
//! sendmmsg(2) per batch instead of one sendto(2) each.

use std::io;
use std::os::fd::AsRawFd;

use super::ring::{TxSocket, sockaddr_ll};

/// One queued frame: where it lies in the buffer and where it goes.
#[derive(Debug)]
struct Queued {
    offset: usize,
    len: usize,
    addr: libc::sockaddr_ll,
}

/// Frames waiting to be sent together. The buffers grow to their largest batch and are reused,
/// so queueing a frame allocates nothing once the worker has warmed up.
#[derive(Debug, Default)]
pub struct TxBatch {
    data: Vec<u8>,
    frames: Vec<Queued>,
}

impl TxBatch {
    /// Frames one sendmmsg(2) carries at most; [`TxBatch::is_full`] says when to send.
    pub const MAX: usize = 64;

    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Copies `frame` (Ethernet header included) into the batch, to leave through `ifindex`.
    /// The caller sends the batch when it is full; a frame without an Ethernet header is refused.
    pub fn push(&mut self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        let (Some(dst), Some(&[hi, lo])) = (frame.get(..6), frame.get(12..14)) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        if self.is_full() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut mac = [0; 6];
        mac.copy_from_slice(dst);
        let addr = sockaddr_ll(ifindex, u16::from_ne_bytes([hi, lo]), Some(mac));
        self.frames.push(Queued {
            offset: self.data.len(),
            len: frame.len(),
            addr,
        });
        self.data.extend_from_slice(frame);
        Ok(())
    }

    /// Frames queued.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame is queued.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Whether the next frame would not fit.
    pub fn is_full(&self) -> bool {
        self.frames.len() >= Self::MAX
    }

    fn clear(&mut self) {
        self.data.clear();
        self.frames.clear();
    }
}

impl TxSocket {
    /// Sends every frame of `batch` without blocking and empties it; `sent` learns each frame's
    /// fate in order: its length, or why it was not sent.
    pub fn send_batch(&self, batch: &mut TxBatch, mut sent: impl FnMut(io::Result<usize>)) {
        let empty = libc::iovec {
            iov_base: core::ptr::null_mut(),
            iov_len: 0,
        };
        let mut iovecs = [empty; TxBatch::MAX];
        for (iov, frame) in iovecs.iter_mut().zip(&batch.frames) {
            let bytes = batch
                .data
                .get(frame.offset..frame.offset + frame.len)
                .unwrap_or_default();
            // The kernel only reads through this pointer (sendmmsg does not write the data).
            iov.iov_base = bytes.as_ptr().cast_mut().cast();
            iov.iov_len = bytes.len();
        }
        // SAFETY: mmsghdr is a plain C struct for which all zero bytes (null pointers, zero
        // lengths) is a valid value.
        let mut headers: [libc::mmsghdr; TxBatch::MAX] = unsafe { core::mem::zeroed() };
        for ((header, iov), frame) in headers.iter_mut().zip(&mut iovecs).zip(&batch.frames) {
            header.msg_hdr.msg_name = core::ptr::from_ref(&frame.addr).cast_mut().cast();
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            header.msg_hdr.msg_iov = core::ptr::from_mut(iov);
            header.msg_hdr.msg_iovlen = 1;
        }
        let count = batch.frames.len();
        let mut done = 0;
        while done < count {
            let rest = headers.get_mut(done..count).unwrap_or_default();
            // SAFETY: `rest` holds `rest.len()` initialised headers whose names, iovecs and
            // data (`batch`, `iovecs`) stay alive and unmoved for the call; the kernel writes
            // only each header's `msg_len` and keeps no pointer after it returns.
            let ret = unsafe {
                libc::sendmmsg(
                    self.fd.as_raw_fd(),
                    rest.as_mut_ptr(),
                    rest.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if ret > 0 {
                let ret = ret as usize;
                for frame in batch.frames.iter().skip(done).take(ret) {
                    sent(Ok(frame.len));
                }
                done += ret;
            } else {
                // The first frame of the rest failed; the call is retried after it.
                let error = if ret < 0 {
                    io::Error::last_os_error()
                } else {
                    io::ErrorKind::WriteZero.into()
                };
                sent(Err(error));
                done += 1;
            }
        }
        batch.clear();
    }
}
