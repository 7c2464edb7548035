"""Allocation kinds: what each allocation of a load is, and the GFP mask the
2005 kernel (with Mel Gorman's v7 flags) used for it."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .. import gfp as _gfp
from .._args import U32_MAX, int_arg
from ..errors import ConfigError
from ..trace import TF_UNEVICTABLE as _TF_UNEVICTABLE

#: Every kind of allocation a load emits; ``stacks`` maps these names to
#: page_owner stack handles.
KINDS: tuple[str, ...] = (
    "anon_fault",
    "pagecache_read",
    "pagecache_write",
    "dentry",
    "inode",
    "buffer_head",
    "page_table",
    "task_struct",
    "slab_other",
    "leak",
    # slab objects (OP_SLAB_ALLOC into the cache of KIND_CACHE), appended
    "mm_struct",
    "files_struct",
    "vm_area_struct",
    "kmalloc_256",
    "kmalloc_32",
    "kmalloc_4096",
    # today's anonymous THP faults (mm/huge_memory.rs): a 2 MiB region's head
    # (order 9) and its 4 KiB pages (order 0)
    "thp_fault",
    # a page of NIC receive buffers (kmm.workloads.nic), appended
    "nic_rx",
    # a long-lived process's anonymous page on a machine without swap
    # (kmm.workloads.resident): movable, unevictable (TF_UNEVICTABLE)
    "anon_resident",
)
K = {name: i for i, name in enumerate(KINDS)}
# block-device page cache (inode tables, directory blocks) is GFP_USER: bdget()
# sets the mapping's mask to GFP_USER, regular files use GFP_HIGHUSER on i386
K_BDEV = len(KINDS)  # internal kind: a pagecache_read of a block-device page

#: Kinds that are slab objects, and the cache (``kmm.trace.SLAB_CACHES``) each
#: goes to: the workloads allocate objects and the engine packs them in slab
#: pages (``kmm-core/src/mm/slab.rs``). ``task_struct`` here is the
#: ``task_struct`` object itself; the kernel stack is ``kernel_stack``.
KIND_SLAB: dict[str, str] = {
    "dentry": "dentry_cache",
    "inode": "ext3_inode_cache",
    "buffer_head": "buffer_head",
    "slab_other": "task_struct",
    "mm_struct": "mm_struct",
    "files_struct": "files_cache",
    "vm_area_struct": "vm_area_struct",
    "kmalloc_256": "size-256",  # signal_struct (~ 200 B in 2.6.11)
    "kmalloc_32": "size-32",  # small kmallocs a task makes (fs_struct, sighand parts)
    "kmalloc_4096": "size-4096",  # the test module's buffers
}

_KERNRCLM = _gfp.GFP_KERNEL | _gfp.GFP_FLAGS["__GFP_KERNRCLM"]
#: The GFP mask of each kind (2.6.11 i386 with Mel Gorman's v7 flags).
KIND_GFP: dict[str, int] = {
    "anon_fault": _gfp.GFP_HIGHUSER,  # do_anonymous_page: alloc_page(GFP_HIGHUSER)
    "pagecache_read": _gfp.GFP_HIGHUSER,  # regular-file mapping mask on i386
    "pagecache_write": _gfp.GFP_HIGHUSER,
    "dentry": _KERNRCLM,  # dentry_cache is KernRclm in the v7 patch
    "inode": _KERNRCLM,  # ext3_inode_cache
    "buffer_head": _KERNRCLM,  # buffer_head cache
    "page_table": _gfp.GFP_KERNEL,  # pte_alloc_one without CONFIG_HIGHPTE, pgd
    "task_struct": _gfp.GFP_KERNEL,  # 8 KiB kernel stack + thread_info, order 1
    "slab_other": _gfp.GFP_KERNEL,  # task_struct, mm, vmas, files, signal slabs
    "leak": _gfp.GFP_KERNEL,
    "mm_struct": _gfp.GFP_KERNEL,
    "files_struct": _gfp.GFP_KERNEL,
    "vm_area_struct": _gfp.GFP_KERNEL,
    "kmalloc_256": _gfp.GFP_KERNEL,
    "kmalloc_32": _gfp.GFP_KERNEL,
    "kmalloc_4096": _gfp.GFP_KERNEL,
    "thp_fault": _gfp.GFP_TRANSHUGE_LIGHT,  # vma_thp_gfp_mask() for defrag=madvise
    # rx refill runs in NAPI (softirq) context: dev_alloc_page() and
    # page_pool_dev_alloc_pages() both ask for GFP_ATOMIC (| __GFP_NOWARN)
    "nic_rx": _gfp.GFP_ATOMIC,
    "anon_resident": _gfp.GFP_HIGHUSER,  # do_anonymous_page, as anon_fault
}
KIND_GFP_ARR = np.array([KIND_GFP[k] for k in KINDS] + [_gfp.GFP_USER], dtype=np.uint32)

#: Trace flags an allocation of each kind carries besides TF_TASK: the pages
#: reclaim cannot take (``kmm.trace.TF_UNEVICTABLE``)
KIND_ALLOC_FLAGS: dict[str, int] = {"anon_resident": _TF_UNEVICTABLE}
KIND_FLAGS_ARR = np.array([KIND_ALLOC_FLAGS.get(k, 0) for k in KINDS] + [0], dtype=np.uint8)


def _cache_arr() -> np.ndarray:
    from ..trace import SLAB_CACHES

    a = np.full(len(KINDS) + 1, 255, dtype=np.uint8)
    for k, c in KIND_SLAB.items():
        a[KINDS.index(k)] = SLAB_CACHES[c]
    return a


#: kind code -> slab cache index, 255 for kinds that are blocks of pages
KIND_CACHE_ARR = _cache_arr()


def stack_table(stacks: Mapping[str, int] | None) -> np.ndarray:
    """kind code -> page_owner stack handle (unknown keys are ignored, so one
    dict can serve several tools)."""
    table = np.zeros(len(KINDS) + 1, dtype=np.uint32)
    if stacks is None:
        return table
    if not isinstance(stacks, Mapping):
        raise ConfigError(
            f"stacks must be a mapping of kind name -> stack handle, not {type(stacks).__name__}"
        )
    for i, k in enumerate(KINDS):
        table[i] = int_arg(f"stack handle for {k!r}", stacks.get(k, 0), 0, U32_MAX)
    table[K_BDEV] = table[K["pagecache_read"]]
    return table
