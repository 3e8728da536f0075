//! The tree's algorithms on raw node pointers: the path an operation walked, insertion with
//! splits, removal with rebalancing (std's B-tree, without parent pointers), and teardown.
//!
//! Everything here runs in the owning process only (through `&mut` to the tree), on nodes of its
//! own heap.

use core::borrow::Borrow;
use core::cmp::Ordering;
use core::mem::{self, MaybeUninit};
use core::ptr;

use crate::error::Error;
use crate::ptr::RelPtr;

use super::node::{self, B, CAP, MAX_HEIGHT, MIN_LEN, NodePtr, Own, edge, key, len, set_len, val};

/// The nodes an operation walked from the root (level 0) down, and at each level the index it
/// took: the edge descended through, or at the last level the key found or the insertion point.
pub(super) struct Path<K, V> {
    nodes: [MaybeUninit<NodePtr<K, V>>; MAX_HEIGHT + 1],
    idx: [usize; MAX_HEIGHT + 1],
}

impl<K, V> Path<K, V> {
    #[inline(always)]
    pub(super) fn new() -> Self {
        Path { nodes: [const { MaybeUninit::uninit() }; MAX_HEIGHT + 1], idx: [0; MAX_HEIGHT + 1] }
    }

    #[inline(always)]
    pub(super) fn set(&mut self, level: usize, n: NodePtr<K, V>, i: usize) {
        self.nodes[level] = MaybeUninit::new(n);
        self.idx[level] = i;
    }

    #[inline(always)]
    pub(super) fn node(&self, level: usize) -> NodePtr<K, V> {
        // SAFETY: callers read only levels they set first (a raw pointer has no invalid bits).
        unsafe { self.nodes[level].assume_init() }
    }

    #[inline(always)]
    pub(super) fn idx(&self, level: usize) -> usize {
        self.idx[level]
    }
}

/// Unwraps a key count of a node of our own tree (which only our code wrote).
#[inline(always)]
pub(super) unsafe fn own_len<K, V>(n: NodePtr<K, V>) -> usize {
    // SAFETY: the caller's promise: `n` is a node.
    match unsafe { len(n) } {
        Ok(l) => l,
        Err(e) => super::fail(e),
    }
}

/// Where `key` is in node `n` of `len` keys: `Ok(i)` if key `i` equals it, else `Err(i)`, the
/// edge to descend through (the number of keys less than it).
///
/// # Safety
/// `n` points to a node with `len` initialised keys.
#[inline(always)]
pub(super) unsafe fn search_node<K, V, Q>(
    n: NodePtr<K, V>,
    len: usize,
    k: &Q,
) -> Result<usize, usize>
where
    K: Borrow<Q>,
    Q: Ord + ?Sized,
{
    for i in 0..len {
        // SAFETY: the caller's promise: key `i < len` is initialised.
        match k.cmp(unsafe { (*key(n, i)).borrow() }) {
            Ordering::Greater => {}
            Ordering::Equal => return Ok(i),
            Ordering::Less => return Err(i),
        }
    }
    Err(len)
}

/// Moves `count` keys and values from `src[from..]` to `dst[to..]` (distinct nodes, or
/// overlapping ranges of one).
///
/// # Safety
/// Both ranges lie inside `CAP`; the source entries are initialised and are treated as moved.
#[inline(always)]
unsafe fn move_kv<K, V>(src: NodePtr<K, V>, from: usize, dst: NodePtr<K, V>, to: usize, n: usize) {
    // SAFETY: the caller's promise.
    unsafe {
        ptr::copy(key(src, from), key(dst, to), n);
        ptr::copy(val(src, from), val(dst, to), n);
    }
}

/// Moves `count` edges from `src[from..]` to `dst[to..]`.
///
/// # Safety
/// Both nodes are internal and both ranges lie inside `CAP + 1`.
#[inline(always)]
unsafe fn move_edges<K, V>(
    src: NodePtr<K, V>,
    from: usize,
    dst: NodePtr<K, V>,
    to: usize,
    n: usize,
) {
    // SAFETY: the caller's promise.
    unsafe { ptr::copy(edge(src, from), edge(dst, to), n) };
}

