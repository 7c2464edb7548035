//! Fuzz targets for every parser of outside text or bytes (proptest, a
//! bounded number of cases per `cargo test` run): whatever the input, a parser
//! returns a value or an `Error`, and never panics.

use kmm_core::ftrace::{import_bytes, parse_line};
use kmm_core::mm::kpageflags::RealZone;
use kmm_core::page_owner::parse::{aggregate_bytes, Aggregator};
use kmm_core::{Machine, Policy};
use proptest::prelude::*;

/// Text near the formats (so the fuzzer reaches deep into the parsers), mixed with any byte.
fn texty() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        "Page allocated via order ",
        ", mask 0x",
        "(GFP_KERNEL|__GFP_ZERO)",
        ", pid ",
        ", tgid ",
        " (bash), ts ",
        " ns\n",
        "PFN 0x1000 type Unmovable Block 8 type Unmovable Flags 0x0()\n",
        " __alloc_pages+0x1a/0x2c0\n",
        "\n",
        "mm_page_alloc: page=000000001 pfn=0x12 order=0 migratetype=0 gfp_flags=GFP_KERNEL\n",
        "mm_page_free: page=0000000001 pfn=0x12 order=0\n",
        "  bash-1234  [000] ....  12.345678: ",
        "99999999999999999999999999",
        "\u{2028}",
        "\u{85}",
        "0x",
        " ",
    ]);
    prop::collection::vec(
        prop_oneof![
            pieces.prop_map(|s| s.as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 0..8),
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn ftrace_line_parser_never_panics(line in texty()) {
        let _ = parse_line(&line);
    }

    #[test]
    fn ftrace_importer_never_panics(text in texty()) {
        let _ = import_bytes(&text);
    }

    #[test]
    fn page_owner_reader_never_panics(text in texty(), lenient in any::<bool>(), cut in 0usize..64) {
        let _ = aggregate_bytes(&text, lenient);
        // fed in two chunks, cut anywhere
        let mut a = Aggregator::new(lenient);
        let cut = cut.min(text.len());
        if a.feed(&text[..cut]).is_ok() && a.feed(&text[cut..]).is_ok() {
            let _ = a.finish();
        }
    }

    #[test]
    fn kpageflags_snapshot_reader_never_panics(
        flags in prop::collection::vec(any::<u64>(), 0..600),
        zones in prop::collection::vec((0usize..3, 0u64..700, 0u64..700, 0u64..700), 0..4),
    ) {
        let zones: Vec<RealZone> = zones
            .into_iter()
            .map(|(node, start, spanned, present)| RealZone {
                node,
                name: "Normal".into(),
                start_pfn: start,
                spanned,
                present,
                managed: present,
                watermarks: None,
                block_counts: None,
            })
            .collect();
        let _ = Machine::from_snapshot(Policy::Mobility, &zones, &flags);
    }
}
