// The conversation about the page: earlier turns, then the latest one (the running or last job), each with its
// answer, citation chips and actions. Only the latest turn carries the `answer` and `stats` test ids.
import { useState } from 'preact/hooks';
import type { Citation, DoneStats, JobView, ThreadView, TurnView } from '../core/protocol/messages';
import { Markdown } from './markdown';
import { formatPercent } from './uiState';

export interface TurnActions {
  copyText: (text: string) => Promise<void>;
  showCitation: (citation: Citation) => void;
  /** Latest turn only, when no job runs. */
  regenerate?: () => void;
  editQuestion?: () => void;
}

function shorten(text: string, max = 60): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

export function CitationChips({ citations, onShow }: { citations: Citation[]; onShow: (c: Citation) => void }) {
  if (citations.length === 0) return null;
  return (
    <div class="citations">
      {citations.map((c, i) =>
        c.match === 'none' ? (
          <span
            key={`${i}-${c.quote}`}
            class="citation missing"
            data-testid="citation"
            data-found="false"
            title="This quote was not found in the page"
          >
            {c.kind === 'page' ? `p. ${c.page}` : `“${shorten(c.quote)}”`} · not found in the page
          </span>
        ) : (
          <button
            type="button"
            key={`${i}-${c.quote}`}
            class="citation"
            data-testid="citation"
            data-found="true"
            data-match={c.match}
            title={c.kind === 'page' ? `Open page ${c.page}` : 'Show this passage in the page'}
            onClick={() => onShow(c)}
          >
            {c.kind === 'page' ? `p. ${c.page}` : `“${shorten(c.quote)}”`}
            {c.kind === 'quote' && c.page !== null && <span class="page"> p. {c.page}</span>}
          </button>
        ),
      )}
    </div>
  );
}

/** 0.84 s, 12.3 s, 95 s. */
export function formatSeconds(ms: number): string {
  const sec = ms / 1000;
  return `${sec < 10 ? sec.toFixed(sec < 1 ? 2 : 1) : Math.round(sec)} s`;
}

export function statsLine(s: DoneStats): string {
  const parts = [`${s.promptTokens.toLocaleString()} prompt tokens`];
  if (s.reusedTokens > 0 || s.restoredTokens > 0) {
    parts.push(`prefilled ${s.prefillTokens.toLocaleString()}`);
    if (s.reusedTokens > 0) parts.push(`${s.reusedTokens.toLocaleString()} reused from memory`);
    if (s.restoredTokens > 0) parts.push(`${s.restoredTokens.toLocaleString()} restored from a snapshot`);
  }
  // One prefilled token is the prompt's last, run as a decode step: no prefill rate to speak of.
  if (s.prefillTokens > 1) parts.push(`prefill ${s.prefillTokensPerSec.toFixed(0)} tok/s`);
  if (s.timeToFirstTokenMs != null) parts.push(`first token ${formatSeconds(s.timeToFirstTokenMs)} after Ask`);
  parts.push(`decode ${s.decodeTokensPerSec.toFixed(1)} tok/s`);
  if (s.fastModeSpeedup !== null) parts.push(`fast mode ${s.fastModeSpeedup.toFixed(2)}×`);
  else if (s.fastMode && s.fastModeActive === false) {
    const predicted = s.fastModePredicted != null ? ` (predicted ${s.fastModePredicted.toFixed(2)}× of its time)` : '';
    parts.push(`full attention: fast mode would not be faster here${predicted}`);
  }
  if (s.attentionPolicy === 'recycled' && s.fullSteps !== null)
    parts.push(`${s.fullSteps} full / ${Math.max(0, s.generatedTokens - s.fullSteps)} recycled steps`);
  if (s.positionsReadFraction !== null) parts.push(`read ${formatPercent(s.positionsReadFraction)} of the KV per step`);
  if (s.partSummaries > 0) parts.push(`from ${s.partSummaries} part summaries`);
  return parts.join(' · ');
}

function CopyButton({
  text,
  copyText,
  label = 'Copy',
}: {
  text: string;
  copyText: TurnActions['copyText'];
  label?: string;
}) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class="copy"
      data-testid="copy"
      onClick={() =>
        void copyText(text).then(() => {
          setDone(true);
          setTimeout(() => setDone(false), 1200);
        })
      }
    >
      {done ? 'Copied' : label}
    </button>
  );
}

function DroppedNotice({ n }: { n: number }) {
  if (n <= 0) return null;
  return (
    <div class="dropped muted" data-testid="dropped-turns">
      {n === 1 ? '1 earlier turn was' : `${n} earlier turns were`} left out to fit the context window.
    </div>
  );
}

function EarlierTurn({ turn, actions }: { turn: TurnView; actions: TurnActions }) {
  return (
    <article class="turn" data-testid="turn" data-status={turn.status}>
      <div class="question-echo">{turn.kind === 'summarize' ? 'Summary' : turn.question}</div>
      <DroppedNotice n={turn.droppedTurns} />
      <div class="turn-answer">
        <Markdown text={turn.answer} onCopyCode={(t) => void actions.copyText(t)} />
      </div>
      {turn.error && <div class="turn-error">{turn.error.message}</div>}
      <CitationChips citations={turn.citations} onShow={actions.showCitation} />
      {turn.answer && (
        <div class="turn-actions">
          <CopyButton text={turn.answer} copyText={actions.copyText} />
        </div>
      )}
    </article>
  );
}

/** The thread: earlier turns, then the latest job as the last turn. */
export function ThreadTurns({
  thread,
  job,
  running,
  actions,
}: {
  thread: ThreadView | null;
  job: JobView | null;
  running: boolean;
  actions: TurnActions;
}) {
  const latestId = job?.jobId ?? null;
  const earlier = (thread?.turns ?? []).filter((t) => t.jobId !== latestId);
  return (
    <section class="answer-box" data-testid="thread" data-thread-id={thread?.threadId ?? ''}>
      {earlier.map((t) => (
        <EarlierTurn key={t.jobId} turn={t} actions={actions} />
      ))}
      {job ? (
        <article class="turn latest" data-testid="turn" data-status={job.status}>
          {job.question !== undefined && (
            <div class="question-echo">{job.kind === 'summarize' ? 'Summary' : job.question}</div>
          )}
          <DroppedNotice n={job.droppedTurns ?? 0} />
          <div class="answer" data-testid="answer" aria-live="polite">
            <Markdown text={job.answer} onCopyCode={(t) => void actions.copyText(t)} />
          </div>
          {!job.answer && job.status !== 'running' && <div class="placeholder muted">No answer.</div>}
          <CitationChips citations={job.citations ?? []} onShow={actions.showCitation} />
          {job.status !== 'running' && (
            <div class="turn-actions">
              {job.answer && <CopyButton text={job.answer} copyText={actions.copyText} />}
              {!running && actions.regenerate && (
                <button type="button" data-testid="regenerate" onClick={actions.regenerate}>
                  Regenerate
                </button>
              )}
              {!running && actions.editQuestion && job.kind === 'ask' && (
                <button type="button" data-testid="edit-question" onClick={actions.editQuestion}>
                  Edit question
                </button>
              )}
            </div>
          )}
          {job.stats && (
            <div class="stats muted" data-testid="stats">
              {statsLine(job.stats)}
            </div>
          )}
        </article>
      ) : (
        earlier.length === 0 && (
          <>
            <div class="answer" data-testid="answer" aria-live="polite" />
            <div class="placeholder muted">The answer appears here. Nothing leaves your machine.</div>
          </>
        )
      )}
    </section>
  );
}
