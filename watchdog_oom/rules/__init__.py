"""Pure decisions of the daemon, each a function of values and a `now` passed in.

`enrich`: a kill completed from what was known before it; `crosscheck`: the kernel's
oom_kill counter against the kills recorded; `alerts`: the kernel-log outage alerts,
the repeats due, and the likely victims a warning names; `cgroups`: memory cgroups'
alert keys and oom_kill counters, and the warning a kill links to; `cgroup_limits`: a cgroup
against its own limit (levels, memory.high, the forecast, the victim inside), loaded when the
first cgroup with a limit is read; `witnesses`: the oom/mark_victim tracepoint, the log and the counter
against each other (oom.unlogged, suspect log records); `adjaudit`: which writes to a
process's oom_score_adj alert (process.adj_changed). The commit, memory and process
rules with their for/hysteresis state live in `watchdog_oom.detect`. Nothing here reads
a file, a clock or the database.
"""
