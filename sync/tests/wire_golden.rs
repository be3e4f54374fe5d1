//! Golden vectors for the wire format (`sync/WIRE.md`): for every message variant a fixed
//! value and the exact bytes serde_cbor 0.11's packed encoder gives it, checked both ways.
//! If one of these fails, the wire format changed: peers of the previous release can no
//! longer talk to this one. Bump `WIRE_VERSION` and update `sync/WIRE.md`, never only the hex.
//!
//! Also: unknown versions, the previous encoding, truncated, bit-flipped and random inputs
//! (typed errors, never a panic), frame limits, the shape checks of the compact version vector
//! (one vector, one encoding), and the byte size of a one-op push and of digests.

use bytes::Bytes;
use gossamer_crdt::{CausalCounter, Dot, OrMap, ReplicaId, VClock};
use gossamer_sync::protocol::{Config, Output, PeerStatus, Replica};
use gossamer_sync::wire::{
    self, CompactVv, DEFAULT_MAX_FRAME, Envelope, Message, OpRecord, SnapshotChunk, WIRE_VERSION, WireError, codec,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Cart = OrMap<String, CausalCounter>;

// ---- fixed values ---------------------------------------------------------------------------

/// Replica `A`: the 16 bytes `00 … 00 01`.
const A: ReplicaId = ReplicaId::from_u128(1);
/// Replica `B`: the 16 bytes `00 … 00 02`.
const B: ReplicaId = ReplicaId::from_u128(2);

/// The 16 bytes of `A` and `B` in hex, as they appear inside the vectors below.
const ID_A: &str = "00000000000000000000000000000001";

/// `{A: 5, B: 300}`: two entries, one counter needing a two-byte varint.
fn vv_ab() -> VClock {
    let mut vv = VClock::new();
    vv.set(A, 5);
    vv.set(B, 300);
    vv
}

/// `CompactVv::encode(&vv_ab())`: each entry is the 16-byte id, then the LEB128 counter.
#[rustfmt::skip]
const VV_AB: &str = concat!(
    "00000000000000000000000000000001",                       // replica A
    "05",                                                     // 5
    "00000000000000000000000000000002",                       // replica B
    "ac02",                                                   // 300: 0x2c | 0x80 (more), then 300 >> 7
);

/// FNV-1a 64 of [`VV_AB`].
const VV_AB_HASH: u64 = 0x63a7_4397_9738_fa41;

/// The cart op "milk +1" made by replica `A` on an empty `OrMap<String, CausalCounter>`,
/// encoded with `wire::codec` (this is an `OpRecord`'s opaque `payload`).
#[rustfmt::skip]
const MILK_PLUS_ONE: &str = concat!(
    "a1", "00",                                               // OrMapOp::Update (variant 0) as {0: fields}
    "a2",                                                     //   map, 2 fields
    "00", "64", "6d696c6b",                                   //   0 key: text(4) "milk"
    "01", "a2",                                               //   1 op: CounterOp, 2 fields
    "00", "82", "50",                                         //     0 dot: array(2) [bytes(16)
    "00000000000000000000000000000001", "01",                 //       A, 1]
    "01", "01",                                               //     1 delta: 1
);

fn milk_plus_one() -> Bytes {
    let mut cart = Cart::new();
    let op = cart.update("milk".to_string(), |q| q.inc(A, 1));
    Bytes::from(codec::to_vec(&op).unwrap())
}

/// The state of a `CausalCounter` after `A` added 3, encoded with `wire::codec`: the bytes
/// a snapshot of it carries, split into chunks of 16.
fn counter_state() -> Vec<u8> {
    let mut c = CausalCounter::new();
    c.inc(A, 3);
    codec::to_vec(&c).unwrap()
}

#[rustfmt::skip]
const COUNTER_STATE: &str = concat!(
    "82",                                                     // (context, store)
    "81", "83", "50",                                         // context: [(bytes(16)
    "00000000000000000000000000000001", "01", "80",           //   A, max 1, cloud [])]
    "83", "00", "01", "03",                                   // store: [replica #0 of the context, 1, +3] (flat)
);

// ---- the golden vectors: one per message variant ----------------------------------------------

/// When the ops below were made: 2023-11-14T22:13:20Z in Unix milliseconds, the clock a node
/// stamps `created_ms` with. Above 2^32, so it takes a full eight-byte integer, as every real
/// timestamp does: the sizes below are the real ones.
const T0: u64 = 1_700_000_000_000;

/// A one-op `Push`: the cart op "milk +1", A's first op, no dependencies, made at [`T0`].
/// Exactly what `Replica::local_update(T0, …)` pushes (see `one_small_op_push_is_at_most_100_bytes`).
#[rustfmt::skip]
const PUSH: &str = concat!(
    "a2", "00", "01",                                         // Envelope (map, 2 entries) { 0 version: 1,
    "01",                                                     //                             1 body:
    "a1", "00",                                               // Message::Push (variant 0) as {0: fields}
    "a1", "00", "81",                                         //   {0 ops: array(1) [
    "a4",                                                     //     OpRecord (map, 4 fields)
    "00", "82", "50",                                         //     0 dot: [bytes(16)
    "00000000000000000000000000000001", "01",                 //       A, 1]
    "01", "80",                                               //     1 deps: []
    "02", "1b", "0000018bcfe56800",                           //     2 created_ms: u64 T0
    "03", "5821",                                             //     3 payload: bytes(33)
    "a100a200646d696c6b01a200825000000000000000000000000000000001010101",//       = MILK_PLUS_ONE
);

/// A full digest: hash, whole version vector, asking for the peer's digest back.
#[rustfmt::skip]
const DIGEST_FULL: &str = concat!(
    "a2", "00", "01",                                         // Envelope (map, 2 entries) { 0 version: 1,
    "01",                                                     //                             1 body:
    "a1", "01",                                               // Message::Digest (variant 1) as {1: fields}
    "a3",                                                     //   map, 3 fields
    "00", "1b", "63a743979738fa41",                           //   0 hash: u64 = FNV-1a of the vv bytes
    "01", "5823",                                             //   1 vv: bytes(35) = VV_AB
    "00000000000000000000000000000001", "05",
    "00000000000000000000000000000002", "ac02",
    "02", "f5",                                               //   2 reply: true
);

/// An idle digest: the hash only.
#[rustfmt::skip]
const DIGEST_IDLE: &str = concat!(
    "a2", "00", "01",                                         // Envelope (map, 2 entries) { 0 version: 1,
    "01",                                                     //                             1 body:
    "a1", "01",                                               // Message::Digest (variant 1)
    "a3",                                                     //   map, 3 fields
    "00", "1b", "63a743979738fa41",                           //   0 hash
    "01", "f6",                                               //   1 vv: null (None)
    "02", "f4",                                               //   2 reply: false
);

/// An `Ops` answer cut at the batch bound: one op with one dependency, made at T0 + 250 ms.
#[rustfmt::skip]
const OPS: &str = concat!(
    "a2", "00", "01",                                         // Envelope (map, 2 entries) { 0 version: 1,
    "01",                                                     //                             1 body:
    "a1", "02",                                               // Message::Ops (variant 2)
    "a2",                                                     //   map, 2 fields
    "00", "81",                                               //   0 ops: array(1) [
    "a4",                                                     //     OpRecord
    "00", "82", "50",                                         //     0 dot: [bytes(16)
    "00000000000000000000000000000001", "02",                 //       A, 2]
    "01", "81", "82", "50",                                   //     1 deps: [[bytes(16)
    "00000000000000000000000000000002", "03",                 //       B, 3]]
    "02", "1b", "0000018bcfe568fa",                           //     2 created_ms: T0 + 250
    "03", "41", "01",                                         //     3 payload: bytes(1) 0x01
    "01", "f5",                                               //   1 more: true
);

/// The first chunk of a snapshot: carries the version vector. `Snapshot` is a struct variant
/// (`Snapshot { chunk }`), so packed CBOR keys it by its index, like every other variant.
#[rustfmt::skip]
const SNAPSHOT_FIRST: &str = concat!(
    "a2", "00", "01",                                         // Envelope (map, 2 entries) { 0 version: 1,
    "01",                                                     //                             1 body:
    "a1", "03",                                               // Message::Snapshot (variant 3) as {3: fields}
    "a1", "00",                                               //   {0 chunk:
    "a5",                                                     //     SnapshotChunk (map, 5 fields)
    "00", "07",                                               //     0 id: 7
    "01", "00",                                               //     1 index: 0
    "02", "f4",                                               //     2 last: false
    "03", "5823",                                             //     3 vv: bytes(35) = VV_AB
    "00000000000000000000000000000001", "05",
    "00000000000000000000000000000002", "ac02",
    "04", "50",                                               //     4 data: bytes(16)
    "82818350000000000000000000000000",                       //       = COUNTER_STATE[..16]
);

/// The last chunk of the same snapshot.
#[rustfmt::skip]
const SNAPSHOT_LAST: &str = concat!(
    "a2", "00", "01",                                         // Envelope (map, 2 entries) { 0 version: 1,
    "01",                                                     //                             1 body:
    "a1", "03",                                               // Message::Snapshot (variant 3)
    "a1", "00",                                               //   {0 chunk:
    "a5",                                                     //     SnapshotChunk
    "00", "07",                                               //     0 id: 7
    "01", "01",                                               //     1 index: 1
    "02", "f5",                                               //     2 last: true
    "03", "f6",                                               //     3 vv: null
    "04", "4a",                                               //     4 data: bytes(10)
    "00000001018083000103",                                   //       = COUNTER_STATE[16..]
);

fn goldens() -> Vec<(&'static str, Message, &'static str)> {
    let state = counter_state();
    vec![
        (
            "push",
            Message::Push {
                ops: vec![OpRecord { dot: Dot::new(A, 1), deps: vec![], created_ms: T0, payload: milk_plus_one() }],
            },
            PUSH,
        ),
        ("digest_full", Message::Digest { hash: VV_AB_HASH, vv: Some(CompactVv(vv_ab())), reply: true }, DIGEST_FULL),
        ("digest_idle", Message::Digest { hash: VV_AB_HASH, vv: None, reply: false }, DIGEST_IDLE),
        (
            "ops",
            Message::Ops {
                ops: vec![OpRecord {
                    dot: Dot::new(A, 2),
                    deps: vec![Dot::new(B, 3)],
                    created_ms: T0 + 250,
                    payload: Bytes::from_static(&[0x01]),
                }],
                more: true,
            },
            OPS,
        ),
        (
            "snapshot_first",
            Message::Snapshot {
                chunk: SnapshotChunk {
                    id: 7,
                    index: 0,
                    last: false,
                    vv: Some(CompactVv(vv_ab())),
                    data: Bytes::copy_from_slice(&state[..16]),
                },
            },
            SNAPSHOT_FIRST,
        ),
        (
            "snapshot_last",
            Message::Snapshot {
                chunk: SnapshotChunk {
                    id: 7,
                    index: 1,
                    last: true,
                    vv: None,
                    data: Bytes::copy_from_slice(&state[16..]),
                },
            },
            SNAPSHOT_LAST,
        ),
    ]
}

/// The golden vectors of the same messages before commit 9e9a372 (no `created_ms`, `Prune`
/// and `Graft` at indices 1 and 2, `Snapshot` a newtype variant keyed by name). That change
/// kept `WIRE_VERSION` at 1 (nothing had been released), so these still say version 1: they
/// must be rejected as malformed, never read as something else.
#[rustfmt::skip]
const BEFORE_9E9A372: [(&str, &str); 8] = [
    ("push", "a2000101a100a10081a300825000000000000000000000000000000001010180025821a100a200646d696c6b01a200825000000000000000000000000000000001010101"),
    ("prune", "a200010101"),
    ("graft", "a200010102"),
    ("digest_full", "a2000101a103a3001b63a743979738fa41015823000000000000000000000000000000010500000000000000000000000000000002ac0202f5"),
    ("digest_idle", "a2000101a103a3001b63a743979738fa4101f602f4"),
    ("ops", "a2000101a104a20081a3008250000000000000000000000000000000010201818250000000000000000000000000000000020302410101f5"),
    ("snapshot_first", "a2000101a168536e617073686f74a50007010002f4035823000000000000000000000000000000010500000000000000000000000000000002ac02045082818350000000000000000000000000"),
    ("snapshot_last", "a2000101a168536e617073686f74a50007010102f503f6044c000000010180818282000103"),
];

// ---- helpers --------------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 2, 0, "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

fn decode(bytes: &[u8]) -> Result<Envelope, WireError> {
    wire::decode(bytes, DEFAULT_MAX_FRAME)
}

fn is_malformed(r: &Result<Envelope, WireError>) -> bool {
    matches!(r, Err(WireError::Malformed(_)))
}

// ---- golden vectors, both ways ----------------------------------------------------------------

#[test]
fn wire_version_is_one() {
    assert_eq!(WIRE_VERSION, 1);
    assert_eq!(DEFAULT_MAX_FRAME, 4 * 1024 * 1024);
    assert_eq!(Config::default().max_frame_bytes, DEFAULT_MAX_FRAME);
}

#[test]
fn every_variant_is_covered() {
    // Adding a variant without a golden vector fails to compile here.
    for (_, msg, _) in goldens() {
        match msg {
            Message::Push { .. } | Message::Digest { .. } | Message::Ops { .. } | Message::Snapshot { .. } => {}
        }
    }
    let names: Vec<&str> = goldens().iter().map(|(n, _, _)| *n).collect();
    for variant in ["push", "digest", "ops", "snapshot"] {
        assert!(names.iter().any(|n| n.starts_with(variant)), "no golden vector for {variant}");
    }
}

#[test]
fn golden_vectors_encode_to_the_exact_bytes() {
    for (name, msg, expected) in goldens() {
        let bytes = wire::encode(&Envelope::new(msg)).unwrap();
        assert_eq!(hex(&bytes), expected, "{name}: the encoding changed");
    }
}

#[test]
fn golden_vectors_decode_to_the_values() {
    for (name, msg, hex) in goldens() {
        let env = decode(&unhex(hex)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(env.version, WIRE_VERSION, "{name}");
        assert_eq!(env.body, msg, "{name}");
    }
}

#[test]
fn wire_md_quotes_every_golden_vector() {
    // `sync/WIRE.md` quotes each vector whole, in backquotes: the document cannot drift from
    // the encoder, nor keep a vector of the previous encoding.
    let doc = include_str!("../WIRE.md");
    for (name, _, hex) in goldens() {
        assert!(doc.contains(&format!("`{hex}`")), "WIRE.md does not quote the {name} vector");
    }
    for (name, hex) in BEFORE_9E9A372 {
        assert!(!doc.contains(hex), "WIRE.md still quotes the old {name} vector");
    }
}

#[test]
fn golden_vectors_frame_with_a_big_endian_length() {
    let framed = wire::frame(&unhex(DIGEST_IDLE), DEFAULT_MAX_FRAME).unwrap();
    assert_eq!(hex(&framed), format!("00000015{DIGEST_IDLE}"));
    let framed = wire::frame(&unhex(PUSH), DEFAULT_MAX_FRAME).unwrap();
    assert_eq!(&framed[..4], &[0, 0, 0, 78]);
    let (payload, used) = wire::unframe(&framed, DEFAULT_MAX_FRAME).unwrap().unwrap();
    assert_eq!((payload, used), (&unhex(PUSH)[..], 82));
}

#[test]
fn op_payload_and_snapshot_data_are_the_codec_encodings() {
    assert_eq!(hex(&milk_plus_one()), MILK_PLUS_ONE);
    assert_eq!(hex(&counter_state()), COUNTER_STATE);
    // The payload decodes back to the cart op, the chunks reassemble into the state.
    let op: gossamer_crdt::OrMapOp<String, gossamer_crdt::CounterOp> = codec::from_slice(&milk_plus_one()).unwrap();
    let mut cart = Cart::new();
    assert_eq!(op, cart.update("milk".to_string(), |q| q.inc(A, 1)));
    let state: CausalCounter = codec::from_slice(&counter_state()).unwrap();
    assert_eq!(state.value(), 3);
}

#[test]
fn compact_vv_and_hash_golden() {
    let bytes = CompactVv::encode(&vv_ab());
    assert_eq!(hex(&bytes), VV_AB);
    assert_eq!(bytes.len(), 16 + 1 + 16 + 2);
    assert_eq!(CompactVv::decode(&bytes).unwrap(), vv_ab());
    assert_eq!(wire::fnv1a(&bytes), VV_AB_HASH);
    // The published FNV-1a 64 test vectors, and the hash of the empty version vector.
    assert_eq!(wire::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(wire::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(wire::fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    assert!(CompactVv::encode(&VClock::new()).is_empty());
    assert!(ID_A.len() == 32 && VV_AB.starts_with(ID_A));
}

#[test]
fn decoder_accepts_names_and_indices_alike() {
    // serde_cbor's deserializer takes a variant or field either by index or by name, so a
    // peer may write `Snapshot { chunk }` as {"Snapshot": {"chunk": …}} and `Ops` as "Ops";
    // and an absent `Option` field reads as `None`.
    let empty_ops = Message::Ops { ops: vec![], more: false };
    let snapshot_by_name = SNAPSHOT_LAST.replacen("a103a100", "a168536e617073686f74a1656368756e6b", 1);
    assert_eq!(decode(&unhex(&snapshot_by_name)).unwrap().body, goldens()[5].1);
    let ops_by_name = concat!("a2", "00", "01", "01", "a1", "63", "4f7073", "a2", "00", "80", "01", "f4");
    assert_eq!(decode(&unhex(ops_by_name)).unwrap().body, empty_ops);
    let idle_without_vv = concat!("a2", "00", "01", "01", "a1", "01", "a2", "00", "1b", "63a743979738fa41", "02", "f4");
    assert_eq!(decode(&unhex(idle_without_vv)).unwrap().body, goldens()[2].1);
    let named_envelope =
        concat!("a2", "67", "76657273696f6e", "01", "64", "626f6479", "a1", "02", "a2", "00", "80", "01", "f4");
    assert_eq!(decode(&unhex(named_envelope)).unwrap().body, empty_ops);
    // Indefinite-length map, a version in a two-byte integer, an unknown key 2: all accepted.
    let lenient = concat!("bf", "00", "190001", "01", "a1", "02", "a2", "00", "80", "01", "f4", "02", "00", "ff");
    assert_eq!(decode(&unhex(lenient)).unwrap(), Envelope::new(empty_ops));
}

#[test]
fn the_encoding_before_9e9a372_is_malformed_not_misread() {
    // Same version number, different layout: every old vector fails to decode (an old
    // `Digest` at index 3 is not read as a `Snapshot`, an old `Prune` not as a `Digest`).
    for (name, hex) in BEFORE_9E9A372 {
        let r = decode(&unhex(hex));
        assert!(is_malformed(&r), "old {name}: {r:?}");
    }
    // An op record without `created_ms` is refused, naming the field.
    #[rustfmt::skip]
    let no_created = concat!(
        "a2000101", "a102", "a2", "00", "81",                 // Ops { ops: [
        "a3",                                                 //   OpRecord with 3 fields:
        "00", "8250", "00000000000000000000000000000001", "01", // 0 dot: [A, 1]
        "01", "80",                                           //   1 deps: []
        "03", "40",                                           //   3 payload: b""
        "01", "f4",                                           // ], more: false }
    );
    let r = decode(&unhex(no_created));
    assert!(matches!(&r, Err(WireError::Malformed(m)) if m.contains("created_ms")), "{r:?}");
}

// ---- versions ---------------------------------------------------------------------------------

#[test]
fn unknown_version_is_a_typed_error() {
    for version in [0u16, 2, 0xffff] {
        // A body this version understands …
        let mut env = Envelope::new(Message::Ops { ops: vec![], more: false });
        env.version = version;
        let bytes = wire::encode(&env).unwrap();
        assert_eq!(decode(&bytes), Err(WireError::UnsupportedVersion { found: version, supported: WIRE_VERSION }));
    }
    // … or one it does not: a future variant 9 with a map body is still reported by version.
    let future = concat!("a2", "00", "02", "01", "a1", "09", "a1", "00", "63", "6e6577");
    assert_eq!(decode(&unhex(future)), Err(WireError::UnsupportedVersion { found: 2, supported: 1 }));
    // An unknown variant under version 1 is malformed, not unsupported.
    let unknown_variant = concat!("a2", "00", "01", "01", "a1", "09", "a0");
    assert!(is_malformed(&decode(&unhex(unknown_variant))));
    // A version that is not a u16 is malformed.
    let huge_version = concat!("a2", "00", "1a00010000", "01", "01");
    assert!(is_malformed(&decode(&unhex(huge_version))));
}

// ---- malformed input: typed errors, never a panic -------------------------------------------------

#[test]
fn every_truncation_of_a_golden_vector_is_malformed() {
    for (name, _, hex) in goldens() {
        let bytes = unhex(hex);
        for len in 0..bytes.len() {
            let r = decode(&bytes[..len]);
            assert!(is_malformed(&r), "{name} cut at {len}: {r:?}");
        }
    }
}

#[test]
fn trailing_bytes_are_malformed() {
    for (name, _, hex) in goldens() {
        let mut bytes = unhex(hex);
        bytes.push(0x00);
        assert!(is_malformed(&decode(&bytes)), "{name} with a trailing byte");
    }
}

/// Decodes `bytes`; whatever comes out must be a typed result, and a value that decodes must
/// survive a re-encode.
fn check_no_panic(bytes: &[u8]) -> Result<Envelope, WireError> {
    let r = decode(bytes);
    match &r {
        Ok(env) => {
            let again = wire::encode(env).unwrap();
            assert_eq!(decode(&again).as_ref(), Ok(env), "re-encoding {} changed it", hex(bytes));
        }
        Err(WireError::Malformed(_) | WireError::UnsupportedVersion { .. }) => {}
        Err(e) => panic!("{}: unexpected {e:?}", hex(bytes)),
    }
    r
}

#[test]
fn every_one_bit_flip_of_a_golden_vector_decodes_or_is_rejected() {
    let mut rejected = 0;
    let mut total = 0;
    for (_, _, hex) in goldens() {
        let bytes = unhex(hex);
        for i in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            total += 1;
            if check_no_panic(&flipped).is_err() {
                rejected += 1;
            }
        }
    }
    // Most flips land in ids, hashes and payloads (still well-formed); many hit structure.
    assert!(rejected > total / 10, "{rejected} of {total} flips rejected");
}

#[test]
fn pseudo_random_bytes_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x6055_A3E8);
    let goldens: Vec<Vec<u8>> = goldens().iter().map(|(_, _, h)| unhex(h)).collect();
    let mut decoded = 0;
    for i in 0..4_000 {
        let bytes: Vec<u8> = match i % 3 {
            // Plain noise.
            0 => (0..rng.random_range(0..96)).map(|_| rng.random()).collect(),
            // A valid envelope header, then noise: reaches the message decoders.
            1 => {
                let mut b = unhex("a2000101");
                b.extend((0..rng.random_range(0..96)).map(|_| rng.random::<u8>()));
                b
            }
            // A golden vector with a few bytes overwritten.
            _ => {
                let mut b = goldens[rng.random_range(0..goldens.len())].clone();
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(0..b.len());
                    b[at] = rng.random();
                }
                b
            }
        };
        if check_no_panic(&bytes).is_ok() {
            decoded += 1;
        }
    }
    assert!(decoded < 4_000);
}

#[test]
fn deep_nesting_and_huge_lengths_are_malformed_without_allocating() {
    // 100 000 nested arrays: the decoder's depth limit stops it (no stack overflow).
    let mut deep = unhex("a2000101a100a10081");
    deep.extend(std::iter::repeat_n(0x81, 100_000));
    deep.push(0x00);
    assert!(is_malformed(&decode(&deep)));
    // Lengths of 2^64 − 1 for an array, a byte string and a map, with nothing behind them.
    for header in ["9bffffffffffffffff", "5bffffffffffffffff", "bbffffffffffffffff"] {
        let bytes = unhex(&format!("a2000101a100a100{header}"));
        assert!(is_malformed(&decode(&bytes)), "{header}");
    }
    // An op record claiming a 4 GiB payload.
    let bytes = unhex(&format!("a2000101a100a10081a4008250{ID_A}0101800200035affffffff"));
    assert!(is_malformed(&decode(&bytes)));
}

#[test]
fn replica_id_must_be_sixteen_bytes() {
    for len in [0usize, 15, 16, 17] {
        // Ops { ops: [OpRecord { dot: [bytes(len), 1], deps: [], created_ms: 0, payload: b"" }], more: false }
        let mut b = unhex("a2000101a102a20081a4008258");
        b.push(len as u8);
        b.extend(std::iter::repeat_n(0, len));
        b.extend(unhex("01018002000340")); // counter 1, 1 deps: [], 2 created_ms: 0, 3 payload: b""
        b.extend(unhex("01f4"));
        let r = decode(&b);
        if len == 16 {
            // A non-minimal length header (0x58 0x10 for 0x50) is still accepted.
            assert!(r.is_ok(), "{r:?}");
        } else {
            assert!(is_malformed(&r), "{len}-byte replica id: {r:?}");
        }
    }
}

// ---- limits ---------------------------------------------------------------------------------------

#[test]
fn oversize_frames_are_limit_exceeded() {
    let push = unhex(PUSH);
    assert_eq!(wire::decode(&push, 77), Err(WireError::LimitExceeded { what: "frame", value: 78, limit: 77 }));
    assert!(wire::decode(&push, 78).is_ok());
    assert_eq!(wire::frame(&push, 77), Err(WireError::LimitExceeded { what: "frame", value: 78, limit: 77 }));
    // The length prefix alone is enough to refuse: nothing is read or allocated past it.
    let prefix = (DEFAULT_MAX_FRAME as u32 + 1).to_be_bytes();
    assert_eq!(
        wire::unframe(&prefix, DEFAULT_MAX_FRAME),
        Err(WireError::LimitExceeded { what: "frame", value: DEFAULT_MAX_FRAME + 1, limit: DEFAULT_MAX_FRAME })
    );
    assert!(wire::unframe(&[0xff, 0xff, 0xff, 0xff], DEFAULT_MAX_FRAME).is_err());
    // Exactly at the limit is fine; fewer bytes than announced means "wait for more".
    let at_limit = (DEFAULT_MAX_FRAME as u32).to_be_bytes();
    assert_eq!(wire::unframe(&at_limit, DEFAULT_MAX_FRAME), Ok(None));
    assert_eq!(wire::unframe(&[0, 0, 0], DEFAULT_MAX_FRAME), Ok(None));
}

// ---- the compact version vector ------------------------------------------------------------------

fn entry(id: u128, varint: &[u8]) -> Vec<u8> {
    let mut e = ReplicaId::from_u128(id).as_bytes().to_vec();
    e.extend_from_slice(varint);
    e
}

#[test]
fn compact_vv_rejects_unsorted_and_repeated_ids() {
    let unsorted = [entry(2, &[1]), entry(1, &[1])].concat();
    assert_eq!(CompactVv::decode(&unsorted), Err("version vector replicas not strictly increasing"));
    let repeated = [entry(1, &[1]), entry(1, &[2])].concat();
    assert_eq!(CompactVv::decode(&repeated), Err("version vector replicas not strictly increasing"));
    let sorted = [entry(1, &[1]), entry(2, &[1])].concat();
    assert_eq!(CompactVv::decode(&sorted).unwrap().len(), 2);
}

#[test]
fn compact_vv_rejects_zero_counters() {
    assert_eq!(CompactVv::decode(&entry(1, &[0])), Err("zero counter in version vector"));
    // Zero in two bytes is not even in its shortest form.
    assert_eq!(CompactVv::decode(&entry(1, &[0x80, 0x00])), Err("varint not in its shortest form"));
}

#[test]
fn compact_vv_rejects_varints_over_ten_bytes_or_64_bits() {
    // u64::MAX takes exactly ten bytes, the last one 0x01.
    let max = [&[0xff; 9][..], &[0x01]].concat();
    assert_eq!(CompactVv::decode(&entry(1, &max)).unwrap().get(&ReplicaId::from_u128(1)), u64::MAX);
    let mut vv = VClock::new();
    vv.set(A, u64::MAX);
    assert_eq!(CompactVv::encode(&vv), entry(1, &max));
    // A tenth byte above 1 would set bits past 64.
    let over = [&[0xff; 9][..], &[0x02]].concat();
    assert_eq!(CompactVv::decode(&entry(1, &over)), Err("varint overflows 64 bits"));
    // Eleven bytes.
    let eleven = [&[0x80; 10][..], &[0x01]].concat();
    assert_eq!(CompactVv::decode(&entry(1, &eleven)), Err("varint overflows 64 bits"));
}

#[test]
fn compact_vv_rejects_non_minimal_varints() {
    const NOT_SHORTEST: Result<VClock, &str> = Err("varint not in its shortest form");
    // 1 written in two bytes (0x81 0x00) and 5 in three (0x85 0x80 0x00).
    assert_eq!(CompactVv::decode(&entry(1, &[0x81, 0x00])), NOT_SHORTEST);
    assert_eq!(CompactVv::decode(&entry(1, &[0x85, 0x80, 0x00])), NOT_SHORTEST);
    // 127 padded to two bytes; a ten-byte varint whose last byte adds nothing.
    assert_eq!(CompactVv::decode(&entry(1, &[0xff, 0x00])), NOT_SHORTEST);
    assert_eq!(CompactVv::decode(&entry(1, &[&[0xff; 9][..], &[0x00]].concat())), NOT_SHORTEST);
    // In the second entry too.
    assert_eq!(CompactVv::decode(&[entry(1, &[1]), entry(2, &[0x82, 0x00])].concat()), NOT_SHORTEST);
    // The shortest forms at every width boundary are accepted and are what encode writes.
    for (counter, varint) in [
        (127u64, &[0x7f][..]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xff, 0x7f]),
        (16_384, &[0x80, 0x80, 0x01]),
        (1 << 63, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
    ] {
        let mut vv = VClock::new();
        vv.set(A, counter);
        assert_eq!(CompactVv::encode(&vv), entry(1, varint), "{counter}");
        assert_eq!(CompactVv::decode(&entry(1, varint)), Ok(vv), "{counter}");
    }
}

#[test]
fn compact_vv_has_one_encoding_per_vector() {
    // Whatever byte string decodes, encoding the result gives that byte string back: equal
    // vectors are equal bytes, so they hash equally in digests.
    let mut rng = ChaCha8Rng::seed_from_u64(0x5407_7E57);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut bytes = Vec::new();
        for i in 0..rng.random_range(1..4u128) {
            bytes.extend(entry(i * 2 + rng.random_range(0..2), &[]));
            // One to four varint bytes, each "more" bit and value bits at random, biased to the
            // edge cases (0x00, 0x80).
            for j in 0..rng.random_range(1..5) {
                let b: u8 = match rng.random_range(0..4) {
                    0 => 0x00,
                    1 => 0x80,
                    _ => rng.random(),
                };
                bytes.push(if j == 0 { b | 0x01 } else { b });
            }
        }
        if let Ok(vv) = CompactVv::decode(&bytes) {
            accepted += 1;
            assert_eq!(CompactVv::encode(&vv), bytes, "{} decodes but is not canonical", hex(&bytes));
        }
    }
    assert!(accepted > 1_000, "too few accepted inputs to mean anything: {accepted}");
}

