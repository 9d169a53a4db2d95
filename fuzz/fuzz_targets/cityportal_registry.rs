//! The municipality's registry fixture loader: arbitrary bytes are either a registry that holds
//! together (every family exists, one head per family, no duplicate person) or a typed error that
//! names a JSON path; never a panic.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use tscns_cityportal::registry::Registry;

fuzz_target!(|data: &[u8]| {
    match Registry::from_json(data) {
        Ok(registry) => {
            let families: HashSet<&str> =
                registry.families().iter().map(|f| f.id.as_str()).collect();
            let mut seen = HashSet::new();
            for p in registry.people() {
                if let Some(f) = &p.family {
                    assert!(families.contains(f.as_str()), "person in a missing family");
                }
                assert!(
                    seen.insert(p.codice_fiscale.as_str().to_owned()),
                    "duplicate person"
                );
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
