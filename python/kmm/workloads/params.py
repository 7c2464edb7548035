"""The model's numbers, each explained in ``docs/workloads.md``."""

from __future__ import annotations

PAGE = 4096


#: Programs: (text pages faulted in per exec, median anonymous pages).
PROGRAMS: dict[str, tuple[int, int]] = {
    "make": (40, 256),  # GNU make 3.80: ~160 KiB text; a kbuild sub-make ~1 MiB heap
    "sh": (100, 64),  # bash 2.05/3.0: ~600 KiB text, ~100 KiB used; 256 KiB dirty
    "gcc": (40, 80),  # the gcc driver: small, spawns cc1 and as
    "cc1": (700, 3072),  # gcc 3.3 cc1: 3.6 MB text; 12 MiB median heap at -O2
    "as": (200, 384),  # GNU as + libbfd; keeps the object's frags: ~1.5 MiB
    "fixdep": (5, 25),  # scripts/basic/fixdep: tiny
    "ld": (150, 256),  # binutils ld + libbfd; plus about its input size
    "cp": (20, 128),  # coreutils cp -a
    "updatedb": (20, 512),  # slocate / find + frcode
}
LIBC_PAGES = 80  # of glibc's ~1.2 MiB text, the part a short-lived process faults in

SLAB_PAGES_PER_TASK = 2  # task_struct, mm, ~25 vmas, files, signal, sighand: ~6.4 KiB
PTES_PER_PGD_ENTRY = 1024  # i386 non-PAE: one PTE page maps 4 MiB
DENTRIES_PER_PAGE = 29  # dentry 136 bytes (i386 2.6.11)
INODES_PER_PAGE = 8  # ext3_inode_info ~ 500 bytes
BH_PER_PAGE = 78  # buffer_head 52 bytes; one per 4 KiB block
DISK_INODES_PER_PAGE = 32  # ext3 on-disk inode 128 bytes: an inode-table block
