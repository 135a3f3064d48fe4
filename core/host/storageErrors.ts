// Storage that fails under the user's feet (a full disk) is said, with what to do, never swallowed. The model cache's
// quota error is StorageFullError (core/model/sources.ts); this turns the KV snapshot store's failed saves, and a
// thread the history could not keep, into the message the UI shows.
import type { SnapshotEvent } from '../engine/snapshots';
import type { ErrorInfo } from '../protocol/messages';
import { isQuotaError } from '../snapshot';

/**
 * The message for a snapshot event, or null when there is nothing to tell (a save that worked, a snapshot that is
 * over the budget by itself, a save cancelled by Clear). `budgetMB`: the snapshot budget setting now.
 */
export function snapshotStorageError(event: SnapshotEvent, budgetMB: number): ErrorInfo | null {
  if (event.kind !== 'save-failed') return null;
  const what = `This page's reading (${event.tokens.toLocaleString('en-US')} tokens of KV snapshot) could not be saved`;
  const todo = `Free disk space, or lower the snapshot budget in Settings (now ${budgetMB} MB; 0 keeps no snapshots).`;
  if (event.reason === 'quota')
    return {
      code: 'storage-failed',
      message: `The disk is full. ${what}, so the page will be read again next time. ${todo}`,
    };
  if (event.reason === 'storage-error' || event.reason === 'error')
    return {
      code: 'storage-failed',
      message: `${what} (${event.detail ?? 'storage error'}). The page will be read again next time. ${todo}`,
    };
  return null;
}

/** The message for a thread the history (IndexedDB) could not save: the answer is shown, but not kept. */
export function historyStorageError(e: unknown): ErrorInfo {
  const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return {
    code: 'storage-failed',
    message: isQuotaError(e)
      ? 'The disk is full: this conversation could not be saved in the history (it stays here until the browser ' +
        'restarts). Free disk space, or delete old threads in History.'
      : `This conversation could not be saved in the history (${why}). If this repeats, free disk space or delete ` +
        'old threads in History.',
  };
}
