//! OVF 1.x descriptor renderer (SPECS.md S7; DMTF DSP0243 1.1, envelope schema DSP8023 1.1.1).
//!
//! [`render`] is a pure function from a [`Descriptor`] to the descriptor text. Two flavours:
//!
//! - [`Hypervisor::Vmware`] (the OVA): `vmx-13`, `otherLinux64Guest`, a paravirtual SCSI
//!   controller, a vmxnet3 NIC, EFI firmware, and a ProductSection whose properties reach the
//!   guest as `guestinfo.*` through `ovf:transport="com.vmware.guestInfo"`.
//! - [`Hypervisor::VirtualBox`] (the virtualbox Vagrant box's `box.ovf`): `virtualbox-2.2` with
//!   the hardware VirtualBox gives a new Linux machine: a SATA (AHCI) controller and an Intel
//!   PRO/1000 MT NIC (`E1000`), and no firmware setting, so VirtualBox's default (BIOS) boots
//!   it, through GRUB; set to EFI, systemd-boot boots the same slots. The descriptor stays
//!   within the DMTF schema (no `vbox:Machine`): `VBoxManage import` of it alone boots.
//!
//! Both validate against the DMTF OVF 1.1 envelope schema (`xmllint --schema`, tested in
//! `tests/ovf_schema.rs`). VMware `vmw:` extensions sit where the schema allows extensions (at
//! the end of the VirtualHardwareSection and of an Item) and carry `ovf:required="false"`.

use std::fmt::Write as _;

/// `ovf:format` of a streamOptimized VMDK.
pub const VMDK_STREAM_OPTIMIZED: &str =
    "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";
/// The OVF environment transport that copies properties into VMware guestinfo variables.
pub const GUESTINFO_TRANSPORT: &str = "com.vmware.guestInfo";
/// CIM_OperatingSystem.OsType 101, "Linux 64-Bit" (VirtualBox maps it to Linux26_64).
pub const CIM_OS_LINUX_64: u16 = 101;
/// VMware's guest OS identifier for a 64-bit Linux it has no entry for.
pub const VMWARE_OS_TYPE: &str = "otherLinux64Guest";
/// VMware virtual hardware version 13 (ESXi 6.5 and later): EFI and pvscsi boot.
pub const VMWARE_HW_FAMILY: &str = "vmx-13";
pub const VIRTUALBOX_HW_FAMILY: &str = "virtualbox-2.2";
/// The logical network the NIC connects to; importers map it to a real one.
pub const VMWARE_NETWORK: &str = "VM Network";
pub const VIRTUALBOX_NETWORK: &str = "NAT";

/// Who imports the descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hypervisor {
    /// vSphere/ESXi, Workstation, Fusion (the OVA).
    Vmware,
    /// VirtualBox (`box.ovf` of the virtualbox Vagrant box).
    VirtualBox,
}

/// The product the appliance carries (ProductSection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// `Minimal Linux`.
    pub name: String,
    /// `1.0.0`.
    pub version: String,
    /// `1.0.0 (alpha)`.
    pub full_version: String,
}

/// The disk file the descriptor references, as the VMDK writer reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFile {
    /// File name inside the package.
    pub href: String,
    /// Size of the VMDK file in bytes.
    pub size: u64,
    /// Virtual disk size in bytes.
    pub capacity: u64,
    /// Bytes of the disk actually stored.
    pub populated: u64,
}

/// Everything the descriptor says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// VirtualSystem id and name (`minimal-1.0.0`).
    pub name: String,
    pub product: Product,
    pub disk: DiskFile,
    pub cpus: u32,
    pub memory_mib: u32,
    pub hypervisor: Hypervisor,
}

/// One user-configurable ProductSection property (a guestinfo key for VMware).
struct Property {
    key: &'static str,
    value: &'static str,
    label: &'static str,
    description: &'static str,
}

