//! The trust list: which node ids may connect.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use super::NodeId;

/// The set of peers this node talks to, pinned by [`NodeId`] (as SSH `known_hosts` or
/// Syncthing device ids pin keys, not names).
///
/// Every handshake, in both directions, checks the peer's id against this list at the moment
/// of the handshake: an unknown peer fails the handshake. The list is shared: clones see the
/// same set, so the node can [`add`](Self::add) a peer at run time (a user accepted its
/// ticket) and the endpoint admits it on its next connection attempt, without a restart.
///
/// Removing a peer stops *new* connections with it; connections already established stay
/// open until the owner of the connection closes them (the node driver should do so).
///
/// ```
/// use gossamer_sync::net::{NodeId, TrustList};
///
/// let alice = NodeId::from_bytes([1; 20]);
/// let trust = TrustList::new();
/// let shared = trust.clone();
/// assert!(trust.add(alice));
/// assert!(shared.contains(&alice));
/// assert_eq!(shared.iter().collect::<Vec<_>>(), vec![alice]);
/// assert!(shared.remove(&alice));
/// assert!(trust.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct TrustList {
    // A poisoned lock only means another thread panicked while holding it; the set itself is
    // always in a consistent state (every operation is a single set call), so we keep using it.
    inner: Arc<RwLock<BTreeSet<NodeId>>>,
}

impl TrustList {
    /// An empty list: nobody may connect.
    ///
    /// ```
    /// use gossamer_sync::net::{NodeId, TrustList};
    ///
    /// let trust = TrustList::new();
    /// assert!(trust.is_empty());
    /// assert!(!trust.contains(&NodeId::from_bytes([1; 20])));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `node`. Returns whether it was newly added.
    ///
    /// ```
    /// use gossamer_sync::net::{NodeId, TrustList};
    ///
    /// let bob = NodeId::from_bytes([2; 20]);
    /// let trust = TrustList::new();
    /// let endpoints_copy = trust.clone();
    /// assert!(trust.add(bob));
    /// assert!(!trust.add(bob)); // already there
    /// assert!(endpoints_copy.contains(&bob)); // every clone sees it at once
    /// ```
    pub fn add(&self, node: NodeId) -> bool {
        let added = self.inner.write().unwrap_or_else(PoisonError::into_inner).insert(node);
        if added {
            tracing::info!(%node, "peer trusted");
        }
        added
    }

    /// Stops trusting `node`. Returns whether it was in the list.
    ///
    /// ```
    /// use gossamer_sync::net::{NodeId, TrustList};
    ///
    /// let bob = NodeId::from_bytes([2; 20]);
    /// let trust: TrustList = [bob].into_iter().collect();
    /// assert!(trust.remove(&bob));
    /// assert!(!trust.remove(&bob)); // no longer there
    /// assert!(!trust.contains(&bob));
    /// ```
    pub fn remove(&self, node: &NodeId) -> bool {
        let removed = self.inner.write().unwrap_or_else(PoisonError::into_inner).remove(node);
        if removed {
            tracing::info!(%node, "peer no longer trusted");
        }
        removed
    }

    /// Whether `node` is trusted.
    ///
    /// ```
    /// use gossamer_sync::net::{NodeId, TrustList};
    ///
    /// let (alice, mallory) = (NodeId::from_bytes([1; 20]), NodeId::from_bytes([9; 20]));
    /// let trust: TrustList = [alice].into_iter().collect();
    /// assert!(trust.contains(&alice));
    /// assert!(!trust.contains(&mallory));
    /// ```
    pub fn contains(&self, node: &NodeId) -> bool {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).contains(node)
    }

    /// The number of trusted nodes.
    ///
    /// ```
    /// use gossamer_sync::net::{NodeId, TrustList};
    ///
    /// let trust = TrustList::new();
    /// trust.add(NodeId::from_bytes([1; 20]));
    /// trust.add(NodeId::from_bytes([2; 20]));
    /// trust.add(NodeId::from_bytes([1; 20])); // a node is counted once
    /// assert_eq!(trust.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no node is trusted.
    ///
    /// ```
    /// use gossamer_sync::net::{NodeId, TrustList};
    ///
    /// let alice = NodeId::from_bytes([1; 20]);
    /// let trust = TrustList::new();
    /// assert!(trust.is_empty());
    /// trust.add(alice);
    /// assert!(!trust.is_empty());
    /// trust.remove(&alice);
    /// assert!(trust.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The trusted ids in order, as a snapshot: changes made while iterating are not seen.
    ///
    /// ```
    /// use gossamer_sync::net::{NodeId, TrustList};
    ///
    /// let (a, b, c) = (NodeId::from_bytes([1; 20]), NodeId::from_bytes([2; 20]), NodeId::from_bytes([3; 20]));
    /// let trust: TrustList = [c, a].into_iter().collect();
    /// let mut seen = Vec::new();
    /// for node in trust.iter() {
    ///     trust.add(b); // does not deadlock, and is not seen by this iteration
    ///     seen.push(node);
    /// }
    /// assert_eq!(seen, vec![a, c]); // in order
    /// assert_eq!(trust.len(), 3);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = NodeId> + use<> {
        self.snapshot().into_iter()
    }

    /// A copy of the current set.
    ///
    /// ```
    /// use gossamer_sync::net::{NodeId, TrustList};
    ///
    /// let (a, b) = (NodeId::from_bytes([1; 20]), NodeId::from_bytes([2; 20]));
    /// let trust: TrustList = [a].into_iter().collect();
    /// let before = trust.snapshot();
    /// trust.add(b);
    /// assert_eq!(before.into_iter().collect::<Vec<_>>(), vec![a]); // a copy: unchanged
    /// assert!(trust.snapshot().contains(&b));
    /// ```
    pub fn snapshot(&self) -> BTreeSet<NodeId> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl FromIterator<NodeId> for TrustList {
    fn from_iter<I: IntoIterator<Item = NodeId>>(iter: I) -> Self {
        Self { inner: Arc::new(RwLock::new(iter.into_iter().collect())) }
    }
}

impl fmt::Debug for TrustList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_set() {
        let a = NodeId::from_bytes([1; 20]);
        let b = NodeId::from_bytes([2; 20]);
        let list: TrustList = [b].into_iter().collect();
        let clone = list.clone();
        assert!(clone.add(a));
        assert!(!list.add(a));
        assert_eq!(list.len(), 2);
        assert_eq!(list.iter().collect::<Vec<_>>(), vec![a, b]);
        assert!(list.remove(&b));
        assert!(!clone.remove(&b));
        assert!(!clone.contains(&b));
        assert_eq!(clone.snapshot().len(), 1);
    }
}
