//! How SWIM packets are encoded: foca's framing, our CBOR for its parts.
//!
//! foca lays a packet out as a header, then a big-endian `u16` count, then that many members
//! (the piggybacked cluster updates). It asks a [`foca::Codec`] to encode and decode each
//! header and member. Ours encodes each with [`wire::codec`](crate::wire::codec) — the
//! project's one encoding, so SWIM changes format together with everything else — and puts
//! a one-byte length before each, because the CBOR helper decodes whole slices. Every part is
//! far below 255 bytes: a member is at most 58 bytes, a header at most 166 (IPv6 addresses
//! and `u64::MAX` generations everywhere; see the tests).
//!
//! Decoding never trusts a length: a prefix longer than what is left, or an item that does
//! not decode, is an error, and the CBOR decoder bounds nesting and allocation by the input
//! (at most 255 bytes here).

use bytes::{Buf, BufMut};
use foca::{Header, Member, Message};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::MemberId;
use crate::wire::{WireError, codec};

/// Largest encoded part: the length prefix is one byte.
const MAX_PART_LEN: usize = u8::MAX as usize;

/// The [`foca::Codec`] of SWIM packets: length-prefixed CBOR parts.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SwimCodec;

impl SwimCodec {
    /// Writes `value` with its length prefix, or nothing at all if `buf` lacks the room (foca
    /// requires that a member that does not fit leaves the buffer untouched).
    fn put<T: Serialize>(value: &T, mut buf: impl BufMut) -> Result<(), WireError> {
        let bytes = codec::to_vec(value)?;
        let len = u8::try_from(bytes.len()).map_err(|_| WireError::LimitExceeded {
            what: "SWIM packet part",
            value: bytes.len(),
            limit: MAX_PART_LEN,
        })?;
        if buf.remaining_mut() < 1 + bytes.len() {
            return Err(WireError::LimitExceeded {
                what: "SWIM packet",
                value: 1 + bytes.len(),
                limit: buf.remaining_mut(),
            });
        }
        buf.put_u8(len);
        buf.put_slice(&bytes);
        Ok(())
    }

    /// Reads one length-prefixed part and advances past it.
    fn take<T: DeserializeOwned>(mut buf: impl Buf) -> Result<T, WireError> {
        if !buf.has_remaining() {
            return Err(WireError::Malformed("SWIM packet ends before a part".to_owned()));
        }
        let len = usize::from(buf.get_u8());
        if buf.remaining() < len {
            return Err(WireError::Malformed(format!("SWIM part of {len} bytes but only {} left", buf.remaining())));
        }
        // foca hands us contiguous slices; copy only if some other `Buf` is not.
        if buf.chunk().len() >= len {
            let value = codec::from_slice(&buf.chunk()[..len])?;
            buf.advance(len);
            Ok(value)
        } else {
            codec::from_slice(&buf.copy_to_bytes(len))
        }
    }
}

impl foca::Codec<MemberId> for SwimCodec {
    type Error = WireError;

    fn encode_header(&mut self, header: &Header<MemberId>, buf: impl BufMut) -> Result<(), WireError> {
        Self::put(header, buf)
    }

    fn decode_header(&mut self, buf: impl Buf) -> Result<Header<MemberId>, WireError> {
        Self::take(buf)
    }

    fn encode_member(&mut self, member: &Member<MemberId>, buf: impl BufMut) -> Result<(), WireError> {
        Self::put(member, buf)
    }

    fn decode_member(&mut self, buf: impl Buf) -> Result<Member<MemberId>, WireError> {
        Self::take(buf)
    }
}

/// Decodes the header at the start of a packet (for the impersonation check, before foca
/// reads the rest).
pub(crate) fn peek_header(packet: &[u8]) -> Result<Header<MemberId>, WireError> {
    SwimCodec::take(packet)
}