/// The guestinfo keys Container Linux's first-boot config read on VMware.
const GUESTINFO_PROPERTIES: &[Property] = &[
    Property {
        key: "guestinfo.hostname",
        value: "",
        label: "Hostname",
        description: "Host name of the machine",
    },
    Property {
        key: "guestinfo.coreos.config.data",
        value: "",
        label: "User-data",
        description: "First-boot config (cloud-config or script), encoded as guestinfo.coreos.config.data.encoding says",
    },
    Property {
        key: "guestinfo.coreos.config.data.encoding",
        // Empty, as Container Linux read it: a cloud-config pasted into vSphere as is.
        value: "",
        label: "User-data encoding",
        description: "Encoding of guestinfo.coreos.config.data: base64, gzip+base64, or empty for plain text",
    },
    Property {
        key: "guestinfo.coreos.config.url",
        value: "",
        label: "User-data URL",
        description: "URL the first-boot config fetches user-data from (instead of guestinfo.coreos.config.data)",
    },
];

const ENVELOPE_NAMESPACES: &str = concat!(
    r#"xmlns="http://schemas.dmtf.org/ovf/envelope/1" "#,
    r#"xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" "#,
    r#"xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" "#,
    r#"xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" "#,
    r#"xmlns:vmw="http://www.vmware.com/schema/ovf" "#,
    r#"xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" "#,
    r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#,
);

/// The descriptor text (UTF-8, `\n` line ends, a final newline).
pub fn render(d: &Descriptor) -> String {
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(x, "<Envelope {ENVELOPE_NAMESPACES}>");
    references(&mut x, &d.disk);
    disk_section(&mut x, &d.disk);
    network_section(&mut x, network(d.hypervisor));
    let name = esc(&d.name);
    let _ = writeln!(x, "  <VirtualSystem ovf:id=\"{name}\">");
    x.push_str("    <Info>A virtual machine</Info>\n");
    let _ = writeln!(x, "    <Name>{name}</Name>");
    product_section(&mut x, &d.product, d.hypervisor);
    os_section(&mut x, d.hypervisor);
    hardware_section(&mut x, d);
    x.push_str("  </VirtualSystem>\n");
    x.push_str("</Envelope>\n");
    x
}

fn network(h: Hypervisor) -> &'static str {
    match h {
        Hypervisor::Vmware => VMWARE_NETWORK,
        Hypervisor::VirtualBox => VIRTUALBOX_NETWORK,
    }
}

fn references(x: &mut String, disk: &DiskFile) {
    x.push_str("  <References>\n");
    let _ = writeln!(
        x,
        "    <File ovf:href=\"{}\" ovf:id=\"file1\" ovf:size=\"{}\"/>",
        esc(&disk.href),
        disk.size
    );
    x.push_str("  </References>\n");
}

fn disk_section(x: &mut String, disk: &DiskFile) {
    x.push_str("  <DiskSection>\n");
    x.push_str("    <Info>Virtual disk information</Info>\n");
    let _ = writeln!(
        x,
        "    <Disk ovf:capacity=\"{}\" ovf:capacityAllocationUnits=\"byte\" ovf:diskId=\"vmdisk1\" \
         ovf:fileRef=\"file1\" ovf:format=\"{VMDK_STREAM_OPTIMIZED}\" ovf:populatedSize=\"{}\"/>",
        disk.capacity, disk.populated
    );
    x.push_str("  </DiskSection>\n");
}

fn network_section(x: &mut String, network: &str) {
    x.push_str("  <NetworkSection>\n");
    x.push_str("    <Info>The list of logical networks</Info>\n");
    let _ = writeln!(x, "    <Network ovf:name=\"{network}\">");
    let _ = writeln!(x, "      <Description>The {network} network</Description>");
    x.push_str("    </Network>\n");
    x.push_str("  </NetworkSection>\n");
}

