//! Writing `mm_page_alloc_extfrag` events as the kernel's ftrace `trace`
//! text: `<comm>-<pid> [<cpu>] <flags> <seconds>.<usecs>: mm_page_alloc_extfrag:
//! page=%p pfn=0x%lx alloc_order=%d fallback_order=%d pageblock_order=%d
//! alloc_migratetype=%d fallback_migratetype=%d fragmenting=%d
//! change_ownership=%d` (`include/trace/events/kmem.h`), the task column as
//! ftrace pads it (`%16s-%-7d`), CPU 0, the flags of an event traced under
//! the zone lock with interrupts off (`d..3.`, as `mm_page_alloc_zone_locked`
//! shows them in a real 6.x trace), the page pointer as the x86_64 vmemmap
//! address printed unhashed (`no_hash_pointers`), and today's migratetype
//! numbers (0 Unmovable, 1 Movable, 2 Reclaimable).

use crate::mm::events::ExtfragEvent;
use crate::mm::machine::Machine;
use crate::mm::page::{LT_KERNRCLM, LT_NORCLM, LT_USERRCLM};
use std::fmt::Write;

/// `VMEMMAP_START` on x86_64 with 4-level page tables, and `sizeof(struct page)`.
const VMEMMAP_START: u64 = 0xffff_ea00_0000_0000;
const STRUCT_PAGE: u64 = 64;

/// kmm's type number -> today's migratetype number.
fn migratetype(lt: u8) -> u8 {
    match lt as usize {
        LT_NORCLM => 0,
        LT_USERRCLM => 1,
        LT_KERNRCLM => 2,
        _ => lt,
    }
}

/// One event as a line of the ftrace `trace` file (no newline).
pub fn format_extfrag(ev: &ExtfragEvent, pageblock_order: u32, comm: &str) -> String {
    let us = ev.ns / 1000;
    format!(
        "{comm:>16}-{pid:<7} [000] d..3. {s:>5}.{u:06}: mm_page_alloc_extfrag: page={page:016x} pfn={pfn:#x} \
         alloc_order={ao} fallback_order={fo} pageblock_order={pb} alloc_migratetype={am} \
         fallback_migratetype={fm} fragmenting={fr} change_ownership={co}",
        pid = ev.pid,
        s = us / 1_000_000,
        u = us % 1_000_000,
        page = VMEMMAP_START + ev.pfn as u64 * STRUCT_PAGE,
        pfn = ev.pfn,
        ao = ev.alloc_order,
        fo = ev.fallback_order,
        pb = pageblock_order,
        am = migratetype(ev.alloc_type),
        fm = migratetype(ev.fallback_type),
        fr = ((ev.fallback_order as u32) < pageblock_order) as u8,
        co = ev.change_ownership as u8,
    )
}

impl Machine {
    /// The kept `mm_page_alloc_extfrag` events as ftrace `trace` text, with
    /// the `# tracer: nop` header; None unless built with `trace_extfrag`.
    pub fn extfrag_trace(&self) -> Option<String> {
        let log = self.extfrag_log.as_ref()?;
        let mut out = String::from("# tracer: nop\n#\n");
        let _ = writeln!(
            out,
            "# entries-in-buffer/entries-written: {}/{}   #P:1\n#",
            log.len(),
            log.len()
        );
        for ev in log {
            out.push_str(&format_extfrag(ev, self.block_order, "kmm"));
            out.push('\n');
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ftrace::parse_line;

    #[test]
    fn the_kernels_line_byte_for_byte() {
        let ev = ExtfragEvent {
            ns: 4_087_405_897_123,
            pid: 17889,
            pfn: 0x20293b,
            alloc_order: 0,
            fallback_order: 3,
            alloc_type: LT_NORCLM as u8,
            fallback_type: LT_USERRCLM as u8,
            change_ownership: false,
        };
        assert_eq!(
            format_extfrag(&ev, 9, "kmm"),
            "             kmm-17889   [000] d..3.  4087.405897: mm_page_alloc_extfrag: \
             page=ffffea00080a4ec0 pfn=0x20293b alloc_order=0 fallback_order=3 pageblock_order=9 \
             alloc_migratetype=0 fallback_migratetype=1 fragmenting=1 change_ownership=0"
        );
        let claim = ExtfragEvent {
            fallback_order: 9,
            alloc_type: LT_KERNRCLM as u8,
            change_ownership: true,
            ..ev
        };
        let line = format_extfrag(&claim, 9, "kmm");
        assert!(line.ends_with(
            "alloc_migratetype=2 fallback_migratetype=1 fragmenting=0 change_ownership=1"
        ));
        // the importer reads the line back as the event it is
        let parsed = parse_line(line.as_bytes());
        assert!(format!("{parsed:?}").contains("Extfrag"), "{parsed:?}");
    }
}
