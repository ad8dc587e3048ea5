// Numbered schema migrations. Append only: never edit a migration that has shipped.
// Migration N sets PRAGMA user_version = N (see database.ts).
import type { Db } from './database.js';
import { sealStoredBmcPasswords } from '../devices/secrets.js';

export interface Migration {
  name: string;
  sql: string;
  /** data step after the SQL, in the same transaction (no await: better-sqlite3 is synchronous) */
  run?: (db: Db) => void;
}

export const MIGRATIONS: Migration[] = [
  {
    name: '001-devices-and-history',
    sql: `
      CREATE TABLE devices (
        serial            TEXT PRIMARY KEY,
        profile           TEXT NOT NULL CHECK (profile IN ('rfc8572', 'opi')),
        password_hash     TEXT,
        signing           TEXT NOT NULL DEFAULT 'auto' CHECK (signing IN ('auto', 'always', 'never')),
        boot_image        TEXT,
        boot_image_sha256 TEXT,
        os_name           TEXT,
        os_version        TEXT,
        config            TEXT,
        pre_script        TEXT,
        post_script       TEXT,
        redirect          TEXT,
        bmc               TEXT,
        parent_host       TEXT,
        hw_model          TEXT,
        state             TEXT NOT NULL DEFAULT 'registered',
        state_changed_at  TEXT NOT NULL,
        revision          INTEGER NOT NULL DEFAULT 1,
        created_at        TEXT NOT NULL,
        updated_at        TEXT NOT NULL
      ) STRICT;

      CREATE TABLE device_macs (
        mac    TEXT PRIMARY KEY,
        serial TEXT NOT NULL REFERENCES devices(serial) ON DELETE CASCADE
      ) STRICT;
      CREATE INDEX device_macs_serial ON device_macs(serial);

      -- One append-only history for every service: DHCP leases, image downloads, BMC actions,
      -- sZTP requests and progress reports, admin audit. serial is NULL for events about no device.
      CREATE TABLE events (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        at     TEXT NOT NULL,
        serial TEXT,
        source TEXT NOT NULL CHECK (source IN ('dhcp', 'images', 'redfish', 'bootstrap', 'admin', 'onboarding')),
        type   TEXT NOT NULL,
        data   TEXT NOT NULL DEFAULT '{}'
      ) STRICT;
      CREATE INDEX events_serial ON events(serial, id);
      CREATE INDEX events_type ON events(type, id);
      CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
      CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
    `,
  },
  {
    // Image catalogue (src/images/catalogue.ts). Content lives once per digest in
    // <dataDir>/images/sha256/<hex>; several names may share one digest.
    name: '002-images',
    sql: `
      CREATE TABLE images (
        name                TEXT PRIMARY KEY,
        sha256              TEXT NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
        size                INTEGER NOT NULL CHECK (size >= 0),
        os_name             TEXT,
        os_version          TEXT,
        source              TEXT,
        require_client_cert INTEGER NOT NULL DEFAULT 0 CHECK (require_client_cert IN (0, 1)),
        created_at          TEXT NOT NULL,
        updated_at          TEXT NOT NULL
      ) STRICT;
      CREATE INDEX images_sha256 ON images(sha256);
    `,
  },
  {
    name: '003-dhcp-leases',
    sql: `
      -- DHCP leases (v4 and v6). One row per address: an address can never be bound to two
      -- clients. client_key is 'id:<hex option 61>', 'mac:<mac>' (v4) or 'duid:<hex>/<iaid>' (v6).
      -- Times are Unix milliseconds. Offers are held in memory only (as Kea does).
      CREATE TABLE dhcp_leases (
        family     INTEGER NOT NULL CHECK (family IN (4, 6)),
        address    TEXT NOT NULL,
        client_key TEXT NOT NULL,
        mac        TEXT,
        hostname   TEXT,
        subnet     TEXT NOT NULL,
        state      TEXT NOT NULL CHECK (state IN ('bound', 'released', 'declined')),
        starts_at  INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        serial     TEXT,
        PRIMARY KEY (family, address)
      ) STRICT;
      CREATE INDEX dhcp_leases_client ON dhcp_leases(family, client_key);
    `,
  },
  {
    // BMC passwords were kept in clear inside devices.bmc (JSON). From here on the row holds
    // "passwordSealed" (AES-256-GCM under <dataDir>/secret.key, AAD = serial) and never "password".
    name: '004-bmc-passwords-sealed',
    sql: '',
    run: sealStoredBmcPasswords,
  },
  {
    // Onboarding jobs (src/onboarding/): one row per device, the current attempt. Every change of
    // step or status is written in the same transaction as its history event (source
    // 'onboarding', type 'transition'). Times are Unix milliseconds. Per-device step timeout
    // overrides live on the device record (JSON {"booting": 900, …}, seconds).
    name: '005-onboarding-jobs',
    sql: `
      CREATE TABLE onboarding_jobs (
        serial            TEXT PRIMARY KEY REFERENCES devices(serial) ON DELETE CASCADE,
        attempt           INTEGER NOT NULL CHECK (attempt >= 1),
        status            TEXT NOT NULL CHECK (status IN ('queued', 'running', 'complete', 'failed', 'timed-out', 'aborted')),
        step              TEXT NOT NULL CHECK (step IN ('bmc-check', 'media-insert', 'http-boot-set', 'boot-override', 'power-on',
                            'booting', 'bootstrapping', 'progress', 'cleanup', 'complete')),
        phase             TEXT NOT NULL DEFAULT 'pending' CHECK (phase IN ('pending', 'started')),
        path              TEXT CHECK (path IN ('virtual-media', 'uefi-http', 'none')),
        step_started_at   INTEGER NOT NULL,
        started_at        INTEGER NOT NULL,
        finished_at       INTEGER,
        reason            TEXT,
        failed_step       TEXT,
        message_id        TEXT,
        timed_out_after_ms INTEGER,
        image_url         TEXT,
        image_fetched     INTEGER NOT NULL DEFAULT 0 CHECK (image_fetched IN (0, 1)),
        dhcp_seen         INTEGER NOT NULL DEFAULT 0 CHECK (dhcp_seen IN (0, 1)),
        progress_count    INTEGER NOT NULL DEFAULT 0,
        last_progress     TEXT,
        last_signal_at    INTEGER,
        last_error        TEXT,
        cursor            INTEGER NOT NULL DEFAULT 0,
        batch             TEXT,
        batch_concurrency INTEGER CHECK (batch_concurrency IS NULL OR batch_concurrency >= 1),
        parent_host       TEXT,
        queued_at         INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX onboarding_jobs_status ON onboarding_jobs(status, queued_at);
      ALTER TABLE devices ADD COLUMN onboarding_timeouts TEXT;
    `,
  },
  {
    // History counts by source and type for /metrics, kept by the database as events are written.
    // Counting them per scrape (GROUP BY over the whole append-only history) held the event loop
    // ~600 ms per scrape at a million events, stalling every service. The trigger keeps the count
    // exact for every writer (the suite, the DHCP worker, CLI processes); events are never
    // updated or deleted (migration 001's triggers), so inserts are all it has to follow.
    name: '006-event-counts',
    sql: `
      CREATE TABLE event_counts (
        source TEXT NOT NULL,
        type   TEXT NOT NULL,
        n      INTEGER NOT NULL,
        PRIMARY KEY (source, type)
      ) STRICT, WITHOUT ROWID;
      INSERT INTO event_counts (source, type, n) SELECT source, type, count(*) FROM events GROUP BY source, type;
      CREATE TRIGGER events_counted AFTER INSERT ON events BEGIN
        INSERT INTO event_counts (source, type, n) VALUES (NEW.source, NEW.type, 1)
          ON CONFLICT (source, type) DO UPDATE SET n = n + 1;
      END;
    `,
  },
];
