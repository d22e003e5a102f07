import { PassThrough, Readable } from 'node:stream';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { AppError, errors } from '../../common/errors.ts';
import { parentDirs, pathProblem } from './paths.ts';

/** Limits an uploaded archive is checked against before anything is extracted. */
export interface ZipLimits {
  /** Most entries (files and directories) an archive may list. */
  maxEntries: number;
  /** Largest single file, uncompressed. */
  maxFileBytes: number;
  /** Largest total of all files, uncompressed. */
  maxTotalBytes: number;
  /** Largest uncompressed/compressed ratio of one file (above 64 KiB) or of the whole archive. */
  maxRatio: number;
}

/** A file taken out of an archive. */
export interface ZipEntryFile {
  path: string;
  bytes: Buffer;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const RATIO_FLOOR_BYTES = 64 * 1024;

/**
 * Reads every file of a zip archive, refusing the whole archive before extracting anything when
 * an entry is a symbolic link (or any non-regular file), has an unacceptable path (absolute,
 * `..`, backslashes, sibling-prefix escapes…), is encrypted, appears twice, or when the entry
 * count, sizes or compression ratios exceed `limits`. Sizes are enforced again while inflating
 * (an archive may lie about them). `strip` drops that many leading directories (GitHub's
 * `repo-main/`).
 * @throws AppError invalid_request (bad archive or entry), too_large (limits).
 */
export async function readZip(
  archive: Buffer,
  limits: ZipLimits,
  strip = 0,
): Promise<ZipEntryFile[]> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromBufferPromise(archive, {
      lazyEntries: true,
      autoClose: false,
      validateEntrySizes: true,
      // Names are decoded below and judged by our own rules, with a clear message.
      decodeStrings: false,
    });
  } catch (err) {
    throw errors.invalid(`Not a readable zip archive: ${message(err)}`);
  }
  try {
    if (zip.entryCount > limits.maxEntries) {
      throw errors.tooLarge(
        `The archive has ${zip.entryCount} entries; at most ${limits.maxEntries} are accepted`,
      );
    }
    const planned = await planEntries(zip, limits, strip);
    const files: ZipEntryFile[] = [];
    for (const { entry, path } of planned) {
      files.push({ path, bytes: await inflate(zip, entry) });
    }
    return files;
  } finally {
    zip.close();
  }
}

