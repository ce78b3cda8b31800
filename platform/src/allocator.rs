//! The services' global allocator: mimalloc, asked for plain blocks where
//! plain blocks are aligned enough.
//!
//! `mimalloc::MiMalloc` sends every allocation through mimalloc's aligned
//! entry points, which take a slower path for blocks smaller than their
//! alignment or outside the small sizes. Nearly every Rust allocation asks
//! for an alignment that any mimalloc block already has (8 bytes, or 16 for
//! a block of at least 16), so those go to `mi_malloc` and the rest to the
//! aligned entry points, as the system allocator's shim in `std` does.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// What every mimalloc block is aligned to.
const MIN_ALIGN: usize = 8;
/// What every mimalloc block of at least this many bytes is aligned to.
const MAX_ALIGN: usize = 16;

/// Declare it in a binary: `#[global_allocator] static GLOBAL: Allocator = Allocator;`.
pub struct Allocator;

/// Whether any mimalloc block of `size` bytes is already aligned to `align`.
fn plain(size: usize, align: usize) -> bool {
    align <= MIN_ALIGN || (align <= MAX_ALIGN && size >= align)
}

// SAFETY: each entry point forwards to mimalloc's matching one, which returns
// blocks of at least the requested size and alignment (or null), and `plain`
// only picks the unaligned ones for layouts every block of that size meets.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if plain(layout.size(), layout.align()) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if plain(layout.size(), layout.align()) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from one of mimalloc's allocation functions above.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from mimalloc; the new block keeps the old alignment.
        unsafe {
            if plain(new_size, layout.align()) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_their_layout_asks_for() {
        let allocator = Allocator;
        let aligned = |p: *mut u8, align: usize| !p.is_null() && (p as usize).is_multiple_of(align);
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 3, 8, 15, 16, 17, 24, 100, 1024, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero layout; the block is freed with it.
                unsafe {
                    let p = allocator.alloc(layout);
                    assert!(aligned(p, align), "size {size}, align {align}");
                    p.write_bytes(0xA5, size);
                    let grown = allocator.realloc(p, layout, size * 3);
                    assert!(aligned(grown, align), "grown {size}, align {align}");
                    assert_eq!(*grown, 0xA5, "realloc keeps the contents");
                    allocator.dealloc(grown, Layout::from_size_align(size * 3, align).unwrap());
                    let z = allocator.alloc_zeroed(layout);
                    assert!(aligned(z, align), "zeroed {size}, align {align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    allocator.dealloc(z, layout);
                }
            }
        }
    }
}