/// Inserts `k`, `v` at `i` of non-full node `n` of `len` keys, and `e` (if internal) as the
/// edge to its right.
///
/// # Safety
/// `n` is a writable node with `len < CAP` keys, `i <= len`; `e` is `Some` iff `n` is internal.
#[inline(always)]
unsafe fn insert_fit<K, V>(n: NodePtr<K, V>, len: usize, i: usize, k: K, v: V, e: Option<RelPtr>) {
    // SAFETY: the caller's promise: there is room for one more key (and edge).
    unsafe {
        move_kv(n, i, n, i + 1, len - i);
        key(n, i).write(k);
        val(n, i).write(v);
        if let Some(e) = e {
            move_edges(n, i + 1, n, i + 2, len - i);
            edge(n, i + 1).write(e);
        }
        set_len(n, len + 1);
    }
}

/// Removes key and value `i` of leaf `n`.
///
/// # Safety
/// `n` is a writable leaf with more than `i` keys.
#[inline(always)]
unsafe fn remove_fit<K, V>(n: NodePtr<K, V>, i: usize) -> (K, V) {
    // SAFETY: the caller's promise; the entry is read out, then the gap closed.
    unsafe {
        let l = own_len(n);
        let kv = (key(n, i).read(), val(n, i).read());
        move_kv(n, i + 1, n, i, l - i - 1);
        set_len(n, l - 1);
        kv
    }
}

/// The tree's root fields, which the algorithms update.
pub(super) struct Root<'a> {
    pub(super) root: &'a mut RelPtr,
    pub(super) height: &'a mut u64,
    pub(super) len: &'a mut u64,
}

/// Inserts `k`, `v` at the insertion point `path` found (at the leaf level `height`), splitting
/// full nodes on the way up; returns where the value landed. Allocates every node it may need
/// first, so running out of memory changes nothing and gives the entry back.
///
/// # Safety
/// `path` was filled by a search of this tree (owned by this process) that found no equal key,
/// and the tree was not changed since; for an empty tree (null root) `path` is ignored.
pub(super) unsafe fn insert<K, V>(
    t: Root<'_>,
    path: &Path<K, V>,
    mut k: K,
    mut v: V,
) -> Result<*mut V, (K, V, Error)> {
    if t.root.is_null() {
        let (p, n) = match node::allocate::<K, V>(true) {
            Ok(x) => x,
            Err(e) => return Err((k, v, e)),
        };
        // SAFETY: a fresh leaf with room for a key.
        unsafe { insert_fit(n, 0, 0, k, v, None) };
        *t.root = p;
        *t.height = 0;
        *t.len = 1;
        // SAFETY: the value just written.
        return Ok(unsafe { val(n, 0) });
    }
    let height = *t.height as usize;
    // How many nodes from the leaf up are full: each splits, and a full root adds a level.
    let mut full = 0;
    // SAFETY: the path's nodes are nodes of this tree.
    while full <= height && unsafe { own_len(path.node(height - full)) } == CAP {
        full += 1;
    }
    let mut spare: [MaybeUninit<(RelPtr, NodePtr<K, V>)>; MAX_HEIGHT + 2] =
        [const { MaybeUninit::uninit() }; MAX_HEIGHT + 2];
    let needed = if full > height { full + 1 } else { full };
    for j in 0..needed {
        // Spare `j` serves level `height - j` (a leaf for j == 0); the last one may be the root.
        match node::allocate::<K, V>(j == 0) {
            Ok(x) => spare[j] = MaybeUninit::new(x),
            Err(e) => {
                for s in &spare[..j] {
                    // SAFETY: spares below `j` were allocated.
                    node::free(unsafe { s.assume_init() }.0);
                }
                return Err((k, v, e));
            }
        }
    }
    let mut level = height;
    let mut e: Option<RelPtr> = None;
    let mut tracked: *mut V = ptr::null_mut();
    let mut used = 0;
    loop {
        let (n, i) = (path.node(level), path.idx(level));
        // SAFETY: `n` is a node of this tree on the search path.
        let l = unsafe { own_len(n) };
        if l < CAP {
            // SAFETY: room for one more; `i <= l` from the search; internal iff `e` is some.
            unsafe { insert_fit(n, l, i, k, v, e) };
            if tracked.is_null() {
                // SAFETY: the entry just written.
                tracked = unsafe { val(n, i) };
            }
            break;
        }
        // SAFETY: `used < needed`: one spare per full node, allocated above.
        let (rp, r) = unsafe { spare[used].assume_init() };
        used += 1;
        let internal = e.is_some();
        // Split the full node, `CAP + 1` entries counting the new one, around entry `B`.
        // SAFETY: `n` and `r` are distinct writable nodes of the same kind; every range below
        // lies within `CAP` keys and `CAP + 1` edges.
        let (mk, mv) = unsafe {
            if i < B {
                move_kv(n, B, r, 0, CAP - B);
                if internal {
                    move_edges(n, B, r, 0, CAP - B + 1);
                }
                let median = (key(n, B - 1).read(), val(n, B - 1).read());
                set_len(n, B - 1);
                set_len(r, CAP - B);
                insert_fit(n, B - 1, i, k, v, e);
                if tracked.is_null() {
                    tracked = val(n, i);
                }
                median
            } else if i == B {
                move_kv(n, B, r, 0, CAP - B);
                if let Some(e) = e {
                    edge(r, 0).write(e);
                    move_edges(n, B + 1, r, 1, CAP - B);
                }
                set_len(n, B);
                set_len(r, CAP - B);
                (k, v)
            } else {
                move_kv(n, B + 1, r, 0, CAP - B - 1);
                if internal {
                    move_edges(n, B + 1, r, 0, CAP - B);
                }
                let median = (key(n, B).read(), val(n, B).read());
                set_len(n, B);
                set_len(r, CAP - B - 1);
                insert_fit(r, CAP - B - 1, i - B - 1, k, v, e);
                if tracked.is_null() {
                    tracked = val(r, i - B - 1);
                }
                median
            }
        };
        (k, v, e) = (mk, mv, Some(rp));
        if level == 0 {
            // The root split: a new root above it.
            // SAFETY: the last spare is an internal node for the new root.
            let (np, nr) = unsafe { spare[used].assume_init() };
            // SAFETY: a fresh internal node: one key, two edges.
            unsafe {
                key(nr, 0).write(k);
                val(nr, 0).write(v);
                edge(nr, 0).write(*t.root);
                edge(nr, 1).write(rp);
                set_len(nr, 1);
                if tracked.is_null() {
                    tracked = val(nr, 0);
                }
            }
            *t.root = np;
            *t.height += 1;
            break;
        }
        level -= 1;
    }
    *t.len += 1;
    Ok(tracked)
}

