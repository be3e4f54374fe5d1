//! The CRDT types under test — every type of `gossamer-crdt`, and two nestings of `OrMap` —
//! each with a genuine change (through its mutators) and an arbitrary op (any field values),
//! plus the history generator and state comparisons the CRDT targets share.

use std::fmt::Debug;

use arbitrary::{Result, Unstructured};
use gossamer_crdt::{
    CausalCounter, CmRDT, CounterOp, CvRDT, Dot, GCounter, GCounterOp, Hlc, LwwOp, LwwRegister, MvOp, MvRegister,
    OrMap, OrMapOp, OrSet, OrSetOp, PNCounter, PNCounterOp, ReplicaId,
};
use gossamer_sync::wire::codec;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How many replicas a history runs on.
pub(crate) const REPLICAS: usize = 3;

/// Most steps one history takes: enough for every interleaving that matters, few enough that
/// one input runs in well under a millisecond.
const MAX_STEPS: usize = 48;

/// How many types [`with_subject!`] dispatches over.
pub(crate) const SUBJECTS: u8 = 8;

/// Replica ids whose sort order differs from the order replicas first meet, so the kernel's
/// replica tables are exercised out of canonical order; the fourth never makes a change
/// itself but appears in arbitrary dots.
pub(crate) fn replica(i: usize) -> ReplicaId {
    const IDS: [u128; 4] = [0xC0 << 120 | 3, 0x10 << 120 | 1, 0x80 << 120 | 2, 0x40 << 120 | 4];
    ReplicaId::from_u128(IDS[i % IDS.len()])
}

/// A counter for an arbitrary dot: mostly small, sometimes 0 or at the top of the range.
pub(crate) fn arbitrary_counter(u: &mut Unstructured<'_>) -> Result<u64> {
    Ok(match u.int_in_range(0u8..=11)? {
        0 => 0,
        10 => u64::MAX - u64::from(u.int_in_range(0u8..=2)?),
        11 => u.arbitrary()?,
        n => u64::from(n),
    })
}

/// A dot of one of the four replicas.
pub(crate) fn arbitrary_dot(u: &mut Unstructured<'_>) -> Result<Dot> {
    Ok(Dot::new(replica(u.choose_index(4)?), arbitrary_counter(u)?))
}

fn arbitrary_dots(u: &mut Unstructured<'_>) -> Result<Vec<Dot>> {
    (0..u.int_in_range(0u8..=3)?).map(|_| arbitrary_dot(u)).collect()
}

/// An amount to count by: mostly small, sometimes one that saturates.
fn amount(u: &mut Unstructured<'_>) -> Result<u64> {
    Ok(match u.int_in_range(0u8..=7)? {
        7 => u64::MAX,
        n => u64::from(n),
    })
}

/// A signed change of a counter: mostly small, sometimes extreme.
fn delta(u: &mut Unstructured<'_>) -> Result<i64> {
    Ok(match u.int_in_range(0u8..=9)? {
        8 => i64::MAX,
        9 => i64::MIN,
        n => i64::from(n) - 4,
    })
}

/// A small element or key: few values, so changes collide.
fn small(u: &mut Unstructured<'_>) -> Result<u8> {
    u.int_in_range(0u8..=3)
}

