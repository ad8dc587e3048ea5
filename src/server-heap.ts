// V8 heap sizing for the long-running server (`ztp serve`), applied by the process itself at the
// start of the command (issue 12: RSS grew with concurrent image readers).
//
// What grew was V8, not our buffers (bench/images/run.js --memory-trace, 64 and 256 range readers):
// - The young generation: V8 doubles the semi-spaces whenever enough objects survive a scavenge,
//   up to 16 MiB each, and rarely gives the memory back. Start-up alone took it to ~30 MiB
//   committed. Growth factor 1 keeps the initial 1 MiB semi-spaces (2 MiB).
// - The old generation: with small semi-spaces, objects of requests in flight survive two
//   scavenges and are promoted; V8 then lets the old generation grow by a factor it picks from
//   GC speed (up to 4× the live size) before collecting it, so garbage piled up to 89 MiB at 256
//   readers. A fixed 20% growth collects it when it is 20% above what survived the last full GC.
// Measured in the same run (README "Benchmarks", image server): peak RSS 188 → 123 MiB at 256
// readers, with no more server CPU per GiB.
//
// Why at run time and not node flags: users start `node bin/ztp.js serve` (or the container's
// ENTRYPOINT); a re-exec with NODE_OPTIONS would cost a second start-up. Both flags are read by
// V8 when it sizes the heap after a GC, so setting them before the suite loads takes effect for
// everything the server allocates. (Given on the command line, --semi-space-growth-factor=1 did
// not keep Node 20's young generation small; set here, it does: test/unit/server-heap.test.ts.)
import { setFlagsFromString } from 'node:v8';

export const SERVER_HEAP_FLAGS = ['--semi-space-growth-factor=1', '--heap-growing-percent=20'] as const;

let applied = false;

/** Applies SERVER_HEAP_FLAGS to this process (once; later calls do nothing). */
export function applyServerHeapSizing(): void {
  if (applied) return;
  applied = true;
  for (const flag of SERVER_HEAP_FLAGS) setFlagsFromString(flag);
}
