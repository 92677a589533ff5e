import { MultipartError, MultipartReader } from '../../src/http/multipart';

/**
 * The multipart reader of `POST /v1/tasks` (src/http/multipart.ts) holds back
 * only an end of a chunk that may begin a delimiter: a delimiter split
 * anywhere across chunks must still be found, and a partial match that is
 * not one must come out as body bytes, in order.
 */
const BOUNDARY = '--x--x-';
const DELIMITER = `\r\n--${BOUNDARY}`;

/** Body bytes that look like the start of a delimiter, each followed by something else. */
const NEAR_MISSES = ['\r', '\r\n', '\r\n-', '\r\n--', '\r\n---', '\r\n----x--x', '\r\r\n--', '\r\n----x--\r\n----x--x', `${DELIMITER.slice(0, -1)}\r`];
const FILE = Buffer.from(['\r\n-', ...NEAR_MISSES.map((s, i) => `${s}<${i}>`), 'end', ...NEAR_MISSES.slice(-3)].join(''), 'latin1');
const TASK = '{"operation":"store"}';
const FORM = Buffer.from(
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="task"\r\n\r\n${TASK}` +
    `${DELIMITER}\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n\r\n${FILE.toString('latin1')}` +
    `${DELIMITER}--\r\n`,
  'latin1',
);

async function* chunks(...parts: Buffer[]): AsyncGenerator<Buffer> {
  for (const part of parts) yield part;
}

/** The form's two parts as the upload route reads them: the task's text, then the file's chunks. */
async function read(source: AsyncIterable<Buffer>): Promise<{ task: string; file: Buffer[] }> {
  const reader = new MultipartReader(source, BOUNDARY);
  expect(await reader.nextPart()).toEqual({ name: 'task' });
  const task = await reader.text(1024);
  expect(await reader.nextPart()).toEqual({ name: 'file', filename: 'a.zip' });
  const file: Buffer[] = [];
  for await (const chunk of reader.body()) file.push(chunk);
  expect(await reader.nextPart()).toBeNull();
  return { task, file };
}

test('the file holds near-delimiters but no delimiter (the test itself is sound)', () => {
  expect(FILE.indexOf(DELIMITER)).toBe(-1);
  expect(Buffer.concat([FILE, Buffer.from(DELIMITER)]).indexOf(DELIMITER)).toBe(FILE.length);
  expect(FILE.subarray(-2).toString('latin1')).toBe('x\r');
});

test('a form split in two at every byte position reads the same: each delimiter found, near-delimiters kept as body bytes in order', async () => {
  for (let at = 1; at < FORM.length; at++) {
    const { task, file } = await read(chunks(FORM.subarray(0, at), FORM.subarray(at)));
    expect({ at, task }).toEqual({ at, task: TASK });
    expect({ at, file: Buffer.concat(file).toString('latin1') }).toEqual({ at, file: FILE.toString('latin1') });
  }
});

test('a form in chunks of every size from 1 to 48 bytes reads the same', async () => {
  for (let size = 1; size <= 48; size++) {
    const parts: Buffer[] = [];
    for (let at = 0; at < FORM.length; at += size) parts.push(FORM.subarray(at, at + size));
    const { task, file } = await read(chunks(...parts));
    expect({ size, task }).toEqual({ size, task: TASK });
    expect({ size, file: Buffer.concat(file).toString('latin1') }).toEqual({ size, file: FILE.toString('latin1') });
  }
});

test('a body chunk whose end cannot begin a delimiter is passed on as it came, not copied', async () => {
  const head = Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\n\r\n`);
  // Buffer.alloc, not from a string: each chunk in its own memory, so a copy shows.
  // The second ends in a CR that does not begin a delimiter.
  const body = [Buffer.alloc(65536, 'a'), Buffer.alloc(65536, 'b'), Buffer.alloc(1000, 'c')];
  body[1].write('\r\n-x', 65532, 'latin1');
  const reader = new MultipartReader(chunks(head, ...body, Buffer.from(`${DELIMITER}--`)), BOUNDARY);
  expect(await reader.nextPart()).toEqual({ name: 'file' });
  const out: Buffer[] = [];
  for await (const chunk of reader.body()) out.push(chunk);
  expect(out.map((chunk, i) => chunk.buffer === body[i]?.buffer && chunk.byteOffset === body[i].byteOffset && chunk.length === body[i].length)).toEqual([
    true,
    true,
    true,
  ]);
});

test('a form cut off inside a held-back partial delimiter is truncated, not a body', async () => {
  const cut = FORM.subarray(0, FORM.length - `--${BOUNDARY}--\r\n`.length);
  const reader = new MultipartReader(chunks(cut), BOUNDARY);
  await reader.nextPart();
  await reader.text(1024);
  await reader.nextPart();
  const error = await (async () => {
    for await (const chunk of reader.body()) void chunk;
  })().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(MultipartError);
  expect((error as MultipartError).truncated).toBe(true);
});