#[test]
fn compact_vv_rejects_truncation() {
    assert_eq!(CompactVv::decode(&[0u8; 15]), Err("version vector entry shorter than a replica id"));
    assert_eq!(CompactVv::decode(&entry(1, &[])), Err("truncated varint in version vector"));
    assert_eq!(CompactVv::decode(&entry(1, &[0x81])), Err("truncated varint in version vector"));
    assert_eq!(CompactVv::decode(&[]).unwrap(), VClock::new());
}

#[test]
fn a_bad_version_vector_makes_the_frame_malformed() {
    let bad = [entry(2, &[1]), entry(1, &[1])].concat();
    let mut bytes = unhex("a2000101a101a3001b0000000000000000015822");
    bytes.extend(&bad);
    bytes.extend(unhex("02f4"));
    let r = decode(&bytes);
    assert!(matches!(&r, Err(WireError::Malformed(m)) if m.contains("strictly increasing")), "{r:?}");
    // A non-minimal varint, in a digest and in a snapshot's first chunk.
    let mut bytes = unhex("a2000101a101a3001b0000000000000000015812");
    bytes.extend(entry(1, &[0x85, 0x00]));
    bytes.extend(unhex("02f4"));
    let r = decode(&bytes);
    assert!(matches!(&r, Err(WireError::Malformed(m)) if m.contains("shortest form")), "{r:?}");
    let mut bytes = unhex("a2000101a103a100a50007010002f5035812");
    bytes.extend(entry(1, &[0x85, 0x00]));
    bytes.extend(unhex("0440"));
    let r = decode(&bytes);
    assert!(matches!(&r, Err(WireError::Malformed(m)) if m.contains("shortest form")), "{r:?}");
}

