// Random-weight MusicVAE checkpoints in the two formats magenta.js users meet, and a
// magenta.js session that loads them the way a browser does (over HTTP).
//
// Shared by fixtures.js (the equivalence fixtures Rust is tested against) and bench.js
// (the side-by-side benchmark).

'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');

const MIN_PITCH = 21;
const MAX_PITCH = 108;
const CLASSES = MAX_PITCH - MIN_PITCH + 3;
const STEPS_PER_QUARTER = 4;
const STEPS_PER_BAR = 4 * STEPS_PER_QUARTER;
// DrumsConverter: the encoder reads a roll of the 9 drum classes and a "no hits" bit, the
// decoder outputs one of their 512 combinations.
const DRUM_CLASSES = 9;
const DRUM_ROLL = DRUM_CLASSES + 1;
const DRUM_COMBINATIONS = 1 << DRUM_CLASSES;
// GrooveConverter: in and out, a row per step of the 9 drums' hits, then their
// velocities, then their offsets.
const GROOVE_ROW = 3 * DRUM_CLASSES;
// magenta.js's PitchChordEncoder: no chord, root, pitch classes, bass.
const CHORD_DEPTH = 1 + 3 * 12;

/** The encoder's input and the decoder's output widths of `spec.encoding`. */
function depths(spec) {
  switch (spec.encoding) {
    case 'drums': return { input: DRUM_ROLL, classes: DRUM_COMBINATIONS };
    case 'groove': return { input: GROOVE_ROW, classes: GROOVE_ROW };
    default: return { input: CLASSES, classes: CLASSES };
  }
}

// mulberry32: a seeded generator, so the fixtures are the same on every run.
function rng(seed) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => {
    const u = Math.max(uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
  return { uniform, normal };
}

/**
 * The variables of a MusicVAE under Magenta's names, as {name: {shape, values}}.
 * spec: {z, encoder (per-direction size), decoder: [sizes], bars, hierarchical, encoding
 * ('melody' when absent, 'drums' or 'groove'), pitchClasses (drums and grooves: written into
 * the converter spec), humanize, tapify (grooves: the GrooveConverter's options)}.
 * A hierarchical model has a two-level encoder (one BiLSTM per bar, one over the bars) and
 * a conductor, as Magenta's `hier-mel_16bar` and magenta.js expect.
 */
function randomVariables(spec, seed) {
  const r = rng(seed);
  const vars = {};
  // Weights large enough that greedy decoding is decisive and varied, not one flat class.
  const dense = (name, input, output, gain = 1.5) => {
    const std = gain / Math.sqrt(input);
    vars[name + '/kernel'] = { shape: [input, output], values: Float32Array.from({ length: input * output }, () => std * r.normal()) };
    vars[name + '/bias'] = { shape: [output], values: Float32Array.from({ length: output }, () => 0.3 * r.normal()) };
  };
  const lstm = (scope, input, hidden) => dense(scope + '/lstm_cell', input + hidden, 4 * hidden);
  const bidirectional = (scope, input, hidden) => {
    for (const dir of ['fw', 'bw']) lstm(`${scope}/cell_0/bidirectional_rnn/${dir}/multi_rnn_cell/cell_0`, input, hidden);
  };
  const h = spec.encoder;
  const { classes } = depths(spec);
  // A chord model reads each step's chord beside its event, in the encoder and decoder,
  // then its extra controls (melody controls such as rhythm, shape and register).
  const control = (spec.chords ? CHORD_DEPTH : 0) + (spec.extraControls || []).reduce((a, c) => a + c.depth, 0);
  const input = depths(spec).input + control;
  if (spec.hierarchical) {
    bidirectional('encoder/hierarchical_level_0', input, h);
    bidirectional('encoder/hierarchical_level_1', 2 * h, h);
  } else {
    bidirectional('encoder', input, h);
  }
  dense('encoder/mu', 2 * h, spec.z);
  dense('encoder/sigma', 2 * h, spec.z);
  const states = 2 * spec.decoder.reduce((a, b) => a + b, 0);
  const stack = (scope, input) => {
    spec.decoder.forEach((hidden, i) => {
      lstm(`${scope}/cell_${i}`, i === 0 ? input : spec.decoder[i - 1], hidden);
    });
  };
  const core = (scope, condition) => {
    // The decoder is fed its previous output: one-hot over the classes, or a groove row.
    stack(`${scope}/multi_rnn_cell`, classes + condition + control);
    dense(`${scope}/z_to_initial_state`, condition, states);
    dense(`${scope}/output_projection`, spec.decoder[spec.decoder.length - 1], classes, 4);
    const bias = vars[`${scope}/output_projection/bias`].values;
    if (spec.encoding === 'drums') {
      // One row of 512 feeds the previous step back: scaled up so that it still steers the
      // next step beside z, and decodes move on rather than repeat one combination.
      const kernel = vars[`${scope}/multi_rnn_cell/cell_0/lstm_cell/kernel`].values;
      for (let i = 0; i < classes * 4 * spec.decoder[0]; i++) kernel[i] *= 12;
      // Favour empty steps and the kick, snare and closed hi-hat alone or with the hat
      // (bits 0, 1 and 2), so that decodes rest and groove as drums do.
      for (const [event, boost] of [[0, 1], [1, 0.6], [2, 0.5], [4, 0.6], [5, 0.5], [6, 0.5]]) bias[event] += boost;
    } else if (spec.encoding === 'groove') {
      // Fewer hits than misses, so that decodes leave most drums silent on most steps.
      for (let c = 0; c < DRUM_CLASSES; c++) bias[c] -= 1;
    } else {
      // Favour "no event" and "note off" so that decodes hold notes and rest, as melodies do.
      bias[0] += 0.7;
      bias[1] += 1.2;
    }
  };
  if (spec.hierarchical) {
    stack('decoder/hierarchical_level_0', 1);
    dense('decoder/hierarchical_level_0/initial_state', spec.z, states);
    core('core_decoder/decoder', spec.decoder[spec.decoder.length - 1]);
  } else {
    core('decoder', spec.z);
  }
  return vars;
}

function dataConverter(spec) {
  const args = { numSteps: spec.bars * STEPS_PER_BAR };
  if (spec.hierarchical) args.numSegments = spec.bars;
  if (spec.encoding === 'drums') {
    if (spec.pitchClasses) args.pitchClasses = spec.pitchClasses;
    return { type: 'DrumsConverter', args };
  }
  if (spec.encoding === 'groove') {
    for (const key of ['humanize', 'tapify', 'pitchClasses']) if (spec[key]) args[key] = spec[key];
    return { type: 'GrooveConverter', args };
  }
  return { type: 'MelodyConverter', args: { minPitch: MIN_PITCH, maxPitch: MAX_PITCH, ...args } };
}

/**
 * A TF.js checkpoint: config.json, weights_manifest.json and shards of at most
 * `shardBytes`, split at byte boundaries across weights as tfjs's converter does.
 * quantization: null, 'uint8' or 'uint16' (affine: value = q * scale + min).
 * Returns the variables as magenta.js will see them (dequantized).
 */
function writeTfjs(dir, spec, vars, { quantization = null, shardBytes = 64 * 1024 } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const weights = [];
  const chunks = [];
  const seen = {};
  for (const [name, { shape, values }] of Object.entries(vars)) {
    const entry = { name, shape, dtype: 'float32' };
    if (quantization) {
      const levels = quantization === 'uint8' ? 255 : 65535;
      let min = Infinity;
      let max = -Infinity;
      for (const v of values) { min = Math.min(min, v); max = Math.max(max, v); }
      const scale = (max - min) / levels;
      const q = quantization === 'uint8' ? new Uint8Array(values.length) : new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) q[i] = Math.round((values[i] - min) / scale);
      entry.quantization = { dtype: quantization, scale, min };
      chunks.push(Buffer.from(q.buffer));
      seen[name] = { shape, values: Float32Array.from(q, (v) => v * scale + min) };
    } else {
      chunks.push(Buffer.from(values.buffer, values.byteOffset, values.byteLength));
      seen[name] = { shape, values };
    }
    weights.push(entry);
  }
  const all = Buffer.concat(chunks);
  const count = Math.max(1, Math.ceil(all.length / shardBytes));
  const paths = [];
  for (let i = 0; i < count; i++) {
    const file = `group1-shard${i + 1}of${count}`;
    fs.writeFileSync(path.join(dir, file), all.subarray(i * shardBytes, (i + 1) * shardBytes));
    paths.push(file);
  }
  fs.writeFileSync(path.join(dir, 'weights_manifest.json'), JSON.stringify([{ paths, weights }]));
  const config = { type: 'MusicVAE', dataConverter: dataConverter(spec) };
  if (spec.chords) config.chordEncoder = 'PitchChordEncoder';
  if (spec.extraControls) config.extraControls = spec.extraControls;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 1));
  return seen;
}