/// A type under test.
pub(crate) trait Subject:
    CvRDT
    + CmRDT<Op: Clone + Debug + PartialEq + Serialize + DeserializeOwned>
    + Clone
    + Default
    + PartialEq
    + Debug
    + Serialize
    + DeserializeOwned
{
    /// The name in messages and corpus file names.
    const NAME: &'static str;

    /// A change by `replica` through the type's mutators: applied here, and its op returned.
    fn mutate(&mut self, replica: ReplicaId, u: &mut Unstructured<'_>) -> Result<Self::Op>;

    /// An op with arbitrary fields: dots that may be unseen, repeated, 0 or huge.
    fn arbitrary_op(u: &mut Unstructured<'_>) -> Result<Self::Op>;
}

impl Subject for GCounter {
    const NAME: &'static str = "gcounter";

    fn mutate(&mut self, replica: ReplicaId, u: &mut Unstructured<'_>) -> Result<Self::Op> {
        Ok(self.inc(replica, amount(u)?))
    }

    fn arbitrary_op(u: &mut Unstructured<'_>) -> Result<Self::Op> {
        Ok(GCounterOp { dot: arbitrary_dot(u)?, count: arbitrary_counter(u)? })
    }
}

impl Subject for PNCounter {
    const NAME: &'static str = "pncounter";

    fn mutate(&mut self, replica: ReplicaId, u: &mut Unstructured<'_>) -> Result<Self::Op> {
        let n = amount(u)?;
        Ok(if u.arbitrary()? { self.inc(replica, n) } else { self.dec(replica, n) })
    }

    fn arbitrary_op(u: &mut Unstructured<'_>) -> Result<Self::Op> {
        let op = GCounterOp { dot: arbitrary_dot(u)?, count: arbitrary_counter(u)? };
        Ok(if u.arbitrary()? { PNCounterOp::Inc(op) } else { PNCounterOp::Dec(op) })
    }
}

impl Subject for CausalCounter {
    const NAME: &'static str = "ccounter";

    fn mutate(&mut self, replica: ReplicaId, u: &mut Unstructured<'_>) -> Result<Self::Op> {
        Ok(self.add(replica, delta(u)?))
    }

    fn arbitrary_op(u: &mut Unstructured<'_>) -> Result<Self::Op> {
        Ok(CounterOp { dot: arbitrary_dot(u)?, delta: delta(u)? })
    }
}

/// A timestamp from a tiny range, so that writes tie and the tie-breaks are exercised.
fn hlc(u: &mut Unstructured<'_>) -> Result<Hlc> {
    Ok(Hlc::new(u64::from(u.int_in_range(0u8..=3)?), u32::from(u.int_in_range(0u8..=1)?)))
}

impl Subject for LwwRegister<u8> {
    const NAME: &'static str = "lww";

    fn mutate(&mut self, replica: ReplicaId, u: &mut Unstructured<'_>) -> Result<Self::Op> {
        let ts = hlc(u)?;
        Ok(self.set(replica, ts, small(u)?))
    }

    fn arbitrary_op(u: &mut Unstructured<'_>) -> Result<Self::Op> {
        Ok(LwwOp { dot: arbitrary_dot(u)?, ts: hlc(u)?, value: small(u)?, replaces: arbitrary_dots(u)? })
    }
}

impl Subject for MvRegister<u8> {
    const NAME: &'static str = "mvreg";

    fn mutate(&mut self, replica: ReplicaId, u: &mut Unstructured<'_>) -> Result<Self::Op> {
        Ok(self.write(replica, small(u)?))
    }

    fn arbitrary_op(u: &mut Unstructured<'_>) -> Result<Self::Op> {
        Ok(MvOp { dot: arbitrary_dot(u)?, value: small(u)?, replaces: arbitrary_dots(u)? })
    }
}

impl Subject for OrSet<u8> {
    const NAME: &'static str = "orset";

    fn mutate(&mut self, replica: ReplicaId, u: &mut Unstructured<'_>) -> Result<Self::Op> {
        let elem = small(u)?;
        Ok(if u.ratio(2, 3)? { self.add(replica, elem) } else { self.remove(&elem) })
    }

    fn arbitrary_op(u: &mut Unstructured<'_>) -> Result<Self::Op> {
        arbitrary_set_op(u)
    }
}

fn arbitrary_set_op(u: &mut Unstructured<'_>) -> Result<OrSetOp<u8>> {
    Ok(if u.arbitrary()? {
        OrSetOp::Add { dot: arbitrary_dot(u)?, elem: small(u)?, replaces: arbitrary_dots(u)? }
    } else {
        OrSetOp::Remove { elem: small(u)?, seen: arbitrary_dots(u)? }
    })
}

impl Subject for OrMap<u8, CausalCounter> {
    const NAME: &'static str = "ormap_counter";

    fn mutate(&mut self, replica: ReplicaId, u: &mut Unstructured<'_>) -> Result<Self::Op> {
        let key = small(u)?;
        if u.ratio(3, 4)? {
            let d = delta(u)?;
            Ok(self.update(key, |c| c.add(replica, d)))
        } else {
            Ok(self.remove(&key))
        }
    }

    fn arbitrary_op(u: &mut Unstructured<'_>) -> Result<Self::Op> {
        let key = small(u)?;
        Ok(if u.arbitrary()? {
            OrMapOp::Update { key, op: CounterOp { dot: arbitrary_dot(u)?, delta: delta(u)? } }
        } else {
            OrMapOp::Remove { key, seen: arbitrary_dots(u)? }
        })
    }
}

impl Subject for OrMap<u8, OrSet<u8>> {
    const NAME: &'static str = "ormap_set";

    fn mutate(&mut self, replica: ReplicaId, u: &mut Unstructured<'_>) -> Result<Self::Op> {
        let key = small(u)?;
        let elem = small(u)?;
        Ok(match u.int_in_range(0u8..=3)? {
            0 | 1 => self.update(key, |s| s.add(replica, elem)),
            2 => self.update(key, |s| s.remove(&elem)),
            _ => self.remove(&key),
        })
    }

    fn arbitrary_op(u: &mut Unstructured<'_>) -> Result<Self::Op> {
        let key = small(u)?;
        Ok(if u.arbitrary()? {
            OrMapOp::Update { key, op: arbitrary_set_op(u)? }
        } else {
            OrMapOp::Remove { key, seen: arbitrary_dots(u)? }
        })
    }
}

/// Calls the generic function `$f::<T>($args)` for the type numbered `$index % SUBJECTS`.
macro_rules! with_subject {
    ($index:expr, $f:ident($($arg:expr),*)) => {{
        use gossamer_crdt::{CausalCounter, GCounter, LwwRegister, MvRegister, OrMap, OrSet, PNCounter};
        match $index % super::subjects::SUBJECTS {
            0 => $f::<GCounter>($($arg),*),
            1 => $f::<PNCounter>($($arg),*),
            2 => $f::<CausalCounter>($($arg),*),
            3 => $f::<LwwRegister<u8>>($($arg),*),
            4 => $f::<MvRegister<u8>>($($arg),*),
            5 => $f::<OrSet<u8>>($($arg),*),
            6 => $f::<OrMap<u8, CausalCounter>>($($arg),*),
            _ => $f::<OrMap<u8, OrSet<u8>>>($($arg),*),
        }
    }};
}
pub(crate) use with_subject;

/// Replicas that made changes, merged each other's states and applied each other's ops.
pub(crate) struct History<T: Subject> {
    /// The replicas' final states.
    pub(crate) states: Vec<T>,
    /// Every op made, in the order made: a causal order.
    pub(crate) ops: Vec<T::Op>,
}

impl<T: Subject> History<T> {
    /// Reads up to [`MAX_STEPS`] steps from `u`; stops early, keeping what it has, when the
    /// input runs out.
    pub(crate) fn read(u: &mut Unstructured<'_>) -> Self {
        let mut h = History { states: vec![T::default(); REPLICAS], ops: Vec::new() };
        for _ in 0..MAX_STEPS {
            if u.is_empty() || h.step(u).is_err() {
                break;
            }
        }
        h
    }

    fn step(&mut self, u: &mut Unstructured<'_>) -> Result<()> {
        let r = u.choose_index(REPLICAS)?;
        match u.int_in_range(0u8..=7)? {
            0..=3 => {
                let op = self.states[r].mutate(replica(r), u)?;
                self.ops.push(op);
            }
            4 | 5 => {
                let from = self.states[u.choose_index(REPLICAS)?].clone();
                self.states[r].merge(&from);
            }
            _ if !self.ops.is_empty() => {
                // An op delivered by the op-based path, when it is causally ready.
                let op = &self.ops[u.choose_index(self.ops.len())?];
                if self.states[r].validate(op).is_ok() {
                    self.states[r].apply(op.clone());
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The canonical encoding of a state or op (the codec the protocol ships them with).
pub(crate) fn bytes<T: Serialize + Debug>(x: &T) -> Vec<u8> {
    codec::to_vec(x).unwrap_or_else(|e| panic!("cannot encode {x:?}: {e}"))
}

/// `x ⊔ y`.
pub(crate) fn join<T: Subject>(x: &T, y: &T) -> T {
    let mut z = x.clone();
    z.merge(y);
    z
}

/// Asserts that two states are equal, by `==` and by their canonical encodings.
pub(crate) fn same<T: Subject>(law: &str, x: &T, y: &T) {
    assert!(x == y, "{}: {law}: states differ\n left: {x:?}\nright: {y:?}", T::NAME);
    assert!(bytes(x) == bytes(y), "{}: {law}: equal states encode differently\n left: {x:?}\nright: {y:?}", T::NAME);
}

/// Asserts that a state survives its own encoding: it decodes (so a replica can ship it as a
/// snapshot) to an equal state.
pub(crate) fn round_trip<T: Subject>(what: &str, x: &T) {
    let encoded = bytes(x);
    match codec::from_slice::<T>(&encoded) {
        Ok(back) => same(&format!("decode(encode({what}))"), &back, x),
        Err(e) => panic!("{}: {what} does not decode from its own encoding: {e}\nstate: {x:?}", T::NAME),
    }
}
