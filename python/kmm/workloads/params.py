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
    # long-lived processes of the test machine (docs/workloads.md, "The system")
    "init": (8, 32),  # sysvinit: ~30 KiB text, ~100 KiB RSS
    "daemon": (30, 96),  # syslogd, klogd, crond, atd, portmap, sshd, xinetd, gpm
    "bash": (100, 128),  # a login shell
    "X": (400, 4096),  # XFree86 4.x: ~1.6 MiB text, ~16 MiB anonymous
    "monitor": (20, 64),  # the benchmark's shell and `vmstat 1`
}
#: Started at boot: (program, how many, anonymous pages).
SYSTEM_PROCESSES: tuple[tuple[str, int, int], ...] = (
    ("init", 1, 32),
    ("daemon", 8, 96),
    ("bash", 2, 128),
    ("X", 1, 4096),
)
#: Started during the run: (program, how many, anonymous pages, seconds after start).
SYSTEM_LATE: tuple[tuple[str, int, int, float], ...] = (
    ("monitor", 2, 64, 1.0),  # the test script's shell and its vmstat, as the load starts
)
#: The long-lived processes' kernel-object turnover (docs/workloads.md, "The
#: system"): while it runs, a long-lived process replaces the kernel objects of
#: its mappings and small kmallocs (an mmap/munmap, an open/close), each new one
#: in whatever slab page its cache has partial then. Mean seconds between two
#: replacements of one process: measured on a real 6.18 machine (the six
#: long-lived user processes of a 20.8 s tracing window allocated 56 slab
#: objects still alive at its end: 6 x 20.8 / 56 = 2.2 s).
SYSTEM_TURNOVER_S = 2.2
#: The objects that turn over: the process's vm_area_structs and its small
#: kmallocs (task_struct, mm, files and signal structs live as long as it does).
SYSTEM_TURNOVER_KINDS: tuple[str, ...] = ("vm_area_struct", "kmalloc_32")
#: The files a long-lived process keeps in use for its whole life (its
#: executable, ld.so, libc and libraries, locale files, cwd, root, open fds,
#: and the directories above them, files shared by processes counted once):
#: each one a dentry and an inode with a reference, which neither the
#: shrinkers nor drop_caches free (2.6.11's prune_dcache takes only dentries
#: on dentry_unused, d_count 0; prune_icache only inodes with i_count 0).
#: Measured on a real 6.18 machine (docs/workloads.md, "The system"): 12
#: long-lived user processes held 48 distinct files and 20 more parent
#: directories, 68 / 12 = 5.7 per process.
SYSTEM_FILES_IN_USE = 6
#: The test module's buffers (vmregress keeps its page arrays and reports in
#: kmalloc'd memory): 16 x size-4096.
MODULE_KMALLOC_4096 = 16
LIBC_PAGES = 80  # of glibc's ~1.2 MiB text, the part a short-lived process faults in

#: The slab objects of one task, by kind (the engine packs them into slab
#: pages of their caches: task_struct 1312 B, mm_struct 448 B, files_struct
#: 416 B, signal_struct in size-256, 16 vm_area_structs of 88 B, two small
#: kmallocs): about 4.5 KiB, freed at exit.
TASK_SLAB: tuple[tuple[str, int], ...] = (
    ("slab_other", 1),  # the task_struct object (cache task_struct)
    ("mm_struct", 1),
    ("files_struct", 1),
    ("kmalloc_256", 1),  # signal_struct
    ("vm_area_struct", 16),  # binary, ld.so and libc (3 each), heap, stack, anon maps
    ("kmalloc_32", 2),  # fs_struct and the like
)
PTES_PER_PGD_ENTRY = 1024  # i386 non-PAE: one PTE page maps 4 MiB
DISK_INODES_PER_PAGE = 32  # ext3 on-disk inode 128 bytes: an inode-table block
