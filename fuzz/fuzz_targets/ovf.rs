//! The OVF descriptor renderer (`ova::ovf::render`): for any descriptor, names and numbers
//! included, the text is well-formed XML (an XML 1.0 parser reads it), and reading it gives
//! back the names, sizes and counts it was rendered from, exactly (but for the characters XML
//! cannot carry at all, which read back as U+FFFD).
//!
//! Input: `<name>\0<product>\0<version>\0<full version>\0<disk file>\0<numbers>`, the numbers
//! little-endian: file size, capacity, populated size (8 bytes each), CPUs, memory (4 bytes
//! each), then the hypervisor (even: VMware, odd: VirtualBox).

#![no_main]

use libfuzzer_sys::fuzz_target;
use ova::ovf::{render, Descriptor, DiskFile, Hypervisor, Product};
use roxmltree::{Document, Node};

const OVF: &str = "http://schemas.dmtf.org/ovf/envelope/1";
const RASD: &str =
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData";

fuzz_target!(|data: &[u8]| {
    let parts = fuzz::split_nul(data, 6);
    let text = |i: usize| String::from_utf8_lossy(parts[i]).into_owned();
    let mut numbers = [0u8; 33];
    for (n, b) in numbers.iter_mut().zip(parts[5]) {
        *n = *b;
    }
    let u64_at = |i: usize| u64::from_le_bytes(numbers[i..i + 8].try_into().unwrap());
    let u32_at = |i: usize| u32::from_le_bytes(numbers[i..i + 4].try_into().unwrap());
    let d = Descriptor {
        name: text(0),
        product: Product {
            name: text(1),
            version: text(2),
            full_version: text(3),
        },
        disk: DiskFile {
            href: text(4),
            size: u64_at(0),
            capacity: u64_at(8),
            populated: u64_at(16),
        },
        cpus: u32_at(24),
        memory_mib: u32_at(28),
        hypervisor: if numbers[32] % 2 == 0 {
            Hypervisor::Vmware
        } else {
            Hypervisor::VirtualBox
        },
    };
    let xml = render(&d);
    let doc = Document::parse(&xml).unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{xml}"));

    let name = carried(&d.name);
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "Envelope");
    let file = element(root, "File");
    assert_eq!(
        file.attribute((OVF, "href")),
        Some(carried(&d.disk.href).as_str())
    );
    assert_eq!(
        file.attribute((OVF, "size")),
        Some(d.disk.size.to_string().as_str())
    );
    let disk = element(root, "Disk");
    assert_eq!(
        disk.attribute((OVF, "capacity")),
        Some(d.disk.capacity.to_string().as_str())
    );
    let system = element(root, "VirtualSystem");
    assert_eq!(system.attribute((OVF, "id")), Some(name.as_str()));
    assert_eq!(text_of(element(system, "Name")), name);
    assert_eq!(text_of(element(system, "VirtualSystemIdentifier")), name);
    let product = &d.product;
    assert_eq!(text_of(element(system, "Product")), carried(&product.name));
    assert_eq!(
        text_of(element(system, "Version")),
        carried(&product.version)
    );
    assert_eq!(
        text_of(element(system, "FullVersion")),
        carried(&product.full_version)
    );
    let quantities: Vec<String> = system
        .descendants()
        .filter(|n| {
            n.tag_name().namespace() == Some(RASD) && n.tag_name().name() == "VirtualQuantity"
        })
        .map(text_of)
        .collect();
    assert_eq!(quantities, [d.cpus.to_string(), d.memory_mib.to_string()]);
});

/// `s` as XML 1.0 can hold it: its `Char` production, anything else U+FFFD.
fn carried(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// The first element named `name` below `node`.
fn element<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Node<'a, 'i> {
    node.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
        .unwrap_or_else(|| panic!("no <{name}>"))
}

/// All the text inside `node` (none is an empty string).
fn text_of(node: Node) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}
