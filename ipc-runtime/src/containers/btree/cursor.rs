//! Walking a tree in order, from both ends, without parent pointers: a cursor is a gap between
//! two entries, held as the path from the root to it (the edge taken at each level).
//!
//! Every walk is bounded: a cursor moves at most `height <= MAX_HEIGHT` levels per step, node
//! counts are checked against `CAP` at each read, each child pointer resolves (bounds-checked,
//! and under the trust rule when the tree is in another process's memory), and an iterator
//! yields at most the tree's length. A tree that another process corrupts gives wrong entries
//! or a clear panic, never an out-of-bounds read or an endless loop.

use core::borrow::Borrow;
use core::cmp::Ordering;
use core::mem::MaybeUninit;
use core::ops::Bound;

use crate::ptr::RelPtr;

use super::node::{MAX_HEIGHT, NodePtr, Own, edge, key, len, node_layout};

/// How a tree's nodes are reached: from which root, at which height, and whether for writing
/// (the owner's `&mut` walks) or reading (anyone's `&` walks, checked).
#[derive(Clone, Copy)]
pub(super) struct Tree {
    pub(super) own: Own,
    pub(super) root: RelPtr,
    /// Where the root pointer is stored (for the trust rule).
    pub(super) root_holder: *const u8,
    pub(super) height: usize,
    pub(super) write: bool,
}

impl Tree {
    #[inline(always)]
    fn resolve<K, V>(&self, p: RelPtr, holder: *const u8, level: usize) -> NodePtr<K, V> {
        let is_leaf = level == self.height;
        if self.write {
            return self.own.write(p, is_leaf);
        }
        let (size, align) = node_layout::<K, V>(is_leaf);
        match self.own.read(p, holder, size, align) {
            Ok(n) => n,
            Err(e) => super::fail(e),
        }
    }

    #[inline(always)]
    pub(super) fn root<K, V>(&self) -> NodePtr<K, V> {
        self.resolve(self.root, self.root_holder, 0)
    }

    /// Child `i` of node `n` at `level - 1`.
    ///
    /// # Safety
    /// `n` is an internal node (of this tree) and `i <= CAP`.
    #[inline(always)]
    pub(super) unsafe fn child<K, V>(
        &self,
        n: NodePtr<K, V>,
        i: usize,
        level: usize,
    ) -> NodePtr<K, V> {
        // SAFETY: the caller's promise.
        let at = unsafe { edge(n, i) };
        // SAFETY: the edge lies inside the node, which resolved as a whole.
        let p = unsafe { at.read() };
        self.resolve(p, at.cast_const().cast(), level)
    }
}

/// The checked key count of node `n`, or a clear panic.
///
/// # Safety
/// `n` points to a node.
#[inline(always)]
pub(super) unsafe fn checked_len<K, V>(n: NodePtr<K, V>) -> usize {
    // SAFETY: the caller's promise.
    match unsafe { len(n) } {
        Ok(l) => l,
        Err(e) => super::fail(e),
    }
}

/// A gap between entries: at each level the node and the edge taken (at the leaf level, the
/// index of the entry right after the gap).
pub(super) struct Cursor<K, V> {
    nodes: [MaybeUninit<NodePtr<K, V>>; MAX_HEIGHT + 1],
    idx: [u8; MAX_HEIGHT + 1],
}

impl<K, V> Clone for Cursor<K, V> {
    fn clone(&self) -> Self {
        Cursor { nodes: self.nodes, idx: self.idx }
    }
}

/// Identity of an entry: its node's address and its index there.
pub(super) type Item = (usize, usize);

