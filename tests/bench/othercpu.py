#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""tests/bench/othercpu.py snap FILE | diff FILE

CPU time (clock ticks, user + system) used by the processes that are not part
of the benchmark: every user-space process outside the benchmark's network
namespace. `snap` records each such process's ticks in FILE; `diff` prints
how many ticks they used since.

Processes that start and end between snap and diff (a build's compiler
runs, say) are counted through their parents: a process's own ticks plus
those of the children it has reaped (cutime + cstime in /proc/PID/stat). A
process that was there at snap and is gone at diff was reaped by its parent,
whose children's ticks now hold its whole life: what it had used at snap is
taken off again. What is still lost: a process whose parent is gone too.

run.sh and http.sh subtract this from the system-wide busy time of
/proc/stat, which is otherwise what they measure: kproxy's sockmap egress runs
in kernel workers that belong to no process, so per-process accounting of the
benchmark's own processes would miss it. Kernel threads are never
subtracted, whoever they worked for.
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
        flags = int(fields[6])
        if flags & 0x00200000:	# PF_KTHREAD
            continue
        own = int(fields[11]) + int(fields[12])		# utime, stime
        reaped = int(fields[13]) + int(fields[14])	# cutime, cstime
        # pid and start time: a pid used again is another process
        ticks["%s:%s" % (pid, fields[19])] = [own, reaped]
    return ticks


cmd, path = sys.argv[1], sys.argv[2]
if cmd == "snap":
    with open(path, "w") as f:
        json.dump(others(), f)
else:
    with open(path) as f:
        before = json.load(f)
    now = others()
    total = 0
    for key, (own, reaped) in now.items():
        b = before.get(key, [0, 0])
        total += max(0, own - b[0]) + max(0, reaped - b[1])
    for key, (own, reaped) in before.items():
        if key not in now:
            total -= own + reaped
    print(max(0, total))
