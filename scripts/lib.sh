# Shared by scripts/serve and scripts/test (sourced, not run): install what is missing, once.
# Both are idempotent: with everything in place they touch neither apt nor pip.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
# Debian 12's own Python (3.11.2), never a newer one earlier on PATH: the container image and a
# plain Debian machine run this one, and it lacks features newer 3.11 releases added (tarfile's
# extraction filters came in 3.11.4), so the suite must run on it too.
PYTHON=/usr/bin/python3
export DEBIAN_FRONTEND=noninteractive

say() { printf '==> %s\n' "$*" >&2; }

# Package names from list files: comments and blank lines dropped.
packages_in() {
    sed -e 's/#.*//' -e 's/[[:space:]]//g' "$@" | grep -v '^$'
}

_apt_updated=""
apt_install() {
    if [[ $EUID -ne 0 ]]; then
        say "missing Debian packages: $*"
        say "run this script as root (it calls apt-get install)"
        exit 1
    fi
    if [[ -z $_apt_updated ]]; then
        apt-get update -q
        _apt_updated=1
    fi
    apt-get install -y -q --no-install-recommends "$@"
}

# Install the packages of the given list files that are not installed yet.
ensure_apt_packages() {
    local wanted missing
    mapfile -t wanted < <(packages_in "$@")
    mapfile -t missing < <(
        for pkg in "${wanted[@]}"; do
            [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null) == "ii "* ]] || echo "$pkg"
        done
    )
    if ((${#missing[@]})); then
        say "installing ${#missing[@]} Debian packages: ${missing[*]}"
        apt_install "${missing[@]}"
    fi
}

# A venv in .venv with the project installed editable, with the given extras ("" or "dev").
# Library versions follow scripts/constraints.txt. Re-installs only when pyproject.toml or
# the constraints changed since the last install with those extras.
ensure_venv() {
    local extras="$1" spec="." stamp digest
    [[ -n $extras ]] && spec=".[$extras]"
    if [[ ! -x $PYTHON ]]; then
        apt_install python3
    fi
    if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null ||
        [[ $("$VENV/bin/python" -c 'import sys; print(sys.base_prefix)') != /usr ]]; then
        rm -rf "$VENV"
        if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
            # Debian splits venv (ensurepip) out of python3.
            rm -rf "$VENV"
            say "python3 -m venv failed; installing python3-venv"
            apt_install python3-venv
            "$PYTHON" -m venv "$VENV"
        fi
    fi
    digest="$(cat "$REPO_ROOT/pyproject.toml" "$REPO_ROOT/scripts/constraints.txt" | sha256sum | cut -d' ' -f1)"
    stamp="$VENV/.installed${extras:+-$extras}"
    # An install with the dev extras includes the plain one.
    if [[ -z $extras && -f $VENV/.installed-dev && $(cat "$VENV/.installed-dev") == "$digest" ]]; then
        return
    fi
    if [[ ! -f $stamp || $(cat "$stamp") != "$digest" ]]; then
        say "pip install -e '$spec' into .venv"
        (
            cd "$REPO_ROOT"
            "$VENV/bin/python" -m pip install -q --upgrade pip
            "$VENV/bin/python" -m pip install -q -c scripts/constraints.txt -e "$spec"
        )
        echo "$digest" >"$stamp"
    fi
}

# Run as root, scripts/serve serves and builds as this unprivileged system user: nothing the
# service runs (least of all a tool unpacking an uploaded extension) needs root.
SERVICE_USER=image-factory

# exec "$@" as $SERVICE_USER (created when missing), with the data directory "$1" made its own.
# The repository and .venv stay root's: the user only needs to read them.
exec_as_service_user() {
    local data_dir
    data_dir="$(realpath -m "$1")"
    shift
    if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
        say "creating the system user $SERVICE_USER"
        useradd --system --user-group --shell /usr/sbin/nologin --home-dir /nonexistent \
            --no-create-home "$SERVICE_USER"
    fi
    mkdir -p "$data_dir"
    # -h: a link in the data directory (extensions carry them) is changed, never followed.
    find "$data_dir" \! -user "$SERVICE_USER" -exec chown -h "$SERVICE_USER:$SERVICE_USER" {} +
    local as_user=(setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --init-groups
        --inh-caps=-all --bounding-set=-all)
    if ! "${as_user[@]}" test -r "$REPO_ROOT/pyproject.toml" -a -x "$VENV/bin/python" \
        -a -w "$data_dir"; then
        say "user $SERVICE_USER cannot read $REPO_ROOT and its .venv, or write $data_dir:"
        say "make the directories above them searchable (chmod o+x), or clone elsewhere"
        exit 1
    fi
    say "serving as user $SERVICE_USER (data directory $data_dir)"
    exec "${as_user[@]}" env HOME="$data_dir" USER="$SERVICE_USER" LOGNAME="$SERVICE_USER" "$@"
}
