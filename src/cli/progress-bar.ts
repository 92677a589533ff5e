import type { ArchivingManager, ProgressEvent } from '../archiving/manager';
import { formatBytes } from './output';

/** A progress line on stderr for one job, only when stderr is a terminal. */
export function showProgress(manager: ArchivingManager, jobId: string): () => void {
  if (!process.stderr.isTTY) return () => undefined;
  const onProgress = (event: ProgressEvent) => {
    if (event.jobId !== jobId) return;
    const total = event.totalBytes;
    const width = 30;
    const share = total ? Math.min(event.bytes / total, 1) : 0;
    const bar = total ? `[${'#'.repeat(Math.round(share * width)).padEnd(width, '.')}] ${(share * 100).toFixed(0).padStart(3)}% ` : '';
    process.stderr.write(`\r${bar}${formatBytes(event.bytes)}${total ? ` / ${formatBytes(total)}` : ''}   `);
  };
  manager.on('progress', onProgress);
  return () => {
    manager.off('progress', onProgress);
    process.stderr.write('\r\x1b[K');
  };
}
