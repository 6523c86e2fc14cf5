#!/usr/bin/env python3
"""The live heap over time, from a heaptrack data file (heaptrack -o F ...; F.zst).

    heaptrack_live.py F.zst            every 2 s: live heap and resident size
    heaptrack_live.py F.zst T1 T2      the live heap by allocation site (innermost ferry frames)
                                       at T1 and T2 seconds, largest changes first

heaptrack_print answers for the peak and for the end; this answers for any moment. A truncated
file (the process was killed) is read up to its last whole line."""
import subprocess, sys, collections
f = sys.argv[1]
times = [float(x) * 1000 for x in sys.argv[2:]]
p = subprocess.Popen(["zstd", "-dc", f], stdout=subprocess.PIPE, text=True, bufsize=1 << 20)
strings = [""]
ips = [None]          # index from 1
traces = [(0, 0)]     # trace idx -> (ip idx, parent)
infos = []            # (size, trace)
live = collections.Counter()   # info idx -> count
snaps = []
now = 0
series = []
heap = 0
last_print = -1e9
rss = 0
for line in p.stdout:
    if not line.endswith('\n'):
        break
    c = line[0]
    if c == '+':
        i = int(line[2:], 16); live[i] += 1; heap += infos[i][0]
    elif c == '-':
        i = int(line[2:], 16); live[i] -= 1; heap -= infos[i][0]
    elif c == 'c':
        now = int(line[2:], 16)
        while times and now >= times[0]:
            snaps.append((times.pop(0), dict(live)))
        if not sys.argv[2:] and now - last_print >= 2000:
            series.append((now / 1000, heap, rss)); last_print = now
    elif c == 'R':
        rss = int(line[2:], 16)
    elif c == 'a':
        size, tr = line[2:].split()
        infos.append((int(size, 16), int(tr, 16)))
    elif c == 's':
        strings.append(line[2:].rstrip('\n').split(' ', 1)[1] if ' ' in line[2:] else '')
    elif c == 'i':
        parts = line[2:].split()
        fn = int(parts[2], 16) if len(parts) > 2 else 0
        ips.append(fn)
    elif c == 't':
        a, b = line[2:].split()
        traces.append((int(a, 16), int(b, 16)))
if not sys.argv[2:]:
    for t, h, r in series:
        print(f"{t:8.1f} s  heap {h/1e6:8.2f} MB  rss {r*4096/2**20:8.1f} MiB")
    sys.exit()
snaps.append(("end", dict(live)))
def frames(tr):
    out = []
    while tr:
        ip, tr = traces[tr]
        out.append(strings[ips[ip]] if ips[ip] < len(strings) else "?")
    return out
def site(tr, depth=3):
    fr = frames(tr)
    ferry = [x for x in fr if x.startswith("ferry")]
    key = ferry[:depth] if ferry else fr[:4]
    return " <- ".join(k[:110] for k in key)
def by_site(snap):
    out = collections.Counter()
    for i, n in snap.items():
        if n:
            out[site(infos[i][1])] += n * infos[i][0]
    return out
a = by_site(snaps[0][1]); b = by_site(snaps[1][1])
print(f"heap at {snaps[0][0]/1000:.0f}s: {sum(a.values())/1e6:.2f} MB; at {snaps[1][0] if snaps[1][0]=='end' else snaps[1][0]/1000}: {sum(b.values())/1e6:.2f} MB")
diff = collections.Counter({k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)})
for k, v in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:40]:
    print(f"{v/1e6:+8.3f} MB  (now {b.get(k,0)/1e6:7.3f})  {k}")
