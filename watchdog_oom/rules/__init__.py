"""Pure decisions of the daemon, each a function of values and a `now` passed in.

`enrich`: a kill completed from what was known before it; `crosscheck`: the kernel's
oom_kill counter against the kills recorded; `alerts`: the kernel-log outage alerts,
the repeats due, and the likely victims a warning names; `cgroups`: memory cgroups
against their own limits (levels, memory.high, the forecast, the victim inside, their
oom_kill counters); `witnesses`: the oom/mark_victim tracepoint, the log and the counter
against each other (oom.unlogged, suspect log records); `adjaudit`: which writes to a
process's oom_score_adj alert (process.adj_changed). The commit, memory and process
rules with their for/hysteresis state live in `watchdog_oom.detect`. Nothing here reads
a file, a clock or the database.
"""