#[test]
fn compact_vv_round_trips_and_sizes() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..500 {
        let mut vv = VClock::new();
        for _ in 0..rng.random_range(0..8) {
            let counter = match rng.random_range(0..3) {
                0 => rng.random_range(1..128),
                1 => rng.random_range(128..16_384),
                _ => rng.random_range(1..=u64::MAX),
            };
            vv.set(ReplicaId::from_u128(rng.random()), counter);
        }
        let bytes = CompactVv::encode(&vv);
        assert_eq!(CompactVv::decode(&bytes).unwrap(), vv);
        let expected: usize = vv.iter().map(|(_, c)| 16 + (64 - c.leading_zeros() as usize).div_ceil(7)).sum();
        assert_eq!(bytes.len(), expected);
    }
}

// ---- sizes ------------------------------------------------------------------------------------------

/// The encoded size of the messages `outputs` sends.
fn sent_sizes(outputs: &[Output]) -> Vec<(Message, usize)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { msg, .. } => Some((msg.clone(), wire::encode(&Envelope::new(msg.clone())).unwrap().len())),
            _ => None,
        })
        .collect()
}

#[test]
fn one_small_op_push_is_at_most_100_bytes() {
    let mut a = Replica::<Cart>::new(A, Config::default(), 1);
    a.set_peer(B, PeerStatus::Alive);
    let (_, outputs) = a.local_update(T0, |cart| cart.update("milk".to_string(), |q| q.inc(A, 1))).unwrap();
    let sent = sent_sizes(&outputs);
    assert_eq!(sent.len(), 1);
    let (msg, size) = &sent[0];
    assert!(matches!(msg, Message::Push { ops } if ops.len() == 1));
    println!("one-op push: {size} bytes + 4-byte length prefix");
    assert_eq!(*size, 78, "the golden PUSH vector is this very message");
    assert_eq!(wire::encode(&Envelope::new(msg.clone())).unwrap(), unhex(PUSH));
    assert!(*size <= 100);
}

