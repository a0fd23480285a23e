#!/usr/bin/env python3
"""pool_schedule.py -- what limits the speed-up of one layer on N threads.

Reads a pool trace (MXREF_POOL_TRACE=FILE, reference/mxref/pool.h: every
loop run in one thread but split as on the thread count asked for, each
loop, task and mark timed) and takes the last layer in it (from the last
"layer" mark to the "end" mark after it).  It then replays that layer's
loops on P simulated threads with the pool's own policy (reference/pool.c):

  - a thread that starts a loop pushes it on a stack and works on its own
    loop's indices only; once none is left, until the tasks other threads
    took have finished, it takes indices of the loops nested in its loop's
    tasks (newest first), and waits, idle, when there are none;
  - an idle thread takes the next index of the newest loop with indices
    left (nested loops first);
  - a task's time outside its nested loops, and the layer's time outside
    any loop, run in order on the task's (the caller's) thread.

Task durations are those of the trace (one thread, no contention for
memory or caches), so the prediction is an upper bound of the speed-up.

usage: pool_schedule.py TRACE [P ...]      (default P: 1 2 4 8 16)

Prints: the layer's work (the one-thread time), its time outside any loop
by stage, the critical path (infinitely many threads), and for each P the
predicted wall time, speed-up, and where the idle thread-time goes
(threads waiting for their own loop's last tasks, or finding no index).
"""
import heapq
import sys


def parse(path):
    marks, jobs, tasks = [], {}, {}
    try:
        lines = open(path).readlines()
    except OSError as e:
        sys.exit('pool_schedule: %s: %s' % (path, e.strerror))
    for k, line in enumerate(lines, 1):
        f = line.split()
        if not f or f[0] == '#':
            continue
        try:
            if f[0] == 'M':
                marks.append((float(f[1]), f[2]))
            elif f[0] == 'J':
                jid, par, pidx, n = (int(x) for x in f[1:5])
                jobs[jid] = dict(id=jid, parent=(par, pidx), n=n, fn=int(f[5]),
                                 t0=float(f[6]), t1=float(f[7]))
            elif f[0] == 'T':
                tasks[(int(f[1]), int(f[2]))] = (float(f[3]), float(f[4]))
        except (ValueError, IndexError):
            sys.exit('pool_schedule: %s:%d: not a trace line: %r' % (path, k, line.strip()))
    return marks, jobs, tasks


def last_layer(marks):
    starts = [i for i, m in enumerate(marks) if m[1] == 'layer']
    if not starts:
        sys.exit('pool_schedule: the trace has no "layer" mark (it replays a layer: '
                 'ref, check of a layer capture, bench)')
    begin = starts[-1]
    layer = [marks[begin]]
    for m in marks[begin + 1:]:
        layer.append(m)
        if m[1] == 'end':
            return layer
    sys.exit('pool_schedule: the last layer of the trace has no "end" mark')


def build(marks, jobs, tasks):
    """Segments of every context: ('s', seconds) or ('j', job id)."""
    t_begin, t_end = marks[0][0], marks[-1][0]
    inside = {j for j, v in jobs.items() if v['t0'] >= t_begin and v['t1'] <= t_end}
    children = {}
    for j in sorted(inside, key=lambda j: jobs[j]['t0']):
        children.setdefault(jobs[j]['parent'], []).append(j)

    def segs(key, t0, t1):
        out, cur = [], t0
        for j in children.get(key, []):
            out.append(('s', jobs[j]['t0'] - cur, cur))
            out.append(('j', j, jobs[j]['t0']))
            cur = jobs[j]['t1']
        out.append(('s', t1 - cur, cur))
        return [s for s in out if s[0] == 'j' or s[1] > 0]

    ctx = {}
    # the root: the layer outside any loop; loops of the root have parent (0, 0)
    ctx['root'] = segs((0, 0), t_begin, t_end)
    for j in inside:
        for i in range(jobs[j]['n']):
            a, b = tasks[(j, i)]
            ctx[(j, i)] = segs((j, i), a, b)
    return ctx, inside


def work(ctx, key):
    return sum(d if k == 's' else 0 for k, d, _ in ctx[key]) + sum(
        sum(work(ctx, (d, i)) for i in range(njobs[d])) for k, d, _ in ctx[key] if k == 'j')


