"""vna.malloc: glibc's malloc_trim and arena limit, in a fresh interpreter each."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")

RSS = ("def rss():\n"
       "    for line in open('/proc/self/status'):\n"
       "        if line.startswith('VmRSS:'):\n"
       "            return int(line.split()[1]) // 1024\n")


def run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", RSS + code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_trim_hands_back_freed_pages_below_the_heap_top() -> None:
    # 400 blocks of 48 KiB come from the heap (under the mmap threshold); one small block
    # after them pins the heap's top, so free() alone gives nothing back.
    out = run("from vna import malloc\n"
              "blocks = [bytearray(48 * 1024) for _ in range(400)]\n"
              "pin = bytearray(48 * 1024)\n"
              "del blocks\n"
              "before = rss()\n"
              "print(malloc.trim(), before - rss())\n")
    trimmed, freed_mib = out.split()
    assert trimmed == "True"
    assert int(freed_mib) >= 10  # of about 19


def test_limit_arenas_is_taken_by_glibc() -> None:
    assert run("from vna import malloc\nprint(malloc.limit_arenas(1))") == "True"
