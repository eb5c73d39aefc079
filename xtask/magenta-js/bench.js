// magenta.js's side of `cargo xtask bench-vs-magenta`: writes a random-weight model of
// mel_2bar_small's size as a TF.js checkpoint into DIR (the Rust side imports the same
// folder), then times magenta.js's greedy decode at batch 1 and 16 on the tfjs wasm
// (SIMD) and cpu backends. Prints one JSON object per measurement.
//
//   node bench.js DIR [RUNS]

'use strict';

const path = require('path');
const ck = require('./checkpoint');

// cat-mel_2bar_small: z 256, BiLSTM [512], decoder LSTM [256, 256], 2 bars.
const SPEC = { z: 256, encoder: 512, decoder: [256, 256], bars: 2, hierarchical: false };

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  const dir = path.resolve(process.argv[2]);
  const runs = Number(process.argv[3] || 20);
  ck.writeTfjs(dir, SPEC, ck.randomVariables(SPEC, 7));
  const server = await ck.serve(path.dirname(dir));
  const url = `${server.url}/${path.basename(dir)}`;
  ck.quiet();
  for (const name of ['wasm', 'cpu']) {
    const tf = await ck.backend(name);
    const mm = require('@magenta/music/node/music_vae');
    const model = new mm.MusicVAE(url);
    await model.initialize();
    const simd = name === 'wasm' ? await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT') : false;
    const r = ck.rng(3);
    for (const batch of [1, 16]) {
      const z = tf.tensor2d(Array.from({ length: batch }, () => Array.from({ length: SPEC.z }, () => r.normal())));
      // The cpu backend takes seconds per batch-16 decode: fewer runs there.
      const n = name === 'cpu' ? Math.max(3, Math.round(runs / (batch === 1 ? 4 : 10))) : runs;
      const times = [];
      for (let i = 0; i < n + 2; i++) {
        const start = performance.now();
        const out = await model.decodeTensors(z);
        await out.data();
        out.dispose();
        // The first two are warm-up (kernel compilation, allocation).
        if (i >= 2) times.push(performance.now() - start);
      }
      z.dispose();
      ck.say(JSON.stringify({ backend: simd ? `${name}-simd` : name, batch, runs: n, median_ms: median(times), min_ms: Math.min(...times) }));
    }
    model.dispose();
  }
  server.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
