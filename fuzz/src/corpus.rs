//! The seed corpus: small, meaningful inputs for every target, made from real encodings and
//! from scripts written out in the byte format `arbitrary` reads.
//!
//! `cargo test -p gossamer-sync --test fuzz_corpus -- --ignored write_seed_corpus` writes them
//! to `fuzz/corpus/<target>/seed-*`; the fuzzer adds its own finds beside them.

/// One seed: the target, a file name (without the `seed-` prefix) and the bytes.
pub type Seed = (&'static str, String, Vec<u8>);

/// The seeds of one target: file names (without the `seed-` prefix) and bytes.
pub(crate) type Seeds = Vec<(String, Vec<u8>)>;

/// Every seed of every target.
pub fn seeds() -> Vec<Seed> {
    let mut all = Vec::new();
    let targets: [(&'static str, Seeds); 5] = [
        ("wire_decode", super::wire::seeds()),
        ("protocol_messages", super::protocol::seeds()),
        ("crdt_merge", super::crdt_merge::seeds()),
        ("crdt_apply", super::crdt_apply::seeds()),
        ("store_recovery", super::store::seeds()),
    ];
    for (target, seeds) in targets {
        all.extend(seeds.into_iter().map(|(name, bytes)| (target, name, bytes)));
    }
    all
}

/// Writes values in the byte format [`arbitrary::Unstructured`] reads them from, so that a
/// script written as Rust values becomes a fuzz input that parses back to it.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    /// The variant `index` of an enum of `count` variants, as `#[derive(Arbitrary)]` reads it:
    /// a little-endian `u32` scaled by `count` (multiply, then shift by 32).
    pub(crate) fn variant(&mut self, index: u32, count: u32) -> &mut Self {
        assert!(index < count, "variant {index} of {count}");
        let v = (u64::from(index) << 32).div_ceil(u64::from(count));
        self.0.extend_from_slice(&(v as u32).to_le_bytes());
        self
    }

    /// Any value that can be written.
    pub(crate) fn put<T: Emit + ?Sized>(&mut self, value: &T) -> &mut Self {
        value.emit(self);
        self
    }

    /// The bytes written.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

/// A value [`Writer`] can write in `arbitrary`'s format.
pub(crate) trait Emit {
    fn emit(&self, w: &mut Writer);
}

macro_rules! emit_int {
    ($($t:ty),*) => {$(
        impl Emit for $t {
            fn emit(&self, w: &mut Writer) {
                w.0.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
emit_int!(u8, i8, u16, u32, u64);

impl Emit for bool {
    fn emit(&self, w: &mut Writer) {
        w.0.push(u8::from(*self));
    }
}

/// A collection is a "keep going" flag before each element and a final false flag.
impl<T: Emit> Emit for [T] {
    fn emit(&self, w: &mut Writer) {
        for x in self {
            w.put(&true).put(x);
        }
        w.put(&false);
    }
}

impl<T: Emit> Emit for Vec<T> {
    fn emit(&self, w: &mut Writer) {
        self.as_slice().emit(w);
    }
}

impl<T: Emit> Emit for Option<T> {
    fn emit(&self, w: &mut Writer) {
        match self {
            Some(x) => w.put(&true).put(x),
            None => w.put(&false),
        };
    }
}

impl<A: Emit, B: Emit> Emit for (A, B) {
    fn emit(&self, w: &mut Writer) {
        w.put(&self.0).put(&self.1);
    }
}

/// Deterministic filler bytes (splitmix64), for inputs where any bytes make a meaningful
/// history: the seeds stay the same from run to run.
pub(crate) fn filler(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}
