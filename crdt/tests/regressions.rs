//! Shrunk counterexamples found by the law suite, kept as named tests.

use gossamer_crdt::{CausalContext, Dot, ReplicaId};

/// `context_merge_is_union` shrank to this: merging a context whose prefix reached exactly
/// the first dot of our cloud dropped that dot instead of folding it into the prefix.
#[test]
fn context_merge_folds_cloud_dot_adjacent_to_new_prefix() {
    let r = ReplicaId::from_u128(1);
    let mut x = CausalContext::new();
    x.insert(Dot::new(r, 2));
    let mut y = CausalContext::new();
    y.insert(Dot::new(r, 1));
    x.merge(&y);
    assert!(x.contains(&Dot::new(r, 1)) && x.contains(&Dot::new(r, 2)));
    assert!(x.is_compact());
    assert_eq!(x.vclock().get(&r), 2);
}
