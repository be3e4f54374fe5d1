//! `wire_decode`: arbitrary bytes through every decoder of the wire layer.

use gossamer_sync::wire::{CompactVv, Envelope, WireError, decode, encode, frame, unframe};

/// The frame bound the target decodes with: small enough that the limit is exercised by
/// inputs the fuzzer makes, large enough for every real message in the corpus.
const MAX_FRAME: usize = 64 << 10;

/// Feeds `data` to [`unframe`] (as a stream of frames), to [`decode`] (the whole input as
/// one payload, and each unframed payload) and to [`CompactVv::decode`].
///
/// Checks: nothing panics; a frame split off is exactly its prefix and payload; an envelope
/// that decodes re-encodes to bytes that decode to the same envelope, and re-encoding is
/// stable; a compact version vector that decodes re-encodes to exactly the input (one vector,
/// one encoding: digests hash these bytes).
pub fn wire_decode(data: &[u8]) {
    let mut rest = data;
    while let Ok(Some((payload, used))) = unframe(rest, MAX_FRAME) {
        assert_eq!(used, 4 + payload.len(), "unframe: consumed length");
        assert_eq!(&rest[4..used], payload, "unframe: payload is not what follows the prefix");
        assert_eq!(frame(payload, MAX_FRAME).as_deref(), Ok(&rest[..used]), "frame(unframe(x)) != x");
        check_envelope(payload);
        rest = &rest[used..];
    }
    check_envelope(data);

    if let Ok(vv) = CompactVv::decode(data) {
        assert_eq!(CompactVv::encode(&vv), data, "compact vv: decoded {vv:?} re-encodes differently");
    }
}

/// Decodes `payload` as an envelope and, when it decodes, checks the round trip.
fn check_envelope(payload: &[u8]) {
    match decode(payload, MAX_FRAME) {
        Ok(env) => {
            let bytes = encode(&env).expect("a decoded envelope encodes");
            let again = decode(&bytes, usize::MAX).expect("a re-encoded envelope decodes");
            assert_eq!(again, env, "decode(encode(decode(x))) != decode(x)");
            assert_eq!(encode(&again).expect("encodes"), bytes, "re-encoding is not stable");
            roundtrip_limit(&bytes, &env);
        }
        Err(WireError::LimitExceeded { value, limit, .. }) => {
            assert!(value > limit, "limit error for {value} bytes under the limit {limit}");
        }
        Err(_) => {}
    }
}

/// A frame at exactly the limit decodes; one byte less of limit refuses it.
fn roundtrip_limit(bytes: &[u8], env: &Envelope) {
    assert_eq!(decode(bytes, bytes.len()).as_ref(), Ok(env), "a frame at the limit is refused");
    if let Some(less) = bytes.len().checked_sub(1) {
        assert!(
            matches!(decode(bytes, less), Err(WireError::LimitExceeded { .. })),
            "a frame over the limit is accepted"
        );
    }
}

/// Real encodings: every message variant as a bare envelope and as a frame, a stream of
/// frames, a cut frame, a length over the bound, another wire version, compact vectors.
pub(crate) fn seeds() -> super::corpus::Seeds {
    use bytes::Bytes;
    use gossamer_crdt::{CausalCounter, Dot, OrMap, ReplicaId, VClock};
    use gossamer_sync::wire::{Message, OpRecord, SnapshotChunk, codec};

    let (a, b, c) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2), ReplicaId::from_u128(0xC0 << 120));
    let mut state: OrMap<u8, CausalCounter> = OrMap::new();
    let op1 = state.update(1, |q| q.add(a, 2));
    let op2 = state.update(2, |q| q.add(b, -1));
    let op3 = state.remove(&1);
    let payload = |op| Bytes::from(codec::to_vec(&op).expect("an op encodes"));
    let rec1 = OpRecord { dot: Dot::new(a, 1), deps: vec![], created_ms: 1_700_000_000_000, payload: payload(op1) };
    let rec2 = OpRecord {
        dot: Dot::new(b, 1),
        deps: vec![Dot::new(a, 1)],
        created_ms: 1_700_000_000_050,
        payload: payload(op2),
    };
    let rec3 = OpRecord {
        dot: Dot::new(a, 2),
        deps: vec![Dot::new(b, 1)],
        created_ms: 1_700_000_000_100,
        payload: payload(op3),
    };
    let vv: VClock = [(a, 2), (b, 1), (c, 300)].into_iter().collect();
    let encoded_state = Bytes::from(codec::to_vec(&state).expect("a state encodes"));
    let half = encoded_state.len() / 2;
    let chunk = |index, last, vv: Option<VClock>, data: Bytes| Message::Snapshot {
        chunk: SnapshotChunk { id: 7, index, last, vv: vv.map(CompactVv), data },
    };
    let messages = [
        ("push-one-op", Message::Push { ops: vec![rec1.clone()] }),
        ("push-causal-chain", Message::Push { ops: vec![rec1.clone(), rec2.clone(), rec3.clone()] }),
        ("ops-more", Message::Ops { ops: vec![rec2, rec3], more: true }),
        ("ops-empty", Message::Ops { ops: vec![], more: false }),
        ("digest-hash-only", Message::Digest { hash: 0x1234_5678_9abc_def0, vv: None, reply: false }),
        (
            "digest-with-vv",
            Message::Digest {
                hash: gossamer_sync::wire::fnv1a(&CompactVv::encode(&vv)),
                vv: Some(CompactVv(vv.clone())),
                reply: true,
            },
        ),
        ("snapshot-whole", chunk(0, true, Some(vv.clone()), encoded_state.clone())),
        ("snapshot-first-chunk", chunk(0, false, Some(vv.clone()), encoded_state.slice(..half))),
        ("snapshot-last-chunk", chunk(1, true, None, encoded_state.slice(half..))),
    ];
    let mut seeds = Vec::new();
    let mut stream = Vec::new();
    for (name, msg) in messages {
        let env = encode(&Envelope::new(msg)).expect("a message encodes");
        let framed = frame(&env, MAX_FRAME).expect("a message fits a frame");
        stream.extend_from_slice(&framed);
        seeds.push((format!("envelope-{name}"), env));
        seeds.push((format!("frame-{name}"), framed));
    }
    let one = encode(&Envelope::new(Message::Push { ops: vec![rec1.clone()] })).expect("encodes");
    let framed = frame(&one, MAX_FRAME).expect("fits");
    seeds.push(("frames-stream".into(), stream));
    seeds.push(("frame-cut-short".into(), framed[..framed.len() - 3].to_vec()));
    let mut over = (MAX_FRAME as u32 + 1).to_be_bytes().to_vec();
    over.extend_from_slice(&one);
    seeds.push(("frame-length-over-bound".into(), over));
    let newer = Envelope { version: 2, body: Message::Ops { ops: vec![rec1], more: false } };
    seeds.push(("envelope-newer-version".into(), encode(&newer).expect("encodes")));
    seeds.push(("compact-vv".into(), CompactVv::encode(&vv)));
    let top: VClock = [(a, u64::MAX), (c, 1)].into_iter().collect();
    seeds.push(("compact-vv-top-counter".into(), CompactVv::encode(&top)));
    seeds.push(("empty".into(), Vec::new()));
    seeds
}
