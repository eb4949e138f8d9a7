#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""tests/bench/othercpu.py snap FILE | diff FILE

CPU time (clock ticks, user + system) used by the processes that are not part
of the benchmark: every user-space process outside the benchmark's network
namespace. `snap` records each such process's ticks in FILE; `diff` prints
how many ticks they used since (processes that started since count in full,
processes that exited since are lost: an underestimate).

run.sh subtracts this from the system-wide busy time of /proc/stat, which is
otherwise what it measures: kproxy's sockmap egress runs in kernel workers that
belong to no process, so per-process accounting of the benchmark's own
processes would miss it. Kernel threads are never subtracted, whoever they
worked for.
"""
import json
import os
import sys


def others():
    me = os.readlink("/proc/self/ns/net")
    ticks = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/ns/net" % pid) == me:
                continue
            with open("/proc/%s/stat" % pid) as f:
                st = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = st[st.rindex(")") + 2:].split()
        flags, utime, stime = int(fields[6]), int(fields[11]), int(fields[12])
        if flags & 0x00200000:	# PF_KTHREAD
            continue
        ticks[pid] = utime + stime
    return ticks


cmd, path = sys.argv[1], sys.argv[2]
if cmd == "snap":
    with open(path, "w") as f:
        json.dump(others(), f)
else:
    with open(path) as f:
        before = json.load(f)
    print(sum(t - before.get(pid, 0) for pid, t in others().items() if t >= before.get(pid, 0)))