/// Removes the entry `path` found at level `found`, moving its in-order predecessor up if it
/// is in an internal node, and rebalances on the way up.
///
/// # Safety
/// `path` was filled by a search of this tree (owned by this process) that found the entry at
/// level `found`, and the tree was not changed since.
pub(super) unsafe fn remove<K, V>(t: Root<'_>, path: &mut Path<K, V>, found: usize) -> (K, V) {
    let own = Own::get();
    let height = *t.height as usize;
    let (n, i) = (path.node(found), path.idx(found));
    // SAFETY: the path's nodes are writable nodes of this tree; levels below `found` are
    // filled as we descend to the predecessor (the rightmost entry of edge `i`'s subtree).
    let kv = unsafe {
        if found == height {
            remove_fit(n, i)
        } else {
            let mut cur = n;
            for level in found + 1..=height {
                let child = own.write(*edge(cur, path.idx(level - 1)), level == height);
                let cl = own_len(child);
                path.set(level, child, if level == height { cl - 1 } else { cl });
                cur = child;
            }
            let (pk, pv) = remove_fit(cur, path.idx(height));
            (mem::replace(&mut *key(n, i), pk), mem::replace(&mut *val(n, i), pv))
        }
    };
    *t.len -= 1;
    let mut level = height;
    while level > 0 {
        let is_leaf = level == height;
        let node = path.node(level);
        // SAFETY: all pointers below are nodes of this tree at the levels the path says.
        unsafe {
            let nl = own_len(node);
            if nl >= MIN_LEN {
                break;
            }
            let parent = path.node(level - 1);
            let pi = path.idx(level - 1);
            let pl = own_len(parent);
            let left = (pi > 0).then(|| own.write::<K, V>(*edge(parent, pi - 1), is_leaf));
            if let Some(left) = left
                && own_len(left) > MIN_LEN
            {
                steal_left(parent, pi, left, node, is_leaf);
                break;
            }
            let right = (pi < pl).then(|| own.write::<K, V>(*edge(parent, pi + 1), is_leaf));
            if let Some(right) = right
                && own_len(right) > MIN_LEN
            {
                steal_right(parent, pi, node, right, is_leaf);
                break;
            }
            match (left, right) {
                (Some(left), _) => merge(parent, pi - 1, left, node, is_leaf),
                (None, Some(right)) => merge(parent, pi, node, right, is_leaf),
                (None, None) => super::fail(Error::Corrupted {
                    what: "ShmBTreeMap: internal node without keys".into(),
                }),
            }
        }
        level -= 1;
    }
    let root = path.node(0);
    // SAFETY: the root is a node of this tree; an empty internal root has one child.
    unsafe {
        if own_len(root) == 0 {
            let old = *t.root;
            if height > 0 {
                *t.root = *edge(root, 0);
                *t.height -= 1;
            } else {
                *t.root = RelPtr::NULL;
            }
            node::free(old);
        }
    }
    kv
}