#[test]
fn idle_digest_is_21_bytes() {
    let config = Config { anti_entropy_interval_ms: 100, ..Config::default() };
    let mut a = Replica::<Cart>::new(A, config.clone(), 1);
    let mut b = Replica::<Cart>::new(B, config, 2);
    a.set_peer(B, PeerStatus::Alive);
    b.set_peer(A, PeerStatus::Alive);
    // One whole digest first (a fresh replica has news); then the rounds are idle.
    let _ = a.sync_now(0);
    let _ = a.handle_tick(0);
    let mut sizes = Vec::new();
    let mut now = 0;
    for _ in 0..3 {
        now = a.next_deadline().unwrap().max(now + 1);
        let outputs = a.handle_tick(now);
        for (msg, size) in sent_sizes(&outputs) {
            assert!(matches!(msg, Message::Digest { vv: None, .. }), "{msg:?}");
            assert!(b.handle_message(now, A, msg).is_empty(), "in sync: no answer");
            sizes.push(size);
        }
    }
    println!("idle digest: {sizes:?} bytes + 4-byte length prefix");
    assert_eq!(sizes, vec![21; 3]);
}

#[test]
fn digest_sizes_at_2_and_1000_replicas() {
    let digest = |vv: &VClock, whole: bool| {
        let hash = wire::fnv1a(&CompactVv::encode(vv));
        let msg = Message::Digest { hash, vv: whole.then(|| CompactVv(vv.clone())), reply: true };
        wire::encode(&Envelope::new(msg)).unwrap().len()
    };
    let two = vv_ab();
    let mut big = VClock::new();
    for i in 0..1000u128 {
        big.set(ReplicaId::from_u128(i + 10), 1 + i as u64);
    }
    let sizes = [digest(&two, true), digest(&big, true), digest(&two, false), digest(&big, false)];
    println!(
        "whole digest: 2 entries {} bytes, 1000 entries {} bytes; idle: {} and {} bytes",
        sizes[0], sizes[1], sizes[2], sizes[3]
    );
    // 20 bytes of envelope, hash and flags, the byte-string header (1, 2 or 3 bytes here), then
    // 16 bytes of id and 1 or 2 of counter per entry (counters 1..=127 take one byte).
    assert_eq!(sizes[0], unhex(DIGEST_FULL).len());
    assert_eq!(sizes[0], 20 + 2 + 35);
    assert_eq!(sizes[1], 20 + 3 + 1000 * 16 + 127 + 873 * 2);
    assert_eq!(sizes[1], 17_896);
    // Idle digests do not grow with the number of replicas.
    assert_eq!((sizes[2], sizes[3]), (21, 21));
}
