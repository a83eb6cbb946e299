"""Writes never leave half a file and never replace what is at the path (links, FIFOs, devices)."""

import errno
import os
import stat
import subprocess
import sys
import threading

import pytest

from netxray import _io


def test_regular_file_written_atomically_keeping_its_permissions(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")
    p.chmod(0o600)
    assert _io.write_text(p, "new") == p
    assert p.read_text() == "new"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert [q.name for q in tmp_path.iterdir()] == ["a.txt"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")

    def boom(f):
        f.write(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        _io.atomic_write(p, boom)
    assert p.read_text() == "old"
    assert [q.name for q in tmp_path.iterdir()] == ["a.txt"]


def test_a_symlink_is_followed_and_stays_a_symlink(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    _io.write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"


def test_a_dangling_symlink_creates_the_file_it_points_to(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "sub" / "made.txt")
    _io.write_text(link, "x")
    assert link.is_symlink() and (tmp_path / "sub" / "made.txt").read_text() == "x"


def test_a_fifo_is_written_directly_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    _io.write_text(fifo, "through the pipe")
    reader.join(timeout=10)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def _device(tmp_path, name, minor):
    """A private copy of /dev/null (minor 3) or /dev/full (minor 7): a test that goes wrong
    replaces this node, never the system's (the tests run as root in CI)."""
    path = tmp_path / name
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
        with open(path, "wb"):
            pass
    except OSError as e:  # not root, or a nodev mount
        pytest.skip(f"cannot make a character device here: {e}")
    return path


def test_a_character_device_is_written_not_replaced(tmp_path):
    null = _device(tmp_path, "null", 3)
    before = os.stat(null)
    assert _io.write_text(null, "discarded") == null
    after = os.stat(null)
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_a_full_device_is_an_oserror_naming_the_path(tmp_path):
    full = _device(tmp_path, "full", 7)
    with pytest.raises(OSError) as e:
        _io.write_text(full, "x")
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(full)
    assert stat.S_ISCHR(os.stat(full).st_mode)


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder"):
        _io.write_text(tmp_path, "x")


def test_errors_name_the_target_not_the_temporary_file(tmp_path, monkeypatch):
    def read_only(fd):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(_io.os, "fsync", read_only)
    with pytest.raises(OSError) as e:
        _io.write_text(tmp_path / "a.txt", "x")
    assert e.value.errno == errno.EROFS and e.value.filename == str(tmp_path / "a.txt")
    assert list(tmp_path.iterdir()) == []


def test_dash_means_standard_output():
    code = ("from netxray import _io; import sys; print('before', flush=True); "
            "_io.write_text('-', 'a,b\\n1,2\\n'); print('after')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ}).stdout
    assert out == "before\na,b\n1,2\nafter\n"


def test_dash_under_a_captured_stdout(capsys):
    assert _io.write_text("-", "x\n") == _io.Path("-")
    assert capsys.readouterr().out == "x\n"


def test_temporaries_of_killed_runs_are_removed_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "report.html"
    stale = tmp_path / f".report.html.{dead.pid}.abc123.tmp"
    mine = tmp_path / f".report.html.{os.getpid()}.def456.tmp"  # a write of this process
    other = tmp_path / ".other.html.1.abc.tmp"
    old_style = tmp_path / ".report.html.k3j2h1.tmp"
    for p in (stale, mine, other, old_style):
        p.write_text("half")
    os.utime(old_style, (0, 0))  # older than this process
    _io.write_text(target, "whole")
    assert target.read_text() == "whole"
    assert not stale.exists() and not old_style.exists()
    assert mine.exists() and other.exists()