fn product_section(x: &mut String, p: &Product, h: Hypervisor) {
    x.push_str("    <ProductSection ovf:required=\"false\">\n");
    let info = match h {
        Hypervisor::Vmware => "The installed OS; its properties reach the guest as guestinfo",
        Hypervisor::VirtualBox => "The installed OS",
    };
    let _ = writeln!(x, "      <Info>{info}</Info>");
    let _ = writeln!(x, "      <Product>{}</Product>", esc(&p.name));
    let _ = writeln!(x, "      <Version>{}</Version>", esc(&p.version));
    let _ = writeln!(
        x,
        "      <FullVersion>{}</FullVersion>",
        esc(&p.full_version)
    );
    if h == Hypervisor::Vmware {
        for prop in GUESTINFO_PROPERTIES {
            let _ = writeln!(
                x,
                "      <Property ovf:key=\"{}\" ovf:type=\"string\" ovf:userConfigurable=\"true\" ovf:value=\"{}\">",
                prop.key, prop.value
            );
            let _ = writeln!(x, "        <Label>{}</Label>", prop.label);
            let _ = writeln!(x, "        <Description>{}</Description>", prop.description);
            x.push_str("      </Property>\n");
        }
    }
    x.push_str("    </ProductSection>\n");
}

fn os_section(x: &mut String, h: Hypervisor) {
    match h {
        Hypervisor::Vmware => {
            let _ = writeln!(
                x,
                "    <OperatingSystemSection ovf:id=\"{CIM_OS_LINUX_64}\" vmw:osType=\"{VMWARE_OS_TYPE}\">"
            );
        }
        Hypervisor::VirtualBox => {
            let _ = writeln!(
                x,
                "    <OperatingSystemSection ovf:id=\"{CIM_OS_LINUX_64}\">"
            );
        }
    }
    x.push_str("      <Info>The kind of installed guest operating system</Info>\n");
    x.push_str("      <Description>Linux (64-bit)</Description>\n");
    x.push_str("    </OperatingSystemSection>\n");
}

/// A RASD `<Item>`: elements in the schema's (alphabetical) order, then `vmw:Config` extensions.
#[derive(Default)]
struct Item<'a> {
    required: Option<bool>,
    address: Option<&'a str>,
    address_on_parent: Option<&'a str>,
    allocation_units: Option<&'a str>,
    automatic_allocation: Option<bool>,
    connection: Option<&'a str>,
    description: &'a str,
    element_name: String,
    host_resource: Option<&'a str>,
    instance_id: u32,
    parent: Option<u32>,
    resource_sub_type: Option<&'a str>,
    resource_type: u32,
    virtual_quantity: Option<u64>,
    vmw_config: &'a [(&'a str, &'a str)],
}

impl Item<'_> {
    fn write(&self, x: &mut String) {
        match self.required {
            Some(r) => {
                let _ = writeln!(x, "      <Item ovf:required=\"{r}\">");
            }
            None => x.push_str("      <Item>\n"),
        }
        let mut el = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                let _ = writeln!(x, "        <rasd:{name}>{}</rasd:{name}>", esc(&v));
            }
        };
        el("Address", self.address.map(str::to_string));
        el(
            "AddressOnParent",
            self.address_on_parent.map(str::to_string),
        );
        el("AllocationUnits", self.allocation_units.map(str::to_string));
        el(
            "AutomaticAllocation",
            self.automatic_allocation.map(|b| b.to_string()),
        );
        el("Connection", self.connection.map(str::to_string));
        el("Description", Some(self.description.to_string()));
        el("ElementName", Some(self.element_name.clone()));
        el("HostResource", self.host_resource.map(str::to_string));
        el("InstanceID", Some(self.instance_id.to_string()));
        el("Parent", self.parent.map(|p| p.to_string()));
        el(
            "ResourceSubType",
            self.resource_sub_type.map(str::to_string),
        );
        el("ResourceType", Some(self.resource_type.to_string()));
        el(
            "VirtualQuantity",
            self.virtual_quantity.map(|q| q.to_string()),
        );
        for (key, value) in self.vmw_config {
            vmw_config(x, "        ", key, value);
        }
        x.push_str("      </Item>\n");
    }
}

fn vmw_config(x: &mut String, indent: &str, key: &str, value: &str) {
    let _ = writeln!(
        x,
        "{indent}<vmw:Config ovf:required=\"false\" vmw:key=\"{key}\" vmw:value=\"{value}\"/>"
    );
}