/// Moves the last entry of `left` up into the parent and the separator down into `node`.
///
/// # Safety
/// `node` is child `pi > 0` of `parent`, `left` child `pi - 1`, with more than `MIN_LEN` keys.
unsafe fn steal_left<K, V>(
    parent: NodePtr<K, V>,
    pi: usize,
    left: NodePtr<K, V>,
    n: NodePtr<K, V>,
    is_leaf: bool,
) {
    // SAFETY: the caller's promise; `n` has fewer than `MIN_LEN` keys, so room to shift.
    unsafe {
        let (ll, nl) = (own_len(left), own_len(n));
        move_kv(n, 0, n, 1, nl);
        if !is_leaf {
            move_edges(n, 0, n, 1, nl + 1);
            edge(n, 0).write(*edge(left, ll));
        }
        key(n, 0).write(mem::replace(&mut *key(parent, pi - 1), key(left, ll - 1).read()));
        val(n, 0).write(mem::replace(&mut *val(parent, pi - 1), val(left, ll - 1).read()));
        set_len(left, ll - 1);
        set_len(n, nl + 1);
    }
}

/// Moves the first entry of `right` up into the parent and the separator down into `node`.
///
/// # Safety
/// `node` is child `pi` of `parent`, `right` child `pi + 1`, with more than `MIN_LEN` keys.
unsafe fn steal_right<K, V>(
    parent: NodePtr<K, V>,
    pi: usize,
    n: NodePtr<K, V>,
    right: NodePtr<K, V>,
    is_leaf: bool,
) {
    // SAFETY: the caller's promise.
    unsafe {
        let (nl, rl) = (own_len(n), own_len(right));
        key(n, nl).write(mem::replace(&mut *key(parent, pi), key(right, 0).read()));
        val(n, nl).write(mem::replace(&mut *val(parent, pi), val(right, 0).read()));
        move_kv(right, 1, right, 0, rl - 1);
        if !is_leaf {
            edge(n, nl + 1).write(*edge(right, 0));
            move_edges(right, 1, right, 0, rl);
        }
        set_len(right, rl - 1);
        set_len(n, nl + 1);
    }
}

/// Merges child `k + 1` of `parent` (`right`) and separator `k` into child `k` (`left`), and
/// frees `right`.
///
/// # Safety
/// `left` and `right` are children `k` and `k + 1` of `parent`, with at most `CAP - 1` keys
/// together.
unsafe fn merge<K, V>(
    parent: NodePtr<K, V>,
    k: usize,
    left: NodePtr<K, V>,
    right: NodePtr<K, V>,
    is_leaf: bool,
) {
    // SAFETY: the caller's promise.
    unsafe {
        let (ll, rl, pl) = (own_len(left), own_len(right), own_len(parent));
        key(left, ll).write(key(parent, k).read());
        val(left, ll).write(val(parent, k).read());
        move_kv(right, 0, left, ll + 1, rl);
        if !is_leaf {
            move_edges(right, 0, left, ll + 1, rl + 1);
        }
        set_len(left, ll + 1 + rl);
        move_kv(parent, k + 1, parent, k, pl - k - 1);
        let gone = *edge(parent, k + 1);
        move_edges(parent, k + 2, parent, k + 1, pl - k - 1);
        set_len(parent, pl - 1);
        node::free(gone);
    }
}

/// Drops every entry of the subtree at `p` (at `level` of a tree of height `height`) and frees
/// its nodes.
///
/// # Safety
/// `p` is a node of a tree this process owns; nothing uses the subtree afterwards.
pub(super) unsafe fn drop_subtree<K, V>(own: Own, p: RelPtr, level: usize, height: usize) {
    let is_leaf = level == height;
    let n = own.write::<K, V>(p, is_leaf);
    // SAFETY: the caller's promise; each entry is dropped once, each child visited once.
    unsafe {
        let l = own_len(n);
        if mem::needs_drop::<K>() || mem::needs_drop::<V>() {
            for i in 0..l {
                ptr::drop_in_place(key(n, i));
                ptr::drop_in_place(val(n, i));
            }
        }
        if !is_leaf {
            for i in 0..=l {
                drop_subtree::<K, V>(own, *edge(n, i), level + 1, height);
            }
        }
    }
    node::free(p);
}
