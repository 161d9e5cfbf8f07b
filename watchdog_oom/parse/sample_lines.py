"""Each recogniser's evidence: real lines it reads, each with where it was published.

Keyed by the recogniser's name (report.KERNEL_RECOGNISERS, userspace.USERSPACE_RECOGNISERS);
a recogniser gives its own as `Recogniser.samples`. Only the tests (and whoever documents a
wording) read them, so this module is loaded when they are first asked for: the daemon,
whose recognisers read every kill line, never holds these lines.
"""

from __future__ import annotations

SAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    # ------------------------------------------------------------------ the kernel's
    "kernel: Killed process (2.4-6.x, RHEL 6/7 UID forms)": (
        (("Out of memory: Killed process 60540 (redis-server) total-vm:17652600kB, anon-rss:14230956kB, "
          "file-rss:128kB, shmem-rss:0kB, UID:999 pgtables:31340kB oom_score_adj:0"),
         "Linux 6.8 (AWS), tests/data/oom_logs/06_aws-6.8_dmesg-T_docker-redis-global-oom.log"),
        ("Killed process 40738, UID 27, (mysqld) total-vm:6424316kB, anon-rss:13128kB, file-rss:4kB",
         "RHEL 6 2.6.32, tests/data/oom_logs/12_rhel6-2.6.32_messages_full-event-oom_adj.log"),
        ("Killed process 3897 (stress) total-vm:1579488kB, anon-rss:1048132kB, file-rss:12kB",
         "Linux 4.x memcg, tests/data/oom_logs/41_docker-stress_dmesg-no-timestamps_task-in-limit-of.log"),
    ),
    "kernel: Kill process … score … or sacrifice child (2.6.1x-5.0)": (
        ("Out of memory: Kill process 45465 (tail) score 902 or sacrifice child",
         "RHEL 7.8 3.10, tests/data/real_reports/azure-docs_rhel78_messages_rhel7-uid-selection-same-pid.log"),
        ("Memory cgroup out of memory: Kill process 443160 (stress-ng-vm) score 1272 or sacrifice child",
         "Linux 3.10 memcg (k8s), tests/data/real_reports/blog_k8s-3.10_dmesg_memcg-rhel7-uid-elided-table.log"),
    ),
    # ------------------------------------------------------------------ the user-space killers'
    "earlyoom 1.3-1.8 sending SIGTERM/SIGKILL": (
        (('earlyoom[1308]: sending SIGTERM to process 1024668 uid 1000 "Web Content": oom_score 823, '
          'VmRSS 79 MiB, cmdline "/usr/lib/firefox/firefox -contentproc"'),
         "earlyoom 1.8, https://github.com/rfjakob/earlyoom/issues/344"),
        ('sending SIGTERM to process 696 uid 1001 "ipfs": badness 757, VmRSS 637 MiB',
         "earlyoom 1.6, https://github.com/rfjakob/earlyoom/issues/205"),
        ('earlyoom[814]: sending SIGTERM to process 1076783 "mysqld": badness 214, VmRSS 210 MiB',
         "earlyoom 1.2-1.5, https://github.com/nextcloud-snap/nextcloud-snap/issues/1836"),
    ),
    "earlyoom 1.0-1.2 killing with a signal number": (
        ("Killing process 'bash' with signal 15, pid: 5874, badness: 538, VmRSS: 3160 MiB",
         "earlyoom 1.0/1.1, https://github.com/rfjakob/earlyoom/issues/88"),
        ('killing process 27541 "bash" with signal 15: badness 550, VmRSS 7609 MiB',
         "earlyoom 1.2, https://github.com/rfjakob/earlyoom/issues/121"),
    ),
    "systemd-oomd 247+ Killed / 254+ Marked for killing": (
        (("systemd-oomd[702]: Killed /system.slice/batch.service due to memory used (31876923392) / total "
          "(33345363968) and swap used (7516192768) / total (8589930496) being more than 90.00%"),
         "systemd-oomd 249+ swap wording, src/oom/oomd-manager.c"),
        (("systemd-oomd[659]: Marked /system.slice/systemd-journald.service for killing due to memory pressure "
          "for /system.slice being 85.03% > 80.00% for > 2s with reclaim activity"),
         "systemd-oomd 257, https://github.com/systemd/systemd/pull/42321"),
        (("systemd-oomd[726]: Marked …ea541d95.scope for killing due to memory used (16260780032) / total "
          "(16419115008) and swap used (29560922112) / total (32838500352) being more than 90.00%"),
         "systemd-oomd 256, journalctl eliding the path, public note quoting `journalctl -u systemd-oomd`"),
    ),
    "systemd-oomd 254+ Marked for killing, reason trimmed": (
        ("systemd-oomd[885]: Marked /user.slice/.../app-Hyprland-xdg\\x2dterminal\\x2dexec-0ae8dde6.scope for killing",
         "systemd-oomd 254+, https://github.com/omacom/omarchy/issues/9799 (a paste that ends at 'for killing')"),
    ),
    "PID 1: systemd-oomd killed N process(es) in this unit": (
        ("systemd[1]: testsuite-55-testbloat.service: systemd-oomd killed 2 process(es) in this unit.",
         "systemd 249, https://github.com/systemd/systemd/pull/20690"),
        (("systemd[1565]: vte-spawn-f6518140-41fe-4a13-b828-55c5b8738fb8.scope: systemd-oomd killed 3 process(es) "
          "in this unit."), "systemd 249 user manager, Ubuntu 22.04 journal quoted in a public note"),
    ),
    "a unit's result 'oom-kill' (corroboration)": (
        ("systemd[1075]: app-Hyprland-xdg\\x2dterminal\\x2dexec-0ae8dde6.scope: Failed with result 'oom-kill'.",
         "systemd 254+, https://github.com/omacom/omarchy/issues/9799"),
    ),
    "nohang 0.1 / 0.2+ corrective action": (
        ("Send SIGTERM to the victim; total response time: 13246 ms",
         "nohang 0.1, hakavlad/nohang nohang implement_corrective_action()"),
        ("Sending SIGTERM to the victim", "nohang 0.2+, hakavlad/nohang src/nohang implement_corrective_action()"),
    ),
    "nohang 0.1+ victim handled by a configured command": (
        ("Run the command: kill -TERM 12297",
         "nohang 2019 (between 0.1 and 0.2), https://github.com/hakavlad/nohang/issues/56"),
        ("Executing the command: kill -TERM 12297",
         "nohang 2020-03+ (commit 8e931f8), hakavlad/nohang src/nohang implement_corrective_action(): "
         "'Implementing a corrective action:\\n  Executing the command: {}'"),
        ("Execute the command: killall firefox",
         "nohang 0.1 (2018), hakavlad/nohang nohang find_victim_and_send_signal(): '  Execute the command: {}'"),
    ),
}