/// CIM resource types (CIM_ResourceAllocationSettingData.ResourceType).
mod resource {
    pub const PROCESSOR: u32 = 3;
    pub const MEMORY: u32 = 4;
    pub const IDE_CONTROLLER: u32 = 5;
    pub const PARALLEL_SCSI_HBA: u32 = 6;
    pub const ETHERNET_ADAPTER: u32 = 10;
    pub const CD_DRIVE: u32 = 15;
    pub const DISK_DRIVE: u32 = 17;
    pub const OTHER_STORAGE_DEVICE: u32 = 20;
}

fn hardware_section(x: &mut String, d: &Descriptor) {
    let vmware = d.hypervisor == Hypervisor::Vmware;
    if vmware {
        let _ = writeln!(
            x,
            "    <VirtualHardwareSection ovf:transport=\"{GUESTINFO_TRANSPORT}\">"
        );
    } else {
        x.push_str("    <VirtualHardwareSection>\n");
    }
    x.push_str("      <Info>Virtual hardware requirements</Info>\n");
    x.push_str("      <System>\n");
    x.push_str("        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>\n");
    x.push_str("        <vssd:InstanceID>0</vssd:InstanceID>\n");
    let _ = writeln!(
        x,
        "        <vssd:VirtualSystemIdentifier>{}</vssd:VirtualSystemIdentifier>",
        esc(&d.name)
    );
    let family = if vmware {
        VMWARE_HW_FAMILY
    } else {
        VIRTUALBOX_HW_FAMILY
    };
    let _ = writeln!(
        x,
        "        <vssd:VirtualSystemType>{family}</vssd:VirtualSystemType>"
    );
    x.push_str("      </System>\n");
    Item {
        allocation_units: Some("hertz * 10^6"),
        description: "Number of virtual CPUs",
        element_name: format!("{} virtual CPU(s)", d.cpus),
        instance_id: 1,
        resource_type: resource::PROCESSOR,
        virtual_quantity: Some(d.cpus.into()),
        ..Item::default()
    }
    .write(x);
    Item {
        allocation_units: Some("byte * 2^20"),
        description: "Memory size",
        element_name: format!("{} MB of memory", d.memory_mib),
        instance_id: 2,
        resource_type: resource::MEMORY,
        virtual_quantity: Some(d.memory_mib.into()),
        ..Item::default()
    }
    .write(x);
    // Controllers the images' initramfs drives: VMware's paravirtual SCSI (vmw_pvscsi),
    // VirtualBox's default SATA controller (ahci).
    let (controller, resource_type, sub_type, description) = if vmware {
        (
            "SCSI controller 0",
            resource::PARALLEL_SCSI_HBA,
            "VirtualSCSI",
            "SCSI controller",
        )
    } else {
        (
            "SATA controller 0",
            resource::OTHER_STORAGE_DEVICE,
            "AHCI",
            "SATA controller",
        )
    };
    Item {
        address: Some("0"),
        description,
        element_name: controller.to_string(),
        instance_id: 3,
        resource_sub_type: Some(sub_type),
        resource_type,
        ..Item::default()
    }
    .write(x);
    let disk_config: &[(&str, &str)] = if vmware {
        &[("backing.writeThrough", "false")]
    } else {
        &[]
    };
    Item {
        address_on_parent: Some("0"),
        description: "Boot disk",
        element_name: "Hard disk 1".to_string(),
        host_resource: Some("ovf:/disk/vmdisk1"),
        instance_id: 4,
        parent: Some(3),
        resource_type: resource::DISK_DRIVE,
        vmw_config: disk_config,
        ..Item::default()
    }
    .write(x);
    let network = network(d.hypervisor);
    let (nic, nic_config): (&str, &[(&str, &str)]) = if vmware {
        ("VmxNet3", &[("wakeOnLanEnabled", "false")])
    } else {
        ("E1000", &[])
    };
    let nic_description = format!("{nic} ethernet adapter on {network}");
    Item {
        address_on_parent: vmware.then_some("7"),
        automatic_allocation: Some(true),
        connection: Some(network),
        description: &nic_description,
        element_name: "Network adapter 1".to_string(),
        instance_id: 5,
        resource_sub_type: Some(nic),
        resource_type: resource::ETHERNET_ADAPTER,
        vmw_config: nic_config,
        ..Item::default()
    }
    .write(x);
    if vmware {
        // An IDE controller with an empty CD drive: where a config-drive ISO is attached.
        Item {
            address: Some("0"),
            description: "IDE controller",
            element_name: "IDE controller 0".to_string(),
            instance_id: 6,
            resource_type: resource::IDE_CONTROLLER,
            ..Item::default()
        }
        .write(x);
        Item {
            required: Some(false),
            address_on_parent: Some("0"),
            automatic_allocation: Some(false),
            description: "CD drive for a config-drive ISO",
            element_name: "CD/DVD drive 1".to_string(),
            instance_id: 7,
            parent: Some(6),
            resource_sub_type: Some("vmware.cdrom.remotepassthrough"),
            resource_type: resource::CD_DRIVE,
            ..Item::default()
        }
        .write(x);
        vmw_config(x, "      ", "firmware", "efi");
        // systemd-boot and the kernel are not signed for Secure Boot (yet).
        vmw_config(x, "      ", "bootOptions.efiSecureBootEnabled", "false");
        vmw_config(x, "      ", "tools.syncTimeWithHost", "false");
    }
    x.push_str("    </VirtualHardwareSection>\n");
}

