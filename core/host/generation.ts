// One generation of a job: [system + document] is the reusable prefix, the question follows. Streams the answer's
// tokens to the UI, or collects a part summary while the progress line names the map-reduce step.
import type { AttentionPolicy, Engine, GenerationStats } from '../engine/types';
import type { HostEvent, JobView } from '../protocol/messages';
import type { SinglePrompt } from './prompt';

const PROGRESS_INTERVAL_MS = 250;

/**
 * One generation over [system + document] + question. `stream`: the tokens are the answer (deltas to the UI);
 * otherwise they are collected (a part summary) while the progress line names the step.
 */
export async function runGeneration(
  job: JobView,
  engine: Engine,
  prompt: SinglePrompt,
  emit: (event: HostEvent) => void,
  o: {
    maxTokens: number;
    attention: AttentionPolicy;
    signal: AbortSignal;
    stream: boolean;
    label?: string;
    steps?: { done: number; total: number };
  },
): Promise<{ text: string; stats: GenerationStats | null }> {
  const step = o.label ? { label: o.label, steps: o.steps } : {};
  if (o.label) {
    job.stage = 'prefill';
    job.progress = { stage: 'prefill', ...step };
    emit({ type: 'progress', jobId: job.jobId, tabId: job.tabId, progress: job.progress });
  }
  let text = '';
  let stats: GenerationStats | null = null;
  let decodeStart = 0;
  let tokens = 0;
  let lastEmit = 0;
  for await (const ev of engine.generate(
    { messages: [{ role: 'user', content: prompt.question }], system: prompt.system, document: prompt.document },
    { maxTokens: o.maxTokens, temperature: 0, signal: o.signal, attention: o.attention },
  )) {
    if (ev.type === 'prefill-progress') {
      const fraction = ev.total > 0 ? ev.done / ev.total : 1;
      job.progress = { stage: 'prefill', prefill: { fraction, done: ev.done, total: ev.total }, ...step };
      emit({ type: 'progress', jobId: job.jobId, tabId: job.tabId, progress: job.progress });
    } else if (ev.type === 'token') {
      if (tokens === 0) {
        decodeStart = Date.now();
        job.stage = 'generating';
      }
      tokens++;
      text += ev.text;
      if (o.stream) {
        job.answer += ev.text;
        emit({ type: 'delta', jobId: job.jobId, tabId: job.tabId, text: ev.text });
      }
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
  return { text, stats };
}
