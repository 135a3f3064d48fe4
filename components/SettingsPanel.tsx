// Settings: model files, context window, fast-mode K and schedule, snapshot budget, custom models.
import { useState } from 'preact/hooks';
import type {
  EngineStatus,
  GpuStatus,
  ModelEntry,
  RequestOf,
  RequestType,
  ResponseMap,
} from '../core/protocol/messages';
import { formatTopK, parseTopK, type Settings } from '../core/protocol/settings';
import { formatBytes } from './uiState';

interface Props {
  settings: Settings;
  selectedModel: ModelEntry | null;
  engine: EngineStatus;
  gpu: GpuStatus;
  call: <T extends RequestType>(request: RequestOf<T>) => Promise<ResponseMap[T] | null>;
  onModelsChanged: () => Promise<void>;
  openSidePanel?: () => void;
}

function NumberField(props: {
  label: string;
  value: number;
  min: number;
  max: number;
  step?: number;
  onCommit: (v: number) => void;
  hint?: string;
}) {
  return (
    <label class="field">
      <span>{props.label}</span>
      <input
        type="number"
        min={props.min}
        max={props.max}
        step={props.step ?? 1}
        value={props.value}
        onChange={(e) => {
          const v = Number(e.currentTarget.value);
          if (Number.isInteger(v) && v >= props.min && v <= props.max) props.onCommit(v);
          else e.currentTarget.value = String(props.value);
        }}
      />
      {props.hint && <small class="muted">{props.hint}</small>}
    </label>
  );
}

export function SettingsPanel({ settings, selectedModel, engine, gpu, call, onModelsChanged, openSidePanel }: Props) {
  const [customUrl, setCustomUrl] = useState('');
  const [kText, setKText] = useState(formatTopK(settings.fastK));
  const [message, setMessage] = useState('');
  const save = (patch: Partial<Settings>) => void call({ type: 'setSettings', settings: patch });

  return (
    <details class="settings">
      <summary>Settings</summary>
      {selectedModel && (
        <div class="model-files">
          <div>
            <strong>{selectedModel.label}</strong>
            <div class="muted">
              {selectedModel.downloadBytesEstimate !== null &&
                `≈${formatBytes(selectedModel.downloadBytesEstimate)} download · `}
              {selectedModel.vramRequiredMB !== null &&
                `${Math.round(selectedModel.vramRequiredMB)} MB VRAM (WebLLM, 4K context) · `}
              {selectedModel.cached ? 'downloaded' : 'not downloaded'}
              {engine.modelId === selectedModel.modelId && ` · ${engine.state}`}
            </div>
          </div>
          <div class="row">
            <button
              type="button"
              data-testid="load-model"
              disabled={engine.state === 'loading'}
              onClick={async () => {
                const r = await call({ type: 'loadModel', modelId: selectedModel.modelId });
                if (r) setMessage(`Loaded ${selectedModel.label}`);
                await onModelsChanged();
              }}
            >
              Download &amp; load
            </button>
            <button
              type="button"
              class="danger"
              disabled={!selectedModel.cached}
              onClick={async () => {
                const r = await call({ type: 'deleteModel', modelId: selectedModel.modelId });
                if (r) setMessage(`Deleted ${r.deletedFiles} files`);
                await onModelsChanged();
              }}
            >
              Delete files
            </button>
          </div>
        </div>
      )}
      <div class="grid">
        <NumberField
          label="Context window (tokens)"
          value={settings.contextWindow}
          min={512}
          max={131072}
          step={512}
          onCommit={(contextWindow) => save({ contextWindow })}
        />
        <NumberField
          label="Longest answer (tokens)"
          value={settings.maxAnswerTokens}
          min={1}
          max={8192}
          onCommit={(maxAnswerTokens) => save({ maxAnswerTokens })}
        />
        <label class="field">
          <span>Fast mode K</span>
          <input
            type="text"
            value={kText}
            onInput={(e) => setKText(e.currentTarget.value)}
            onChange={(e) => {
              const k = parseTopK(e.currentTarget.value);
              if (k) save({ fastK: k });
              else setKText(formatTopK(settings.fastK));
            }}
          />
          <small class="muted">positions kept: “2048”, or a share of the page: “12.5%”</small>
        </label>
        <label class="field">
          <span>Fast mode schedule</span>
          <select
            value={settings.fastSchedule}
            onChange={(e) => save({ fastSchedule: e.currentTarget.value === 'fixed' ? 'fixed' : 'dynamic' })}
          >
            <option value="dynamic">dynamic (refresh when the question moves)</option>
            <option value="fixed">fixed stride</option>
          </select>
        </label>
        {settings.fastSchedule === 'fixed' ? (
          <NumberField
            label="Fast mode stride"
            value={settings.fastStride}
            min={1}
            max={10000}
            onCommit={(fastStride) => save({ fastStride })}
            hint="a full step every N tokens"
          />
        ) : (
          <NumberField
            label="Fast mode check interval"
            value={settings.fastQc}
            min={1}
            max={10000}
            onCommit={(fastQc) => save({ fastQc })}
            hint="compare the query every N tokens"
          />
        )}
        <label class="field check">
          <input
            type="checkbox"
            data-testid="fast-mode-always"
            checked={settings.fastModeAlways}
            onChange={(e) => save({ fastModeAlways: e.currentTarget.checked })}
          />
          <span>Fast mode even where it cannot pay off (small models, short pages)</span>
        </label>
        <NumberField
          label="Saved documents budget (MB)"
          value={settings.snapshotBudgetMB}
          min={0}
          max={1048576}
          step={64}
          onCommit={(snapshotBudgetMB) => save({ snapshotBudgetMB })}
        />
      </div>
      <div class="row">
        <input
          type="url"
          data-testid="custom-model-url"
          placeholder="Custom model base URL (folder with mlc-chat-config.json)"
          value={customUrl}
          onInput={(e) => setCustomUrl(e.currentTarget.value)}
        />
        <button
          type="button"
          data-testid="custom-model-add"
          disabled={!customUrl.trim()}
          onClick={async () => {
            const entry = await call({ type: 'addCustomModel', baseUrl: customUrl });
            if (entry) {
              setCustomUrl('');
              setMessage(`Added ${entry.label}`);
              await call({ type: 'setSettings', settings: { modelId: entry.modelId } });
              await onModelsChanged();
            }
          }}
        >
          Add
        </button>
      </div>
      <div class="row">
        <button
          type="button"
          onClick={async () => {
            const r = await call({ type: 'clearSnapshots' });
            if (r) setMessage(`Cleared ${r.cleared} saved documents`);
          }}
        >
          Clear saved documents
        </button>
        {openSidePanel && (
          <button type="button" onClick={openSidePanel}>
            Open in side panel
          </button>
        )}
      </div>
      {message && <div class="muted">{message}</div>}
      <div class="muted small">GPU: {gpu.state === 'ok' ? gpu.adapter : gpu.state}</div>
    </details>
  );
}
