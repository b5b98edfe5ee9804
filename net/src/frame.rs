//! Length-prefixed protobuf frames with a hard size limit and a deadline on
//! every read and write.
//!
//! The limit is checked on the 4-byte header *before* any buffer is
//! allocated, so a peer announcing a 4 GiB frame costs us four bytes, not
//! four gigabytes. Every read and write has a deadline so a peer that stops
//! talking (or stops reading) cannot pin one of our tasks forever.

use std::time::Duration;

use iroh::endpoint::SendStream;
use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{NetError, Result};

/// Hard upper bound on one frame's body.
pub const MAX_FRAME: usize = 4 << 20;

/// Reads one frame body, `Ok(None)` on a clean end of stream before a header.
///
/// Generic over the reader (a QUIC `RecvStream` in the product) so the fuzz
/// target can feed it bytes from memory through this very function.
pub async fn read_raw(
    recv: &mut (impl AsyncRead + Unpin),
    max: usize,
    timeout: Duration,
    what: &'static str,
) -> Result<Option<Vec<u8>>> {
    let mut header = [0u8; 4];
    let got = with_timeout(timeout, what, async {
        // Read the header byte by byte group so a clean EOF is distinguishable
        // from a truncated header.
        let mut filled = 0;
        while filled < 4 {
            match recv.read(&mut header[filled..]).await {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => return Err(NetError::Stream(e.to_string())),
            }
        }
        Ok(filled)
    })
    .await??;
    if got == 0 {
        return Ok(None);
    }
    if got < 4 {
        return Err(NetError::Protocol(format!(
            "stream ended inside a frame header ({got} of 4 bytes)"
        )));
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(NetError::FrameTooLarge { size: len, max });
    }
    let mut body = vec![0u8; len];
    with_timeout(timeout, what, recv.read_exact(&mut body))
        .await?
        .map_err(|e| NetError::Stream(format!("reading a {len}-byte frame: {e}")))?;
    Ok(Some(body))
}

/// Reads and decodes one frame; end of stream is a protocol error here.
pub async fn read<M: Message + Default>(
    recv: &mut (impl AsyncRead + Unpin),
    max: usize,
    timeout: Duration,
    what: &'static str,
) -> Result<(M, usize)> {
    let body = read_raw(recv, max, timeout, what)
        .await?
        .ok_or_else(|| NetError::Protocol(format!("stream ended while waiting for {what}")))?;
    let n = body.len() + 4;
    let msg = M::decode(body.as_slice())
        .map_err(|e| NetError::Protocol(format!("{what} does not decode: {e}")))?;
    Ok((msg, n))
}

/// Encodes and writes one frame; returns the bytes written.
pub async fn write<M: Message>(
    send: &mut SendStream,
    msg: &M,
    timeout: Duration,
    what: &'static str,
) -> Result<usize> {
    let len = msg.encoded_len();
    if len > MAX_FRAME {
        return Err(NetError::FrameTooLarge {
            size: len,
            max: MAX_FRAME,
        });
    }
    let mut buf = Vec::with_capacity(4 + len);
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    msg.encode(&mut buf)
        .map_err(|e| NetError::Protocol(format!("encoding {what}: {e}")))?;
    with_timeout(timeout, what, send.write_all(&buf))
        .await?
        .map_err(|e| NetError::Stream(format!("writing {what}: {e}")))?;
    Ok(buf.len())
}

pub async fn with_timeout<F: Future>(
    timeout: Duration,
    what: &'static str,
    fut: F,
) -> Result<F::Output> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| NetError::Timeout {
            what,
            ms: timeout.as_millis() as u64,
        })
}
