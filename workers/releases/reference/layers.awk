# Reads /extensions.yaml (Talos format, as the go-yaml encoder writes it) and prints one line
# per layer, in file order: "<image>\t<name>\t<version>".
#
# Understood: block style, "- " items under the top-level "layers:" key, item keys "image" and
# "metadata", and metadata's direct children "name" and "version" as plain, 'single' or
# "double" quoted scalars. Deeper keys (compatibility.talos.version) and block scalars
# (extraInfo: |) are skipped by their indentation. Exit status 1 if a layer lacks a field.

function indent_of(s) {
    match(s, /^ */)
    return RLENGTH
}

function scalar(s) {
    sub(/^[^:]*:[ \t]*/, "", s)
    sub(/[ \t]+$/, "", s)
    if (s ~ /^'.*'$/) {
        s = substr(s, 2, length(s) - 2)
        gsub(/''/, "'", s)
    } else if (s ~ /^".*"$/) {
        s = substr(s, 2, length(s) - 2)
        gsub(/\\"/, "\"", s)
        gsub(/\\\\/, "\\", s)
    } else {
        sub(/[ \t]+#.*$/, "", s)
    }
    return s
}

function flush() {
    if (in_item) {
        if (image == "" || name == "" || version == "") {
            print "extensions.yaml: layer " count " lacks image, name or version" > "/dev/stderr"
            bad = 1
        } else {
            printf "%s\t%s\t%s\n", image, name, version
        }
    }
    in_item = 0
    image = name = version = ""
    meta_indent = child_indent = -1
}

BEGIN {
    item_indent = key_indent = meta_indent = child_indent = -1
}

/^[ \t]*(#.*)?$/ { next }

{
    ind = indent_of($0)
    text = substr($0, ind + 1)
    if (ind == 0 && text !~ /^-( |$)/) {
        flush()
        in_layers = (text ~ /^layers:[ \t]*$/)
        next
    }
    if (!in_layers) next
    if (text ~ /^-( |$)/ && (item_indent < 0 || ind == item_indent)) {
        flush()
        in_item = 1
        count++
        item_indent = ind
        rest = substr(text, 2)
        match(rest, /^ */)
        ind += 1 + RLENGTH
        text = substr(rest, RLENGTH + 1)
        key_indent = (text == "") ? -1 : ind
        if (text == "") next
    }
    if (!in_item) next
    if (key_indent < 0) key_indent = ind
    if (ind == key_indent) {
        meta_indent = child_indent = -1
        if (text ~ /^image:/) image = scalar(text)
        else if (text ~ /^metadata:[ \t]*$/) meta_indent = ind
        next
    }
    if (meta_indent >= 0 && ind > meta_indent) {
        if (child_indent < 0) child_indent = ind
        if (ind == child_indent) {
            if (text ~ /^name:/) name = scalar(text)
            else if (text ~ /^version:/) version = scalar(text)
        }
    }
}

END {
    flush()
    exit bad
}
