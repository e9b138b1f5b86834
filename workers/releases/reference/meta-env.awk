# Splits the decoded INSTALLER_META_BASE64 payload ("0x<hex>=<value>" items joined by ";",
# talos-formats §4.6) into "<key>\t<value>" lines; newlines inside a value become "\n" so
# every META value fits on one console line.

BEGIN { RS = ";" }

{
    eq = index($0, "=")
    if (eq == 0) next
    key = substr($0, 1, eq - 1)
    value = substr($0, eq + 1)
    if (key !~ /^0[xX][0-9a-fA-F]+$/) next
    sub(/\n$/, "", value)
    gsub(/\n/, "\\n", value)
    printf "%s\t%s\n", key, value
}