def critical(ctx, key, memo):
    if key in memo:
        return memo[key]
    t = 0.0
    for k, d, _ in ctx[key]:
        if k == 's':
            t += d
        else:
            t += max(critical(ctx, (d, i), memo) for i in range(njobs[d]))
    memo[key] = t
    return t


def simulate(ctx, P, timeline=None):
    """Makespan of the root on P threads, and idle thread-time: (waiting for
    the own loop's tasks, finding nothing to take)."""
    stack = []                  # runtime loops, newest last
    frames = [[] for _ in range(P)]
    state = ['idle'] * P        # 'run', 'wait', 'idle'
    since = [0.0] * P
    idle = {'wait': 0.0, 'idle': 0.0}
    events = []                 # (time, seq, thread)
    seq = [0]
    now = [0.0]

    def set_state(t, s):
        if state[t] in idle:
            idle[state[t]] += now[0] - since[t]
            if timeline is not None:
                timeline.append((since[t], now[0]))
        state[t] = s
        since[t] = now[0]

    def step(t):
        while True:
            fr = frames[t]
            if not fr:
                set_state(t, 'idle')
                return
            top = fr[-1]
            if top['kind'] == 'ctx':
                if top['pos'] == len(top['segs']):
                    fr.pop()
                    if top['task']:
                        job = top['task']
                        job['done'] += 1
                        if job['done'] == job['n'] and job['waiter'] is not None:
                            w = job['waiter']
                            job['waiter'] = None
                            set_state(w, 'run')
                            push_event(now[0], w)
                    elif top['root']:
                        done[0] = now[0]
                    continue
                k, d, _ = top['segs'][top['pos']]
                if k == 's':
                    top['pos'] += 1
                    set_state(t, 'run')
                    push_event(now[0] + d, t)
                    return
                top['pos'] += 1
                job = dict(id=d, n=njobs[d], next=0, done=0, waiter=None,
                           parent=top['task'])
                stack.append(job)
                fr.append(dict(kind='own', job=job))
                continue
            job = top['job']    # the thread's own loop
            if job['next'] < job['n']:
                i = job['next']
                job['next'] += 1
                fr.append(task_frame(job, i))
                continue
            if job['done'] < job['n']:
                job['waiter'] = t
                set_state(t, 'wait')
                return
            fr.pop()

    def task_frame(job, i):
        return dict(kind='ctx', segs=ctx[(job['id'], i)], pos=0, task=job, root=False)

    def push_event(at, t):
        seq[0] += 1
        heapq.heappush(events, (at, seq[0], t))

    def nested_in(job, anc):
        while job is not None:
            if job is anc:
                return True
            job = job['parent']
        return False

    def feed_idle():
        for t in range(P):  # waiting callers: the loops nested in theirs
            if state[t] != 'wait':
                continue
            mine = frames[t][-1]['job']
            job = next((j for j in reversed(stack) if j['next'] < j['n'] and
                        j is not mine and nested_in(j, mine)), None)
            if job is None:
                continue
            if mine['waiter'] == t:
                mine['waiter'] = None
            i = job['next']
            job['next'] += 1
            frames[t].append(task_frame(job, i))
            step(t)
        for t in range(P):
            if state[t] != 'idle' or frames[t]:
                continue
            while stack and stack[-1]['next'] >= stack[-1]['n']:
                stack.pop()
            job = next((j for j in reversed(stack) if j['next'] < j['n']), None)
            if job is None:
                return
            i = job['next']
            job['next'] += 1
            frames[t].append(task_frame(job, i))
            step(t)

    done = [None]
    frames[0].append(dict(kind='ctx', segs=ctx['root'], pos=0, task=None, root=True))
    step(0)
    feed_idle()
    while events:
        at, _, t = heapq.heappop(events)
        now[0] = at
        batch = [t]
        while events and events[0][0] == at:
            batch.append(heapq.heappop(events)[2])
        for t in batch:
            step(t)
        feed_idle()
    for t in range(P):
        set_state(t, state[t])
    return done[0], idle


