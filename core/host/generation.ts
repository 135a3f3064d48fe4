// One generation over a planned prompt: the host's one call into engine.generate for a job, streaming its tokens to
// the UI (or collecting them for a part summary) with progress; and the attention policy a job runs under.
import type { AttentionPolicy } from '../attention/policy';
import type { ChatMessage, Engine, GenerationStats } from '../engine/types';
import type { HostEvent, JobView } from '../protocol/messages';
import type { Settings } from '../protocol/settings';
import type { SinglePrompt } from './prompt';
import type { ChatInput } from './resume';

const PROGRESS_INTERVAL_MS = 250;

/**
 * One generation over [system + document] + question. `stream`: the tokens are the answer (deltas to the UI);
 * otherwise they are collected (a part summary) while the progress line names the step.
 */
export interface GenerationOptions {
  maxTokens: number;
  attention: AttentionPolicy;
  /** false: run the fast-mode policy even below the break-even (the `fastModeAlways` setting). */
  fastModeBreakEven: boolean;
  signal: AbortSignal;
  stream: boolean;
  /** Called when the first token of this generation arrives. */
  onFirstToken?: () => void;
  /** Called with the input before the engine starts (the streaming answer's prompt is kept for Continue). */
  onStart?: (input: ChatInput, maxTokens: number) => void;
  /** Called with each generated id. */
  onToken?: (id: number) => void;
  label?: string;
  steps?: { done: number; total: number };
}

/** A planned prompt as the engine's input: [system + document] + earlier turns of the thread + the question. */
export function chatInput(prompt: SinglePrompt, history: ChatMessage[] = []): ChatInput {
  return {
    messages: [...history, { role: 'user', content: prompt.question }],
    system: prompt.system,
    document: prompt.document,
  };
}

export async function runGeneration(
  job: JobView,
  engine: Engine,
  input: ChatInput,
  emit: (event: HostEvent) => void,
  o: GenerationOptions,
): Promise<{ text: string; stats: GenerationStats | null; ids: number[] }> {
  const step = o.label ? { label: o.label, steps: o.steps } : {};
  if (o.label) {
    job.stage = 'prefill';
    job.progress = { stage: 'prefill', ...step };
    emit({ type: 'progress', jobId: job.jobId, tabId: job.tabId, progress: job.progress });
  }
  let text = '';
  const ids: number[] = [];
  let stats: GenerationStats | null = null;
  let decodeStart = 0;
  let tokens = 0;
  let lastEmit = 0;
  o.onStart?.(input, o.maxTokens);
  for await (const ev of engine.generate(input, {
    maxTokens: o.maxTokens,
    temperature: 0,
    signal: o.signal,
    attention: o.attention,
    fastModeBreakEven: o.fastModeBreakEven,
  })) {
    if (ev.type === 'prefill-progress') {
      const fraction = ev.total > 0 ? ev.done / ev.total : 1;
      job.progress = { stage: 'prefill', prefill: { fraction, done: ev.done, total: ev.total }, ...step };
      emit({ type: 'progress', jobId: job.jobId, tabId: job.tabId, progress: job.progress });
    } else if (ev.type === 'token') {
      if (tokens === 0) {
        o.onFirstToken?.();
        decodeStart = Date.now();
        job.stage = 'generating';
      }
      tokens++;
      ids.push(ev.tokenId);
      text += ev.text;
      if (o.stream) {
        job.answer += ev.text;
        emit({ type: 'delta', jobId: job.jobId, tabId: job.tabId, text: ev.text });
      }
      o.onToken?.(ev.tokenId);
      const now = Date.now();
      if (now - lastEmit >= PROGRESS_INTERVAL_MS && now > decodeStart) {
        lastEmit = now;
        const tokensPerSec = ((tokens - 1) * 1000) / (now - decodeStart);
        job.progress = { stage: 'generating', tokensPerSec, ...step };
        emit({ type: 'progress', jobId: job.jobId, tabId: job.tabId, progress: job.progress });
      }
    } else if (ev.type === 'done') {
      stats = ev.stats;
    }
  }
  return { text, stats, ids };
}

/** The attention policy of a job from the settings: fast mode's schedule (dynamic: threshold from the model family,
 * resolved by the engine) or full attention. */
export function fastModePolicy(
  settings: Pick<Settings, 'fastMode' | 'fastK' | 'fastSchedule' | 'fastStride' | 'fastQc'>,
): AttentionPolicy {
  if (!settings.fastMode) return { kind: 'full' };
  if (settings.fastSchedule === 'dynamic')
    return { kind: 'recycled', k: settings.fastK, dynamic: { qc: settings.fastQc } };
  return { kind: 'recycled', k: settings.fastK, stride: settings.fastStride };
}
