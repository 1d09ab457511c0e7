#!/usr/bin/env bash
# render-users-acl.sh -- turns the template deploy/redis/users.acl into a
# Redis ACL file: each user's password hash filled in, and the key prefix
# and user names changed when the deployment's CREDITS_PREFIX is not
# "credits".
#
#   deploy/redis/render-users-acl.sh [--prefix P] PASSWORD_DIR >users.acl
#
# PASSWORD_DIR holds one file per user, named worker, webapp, webhook,
# scheduler, operator and console, each holding that user's password on its
# first line (mode 0600: they are the passwords). The output holds only SHA-256
# hashes of them (Redis's `#<hash>` rule). With --prefix P the users are
# P-worker, P-webapp, ... and their keys P:jobs:consume, P:result:*, ...
#
# The template itself does not load: its `#NAME_PASSWORD_SHA256`
# placeholders are not hashes, so a Redis started on it unrendered refuses
# to start rather than run with known passwords.
set -euo pipefail

TEMPLATE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/users.acl"
USERS=(worker webapp webhook scheduler operator console)

die() {
    echo "render-users-acl.sh: $*" >&2
    exit 2
}

prefix=credits
if [ "${1:-}" = --prefix ]; then
    [ $# -ge 2 ] || die "--prefix needs a value"
    prefix=$2
    shift 2
fi
[ $# -eq 1 ] || die "usage: render-users-acl.sh [--prefix P] PASSWORD_DIR"
dir=$1
# The same rule as CREDITS_PREFIX, less what a user name or a sed
# replacement could not hold.
[[ $prefix =~ ^[A-Za-z0-9_.-]{1,64}$ ]] ||
    die "the prefix must be 1 to 64 letters, digits, '_', '.' or '-' (got \"$prefix\")"

script=()
for user in "${USERS[@]}"; do
    file="$dir/$user"
    [ -r "$file" ] || die "no password file $file"
    password=$(head -n 1 "$file")
    [ -n "$password" ] || die "$file has no password on its first line"
    hash=$(printf '%s' "$password" | sha256sum | cut -d' ' -f1)
    placeholder="$(tr '[:lower:]' '[:upper:]' <<<"$user")_PASSWORD_SHA256"
    script+=(-e "s/#$placeholder\\b/#$hash/")
done
# Key patterns (~credits:, %R~credits:, %W~credits:) and user names.
script+=(-e "s/~credits:/~$prefix:/g" -e "s/^user credits-/user $prefix-/")
sed "${script[@]}" "$TEMPLATE"
