#!/usr/bin/env bash
# Back up InvoiceGen's models and data into one tar.gz with a SHA-256 manifest.
#
#   scripts/backup.sh                        # models/ and data/ of the repository -> backups/
#   scripts/backup.sh -o /mnt/backups models # only models/, elsewhere
#   scripts/backup.sh -C /srv/invoicegen -o /mnt/backups models data outputs
#
# The archive holds the given paths (relative to -C) and MANIFEST.sha256 (`sha256sum` format, one
# line per regular file). After writing it, the archive is read back and every file checked against
# the manifest (skip with --no-verify), and ARCHIVE.sha256 is written beside it.
# Restore with scripts/restore.sh, which verifies everything before it replaces anything.
set -euo pipefail

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  echo "usage: $0 [-C BASE_DIR] [-o OUT_DIR] [-n NAME] [--no-verify] [PATH ...]"
}

base="$(cd "$(dirname "$0")/.." && pwd)"
out=""
name=""
verify=1
paths=()
while [ $# -gt 0 ]; do
  case "$1" in
    -C) base="$2"; shift 2 ;;
    -o) out="$2"; shift 2 ;;
    -n) name="$2"; shift 2 ;;
    --no-verify) verify=0; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "backup: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) paths+=("$1"); shift ;;
  esac
done
[ ${#paths[@]} -gt 0 ] || paths=(models data)
base="$(cd "$base" && pwd)"
out="${out:-$base/backups}"
name="${name:-invoicegen-backup-$(date -u +%Y%m%dT%H%M%SZ)}"

for p in "${paths[@]}"; do
  case "$p" in
    /*|-*|..|../*|*/../*|*/..) echo "backup: $p: give paths relative to $base, without .." >&2; exit 2 ;;
  esac
  [ -e "$base/$p" ] || { echo "backup: $base/$p does not exist" >&2; exit 2; }
  [ "$p" != "MANIFEST.sha256" ] || { echo "backup: MANIFEST.sha256 is reserved" >&2; exit 2; }
done

mkdir -p "$out"
out="$(cd "$out" && pwd)"
archive="$out/$name.tar.gz"
[ ! -e "$archive" ] || { echo "backup: $archive already exists" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/invoicegen-backup.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# 1. manifest of every regular file (sorted, so two backups of the same tree have the same manifest)
(cd "$base" && find "${paths[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum --) \
  > "$work/MANIFEST.sha256"
files=$(wc -l < "$work/MANIFEST.sha256")

# 2. the archive: the paths, then the manifest (written under a temporary name, renamed when complete)
tar -czf "$archive.partial" -C "$base" "${paths[@]}" -C "$work" MANIFEST.sha256
mv "$archive.partial" "$archive"

# 3. read it back: a file that changed while it was archived, or a bad disk, fails here, not at restore
if [ "$verify" = 1 ]; then
  mkdir "$work/check"
  tar -xzf "$archive" -C "$work/check"
  if ! (cd "$work/check" && sha256sum --quiet --strict -c MANIFEST.sha256); then
    echo "backup: FAILED: $archive does not match its manifest (files changed during the backup?)" >&2
    rm -f "$archive"
    exit 1
  fi
fi

(cd "$out" && sha256sum -- "$name.tar.gz" > "$name.tar.gz.sha256")
size=$(du -h "$archive" | cut -f1)
echo "backup: $archive ($files files, $size; ${paths[*]})"
