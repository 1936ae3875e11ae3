"""Processes as /proc shows them, for the suites that look at the stack's
processes (the API suite's process checks, the drills, the two-hosts layout)."""

import os


def stat(pid):
    """The fields of /proc/PID/stat after the command name (state first,
    then ppid, pgrp, ...), or None when the process is gone."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def children(ppid):
    """Live (not zombie) child processes of ppid, sorted."""
    out = []
    for pid in pids():
        fields = stat(pid)
        if fields is not None and int(fields[1]) == ppid and fields[0] != "Z":
            out.append(pid)
    return sorted(out)
