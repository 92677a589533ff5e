/**
 * The proftpd test server (test/helpers/ftp-server.ts) checked with the client
 * library the FTP driver uses, basic-ftp: FTPS explicit and implicit with the
 * certificate verified, plain FTP, MLSD, write-once (AllowOverwrite off) for
 * STOR and RNTO, UTF-8 names byte for byte, refused logins, stop and start.
 */
import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { AccessOptions, Client, FTPError } from 'basic-ftp';
import { adoptNodeErrorsInBasicFtp, FtpServer, ftpServerAvailable, startFtpServer } from '../helpers/ftp-server';
import { MiB, patternBytes } from '../helpers/streams';

// Without this, a socket error inside a basic-ftp transfer hangs under jest (see the helper).
adoptNodeErrorsInBasicFtp();

type Mode = 'explicit' | 'implicit' | 'off';

const clients: Client[] = [];

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

function accessOptions(server: FtpServer, overrides: Partial<AccessOptions> = {}): AccessOptions {
  return {
    host: server.host,
    port: server.port,
    user: server.user,
    password: server.password,
    secure: server.secure,
    secureOptions: server.secure ? { ca: readFileSync(server.caFile), rejectUnauthorized: true } : undefined,
    ...overrides,
  };
}

async function login(server: FtpServer, overrides: Partial<AccessOptions> = {}): Promise<Client> {
  const client = new Client(10_000);
  if (process.env.FTP_VERBOSE) {
    const t0 = Date.now();
    client.ftp.log = (m: string) => process.stderr.write(`${Date.now() - t0} ${m}\n`);
  }
  clients.push(client);
  await client.access(accessOptions(server, overrides));
  return client;
}