def main():
    global njobs
    if len(sys.argv) >= 2 and sys.argv[1] in ('-h', '--help'):
        print(__doc__)
        sys.exit(0)
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        Ps = [int(x) for x in sys.argv[2:]] or [1, 2, 4, 8, 16]
    except ValueError:
        sys.exit('pool_schedule: P must be thread counts, not %r' % sys.argv[2:])
    if any(P < 1 for P in Ps):
        sys.exit('pool_schedule: P must be at least 1')
    marks, jobs, tasks = parse(sys.argv[1])
    layer = last_layer(marks)
    ctx, inside = build(layer, jobs, tasks)
    njobs = {j: jobs[j]['n'] for j in inside}
    W = work(ctx, 'root')
    print('layer: %.4f s of work (one thread), %d loops, %d tasks' %
          (W, len(inside), sum(njobs.values())))
    # by stage (the marks, in the trace's one-thread order): time outside
    # any loop in the layer's chains (the root and the tasks of its loops),
    # and the work of the loops they start, with the loops' critical path
    names = [m[1] for m in layer[:-1]]
    bounds = [m[0] for m in layer]
    per = {n: [0.0, 0.0, 0.0] for n in names}

    def stage_of(t):
        return names[max([0] + [i for i in range(len(names)) if bounds[i] <= t + 1e-12])]

    chains = ['root'] + [(d, i) for k, d, _ in ctx['root'] if k == 'j' and njobs[d] <= 2
                         for i in range(njobs[d])]
    for key in chains:
        for k, d, t in ctx[key]:
            if k == 's':
                per[stage_of(t + d / 2)][0] += d
            elif key == 'root' and njobs[d] <= 2:
                continue  # the chains themselves
            else:
                st = per[stage_of(t)]
                st[1] += sum(work(ctx, (d, i)) for i in range(njobs[d]))
                st[2] += max(critical(ctx, (d, i), {}) for i in range(njobs[d]))
    print('%-10s %12s %12s %14s' % ('stage', 'serial s', 'in loops s', 'loop crit. s'))
    for n in names:
        print('%-10s %12.4f %12.4f %14.4f' % (n, per[n][0], per[n][1], per[n][2]))
    serial = sum(v[0] for v in per.values())
    cp = critical(ctx, 'root', {})
    print('serial (outside loops) %.4f s = %.1f %% of the work; critical path %.4f s '
          '(speed-up at most %.1fx)' % (serial, 100 * serial / W, cp, W / cp))
    # the biggest tasks of the loops the chains start
    for key in chains:
        for k, d, _ in ctx[key]:
            if k != 'j' or njobs[d] < 2 or (key == 'root' and njobs[d] == 2):
                continue
            ts = sorted(((work(ctx, (d, i)), critical(ctx, (d, i), {}), i)
                         for i in range(njobs[d])), reverse=True)
            if ts[0][0] < 0.01 * W:
                continue
            own = [sum(x for kk, x, _ in ctx[(d, i)] if kk == 's') for _, _, i in ts[:3]]
            print('loop %d (%d tasks, %.4f s): longest (work/critical path/outside '
                  'nested loops): %s' %
                  (d, njobs[d], sum(x[0] for x in ts),
                   ', '.join('#%d %.4f/%.4f/%.4f' % (i, w, c, o)
                             for (w, c, i), o in zip(ts[:3], own))))
    print('%4s %10s %9s %12s %12s' % ('P', 'wall s', 'speed-up', 'idle: wait', 'idle: none'))
    for P in Ps:
        T, idle = simulate(ctx, P)
        print('%4d %10.4f %8.2fx %11.1f%% %11.1f%%' %
              (P, T, W / T, 100 * idle['wait'] / (P * T), 100 * idle['idle'] / (P * T)))
    # where the idle thread-time of the largest P lies: tenths of the run
    P = max(Ps)
    spans = []
    T, _ = simulate(ctx, P, spans)
    tenth = [0.0] * 10
    for a, b in spans:
        for i in range(10):
            lo, hi = max(a, i * T / 10), min(b, (i + 1) * T / 10)
            tenth[i] += max(0.0, hi - lo)
    print('idle threads on %d, by tenth of the run: %s' %
          (P, ' '.join('%.1f' % (x / (T / 10)) for x in tenth)))


if __name__ == '__main__':
    main()
