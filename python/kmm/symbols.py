"""A synthetic i386 kernel symbol table (2.6.11 era) for page_owner call chains.

Core kernel text lives at ``0xc01xxxxx`` (init text a little higher, modules
in the vmalloc area at ``0xf88xxxxx``), as on the 256 MB test box of the 2005
LWN article. The addresses of the functions that appear in the article's
example are chosen so that the article's return addresses fall inside them at
the article's offsets (``kmem_getpages+49`` is ``0xc0146f01``), so a kmm dump of
a readahead leak reads like the article's.

>>> from kmm.symbols import frame
>>> frame("kmem_getpages", 49)
(3222564609, 'kmem_getpages', 49, 160, None)
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PageOwnerError

__all__ = ["CHAINS", "SYMBOLS", "Symbol", "chain", "frame", "lookup"]


@dataclass(frozen=True)
class Symbol:
    name: str
    addr: int
    size: int
    module: str | None = None

    def contains(self, addr: int) -> bool:
        return self.addr <= addr < self.addr + self.size


# (name, start address, size[, module]); non-overlapping (SYMBOLS is sorted by address).
_TABLE: list[tuple] = [
    ("do_page_fault", 0xC01124E0, 0x4B0),
    ("error_code", 0xC0112A00, 0x40),
    ("copy_files", 0xC01188E0, 0x390),
    ("copy_process", 0xC0118C80, 0xD10),
    ("fork_idle", 0xC0119990, 0x70),
    ("do_fork", 0xC0119A00, 0x1A0),
    ("sys_clone", 0xC0102B30, 0x50),
    ("syscall_call", 0xC0103F1B, 0x30),
    ("ltt_log_event", 0xC013C1C0, 0x120),
    ("__alloc_pages", 0xC013D5F0, 0x2F0),
    ("__get_free_pages", 0xC013D8E0, 0x40),
    ("find_or_create_page", 0xC013E130, 0xD0),
    ("generic_file_buffered_write", 0xC013F2A0, 0x4F0),
    ("__generic_file_aio_write_nolock", 0xC013F790, 0x3B0),
    ("generic_file_aio_write", 0xC013FB40, 0xE0),
    ("filemap_nopage", 0xC013FE50, 0x3A0),
    ("__do_page_cache_readahead", 0xC0146450, 0x1A0),
    ("max_sane_readahead", 0xC0146A40, 0x40),
    ("kmem_getpages", 0xC0146ED0, 0xA0),
    ("cache_grow", 0xC01483C0, 0x1D0),
    ("cache_alloc_refill", 0xC01488E0, 0x280),
    ("kmem_cache_alloc", 0xC0148F60, 0xC0),
    ("__kmalloc", 0xC0149030, 0xC0),
    ("pte_alloc_one", 0xC014E7A0, 0x30),
    ("__pte_alloc", 0xC014E7D0, 0xA0),
    ("do_anonymous_page", 0xC0150580, 0x210),
    ("do_no_page", 0xC01507A0, 0x2D0),
    ("handle_mm_fault", 0xC0150BD0, 0x170),
    ("remove_vm_struct", 0xC0151AB0, 0xB0),
    ("alloc_page_vma", 0xC01559D0, 0x70),
    # today's THP fault, placed after 2.6.11's mm/memory.c text (kmm's own address)
    ("do_huge_pmd_anonymous_page", 0xC0155A40, 0x1C0),
    ("do_sync_write", 0xC0161E60, 0xE0),
    ("vfs_write", 0xC0161F40, 0x110),
    ("sys_write", 0xC0162050, 0x60),
    ("alloc_buffer_head", 0xC0165B20, 0x50),
    ("alloc_page_buffers", 0xC0165B70, 0xB0),
    ("create_empty_buffers", 0xC0165C20, 0xC0),
    ("__block_prepare_write", 0xC0166A30, 0x3E0),
    ("real_lookup", 0xC016E1A0, 0xB0),
    ("do_lookup", 0xC016E250, 0x90),
    ("link_path_walk", 0xC016E2E0, 0x7A0),
    ("sys_ioctl", 0xC0171C20, 0x70),
    ("d_alloc", 0xC0173310, 0x170),
    ("alloc_inode", 0xC0175A10, 0x130),
    ("new_inode", 0xC0175B40, 0x60),
    ("iget_locked", 0xC0176110, 0xF0),
    ("ext3_alloc_inode", 0xC01A3B60, 0x40),
    ("ext3_lookup", 0xC01A8E30, 0xB0),
    ("ext3_file_write", 0xC01A0D60, 0xA0),
    ("ext3_prepare_write", 0xC01A5820, 0x110),
    ("alloc_skb", 0xC02A1540, 0xD0),
    ("sk_stream_alloc_pskb", 0xC02A6E10, 0xC0),
    ("tcp_sendmsg", 0xC02C0A70, 0xA10),
    ("inet_sendmsg", 0xC02D7E90, 0x50),
    ("sock_sendmsg", 0xC029C460, 0xF0),
    ("net_rx_action", 0xC02A4C10, 0x130),
    ("__do_softirq", 0xC0120E30, 0x90),
    ("do_softirq", 0xC0105A60, 0x60),
    ("do_boot_cpu", 0xC0418220, 0x3A0),
    ("highalloc_alloc_block", 0xF8852060, 0x90, "vmregress_core"),
    ("highalloc_runtest", 0xF88520F0, 0x2B0, "vmregress_core"),
    ("vmr_proc_write", 0xF8853470, 0x80, "vmregress_core"),
    ("nic_alloc_rx_frag", 0xF8890040, 0xA0, "nicdrv"),
    ("nic_alloc_rx_buffers", 0xF88900E0, 0x140, "nicdrv"),
    ("nic_clean_rx_irq", 0xF8890220, 0x3C0, "nicdrv"),
    ("nic_poll", 0xF88905E0, 0xE0, "nicdrv"),
    ("leaky_alloc_buffer", 0xF88A1010, 0x60, "leakydrv"),
    ("leaky_ioctl", 0xF88A1070, 0x140, "leakydrv"),
]

#: name -> Symbol
SYMBOLS: dict[str, Symbol] = {t[0]: Symbol(*t) for t in sorted(_TABLE, key=lambda t: t[1])}


def lookup(addr: int) -> tuple[Symbol, int] | None:
    """The symbol holding ``addr`` and the offset into it, or None."""
    for s in SYMBOLS.values():
        if s.contains(addr):
            return s, addr - s.addr
    return None


def frame(name: str, offset: int) -> tuple[int, str, int, int, str | None]:
    """A page_owner frame ``(address, symbol, offset, size, module)`` for ``name+offset``."""
    s = SYMBOLS.get(name)
    if s is None:
        raise PageOwnerError(f"unknown kernel symbol {name!r} (see kmm.symbols.SYMBOLS)")
    if not 0 <= offset < s.size:
        raise PageOwnerError(f"offset {offset} is outside {name} (size {s.size:#x})")
    return (s.addr + offset, s.name, offset, s.size, s.module)


def chain(*calls: tuple[str, int]) -> list[tuple[int, str, int, int, str | None]]:
    """Frames of a call chain given leaf first as ``(symbol, offset)`` pairs."""
    return [frame(n, o) for n, o in calls]


#: A realistic call chain (leaf first: the caller of the page allocator first)
#: for every workload kind of :mod:`kmm.workloads`, plus the high-order
#: benchmark's test module.
CHAINS: dict[str, list[tuple[str, int]]] = {
    "anon_fault": [
        ("alloc_page_vma", 56), ("do_anonymous_page", 197), ("do_no_page", 91),
        ("handle_mm_fault", 246), ("do_page_fault", 492), ("error_code", 47),
    ],
    # a long-lived process's page on a machine without swap (workloads.resident)
    # is faulted on the same path: page_owner cannot tell the two apart
    "anon_resident": [
        ("alloc_page_vma", 56), ("do_anonymous_page", 197), ("do_no_page", 91),
        ("handle_mm_fault", 246), ("do_page_fault", 492), ("error_code", 47),
    ],
    # a THP fault (mm/huge_memory.c), reached from handle_mm_fault as today
    "thp_fault": [
        ("alloc_page_vma", 56), ("do_huge_pmd_anonymous_page", 118),
        ("handle_mm_fault", 246), ("do_page_fault", 492), ("error_code", 47),
    ],
    # the article's first example, frame for frame
    "pagecache_read": [
        ("__do_page_cache_readahead", 290), ("max_sane_readahead", 48),
        ("filemap_nopage", 790), ("filemap_nopage", 0), ("do_no_page", 193),
        ("handle_mm_fault", 246), ("do_page_fault", 492), ("remove_vm_struct", 140),
    ],
    "pagecache_write": [
        ("find_or_create_page", 78), ("generic_file_buffered_write", 281),
        ("__generic_file_aio_write_nolock", 656), ("generic_file_aio_write", 114),
        ("ext3_file_write", 52), ("do_sync_write", 177), ("vfs_write", 158), ("sys_write", 61),
    ],
    "dentry": [
        ("kmem_getpages", 49), ("cache_grow", 173), ("cache_alloc_refill", 460),
        ("kmem_cache_alloc", 149), ("d_alloc", 41), ("real_lookup", 70), ("do_lookup", 118),
        ("link_path_walk", 1021),
    ],
    "inode": [
        ("kmem_getpages", 49), ("cache_grow", 173), ("cache_alloc_refill", 460),
        ("kmem_cache_alloc", 149), ("ext3_alloc_inode", 24), ("alloc_inode", 29),
        ("iget_locked", 163), ("ext3_lookup", 121),
    ],
    "buffer_head": [
        ("kmem_getpages", 49), ("cache_grow", 173), ("cache_alloc_refill", 460),
        ("kmem_cache_alloc", 149), ("alloc_buffer_head", 27), ("alloc_page_buffers", 92),
        ("create_empty_buffers", 33), ("__block_prepare_write", 813),
    ],
    "page_table": [
        ("pte_alloc_one", 29), ("__pte_alloc", 33), ("handle_mm_fault", 154),
        ("do_page_fault", 492), ("error_code", 47),
    ],
    "task_struct": [
        ("__get_free_pages", 30), ("copy_process", 183), ("do_fork", 120), ("sys_clone", 54),
        ("syscall_call", 7),
    ],
    "slab_other": [
        ("kmem_getpages", 49), ("cache_grow", 173), ("cache_alloc_refill", 460),
        ("__kmalloc", 112), ("alloc_skb", 66), ("sk_stream_alloc_pskb", 43),
        ("tcp_sendmsg", 1453), ("inet_sendmsg", 77),
    ],
    "leak": [
        ("__get_free_pages", 30), ("leaky_alloc_buffer", 37), ("leaky_ioctl", 201),
        ("sys_ioctl", 93), ("syscall_call", 7),
    ],
    # the per-task slab objects of fork (a slab page is recorded by the
    # allocation that grew the cache)
    "mm_struct": [
        ("kmem_getpages", 49), ("cache_grow", 173), ("cache_alloc_refill", 460),
        ("kmem_cache_alloc", 149), ("copy_process", 1180), ("do_fork", 120), ("sys_clone", 54),
        ("syscall_call", 7),
    ],
    "files_struct": [
        ("kmem_getpages", 49), ("cache_grow", 173), ("cache_alloc_refill", 460),
        ("kmem_cache_alloc", 149), ("copy_process", 905), ("do_fork", 120), ("sys_clone", 54),
        ("syscall_call", 7),
    ],
    "vm_area_struct": [
        ("kmem_getpages", 49), ("cache_grow", 173), ("cache_alloc_refill", 460),
        ("kmem_cache_alloc", 149), ("copy_process", 1530), ("do_fork", 120), ("sys_clone", 54),
        ("syscall_call", 7),
    ],
    "kmalloc_256": [
        ("kmem_getpages", 49), ("cache_grow", 173), ("cache_alloc_refill", 460),
        ("__kmalloc", 112), ("copy_process", 2010), ("do_fork", 120), ("sys_clone", 54),
        ("syscall_call", 7),
    ],
    "kmalloc_4096": [
        ("kmem_getpages", 49), ("cache_grow", 173), ("cache_alloc_refill", 460),
        ("__kmalloc", 112), ("highalloc_runtest", 90), ("vmr_proc_write", 91),
        ("vfs_write", 158), ("sys_write", 61), ("syscall_call", 7),
    ],
    "kmalloc_32": [
        ("kmem_getpages", 49), ("cache_grow", 173), ("cache_alloc_refill", 460),
        ("__kmalloc", 112), ("copy_process", 2290), ("do_fork", 120), ("sys_clone", 54),
        ("syscall_call", 7),
    ],
    # an rx ring refill in NAPI context (kmm.workloads.nic): a page split in
    # two 2 KiB buffers
    "nic_rx": [
        ("nic_alloc_rx_frag", 62), ("nic_alloc_rx_buffers", 151),
        ("nic_clean_rx_irq", 702), ("nic_poll", 77), ("net_rx_action", 104),
        ("__do_softirq", 87), ("do_softirq", 56),
    ],
    "highalloc": [
        ("highalloc_alloc_block", 62), ("highalloc_runtest", 371), ("vmr_proc_write", 91),
        ("vfs_write", 158), ("sys_write", 61), ("syscall_call", 7),
    ],
}