/** An older deeplearn.js checkpoint: manifest.json, one raw float32 file per variable, converter.json. */
function writeDeeplearn(dir, spec, vars, { converter = true } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const manifest = {};
  for (const [name, { shape, values }] of Object.entries(vars)) {
    const filename = name.replace(/\//g, '_');
    fs.writeFileSync(path.join(dir, filename), Buffer.from(values.buffer, values.byteOffset, values.byteLength));
    manifest[name] = { filename, shape };
  }
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 1));
  if (converter) fs.writeFileSync(path.join(dir, 'converter.json'), JSON.stringify(dataConverter(spec), null, 1));
}

/** Serves `root` on 127.0.0.1: magenta.js fetches checkpoints over HTTP. */
async function serve(root) {
  const server = http.createServer((req, res) => {
    const file = path.join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname));
    fs.readFile(file, (err, data) => {
      if (err) { res.writeHead(404); res.end(); return; }
      res.writeHead(200);
      res.end(data);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

/**
 * tfjs with the named backend ('cpu' or 'wasm'). The wasm backend of tfjs 2.8 loads in
 * Node only from its dist/ folder, and only while the global fetch is hidden (it would
 * otherwise try to fetch the .wasm file as a URL).
 */
async function backend(name) {
  const tf = require('@tensorflow/tfjs');
  if (name === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), path.sep));
    const fetch = globalThis.fetch;
    globalThis.fetch = undefined;
    try {
      await tf.setBackend('wasm');
      await tf.ready();
    } finally {
      globalThis.fetch = fetch;
    }
  } else {
    await tf.setBackend(name);
    await tf.ready();
  }
  if (tf.getBackend() !== name) throw new Error(`tfjs backend ${name} did not load (got ${tf.getBackend()})`);
  return tf;
}

/** magenta.js logs every call with console.log; the scripts print with `say` instead. */
function quiet() {
  console.log = () => {};
}

function say(line) {
  process.stdout.write(line + '\n');
}

module.exports = { CLASSES, DRUM_CLASSES, GROOVE_ROW, MIN_PITCH, MAX_PITCH, STEPS_PER_QUARTER, STEPS_PER_BAR, rng, randomVariables, writeTfjs, writeDeeplearn, serve, backend, quiet, say };
