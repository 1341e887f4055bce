#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh, verifying it completely before replacing anything.
#
#   scripts/restore.sh backups/invoicegen-backup-20240101T000000Z.tar.gz
#   scripts/restore.sh -C /srv/invoicegen --keep-old ARCHIVE
#   scripts/restore.sh --check ARCHIVE        # only verify, change nothing
#
# Order: ARCHIVE.sha256 (when present) -> unpack into a staging directory next to the target ->
# every file against MANIFEST.sha256, and no file that the manifest does not list -> only then each
# top-level path (models/, data/, ...) is swapped in. On any failure the target is left untouched.
# The replaced paths are moved to BASE/.pre-restore-<time>/ and removed at the end (--keep-old keeps them).
set -euo pipefail

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  echo "usage: $0 [-C BASE_DIR] [--keep-old] [--check] ARCHIVE"
}

base="$(cd "$(dirname "$0")/.." && pwd)"
keep_old=0
check_only=0
archive=""
while [ $# -gt 0 ]; do
  case "$1" in
    -C) base="$2"; shift 2 ;;
    --keep-old) keep_old=1; shift ;;
    --check) check_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "restore: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [ -z "$archive" ] || { echo "restore: one archive at a time" >&2; exit 2; }; archive="$1"; shift ;;
  esac
done
[ -n "$archive" ] || { usage >&2; exit 2; }
[ -f "$archive" ] || { echo "restore: $archive not found" >&2; exit 2; }
archive="$(cd "$(dirname "$archive")" && pwd)/$(basename "$archive")"
mkdir -p "$base"
base="$(cd "$base" && pwd)"

fail() { echo "restore: FAILED: $*; nothing was changed in $base" >&2; exit 1; }

# 1. the archive's own checksum, when backup.sh wrote one
if [ -f "$archive.sha256" ]; then
  want=$(cut -d' ' -f1 < "$archive.sha256")
  have=$(sha256sum -- "$archive" | cut -d' ' -f1)
  [ "$want" = "$have" ] || fail "$archive does not match $archive.sha256 (damaged or replaced archive)"
fi

# 2. unpack into a staging directory on the same filesystem as the target (so the swap is a rename)
stage="$(mktemp -d "$base/.restore.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
tar -xzf "$archive" -C "$stage" --no-same-owner 2>"$stage.err" || { cat "$stage.err" >&2; rm -f "$stage.err"; \
  fail "cannot unpack $archive"; }
rm -f "$stage.err"
[ -f "$stage/MANIFEST.sha256" ] || fail "$archive has no MANIFEST.sha256 (not made by backup.sh?)"

# 3. every file matches, none is missing, none was added
(cd "$stage" && sha256sum --quiet --strict -c MANIFEST.sha256) || fail "checksums do not match the manifest"
listed=$(sed -E 's/^[0-9a-f]{64} [ *]//' "$stage/MANIFEST.sha256" | LC_ALL=C sort)
present=$(cd "$stage" && find . -type f ! -path ./MANIFEST.sha256 | sed 's|^\./||' | LC_ALL=C sort)
[ "$listed" = "$present" ] || fail "the archive holds files the manifest does not list"
files=$(wc -l < "$stage/MANIFEST.sha256")
tops=()
while IFS= read -r -d '' entry; do
  tops+=("$(basename "$entry")")
done < <(find "$stage" -mindepth 1 -maxdepth 1 ! -name MANIFEST.sha256 -print0 | LC_ALL=C sort -z)
echo "restore: $archive verified ($files files: ${tops[*]})"
[ "$check_only" = 0 ] || exit 0

# 4. swap: the old paths aside first, then the verified ones in
old="$base/.pre-restore-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$old"
swapped=()
rollback() {  # a rename failed half-way: put back what was there
  for t in "${swapped[@]}"; do
    rm -rf -- "${base:?}/$t"
    if [ -e "$old/$t" ] || [ -L "$old/$t" ]; then mv -- "$old/$t" "$base/$t"; fi
  done
}
for t in "${tops[@]}"; do
  swapped+=("$t")
  if [ -e "$base/$t" ] || [ -L "$base/$t" ]; then
    mv -- "$base/$t" "$old/$t" || { rollback; fail "cannot move $base/$t aside"; }
  fi
  mv -- "$stage/$t" "$base/$t" || { rollback; fail "cannot move the restored $t into place"; }
done
if [ "$keep_old" = 1 ]; then
  echo "restore: previous contents kept in $old"
else
  rm -rf -- "$old"
fi
echo "restore: restored ${tops[*]} into $base"
