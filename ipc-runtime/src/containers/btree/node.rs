//! The B-tree's nodes in the shared heap, and how a node pointer becomes an address.
//!
//! A node holds up to [`CAP`] keys and values; an internal node also holds `len + 1` child
//! pointers ([`RelPtr`]s, so the tree means the same in every process that maps the heap). A
//! node does not say whether it is a leaf: the tree's height does (every leaf is at depth
//! `height`), so a forged node cannot make a walk go deeper than the height, and the height is
//! bounded by [`MAX_HEIGHT`]. There are no parent pointers: operations keep the path they walked.

use core::mem::{MaybeUninit, align_of, size_of};
use core::ptr;

use crate::error::{Error, Result};
use crate::heap;
use crate::ptr::RelPtr;

/// Branching parameter (std's): nodes hold `B - 1 ..= 2B - 1` keys, the root `1 ..= 2B - 1`.
pub(super) const B: usize = 6;
/// Most keys in a node.
pub(super) const CAP: usize = 2 * B - 1;
/// Fewest keys in a node other than the root.
pub(super) const MIN_LEN: usize = B - 1;
/// Greatest height a tree may claim. A tree of height `h` has at least `2 * 6^(h-1)` leaves, so
/// no tree that fits in memory is even 25 high; a larger height is corruption.
pub const MAX_HEIGHT: usize = 30;

/// A leaf, and the first part of an internal node.
#[repr(C)]
pub(super) struct Leaf<K, V> {
    pub(super) len: u64,
    pub(super) keys: [MaybeUninit<K>; CAP],
    pub(super) vals: [MaybeUninit<V>; CAP],
}

/// An internal node: a leaf's fields, then `len + 1` children.
#[repr(C)]
pub(super) struct Internal<K, V> {
    pub(super) data: Leaf<K, V>,
    pub(super) edges: [RelPtr; CAP + 1],
}

/// A node as this process addresses it (a leaf, or the leaf part of an internal node).
pub(super) type NodePtr<K, V> = *mut Leaf<K, V>;

/// Size and alignment of a node at `level` of a tree of height `height` (leaves at `height`).
#[inline(always)]
pub(super) const fn node_layout<K, V>(is_leaf: bool) -> (usize, usize) {
    if is_leaf {
        (size_of::<Leaf<K, V>>(), align_of::<Leaf<K, V>>())
    } else {
        (size_of::<Internal<K, V>>(), align_of::<Internal<K, V>>())
    }
}

/// Address of key `i` of node `n`.
///
/// # Safety
/// `n` points to a node (in bounds of its allocation); `i <= CAP`.
#[inline(always)]
pub(super) unsafe fn key<K, V>(n: NodePtr<K, V>, i: usize) -> *mut K {
    // SAFETY: the caller's promise: the key array is inside the node.
    unsafe { ptr::addr_of_mut!((*n).keys).cast::<K>().add(i) }
}

/// Address of value `i` of node `n`.
///
/// # Safety
/// As for [`key`].
#[inline(always)]
pub(super) unsafe fn val<K, V>(n: NodePtr<K, V>, i: usize) -> *mut V {
    // SAFETY: the caller's promise: the value array is inside the node.
    unsafe { ptr::addr_of_mut!((*n).vals).cast::<V>().add(i) }
}

/// Address of child pointer `i` of internal node `n`.
///
/// # Safety
/// `n` points to an internal node; `i <= CAP + 1`.
#[inline(always)]
pub(super) unsafe fn edge<K, V>(n: NodePtr<K, V>, i: usize) -> *mut RelPtr {
    // SAFETY: the caller's promise: `n` is an internal node, whose edge array follows.
    unsafe { ptr::addr_of_mut!((*n.cast::<Internal<K, V>>()).edges).cast::<RelPtr>().add(i) }
}

/// The key count of node `n`, checked against [`CAP`] (a node in another process's memory may
/// hold anything).
///
/// # Safety
/// `n` points to a node.
#[inline(always)]
pub(super) unsafe fn len<K, V>(n: NodePtr<K, V>) -> Result<usize> {
    // SAFETY: the caller's promise; the count is a plain integer.
    let len = unsafe { ptr::addr_of!((*n).len).read() };
    if len <= CAP as u64 { Ok(len as usize) } else { Err(bad_len(len)) }
}