/// `packet` without the cluster updates `keep` refuses, and how many were dropped; `None`
/// when it keeps every update (or the packet carries none), so the caller can pass the
/// original on. The framing is foca's: the header, then (except in `Announce` and
/// `Broadcast` packets) a big-endian `u16` count and that many members, then whatever foca
/// reads after them, copied as it is. Kept parts are copied byte for byte, not re-encoded.
///
/// # Errors
/// [`WireError::Malformed`] when the header or a member does not decode, or the count
/// promises more members than the packet holds (foca would refuse the packet too).
pub(crate) fn retain_updates(
    packet: &[u8],
    mut keep: impl FnMut(&Member<MemberId>) -> bool,
) -> Result<Option<(Vec<u8>, usize)>, WireError> {
    let mut rest = packet;
    let header: Header<MemberId> = SwimCodec::take(&mut rest)?;
    if matches!(header.message, Message::Announce | Message::Broadcast) || rest.len() < 2 {
        return Ok(None);
    }
    let header_len = packet.len() - rest.len();
    let count = rest.get_u16();
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut dropped = 0;
    for _ in 0..count {
        let before = rest;
        let member: Member<MemberId> = SwimCodec::take(&mut rest)?;
        if keep(&member) {
            kept.push(&before[..before.len() - rest.len()]);
        } else {
            dropped += 1;
        }
    }
    if dropped == 0 {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(packet.len());
    out.extend_from_slice(&packet[..header_len]);
    // Fewer than `count`, which was a u16.
    out.put_u16(kept.len() as u16);
    for part in kept {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(rest);
    Ok(Some((out, dropped)))
}

#[cfg(test)]
mod tests {
    use foca::{Codec, Message, State};

    use super::*;
    use crate::net::NodeId;

    fn worst_id(byte: u8) -> MemberId {
        MemberId::new(NodeId::from_bytes([byte; 20]), "[ffff:ffff::ffff]:65535".parse().unwrap(), u64::MAX)
    }

    #[test]
    fn worst_case_parts_fit_the_prefix() {
        let mut codec = SwimCodec;
        let mut buf = Vec::new();
        let member = Member::new(worst_id(1), u16::MAX, State::Suspect);
        codec.encode_member(&member, &mut buf).unwrap();
        assert!(buf.len() <= 1 + 58, "member is {} bytes", buf.len());
        let mut read = &buf[..];
        assert_eq!(codec.decode_member(&mut read).unwrap(), member);
        assert!(read.is_empty());

        let messages = [
            Message::PingReq { target: worst_id(3), probe_number: u8::MAX },
            Message::IndirectPing { origin: worst_id(3), probe_number: u8::MAX },
            Message::IndirectAck { target: worst_id(3), probe_number: u8::MAX },
            Message::ForwardedAck { origin: worst_id(3), probe_number: u8::MAX },
            Message::Ping(u8::MAX),
            Message::TurnUndead,
        ];
        for message in messages {
            let header = Header { src: worst_id(1), src_incarnation: u16::MAX, dst: worst_id(2), message };
            let mut buf = Vec::new();
            codec.encode_header(&header, &mut buf).unwrap();
            assert!(buf.len() <= 1 + 166, "header is {} bytes", buf.len());
            let mut read = &buf[..];
            assert_eq!(codec.decode_header(&mut read).unwrap(), header);
            assert!(read.is_empty());
        }
    }

    #[test]
    fn a_part_that_does_not_fit_leaves_the_buffer_untouched() {
        let member = Member::new(worst_id(1), 0, State::Alive);
        let mut buf = Vec::new();
        let mut limited = (&mut buf).limit(10);
        assert!(SwimCodec.encode_member(&member, &mut limited).is_err());
        assert!(buf.is_empty());
    }

    #[test]
    fn truncated_and_garbage_parts_are_errors() {
        let member = Member::new(worst_id(1), 0, State::Alive);
        let mut buf = Vec::new();
        SwimCodec.encode_member(&member, &mut buf).unwrap();
        for cut in 0..buf.len() {
            let mut read = &buf[..cut];
            assert!(SwimCodec.decode_member(&mut read).is_err(), "cut at {cut}");
        }
        let mut read = &[3u8, 0xff, 0xff, 0xff][..];
        assert!(SwimCodec.decode_member(&mut read).is_err());
        assert!(peek_header(&[]).is_err());
    }

    /// `retain_updates` drops exactly the refused members, copies the rest byte for byte and
    /// fixes the count; a packet it keeps whole, or one without updates, is not copied.
    #[test]
    fn retain_updates_drops_only_the_refused_members() {
        let mut codec = SwimCodec;
        let header = |message| Header { src: worst_id(1), src_incarnation: 3, dst: worst_id(2), message };
        let members: Vec<Member<MemberId>> =
            (10..14).map(|b| Member::new(worst_id(b), u16::from(b), State::Alive)).collect();
        let packet = |members: &[Member<MemberId>]| {
            let mut buf = Vec::new();
            SwimCodec.encode_header(&header(Message::Gossip), &mut buf).unwrap();
            buf.extend_from_slice(&u16::try_from(members.len()).unwrap().to_be_bytes());
            for m in members {
                SwimCodec.encode_member(m, &mut buf).unwrap();
            }
            buf
        };
        let full = packet(&members);
        let even = |m: &Member<MemberId>| m.incarnation().is_multiple_of(2);
        let (kept, dropped) = retain_updates(&full, even).unwrap().unwrap();
        assert_eq!(dropped, 2);
        let evens: Vec<_> = members.iter().filter(|m| even(m)).cloned().collect();
        assert_eq!(kept, packet(&evens));
        assert!(retain_updates(&full, |_| true).unwrap().is_none());

        let mut announce = Vec::new();
        codec.encode_header(&header(Message::Announce), &mut announce).unwrap();
        assert!(retain_updates(&announce, |_| false).unwrap().is_none());
        // A count larger than the members that follow is an error, not a short read; so is
        // every cut of the packet inside a member, and a cut inside the count is passed on
        // whole (foca refuses it). Flipped bytes never panic.
        let mut short = full.clone();
        short.truncate(full.len() - 3);
        assert!(retain_updates(&short, |_| false).is_err());
        let header_len = full.len()
            - members
                .iter()
                .map(|m| {
                    let mut b = Vec::new();
                    SwimCodec.encode_member(m, &mut b).unwrap();
                    b.len()
                })
                .sum::<usize>()
            - 2;
        for cut in header_len + 2..full.len() {
            assert!(retain_updates(&full[..cut], |_| false).is_err(), "cut at {cut}");
        }
        assert!(retain_updates(&full[..header_len + 1], |_| false).unwrap().is_none());
        for i in 0..full.len() {
            let mut flipped = full.clone();
            flipped[i] ^= 0xa5;
            let _ = retain_updates(&flipped, |m| m.incarnation() % 3 == 0);
        }
    }
}
