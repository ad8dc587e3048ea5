// Memory trace of a server process, loaded with `node --import bench/images/memtrace.js …`
// (bench/images/run.js --memory-trace FILE does it for `ztp serve`). Every MEMTRACE_MS (250) it
// appends one JSON line to MEMTRACE_OUT: RSS split the way /proc/self/smaps sees it (brk heap,
// glibc thread arenas, V8 pages, other anonymous mappings, files, stacks), process.memoryUsage()
// and V8's committed size per heap space. Which of those grows under load says where RSS goes;
// the bench prints the summary per case. Diagnostic only: the product never loads this.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics } from 'node:v8';

const out = process.env.MEMTRACE_OUT;
const every = Number(process.env.MEMTRACE_MS ?? 250);
const ARENA = 64 * 1024 * 1024;

/** RSS of the process by kind of mapping, in bytes. */
export function smapsSplit(text = readFileSync('/proc/self/smaps', 'utf8')) {
  const split = { brk: 0, arenas: 0, v8Pages: 0, mallocMmap: 0, anonOther: 0, file: 0, stack: 0, arenaCount: 0, anonBig: [] };
  let cur = null;
  const flush = () => {
    if (!cur) return;
    const { size, rss, name, start, perms } = cur;
    if (name === '[heap]') split.brk += rss;
    else if (name === '[stack]' || name.startsWith('[stack')) split.stack += rss;
    else if (name.startsWith('/') || name.startsWith('[vdso') || name.startsWith('[vvar')) split.file += rss;
    else if (perms.startsWith('rw') && start % ARENA === 0 && size < ARENA) {
      // a glibc thread arena: its heap_info sits at a 64 MiB-aligned start (HEAP_MAX_SIZE)
      split.arenas += rss;
      if (rss > 0) split.arenaCount++;
    } else if (size === 262144) split.v8Pages += rss;
    else if (size % 4096 === 0 && (size - 4096) % 65536 === 0 && size < 8 * 1024 * 1024) split.mallocMmap += rss;
    else {
      split.anonOther += rss;
      if (rss >= 1024 * 1024) split.anonBig.push(`${(size / 1048576).toFixed(1)}M/${(rss / 1048576).toFixed(1)}M`);
    }
  };
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      flush();
      const start = parseInt(head[1], 16);
      cur = { start, size: parseInt(head[2], 16) - start, perms: head[3], name: head[4] ?? '', rss: 0 };
    } else if (cur && line.startsWith('Rss:')) cur.rss = Number(/(\d+)/.exec(line)[1]) * 1024;
  }
  flush();
  return split;
}

function sample() {
  const m = process.memoryUsage();
  const spaces = {};
  for (const s of getHeapSpaceStatistics()) spaces[s.space_name.replace(/_space$/, '')] = s.physical_space_size;
  const smaps = smapsSplit();
  return { t: Date.now(), rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, spaces, smaps };
}

if (out) {
  writeFileSync(out, '');
  const timer = setInterval(() => {
    try {
      appendFileSync(out, JSON.stringify(sample()) + '\n');
    } catch {
      // the bench removed the file: stop quietly
      clearInterval(timer);
    }
  }, every);
  timer.unref();
}

// MEMTRACE_ALLOC=<file>: V8's sampling heap profiler, counting objects the GC already collected
// too, so the profile says which functions allocate most per request (not only what is still
// alive). Written when the process exits (open it in Chrome DevTools or read it with jq).
const allocOut = process.env.MEMTRACE_ALLOC;
if (allocOut) {
  const { Session } = await import('node:inspector');
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  process.once('exit', () => {
    session.post('HeapProfiler.stopSampling', (err, res) => {
      if (!err) writeFileSync(allocOut, JSON.stringify(res.profile));
    });
  });
}