#[cold]
fn bad_len(len: u64) -> Error {
    Error::Corrupted { what: format!("ShmBTreeMap node holds {len} keys (at most {CAP})") }
}

/// Sets the key count of node `n` (owner only).
///
/// # Safety
/// `n` points to a node this process may write.
#[inline(always)]
pub(super) unsafe fn set_len<K, V>(n: NodePtr<K, V>, len: usize) {
    debug_assert!(len <= CAP);
    // SAFETY: the caller's promise.
    unsafe { ptr::addr_of_mut!((*n).len).write(len as u64) };
}

/// This process's default heap, as the node resolution's shortcut sees it: its id (0 if there
/// is no heap yet) and its base address here.
#[derive(Clone, Copy)]
pub(super) struct Own {
    id: u64,
    base: usize,
}

impl Own {
    #[inline]
    pub(super) fn get() -> Own {
        match heap::try_default() {
            Some(h) => {
                let id = h.id();
                match heap::own_address(RelPtr::new(id, 0)) {
                    Some(base) => Own { id, base: base.as_ptr() as usize },
                    None => Own { id: 0, base: 0 },
                }
            }
            None => Own { id: 0, base: 0 },
        }
    }

    /// Whether `addr` lies inside this process's heap.
    #[inline(always)]
    fn holds(self, addr: usize) -> bool {
        self.id != 0
            && heap::own_address(RelPtr::new(self.id, addr.wrapping_sub(self.base) as u64))
                .is_some()
    }

    /// The node at `p` (of `size` bytes at alignment `align`), whose pointer is stored at
    /// `holder`, for reading.
    ///
    /// A node of this process's heap whose pointer is also stored in this process's heap is
    /// addressed directly: our heap holds only what this process wrote (other processes map it
    /// read-only), so the pointer is one our own code stored, to a whole node; only its end is
    /// checked, against the heap's size. Everything else goes through
    /// [`RelPtr::resolve_held`]: bounds, alignment, and the rule that a pointer held in a
    /// peer's memory points only into that peer's segment.
    ///
    /// # Errors
    /// `resolve_held`'s.
    #[inline(always)]
    pub(super) fn read<K, V>(
        self,
        p: RelPtr,
        holder: *const u8,
        size: usize,
        align: usize,
    ) -> Result<NodePtr<K, V>> {
        if p.segment() == self.id && self.id != 0 && self.holds(holder as usize) {
            let end = p.offset().wrapping_add(size as u64 - 1);
            let addr = self.base.wrapping_add(p.offset() as usize);
            if end >= p.offset()
                && heap::own_address(RelPtr::new(self.id, end)).is_some()
                && addr.is_multiple_of(align)
            {
                return Ok(addr as NodePtr<K, V>);
            }
        }
        p.resolve_held(holder, size, align).map(|a| a.as_ptr().cast())
    }

    /// The node at `p` for writing (only the owning process writes a tree: `&mut` to a tree
    /// exists only in memory this process writes, so its pointers are ones it stored).
    #[inline(always)]
    pub(super) fn write<K, V>(self, p: RelPtr, is_leaf: bool) -> NodePtr<K, V> {
        if let Some(a) = heap::own_address(p) {
            return a.as_ptr().cast();
        }
        write_slow(p, is_leaf)
    }
}

#[cold]
#[inline(never)]
fn write_slow<K, V>(p: RelPtr, is_leaf: bool) -> NodePtr<K, V> {
    let (size, align) = node_layout::<K, V>(is_leaf);
    match p.resolve_mut(size, align) {
        Ok(a) => a.as_ptr().cast(),
        Err(e) => super::fail(e),
    }
}

/// Allocates an uninitialised node (its count set to 0) in this process's default heap.
pub(super) fn allocate<K, V>(is_leaf: bool) -> Result<(RelPtr, NodePtr<K, V>)> {
    let (size, align) = node_layout::<K, V>(is_leaf);
    let heap = heap::default_heap()?;
    let p = heap.try_allocate(size, align)?;
    let n: NodePtr<K, V> = heap::own_address(p)
        .map(|a| a.as_ptr().cast())
        .unwrap_or_else(|| heap.address(p).as_ptr().cast());
    // SAFETY: a fresh block of a node's size and alignment in our own (writable) heap.
    unsafe { set_len(n, 0) };
    Ok((p, n))
}

/// Frees a node (its contents already moved out or dropped).
pub(super) fn free(p: RelPtr) {
    heap::free(p);
}
