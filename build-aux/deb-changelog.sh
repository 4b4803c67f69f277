#!/bin/sh
# Writes debian/changelog for `make deb`: the package version is Cargo.toml's (a native
# package: the repository is upstream and packaging at once), the date and the note are the
# commit's, so building the same commit twice gives the same package.
# Usage: deb-changelog.sh VERSION > debian/changelog
set -eu
version=$1
[ -n "$version" ] || { echo "deb-changelog.sh: no version (Cargo.toml's [package] version)" >&2; exit 1; }
if commit=$(git describe --always --dirty 2>/dev/null) && date=$(git log -1 --format=%aD 2>/dev/null) \
        && [ -n "$date" ]; then
    note="Built from git commit $commit."
else
    commit=""
    date=$(date -R)
    note="Built outside a git checkout."
fi
cat <<CHANGELOG
libapache2-mod-auth-memsession ($version) unstable; urgency=medium

  * $note

 -- mod_auth_memsession developers <dev@memsession.invalid>  $date
CHANGELOG