async function planEntries(
  zip: yauzl.ZipFile,
  limits: ZipLimits,
  strip: number,
): Promise<{ entry: yauzl.Entry; path: string }[]> {
  const planned: { entry: yauzl.Entry; path: string }[] = [];
  const seen = new Set<string>();
  let total = 0;
  let compressed = 0;
  try {
    for await (const entry of zip.eachEntry()) {
      // strict: a backslash stays a backslash (and is refused), not a separator.
      const name = yauzl.getFileNameLowLevel(
        entry.generalPurposeBitFlag,
        entry.fileNameRaw,
        entry.extraFields,
        true,
      );
      const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
      const madeOnUnix = entry.versionMadeBy >> 8 === 3;
      if (madeOnUnix && mode === S_IFLNK) refuse(name, 'symbolic links are not accepted');
      if (madeOnUnix && mode !== 0 && mode !== S_IFREG && mode !== S_IFDIR) {
        refuse(name, 'only regular files and directories are accepted');
      }
      if (entry.isEncrypted()) refuse(name, 'encrypted entries are not accepted');
      if (!entry.canDecodeFileData()) refuse(name, 'unsupported compression method');
      const isDir = name.endsWith('/') || (madeOnUnix && mode === S_IFDIR);
      const rawPath = name.replace(/\/+$/, '');
      const problem = pathProblem(rawPath);
      if (problem) refuse(name, problem);
      const segments = rawPath.split('/');
      if (isDir) continue;
      if (segments.length <= strip) continue;
      const path = segments.slice(strip).join('/');
      if (seen.has(path)) refuse(name, 'appears twice');
      seen.add(path);
      if (entry.uncompressedSize > limits.maxFileBytes) {
        throw errors.tooLarge(
          `${name} is ${entry.uncompressedSize} bytes uncompressed; files may be at most ${limits.maxFileBytes} bytes`,
        );
      }
      if (
        entry.uncompressedSize > RATIO_FLOOR_BYTES &&
        entry.uncompressedSize / Math.max(entry.compressedSize, 1) > limits.maxRatio
      ) {
        refuse(name, `compression ratio above ${limits.maxRatio}:1 (a zip bomb?)`);
      }
      total += entry.uncompressedSize;
      compressed += entry.compressedSize;
      if (total > limits.maxTotalBytes) {
        throw errors.tooLarge(
          `The archive holds more than ${limits.maxTotalBytes} bytes uncompressed`,
        );
      }
      planned.push({ entry, path });
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw errors.invalid(`The zip archive is malformed: ${message(err)}`);
  }
  if (total > RATIO_FLOOR_BYTES && total / Math.max(compressed, 1) > limits.maxRatio) {
    throw errors.invalid(
      `The archive's compression ratio is above ${limits.maxRatio}:1 (a zip bomb?)`,
    );
  }
  // A name used both as a file and as a directory cannot exist on disk.
  for (const { path } of planned) {
    const clash = parentDirs(path).find((dir) => seen.has(dir));
    if (clash) refuse(path, `${clash} is both a file and a directory`);
  }
  return planned;
}

async function inflate(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Buffer> {
  try {
    const stream = await zip.openReadStreamPromise(entry);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      // yauzl also checks this (validateEntrySizes); stop early rather than buffer a bomb.
      if (size > entry.uncompressedSize) throw new Error('more data than the entry declares');
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, size);
  } catch (err) {
    throw errors.invalid(`An entry cannot be extracted: ${message(err)}`);
  }
}

function refuse(name: string, why: string): never {
  throw errors.invalid(`The archive was refused: entry "${printable(name)}": ${why}`, [
    { field: 'archive', message: `${printable(name)}: ${why}` },
  ]);
}

function printable(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 300);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One file to put in an archive; `load` is called when the archive reaches it. */
export interface ArchiveEntry {
  path: string;
  mtime: Date;
  load(): Promise<Buffer>;
}

/**
 * `filePath` as a zip entry name. Stored paths follow {@link pathProblem}'s rules, but files saved
 * before the rules became portable may not: their odd characters become `_` rather than abort the
 * archive half-way (zip tools refuse `c:x.txt` as an absolute path).
 */
export function portableName(filePath: string): string {
  if (!pathProblem(filePath)) return filePath;
  return filePath
    .split('/')
    .map((segment) =>
      segment
        // eslint-disable-next-line no-control-regex
        .replace(/[<>:"|?*\\\u0000-\u001f]/g, '_')
        .replace(/[. ]+$/, (m) => '_'.repeat(m.length)),
    )
    .join('/');
}

/**
 * A zip of `entries`, streamed: each file's bytes are loaded only when the archive gets to it,
 * so memory stays bounded whatever the project's size.
 */
export function buildZip(entries: AsyncIterable<ArchiveEntry>): Readable {
  const zip = new yazl.ZipFile();
  const out = new PassThrough();
  (zip.outputStream as Readable).on('error', (err) => out.destroy(err)).pipe(out);
  zip.on('error', (err: Error) => out.destroy(err));
  void (async () => {
    try {
      for await (const entry of entries) {
        zip.addReadStreamLazy(
          portableName(entry.path),
          { mtime: entry.mtime, mode: 0o100644 },
          (cb) => {
            entry.load().then(
              (bytes) => cb(null, Readable.from([bytes])),
              (err: unknown) => cb(err, Readable.from([])),
            );
          },
        );
      }
      zip.end();
    } catch (err) {
      out.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  })();
  return out;
}
