# Lists the records of one Talos ADV block (talos-formats §4.6) given as
# `od -An -v -tu1 -j4 <block>` output (decimal bytes from offset 4 on).
# Prints "<tag> <value offset> <value length>" per record, offsets from the block start.
# Records are u32 tag, u32 length (big-endian), then the value; tag 0 ends the list.
# The caller has already checked both magics and the checksum.

BEGIN {
    pos = 4          # offset of the byte being read
    limit = 262144 - 36  # records must end before the checksum field
    need = 8         # header bytes still to read; 0 while skipping a value
}

{
    for (i = 1; i <= NF; i++) {
        if (need > 0) {
            header[8 - need] = $i + 0
            need--
            if (need == 0) {
                tag = ((header[0] * 256 + header[1]) * 256 + header[2]) * 256 + header[3]
                len = ((header[4] * 256 + header[5]) * 256 + header[6]) * 256 + header[7]
                if (tag == 0 || pos + 1 + len > limit) exit
                print tag, pos + 1, len
                skip = len
                if (skip == 0) need = 8
            }
        } else {
            skip--
            if (skip == 0) need = 8
        }
        pos++
    }
}