/// Escape text for XML element content and double-quoted attributes. Tabs and line breaks
/// become character references, which a parser keeps as they are (written raw, an attribute
/// would read them as spaces and `\r` would read as `\n`); characters XML 1.0 cannot carry at
/// all (the other control characters, U+FFFE, U+FFFF) become U+FFFD.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(h: Hypervisor) -> Descriptor {
        Descriptor {
            name: "minimal-1.0.0".into(),
            product: Product {
                name: "Minimal Linux".into(),
                version: "1.0.0".into(),
                full_version: "1.0.0 (alpha)".into(),
            },
            disk: DiskFile {
                href: "minimal-1.0.0-disk1.vmdk".into(),
                size: 38_000_128,
                capacity: 843_055_104,
                populated: 36_700_160,
            },
            cpus: 2,
            memory_mib: 1024,
            hypervisor: h,
        }
    }

    #[test]
    fn vmware_descriptor_whole_text() {
        let want = r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="minimal-1.0.0-disk1.vmdk" ovf:id="file1" ovf:size="38000128"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="843055104" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized" ovf:populatedSize="36700160"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>The VM Network network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="minimal-1.0.0">
    <Info>A virtual machine</Info>
    <Name>minimal-1.0.0</Name>
    <ProductSection ovf:required="false">
      <Info>The installed OS; its properties reach the guest as guestinfo</Info>
      <Product>Minimal Linux</Product>
      <Version>1.0.0</Version>
      <FullVersion>1.0.0 (alpha)</FullVersion>
      <Property ovf:key="guestinfo.hostname" ovf:type="string" ovf:userConfigurable="true" ovf:value="">
        <Label>Hostname</Label>
        <Description>Host name of the machine</Description>
      </Property>
      <Property ovf:key="guestinfo.coreos.config.data" ovf:type="string" ovf:userConfigurable="true" ovf:value="">
        <Label>User-data</Label>
        <Description>First-boot config (cloud-config or script), encoded as guestinfo.coreos.config.data.encoding says</Description>
      </Property>
      <Property ovf:key="guestinfo.coreos.config.data.encoding" ovf:type="string" ovf:userConfigurable="true" ovf:value="">
        <Label>User-data encoding</Label>
        <Description>Encoding of guestinfo.coreos.config.data: base64, gzip+base64, or empty for plain text</Description>
      </Property>
      <Property ovf:key="guestinfo.coreos.config.url" ovf:type="string" ovf:userConfigurable="true" ovf:value="">
        <Label>User-data URL</Label>
        <Description>URL the first-boot config fetches user-data from (instead of guestinfo.coreos.config.data)</Description>
      </Property>
    </ProductSection>
    <OperatingSystemSection ovf:id="101" vmw:osType="otherLinux64Guest">
      <Info>The kind of installed guest operating system</Info>
      <Description>Linux (64-bit)</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection ovf:transport="com.vmware.guestInfo">
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>minimal-1.0.0</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of virtual CPUs</rasd:Description>
        <rasd:ElementName>2 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory size</rasd:Description>
        <rasd:ElementName>1024 MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>1024</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:Description>Boot disk</rasd:Description>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
        <vmw:Config ovf:required="false" vmw:key="backing.writeThrough" vmw:value="false"/>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:Description>VmxNet3 ethernet adapter on VM Network</rasd:Description>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
        <vmw:Config ovf:required="false" vmw:key="wakeOnLanEnabled" vmw:value="false"/>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>IDE controller</rasd:Description>
        <rasd:ElementName>IDE controller 0</rasd:ElementName>
        <rasd:InstanceID>6</rasd:InstanceID>
        <rasd:ResourceType>5</rasd:ResourceType>
      </Item>
      <Item ovf:required="false">
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>false</rasd:AutomaticAllocation>
        <rasd:Description>CD drive for a config-drive ISO</rasd:Description>
        <rasd:ElementName>CD/DVD drive 1</rasd:ElementName>
        <rasd:InstanceID>7</rasd:InstanceID>
        <rasd:Parent>6</rasd:Parent>
        <rasd:ResourceSubType>vmware.cdrom.remotepassthrough</rasd:ResourceSubType>
        <rasd:ResourceType>15</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
      <vmw:Config ovf:required="false" vmw:key="bootOptions.efiSecureBootEnabled" vmw:value="false"/>
      <vmw:Config ovf:required="false" vmw:key="tools.syncTimeWithHost" vmw:value="false"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"#;
        let got = render(&descriptor(Hypervisor::Vmware));
        if got != want {
            for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
                assert_eq!(g, w, "line {}", i + 1);
            }
            assert_eq!(got, want);
        }
    }

    #[test]
    fn virtualbox_descriptor_differs_only_in_hardware() {
        let vb = render(&descriptor(Hypervisor::VirtualBox));
        for want in [
            "<Network ovf:name=\"NAT\">",
            "<OperatingSystemSection ovf:id=\"101\">",
            "    <VirtualHardwareSection>\n",
            "<vssd:VirtualSystemType>virtualbox-2.2</vssd:VirtualSystemType>",
            "<rasd:ResourceSubType>AHCI</rasd:ResourceSubType>\n        <rasd:ResourceType>20</rasd:ResourceType>",
            "<rasd:ResourceSubType>E1000</rasd:ResourceSubType>",
            "<FullVersion>1.0.0 (alpha)</FullVersion>",
        ] {
            assert!(vb.contains(want), "{want:?} missing:\n{vb}");
        }
        for absent in ["vmw:Config", "vmw:osType", "guestinfo", "transport", "efi"] {
            assert!(!vb.contains(absent), "{absent:?} in:\n{vb}");
        }
    }

    #[test]
    fn names_are_escaped() {
        let mut d = descriptor(Hypervisor::Vmware);
        d.name = "a<b>&\"c\"".into();
        d.product.name = "O'Brien & Co".into();
        let x = render(&d);
        assert!(x.contains("ovf:id=\"a&lt;b&gt;&amp;&quot;c&quot;\""), "{x}");
        assert!(
            x.contains("<Product>O&apos;Brien &amp; Co</Product>"),
            "{x}"
        );
    }

    /// Found by the `ovf` fuzz target: a control character in a name made the descriptor
    /// ill-formed XML, and a tab or line break in an attribute read back as a space.
    #[test]
    fn control_characters_stay_well_formed() {
        let mut d = descriptor(Hypervisor::Vmware);
        d.name = "a\u{2}b\tc\r\nd\u{ffff}".into();
        let x = render(&d);
        assert!(
            x.contains("ovf:id=\"a\u{fffd}b&#9;c&#13;&#10;d\u{fffd}\""),
            "{x}"
        );
        assert!(!x.chars().any(|c| c < ' ' && c != '\n'), "{x}");
    }
}
