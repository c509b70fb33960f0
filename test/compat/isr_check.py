"""After a check of run.sh's cluster pass: are its topics fully replicated?

Lists the topics whose names match PATTERN (a Python regex, matched whole)
with `sluice topic list --internal --json`, describes each with
`sluice topic describe T --json --all-configs`, and checks that it has the
replication factor RF, that every partition has a leader and RF replicas
all in sync (ISR == replicas) with none offline, and, if MIN_ISR is given,
that its min.insync.replicas is MIN_ISR (not checked for internal topics,
which take the broker's). A short ISR is asked again for up to
SETTLE_S seconds (a follower may still be catching up on the last
records) and the wait is reported; one still short then fails.

It uses sluice's own client, not the client under test, so a client bug
cannot hide a replication problem or the other way round.

Usage: /usr/bin/python3 isr_check.py SLUICE_BIN BOOTSTRAP PATTERN RF [MIN_ISR]
Prints one summary line on success; the problems on stderr and exit 1 if not.
"""

import json
import re
import subprocess
import sys
import time

SETTLE_S = 15
CLI_TIMEOUT_S = 30


def sluice(binary, bootstrap, *args):
    out = subprocess.run([binary, *args, "--json", "--brokers", bootstrap, "--timeout", "10s"],
                         capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    if out.returncode != 0:
        raise RuntimeError(f"sluice {' '.join(args)}: exit {out.returncode}: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def topic_names(listing):
    if isinstance(listing, dict):
        listing = listing.get("topics", [])
    names = []
    for t in listing:
        names.append(t if isinstance(t, str) else t.get("topic") or t.get("name"))
    return names


def problems(d, rf, min_isr):
    """Returns (errors, settling): settling if every error is one that a
    follower catching up (or a leader election) would clear."""
    name = d.get("topic")
    errs, lasting = [], 0
    if d.get("replication_factor") != rf:
        errs.append(f"{name}: replication factor {d.get('replication_factor')}, want {rf}")
        lasting += 1
    parts = d.get("partition_details") or []
    if not parts:
        errs.append(f"{name}: no partitions described")
        lasting += 1
    for p in parts:
        where = f"{name}/{p.get('partition')}"
        replicas, isr = p.get("replicas") or [], p.get("isr") or []
        if len(replicas) != rf:
            errs.append(f"{where}: replicas {replicas}, want {rf}")
            lasting += 1
        elif sorted(isr) != sorted(replicas):
            errs.append(f"{where}: ISR {isr} of replicas {replicas} (leader {p.get('leader')}, "
                        f"epoch {p.get('leader_epoch')}, high watermark {p.get('high_watermark')})")
        if p.get("leader", -1) not in isr:
            errs.append(f"{where}: leader {p.get('leader')} not in ISR {isr}")
        if p.get("offline_replicas"):
            errs.append(f"{where}: offline replicas {p.get('offline_replicas')}")
    if min_isr is not None and not d.get("internal"):
        got = {c.get("key"): c for c in d.get("configs") or []}.get("min.insync.replicas")
        if got is None or str(got.get("value")) != str(min_isr):
            errs.append(f"{name}: min.insync.replicas {got}, want {min_isr}")
            lasting += 1
    return errs, lasting == 0


def main():
    if len(sys.argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        return 2
    binary, bootstrap, pattern, rf = sys.argv[1], sys.argv[2], re.compile(sys.argv[3]), int(sys.argv[4])
    min_isr = int(sys.argv[5]) if len(sys.argv) == 6 else None
    try:
        names = sorted(n for n in topic_names(sluice(binary, bootstrap, "topic", "list", "--internal"))
                       if n and pattern.fullmatch(n))
    except Exception as e:
        print(f"ISR check: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if not names:
        print(f"ISR check: no topic matches {pattern.pattern}", file=sys.stderr)
        return 1
    start = time.monotonic()
    errs, waited, partitions = [], [], 0
    for name in names:
        first = None
        while True:
            try:
                d = sluice(binary, bootstrap, "topic", "describe", name, "--all-configs")
                errs_now, settling = problems(d, rf, min_isr)
            except Exception as e:
                d, errs_now, settling = None, [f"{name}: {type(e).__name__}: {e}"], True
            if first is None:
                first = errs_now
            if not errs_now or not settling or time.monotonic() - start > SETTLE_S:
                break
            time.sleep(0.5)
        if errs_now:
            errs.extend(errs_now)
        elif first:
            waited.append(f"{name} ({first[0]})")
        if d:
            partitions += len(d.get("partition_details") or [])
    if errs:
        for e in errs[:20]:
            print(f"ISR check: {e}", file=sys.stderr)
        return 1
    note = f"; not in sync at first, then within {SETTLE_S}s: {', '.join(waited)}" if waited else ""
    print(f"ISR {rf}/{rf} on {len(names)} topic(s), {partitions} partitions ({', '.join(names)}){note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