async function failure(operation: Promise<unknown>): Promise<Error> {
  const error = await operation.then(
    () => undefined,
    (e: unknown) => e,
  );
  // Errors from Node's core are not `instanceof Error` inside jest's vm context.
  if (!(error instanceof Error) && Object.prototype.toString.call(error) !== '[object Error]') throw new Error(`expected a failure, got ${String(error)}`);
  return error as Error;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function download(client: Client, remotePath: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  await client.downloadTo(sink, remotePath);
  return Buffer.concat(chunks);
}

test('ftpServerAvailable: proftpd and mod_tls.so are installed (.ci/run installs them)', () => {
  expect(ftpServerAvailable()).toBe(true);
});

describe.each<[Mode]>([['explicit'], ['implicit'], ['off']])('proftpd with tls %s', (mode) => {
  let server: FtpServer;
  let shared: Client | undefined;

  beforeAll(async () => {
    server = await startFtpServer({ tls: mode });
  });

  afterAll(async () => {
    shared?.close();
    await server?.destroy();
  });

  /**
   * One logged-in client for the tests that do not test logins: proftpd's master does not
   * accept for ~400 ms after any session ends (see the helper), so closing and reconnecting
   * between tests costs that each time.
   */
  async function session(): Promise<Client> {
    if (!shared || shared.closed) {
      shared?.close();
      shared = new Client(10_000);
      await shared.access(accessOptions(server));
    }
    return shared;
  }

  test('the server describes itself', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(1024);
    expect(server.secure).toBe(mode === 'explicit' ? true : mode === 'implicit' ? 'implicit' : false);
    const cert = new X509Certificate(readFileSync(server.caFile));
    expect(cert.subject).toBe('CN=127.0.0.1');
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
  });

  test('login, MKD, 3 MiB upload, MLSD list, SIZE, download, rename', async () => {
    const client = await session();
    if (mode === 'off') {
      expect(client.ftp.socket).not.toBeInstanceOf(TLSSocket);
    } else {
      expect(client.ftp.socket).toBeInstanceOf(TLSSocket);
      expect((client.ftp.socket as TLSSocket).encrypted).toBe(true);
      expect((client.ftp.socket as TLSSocket).authorized).toBe(true);
    }
    const features = await client.features();
    expect(features.has('MLST')).toBe(true);
    expect(client.availableListCommands[0]).toBe('MLSD'); // LIST only as a fallback, dropped after the first list()

    const root = await server.makeRoot();
    const rootStat = await stat(root.diskPath);
    expect(rootStat.mode & 0o777).toBe(0o755);
    if (process.getuid?.() === 0) {
      expect(root.ftpPath).toBe(`/${path.basename(root.diskPath)}`);
      expect(rootStat.uid).toBe(65534);
    }
    const dir = `${root.ftpPath}/2026/exam`;
    expect((await client.send(`MKD ${root.ftpPath}/2026`)).code).toBe(257);
    expect((await client.send(`MKD ${dir}`)).code).toBe(257);
    expect((await client.sendIgnoringError(`MKD ${dir}`)).code).toBe(550);

    const bytes = patternBytes(3 * MiB, `ftp-${mode}`);
    await client.uploadFrom(Readable.from([bytes.subarray(0, MiB), bytes.subarray(MiB)]), `${dir}/archive.bin`);
    const listing = await client.list(dir);
    expect(client.availableListCommands).toEqual(['MLSD']);
    expect(listing.map((e) => [e.name, e.isFile, e.size])).toEqual([['archive.bin', true, 3 * MiB]]);
    expect(await client.size(`${dir}/archive.bin`)).toBe(3 * MiB);
    expect(sha256(await download(client, `${dir}/archive.bin`))).toBe(sha256(bytes));

    await client.rename(`${dir}/archive.bin`, `${dir}/final.bin`);
    expect(await readdir(path.join(root.diskPath, '2026', 'exam'))).toEqual(['final.bin']);
    const onDisk = path.join(root.diskPath, '2026', 'exam', 'final.bin');
    expect(sha256(await readFile(onDisk))).toBe(sha256(bytes));
    expect((await stat(onDisk)).mode & 0o777).toBe(0o644); // Umask 022
    expect((await stat(path.join(root.diskPath, '2026'))).mode & 0o777).toBe(0o755);
  });

  test('AllowOverwrite off: STOR and RNTO onto an existing name answer 550 and change nothing', async () => {
    const client = await session();
    const root = await server.makeRoot();
    const original = Buffer.from('original content\n');
    await client.uploadFrom(Readable.from([original]), `${root.ftpPath}/a.zip`);
    await client.uploadFrom(Readable.from([Buffer.from('second file\n')]), `${root.ftpPath}/b.zip`);

    // The server's answer, without basic-ftp's data connection in the way: proftpd refuses
    // before it opens one (with overwrite allowed it would answer 425: no PASV/PORT given).
    const stor = await failure(client.send(`STOR ${root.ftpPath}/a.zip`));
    expect(stor).toBeInstanceOf(FTPError);
    expect((stor as FTPError).code).toBe(550);
    expect(stor.message).toMatch(/Overwrite permission denied/);

    // An FTPError leaves the client usable.
    expect(client.closed).toBe(false);
    const rnto = await failure(client.rename(`${root.ftpPath}/b.zip`, `${root.ftpPath}/a.zip`));
    expect(rnto).toBeInstanceOf(FTPError);
    expect((rnto as FTPError).code).toBe(550);
    expect(rnto.message).toMatch(/Rename permission denied/);
    expect(client.closed).toBe(false);

    // The same STOR through uploadFrom: the refusal closes the passive data connection before
    // it is used, and basic-ftp usually reports that first (ECONNRESET, data socket) and closes
    // the client; if the control reply wins it is the FTPError 550. Either way: nothing written.
    const upload = await failure(client.uploadFrom(Readable.from([Buffer.from('overwrite!\n')]), `${root.ftpPath}/a.zip`));
    if (upload instanceof FTPError) {
      expect(upload.code).toBe(550);
    } else {
      expect(upload.message).toMatch(/ECONNRESET|EPIPE|closed/);
      expect(client.closed).toBe(true);
    }

    expect(await readFile(path.join(root.diskPath, 'a.zip'))).toEqual(original);
    expect(await readFile(path.join(root.diskPath, 'b.zip'))).toEqual(Buffer.from('second file\n'));
    expect((await readdir(root.diskPath)).sort()).toEqual(['a.zip', 'b.zip']);
  });

  test('UTF-8 names round-trip as the same bytes; NFC and NFD stay two names', async () => {
    const client = await session();
    const root = await server.makeRoot();
    const nfc = 'prüfung-é.zip'.normalize('NFC');
    const nfd = nfc.normalize('NFD');
    await client.uploadFrom(Readable.from([Buffer.from('nfc')]), `${root.ftpPath}/${nfc}`);
    await client.uploadFrom(Readable.from([Buffer.from('nfd')]), `${root.ftpPath}/${nfd}`);
    const names = (await readdir(root.diskPath, { encoding: 'buffer' })).map((b) => b.toString('hex')).sort();
    expect(names).toEqual([Buffer.from(nfc, 'utf8').toString('hex'), Buffer.from(nfd, 'utf8').toString('hex')].sort());
    expect((await client.list(root.ftpPath)).map((e) => e.name).sort()).toEqual([nfc, nfd].sort());
    expect((await download(client, `${root.ftpPath}/${nfd}`)).toString()).toBe('nfd');
  });

  test('a wrong password is refused with 530', async () => {
    const error = await failure(login(server, { password: `${server.password}-wrong` }));
    expect(error).toBeInstanceOf(FTPError);
    expect((error as FTPError).code).toBe(530);
  });

  if (mode === 'off') {
    test('no TLS at all: AUTH TLS is not understood', async () => {
      const error = await failure(login(server, { secure: true, secureOptions: { ca: readFileSync(server.caFile) } }));
      expect(error).toBeInstanceOf(FTPError);
      expect((error as FTPError).code).toBe(500);
    });
  }

  if (mode === 'explicit') {
    test('TLSRequired on: a plain-FTP login is refused', async () => {
      const error = await failure(login(server, { secure: false, secureOptions: undefined }));
      expect(error).toBeInstanceOf(FTPError);
      expect((error as FTPError).code).toBe(550);
      expect(error.message).toMatch(/TLS required/i);
    });

    test('the certificate is really verified: without the CA the connection fails', async () => {
      const error = await failure(login(server, { secureOptions: { rejectUnauthorized: true } }));
      expect(error).not.toBeInstanceOf(FTPError);
      expect((error as NodeJS.ErrnoException).code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
    });
  }

  test('stop(): sessions end and connections are refused; start(): same port, data intact, new logins work', async () => {
    const client = await login(server);
    const root = await server.makeRoot();
    await client.uploadFrom(Readable.from([Buffer.from('kept')]), `${root.ftpPath}/kept.zip`);

    const port = server.port;
    await server.stop();
    const cut = await failure(client.pwd());
    expect(cut).not.toBeInstanceOf(FTPError);
    expect(client.closed).toBe(true);
    const refused = await failure(login(server));
    expect(refused).not.toBeInstanceOf(FTPError);
    expect((refused as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');

    await server.start();
    expect(server.port).toBe(port);
    const again = await login(server);
    expect((await download(again, `${root.ftpPath}/kept.zip`)).toString()).toBe('kept');
  });
});

test('a test process killed with SIGKILL leaves no proftpd and no temp dir behind (the watchdog)', async () => {
  const scratch = await mkdtemp(path.join(tmpdir(), 'depot-ftp-crash-'));
  let dir = '';
  try {
    const script = path.join(scratch, 'crash.ts');
    const helper = path.resolve(__dirname, '../helpers/ftp-server');
    await writeFile(
      script,
      `import { startFtpServer } from ${JSON.stringify(helper)};\n` +
        `startFtpServer({ tls: 'explicit' }).then((s) => { process.stdout.write(s.homeDir + '\\n', () => process.kill(process.pid, 'SIGKILL')); });\n`,
    );
    const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
    expect(signal).toBe('SIGKILL');
    dir = path.dirname(out.trim());
    expect(dir).toMatch(/depot-proftpd-/);
    const pid = Number(readFileSync(path.join(dir, 'proftpd.pid'), 'utf8'));
    expect(pid).toBeGreaterThan(1);

    const until = Date.now() + 8_000;
    while (existsSync(dir) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(dir)).toBe(false); // removed only after the process group is gone
    const state = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
    expect(state === '' || / Z /.test(state) || !state.includes('(proftpd)')).toBe(true); // gone, or a zombie awaiting its reaper
  } finally {
    // If the watchdog failed: stop the server our child started (its pid file names the group) and remove its files.
    if (dir && existsSync(path.join(dir, 'proftpd.pid'))) {
      try {
        process.kill(-Number(readFileSync(path.join(dir, 'proftpd.pid'), 'utf8')), 'SIGTERM');
      } catch {
        // already gone
      }
      await rm(dir, { recursive: true, force: true });
    }
    await rm(scratch, { recursive: true, force: true });
  }
}, 20_000);
