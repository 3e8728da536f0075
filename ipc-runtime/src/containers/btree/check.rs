//! The receive-time check of a tree another process wrote ([`ShmSafe::check_bits`] of
//! [`ShmBTreeMap`](super::ShmBTreeMap)).

use std::collections::HashSet;

use crate::message::{InvalidValue, ShmSafe};
use crate::ptr::RelPtr;

use super::ShmBTreeMap;
use super::node::{CAP, MAX_HEIGHT, MIN_LEN, Own, edge, key, len, node_layout, val};

/// Checks the whole tree at `value`: a null root only when empty; a height of at most
/// [`MAX_HEIGHT`]; every node pointer resolves to a whole node (bounds, alignment, and the trust
/// rule of [`RelPtr::resolve_held`]: a pointer held in a peer's memory points into that
/// segment); no node is reached twice (no cycle, no shared subtree); every node holds at most
/// `CAP` keys and at least `MIN_LEN` (the root at least one); the keys add up to the length;
/// and every key and value passes its own check. The walk visits each node once and stops as
/// soon as more keys are found than the length says, so it is bounded by the length.
///
/// # Errors
/// The first thing found wrong, with where.
///
/// # Safety
/// `value` points to `size_of::<ShmBTreeMap<K, V>>()` readable, initialised bytes.
pub(super) unsafe fn tree<K: ShmSafe, V: ShmSafe>(
    value: *const ShmBTreeMap<K, V>,
) -> Result<(), InvalidValue> {
    // SAFETY: the caller's promise.
    let (root, height, length) = unsafe { ShmBTreeMap::raw_parts(value) };
    if root.is_null() {
        return if length == 0 {
            Ok(())
        } else {
            Err(InvalidValue::new(
                format!("no root node with a length of {length}"),
                "a root node for a non-empty tree",
            ))
        };
    }
    if height > MAX_HEIGHT as u64 {
        return Err(InvalidValue::new(
            format!("a height of {height}"),
            format!("a height of at most {MAX_HEIGHT}"),
        ));
    }
    let height = height as usize;
    let own = Own::get();
    let mut seen: HashSet<RelPtr> = HashSet::new();
    // The root pointer is the map's first field (`repr(C)`): held at the map's address.
    let mut stack: Vec<(RelPtr, *const u8, usize)> = vec![(root, value.cast(), 0)];
    let mut keys: u64 = 0;
    while let Some((p, holder, level)) = stack.pop() {
        let is_leaf = level == height;
        let (size, align) = node_layout::<K, V>(is_leaf);
        let n = own.read::<K, V>(p, holder, size, align).map_err(|e| {
            InvalidValue::new(
                format!("a node pointer at depth {level} that does not resolve ({e})"),
                "a pointer to a node in its publisher's heap",
            )
        })?;
        if !seen.insert(p) {
            return Err(InvalidValue::new(
                format!(
                    "a node reached twice (segment {:016x} offset {:#x}, depth {level})",
                    p.segment(),
                    p.offset()
                ),
                "a tree (no cycle, no shared node)",
            ));
        }
        // SAFETY: `n` resolved to a whole node.
        let l = unsafe { len(n) }.map_err(|_| {
            // SAFETY: as above.
            let raw = unsafe { core::ptr::addr_of!((*n).len).read() };
            InvalidValue::new(
                format!("a node of {raw} keys at depth {level}"),
                format!("at most {CAP}"),
            )
        })?;
        let min = if level == 0 { 1 } else { MIN_LEN };
        if l < min {
            return Err(InvalidValue::new(
                format!("a node of {l} keys at depth {level}"),
                format!("at least {min} keys"),
            ));
        }
        keys += l as u64;
        if keys > length {
            return Err(InvalidValue::new(
                format!("more entries than its length of {length}"),
                "as many entries as its length",
            ));
        }
        for i in 0..l {
            if K::MAY_BE_INVALID {
                // SAFETY: key `i < l <= CAP` lies inside the resolved node.
                unsafe { K::check_bits(key(n, i)) }.map_err(|e| e.in_field("key"))?;
            }
            if V::MAY_BE_INVALID {
                // SAFETY: as above.
                unsafe { V::check_bits(val(n, i)) }.map_err(|e| e.in_field("value"))?;
            }
        }
        if !is_leaf {
            for i in 0..=l {
                // SAFETY: an internal node (above the leaf level) has `CAP + 1` edge slots.
                let at = unsafe { edge(n, i) };
                // SAFETY: inside the resolved node.
                stack.push((unsafe { at.read() }, at.cast_const().cast(), level + 1));
            }
        }
    }
    if keys != length {
        return Err(InvalidValue::new(
            format!("{keys} entries with a length of {length}"),
            "as many entries as its length",
        ));
    }
    Ok(())
}
