"""scripts/backup.sh and scripts/restore.sh on a temporary tree: a round trip restores every byte,
and a damaged archive is refused before anything in the target is touched."""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKUP = ROOT / "scripts" / "backup.sh"
RESTORE = ROOT / "scripts" / "restore.sh"


def run(script: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *map(str, args)], capture_output=True, text=True, timeout=120)


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every regular file under ``root``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    model = src / "models" / "invoicegen-small"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(bytes(range(256)) * 400)
    (model / "labels.json").write_text('{"ner": ["O"]}')
    (src / "data" / "factory" / "pdf").mkdir(parents=True)
    (src / "data" / "factory" / "documents.jsonl").write_text('{"id": 1}\n' * 50)
    (src / "data" / "factory" / "pdf" / "a file with spaces.pdf").write_bytes(b"%PDF-1.4 fake")
    (src / "outputs").mkdir()
    (src / "outputs" / "not-backed-up.json").write_text("{}")
    return src


def make_backup(tree: Path, out: Path) -> Path:
    proc = run(BACKUP, "-C", tree, "-o", out, "-n", "test-backup")
    assert proc.returncode == 0, proc.stderr
    archive = out / "test-backup.tar.gz"
    assert archive.is_file() and (out / "test-backup.tar.gz.sha256").is_file()
    assert str(archive) in proc.stdout and "4 files" in proc.stdout
    return archive


def test_round_trip_restores_every_file(tree: Path, tmp_path: Path) -> None:
    archive = make_backup(tree, tmp_path / "backups")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "MANIFEST.sha256" in names and not any(n.startswith("outputs") for n in names)

    target = tmp_path / "target"
    proc = run(RESTORE, "-C", target, archive)
    assert proc.returncode == 0, proc.stderr
    expected = {k: v for k, v in snapshot(tree).items() if not k.startswith("outputs")}
    assert snapshot(target) == expected
    assert not list(target.glob(".restore.*")) and not list(target.glob(".pre-restore-*"))


def test_restore_replaces_existing_paths_and_can_keep_the_old_ones(tree: Path, tmp_path: Path) -> None:
    archive = make_backup(tree, tmp_path / "backups")
    target = tmp_path / "target"
    (target / "models" / "stale").mkdir(parents=True)
    (target / "models" / "stale" / "old.bin").write_bytes(b"old")
    (target / "keep-me.txt").write_text("untouched")
    proc = run(RESTORE, "-C", target, "--keep-old", archive)
    assert proc.returncode == 0, proc.stderr
    assert not (target / "models" / "stale").exists()  # models/ is the backup's, not a merge
    assert (target / "models" / "invoicegen-small" / "labels.json").read_text() == '{"ner": ["O"]}'
    assert (target / "keep-me.txt").read_text() == "untouched"
    (old,) = target.glob(".pre-restore-*")
    assert (old / "models" / "stale" / "old.bin").read_bytes() == b"old"


def _rewrite(archive: Path, dest: Path, change: dict[str, bytes | None], extra: dict[str, bytes] | None = None) -> None:
    """A copy of ``archive`` with some members' contents replaced (None: removed) or added, keeping
    the original MANIFEST.sha256: what a bit flip on disk or a tampered backup looks like."""
    with tarfile.open(archive) as src, tarfile.open(dest, "w:gz") as out:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if member.name in change:
                data = change[member.name]
                if data is None:
                    continue
                member.size = len(data)
            out.addfile(member, io.BytesIO(data) if data is not None else None)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("damage", ["changed-byte", "missing-file", "extra-file", "truncated", "archive-checksum"])
def test_a_damaged_backup_is_refused_and_nothing_is_replaced(damage: str, tree: Path, tmp_path: Path) -> None:
    archive = make_backup(tree, tmp_path / "backups")
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = bad_dir / "copy.tar.gz"
    weights = "models/invoicegen-small/model.safetensors"
    if damage == "changed-byte":
        with tarfile.open(archive) as t:
            data = bytearray(t.extractfile(weights).read())  # type: ignore[union-attr]
        data[1000] ^= 0xFF
        _rewrite(archive, bad, {weights: bytes(data)})
    elif damage == "missing-file":
        _rewrite(archive, bad, {"data/factory/documents.jsonl": None})
    elif damage == "extra-file":
        _rewrite(archive, bad, {}, {"models/invoicegen-small/backdoor.py": b"print('hi')"})
    elif damage == "truncated":
        raw = archive.read_bytes()
        bad.write_bytes(raw[: len(raw) // 2])
    else:  # the archive's own checksum file disagrees
        with gzip.open(archive) as fh:
            tar = fh.read()
        bad.write_bytes(gzip.compress(tar + b"\0" * 512))
        (bad_dir / "copy.tar.gz.sha256").write_text(
            (tmp_path / "backups" / "test-backup.tar.gz.sha256").read_text().replace("test-backup", "copy"))

    target = tmp_path / "target"
    (target / "models" / "current").mkdir(parents=True)
    (target / "models" / "current" / "weights.bin").write_bytes(b"in production")
    (target / "data").mkdir()
    (target / "data" / "x.jsonl").write_text("live data")
    before = snapshot(target)

    proc = run(RESTORE, "-C", target, bad)
    assert proc.returncode != 0
    assert "FAILED" in proc.stderr and "nothing was changed" in proc.stderr
    assert snapshot(target) == before
    assert sorted(p.name for p in target.iterdir()) == ["data", "models"]  # no staging left behind

    # the intact archive still restores over the same target
    assert run(RESTORE, "-C", target, archive).returncode == 0
    assert (target / "models" / "invoicegen-small" / "model.safetensors").read_bytes() == \
        (tree / "models" / "invoicegen-small" / "model.safetensors").read_bytes()


def test_check_only_changes_nothing_and_bad_arguments_are_refused(tree: Path, tmp_path: Path) -> None:
    archive = make_backup(tree, tmp_path / "backups")
    target = tmp_path / "target"
    proc = run(RESTORE, "-C", target, "--check", archive)
    assert proc.returncode == 0 and "verified" in proc.stdout
    assert [p.name for p in target.iterdir()] == []
    assert run(BACKUP, "-C", tree, "-o", tmp_path / "b2", "../etc").returncode == 2
    assert run(BACKUP, "-C", tree, "-o", tmp_path / "b2", "no-such-dir").returncode == 2
    assert run(RESTORE, "-C", target, tmp_path / "missing.tar.gz").returncode == 2
