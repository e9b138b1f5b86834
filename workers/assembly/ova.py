"""OVA appliances (VMware): OVF descriptor + stream-optimized VMDK + manifest in a tar.

The VMDK comes from `qemu-img convert -O vmdk -o compat6,subformat=streamOptimized,
adapter_type=lsilogic` (what Talos used before open-vmdk), always written as `disk.vmdk`
because qemu-img puts the file's own name into the extent line of the descriptor. qemu-img
writes one random field, the descriptor's content ID (`CID=<hex>`, printed without zero
padding, so even its length varies); it is pinned to a fixed value and the embedded
descriptor (sectors `descriptorOffset` .. + `descriptorSize` of the sparse header) is
re-padded with NULs to its fixed size. Grains are deflated deterministically; nothing else
changes between runs.

The OVF follows Talos' template (talos-formats §3.8): virtual hardware vmx-15, 2 vCPUs,
2048 MB, a VirtualSCSI controller, a VmxNet3 NIC, `disk.EnableUUID=true`, and a
`talos.config` property; the disk capacity in MiB and `ovf:size` the VMDK's size. `disk.mf`
lists `SHA256(<file>)= <hex>` for the VMDK and the OVF. The tar holds `disk.ovf`, `disk.mf`,
`disk.vmdk` in that order (the OVF must come first in an OVA, so this fixed order replaces
sorting), ustar, owner 0:0, mode 0644, mtime = the epoch.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from xml.sax.saxutils import escape

from workers.assembly.qemu_img import convert_disk
from workers.assembly.ustar import write_tar
from workers.hashing import sha256_file

VMDK_NAME = "disk.vmdk"
OVF_NAME = "disk.ovf"
MF_NAME = "disk.mf"
VMDK_OPTIONS = "compat6,subformat=streamOptimized,adapter_type=lsilogic"
FIXED_CID = "49464131"  # "IFA1"
SECTOR = 512
MIB = 1024 * 1024
_CID = re.compile(rb"^CID=[0-9a-fA-F]+$", re.M)


def pin_vmdk_cid(vmdk: Path) -> None:
    """Replace the random content ID in the VMDK's embedded descriptor by FIXED_CID."""
    with vmdk.open("r+b") as f:
        header = f.read(SECTOR)
        if header[:4] != b"KDMV":
            raise ValueError(f"{vmdk}: not a sparse VMDK")
        offset, size = struct.unpack_from("<QQ", header, 28)
        if offset == 0 or size == 0:
            raise ValueError(f"{vmdk}: no embedded descriptor")
        f.seek(offset * SECTOR)
        region = f.read(size * SECTOR)
        text = region.split(b"\0", 1)[0]
        pinned, count = _CID.subn(b"CID=" + FIXED_CID.encode(), text)
        if count != 1:
            raise ValueError(f"{vmdk}: expected one CID line in the descriptor, found {count}")
        if len(pinned) > len(region):
            raise ValueError(f"{vmdk}: descriptor outgrew its {len(region)} bytes")
        f.seek(offset * SECTOR)
        f.write(pinned.ljust(len(region), b"\0"))


def make_vmdk(raw: Path, workdir: Path) -> Path:
    """The reproducible stream-optimized VMDK of `raw`, as `workdir/disk.vmdk`."""
    vmdk = convert_disk(raw, workdir / VMDK_NAME, "vmdk", VMDK_OPTIONS)
    pin_vmdk_cid(vmdk)
    return vmdk


def ovf_descriptor(*, name: str, capacity_bytes: int, vmdk_size: int) -> str:
    """The OVF envelope for one disk (see the module docstring)."""
    name = escape(name)
    capacity_mib = -(-capacity_bytes // MIB)
    items = [
        ("Number of Virtual CPUs", "2 virtual CPU(s)", 1, 3, "<rasd:VirtualQuantity>2"
         "</rasd:VirtualQuantity><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>"),
        ("Memory Size", "2048MB of memory", 2, 4, "<rasd:VirtualQuantity>2048"
         "</rasd:VirtualQuantity><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>"),
        ("SCSI Controller", "SCSI Controller 0", 3, 6,
         "<rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>"),
        ("Hard disk", "Hard Disk 1", 4, 17, "<rasd:AddressOnParent>0</rasd:AddressOnParent>"
         "<rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:Parent>3</rasd:Parent>"),
        ("Network adapter", "Network adapter 1", 5, 10,
         "<rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>"
         "<rasd:Connection>VM Network</rasd:Connection>"
         "<rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>"),
    ]  # fmt: skip
    hardware = "".join(
        f"\n      <Item><rasd:Description>{description}</rasd:Description>"
        f"<rasd:ElementName>{element}</rasd:ElementName><rasd:InstanceID>{instance}"
        f"</rasd:InstanceID><rasd:ResourceType>{kind}</rasd:ResourceType>{extra}</Item>"
        for description, element, instance, kind, extra in items
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" \
xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" \
xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" \
xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" \
xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
    <File ovf:href="{VMDK_NAME}" ovf:id="file1" ovf:size="{vmdk_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{capacity_mib}" ovf:capacityAllocationUnits="byte * 2^20" \
ovf:diskId="vmdisk1" ovf:fileRef="file1" \
ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network"><Description>The VM Network network</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info>
    <Name>{name}</Name>
    <OperatingSystemSection ovf:id="101" vmw:osType="otherLinux64Guest">
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{name}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-15</vssd:VirtualSystemType>
      </System>{hardware}
      <vmw:ExtraConfig ovf:required="false" vmw:key="disk.EnableUUID" vmw:value="true"/>
    </VirtualHardwareSection>
    <ProductSection ovf:required="false">
      <Info>Machine configuration</Info>
      <Product>{name}</Product>
      <Property ovf:key="talos.config" ovf:type="string" ovf:userConfigurable="true" \
ovf:value="">
        <Label>Machine configuration</Label>
        <Description>Inline machine configuration (base64)</Description>
      </Property>
    </ProductSection>
  </VirtualSystem>
</Envelope>
"""


def make_ova(raw: Path, dest: Path, *, workdir: Path, name: str, epoch: int) -> Path:
    """Build the OVA `dest` for the raw disk `raw` (see the module docstring)."""
    vmdk = make_vmdk(raw, workdir)
    ovf = workdir / OVF_NAME
    ovf.write_text(
        ovf_descriptor(name=name, capacity_bytes=raw.stat().st_size, vmdk_size=vmdk.stat().st_size)
    )
    manifest = workdir / MF_NAME
    manifest.write_text(
        f"SHA256({VMDK_NAME})= {sha256_file(vmdk)}\nSHA256({OVF_NAME})= {sha256_file(ovf)}\n"
    )
    write_tar(dest, {m.name: m for m in (ovf, manifest, vmdk)}, epoch, sort=False)
    return dest
