// The registry the bootstrap companions (inject.js, history.js) start each phase from: DEVICES
// devices made once per build by that build's own migrations, then copied per phase so history
// grows alike for every phase.
import { copyFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';

export const serialOf = (i) => `BENCH-${String(i).padStart(5, '0')}`;

/** freshDb(build): the path of a new copy of that build's registry of `devices` devices. */
export function registryCopies(dataDir, devices) {
  const templates = new Map();
  return async function freshDb(build) {
    if (!templates.has(build)) {
      const file = join(mkdtempSync(join(dataDir, 'template-')), 'ztp.db');
      const { openDatabase } = await import(join(build, 'db/database.js'));
      const { DeviceStore } = await import(join(build, 'devices/store.js'));
      const db = openDatabase({ file });
      const store = new DeviceStore(db);
      store.transaction(() => {
        for (let i = 0; i < devices; i++) store.upsert({ serial: serialOf(i), profile: 'rfc8572', bootImage: 'dpu-os.img', config: `hostname dpu-${i}\n` }, 'bench');
      });
      db.close();
      templates.set(build, file);
    }
    const file = join(mkdtempSync(join(dataDir, 'db-')), 'ztp.db');
    copyFileSync(templates.get(build), file);
    return file;
  };
}
