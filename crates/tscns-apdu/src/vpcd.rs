//! The vpcd framing (vsmartcard `vpcd.h`), the one implementation the card side of every vpcd
//! link in the workspace uses (the test card of [`crate::testing`], the simulator `tscns-sim`).
//!
//! vpcd (vsmartcard's reader driver) makes pcscd show readers `Virtual PCD 00 00`, `00 01`, ...
//! and waits for a card on TCP 127.0.0.1:35963, 35964, ... The card side is the TCP client.
//! Every message both ways is a 2-byte big-endian length, then the payload. A 1-byte message from
//! vpcd is a control: 0 power off, 1 power on, 2 reset, 4 "send your ATR" (only 4 is answered,
//! with the framed ATR). A longer message is a C-APDU, answered with a framed R-APDU.
//!
//! ```
//! use tscns_apdu::vpcd::{encode_frame, FrameReader, Message};
//!
//! let mut reader = FrameReader::default();
//! reader.feed(&[0x00, 0x01, 0x04, 0x00, 0x05]);
//! reader.feed(&[0x00, 0xA4, 0x00, 0x00, 0x00]);
//! assert_eq!(reader.next_frame(), Some(vec![0x04]));
//! assert_eq!(Message::of(&[0x04]), Message::SendAtr);
//! let apdu = reader.next_frame().unwrap();
//! assert_eq!(Message::of(&apdu), Message::Apdu(&[0x00, 0xA4, 0x00, 0x00, 0x00]));
//! assert_eq!(reader.next_frame(), None);
//! assert_eq!(encode_frame(&[0x90, 0x00]).unwrap(), [0x00, 0x02, 0x90, 0x00]);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// TCP port of vpcd's first reader (`Virtual PCD 00 00`); reader `00 01` listens on the next.
pub const DEFAULT_PORT: u16 = 35963;

/// Control byte: power off.
pub const CTRL_OFF: u8 = 0;
/// Control byte: power on.
pub const CTRL_ON: u8 = 1;
/// Control byte: reset.
pub const CTRL_RESET: u8 = 2;
/// Control byte: "send your ATR" (also vpcd's presence poll).
pub const CTRL_ATR: u8 = 4;

/// The PC/SC name of the vpcd reader on `port` (`Virtual PCD 00 00` for 35963, `00 01` for
/// 35964, ...).
pub fn reader_name(port: u16) -> String {
    format!("Virtual PCD 00 {:02}", port.saturating_sub(DEFAULT_PORT))
}

/// What one frame from vpcd means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Power off (control 0).
    PowerOff,
    /// Power on (control 1).
    PowerOn,
    /// Reset (control 2).
    Reset,
    /// Send the ATR (control 4).
    SendAtr,
    /// A control byte vpcd does not define.
    UnknownControl(u8),
    /// An empty frame.
    Empty,
    /// A C-APDU (two bytes or more).
    Apdu(&'a [u8]),
}

impl<'a> Message<'a> {
    /// Classifies a frame's payload.
    pub fn of(frame: &'a [u8]) -> Message<'a> {
        match frame {
            [] => Message::Empty,
            [CTRL_OFF] => Message::PowerOff,
            [CTRL_ON] => Message::PowerOn,
            [CTRL_RESET] => Message::Reset,
            [CTRL_ATR] => Message::SendAtr,
            [other] => Message::UnknownControl(*other),
            apdu => Message::Apdu(apdu),
        }
    }
}

/// A payload with its 2-byte big-endian length in front; payloads over 65535 bytes are an
/// `InvalidInput` error.
pub fn encode_frame(payload: &[u8]) -> io::Result<Vec<u8>> {
    let len = u16::try_from(payload.len()).map_err(|_| {
        io::Error::new(io::ErrorKind::InvalidInput, "vpcd message over 65535 bytes")
    })?;
    let mut msg = Vec::with_capacity(payload.len() + 2);
    msg.extend_from_slice(&len.to_be_bytes());
    msg.extend_from_slice(payload);
    Ok(msg)
}

/// Writes one framed message.
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    w.write_all(&encode_frame(payload)?)
}

/// Splits the bytes received into frames (a frame may arrive in pieces, several in one read).
#[derive(Clone, Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// Adds received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame's payload, if one has arrived.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        let len = usize::from(u16::from_be_bytes([*self.buf.first()?, *self.buf.get(1)?]));
        let frame = self.buf.get(2..2 + len)?.to_vec();
        self.buf.drain(..2 + len);
        Some(frame)
    }

    /// Reads from `r` until a whole frame is there and returns its payload. `Ok(None)` when
    /// `stop` becomes true or the stream ends. Timeouts of a socket with a read timeout (the way
    /// to look at `stop` regularly) are not errors; other I/O errors are.
    pub fn read_frame(
        &mut self,
        r: &mut impl Read,
        stop: &AtomicBool,
    ) -> io::Result<Option<Vec<u8>>> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(frame) = self.next_frame() {
                return Ok(Some(frame));
            }
            if stop.load(Ordering::SeqCst) {
                return Ok(None);
            }
            match r.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.feed(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_in_pieces_and_together() {
        let mut r = FrameReader::default();
        r.feed(&[0x00]);
        assert_eq!(r.next_frame(), None);
        r.feed(&[0x02, 0x90]);
        assert_eq!(r.next_frame(), None);
        r.feed(&[0x00, 0x00, 0x00, 0x00, 0x01, 0x02]);
        assert_eq!(r.next_frame(), Some(vec![0x90, 0x00]));
        assert_eq!(r.next_frame(), Some(vec![]));
        assert_eq!(r.next_frame(), Some(vec![CTRL_RESET]));
        assert_eq!(Message::of(&[CTRL_RESET]), Message::Reset);
        assert_eq!(Message::of(&[9]), Message::UnknownControl(9));
        assert_eq!(Message::of(&[]), Message::Empty);
    }

    #[test]
    fn read_frame_stops_at_the_end_of_the_stream() {
        let stop = AtomicBool::new(false);
        let mut r = FrameReader::default();
        let mut input: &[u8] = &[0x00, 0x01, CTRL_ATR, 0x00];
        assert_eq!(
            r.read_frame(&mut input, &stop).unwrap(),
            Some(vec![CTRL_ATR])
        );
        assert_eq!(r.read_frame(&mut input, &stop).unwrap(), None);
        assert!(encode_frame(&vec![0; 65536]).is_err());
        assert_eq!(reader_name(35964), "Virtual PCD 00 01");
    }
}
