// Pages and model files the e2e tests serve on 127.0.0.1.

export const ARTICLE_TITLE = 'The Keeper of Gull Rock';

export const ARTICLE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${ARTICLE_TITLE}</title></head>
<body>
  <nav><a href="/">Home</a> <a href="/about">About</a></nav>
  <article>
    <h1>${ARTICLE_TITLE}</h1>
    <p class="byline">By Ada Tester</p>
    ${Array.from(
      { length: 12 },
      (_, i) =>
        `<p>Paragraph ${i + 1}. The keeper climbed the ninety-nine steps of the tower at dusk, trimmed the wick and wound the clockwork that turned the great lens. Ships passing the reef counted the flashes, three every fifteen seconds, and knew where they were.</p>`,
    ).join('\n    ')}
    <p>The secret word the keeper wrote in the log was <strong>marmalade</strong>.</p>
  </article>
  <footer>Copyright nobody</footer>
</body></html>`;

/** A minimal MLC folder: enough for "add a custom model" (the config is all that is checked before loading). */
export const TINY_MODEL_CONFIG = JSON.stringify({
  model_type: 'llama',
  quantization: 'q0f32',
  model_config: {
    hidden_size: 8,
    num_hidden_layers: 1,
    num_attention_heads: 1,
    num_key_value_heads: 1,
    vocab_size: 16,
  },
  context_window_size: 256,
  conv_template: { name: 'llama-3' },
  tokenizer_files: ['tokenizer.json'],
});