/// Which gap to seek at one side of a bound.
#[derive(Clone, Copy)]
pub(super) enum Seek<'q, Q: ?Sized> {
    /// Before the first entry.
    First,
    /// After the last entry.
    Last,
    /// Before the first entry whose key is not less than `q`.
    Before(&'q Q),
    /// After the last entry whose key is not greater than `q`.
    After(&'q Q),
}

impl<'q, Q: Ord + ?Sized> Seek<'q, Q> {
    /// The edge to take in node `n` of `l` keys.
    #[inline]
    pub(super) fn index<K: Borrow<Q>, V>(&self, n: NodePtr<K, V>, l: usize) -> usize {
        // Keys below `l` are initialised (or, in a peer's corrupt tree, mapped bytes that
        // passed the receive check): `n` resolved as a whole node and `l <= CAP`.
        let cmp = |i: usize, q: &Q| {
            // SAFETY: as above, `i < l`.
            unsafe { (*key(n, i)).borrow() }.cmp(q)
        };
        match *self {
            Seek::First => 0,
            Seek::Last => l,
            Seek::Before(q) => (0..l).find(|&i| cmp(i, q) != Ordering::Less).unwrap_or(l),
            Seek::After(q) => (0..l).find(|&i| cmp(i, q) == Ordering::Greater).unwrap_or(l),
        }
    }

    pub(super) fn lower(b: Bound<&'q Q>) -> Self {
        match b {
            Bound::Included(q) => Seek::Before(q),
            Bound::Excluded(q) => Seek::After(q),
            Bound::Unbounded => Seek::First,
        }
    }

    pub(super) fn upper(b: Bound<&'q Q>) -> Self {
        match b {
            Bound::Included(q) => Seek::After(q),
            Bound::Excluded(q) => Seek::Before(q),
            Bound::Unbounded => Seek::Last,
        }
    }
}

impl<K, V> Cursor<K, V> {
    #[inline(always)]
    fn node(&self, level: usize) -> NodePtr<K, V> {
        // SAFETY: levels `0..=height` are set by `seek` before any read.
        unsafe { self.nodes[level].assume_init() }
    }

    fn blank() -> Self {
        Cursor {
            nodes: [const { MaybeUninit::uninit() }; MAX_HEIGHT + 1],
            idx: [0; MAX_HEIGHT + 1],
        }
    }

    /// The two gaps that `lower(node, len)` and `upper(node, len)` (the edge to take in each
    /// node) lead to, in the (non-empty) tree `t`, walked together while they share a path.
    pub(super) fn seek_pair(
        t: &Tree,
        lower: impl Fn(NodePtr<K, V>, usize) -> usize,
        upper: impl Fn(NodePtr<K, V>, usize) -> usize,
    ) -> (Self, Self) {
        let (mut front, mut back) = (Cursor::blank(), Cursor::blank());
        let mut nf = t.root::<K, V>();
        let mut nb = nf;
        for level in 0..=t.height {
            // SAFETY: `nf` resolved as a node of this tree at `level`.
            let lf = unsafe { checked_len(nf) };
            let lb = if nb == nf {
                lf
            } else {
                // SAFETY: as for `nf`.
                unsafe { checked_len(nb) }
            };
            let (i, j) = (lower(nf, lf).min(lf), upper(nb, lb).min(lb));
            front.nodes[level] = MaybeUninit::new(nf);
            front.idx[level] = i as u8;
            back.nodes[level] = MaybeUninit::new(nb);
            back.idx[level] = j as u8;
            if level < t.height {
                let same = nb == nf && i == j;
                // SAFETY: an internal node (above the leaves); `i <= lf <= CAP`.
                nf = unsafe { t.child(nf, i, level + 1) };
                nb = if same {
                    nf
                } else {
                    // SAFETY: as above, `j <= lb <= CAP`.
                    unsafe { t.child(nb, j, level + 1) }
                };
            }
        }
        (front, back)
    }

    /// The entry right after the gap: its node, index and level.
    #[inline]
    pub(super) fn peek_next(&self, t: &Tree) -> Option<(NodePtr<K, V>, usize, usize)> {
        for level in (0..=t.height).rev() {
            let n = self.node(level);
            let i = self.idx[level] as usize;
            // SAFETY: `n` is a node of this tree.
            if i < unsafe { checked_len(n) } {
                return Some((n, i, level));
            }
        }
        None
    }

    /// Moves the gap past the entry `peek_next` found at `level`.
    #[inline]
    pub(super) fn advance(&mut self, t: &Tree, level: usize) {
        let i = self.idx[level] + 1;
        self.idx[level] = i;
        let mut n = self.node(level);
        let mut e = i as usize;
        for l in level + 1..=t.height {
            // SAFETY: `n` is internal (above the leaves); `e <= len <= CAP`.
            n = unsafe { t.child(n, e, l) };
            self.nodes[l] = MaybeUninit::new(n);
            self.idx[l] = 0;
            e = 0;
        }
    }

    /// The entry right before the gap: its node, index and level.
    #[inline]
    pub(super) fn peek_prev(&self, t: &Tree) -> Option<(NodePtr<K, V>, usize, usize)> {
        for level in (0..=t.height).rev() {
            let i = self.idx[level] as usize;
            if i > 0 {
                return Some((self.node(level), i - 1, level));
            }
        }
        None
    }

    /// Moves the gap before the entry `peek_prev` found at `level`.
    #[inline]
    pub(super) fn retreat(&mut self, t: &Tree, level: usize) {
        let i = self.idx[level] - 1;
        self.idx[level] = i;
        let mut n = self.node(level);
        let mut e = i as usize;
        for l in level + 1..=t.height {
            // SAFETY: as in `advance`.
            n = unsafe { t.child(n, e, l) };
            // SAFETY: `n` resolved as a node.
            let nl = unsafe { checked_len(n) };
            self.nodes[l] = MaybeUninit::new(n);
            self.idx[l] = nl as u8;
            e = nl;
        }
    }
}

/// The entries between two gaps, from either end: each end stops at the entry the other end
/// last took (or, before that, at the entry beyond the other gap), and at most `remaining`
/// entries come out in all.
pub(super) struct RawRange<K, V> {
    tree: Tree,
    front: Cursor<K, V>,
    back: Cursor<K, V>,
    front_stop: Option<Item>,
    back_stop: Option<Item>,
    pub(super) remaining: usize,
}

impl<K, V> RawRange<K, V> {
    /// Nothing at all.
    pub(super) fn empty(tree: Tree) -> Self {
        RawRange {
            tree,
            front: Cursor::blank(),
            back: Cursor::blank(),
            front_stop: None,
            back_stop: None,
            remaining: 0,
        }
    }

    /// The entries of the (non-empty) tree between the gaps `lower` and `upper` name, at most
    /// `budget` of them.
    pub(super) fn new(
        tree: Tree,
        lower: impl Fn(NodePtr<K, V>, usize) -> usize,
        upper: impl Fn(NodePtr<K, V>, usize) -> usize,
        budget: usize,
    ) -> Self {
        let (front, back) = Cursor::seek_pair(&tree, lower, upper);
        let front_stop = back.peek_next(&tree).map(|(n, i, _)| (n as usize, i));
        let back_stop = front.peek_prev(&tree).map(|(n, i, _)| (n as usize, i));
        RawRange { tree, front, back, front_stop, back_stop, remaining: budget }
    }

    /// The next entry from the front.
    #[inline]
    pub(super) fn next(&mut self) -> Option<(NodePtr<K, V>, usize)> {
        if self.remaining == 0 {
            return None;
        }
        let (n, i, level) = self.front.peek_next(&self.tree)?;
        let id = (n as usize, i);
        if self.front_stop == Some(id) {
            self.remaining = 0;
            return None;
        }
        self.front.advance(&self.tree, level);
        self.back_stop = Some(id);
        self.remaining -= 1;
        Some((n, i))
    }

    /// The next entry from the back.
    #[inline]
    pub(super) fn next_back(&mut self) -> Option<(NodePtr<K, V>, usize)> {
        if self.remaining == 0 {
            return None;
        }
        let (n, i, level) = self.back.peek_prev(&self.tree)?;
        let id = (n as usize, i);
        if self.back_stop == Some(id) {
            self.remaining = 0;
            return None;
        }
        self.back.retreat(&self.tree, level);
        self.front_stop = Some(id);
        self.remaining -= 1;
        Some((n, i))
    }
}

impl<K, V> Clone for RawRange<K, V> {
    fn clone(&self) -> Self {
        RawRange {
            tree: self.tree,
            front: self.front.clone(),
            back: self.back.clone(),
            front_stop: self.front_stop,
            back_stop: self.back_stop,
            remaining: self.remaining,
        }
    }
}
