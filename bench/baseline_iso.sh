#!/usr/bin/env bash
# Baseline for bench/build.py: the hybrid ISO built by hand with the same tools and flags the
# factory uses, as one plain shell pipeline (no Python, no store, no cache).
#
# Usage: baseline_iso.sh WORK BASE_INITRAMFS VMLINUZ GRUB_BIOS_DIR GRUB_EFI_DIR CMDLINE_FILE \
#                        EXTENSIONS_YAML EPOCH EXT_TAR...
# EXT_TAR: canonical extension tars (manifest.yaml + rootfs/) in layer order, numbered 0, 1, ...
# EXTENSIONS_YAML: the rendered /extensions.yaml (listing 0.sqsh ... as the factory does).
# Writes WORK/baseline.iso. With RECOMPRESS=1 in the environment, the initramfs is made the
# recompress-everything way instead (base decompressed, segment appended, all compressed again). Steps, as the factory runs them:
#   per extension: untar, move firmware out, mksquashfs (zstd 18, root-owned, fixed times)
#   segment: extensions.yaml + N.sqsh + firmware -> newc cpio (sorted, reproducible) -> zstd -18
#   initramfs = base || segment
#   GRUB: i386-pc-eltorito core + x86_64-efi core (grub-mkimage), FAT efi.img (mkfs.vfat+mtools)
#   xorriso -as mkisofs with the hybrid MBR/GPT and fixed dates.
set -euo pipefail
export LC_ALL=C TZ=UTC MTOOLS_SKIP_CHECK=1
work=$1 base=$2 vmlinuz=$3 grub_bios=$4 grub_efi=$5 cmdline_file=$6 ext_yaml=$7 epoch=$8
shift 8
export SOURCE_DATE_EPOCH=$epoch

rm -rf "$work" && mkdir -p "$work/segment" "$work/iso/boot/grub/i386-pc" "$work/efi/EFI/BOOT"
n=0
for tar in "$@"; do
    x="$work/ext-$n"
    mkdir -p "$x"
    tar -xf "$tar" -C "$x"
    if [ -d "$x/rootfs/usr/lib/firmware" ]; then
        mkdir -p "$work/segment/usr/lib"
        cp -a "$x/rootfs/usr/lib/firmware" "$work/segment/usr/lib/"
        rm -rf "$x/rootfs/usr/lib/firmware"
    fi
    env -u SOURCE_DATE_EPOCH mksquashfs "$x/rootfs" "$work/segment/$n.sqsh" -noappend -all-root \
        -no-xattrs -comp zstd -Xcompression-level 18 -mkfs-time "$epoch" -all-time "$epoch" \
        -no-progress -quiet
    n=$((n + 1))
done
cp "$ext_yaml" "$work/segment/extensions.yaml"
find "$work/segment" -exec touch -h -d "@$epoch" {} +
(cd "$work/segment" && find . -mindepth 1 -printf '%P\0' | sort -z |
    cpio --create --format=newc --null --reproducible --owner=0:0 --quiet) > "$work/segment.cpio"
if [ -n "${RECOMPRESS:-}" ]; then
    # The recompress-everything approach: the base unpacked, the extensions appended, the
    # whole archive compressed again (zstd -18, as Talos >= 1.8 compresses initramfs parts).
    { xz -dc "$base" 2> /dev/null || zstd -dc "$base"; cat "$work/segment.cpio"; } |
        zstd -q -18 -T0 -c > "$work/iso/boot/initramfs.xz"
else
    zstd -q -18 -T0 -c "$work/segment.cpio" > "$work/segment.cpio.zst"
    cat "$base" "$work/segment.cpio.zst" > "$work/iso/boot/initramfs.xz"
fi
cp "$vmlinuz" "$work/iso/boot/vmlinuz"

date_uuid=$(date -u -d "@$epoch" +%Y%m%d%H%M%S)00
grub_uuid=$(date -u -d "@$epoch" +%Y-%m-%d-%H-%M-%S)-00
cat > "$work/early.cfg" <<EOF
search --no-floppy --fs-uuid --set=root $grub_uuid
set prefix=(\$root)/boot/grub
configfile \$prefix/grub.cfg
EOF
cat > "$work/iso/boot/grub/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set default=0
set timeout=0

menuentry "Baseline" {
  set gfxpayload=text
  linux /boot/vmlinuz $(cat "$cmdline_file")
  initrd /boot/initramfs.xz
}
EOF
modules="part_gpt part_msdos fat xfs ext2 iso9660 normal configfile linux boot search
search_fs_uuid search_fs_file search_label ls cat echo test help reboot halt all_video serial
terminal"
# shellcheck disable=SC2086
grub-mkimage -d "$grub_bios" -O i386-pc-eltorito -o "$work/iso/boot/grub/i386-pc/eltorito.img" \
    -p /boot/grub -c "$work/early.cfg" $modules biosdisk
# shellcheck disable=SC2086
grub-mkimage -d "$grub_efi" -O x86_64-efi -o "$work/efi/EFI/BOOT/BOOTX64.EFI" -p /boot/grub \
    -C xz -c "$work/early.cfg" $modules efi_gop
size=$(stat -c %s "$work/efi/EFI/BOOT/BOOTX64.EFI")
mib=$(((size + 512 * 1024 + 1048575) / 1048576))
truncate -s "${mib}M" "$work/iso/efi.img"
mkfs.vfat --invariant -i 45464931 -n EFIBOOT "$work/iso/efi.img" > /dev/null
touch -d "@$epoch" "$work/efi/EFI/BOOT/BOOTX64.EFI"
mmd -i "$work/iso/efi.img" ::/EFI ::/EFI/BOOT
mcopy -m -i "$work/iso/efi.img" "$work/efi/EFI/BOOT/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI

xorriso -as mkisofs -graft-points -volid BASELINE -b boot/grub/i386-pc/eltorito.img \
    -no-emul-boot -boot-load-size 4 -boot-info-table --grub2-boot-info \
    --grub2-mbr "$grub_bios/boot_hybrid.img" --efi-boot efi.img -efi-boot-part \
    --efi-boot-image --protective-msdos-label -o "$work/baseline.iso" -r "$work/iso" \
    -- -volume_date uuid "$date_uuid" -volume_date c "$date_uuid" -volume_date m "$date_uuid" \
    -volume_date x default -volume_date f default -volume_date all_file_dates "=$epoch" \
    2> "$work/xorriso.log"
